// Guest-side helpers for Xen's trap interface, as a PV kernel's entry code uses them:
// installing the trap table and callbacks, reading the bounce frame Xen pushed, and
// returning with the iret hypercall. Layer: guests (imports only hypervisor/public/).

import { CALLBACKF_mask_events, CALLBACKOP_register } from '../../hypervisor/public/callback.ts';
import { FLAT_KERNEL_SS, FLAT_USER_CS, FLAT_USER_SS } from '../../hypervisor/public/arch-x86.ts';
import { REG_RSP, X86_EFLAGS_IF, type GuestVcpu } from '../../hypervisor/public/vcpu.ts';
import * as X from '../../hypervisor/public/xen.ts';

/** One trap_info entry: vector, DPL (0-3), whether entry masks events, handler address. */
export interface TrapEntry {
  vector: number;
  dpl: number;
  maskEvents?: boolean;
  address: number;
}

function put64(v: GuestVcpu, va: number, value: number): void {
  v.store64(va, value >>> 0, Math.floor(value / 4294967296) >>> 0);
}

function get64(v: GuestVcpu, va: number): number {
  const lo = v.load32(va);
  const hi = v.load32(va + 4);
  return (hi | 0) * 4294967296 + lo;
}

/** HYPERVISOR_set_trap_table with `entries` written at bufVa (terminated by a zero entry). */
export function setTrapTable(v: GuestVcpu, bufVa: number, entries: readonly TrapEntry[]): number {
  let at = bufVa;
  for (const e of entries) {
    v.store32(at, (e.vector & 0xff) | (((e.dpl & 3) | (e.maskEvents ? 4 : 0)) << 8) | (0xe033 << 16));
    v.store32(at + 4, 0);
    put64(v, at + 8, e.address);
    at += 16;
  }
  v.store32(at, 0);
  v.store32(at + 4, 0);
  v.store64(at + 8, 0, 0);
  return v.hypercall(X.HYPERVISOR_set_trap_table, bufVa);
}

/** callback_op(register, {type, flags, address}). */
export function registerCallback(v: GuestVcpu, bufVa: number, type: number, address: number, maskEvents = false): number {
  v.store32(bufVa, (type & 0xffff) | ((maskEvents ? CALLBACKF_mask_events : 0) << 16));
  v.store32(bufVa + 4, 0);
  put64(v, bufVa + 8, address);
  return v.hypercall(X.HYPERVISOR_callback_op, CALLBACKOP_register, bufVa);
}

/** HYPERVISOR_stack_switch: the kernel stack for entries from user mode. */
export function stackSwitch(v: GuestVcpu, sp: number): number {
  return v.hypercall(X.HYPERVISOR_stack_switch, FLAT_KERNEL_SS, sp);
}

/** The interrupted context as the bounce frame at RSP records it. */
export interface BounceFrame {
  errorCode: number;
  rip: number;
  cs: number;
  /** evtchn_upcall_mask at the time of the trap (bits 32-39 of the CS slot). */
  savedMask: number;
  rflags: number;
  rsp: number;
  ss: number;
  /** Whether the trap came from user mode (CS RPL 3). */
  fromUser: boolean;
}

/** Reads the frame Xen pushed at RSP; `hasErrorCode` for vectors that have one. */
export function readBounceFrame(v: GuestVcpu, hasErrorCode: boolean): BounceFrame {
  const sp = v.reg(REG_RSP);
  const at = sp + 16 + (hasErrorCode ? 8 : 0);
  const cs = v.load32(at + 8);
  return {
    errorCode: hasErrorCode ? v.load32(sp + 16) : -1,
    rip: get64(v, at),
    cs,
    savedMask: v.load8(at + 12),
    rflags: v.load32(at + 16),
    rsp: get64(v, at + 24),
    ss: v.load32(at + 32),
    fromUser: (cs & 3) === 3,
  };
}

/** Where an iret goes: an address (or a frame's saved RIP) with its ring. */
export interface IretTarget {
  rip: number;
  user: boolean;
  rsp: number;
  /** Whether events are enabled after the return (RFLAGS.IF). */
  eventsOn: boolean;
  rax?: number;
}

/**
 * Builds an iret_context below RSP and makes HYPERVISOR_iret. Never returns: control
 * goes to the target (a fresh entry point or a saved RIP).
 */
export function xenIret(v: GuestVcpu, t: IretTarget): never {
  pushIretContext(v, t);
  v.hypercall(X.HYPERVISOR_iret);
  throw new Error('HYPERVISOR_iret returned');
}

/** Writes an iret_context for `t` below RSP and points RSP at it. */
export function pushIretContext(v: GuestVcpu, t: IretTarget): void {
  const sp = Math.floor((v.reg(REG_RSP) - 72) / 16) * 16;
  put64(v, sp, t.rax ?? 0);
  put64(v, sp + 8, 0);
  put64(v, sp + 16, 0);
  put64(v, sp + 24, 0);
  put64(v, sp + 32, t.rip);
  put64(v, sp + 40, t.user ? FLAT_USER_CS : 0xe030);
  put64(v, sp + 48, t.eventsOn ? X86_EFLAGS_IF | 2 : 2);
  put64(v, sp + 56, t.rsp);
  put64(v, sp + 64, t.user ? FLAT_USER_SS : FLAT_KERNEL_SS);
  v.setReg(REG_RSP, sp);
}

/**
 * Returns from a bounce frame at RSP (popping RCX, R11 and the error code) to the
 * interrupted context, with `rax` in RAX.
 */
export function iretFromFrame(v: GuestVcpu, hasErrorCode: boolean, rax?: number): never {
  const f = readBounceFrame(v, hasErrorCode);
  v.setReg(REG_RSP, v.reg(REG_RSP) + 16 + (hasErrorCode ? 8 : 0) + 40);
  return xenIret(v, { rip: f.rip, user: f.fromUser, rsp: f.rsp, eventsOn: f.savedMask === 0, rax });
}
