// General page references (Xen's get_page / put_page on count_info). Layer: hypervisor/mm.
// Every mapping, pin, CR3 use and page-table entry pointing at a frame holds one; the
// allocation holds one more (PGC_allocated). At zero the frame returns to the pool.

import type { Domain } from '../domain.ts';
import type { MmHost } from './mm-host.ts';
import { OWNER_NONE } from '../arch/frame-table.ts';
import { DOMID_FIRST_RESERVED } from '../public/xen.ts';

/** Beyond this Xen would overflow count_info; refuse as Xen refuses. */
const COUNT_MAX = 0x7fffffff;

export class PageRefs {
  constructor(private readonly host: MmHost) {}

  /** A RAM frame of the machine (Xen's mfn_valid). */
  isRam(mfn: number): boolean {
    return mfn >= 0 && mfn < this.host.frames.nrFrames;
  }

  /**
   * get_page: takes a reference on a RAM frame owned by `d` that is still allocated.
   * False (no reference taken) for a foreign, free or out-of-range frame.
   */
  getPage(mfn: number, d: Domain): boolean {
    const f = this.host.frames;
    if (!this.isRam(mfn) || f.owner[mfn] !== d.domid) return false;
    const c = f.count[mfn];
    if (c === 0 || c >= COUNT_MAX) return false;
    f.count[mfn] = c + 1;
    return true;
  }

  /**
   * page_get_owner_and_reference: takes a reference whoever owns the frame and returns
   * the owner; undefined (no reference) for a free frame.
   */
  getPageAnyOwner(mfn: number): Domain | undefined {
    const f = this.host.frames;
    const c = f.count[mfn];
    if (c === 0 || c >= COUNT_MAX || f.owner[mfn] === OWNER_NONE) return undefined;
    const owner = this.host.domainById(f.owner[mfn]);
    if (owner) f.count[mfn] = c + 1;
    return owner;
  }

  /** put_page: drops a reference; the last one frees the frame. */
  putPage(mfn: number): void {
    const f = this.host.frames;
    const c = f.count[mfn];
    if (c === 0) throw new Error(`put_page on mfn ${mfn} with count 0`);
    f.count[mfn] = c - 1;
    if (c === 1) {
      if (f.typeCount[mfn] !== 0) throw new Error(`freeing mfn ${mfn} with type count ${f.typeCount[mfn]}`);
      const id = f.owner[mfn];
      // Xen's own frames and free ones are on no domain's list.
      this.host.alloc.freePage(mfn, id < DOMID_FIRST_RESERVED ? this.host.domainById(id) : undefined);
    }
  }
}
