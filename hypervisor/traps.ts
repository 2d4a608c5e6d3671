// Delivering exceptions, software interrupts and event upcalls to a PV guest kernel, as
// Xen does (pv/traps.c pv_inject_event, x86_64/entry.S create_bounce_frame, traps.c
// do_general_protection). Layer: hypervisor. The guest's virtual IDT is its trap table
// (set_trap_table); a bounce frame is built on the guest kernel stack and the vCPU enters
// the handler in kernel mode, with events masked if the trap or callback asks for it.

import { KIND_FAULT, KIND_INTERRUPT, KIND_SOFTINT, KIND_SYSCALL } from './arch/cpu.ts';
import { hi32, lo32, s64 } from './arch/pte.ts';
import type { GuestAccess } from './guest-access.ts';
import type { MachineMemory } from './arch/memory.ts';
import {
  FLAT_KERNEL_CS, FLAT_KERNEL_SS, FLAT_USER_CS, FLAT_USER_SS, HYPERVISOR_VIRT_END, HYPERVISOR_VIRT_START, TI_DPL_MASK,
  TI_IF,
} from './public/arch-x86.ts';
import { REG_RCX, REG_R11, REG_RSP, TRAP_gp_fault, X86_EFLAGS_IF, X86_EFLAGS_IOPL } from './public/vcpu.ts';
import { eventsNeedDelivery, setUpcallMask, upcallMask } from './vcpu-info.ts';
import { VMASST_TYPE_architectural_iopl } from './public/xen.ts';
import { KERNEL_CPL, USER_CPL, type Vcpu } from './vcpu.ts';

/** The pseudo-vector pendingInterrupt() returns for an event upcall. */
export const VECTOR_EVENT_UPCALL = 256;

/** RFLAGS bits Xen clears on entry to a handler: TF, NT, RF, VM, AC. */
const ENTRY_CLEAR = (1 << 8) | (1 << 14) | (1 << 16) | (1 << 17) | (1 << 18);

/** Can be `int n`'d from this mode: DPL >= 1 from the guest kernel, DPL 3 from user mode. */
function permitSoftint(flags: number, v: Vcpu): boolean {
  return (flags & TI_DPL_MASK) >= (v.cpl === USER_CPL ? 3 : 1);
}

export class PvTraps {
  /** Bounces by kind, for statistics. */
  bounces = 0;

  constructor(
    private readonly mem: MachineMemory,
    private readonly ga: GuestAccess,
    private readonly crash: (v: Vcpu, reason: string) => void,
  ) {}

  /** An upcall is due: evtchn_upcall_pending set and the vCPU's mask clear. */
  pendingInterrupt(v: Vcpu): number {
    return eventsNeedDelivery(this.mem, v) ? VECTOR_EVENT_UPCALL : -1;
  }

  /**
   * Delivers to the guest kernel. A fault or software interrupt goes through the trap
   * table; `int n` goes through Xen's #GP path unless n is 0x80 with a handler (the
   * fast path), 3 or 4; an upcall goes to the event callback. False if the domain was
   * crashed (no handler, or a bad kernel stack).
   */
  deliver(v: Vcpu, kind: number, vector: number, errorCode: number, retLo: number, retHi: number): boolean {
    if (kind === KIND_INTERRUPT) {
      return this.bounce(v, v.eventLo, v.eventHi, -1, true, retLo, retHi, 'event callback');
    }
    if (kind === KIND_SYSCALL) {
      return this.bounce(v, v.syscallLo, v.syscallHi, -1, v.syscallMask, retLo, retHi, 'syscall callback');
    }
    if (kind === KIND_SOFTINT && vector !== 3 && vector !== 4) {
      const flags = v.trapFlags[vector];
      if (vector === 0x80 && (v.trapLo[0x80] !== 0 || v.trapHi[0x80] !== 0)) {
        // Xen's int80 direct trap: straight to the handler through the gate Xen set up,
        // no DPL check and no entry into Xen (so no bounce to pay for).
        return this.bounceTrap(v, 0x80, -1, retLo, retHi, true);
      }
      if (!permitSoftint(flags, v)) {
        // The IDT gate (DPL 0) refused it: #GP with the IDT error code, pointing at the
        // int instruction so that an iret executes it again.
        v.contexts.setRetry(retLo, vector);
        return this.bounceTrap(v, TRAP_gp_fault, (vector << 3) | 2, retLo, retHi);
      }
    }
    if (kind === KIND_FAULT || kind === KIND_SOFTINT) return this.bounceTrap(v, vector, errorCode, retLo, retHi);
    return false;
  }

