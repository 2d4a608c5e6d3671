// Interrupts and exceptions as x86-64 hardware delivers them, through the IDT, and the
// iretq instruction that returns from them. Layer: hypervisor/arch. Used by the bare
// machine (a native kernel at CPL 0) and by the trap-and-emulate hypervisor, which
// delivers a deprivileged kernel's virtual interrupts through that kernel's own IDT.

import { ACCESS_READ, ACCESS_WRITE } from './paging.ts';
import { PAGE_SIZE } from './memory.ts';
import { hi32, lo32, s64 } from './pte.ts';
import { KIND_SOFTINT, type Cpu } from './cpu.ts';
import { REG_RSP, TRAP_gp_fault, X86_EFLAGS_IF, X86_EFLAGS_IOPL, X86_EFLAGS_MBS } from '../public/vcpu.ts';

/** Linux's flat selectors: kernel code/data, user code/data (RPL 3). */
export const KERNEL_CS = 0x10;
export const KERNEL_SS = 0x18;
export const USER_CS = 0x33;
export const USER_SS = 0x2b;

export const GATE_INTERRUPT = 0xe;
export const GATE_TRAP = 0xf;
/** Result of deliverViaIdt when the CPU could not deliver (the caller resets/crashes). */
export const GATE_FAILED = -1;
/** Result when `int n` was refused by the gate's DPL: #GP((n << 3) | 2) must follow. */
export const GATE_DPL_DENIED = -2;

/** An implicit supervisor access (IDT, TSS, interrupt stack): machine address or -1. */
function supervisor(cpu: Cpu, lo: number, hi: number, access: number): number {
  const ma = cpu.host.walker.translate(cpu, lo >>> 0, hi >>> 0, access, 0);
  return ma < 0 ? -1 : ma;
}

function write64(cpu: Cpu, at: number, value: number): boolean {
  const ma = supervisor(cpu, lo32(at), hi32(at), ACCESS_WRITE);
  if (ma < 0) return false;
  const mem = cpu.host.mem;
  const mfn = Math.floor(ma / PAGE_SIZE);
  if (mfn >= mem.nrFrames) return false;
  mem.write32(mfn, ma % PAGE_SIZE, lo32(value));
  mem.write32(mfn, ma % PAGE_SIZE + 4, hi32(value));
  return true;
}

/**
 * Delivers `vector` through the IDT into ring `targetCpl`, pushing SS, RSP, `flags`,
 * CS, the return address (retLo, retHi) and the error code (errorCode >= 0). Sets
 * cpu.entryLo/Hi, CPL and RSP. Returns the gate type (the caller clears IF for an
 * interrupt gate), GATE_DPL_DENIED for a refused `int n`, or GATE_FAILED when the IDT,
 * TSS or stack cannot be used (a triple fault on real hardware).
 *
 * `kernelRing` is the ring the kernel really runs in while believing it is ring 0 (0 on
 * the bare machine; 1 under trap-and-emulate, whose VMM delivers as the kernel expects):
 * the `int n` DPL check, the RPL of the interrupted CS and SS, and the TSS stack slot
 * all see ring 0 in its place.
 */
