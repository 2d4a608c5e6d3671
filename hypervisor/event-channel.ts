// Event channels (common/event_channel.c and event_2l.c): HYPERVISOR_event_channel_op
// and the 2-level delivery ABI in shared_info and vcpu_info. Layer: hypervisor.
// STUB: the interface the rest of the hypervisor uses; the implementation follows.

import type { Domain } from './domain.ts';
import type { GuestAccess } from './guest-access.ts';
import type { Logger } from './log.ts';
import type { MachineMemory } from './arch/memory.ts';
import { ENOSYS } from './public/errno.ts';
import type { Vcpu } from './vcpu.ts';

/** What event channels need from the hypervisor. */
export interface EvtchnHost {
  readonly mem: MachineMemory;
  readonly ga: GuestAccess;
  readonly log: Logger;
  domainById(domid: number): Domain | undefined;
  /** vcpu_kick: v has an upcall pending; wake it if it is blocked. */
  vcpuKick(v: Vcpu): void;
  /** A port of d became pending: wake vCPUs of d polling it (SCHEDOP_poll). */
  wakePollers(d: Domain, port: number): void;
}

/** A domain's event-channel state (struct domain's evtchn fields). */
export class DomainEvtchn {}

export class EventChannels {
  constructor(readonly host: EvtchnHost) {}

  /** evtchn_init: at domain creation (port 0 is reserved). */
  initDomain(d: Domain): void {
    d.evtchn = new DomainEvtchn();
  }

  /** evtchn_destroy: at domain destruction, every port is closed. */
  destroyDomain(d: Domain): void {
    d.evtchn = null;
  }

  /** HYPERVISOR_event_channel_op(cmd, arg). */
  call(_v: Vcpu, _cmd: number, _lo: number, _hi: number): number {
    return -ENOSYS;
  }

  /** send_guest_vcpu_virq: a per-vCPU VIRQ (TIMER) to v, if bound. */
  sendVcpuVirq(_v: Vcpu, _virq: number): void {}

  /** send_global_virq: a global VIRQ (CONSOLE, DOM_EXC) to the domain that bound it. */
  sendGlobalVirq(_virq: number): void {}

  /** Whether `port` of d is a valid port (for SCHEDOP_poll's check). */
  portValid(_d: Domain, _port: number): boolean {
    return false;
  }

  /** Whether `port` of d is pending in shared_info. */
  isPending(_d: Domain, _port: number): boolean {
    return false;
  }

}
