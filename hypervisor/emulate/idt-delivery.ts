// Trap-and-emulate mode: exceptions, software interrupts and virtual APIC interrupts
// delivered through the guest kernel's own IDT, and the iretq that returns from them.
// Layer: hypervisor (emulate/). The kernel runs in real ring 1 but believes it is in
// ring 0, so the VMM delivers as the kernel expects (arch/native-frames.ts with
// kernelRing 1): an interrupted kernel's CS and SS carry RPL 0 and its RFLAGS show the
// virtual IF; entries from user mode take the TSS's RSP0; `int n` from user mode needs
// a DPL 3 gate. An interrupt gate clears the virtual IF (the real IF stays set: the
// VMM runs guests with interrupts on). The kernel's iretq to a ring-0 frame #GPs in
// ring 1; the VMM catches it and emulates the return. An iretq to ring 3 runs natively.

import { KIND_FAULT, KIND_INTERRUPT, KIND_SOFTINT, KIND_SYSCALL } from '../arch/cpu.ts';
import type { CostTable } from '../arch/costs.ts';
import { GATE_DPL_DENIED, GATE_FAILED, GATE_INTERRUPT, deliverViaIdt } from '../arch/native-frames.ts';
import {
  REG_RSP, TRAP_gp_fault, TRAP_invalid_op, X86_EFLAGS_IF, X86_EFLAGS_IOPL, X86_EFLAGS_MBS,
} from '../public/vcpu.ts';
import { KERNEL_CPL, USER_CPL, type Vcpu } from '../vcpu.ts';

/** The RFLAGS bits iretq may load (64-bit mode). */
const IRET_FLAGS = 0x3f7fd5;

export class IdtDelivery {
  constructor(
    private readonly costs: CostTable,
    private readonly crash: (v: Vcpu, reason: string) => void,
  ) {}

  /** The virtual APIC's vector when its interrupt is pending and the effective IF is set. */
  pendingInterrupt(v: Vcpu): number {
    const ev = v.emu!;
    if (!ev.lapic.poll(v.tsc())) return -1;
    // In user mode the real IF decides (iretq to ring 3 ran natively); in the kernel, the virtual IF.
    const enabled = v.cpl === USER_CPL ? (v.rflags & X86_EFLAGS_IF) !== 0 : ev.vif;
    return enabled ? ev.lapic.vector : -1;
  }

  /**
   * Delivers through the guest's IDT into real ring 1. A refused `int n` becomes
   * #GP((n << 3) | 2) pointing at the instruction; an unusable IDT, TSS or stack is a
   * triple fault, which crashes the domain (false).
   */
  deliver(v: Vcpu, kind: number, vector: number, errorCode: number, retLo: number, retHi: number): boolean {
    const ev = v.emu!;
    if (kind === KIND_SYSCALL) {
      // Only a PV kernel registers a syscall callback; natively there is none.
      kind = KIND_FAULT;
      vector = TRAP_invalid_op;
      errorCode = -1;
    }
    const fromUser = v.cpl === USER_CPL;
    const effectiveIf = fromUser ? (v.rflags & X86_EFLAGS_IF) !== 0 : ev.vif;
    const flags = fromUser ? v.rflags : ((v.rflags & ~X86_EFLAGS_IF) | (ev.vif ? X86_EFLAGS_IF : 0)) >>> 0;
    let type = deliverViaIdt(v, kind, vector, errorCode, retLo, retHi, KERNEL_CPL, flags, KERNEL_CPL);
    if (type === GATE_DPL_DENIED) {
      v.contexts.setRetry(retLo, vector);
      type = deliverViaIdt(v, KIND_FAULT, TRAP_gp_fault, (vector << 3) | 2, retLo, retHi, KERNEL_CPL, flags, KERNEL_CPL);
    }
    if (type === GATE_FAILED) {
      this.crash(v, `triple fault delivering vector ${vector}`);
      return false;
    }
    // The VMM building the guest's frame (the CPU charged the exception or interrupt
    // that brought it in); an `int n` also traps into the VMM first.
    v.cycles += this.costs.bounce + (kind === KIND_SOFTINT ? this.costs.trap : 0);
    ev.vif = type === GATE_INTERRUPT ? false : effectiveIf;
    if (kind === KIND_INTERRUPT) {
      ev.lapic.accept();
      v.domain.emu!.interrupts++;
    }
    return true;
  }

  /**
   * The #GP of an iretq to a ring-0 frame from the kernel (real ring 1): pop CS, RFLAGS
   * and RSP, stay in ring 1, and take the virtual IF from the popped RFLAGS. False for
   * anything else (a #GP the guest gets, e.g. user mode returning to ring 0).
   */
  iret(v: Vcpu, cs: number, rflags: number, rsp: number): boolean {
    if (v.cpl !== KERNEL_CPL || (cs & 3) !== 0) return false;
    v.cycles += this.costs.trap + this.costs.emulate;
    const ev = v.emu!;
    ev.vif = (rflags & X86_EFLAGS_IF) !== 0;
    const keep = X86_EFLAGS_IF | X86_EFLAGS_IOPL; // ring 1 with IOPL 0: the real ones stay
    v.rflags = ((v.rflags & keep) | (rflags & ~keep & IRET_FLAGS) | X86_EFLAGS_MBS) >>> 0;
    v.regs[REG_RSP] = rsp;
    v.domain.emu!.iretsEmulated++;
    return true;
  }
}