  private bounceTrap(v: Vcpu, vector: number, errorCode: number, retLo: number, retHi: number,
    direct = false): boolean {
    const mask = (v.trapFlags[vector] & TI_IF) !== 0;
    return this.bounce(v, v.trapLo[vector], v.trapHi[vector], errorCode, mask, retLo, retHi, `trap ${vector}`, direct);
  }

  /**
   * create_bounce_frame: enter kernel mode (kernel page tables and kernel_sp when coming
   * from user mode), align the stack, push the frame, mask events if asked, and jump.
   */
  private bounce(v: Vcpu, lo: number, hi: number, errorCode: number, mask: boolean, retLo: number, retHi: number,
    what: string, direct = false): boolean {
    this.bounces++;
    if (!direct) v.cycles += v.host.costs.bounce;
    const oldMask = upcallMask(this.mem, v);
    const rsp = v.regs[REG_RSP];
    let cs: number;
    let ss: number;
    let base: number;
    if (v.cpl === USER_CPL) {
      v.cpl = KERNEL_CPL;
      v.reloadCr3();
      base = v.kernelSp;
      cs = FLAT_USER_CS;
      ss = FLAT_USER_SS;
    } else {
      base = rsp;
      cs = FLAT_KERNEL_CS & ~3; // an interrupted kernel context is marked by RPL 0
      ss = FLAT_KERNEL_SS;
    }
    const b = s64((lo32(base) & ~0xf) >>> 0, hi32(base));
    if (b > s64(lo32(HYPERVISOR_VIRT_START), hi32(HYPERVISOR_VIRT_START)) &&
      b < s64(lo32(HYPERVISOR_VIRT_END), hi32(HYPERVISOR_VIRT_END)) + 64) {
      this.crash(v, `${what}: kernel stack 0x${b.toString(16)} is in Xen's range`);
      return false;
    }
    const words = errorCode >= 0 ? 8 : 7;
    const s = b - words * 8;
    const iopl = v.domain.vmAssistEnabled(VMASST_TYPE_architectural_iopl) ? v.viopl << 12 : 0;
    const flags = ((v.rflags & ~(X86_EFLAGS_IF | X86_EFLAGS_IOPL)) | iopl | (oldMask !== 0 ? 0 : X86_EFLAGS_IF)) >>> 0;
    let at = s;
    let ok = this.put(v, at, lo32(v.regs[REG_RCX]), hi32(v.regs[REG_RCX])) &&
      this.put(v, at += 8, lo32(v.regs[REG_R11]), hi32(v.regs[REG_R11]));
    if (ok && errorCode >= 0) ok = this.put(v, at += 8, errorCode >>> 0, 0);
    ok = ok && this.put(v, at += 8, retLo, retHi) && this.put(v, at += 8, cs, oldMask & 0xff) &&
      this.put(v, at += 8, flags, 0) && this.put(v, at += 8, lo32(rsp), hi32(rsp)) && this.put(v, at += 8, ss, 0);
    if (!ok) {
      this.crash(v, `${what}: fault writing the bounce frame at 0x${s.toString(16)}`);
      return false;
    }
    if (lo === 0 && hi === 0) {
      this.crash(v, `${what}: no handler registered`);
      return false;
    }
    if (mask) setUpcallMask(this.mem, v, 1);
    v.regs[REG_RSP] = s;
    v.rflags = (v.rflags & ~ENTRY_CLEAR) >>> 0;
    v.entryLo = lo;
    v.entryHi = hi;
    return true;
  }

  private put(v: Vcpu, at: number, lo: number, hi: number): boolean {
    return this.ga.write64(v, lo32(at), hi32(at), lo, hi);
  }
}
