// Which domains xenstored holds a record of (xenstored_domain.c's struct domain) and the
// store generation at which it made each. A record is made when a domain is introduced
// or first named by SET_PERMS, and goes with the domain; a permission entry counts only
// on nodes written since its domain's record was made, so that a domid passed on to a new
// domain inherits nothing from the old one (XSA-322). dom0/xenstore layer.

import { type DomainGenerations, type NodePerms, XS_PERM_IGNORE, markIgnored } from './perms.ts';
import type { XsNode } from './store.ts';

/** Whether a domain exists at all (xenstored asks the hypervisor). */
export interface DomainExistence {
  domainExists(domid: number): boolean;
}

export class KnownDomains implements DomainGenerations {
  /** Generation each record was made at; dom0's from before the first node. */
  private readonly recorded = new Map<number, number>([[0, 0]]);

  generationOf(domid: number): number {
    return this.recorded.get(domid) ?? -1;
  }

  has(domid: number): boolean {
    return this.recorded.has(domid);
  }

  /** alloc_domain(): a record of `domid` made at generation `now`, unless it has one. */
  add(domid: number, now: number): void {
    if (!this.recorded.has(domid)) this.recorded.set(domid, now);
  }

  /** The domain is gone (RELEASE, or its destruction): its record with it. */
  remove(domid: number): void {
    if (domid !== 0) this.recorded.delete(domid);
  }

  /** The node's permission list as reading it shows it (see markIgnored). */
  permsOf(node: XsNode): NodePerms {
    return markIgnored(node.perms, this, node.generation);
  }
}

/**
 * domain_alloc_permrefs() for SET_PERMS: an entry naming a domain without a record gets
 * one made at generation `now` if the domain exists, and is marked XS_PERM_IGNORE if not.
 * Null when that befalls the owner (entry 0): SET_PERMS answers ENOENT.
 */
export function recordPermDomains(p: NodePerms, known: KnownDomains, world: DomainExistence, now: number): NodePerms | null {
  let perms: number[] | null = null;
  for (let i = 0; i < p.ids.length; i++) {
    const id = p.ids[i];
    if (known.has(id)) continue;
    if (world.domainExists(id)) {
      known.add(id, now);
      continue;
    }
    perms ??= p.perms.slice();
    perms[i] |= XS_PERM_IGNORE;
  }
  // Checked after the loop: records are made for the other entries all the same.
  if (perms !== null && (perms[0] & XS_PERM_IGNORE) !== 0) return null;
  return perms === null ? p : { ids: p.ids, perms };
}