export function deliverViaIdt(cpu: Cpu, kind: number, vector: number, errorCode: number, retLo: number, retHi: number,
  targetCpl: number, flags: number, kernelRing = 0): number {
  if (vector * 16 + 15 > cpu.idtrLimit) return GATE_FAILED;
  const base = s64(cpu.idtrLo, cpu.idtrHi) + vector * 16;
  // A gate's first quadword is not an address: read it as halves (a double would round it).
  const lo = read32(cpu, base);
  const hi = read32(cpu, base + 4);
  const offHi = read32(cpu, base + 8);
  if (Number.isNaN(lo) || Number.isNaN(hi) || Number.isNaN(offHi)) return GATE_FAILED;
  const attr = (hi >>> 8) & 0xff;
  const type = attr & 0xf;
  const dpl = (attr >>> 5) & 3;
  if ((attr & 0x80) === 0 || (type !== GATE_INTERRUPT && type !== GATE_TRAP)) return GATE_FAILED;
  const oldCpl = cpu.cpl;
  const seenCpl = oldCpl === kernelRing ? 0 : oldCpl;
  const seenTarget = targetCpl === kernelRing ? 0 : targetCpl;
  if (kind === KIND_SOFTINT && seenCpl > dpl) return GATE_DPL_DENIED;
  const offLo = ((lo & 0xffff) | (hi & 0xffff0000)) >>> 0;
  let rsp = cpu.regs[REG_RSP];
  const oldRsp = rsp;
  if (targetCpl < oldCpl) {
    // The stack for the inner ring comes from the TSS (RSP0 at offset 4, RSP1 at 12).
    const tss = s64(cpu.trLo, cpu.trHi) + 4 + seenTarget * 8;
    rsp = read64Unaligned(cpu, tss);
    if (Number.isNaN(rsp)) return GATE_FAILED;
  }
  rsp = Math.floor(rsp / 16) * 16;
  const oldSs = seenCpl === 3 ? USER_SS : KERNEL_SS | seenCpl;
  const oldCs = seenCpl === 3 ? USER_CS : KERNEL_CS | seenCpl;
  const words = errorCode >= 0 ? 6 : 5;
  const frame = [oldSs, oldRsp, flags, oldCs, s64(retLo, retHi), errorCode];
  for (let i = 0; i < words; i++) {
    rsp -= 8;
    if (!write64(cpu, rsp, frame[i])) return GATE_FAILED;
  }
  cpu.regs[REG_RSP] = rsp;
  cpu.cpl = targetCpl;
  cpu.entryLo = offLo;
  cpu.entryHi = offHi;
  return type;
}

function read64Unaligned(cpu: Cpu, at: number): number {
  const lo = read32(cpu, at);
  const hi = read32(cpu, at + 4);
  return Number.isNaN(lo) || Number.isNaN(hi) ? NaN : s64(lo, hi);
}

function read32(cpu: Cpu, at: number): number {
  const ma = supervisor(cpu, lo32(at), hi32(at), ACCESS_READ);
  if (ma < 0 || (ma & 3) !== 0) return NaN;
  const mfn = Math.floor(ma / PAGE_SIZE);
  return mfn < cpu.host.mem.nrFrames ? cpu.host.mem.read32(mfn, ma % PAGE_SIZE) : NaN;
}

/**
 * iretq: pops RIP, CS, RFLAGS, RSP and SS at the current privilege. It may return to
 * the same or an outer ring only (#GP otherwise, unless the CPU's host emulates the
 * return, as a trap-and-emulate VMM does for its deprivileged kernel); IF and IOPL
 * change only when CPL allows it. Never returns into its caller.
 */
export function iretq(cpu: Cpu): never {
  cpu.checkRunnable();
  cpu.cycles += cpu.host.costs.iret;
  for (;;) {
    const sp = cpu.regs[REG_RSP];
    const rip = loadS64(cpu, sp);
    const cs = cpu.load(lo32(sp + 8), hi32(sp + 8), 8);
    const rflags = cpu.load(lo32(sp + 16), hi32(sp + 16), 8);
    const rsp = loadS64(cpu, sp + 24);
    const newCpl = cs & 3;
    if (newCpl < cpu.cpl) {
      if (cpu.host.emulateIret(cpu, cs, rflags, rsp)) return cpu.transfer(lo32(rip), hi32(rip));
      cpu.fault(TRAP_gp_fault, cs & 0xfffc);
      continue;
    }
    const iopl = (cpu.rflags & X86_EFLAGS_IOPL) >>> 12;
    let keep = 0;
    if (cpu.cpl > iopl) keep |= X86_EFLAGS_IF;
    if (cpu.cpl !== 0) keep |= X86_EFLAGS_IOPL;
    cpu.rflags = ((cpu.rflags & keep) | (rflags & ~keep & 0x3f7fd5) | X86_EFLAGS_MBS) >>> 0;
    cpu.cpl = newCpl;
    cpu.regs[REG_RSP] = rsp;
    const ripLo = lo32(rip);
    const ripHi = hi32(rip);
    return cpu.transfer(ripLo, ripHi);
  }
}

function loadS64(cpu: Cpu, at: number): number {
  const lo = cpu.load(lo32(at), hi32(at), 4);
  const hi = cpu.load(lo32(at + 4), hi32(at + 4), 4);
  return s64(lo, hi);
}
