// Per-frame metadata (Xen's struct page_info) and the M2P table, in typed arrays by MFN.
// Layer: hypervisor/arch. Plain storage: the reference-counting rules live in
// hypervisor/mm/ (page-ref.ts, page-type.ts); the allocator in hypervisor/page-alloc.ts.

/** Owner value of a frame that belongs to no domain (free). */
export const OWNER_NONE = 0xffff;
/** Owner value of Xen's private frames (its own page tables): no domain may map them. */
export const OWNER_XEN_PRIVATE = 0xfffe;

// Page types (Xen's PGT_* type field, unshifted). Types are mutually exclusive and may
// change only while the type count is 0. The page-table types equal their level.
export const PGT_none = 0;
export const PGT_l1_page_table = 1;
export const PGT_l2_page_table = 2;
export const PGT_l3_page_table = 3;
export const PGT_l4_page_table = 4;
export const PGT_seg_desc_page = 5;
export const PGT_shared_page = 6;
export const PGT_writable_page = 7;

export const PGT_NAMES = ['none', 'l1', 'l2', 'l3', 'l4', 'seg_desc', 'shared', 'writable'] as const;

// Type flags (Xen's PGT_pinned, PGT_validated).
export const PGT_pinned = 1;
export const PGT_validated = 2;

// General flags (Xen's PGC_*): the allocation reference, and Xen-heap (special) pages.
export const PGC_allocated = 1;
export const PGC_xen_heap = 2;

/** Xen's INVALID_M2P_ENTRY (~0UL): both halves all ones. */
export const M2P_INVALID = 0xffffffff;

export class FrameTable {
  readonly nrFrames: number;
  /** Owning domid, OWNER_NONE when free. */
  readonly owner: Uint16Array;
  /** General reference count (count_info & PGC_count_mask). */
  readonly count: Uint32Array;
  /** PGC_* flags. */
  readonly pgc: Uint8Array;
  /** PGT_* type. */
  readonly type: Uint8Array;
  /** Type reference count. */
  readonly typeCount: Uint32Array;
  /** PGT_pinned | PGT_validated. */
  readonly typeFlags: Uint8Array;
  /**
   * Same-level linear page-table uses (Xen's linear_pt_count): > 0 when this table
   * contains that many links to other tables of its level, < 0 when it is the target
   * of that many. Never both (XSA-240).
   */
  readonly linearPtCount: Int16Array;
  /** Doubly linked page lists (a domain's pages, or nothing when free); -1 ends a list. */
  readonly next: Int32Array;
  readonly prev: Int32Array;
  /** M2P: machine frame → guest pseudo-physical frame, as two 32-bit halves of a u64. */
  readonly m2pLo: Uint32Array;
  readonly m2pHi: Uint32Array;

  constructor(nrFrames: number) {
    this.nrFrames = nrFrames;
    this.owner = new Uint16Array(nrFrames).fill(OWNER_NONE);
    this.count = new Uint32Array(nrFrames);
    this.pgc = new Uint8Array(nrFrames);
    this.type = new Uint8Array(nrFrames);
    this.typeCount = new Uint32Array(nrFrames);
    this.typeFlags = new Uint8Array(nrFrames);
    this.linearPtCount = new Int16Array(nrFrames);
    this.next = new Int32Array(nrFrames).fill(-1);
    this.prev = new Int32Array(nrFrames).fill(-1);
    this.m2pLo = new Uint32Array(nrFrames).fill(M2P_INVALID);
    this.m2pHi = new Uint32Array(nrFrames).fill(M2P_INVALID);
  }

  /** Host bytes per frame spent on metadata (for the memory benchmark). */
  static readonly BYTES_PER_FRAME = 2 + 4 + 1 + 1 + 4 + 1 + 2 + 4 + 4 + 4 + 4;

  get hostBytes(): number {
    return this.nrFrames * FrameTable.BYTES_PER_FRAME;
  }

  isValidated(mfn: number): boolean {
    return (this.typeFlags[mfn] & PGT_validated) !== 0;
  }

  isPinned(mfn: number): boolean {
    return (this.typeFlags[mfn] & PGT_pinned) !== 0;
  }

  /** A validated page table (L1–L4) with type references. */
  isLivePageTable(mfn: number): boolean {
    const t = this.type[mfn];
    return t >= PGT_l1_page_table && t <= PGT_l4_page_table && this.typeCount[mfn] > 0 &&
      (this.typeFlags[mfn] & PGT_validated) !== 0;
  }
}
