// A vCPU (Xen's struct vcpu) and the guest-facing port that wraps it. Layer: hypervisor.
// The Vcpu holds architectural state (CPL, page-table bases, CR2, TLB, LDT, hypercall
// argument registers); VcpuPort is the only object guest code receives (DESIGN §1): its
// one field is private, so guest code cannot reach hypervisor state through it.

import type { Domain } from './domain.ts';
import type { MachineMemory } from './arch/memory.ts';
import { PAGE_SIZE } from './arch/memory.ts';
import type { FrameTable } from './arch/frame-table.ts';
import {
  ACCESS_READ, ACCESS_WRITE, M2P_PSEUDO_BASE, PFEC_page_present, PFEC_user_mode, PFEC_write_access,
  PageWalker, XLATE_GP, pageFaultCode, type PagingContext,
} from './arch/paging.ts';
import { hi32, lo32 } from './arch/pte.ts';
import { Tlb, type TlbClock } from './arch/tlb.ts';
import { GuestTrap, TRAP_gp_fault, TRAP_page_fault, VcpuHalted, type GuestVcpu, type HypercallArg } from './public/vcpu.ts';

/** What a vCPU needs from the hypervisor around it. */
export interface VcpuHost {
  readonly mem: MachineMemory;
  readonly frames: FrameTable;
  readonly walker: PageWalker;
  readonly tlbClock: TlbClock;
  /**
   * Offers a kernel-mode write fault on a present read-only page to the writable
   * page-table emulation; true when the store was emulated.
   */
  emulateStore(v: Vcpu, lo: number, hi: number, size: number, vlo: number, vhi: number): boolean;
  /** Runs hypercall `nr` with arguments in v.args. */
  hypercall(v: Vcpu, nr: number): number;
  /** Records a #PF for the guest (CR2 in the vCPU and in vcpu_info). */
  notePageFault(v: Vcpu, lo: number, hi: number): void;
  domainCrash(d: Domain, reason: string): void;
}

export const KERNEL_CPL = 1;
export const USER_CPL = 3;

export class Vcpu implements PagingContext {
  cpl = KERNEL_CPL;
  /** guest_table: the kernel's L4 MFN (0 = none). */
  guestTable = 0;
  /** guest_table_user: the user L4 MFN (0 = none). */
  guestTableUser = 0;
  /** The L4 the MMU walks now: guestTable in kernel mode, guestTableUser in user mode. */
  cr3 = 0;
  cr2Lo = 0;
  cr2Hi = 0;
  readonly tlb: Tlb;
  ldtBase = 0;
  ldtEnts = 0;
  /** Hypercall arguments: five 64-bit registers as (lo, hi) pairs. */
  readonly args = new Uint32Array(10);
  isUp = true;
  readonly port: VcpuPort;

  constructor(
    readonly domain: Domain,
    readonly vcpuId: number,
    readonly host: VcpuHost,
  ) {
    this.tlb = new Tlb(host.tlbClock);
    this.port = new VcpuPort(this);
  }

  /** Reloads CR3 from the base for the current mode; a CR3 load flushes the TLB. */
  reloadCr3(): void {
    this.cr3 = this.cpl === USER_CPL ? this.guestTableUser : this.guestTable;
    this.tlb.flushAll();
  }

  checkRunnable(): void {
    if (!this.domain.isAlive) {
      throw new VcpuHalted(`d${this.domain.domid}v${this.vcpuId} cannot run: domain ${this.domain.state}`);
    }
    if (!this.isUp) throw new VcpuHalted(`d${this.domain.domid}v${this.vcpuId} is down`);
  }

  /** A load of 1, 2, 4 or 8 bytes; returns the value (8 bytes: exact below 2^53). */
  load(lo: number, hi: number, size: number): number {
    this.checkRunnable();
    if ((lo & 0xfff) + size > PAGE_SIZE) return this.loadBytewise(lo, hi, size);
    const ma = this.translate(lo, hi, ACCESS_READ);
    return this.readMachine(ma, size);
  }

  /** A store of 1, 2, 4 or 8 bytes: value given as halves (vhi only for 8 bytes). */
  store(lo: number, hi: number, size: number, vlo: number, vhi: number): void {
    this.checkRunnable();
    if ((lo & 0xfff) + size > PAGE_SIZE) {
      this.storeBytewise(lo, hi, size, vlo, vhi);
      return;
    }
    const ma = this.host.walker.translate(this, lo, hi, ACCESS_WRITE, this.cpl);
    if (ma < 0) {
      const ec = pageFaultCode(ma);
      const kernelRoWrite = ec === (PFEC_page_present | PFEC_write_access);
      if (kernelRoWrite && this.host.emulateStore(this, lo, hi, size, vlo, vhi)) return;
      this.raise(ma, lo, hi);
    }
    this.writeMachine(ma, size, vlo, vhi);
  }

