// Event channels (common/event_channel.c, Xen 4.17): HYPERVISOR_event_channel_op's
// dispatcher, domain set-up and tear-down, and VIRQ delivery. Layer: hypervisor. The
// dispatcher copies each argument struct in (-EFAULT), calls its worker
// (evtchn-ops.ts) and copies the whole struct back only on success; the ports live in
// evtchn-ports.ts and the 2-level bits in shared_info in event-2l.ts.

import type { Domain } from './domain.ts';
import { Evtchn2l, type EventWaker } from './event-2l.ts';
import { EvtchnOps } from './evtchn-ops.ts';
import { DomainEvtchn, ECS_RESERVED, XL_DEFAULT_MAX_EVTCHN_PORT, virqIsGlobal } from './evtchn-ports.ts';
import type { GuestAccess } from './guest-access.ts';
import type { Logger } from './log.ts';
import type { MachineMemory } from './arch/memory.ts';
import { EFAULT, EINVAL, ENOSYS, EOPNOTSUPP } from './public/errno.ts';
import * as E from './public/event-channel.ts';
import { NR_VIRQS } from './public/xen.ts';
import { addHi, addLo, type Vcpu } from './vcpu.ts';

export { DomainEvtchn };

/** What event channels need from the hypervisor. */
export interface EvtchnHost extends EventWaker {
  readonly mem: MachineMemory;
  readonly ga: GuestAccess;
  readonly log: Logger;
  domainById(domid: number): Domain | undefined;
}

/** Xen-internal (defined under __XEN__ only): the continuation of EVTCHNOP_reset. */
export const EVTCHNOP_reset_cont = 14;

/**
 * d->nr_pirqs = nr_static_irqs + extra_domU_irqs (32) for a domU; the hardware domain
 * gets arch_hwdom_irqs(), min(nr_irqs_gsi + NR_DYNAMIC_VECTORS, nr_irqs) on one pCPU.
 * This machine has one 24-pin IO-APIC (nr_irqs_gsi = 24) and nr_irqs = 208.
 */
const NR_PIRQS_DOMU = 24 + 32;
const NR_PIRQS_HWDOM = 208;

export class EventChannels {
  readonly l2: Evtchn2l;
  readonly ops: EvtchnOps;
  /** global_virq_handlers: the domain id handling each global VIRQ; -1 = the hardware domain. */
  private readonly globalVirqHandler = new Int32Array(NR_VIRQS).fill(-1);
  /** The argument struct, as 32-bit words (the largest is 28 bytes). */
  private readonly arg = new Uint32Array(8);
  private readonly resetArg = new Uint8Array(2);

  constructor(readonly host: EvtchnHost) {
    this.l2 = new Evtchn2l(host.mem, host);
    this.ops = new EvtchnOps(host, this.l2);
  }

  /**
   * evtchn_init, at domain creation: port 0 reserved, bucket 0 allocated.
   * maxEvtchnPort is createdomain's max_evtchn_port; by default Dom0 (built by Xen with
   * -1) is limited only by the 2-level ABI (4096 ports) and any other domain gets xl's
   * default of 1023, so its ports are 1..1023.
   */
  initDomain(d: Domain, maxEvtchnPort?: number): void {
    const hwdom = d.domid === 0;
    const maxPort = maxEvtchnPort ?? (hwdom ? 0x7fffffff : XL_DEFAULT_MAX_EVTCHN_PORT);
    d.evtchn = new DomainEvtchn(d.domid, d.maxVcpus, maxPort, hwdom ? NR_PIRQS_HWDOM : NR_PIRQS_DOMU);
  }

  /**
   * evtchn_destroy, from domain_kill (d is dying): closes every port from the highest
   * down to 1, turning each interdomain peer UNBOUND (naming d), and drops the global
   * VIRQs d handled. The table stays (valid, all FREE) until the domain is freed.
   */
  destroyDomain(d: Domain): void {
    const e = d.evtchn;
    if (e === null) return;
    for (let port = e.validPorts - 1; port >= 1; port--) {
      if (e.state[port] > ECS_RESERVED) this.ops.close(d, port);
    }
    for (let virq = 0; virq < NR_VIRQS; virq++) {
      if (this.globalVirqHandler[virq] === d.domid) this.globalVirqHandler[virq] = -1;
    }
  }

