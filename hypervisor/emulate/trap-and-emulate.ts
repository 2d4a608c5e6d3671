// Trap-and-emulate mode (DESIGN §1): the per-domain mode in which an unpatched native
// kernel runs in real ring 1 under the hypervisor, every privileged instruction it
// executes trapping to be emulated. Layer: hypervisor (emulate/). This is the VMM's
// face to the rest of the hypervisor: Hypervisor's CpuHost methods hand an emulated
// domain's vCPUs to it. The guest is not Xen-aware: its hypercall instruction is #UD,
// it has no event-channel upcalls, no Xen timers and no VIRQs; its interrupts come from
// a virtual local APIC timer per vCPU through its own IDT.

import type { Domain } from '../domain.ts';
import type { Hypervisor } from '../hypervisor.ts';
import { emitConsoleLine } from '../console-io.ts';
import { TRAP_invalid_op } from '../public/vcpu.ts';
import type { Vcpu } from '../vcpu.ts';
import { IdtDelivery } from './idt-delivery.ts';
import { EmulatedPrivOps } from './priv-insn.ts';
import { ShadowPaging } from './shadow.ts';
import { EmuDomain, EmuVcpu } from './state.ts';

const MAX_UD_RETRIES = 1000;

export class TrapAndEmulate {
  readonly shadow: ShadowPaging;
  readonly privOps: EmulatedPrivOps;
  readonly delivery: IdtDelivery;

  constructor(private readonly hv: Hypervisor) {
    this.shadow = new ShadowPaging(hv.walker, hv.costs, () => hv.listDomains());
    this.privOps = new EmulatedPrivOps(hv, this.shadow);
    this.delivery = new IdtDelivery(hv.costs, (v, why) => hv.domainCrash(v.domain, why));
  }

  /**
   * Makes d an emulated domain over memory p2m (PFN → MFN): its COM1, and for each vCPU
   * the virtual state, guest-physical paging with a fresh shadow epoch, and no Xen
   * periodic timer.
   */
  attach(d: Domain, p2m: Float64Array): EmuDomain {
    const hv = this.hv;
    const emu = new EmuDomain(p2m, (text) => emitConsoleLine(hv, d.domid, `(d${d.domid}) ${text}`));
    d.emu = emu;
    for (const v of d.vcpus) {
      v.emu = new EmuVcpu((when) => hv.sched.wake(v, when));
      v.p2m = p2m;
      v.timers.periodNs = 0;
    }
    this.shadow.newEpoch(d);
    return emu;
  }

  /** The domain is being destroyed: no wake-up may fire for its vCPUs. */
  detach(d: Domain): void {
    for (const v of d.vcpus) if (v.emu !== null) this.hv.sched.timers.stop(v.emu.wakeTimer);
  }

  /** A hypercall instruction: the guest is not Xen-aware, so it is #UD (and retried on iret). */
  hypercall(v: Vcpu): number {
    for (let tries = 0; ; tries++) {
      if (tries >= MAX_UD_RETRIES) v.crash(`a hypercall faulted ${tries} times`);
      v.fault(TRAP_invalid_op, -1);
    }
  }

  privOp(v: Vcpu, op: number, a: number, b: number, c: number): number {
    return this.privOps.execute(v, op, a, b, c);
  }

  deliver(v: Vcpu, kind: number, vector: number, errorCode: number, retLo: number, retHi: number): boolean {
    return this.delivery.deliver(v, kind, vector, errorCode, retLo, retHi);
  }

  pendingInterrupt(v: Vcpu): number {
    return this.delivery.pendingInterrupt(v);
  }

  iret(v: Vcpu, cs: number, rflags: number, rsp: number): boolean {
    return this.delivery.iret(v, cs, rflags, rsp);
  }

  pageTableWrite(v: Vcpu): void {
    this.shadow.writeTrap(v);
  }

  shadowFill(v: Vcpu, n: number): void {
    this.shadow.fill(v, n);
  }
}
