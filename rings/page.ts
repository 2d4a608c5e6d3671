// A side's view of one shared 4 KiB page, as the ring protocols (io/ring.h, the console
// and XenStore byte rings) touch it: little-endian loads and stores at byte offsets, and
// the barriers as explicit calls. rings/ layer: imports only hypervisor/public/.
//
// The barriers are no-ops in a single-threaded simulator, but the protocol code calls
// them exactly where ring.h puts them (xen_wmb, xen_rmb, xen_mb), so it reads like
// ring.h and stays correct if a view ever stands for memory another thread writes.

import type { GuestVcpu } from '../hypervisor/public/vcpu.ts';

/** io/ring.h: ring protocols and hypercall interfaces always use 4 KiB pages. */
export const XEN_PAGE_SHIFT = 12;
/** 1 << XEN_PAGE_SHIFT: the bytes of a shared page. */
export const RING_PAGE_BYTES = 1 << XEN_PAGE_SHIFT;

/** Little-endian integer loads and stores at byte offsets. Values are unsigned. */
export interface ByteAccess {
  read8(off: number): number;
  read16(off: number): number;
  read32(off: number): number;
  write8(off: number, value: number): void;
  write16(off: number, value: number): void;
  write32(off: number, value: number): void;
}

/**
 * One shared page as one side sees it. Offsets are within the page (0..4095); an access
 * outside it is a bug in the caller. Through a guest's mapping an access may fault
 * (delivered to the guest by its MMU).
 */
export interface PageView extends ByteAccess {
  /** Copies `len` bytes at `off` into private memory `dst` from `dstOff`. */
  copyOut(off: number, dst: ByteView, dstOff: number, len: number): void;
  /** Copies `len` bytes of private memory `src` from `srcOff` into the page at `off`. */
  copyIn(off: number, src: ByteView, srcOff: number, len: number): void;
  /** xen_wmb: earlier stores become visible before later stores. */
  wmb(): void;
  /** xen_rmb: earlier loads complete before later loads. */
  rmb(): void;
  /** xen_mb: a full barrier, stores before loads included. */
  mb(): void;
}

/**
 * Private bytes of the side that owns them, with the same accessors as a page: where a
 * message is copied before anything reads it (RING_COPY_REQUEST), or built before use.
 */
export class ByteView implements ByteAccess {
  private readonly dv: DataView;
  /**
   * The same bytes as u32 words when they start 4-byte aligned (else empty), for
   * word-at-a-time copies: a copy moves bytes, so host byte order does not matter.
   */
  readonly words: Uint32Array;

  /** Views `bytes` (the view is bounded to it: an access outside throws RangeError). */
  constructor(readonly bytes: Uint8Array) {
    this.dv = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
    this.words = bytes.byteOffset % 4 === 0
      ? new Uint32Array(bytes.buffer, bytes.byteOffset, bytes.byteLength >>> 2)
      : new Uint32Array(0);
  }

  /** A zeroed buffer of `size` bytes. */
  static ofSize(size: number): ByteView {
    return new ByteView(new Uint8Array(size));
  }

  read8(off: number): number {
    return this.dv.getUint8(off);
  }

  read16(off: number): number {
    return this.dv.getUint16(off, true);
  }

  read32(off: number): number {
    return this.dv.getUint32(off, true);
  }

  write8(off: number, value: number): void {
    this.dv.setUint8(off, value);
  }

  write16(off: number, value: number): void {
    this.dv.setUint16(off, value, true);
  }

  write32(off: number, value: number): void {
    this.dv.setUint32(off, value, true);
  }
}

/**
 * A page held as bytes: the hypervisor's (or a back end's) view of a machine frame, or a
 * page-file image. `bytes` must be exactly one page; it may be a window on a larger buffer.
 */
export class BytesPage extends ByteView implements PageView {
  constructor(bytes: Uint8Array) {
    if (bytes.byteLength !== RING_PAGE_BYTES) {
      throw new RangeError(`a page view needs ${RING_PAGE_BYTES} bytes, not ${bytes.byteLength}`);
    }
    super(bytes);
  }

  /** A fresh zeroed page. */
  static zeroed(): BytesPage {
    return new BytesPage(new Uint8Array(RING_PAGE_BYTES));
  }

