// Small helpers for 64-bit quantities in guest memory, as JS numbers (signed, exact
// below 2^53: addresses, tokens, counters). Layer: guests.

import type { GuestVcpu } from '../../hypervisor/public/vcpu.ts';

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