  /** Translates for an access, raising the fault in the guest on failure. */
  translate(lo: number, hi: number, access: number): number {
    const ma = this.host.walker.translate(this, lo, hi, access, this.cpl);
    if (ma < 0) this.raise(ma, lo, hi);
    return ma;
  }

  private raise(result: number, lo: number, hi: number): never {
    if (result === XLATE_GP) throw new GuestTrap(TRAP_gp_fault, 0, 0);
    const ec = pageFaultCode(result);
    this.cr2Lo = lo;
    this.cr2Hi = hi;
    this.host.notePageFault(this, lo, hi);
    // The U/S bit tells guest kernel (0) from guest user (1), as Xen rewrites it.
    const guestEc = (ec & ~PFEC_user_mode) | (this.cpl === USER_CPL ? PFEC_user_mode : 0);
    throw new GuestTrap(TRAP_page_fault, guestEc, (hi | 0) * 4294967296 + lo);
  }

  readMachine(ma: number, size: number): number {
    const mem = this.host.mem;
    if (ma >= M2P_PSEUDO_BASE) return this.readM2p(ma - M2P_PSEUDO_BASE, size);
    const mfn = Math.floor(ma / PAGE_SIZE);
    const off = ma % PAGE_SIZE;
    if (mfn >= mem.nrFrames) return size === 8 ? 2 ** 64 - 1 : 2 ** (size * 8) - 1; // MMIO: no device
    if (size === 4 && (off & 3) === 0) return mem.read32(mfn, off);
    if (size === 8 && (off & 3) === 0) return mem.read32(mfn, off + 4) * 4294967296 + mem.read32(mfn, off);
    let v = 0;
    for (let i = size - 1; i >= 0; i--) v = v * 256 + mem.read8(mfn, off + i);
    return v;
  }

  private writeMachine(ma: number, size: number, vlo: number, vhi: number): void {
    const mem = this.host.mem;
    const mfn = Math.floor(ma / PAGE_SIZE);
    const off = ma % PAGE_SIZE;
    if (mfn >= mem.nrFrames) return; // MMIO with no device behind it
    if (size === 4 && (off & 3) === 0) {
      mem.write32(mfn, off, vlo >>> 0);
    } else if (size === 8 && (off & 3) === 0) {
      mem.write32(mfn, off, vlo >>> 0);
      mem.write32(mfn, off + 4, vhi >>> 0);
    } else {
      for (let i = 0; i < size; i++) {
        const byte = i < 4 ? (vlo >>> (i * 8)) & 0xff : (vhi >>> ((i - 4) * 8)) & 0xff;
        mem.write8(mfn, off + i, byte);
      }
    }
  }

  private readM2p(offset: number, size: number): number {
    const f = this.host.frames;
    let v = 0;
    for (let i = size - 1; i >= 0; i--) {
      const byteIdx = offset + i;
      const entry = Math.floor(byteIdx / 8);
      const b = byteIdx % 8;
      let word: number;
      if (entry >= f.nrFrames) word = 0xffffffff;
      else word = b < 4 ? f.m2pLo[entry] : f.m2pHi[entry];
      v = v * 256 + ((word >>> ((b & 3) * 8)) & 0xff);
    }
    return v;
  }

  private loadBytewise(lo: number, hi: number, size: number): number {
    let v = 0;
    for (let i = size - 1; i >= 0; i--) {
      const [blo, bhi] = addOffset(lo, hi, i);
      v = v * 256 + this.readMachine(this.translate(blo, bhi, ACCESS_READ), 1);
    }
    return v;
  }

  /**
   * A store split across two pages: x86 commits none of it if either page faults, and
   * Xen's ptwr emulation takes only stores inside one page, so both are translated first.
   */
  private storeBytewise(lo: number, hi: number, size: number, vlo: number, vhi: number): void {
    this.translate(lo, hi, ACCESS_WRITE);
    this.translate(addLo(lo, size - 1), addHi(lo, hi, size - 1), ACCESS_WRITE);
    for (let i = 0; i < size; i++) {
      const [blo, bhi] = addOffset(lo, hi, i);
      const byte = i < 4 ? (vlo >>> (i * 8)) & 0xff : (vhi >>> ((i - 4) * 8)) & 0xff;
      this.writeMachine(this.translate(blo, bhi, ACCESS_WRITE), 1, byte, 0);
    }
  }
}

/**
 * Loads a register from a guest-supplied value. A register always holds 64 bits, so
 * anything that is not a finite number or {lo, hi} of numbers reads as 0.
 */
