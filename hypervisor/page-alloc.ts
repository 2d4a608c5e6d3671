// The page allocator (Xen's common/page_alloc.c): the free pool, and assigning frames to
// domains and taking them back. Layer: hypervisor. Frames handed to a domain carry the
// allocation reference (PGC_allocated); a frame returns to the pool when its last
// general reference goes, and its contents are scrubbed then.

import { MachineMemory } from './arch/memory.ts';
import {
  FrameTable, M2P_INVALID, OWNER_NONE, PGC_allocated, PGC_xen_heap, PGT_none,
} from './arch/frame-table.ts';
import type { TlbClock } from './arch/tlb.ts';

/** What the allocator needs to know of a domain. */
export interface PageOwner {
  readonly domid: number;
  /** Domain-heap pages on the owner's list (Xen's d->tot_pages). */
  totPages: number;
  /** Xen-heap pages shared with the owner, also on its list but not in tot_pages. */
  xenheapPages: number;
  maxPages: number;
  /** Head of the owner's page list, -1 when empty. */
  pageHead: number;
  /** Set once destruction starts: no more pages are assigned. */
  isDying: boolean;
}

export class PageAllocator {
  /** One bit per frame, set while the frame is in use (not in the free pool). */
  private readonly used: Uint32Array;
  private cursor = 0;
  private nrFree: number;
  /** TLB clock tick at which each free frame was freed (0: never used). */
  private readonly freedAt: Float64Array;

  constructor(
    private readonly mem: MachineMemory,
    private readonly frames: FrameTable,
    private readonly tlbClock: TlbClock,
    /** Called when a domain's last page is freed (a dying domain can then go). */
    private readonly onLastPage: (owner: PageOwner) => void,
    /** Flushes every TLB last flushed before `tick`: a freed frame is about to be reused. */
    private readonly flushTlbsOlderThan: (tick: number) => void,
  ) {
    this.freedAt = new Float64Array(frames.nrFrames);
    this.used = new Uint32Array(Math.ceil(frames.nrFrames / 32));
    this.nrFree = frames.nrFrames;
    // Bits past the end of the machine count as used, so the search never returns them.
    for (let mfn = frames.nrFrames; mfn < this.used.length * 32; mfn++) this.setUsed(mfn);
  }

  get freeFrames(): number {
    return this.nrFree;
  }

  isFree(mfn: number): boolean {
    return (this.used[mfn >>> 5] & (1 << (mfn & 31))) === 0;
  }

  /**
   * Takes 2^order contiguous, aligned frames below `limit` from the pool; returns the
   * first MFN or -1. Next-fit from where the last search ended, so allocation order is
   * deterministic.
   */
  allocRange(order: number, limit = Infinity): number {
    const n = 2 ** order;
    if (n > this.nrFree) return -1;
    const total = Math.min(this.frames.nrFrames, limit);
    if (total < n) return -1;
    let start = Math.ceil(this.cursor / n) * n;
    if (start + n > total) start = 0;
    for (let scanned = 0; scanned < total; scanned += n, start += n) {
      if (start + n > total) start = 0;
      if (n === 1 && this.used[start >>> 5] === 0xffffffff) {
        // Skip the rest of a full word of used frames at once.
        const skip = 31 - (start & 31);
        start += skip;
        scanned += skip;
        continue;
      }
      if (this.rangeFree(start, n)) {
        let newest = 0;
        for (let i = 0; i < n; i++) {
          this.setUsed(start + i);
          if (this.freedAt[start + i] > newest) newest = this.freedAt[start + i];
        }
        // Like Xen's alloc_heap_pages: no stale TLB entry may reach a reused frame.
        if (newest !== 0) this.flushTlbsOlderThan(newest);
        // A stale TLB entry may have written the frame while it was free: scrub again.
        for (let i = 0; i < n; i++) this.mem.release(start + i);
        this.nrFree -= n;
        this.cursor = start + n;
        return start;
      }
    }
    return -1;
  }