  copyOut(off: number, dst: ByteView, dstOff: number, len: number): void {
    checkRange(off, len);
    copyBytes(this, off, dst, dstOff, len);
  }

  copyIn(off: number, src: ByteView, srcOff: number, len: number): void {
    checkRange(off, len);
    copyBytes(src, srcOff, this, off, len);
  }

  wmb(): void {}
  rmb(): void {}
  mb(): void {}
}

/**
 * A page as a guest has it mapped at virtual address `va`: every access is a load or a
 * store through the guest's vCPU, so it is translated by the guest's page tables and a
 * missing or read-only mapping faults into the guest, as it would on the real machine.
 */
export class GuestPage implements PageView {
  constructor(
    private readonly v: GuestVcpu,
    readonly va: number,
  ) {
    if (va % RING_PAGE_BYTES !== 0) throw new RangeError(`a guest page view needs a page-aligned address, not ${va}`);
  }

  read8(off: number): number {
    return this.v.load8(this.va + checkOffset(off, 1));
  }

  read16(off: number): number {
    return this.v.load16(this.va + checkOffset(off, 2));
  }

  read32(off: number): number {
    return this.v.load32(this.va + checkOffset(off, 4)) >>> 0;
  }

  write8(off: number, value: number): void {
    this.v.store8(this.va + checkOffset(off, 1), value & 0xff);
  }

  write16(off: number, value: number): void {
    this.v.store16(this.va + checkOffset(off, 2), value & 0xffff);
  }

  write32(off: number, value: number): void {
    this.v.store32(this.va + checkOffset(off, 4), value >>> 0);
  }

  // Word-sized loads and stores where the offsets allow, as a kernel's memcpy would.
  copyOut(off: number, dst: ByteView, dstOff: number, len: number): void {
    checkRange(off, len);
    let i = 0;
    if ((off & 3) === 0) for (; i + 4 <= len; i += 4) dst.write32(dstOff + i, this.v.load32(this.va + off + i));
    for (; i < len; i++) dst.write8(dstOff + i, this.v.load8(this.va + off + i));
  }

  copyIn(off: number, src: ByteView, srcOff: number, len: number): void {
    checkRange(off, len);
    let i = 0;
    if ((off & 3) === 0) for (; i + 4 <= len; i += 4) this.v.store32(this.va + off + i, src.read32(srcOff + i));
    for (; i < len; i++) this.v.store8(this.va + off + i, src.read8(srcOff + i));
  }

  wmb(): void {}
  rmb(): void {}
  mb(): void {}
}

/**
 * Copies len bytes between two views of host memory (offsets already checked against
 * the page): four words at a time when everything is word-aligned.
 */
function copyBytes(src: ByteView, srcOff: number, dst: ByteView, dstOff: number, len: number): void {
  if (((srcOff | dstOff | len) & 3) === 0) {
    const sw = src.words;
    const dw = dst.words;
    const n = len >>> 2;
    const s = srcOff >>> 2;
    const d = dstOff >>> 2;
    if (s + n <= sw.length && d + n <= dw.length) {
      let i = 0;
      for (; i + 4 <= n; i += 4) {
        dw[d + i] = sw[s + i];
        dw[d + i + 1] = sw[s + i + 1];
        dw[d + i + 2] = sw[s + i + 2];
        dw[d + i + 3] = sw[s + i + 3];
      }
      for (; i < n; i++) dw[d + i] = sw[s + i];
      return;
    }
  }
  const sb = src.bytes;
  const db = dst.bytes;
  if (dstOff < 0 || dstOff + len > db.length || srcOff < 0 || srcOff + len > sb.length) {
    throw new RangeError(`a copy of ${len} bytes from ${srcOff} to ${dstOff} leaves its buffer`);
  }
  for (let i = 0; i < len; i++) db[dstOff + i] = sb[srcOff + i];
}

function checkOffset(off: number, size: number): number {
  if (!(off >= 0 && off + size <= RING_PAGE_BYTES)) throw new RangeError(`offset ${off} is outside the page`);
  return off;
}

function checkRange(off: number, len: number): void {
  if (!(off >= 0 && len >= 0 && off + len <= RING_PAGE_BYTES)) {
    throw new RangeError(`bytes ${off}..${off + len} are outside the page`);
  }
}