function setArg(a: Uint32Array, i: number, x: HypercallArg): void {
  if (typeof x === 'number') {
    const ok = Number.isFinite(x);
    a[i] = ok ? lo32(x) : 0;
    a[i + 1] = ok ? hi32(x) : 0;
  } else if (typeof x === 'object' && x !== null && typeof x.lo === 'number' && typeof x.hi === 'number') {
    a[i] = x.lo >>> 0;
    a[i + 1] = x.hi >>> 0;
  } else {
    a[i] = 0;
    a[i + 1] = 0;
  }
}

/** A virtual address from guest code: anything but a finite number is #GP, like a bad pointer. */
function vaLo(va: number): number {
  if (typeof va !== 'number' || !Number.isFinite(va)) throw new GuestTrap(TRAP_gp_fault, 0, 0);
  return lo32(va);
}

/** High half of (lo, hi) + n; use before addLo (allocation-free, for loops). */
export function addHi(lo: number, hi: number, n: number): number {
  return lo + n > 0xffffffff ? (hi + 1) >>> 0 : hi;
}

/** Low half of (lo, hi) + n. */
export function addLo(lo: number, n: number): number {
  return (lo + n) >>> 0;
}

/** (lo, hi) + n as halves, carrying into the high half. */
export function addOffset(lo: number, hi: number, n: number): [number, number] {
  const sum = lo + n;
  return sum > 0xffffffff ? [sum >>> 0, (hi + 1) >>> 0] : [sum, hi];
}

/** The object guest code holds. Its only state is a private reference to the vCPU. */
export class VcpuPort implements GuestVcpu {
  readonly #v: Vcpu;

  constructor(v: Vcpu) {
    this.#v = v;
  }

  get vcpuId(): number {
    return this.#v.vcpuId;
  }

  get cpl(): number {
    return this.#v.cpl;
  }

  load8(va: number): number {
    return this.#v.load(vaLo(va), hi32(va), 1);
  }
  load16(va: number): number {
    return this.#v.load(vaLo(va), hi32(va), 2);
  }
  load32(va: number): number {
    return this.#v.load(vaLo(va), hi32(va), 4);
  }
  load64(va: number): number {
    return this.#v.load(vaLo(va), hi32(va), 8);
  }
  store8(va: number, value: number): void {
    this.#v.store(vaLo(va), hi32(va), 1, value & 0xff, 0);
  }
  store16(va: number, value: number): void {
    this.#v.store(vaLo(va), hi32(va), 2, value & 0xffff, 0);
  }
  store32(va: number, value: number): void {
    this.#v.store(vaLo(va), hi32(va), 4, value >>> 0, 0);
  }
  store64(va: number, lo: number, hi: number): void {
    this.#v.store(vaLo(va), hi32(va), 8, lo >>> 0, hi >>> 0);
  }

  read(va: number, dst: Uint8Array): void {
    let lo = vaLo(va);
    let hi = hi32(va);
    for (let i = 0; i < dst.length; i++) {
      dst[i] = this.#v.load(lo, hi, 1);
      hi = addHi(lo, hi, 1);
      lo = addLo(lo, 1);
    }
  }

  write(va: number, src: Uint8Array): void {
    let lo = vaLo(va);
    let hi = hi32(va);
    for (let i = 0; i < src.length; i++) {
      this.#v.store(lo, hi, 1, src[i], 0);
      hi = addHi(lo, hi, 1);
      lo = addLo(lo, 1);
    }
  }

  hypercall(nr: number, a1: HypercallArg = 0, a2: HypercallArg = 0, a3: HypercallArg = 0, a4: HypercallArg = 0,
    a5: HypercallArg = 0): number {
    const v = this.#v;
    v.checkRunnable();
    if (v.cpl === USER_CPL) {
      // SYSCALL from user mode goes to the guest kernel's syscall callback, never to
      // the hypercall table; with no callback registered Xen crashes the domain.
      v.host.domainCrash(v.domain, 'syscall from user mode with no syscall callback');
      v.checkRunnable();
    }
    const a = v.args;
    setArg(a, 0, a1);
    setArg(a, 2, a2);
    setArg(a, 4, a3);
    setArg(a, 6, a4);
    setArg(a, 8, a5);
    return v.host.hypercall(v, nr);
  }

  enterUserMode(): void {
    const v = this.#v;
    v.checkRunnable();
    if (v.cpl === USER_CPL) return;
    if (v.guestTableUser === 0) {
      v.host.domainCrash(v.domain, 'return to user mode with no user page tables');
      v.checkRunnable();
    }
    v.cpl = USER_CPL;
    v.reloadCr3();
  }
}
