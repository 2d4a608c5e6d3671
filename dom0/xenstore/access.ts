// Finding a node on behalf of a caller (xenstored's get_node and errno_from_parents):
// the caller's access to a node comes from its permissions; a node the caller may not
// use is reported EACCES, and a missing one ENOENT only when the caller has the access it
// asked for on the nearest ancestor that exists, so that nothing reveals whether a node
// exists below a directory the caller may not see. dom0/xenstore layer.

import { parentOf } from './paths.ts';
import { type DomainGenerations, permForCaller } from './perms.ts';
import type { XsNode } from './store.ts';
import type { NodeDb } from './transaction.ts';
import type { XsErrno } from './wire.ts';

/** Who is asking: the domain a connection acts as, its privilege and its target. */
export interface Caller {
  readonly domid: number;
  readonly privileged: boolean;
  /** SET_TARGET's domain whose rights the caller shares, or -1. */
  readonly target: number;
  /** The daemon's domain records, which decide the entries that count (perms.ts). */
  readonly known: DomainGenerations;
}

/** The caller's access bits (XS_PERM_*) to `node`. */
export function accessTo(caller: Caller, node: XsNode): number {
  return permForCaller(node.perms, caller.domid, caller.privileged, caller.target, caller.known, node.generation);
}

/**
 * get_node(): the node at `name` if the caller has all of `perm` on it; else EACCES, or
 * ENOENT for a missing node whose nearest existing ancestor grants the caller `perm`.
 */
export function getNode(db: NodeDb, caller: Caller, name: string, perm: number): XsNode | XsErrno {
  const node = db.read(name);
  if (node !== undefined) return (accessTo(caller, node) & perm) === perm ? node : 'EACCES';
  return ancestorAllows(db, caller, name, perm) ? 'ENOENT' : 'EACCES';
}

/** ask_parents(): whether the nearest existing ancestor of `name` grants the caller `perm`. */
export function ancestorAllows(db: NodeDb, caller: Caller, name: string, perm: number): boolean {
  let p = name;
  do {
    p = parentOf(p);
    const node = db.read(p);
    if (node !== undefined) return (accessTo(caller, node) & perm) !== 0;
  } while (p !== '/');
  return false;
}
