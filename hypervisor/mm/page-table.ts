// Page-table validation (Xen's alloc_lN_table / free_lN_table) and the references each
// present entry holds (get_page_from_lNe / put_page_from_lNe), including same-level
// linear page tables. Layer: hypervisor/mm.
//
// An L1 entry holds a general reference on its frame, plus a writable type reference if
// it is RW; an L2/L3/L4 entry holds a general and an L1/L2/L3 type reference on its
// child, so validating a table validates its subtree. Entries never hold references
// while their table is not validated.

import {
  PGC_xen_heap, PGT_l1_page_table, PGT_l4_page_table, PGT_validated, PGT_writable_page,
} from '../arch/frame-table.ts';
import {
  _PAGE_ACCESSED, _PAGE_PAT, _PAGE_PCD, _PAGE_PRESENT, _PAGE_PSE, _PAGE_PWT, _PAGE_GLOBAL, _PAGE_RW,
  _PAGE_USER, PADDR_BITS, pteHiAddr, pteLo, pteMfn,
} from '../arch/pte.ts';
import type { Domain } from '../domain.ts';
import { EACCES, EBUSY, EINVAL, EPERM } from '../public/errno.ts';
import { DOMID_IO } from '../public/xen.ts';
import type { MmHost } from './mm-host.ts';
import type { PageRefs } from './page-ref.ts';
import type { PageTypes, TypeValidator } from './page-type.ts';

/** Cache-attribute bits, allowed in L1 entries only to domains with I/O privilege. */
export const PAGE_CACHE_ATTRS = _PAGE_PWT | _PAGE_PCD | _PAGE_PAT;
/** L1: everything but P, RW, US, A, D, G, AVAIL (and the high flags) is disallowed. */
export const L1_DISALLOW_MASK = PAGE_CACHE_ATTRS;
/** L2, L3, L4 (64-bit): also no PSE (no PV superpages) and no G. */
export const LN_DISALLOW_MASK = _PAGE_PWT | _PAGE_PCD | _PAGE_PSE | _PAGE_GLOBAL;

/** Guest slots of a 64-bit PV L4: all but Xen's 256-271. */
export function isGuestL4Slot(i: number): boolean {
  return i < 256 || i > 271;
}

/** linear_pt_count is an int16 in Xen's page_info. */
const LINEAR_MAX = 0x7fff;

export class PageTables implements TypeValidator {
  constructor(
    private readonly host: MmHost,
    private readonly refs: PageRefs,
    private readonly types: PageTypes,
    /** Xen's own L3 frames that fill L4 slots 256-271 of every validated L4. */
    private readonly xenSlotMfns: Int32Array,
  ) {}

  l1DisallowMask(d: Domain): number {
    return d.hasIomem ? L1_DISALLOW_MASK & ~PAGE_CACHE_ATTRS : L1_DISALLOW_MASK;
  }

  // ---- L1 entries -------------------------------------------------------------------

  /**
   * get_page_from_l1e: references for a new L1 entry in a table owned by `l1eOwner`,
   * mapping a frame expected to belong to `pgOwner`. 0, or -EINVAL (disallowed flags),
   * -EPERM (MMIO without I/O privilege), -EBUSY (frame not pgOwner's, or not writable
   * when RW), -EACCES (cache attributes on a Xen-heap page). Nothing is held on failure.
   */
  getPageFromL1e(lo: number, hi: number, l1eOwner: Domain, pgOwner: Domain, caller: Domain): number {
    if ((lo & _PAGE_PRESENT) === 0) return 0;
    if ((lo & this.l1DisallowMask(l1eOwner)) !== 0) return -EINVAL;
    const mfn = pteMfn(lo, hi);
    const f = this.host.frames;
    if (!this.refs.isRam(mfn) || f.owner[mfn] === DOMID_IO) {
      // MMIO: no references, only the I/O permission of the data owner.
      const who = pgOwner.domid === DOMID_IO ? caller : pgOwner;
      if (!who.hasIomem || mfn >= 2 ** (PADDR_BITS - 12)) return -EPERM;
      if (who !== l1eOwner && !l1eOwner.hasIomem) return -EPERM;
      return 0;
    }
    const realOwner = this.refs.getPageAnyOwner(mfn);
    if (realOwner === undefined) return -EBUSY;
    if (realOwner !== pgOwner) {
      // A privileged domain may pass on the right to map its target's pages.
      if (pgOwner === l1eOwner || !pgOwner.isPrivileged) {
        this.refs.putPage(mfn);
        return -EBUSY;
      }
    }
    const rw = (lo & _PAGE_RW) !== 0;
    if (rw && this.types.getPageType(mfn, PGT_writable_page) !== 0) {
      this.refs.putPage(mfn);
      return -EBUSY;
    }
    if ((lo & PAGE_CACHE_ATTRS) !== 0 && (f.pgc[mfn] & PGC_xen_heap) !== 0) {
      if (rw) this.types.putPageType(mfn);
      this.refs.putPage(mfn);
      return -EACCES;
    }
    return 0;
  }

