// Page types and type references (Xen's get_page_type / put_page_type). Layer:
// hypervisor/mm. A frame's type (page table of a level, writable, seg_desc, ...) may
// change only while its type count is 0; taking the first reference of a page-table
// type validates the contents, and dropping the last one devalidates them.

import {
  PGT_l1_page_table, PGT_l4_page_table, PGT_none, PGT_shared_page, PGT_validated, PGT_writable_page,
} from '../arch/frame-table.ts';
import { EINVAL } from '../public/errno.ts';
import type { MmHost } from './mm-host.ts';
import type { PageRefs } from './page-ref.ts';

/** Validation of a page's contents for a type, and its undoing (alloc/free_page_type). */
export interface TypeValidator {
  /** Takes the references the page's entries need; 0 or a negative errno (nothing held). */
  validate(mfn: number, type: number): number;
  /** Drops the references the page's entries hold. */
  devalidate(mfn: number, type: number): void;
}

const TYPE_COUNT_MAX = 0x7fffffff;

export class PageTypes {
  private validator: TypeValidator | undefined;

  constructor(
    private readonly host: MmHost,
    private readonly refs: PageRefs,
  ) {}

  setValidator(v: TypeValidator): void {
    this.validator = v;
  }

  /**
   * get_page_type: takes a type reference of `type`. At count 0 the type may change (and
   * a page table is validated); above 0 the type must match. Returns 0, -EINVAL for a
   * type conflict or overflow, or the validation error (no reference then held).
   */
  getPageType(mfn: number, type: number): number {
    const f = this.host.frames;
    const count = f.typeCount[mfn];
    if (count > 0) {
      if (f.type[mfn] !== type || count >= TYPE_COUNT_MAX) return -EINVAL;
      if ((f.typeFlags[mfn] & PGT_validated) === 0) {
        // Only a page in the middle of its own validation looks like this, and nothing
        // can refer to such a page at the same level (linear entries need it validated).
        throw new Error(`get_page_type: mfn ${mfn} referenced during its own validation`);
      }
      f.typeCount[mfn] = count + 1;
      return 0;
    }
    const old = f.type[mfn];
    if (old !== type) {
      f.type[mfn] = type;
      f.typeFlags[mfn] = type === PGT_writable_page || type === PGT_shared_page ? PGT_validated : 0;
      // No vCPU may keep a stale translation across a change to or from writable: a
      // page about to be a page table must not stay writable in some TLB (XSA-401).
      if (old === PGT_writable_page || (type === PGT_writable_page && old !== PGT_none)) {
        this.host.flushTypeChange(f.owner[mfn]);
      }
    }
    f.typeCount[mfn] = 1;
    if ((f.typeFlags[mfn] & PGT_validated) !== 0) return 0;
    const rc = this.validator!.validate(mfn, type);
    if (rc !== 0) {
      // Xen resets type_info on a failed validation.
      f.type[mfn] = PGT_none;
      f.typeCount[mfn] = 0;
      f.typeFlags[mfn] = 0;
      return rc;
    }
    f.typeFlags[mfn] |= PGT_validated;
    return 0;
  }

  /**
   * put_page_type: drops a type reference. The last one on a validated page table
   * devalidates it (its entries' references go, which may cascade).
   */
  putPageType(mfn: number): void {
    const f = this.host.frames;
    const count = f.typeCount[mfn];
    if (count === 0) throw new Error(`put_page_type on mfn ${mfn} with type count 0`);
    f.typeCount[mfn] = count - 1;
    if (count !== 1) return;
    const type = f.type[mfn];
    if (type >= PGT_l1_page_table && type <= PGT_l4_page_table && (f.typeFlags[mfn] & PGT_validated) !== 0) {
      f.typeFlags[mfn] &= ~PGT_validated;
      this.validator!.devalidate(mfn, type);
    }
  }

  /** get_page_and_type_from_mfn: a general and a type reference on a frame `d` owns. */
  getPageAndType(mfn: number, type: number, d: import('../domain.ts').Domain): number {
    if (!this.refs.getPage(mfn, d)) return -EINVAL;
    const rc = this.getPageType(mfn, type);
    if (rc !== 0) this.refs.putPage(mfn);
    return rc;
  }

  /** put_page_and_type. */
  putPageAndType(mfn: number): void {
    this.putPageType(mfn);
    this.refs.putPage(mfn);
  }
}
