// Registering a PV guest's entry points (pv/callback.c, pv/misc-hypercalls.c):
// set_trap_table, set_callbacks, callback_op and stack_switch. Layer: hypervisor.
// Each checks in Xen's order and changes nothing it rejected.

import { isCanonical } from './arch/pte.ts';
import type { GuestAccess } from './guest-access.ts';
import {
  CALLBACKOP_register, CALLBACKOP_unregister, CALLBACKF_mask_events, CALLBACKTYPE_event, CALLBACKTYPE_failsafe,
  CALLBACKTYPE_nmi, CALLBACKTYPE_syscall, CALLBACKTYPE_syscall32, CALLBACKTYPE_sysenter,
} from './public/callback.ts';
import { EFAULT, EINVAL, ENOSYS } from './public/errno.ts';
import { FLAT_KERNEL_CS, TI_IF } from './public/arch-x86.ts';
import type { Vcpu } from './vcpu.ts';

/** Selector RPLs below the guest kernel's (3 for 64-bit PV) are raised to it. */
export function fixupGuestSelector(sel: number): number {
  return (sel & 3) < 3 ? (sel | 3) & 0xffff : sel & 0xffff;
}

/**
 * HYPERVISOR_set_trap_table(traps): installs trap_info entries until one with address 0.
 * A NULL list clears all 256. -EFAULT if an entry cannot be read, -EINVAL for a
 * non-canonical address; entries installed before the failure stay.
 */
export function doSetTrapTable(ga: GuestAccess, v: Vcpu, lo: number, hi: number): number {
  if (lo === 0 && hi === 0) {
    v.trapLo.fill(0);
    v.trapHi.fill(0);
    v.trapFlags.fill(0);
    v.trapCs.fill(0);
    return 0;
  }
  const w = ga.words;
  for (;;) {
    if (!ga.copyWords(v, lo, hi, 4)) return -EFAULT;
    const vector = w[0] & 0xff;
    const flags = (w[0] >>> 8) & 0xff;
    const cs = w[0] >>> 16;
    const aLo = w[2];
    const aHi = w[3];
    if (aLo === 0 && aHi === 0) return 0;
    if (!isCanonical(aHi)) return -EINVAL;
    v.trapLo[vector] = aLo;
    v.trapHi[vector] = aHi;
    v.trapFlags[vector] = flags;
    v.trapCs[vector] = fixupGuestSelector(cs);
    v.cycles += 16 * v.host.costs.byteCopied;
    const next = lo + 16;
    hi = next > 0xffffffff ? (hi + 1) >>> 0 : hi;
    lo = next >>> 0;
  }
}

/** HYPERVISOR_stack_switch(ss, sp): the kernel stack for entries from user mode. Always 0. */
export function doStackSwitch(v: Vcpu, ss: number, spLo: number, spHi: number): number {
  v.kernelSs = fixupGuestSelector(ss);
  v.kernelSp = (spHi | 0) * 4294967296 + spLo;
  return 0;
}

/**
 * callback_register: -EINVAL for a non-canonical address (checked before the type),
 * -ENOSYS for an unknown type. The event callback always masks events.
 */
export function registerCallback(v: Vcpu, type: number, flags: number, lo: number, hi: number): number {
  if (!isCanonical(hi)) return -EINVAL;
  const mask = (flags & CALLBACKF_mask_events) !== 0;
  switch (type) {
    case CALLBACKTYPE_event:
      v.eventLo = lo;
      v.eventHi = hi;
      return 0;
    case CALLBACKTYPE_failsafe:
      v.failsafeLo = lo;
      v.failsafeHi = hi;
      v.failsafeMask = mask;
      return 0;
    case CALLBACKTYPE_syscall:
      v.syscallLo = lo;
      v.syscallHi = hi;
      v.syscallMask = mask;
      return 0;
    case CALLBACKTYPE_syscall32:
    case CALLBACKTYPE_sysenter:
      // Compat entry points: recorded by Xen, never used by a 64-bit guest here.
      return 0;
    case CALLBACKTYPE_nmi:
      // The NMI callback is trap_ctxt[2] with events masked, DPL 0, the flat kernel CS.
      v.trapLo[2] = lo;
      v.trapHi[2] = hi;
      v.trapFlags[2] = TI_IF;
      v.trapCs[2] = FLAT_KERNEL_CS;
      return 0;
    default:
      return -ENOSYS;
  }
}

/** callback_unregister: only the NMI callback may be removed (-EINVAL), unknown -ENOSYS. */
export function unregisterCallback(v: Vcpu, type: number): number {
  switch (type) {
    case CALLBACKTYPE_nmi:
      v.trapLo[2] = 0;
      v.trapHi[2] = 0;
      v.trapFlags[2] = 0;
      v.trapCs[2] = 0;
      return 0;
    case CALLBACKTYPE_event:
    case CALLBACKTYPE_failsafe:
    case CALLBACKTYPE_syscall:
    case CALLBACKTYPE_syscall32:
    case CALLBACKTYPE_sysenter:
      return -EINVAL;
    default:
      return -ENOSYS;
  }
}

/** HYPERVISOR_callback_op(cmd, arg): -EFAULT on a bad argument, -ENOSYS for other cmds. */
export function doCallbackOp(ga: GuestAccess, v: Vcpu, cmd: number, lo: number, hi: number): number {
  const w = ga.words;
  switch (cmd) {
    case CALLBACKOP_register:
      if (!ga.copyWords(v, lo, hi, 4)) return -EFAULT;
      return registerCallback(v, w[0] & 0xffff, w[0] >>> 16, w[2], w[3]);
    case CALLBACKOP_unregister:
      if (!ga.copyWords(v, lo, hi, 1)) return -EFAULT;
      return unregisterCallback(v, w[0] & 0xffff);
    default:
      return -ENOSYS;
  }
}

/**
 * HYPERVISOR_set_callbacks(event, failsafe, syscall): registers all three with flags 0,
 * ignoring each result (so a non-canonical one is skipped, and the failsafe and syscall
 * "mask events" settings are cleared). Always 0.
 */
export function doSetCallbacks(v: Vcpu, a: Uint32Array): number {
  registerCallback(v, CALLBACKTYPE_event, 0, a[0], a[1]);
  registerCallback(v, CALLBACKTYPE_failsafe, 0, a[2], a[3]);
  registerCallback(v, CALLBACKTYPE_syscall, 0, a[4], a[5]);
  return 0;
}