  /** put_page_from_l1e: drops what getPageFromL1e took. */
  putPageFromL1e(lo: number, hi: number): void {
    if ((lo & _PAGE_PRESENT) === 0) return;
    const mfn = pteMfn(lo, hi);
    if (!this.refs.isRam(mfn) || this.host.frames.owner[mfn] === DOMID_IO) return;
    if ((lo & _PAGE_RW) !== 0) this.types.putPageType(mfn);
    this.refs.putPage(mfn);
  }

  // ---- L2/L3/L4 entries -------------------------------------------------------------

  /**
   * get_page_from_l2e/l3e/l4e: references for a new entry at `level` in table `table`
   * owned by `d`: the child must be d's and validate as level-1, or be a read-only
   * linear link to a validated table of the same level. 0 or -EINVAL (or the child's
   * validation error).
   */
  getPageFromUpper(level: number, lo: number, hi: number, table: number, d: Domain): number {
    if ((lo & _PAGE_PRESENT) === 0) return 0;
    if ((lo & LN_DISALLOW_MASK) !== 0) return -EINVAL;
    const child = pteMfn(lo, hi);
    const rc = this.types.getPageAndType(child, level - 1, d);
    if (rc === -EINVAL && this.getLinear(level, lo, child, table, d)) return 0;
    return rc;
  }

  /** put_page_from_l2e/l3e/l4e. A self-map holds nothing. */
  putPageFromUpper(lo: number, hi: number, table: number): void {
    if ((lo & _PAGE_PRESENT) === 0) return;
    const child = pteMfn(lo, hi);
    if (child === table) return;
    const f = this.host.frames;
    if (f.type[child] === f.type[table]) {
      f.linearPtCount[child]++; // one use fewer
      f.linearPtCount[table]--; // one entry fewer
    }
    this.types.putPageAndType(child);
  }

  /**
   * get_lN_linear_pagetable: a same-level entry is allowed only read-only, within one
   * domain, to an already validated table, and one level deep: a table either holds
   * such links or is the target of them, never both (XSA-240).
   */
  private getLinear(level: number, lo: number, child: number, table: number, d: Domain): boolean {
    if (!this.host.linearPageTables || (lo & _PAGE_RW) !== 0) return false;
    if (child === table) return true;
    const f = this.host.frames;
    if (f.owner[table] !== d.domid || !this.refs.getPage(child, d)) return false;
    const entries = f.linearPtCount[table];
    const uses = f.linearPtCount[child];
    if (entries < 0 || entries >= LINEAR_MAX || uses > 0 || uses <= -LINEAR_MAX ||
      f.type[child] !== level || (f.typeFlags[child] & PGT_validated) === 0 || f.typeCount[child] === 0) {
      this.refs.putPage(child);
      return false;
    }
    f.linearPtCount[table] = entries + 1;
    f.linearPtCount[child] = uses - 1;
    f.typeCount[child]++;
    return true;
  }

  // ---- Whole tables -------------------------------------------------------------------

