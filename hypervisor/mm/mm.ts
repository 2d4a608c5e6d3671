// The memory-management core assembled: references, types, validation and entry
// updates, plus the two lookups every MM hypercall starts with (get_pg_owner and the
// XSM_TARGET privilege check). Layer: hypervisor/mm.

import type { Domain } from '../domain.ts';
import { EPERM } from '../public/errno.ts';
import { DOMID_IO, DOMID_SELF, DOMID_XEN } from '../public/xen.ts';
import { EntryUpdater } from './mod-entry.ts';
import type { MmHost } from './mm-host.ts';
import { PageRefs } from './page-ref.ts';
import { PageTables } from './page-table.ts';
import { PageTypes } from './page-type.ts';

export class Mm {
  readonly refs: PageRefs;
  readonly types: PageTypes;
  readonly tables: PageTables;
  readonly entries: EntryUpdater;

  constructor(readonly host: MmHost, xenSlotMfns: Int32Array) {
    this.refs = new PageRefs(host);
    this.types = new PageTypes(host, this.refs);
    this.tables = new PageTables(host, this.refs, this.types, xenSlotMfns);
    this.types.setValidator(this.tables);
    this.entries = new EntryUpdater(host, this.tables);
  }

  /**
   * get_pg_owner: the domain named as owner of mapped data. DOMID_SELF is the caller;
   * naming oneself by number, or an unknown domain, gives undefined (-ESRCH). A dying
   * domain is still found, as in Xen (its frames live while referenced).
   */
  getPgOwner(caller: Domain, domid: number): Domain | undefined {
    if (domid === DOMID_SELF) return caller;
    if (domid === caller.domid) return undefined;
    if (domid === DOMID_IO || domid === DOMID_XEN) return this.host.domainById(domid);
    return this.liveDomain(domid);
  }

  /** A domain by number (rcu_lock_domain_by_id): dying ones too; never reserved ids. */
  liveDomain(domid: number): Domain | undefined {
    return domid < 0x7ff0 ? this.host.domainById(domid) : undefined;
  }

  /**
   * XSM_TARGET under the dummy policy: a domain may act on itself, and the control
   * domain on anyone. 0 or -EPERM.
   */
  xsmTarget(src: Domain, target: Domain): number {
    return src === target || src.isPrivileged ? 0 : -EPERM;
  }
}