  /**
   * Allocates 2^order frames below `limit` to `d` (alloc_domheap_pages + assign_pages):
   * each gets the allocation reference and joins the domain's list. Returns the first
   * MFN, or -1 when no such frames are free, the domain would exceed max_pages, or it is
   * dying.
   */
  allocDomheap(d: PageOwner, order: number, limit = Infinity): number {
    const n = 2 ** order;
    if (d.isDying || d.totPages + n > d.maxPages) return -1;
    const mfn = this.allocRange(order, limit);
    if (mfn < 0) return -1;
    for (let i = 0; i < n; i++) this.assign(d, mfn + i, PGC_allocated);
    d.totPages += n;
    return mfn;
  }

  /** A Xen-heap page shared with `d` (like shared_info): Xen owns its contents. */
  allocXenheapFor(d: PageOwner): number {
    const mfn = this.allocRange(0);
    if (mfn < 0) return -1;
    this.assign(d, mfn, PGC_allocated | PGC_xen_heap);
    d.xenheapPages++;
    return mfn;
  }

  /** 2^order frames of Xen's own, owned by `owner` and on no domain's list. */
  allocXenFrames(order: number, owner: number): number {
    const mfn = this.allocRange(order);
    if (mfn < 0) return -1;
    const f = this.frames;
    for (let i = 0; i < 2 ** order; i++) {
      f.owner[mfn + i] = owner;
      f.count[mfn + i] = 1;
      f.pgc[mfn + i] = PGC_allocated | PGC_xen_heap;
    }
    return mfn;
  }

  private assign(d: PageOwner, mfn: number, pgc: number): void {
    const f = this.frames;
    f.owner[mfn] = d.domid;
    f.count[mfn] = 1;
    f.pgc[mfn] = pgc;
    f.type[mfn] = PGT_none;
    f.typeCount[mfn] = 0;
    f.typeFlags[mfn] = 0;
    f.linearPtCount[mfn] = 0;
    f.prev[mfn] = -1;
    f.next[mfn] = d.pageHead;
    if (d.pageHead >= 0) f.prev[d.pageHead] = mfn;
    d.pageHead = mfn;
  }

  /**
   * Returns a frame whose general count reached 0 to the pool (free_domheap_page):
   * off its owner's list, metadata reset, contents scrubbed.
   */
  freePage(mfn: number, owner: PageOwner | undefined): void {
    const f = this.frames;
    if (owner) {
      const prev = f.prev[mfn];
      const next = f.next[mfn];
      if (prev >= 0) f.next[prev] = next;
      else owner.pageHead = next;
      if (next >= 0) f.prev[next] = prev;
      if ((f.pgc[mfn] & PGC_xen_heap) !== 0) owner.xenheapPages--;
      else owner.totPages--;
    }
    f.owner[mfn] = OWNER_NONE;
    f.pgc[mfn] = 0;
    f.type[mfn] = PGT_none;
    f.typeCount[mfn] = 0;
    f.typeFlags[mfn] = 0;
    f.linearPtCount[mfn] = 0;
    f.next[mfn] = -1;
    f.prev[mfn] = -1;
    f.m2pLo[mfn] = M2P_INVALID;
    f.m2pHi[mfn] = M2P_INVALID;
    this.mem.release(mfn);
    this.freedAt[mfn] = this.tlbClock.tick();
    this.used[mfn >>> 5] &= ~(1 << (mfn & 31));
    this.nrFree++;
    if (owner && owner.totPages === 0 && owner.xenheapPages === 0) this.onLastPage(owner);
  }

  private rangeFree(start: number, n: number): boolean {
    for (let i = 0; i < n; i++) if (!this.isFree(start + i)) return false;
    return true;
  }

  private setUsed(mfn: number): void {
    this.used[mfn >>> 5] |= 1 << (mfn & 31);
  }
}
