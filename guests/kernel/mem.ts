// Small helpers for 64-bit quantities in guest memory, as JS numbers (signed, exact
// below 2^53: addresses, tokens, counters). Layer: guests.

import { REG_RAX, REG_RSP, type GuestVcpu } from '../../hypervisor/public/vcpu.ts';

export function get64(cpu: GuestVcpu, va: number): number {
  const lo = cpu.load32(va);
  const hi = cpu.load32(va + 4);
  return (hi | 0) * 4294967296 + lo;
}

export function put64(cpu: GuestVcpu, va: number, value: number): void {
  cpu.store64(va, value >>> 0, Math.floor(value / 4294967296) >>> 0);
}

/** Zeroes the page at `va`. */
export function zeroPage(cpu: GuestVcpu, va: number): void {
  for (let off = 0; off < 4096; off += 8) cpu.store64(va + off, 0, 0);
}

/** Copies a page, 32 bits at a time (exact for any contents). */
export function copyPage(cpu: GuestVcpu, dst: number, src: number): void {
  for (let off = 0; off < 4096; off += 4) cpu.store32(dst + off, cpu.load32(src + off));
}

const X86_EFLAGS_IF = 1 << 9;

/**
 * iretq to (rip, rsp) in ring 3 (`user`) or the kernel's ring (`cs`, `ss`), with RAX
 * set: builds the five-word frame below RSP. Never returns.
 */
export function iretqTo(cpu: GuestVcpu, rip: number, rsp: number, cs: number, ss: number, interruptsOn: boolean,
  rax: number): never {
  const sp = Math.floor((cpu.reg(REG_RSP) - 64) / 16) * 16;
  put64(cpu, sp, rip);
  put64(cpu, sp + 8, cs);
  put64(cpu, sp + 16, (interruptsOn ? X86_EFLAGS_IF : 0) | 2);
  put64(cpu, sp + 24, rsp);
  put64(cpu, sp + 32, ss);
  cpu.setReg(REG_RSP, sp);
  cpu.setReg(REG_RAX, rax);
  return cpu.iretq();
}
