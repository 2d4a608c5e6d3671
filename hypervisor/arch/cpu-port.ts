// The object guest code holds (DESIGN §1): a GuestVcpu whose one field is a private
// reference to its CPU, so guest code cannot reach hypervisor state through it. It
// turns the guest's JS values into register-sized operands and forwards. Layer:
// hypervisor/arch.

import { addHi, addLo, Cpu, PRIV_CLI, PRIV_HLT, PRIV_IN, PRIV_INVLPG, PRIV_LGDT, PRIV_LIDT, PRIV_LTR, PRIV_OUT,
  PRIV_RDMSR, PRIV_READ_CR2, PRIV_READ_CR3, PRIV_STI, PRIV_WBINVD, PRIV_WRITE_CR3, PRIV_WRMSR } from './cpu.ts';
import { iretq } from './native-frames.ts';
import { hi32, lo32 } from './pte.ts';
import { TRAP_gp_fault, type GuestVcpu, type HypercallArg } from '../public/vcpu.ts';

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

/** A register-sized operand from guest code: anything but a finite number is 0. */
function num(x: number): number {
  return typeof x === 'number' && Number.isFinite(x) ? Math.trunc(x) : 0;
}

export class CpuPort implements GuestVcpu {
  readonly #c: Cpu;

  constructor(c: Cpu) {
    this.#c = c;
  }

  get vcpuId(): number {
    return this.#c.cpuId;
  }

  get cpl(): number {
    return this.#c.cpl;
  }

  /** A virtual address from guest code: anything but a finite number is #GP, like a bad pointer. */
  #va(va: number): number {
    if (typeof va !== 'number' || !Number.isFinite(va)) {
      this.#c.fault(TRAP_gp_fault, 0);
      return 0;
    }
    return lo32(va);
  }

  load8(va: number): number {
    return this.#c.load(this.#va(va), hi32(va), 1);
  }
  load16(va: number): number {
    return this.#c.load(this.#va(va), hi32(va), 2);
  }
  load32(va: number): number {
    return this.#c.load(this.#va(va), hi32(va), 4);
  }
  load64(va: number): number {
    return this.#c.load(this.#va(va), hi32(va), 8);
  }
  store8(va: number, value: number): void {
    this.#c.store(this.#va(va), hi32(va), 1, num(value) & 0xff, 0);
  }
  store16(va: number, value: number): void {
    this.#c.store(this.#va(va), hi32(va), 2, num(value) & 0xffff, 0);
  }
  store32(va: number, value: number): void {
    this.#c.store(this.#va(va), hi32(va), 4, num(value) >>> 0, 0);
  }
  store64(va: number, lo: number, hi: number): void {
    this.#c.store(this.#va(va), hi32(va), 8, num(lo) >>> 0, num(hi) >>> 0);
  }

  read(va: number, dst: Uint8Array): void {
    let lo = this.#va(va);
    let hi = hi32(va);
    for (let i = 0; i < dst.length; i++) {
      dst[i] = this.#c.load(lo, hi, 1);
      hi = addHi(lo, hi, 1);
      lo = addLo(lo, 1);
    }
  }

  write(va: number, src: Uint8Array): void {
    let lo = this.#va(va);
    let hi = hi32(va);
    for (let i = 0; i < src.length; i++) {
      this.#c.store(lo, hi, 1, src[i], 0);
      hi = addHi(lo, hi, 1);
      lo = addLo(lo, 1);
    }
  }

  reg(r: number): number {
    return Number.isInteger(r) && r >= 0 && r < 16 ? this.#c.regs[r] : 0;
  }

  setReg(r: number, value: number): void {
    if (Number.isInteger(r) && r >= 0 && r < 16) this.#c.regs[r] = num(value);
  }

  compute(cycles: number): void {
    this.#c.checkRunnable();
    const n = num(cycles);
    if (n > 0) this.#c.cycles += n;
  }

  rdtsc(): number {
    return this.#c.tsc();
  }

  hypercall(nr: number, a1: HypercallArg = 0, a2: HypercallArg = 0, a3: HypercallArg = 0, a4: HypercallArg = 0,
    a5: HypercallArg = 0): number {
    const a = this.#c.args;
    setArg(a, 0, a1);
    setArg(a, 2, a2);
    setArg(a, 4, a3);
    setArg(a, 6, a4);
    setArg(a, 8, a5);
    return this.#c.hypercall(num(nr));
  }

  cli(): void {
    this.#c.privileged(PRIV_CLI, 0, 0, 0);
  }
  sti(): void {
    this.#c.privileged(PRIV_STI, 0, 0, 0);
  }
  pushf(): number {
    return this.#c.pushf();
  }
  popf(flags: number): void {
    this.#c.popf(num(flags));
  }
  hlt(): void {
    this.#c.privileged(PRIV_HLT, 0, 0, 0);
  }
  readCr2(): number {
    return this.#c.privileged(PRIV_READ_CR2, 0, 0, 0);
  }
  readCr3(): number {
    return this.#c.privileged(PRIV_READ_CR3, 0, 0, 0);
  }
  writeCr3(value: number): void {
    this.#c.privileged(PRIV_WRITE_CR3, lo32(num(value)), hi32(num(value)), 0);
  }
  invlpg(va: number): void {
    this.#c.privileged(PRIV_INVLPG, this.#va(va), hi32(va), 0);
  }
  lgdt(va: number): void {
    this.#c.privileged(PRIV_LGDT, this.#va(va), hi32(va), 0);
  }
  lidt(va: number): void {
    this.#c.privileged(PRIV_LIDT, this.#va(va), hi32(va), 0);
  }
  ltr(va: number): void {
    this.#c.privileged(PRIV_LTR, this.#va(va), hi32(va), 0);
  }
  in(port: number, size: number): number {
    return this.#c.privileged(PRIV_IN, num(port) & 0xffff, num(size), 0);
  }
  out(port: number, size: number, value: number): void {
    this.#c.privileged(PRIV_OUT, num(port) & 0xffff, num(size), num(value) >>> 0);
  }
  rdmsr(msr: number): number {
    return this.#c.privileged(PRIV_RDMSR, num(msr) >>> 0, 0, 0);
  }
  wrmsr(msr: number, value: number): void {
    this.#c.privileged(PRIV_WRMSR, num(msr) >>> 0, lo32(num(value)), hi32(num(value)));
  }
  wbinvd(): void {
    this.#c.privileged(PRIV_WBINVD, 0, 0, 0);
  }
  iretq(): never {
    return iretq(this.#c);
  }
}