  /** HYPERVISOR_event_channel_op(cmd, arg). */
  call(v: Vcpu, cmd: number, lo: number, hi: number): number {
    const d = v.domain;
    const ops = this.ops;
    const a = this.arg;
    let rc: number;
    switch (cmd) {
      case E.EVTCHNOP_bind_interdomain:
        if (!this.copyIn(v, lo, hi, 3)) return -EFAULT;
        rc = ops.bindInterdomain(d, a[0] & 0xffff, a[1]);
        return rc < 0 ? rc : this.copyOut(v, lo, hi, 3, 2, rc);
      case E.EVTCHNOP_bind_virq:
        if (!this.copyIn(v, lo, hi, 3)) return -EFAULT;
        rc = ops.bindVirq(d, a[0], a[1]);
        return rc < 0 ? rc : this.copyOut(v, lo, hi, 3, 2, rc);
      case E.EVTCHNOP_bind_pirq:
        if (!this.copyIn(v, lo, hi, 3)) return -EFAULT;
        rc = ops.bindPirq(d, a[0]);
        return rc < 0 ? rc : this.copyOut(v, lo, hi, 3, 2, rc);
      case E.EVTCHNOP_close:
        if (!this.copyIn(v, lo, hi, 1)) return -EFAULT;
        return ops.close(d, a[0]);
      case E.EVTCHNOP_send:
        if (!this.copyIn(v, lo, hi, 1)) return -EFAULT;
        return ops.send(d, a[0]);
      case E.EVTCHNOP_status:
        if (!this.copyIn(v, lo, hi, 6)) return -EFAULT;
        rc = ops.status(d, a[0] & 0xffff, a[1], a);
        return rc < 0 ? rc : this.copyOut(v, lo, hi, 6, -1, 0);
      case E.EVTCHNOP_alloc_unbound:
        if (!this.copyIn(v, lo, hi, 2)) return -EFAULT;
        rc = ops.allocUnbound(d, a[0] & 0xffff, a[0] >>> 16);
        return rc < 0 ? rc : this.copyOut(v, lo, hi, 2, 1, rc);
      case E.EVTCHNOP_bind_ipi:
        if (!this.copyIn(v, lo, hi, 2)) return -EFAULT;
        rc = ops.bindIpi(d, a[0]);
        return rc < 0 ? rc : this.copyOut(v, lo, hi, 2, 1, rc);
      case E.EVTCHNOP_bind_vcpu:
        if (!this.copyIn(v, lo, hi, 2)) return -EFAULT;
        return ops.bindVcpu(d, a[0], a[1]);
      case E.EVTCHNOP_unmask:
        if (!this.copyIn(v, lo, hi, 1)) return -EFAULT;
        return ops.unmask(d, a[0]);
      case E.EVTCHNOP_reset:
      case EVTCHNOP_reset_cont:
        if (!this.host.ga.copyFrom(v, lo, hi, this.resetArg, 2)) return -EFAULT;
        return ops.reset(d, this.resetArg[0] | (this.resetArg[1] << 8), cmd === EVTCHNOP_reset_cont);
      case E.EVTCHNOP_init_control:
      case E.EVTCHNOP_expand_array:
        // The FIFO ABI is not simulated. 4.17 always has it; this is what a Xen built
        // without CONFIG_EVTCHN_FIFO (Xen 4.21) answers, and a guest falls back to 2-level.
        if (!this.copyIn(v, lo, hi, cmd === E.EVTCHNOP_init_control ? 6 : 2)) return -EFAULT;
        return -EOPNOTSUPP;
      case E.EVTCHNOP_set_priority:
        if (!this.copyIn(v, lo, hi, 2)) return -EFAULT;
        return ops.setPriority(d, a[0]);
      default:
        return -ENOSYS;
    }
  }

