// copy_from_guest / copy_to_guest: how the hypervisor reads and writes hypercall
// arguments in guest memory, through the calling vCPU's page tables and TLB. Layer:
// hypervisor. A pointer into Xen's range or a non-canonical one, an unmapped page, or a
// write to a read-only page makes the copy fail; the caller returns -EFAULT.

import { PAGE_SIZE, type MachineMemory } from './arch/memory.ts';
import { ACCESS_READ, ACCESS_WRITE, type PageWalker } from './arch/paging.ts';
import { addOffset, type Vcpu } from './vcpu.ts';

/**
 * Xen's __addr_ok for 64-bit PV: below 2^47, or at or above HYPERVISOR_VIRT_END
 * (0xFFFF880000000000). Everything between is non-canonical or Xen's.
 */
export function addrOk(hi: number): boolean {
  return hi < 0x8000 || hi >= 0xffff8800;
}

export class GuestAccess {
  /** Words of the last copyWords call. */
  readonly words = new Uint32Array(16);
  private readonly bytes = new Uint8Array(64);

  constructor(
    private readonly mem: MachineMemory,
    private readonly walker: PageWalker,
  ) {}

  /** Machine address for a hypervisor access at (lo, hi), or -1. */
  private xlate(v: Vcpu, lo: number, hi: number, access: number): number {
    if (!addrOk(hi)) return -1;
    const ma = this.walker.translate(v, lo, hi, access, 0);
    return ma < 0 ? -1 : ma;
  }

  /**
   * Copies `nWords` 32-bit words from guest (lo, hi) into this.words. False if any byte
   * is unreachable. Allocation-free: this is the path every batched request takes.
   */
  copyWords(v: Vcpu, lo: number, hi: number, nWords: number): boolean {
    const len = nWords * 4;
    if ((lo & 3) === 0 && (lo & 0xfff) + len <= PAGE_SIZE) {
      const ma = this.xlate(v, lo, hi, ACCESS_READ);
      if (ma < 0) return false;
      const mfn = Math.floor(ma / PAGE_SIZE);
      const off = ma % PAGE_SIZE;
      const w = this.words;
      if (mfn >= this.mem.nrFrames) {
        w.fill(0xffffffff, 0, nWords);
        return true;
      }
      for (let i = 0; i < nWords; i++) w[i] = this.mem.read32(mfn, off + i * 4);
      return true;
    }
    if (!this.copyFrom(v, lo, hi, this.bytes, len)) return false;
    const b = this.bytes;
    for (let i = 0; i < nWords; i++) {
      this.words[i] = (b[i * 4] | (b[i * 4 + 1] << 8) | (b[i * 4 + 2] << 16) | (b[i * 4 + 3] << 24)) >>> 0;
    }
    return true;
  }

  /** Copies len bytes from guest (lo, hi) into dst[0..len). False on a fault. */
  copyFrom(v: Vcpu, lo: number, hi: number, dst: Uint8Array, len: number): boolean {
    let done = 0;
    while (done < len) {
      const ma = this.xlate(v, lo, hi, ACCESS_READ);
      if (ma < 0) return false;
      const chunk = Math.min(len - done, PAGE_SIZE - (lo & 0xfff));
      const mfn = Math.floor(ma / PAGE_SIZE);
      if (mfn >= this.mem.nrFrames) dst.fill(0xff, done, done + chunk);
      else this.mem.readBytes(mfn, ma % PAGE_SIZE, dst, done, chunk);
      done += chunk;
      [lo, hi] = addOffset(lo, hi, chunk);
    }
    return true;
  }

  /**
   * Copies len bytes of src, from srcOff, to guest (lo, hi). False on a fault (earlier
   * pages written).
   */
  copyTo(v: Vcpu, lo: number, hi: number, src: Uint8Array, len: number, srcOff = 0): boolean {
    let done = 0;
    while (done < len) {
      const ma = this.xlate(v, lo, hi, ACCESS_WRITE);
      if (ma < 0) return false;
      const chunk = Math.min(len - done, PAGE_SIZE - (lo & 0xfff));
      const mfn = Math.floor(ma / PAGE_SIZE);
      if (mfn < this.mem.nrFrames) this.mem.writeBytes(mfn, ma % PAGE_SIZE, src, srcOff + done, chunk);
      done += chunk;
      [lo, hi] = addOffset(lo, hi, chunk);
    }
    return true;
  }

  /** Writes one 32-bit value to the guest. False on a fault. */
  write32(v: Vcpu, lo: number, hi: number, value: number): boolean {
    if ((lo & 3) === 0) {
      const ma = this.xlate(v, lo, hi, ACCESS_WRITE);
      if (ma < 0) return false;
      const mfn = Math.floor(ma / PAGE_SIZE);
      if (mfn < this.mem.nrFrames) this.mem.write32(mfn, ma % PAGE_SIZE, value >>> 0);
      return true;
    }
    const b = this.bytes;
    b[0] = value & 0xff; b[1] = (value >>> 8) & 0xff; b[2] = (value >>> 16) & 0xff; b[3] = (value >>> 24) & 0xff;
    return this.copyTo(v, lo, hi, b, 4);
  }

  /** Writes one 64-bit value given as halves. False on a fault. */
  write64(v: Vcpu, lo: number, hi: number, vlo: number, vhi: number): boolean {
    if ((lo & 7) === 0) {
      const ma = this.xlate(v, lo, hi, ACCESS_WRITE);
      if (ma < 0) return false;
      const mfn = Math.floor(ma / PAGE_SIZE);
      if (mfn < this.mem.nrFrames) {
        this.mem.write32(mfn, ma % PAGE_SIZE, vlo >>> 0);
        this.mem.write32(mfn, ma % PAGE_SIZE + 4, vhi >>> 0);
      }
      return true;
    }
    const b = this.bytes;
    for (let i = 0; i < 4; i++) {
      b[i] = (vlo >>> (i * 8)) & 0xff;
      b[i + 4] = (vhi >>> (i * 8)) & 0xff;
    }
    return this.copyTo(v, lo, hi, b, 8);
  }
}
