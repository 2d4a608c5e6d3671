// Machine memory: 4 KiB frames numbered by MFN, backed by host memory only once written.
// Layer: hypervisor/arch (the simulated hardware). Knows nothing of owners or types;
// the frame table (frame-table.ts) keeps those.
//
// Backing comes from slabs of SLAB_FRAMES frames; frameSlot[mfn] is 0 for a frame never
// written (it reads as zeros) or 1 + the index of its slot. A released frame gives its slot
// back, so host memory follows the frames in use, not the size of the machine.

export const PAGE_SHIFT = 12;
export const PAGE_SIZE = 4096;
const WORDS_PER_PAGE = PAGE_SIZE / 4;
const SLAB_SHIFT = 6;
const SLAB_FRAMES = 1 << SLAB_SHIFT;
const SLAB_MASK = SLAB_FRAMES - 1;

export class MachineMemory {
  readonly nrFrames: number;
  private readonly frameSlot: Int32Array;
  private readonly slabs32: Uint32Array[] = [];
  private readonly slabs8: Uint8Array[] = [];
  private freeSlots: Int32Array = new Int32Array(64);
  private nrFreeSlots = 0;
  private nrSlots = 0;

  constructor(nrFrames: number) {
    if (!Number.isInteger(nrFrames) || nrFrames <= 0 || nrFrames > 0x7fffffff) {
      throw new RangeError(`machine frames must be an integer in 1..2^31-1, not ${nrFrames}`);
    }
    this.nrFrames = nrFrames;
    this.frameSlot = new Int32Array(nrFrames);
  }

  /** True once the frame has host memory behind it. */
  isBacked(mfn: number): boolean {
    return this.frameSlot[mfn] !== 0;
  }

  /** Number of frames that currently have host memory. */
  get backedFrames(): number {
    return this.nrSlots - this.nrFreeSlots;
  }

  /** Host bytes held: slabs plus the slot map. */
  get hostBytes(): number {
    return this.slabs8.length * SLAB_FRAMES * PAGE_SIZE + this.frameSlot.byteLength + this.freeSlots.byteLength;
  }

  /** Reads the 32-bit little-endian word at byte offset `off` (4-aligned) of frame `mfn`. */
  read32(mfn: number, off: number): number {
    const slot = this.frameSlot[mfn] - 1;
    // `!(slot >= 0)` also catches NaN: a frame outside the machine reads as zeros.
    if (!(slot >= 0)) return 0;
    return this.slabs32[slot >>> SLAB_SHIFT][((slot & SLAB_MASK) * WORDS_PER_PAGE) + (off >>> 2)];
  }

  /** Writes a 32-bit word at byte offset `off` (4-aligned) of frame `mfn`. */
  write32(mfn: number, off: number, value: number): void {
    let slot = this.frameSlot[mfn] - 1;
    if (!(slot >= 0)) {
      if (value === 0) return;
      slot = this.back(mfn);
    }
    this.slabs32[slot >>> SLAB_SHIFT][((slot & SLAB_MASK) * WORDS_PER_PAGE) + (off >>> 2)] = value;
  }

  read8(mfn: number, off: number): number {
    const slot = this.frameSlot[mfn] - 1;
    if (!(slot >= 0)) return 0;
    return this.slabs8[slot >>> SLAB_SHIFT][((slot & SLAB_MASK) * PAGE_SIZE) + off];
  }

  write8(mfn: number, off: number, value: number): void {
    let slot = this.frameSlot[mfn] - 1;
    if (!(slot >= 0)) {
      if ((value & 0xff) === 0) return;
      slot = this.back(mfn);
    }
    this.slabs8[slot >>> SLAB_SHIFT][((slot & SLAB_MASK) * PAGE_SIZE) + off] = value;
  }

  /** Copies `len` bytes from frame `mfn` at `off` into dst[dstOff..]. Stays inside the frame. */
  readBytes(mfn: number, off: number, dst: Uint8Array, dstOff: number, len: number): void {
    const slot = this.frameSlot[mfn] - 1;
    if (!(slot >= 0)) {
      dst.fill(0, dstOff, dstOff + len);
      return;
    }
    const base = (slot & SLAB_MASK) * PAGE_SIZE + off;
    dst.set(this.slabs8[slot >>> SLAB_SHIFT].subarray(base, base + len), dstOff);
  }

  /** Copies `len` bytes from src[srcOff..] into frame `mfn` at `off`. Stays inside the frame. */
  writeBytes(mfn: number, off: number, src: Uint8Array, srcOff: number, len: number): void {
    let slot = this.frameSlot[mfn] - 1;
    if (!(slot >= 0)) slot = this.back(mfn);
    const base = (slot & SLAB_MASK) * PAGE_SIZE + off;
    this.slabs8[slot >>> SLAB_SHIFT].set(src.subarray(srcOff, srcOff + len), base);
  }

  /** Zeroes a frame (Xen's clear_page): an unbacked frame already reads as zeros. */
  clearFrame(mfn: number): void {
    this.release(mfn);
  }

  /** Copies a whole frame (Xen's copy_page). */
  copyFrame(dst: number, src: number): void {
    const s = this.frameSlot[src] - 1;
    if (!(s >= 0)) {
      this.release(dst);
      return;
    }
    let d = this.frameSlot[dst] - 1;
    if (!(d >= 0)) d = this.back(dst);
    const from = (s & SLAB_MASK) * PAGE_SIZE;
    const to = (d & SLAB_MASK) * PAGE_SIZE;
    this.slabs8[d >>> SLAB_SHIFT].set(this.slabs8[s >>> SLAB_SHIFT].subarray(from, from + PAGE_SIZE), to);
  }

  /** Drops a frame's backing (scrubbing it): it reads as zeros until written again. */
  release(mfn: number): void {
    const slot = this.frameSlot[mfn] - 1;
    if (!(slot >= 0)) return;
    const base = (slot & SLAB_MASK) * PAGE_SIZE;
    this.slabs8[slot >>> SLAB_SHIFT].fill(0, base, base + PAGE_SIZE);
    this.frameSlot[mfn] = 0;
    if (this.nrFreeSlots === this.freeSlots.length) {
      const grown = new Int32Array(this.freeSlots.length * 2);
      grown.set(this.freeSlots);
      this.freeSlots = grown;
    }
    this.freeSlots[this.nrFreeSlots++] = slot;
  }

  private back(mfn: number): number {
    if (!(mfn >= 0 && mfn < this.nrFrames)) throw new RangeError(`write to frame ${mfn} outside the machine`);
    let slot: number;
    if (this.nrFreeSlots > 0) {
      slot = this.freeSlots[--this.nrFreeSlots];
    } else {
      slot = this.nrSlots++;
      if ((slot >>> SLAB_SHIFT) === this.slabs8.length) {
        const buf = new ArrayBuffer(SLAB_FRAMES * PAGE_SIZE);
        this.slabs8.push(new Uint8Array(buf));
        this.slabs32.push(new Uint32Array(buf));
      }
    }
    this.frameSlot[mfn] = slot + 1;
    return slot;
  }
}