  /**
   * HYPERVISOR_event_channel_op_compat(op): struct evtchn_op, a command followed by its
   * argument. -EFAULT unless all 28 bytes are readable; commands 0-9 run as
   * event_channel_op on the argument inside it; any other is -ENOSYS.
   */
  callCompat(v: Vcpu, lo: number, hi: number): number {
    if (!this.copyIn(v, lo, hi, E.EVTCHN_OP.size / 4)) return -EFAULT;
    const cmd = this.arg[0];
    if (cmd > E.EVTCHNOP_unmask) return -ENOSYS;
    const at = E.EVTCHN_OP.fields.u.offset;
    return this.call(v, cmd, addLo(lo, at), addHi(lo, hi, at));
  }

  /** send_guest_vcpu_virq: a per-vCPU VIRQ to v, if v has it bound (else dropped). */
  sendVcpuVirq(v: Vcpu, virq: number): void {
    if (virqIsGlobal(virq)) throw new Error(`VIRQ ${virq} is global, not per-vCPU`);
    const e = v.domain.evtchn;
    if (e === null) return;
    const port = e.virqToEvtchn[v.vcpuId * NR_VIRQS + virq];
    if (port !== 0) this.l2.setPending(v.domain, v.vcpuId, port);
  }

  /**
   * send_guest_global_virq: a global VIRQ to d, if bound in vCPU 0's table, on the
   * port's notify vCPU (bind_vcpu moves it).
   */
  sendGuestGlobalVirq(d: Domain, virq: number): void {
    if (!virqIsGlobal(virq)) throw new Error(`VIRQ ${virq} is per-vCPU, not global`);
    const e = d.evtchn;
    if (e === null || d.vcpus.length === 0) return;
    const port = e.virqToEvtchn[virq];
    if (port !== 0) this.l2.setPending(d, e.notifyVcpu[port], port);
  }

  /** send_global_virq: a global VIRQ (CONSOLE, DOM_EXC) to its handler, by default Dom0. */
  sendGlobalVirq(virq: number): void {
    if (!virqIsGlobal(virq)) throw new Error(`VIRQ ${virq} is per-vCPU, not global`);
    const handler = this.globalVirqHandler[virq];
    const d = this.host.domainById(handler < 0 ? 0 : handler);
    if (d !== undefined) this.sendGuestGlobalVirq(d, virq);
  }

  /**
   * set_global_virq_handler (XEN_DOMCTL_set_virq_handler), 4.17: -EINVAL for a VIRQ that
   * is not global; otherwise d handles it from now on, whoever did before.
   */
  setGlobalVirqHandler(d: Domain, virq: number): number {
    if (virq >= NR_VIRQS || !virqIsGlobal(virq)) return -EINVAL;
    this.globalVirqHandler[virq] = d.domid;
    return 0;
  }

  /** port_is_valid, for SCHEDOP_poll: inside d's allocated buckets. */
  portValid(d: Domain, port: number): boolean {
    return d.evtchn !== null && port >= 0 && d.evtchn.isValid(port);
  }

  /** evtchn_port_is_pending: a usable port whose bit is set in shared_info. */
  isPending(d: Domain, port: number): boolean {
    return d.evtchn !== null && port >= 0 && d.evtchn.isUsable(port) && this.l2.pendingBit(d, port);
  }

  /** Reads the argument struct's first nWords words into this.arg. */
  private copyIn(v: Vcpu, lo: number, hi: number, nWords: number): boolean {
    const ga = this.host.ga;
    if (!ga.copyWords(v, lo, hi, nWords)) return false;
    for (let i = 0; i < nWords; i++) this.arg[i] = ga.words[i];
    return true;
  }

  /**
   * Copies the whole struct back (IN fields as read), with word `outIdx` set to `value`
   * when outIdx >= 0. Returns 0, or -EFAULT on a fault (the binding stays: Xen does not
   * undo it).
   */
  private copyOut(v: Vcpu, lo: number, hi: number, nWords: number, outIdx: number, value: number): number {
    if (outIdx >= 0) this.arg[outIdx] = value;
    for (let i = 0; i < nWords; i++) {
      if (!this.host.ga.write32(v, addLo(lo, i * 4), addHi(lo, hi, i * 4), this.arg[i])) return -EFAULT;
    }
    return 0;
  }
}
