// A direct-mapped TLB per vCPU: virtual page → machine frame and the permissions the
// walk found. Layer: hypervisor/arch. Entries go stale exactly as on x86: a change to
// the page tables is seen only after a flush (INVLPG, a CR3 load, a flush hypercall).

const TLB_SHIFT = 6;
export const TLB_ENTRIES = 1 << TLB_SHIFT;
const TLB_MASK = TLB_ENTRIES - 1;

// Permission bits of an entry: the AND of RW and US over the walk, NX over the walk, and
// whether the leaf entry's Dirty bit has been set (a write must walk once to set it).
export const TLB_RW = 1;
export const TLB_US = 2;
export const TLB_NX = 4;
export const TLB_DIRTY = 8;

/**
 * Xen's TLB clock: every full flush and every freed page takes a tick, so a page can be
 * handed out again only after each TLB that might still map it has been flushed.
 */
export class TlbClock {
  private value = 1;
  tick(): number {
    return this.value++;
  }

  /** Moves the clock on by `ticks` (a long-running machine, for tests of wrap-around). */
  advance(ticks: number): void {
    this.value += ticks;
  }
}

export class Tlb {
  /** Virtual page number (bits 12-47), -1 when the slot is empty. */
  readonly vpn = new Float64Array(TLB_ENTRIES).fill(-1);
  readonly mfn = new Float64Array(TLB_ENTRIES);
  readonly perm = new Uint8Array(TLB_ENTRIES);
  flushes = 0;
  /** Entries filled by page walks (TLB misses that succeeded). */
  fills = 0;
  /** Clock tick of the last full flush. */
  flushedAt = 0;

  constructor(private readonly clock: TlbClock) {}

  static vpnOf(lo: number, hi: number): number {
    return (hi & 0xffff) * 0x100000 + (lo >>> 12);
  }

  static slotOf(lo: number): number {
    return (lo >>> 12) & TLB_MASK;
  }

  /** Slot holding `vpn`, or -1. */
  lookup(lo: number, vpn: number): number {
    const slot = (lo >>> 12) & TLB_MASK;
    return this.vpn[slot] === vpn ? slot : -1;
  }

  fill(lo: number, vpn: number, mfn: number, perm: number): void {
    const slot = (lo >>> 12) & TLB_MASK;
    this.fills++;
    this.vpn[slot] = vpn;
    this.mfn[slot] = mfn;
    this.perm[slot] = perm;
  }

  flushAll(): void {
    this.vpn.fill(-1);
    this.flushes++;
    this.flushedAt = this.clock.tick();
  }

  /** INVLPG: drops the entry for one virtual page. */
  flushOne(lo: number, hi: number): void {
    const slot = (lo >>> 12) & TLB_MASK;
    if (this.vpn[slot] === Tlb.vpnOf(lo, hi)) this.vpn[slot] = -1;
  }

  invalidateSlot(slot: number): void {
    this.vpn[slot] = -1;
  }
}