  /** alloc_page_type for L1-L4: takes every present entry's references, or none. */
  validate(mfn: number, type: number): number {
    if (type < PGT_l1_page_table || type > PGT_l4_page_table) return 0;
    const mem = this.host.mem;
    const d = this.host.domainById(this.host.frames.owner[mfn]);
    if (!d) return -EINVAL;
    for (let i = 0; i < 512; i++) {
      if (type === PGT_l4_page_table && !isGuestL4Slot(i)) continue;
      const lo = mem.read32(mfn, i << 3);
      if ((lo & _PAGE_PRESENT) === 0) continue;
      const hi = mem.read32(mfn, (i << 3) + 4);
      const rc = type === PGT_l1_page_table
        ? this.getPageFromL1e(lo, hi, d, d, d)
        : this.getPageFromUpper(type, lo, hi, mfn, d);
      if (rc !== 0) {
        this.host.log.debug({ mfn, type, slot: i, rc }, 'validation failed');
        this.release(mfn, type, i);
        return rc;
      }
    }
    if (type === PGT_l4_page_table) this.initXenL4Slots(mfn, d.m2pStrict);
    return 0;
  }

  /** free_page_type for L1-L4: drops every present entry's references. */
  devalidate(mfn: number, type: number): void {
    this.release(mfn, type, 512);
  }

  private release(mfn: number, type: number, upTo: number): void {
    const mem = this.host.mem;
    for (let i = 0; i < upTo; i++) {
      if (type === PGT_l4_page_table && !isGuestL4Slot(i)) continue;
      const lo = mem.read32(mfn, i << 3);
      if ((lo & _PAGE_PRESENT) === 0) continue;
      const hi = mem.read32(mfn, (i << 3) + 4);
      if (type === PGT_l1_page_table) this.putPageFromL1e(lo, hi);
      else this.putPageFromUpper(lo, hi, mfn);
    }
  }

  /**
   * init_xen_l4_slots: Xen's entries in slots 256-271 of a validated L4: the RO M2P in
   * 256 only under m2p_strict (otherwise NEW_BASEPTR fills it), the linear self-map in
   * 258, Xen's own mappings elsewhere (259, shadow linear, stays empty). Guests can read
   * them through a read-only mapping of their L4, never reach through them.
   */
  private initXenL4Slots(mfn: number, roMpt: boolean): void {
    const mem = this.host.mem;
    for (let slot = 256; slot <= 271; slot++) {
      let target = this.xenSlotMfns[slot - 256];
      let flags = _PAGE_PRESENT | _PAGE_RW | _PAGE_ACCESSED;
      if (slot === 258) target = mfn;
      if (slot === 259 || (slot === 256 && !roMpt)) {
        mem.write32(mfn, slot << 3, 0);
        mem.write32(mfn, (slot << 3) + 4, 0);
        continue;
      }
      if (slot === 256) flags = _PAGE_PRESENT | _PAGE_USER | _PAGE_ACCESSED;
      mem.write32(mfn, slot << 3, pteLo(target, flags));
      mem.write32(mfn, (slot << 3) + 4, pteHiAddr(target));
    }
  }

  /**
   * Whether (lo, hi) is what Xen keeps in slot 256-271 of validated L4 `l4`: slot 256
   * empty or the RO M2P, 258 the self-map, 259 empty, the rest Xen's own tables.
   */
  isXenL4Entry(l4: number, slot: number, lo: number, hi: number): boolean {
    if (slot === 259) return lo === 0 && hi === 0;
    if (slot === 256) {
      const target = this.xenSlotMfns[0];
      const ro = pteLo(target, _PAGE_PRESENT | _PAGE_USER | _PAGE_ACCESSED);
      return (lo === 0 && hi === 0) || (lo === ro && hi === pteHiAddr(target));
    }
    const target = slot === 258 ? l4 : this.xenSlotMfns[slot - 256];
    return lo === pteLo(target, _PAGE_PRESENT | _PAGE_RW | _PAGE_ACCESSED) && hi === pteHiAddr(target);
  }

  /** fill_ro_mpt / zap_ro_mpt: installs or clears the RO M2P slot of an L4. */
  setRoMpt(l4: number, present: boolean): void {
    const target = this.xenSlotMfns[0];
    const mem = this.host.mem;
    if (present && (mem.read32(l4, 256 << 3) & _PAGE_PRESENT) !== 0) return;
    mem.write32(l4, 256 << 3, present ? pteLo(target, _PAGE_PRESENT | _PAGE_USER | _PAGE_ACCESSED) : 0);
    mem.write32(l4, (256 << 3) + 4, present ? pteHiAddr(target) : 0);
  }
}
