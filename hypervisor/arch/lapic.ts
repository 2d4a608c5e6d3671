// The local APIC's timer, as an x2APIC programs it through MSRs: one-shot, periodic and
// TSC-deadline modes, and the interrupt-request bit that makes a second edge arriving
// while one is still pending a lost interrupt. Layer: hypervisor/arch. Used by the bare
// machine and by the trap-and-emulate hypervisor's virtual APIC.
//
// Time is the TSC (cycles at the machine's clock rate). The timer is evaluated lazily:
// poll(now) counts the edges that have happened since the last poll, so a CPU that
// polls at each boundary sees exactly the interrupts, and losses, that hardware would.

import {
  MSR_IA32_TSC_DEADLINE, MSR_X2APIC_CUR_COUNT, MSR_X2APIC_DIV_CONF, MSR_X2APIC_EOI, MSR_X2APIC_INIT_COUNT,
  MSR_X2APIC_LVT_TIMER,
} from './msr.ts';

/** LVT timer: bit 16 masks it; bits 17-18 choose the mode. */
export const LVT_MASKED = 1 << 16;
export const LVT_MODE_ONESHOT = 0;
export const LVT_MODE_PERIODIC = 1 << 17;
export const LVT_MODE_TSC_DEADLINE = 2 << 17;
const LVT_MODE_MASK = 3 << 17;

/** The divide configuration register's value for each divisor is decoded by divisorOf. */
export function divisorOf(dcr: number): number {
  const v = (dcr & 3) | ((dcr >>> 1) & 4);
  return v === 7 ? 1 : 2 << v;
}

export class LocalApicTimer {
  /** LVT timer register: vector, mask, mode (masked at reset). */
  lvt = LVT_MASKED;
  initialCount = 0;
  divideConfig = 0;
  /** TSC-deadline mode: the deadline in cycles (0 = disarmed). */
  deadline = 0;
  /** The next edge in cycles, Infinity when none is due. */
  nextEdge = Infinity;
  /** Period in cycles in periodic mode (0 otherwise). */
  private period = 0;
  /** The timer's interrupt-request bit: an edge that has not been delivered yet. */
  pending = false;
  /** The in-service bit: delivered, and no EOI yet (the vector is not delivered again till then). */
  inService = false;
  /** Edges raised, and edges lost because the previous one was still pending. */
  raised = 0;
  lost = 0;

  get mode(): number {
    return this.lvt & LVT_MODE_MASK;
  }

  get vector(): number {
    return this.lvt & 0xff;
  }

  /**
   * Counts the edges up to `now` (cycles); returns true if an interrupt can be delivered
   * (requested, unmasked, and the vector not in service). A masked timer's edges raise
   * nothing.
   */
  poll(now: number): boolean {
    if (now >= this.nextEdge) {
      let n = 1;
      if (this.period > 0) {
        n = Math.floor((now - this.nextEdge) / this.period) + 1;
        this.nextEdge += n * this.period;
      } else {
        this.nextEdge = Infinity;
        if (this.mode === LVT_MODE_TSC_DEADLINE) this.deadline = 0;
      }
      if ((this.lvt & LVT_MASKED) === 0) {
        this.raised += n;
        this.lost += this.pending ? n : n - 1;
        this.pending = true;
      }
    }
    return this.deliverable;
  }

  /** Requested, unmasked, and not in service. */
  get deliverable(): boolean {
    return this.pending && !this.inService && (this.lvt & LVT_MASKED) === 0;
  }

  /** The CPU takes the interrupt: the request bit moves to in-service. */
  accept(): void {
    this.pending = false;
    this.inService = true;
  }

  /** Reads an APIC timer MSR; undefined when `msr` is not one. */
  rdmsr(msr: number, now: number): number | undefined {
    switch (msr) {
      case MSR_X2APIC_LVT_TIMER: return this.lvt;
      case MSR_X2APIC_INIT_COUNT: return this.initialCount;
      case MSR_X2APIC_DIV_CONF: return this.divideConfig;
      case MSR_X2APIC_CUR_COUNT: return this.currentCount(now);
      case MSR_IA32_TSC_DEADLINE: return this.mode === LVT_MODE_TSC_DEADLINE ? this.deadline : 0;
      case MSR_X2APIC_EOI: return undefined; // write-only
      default: return undefined;
    }
  }

  /** Writes an APIC timer MSR at time `now` (cycles); false when `msr` is not one. */
  wrmsr(msr: number, value: number, now: number): boolean {
    switch (msr) {
      case MSR_X2APIC_LVT_TIMER: {
        const oldMode = this.mode;
        this.lvt = value & (0xff | LVT_MASKED | LVT_MODE_MASK);
        if (this.mode !== oldMode) this.disarm(); // a mode change stops the timer
        return true;
      }
      case MSR_X2APIC_INIT_COUNT:
        this.initialCount = value >>> 0;
        if (this.mode !== LVT_MODE_TSC_DEADLINE) this.arm(now);
        return true;
      case MSR_X2APIC_DIV_CONF:
        this.divideConfig = value & 0xb;
        return true;
      case MSR_IA32_TSC_DEADLINE:
        // Ignored outside TSC-deadline mode, as on hardware.
        if (this.mode !== LVT_MODE_TSC_DEADLINE) return true;
        this.deadline = value;
        this.nextEdge = value === 0 ? Infinity : value;
        this.period = 0;
        return true;
      case MSR_X2APIC_EOI:
        this.inService = false;
        return true;
      default:
        return false;
    }
  }

  private arm(now: number): void {
    if (this.initialCount === 0) {
      this.disarm();
      return;
    }
    const span = this.initialCount * divisorOf(this.divideConfig);
    this.nextEdge = now + span;
    this.period = this.mode === LVT_MODE_PERIODIC ? span : 0;
  }

  private disarm(): void {
    this.nextEdge = Infinity;
    this.period = 0;
    this.deadline = 0;
  }

  private currentCount(now: number): number {
    if (this.nextEdge === Infinity || this.mode === LVT_MODE_TSC_DEADLINE) return 0;
    return Math.max(0, Math.ceil((this.nextEdge - now) / divisorOf(this.divideConfig)));
  }
}
