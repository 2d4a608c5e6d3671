// The workers behind HYPERVISOR_event_channel_op (common/event_channel.c, Xen 4.17):
// one method per sub-op, checking in Xen's order — domain lookup (-ESRCH), port
// allocation or validity, state, permission — and changing nothing they reject. Layer:
// hypervisor. Argument decoding and copy-out are event-channel.ts's; the bits in
// shared_info are event-2l.ts's. Xen-consumer ports (ioreq, vm_event) do not exist
// here, so the checks for them never fire.

import type { Domain } from './domain.ts';
import type { Evtchn2l } from './event-2l.ts';
import {
  type DomainEvtchn, ECS_FREE, ECS_INTERDOMAIN, ECS_IPI, ECS_RESERVED, ECS_UNBOUND, ECS_VIRQ, virqIsGlobal,
} from './evtchn-ports.ts';
import { EAGAIN, EBUSY, EEXIST, EINVAL, ENOENT, ENOSYS, EPERM, ESRCH, errnoName } from './public/errno.ts';
import {
  EVTCHNSTAT_closed, EVTCHNSTAT_interdomain, EVTCHNSTAT_ipi, EVTCHNSTAT_pirq, EVTCHNSTAT_unbound, EVTCHNSTAT_virq,
} from './public/event-channel.ts';
import { DOMID_FIRST_RESERVED, DOMID_SELF, NR_VIRQS } from './public/xen.ts';

/** EVTCHNSTAT_* by ECS_* state. */
const STATUS_OF_STATE = [
  EVTCHNSTAT_closed, EVTCHNSTAT_closed, EVTCHNSTAT_unbound, EVTCHNSTAT_interdomain, EVTCHNSTAT_pirq, EVTCHNSTAT_virq,
  EVTCHNSTAT_ipi,
];

/** Where the domains are found. */
export interface DomainLookup {
  domainById(domid: number): Domain | undefined;
}

/** A domain's ports; every domain a worker is given has them (a missing table is a bug). */
export function portsOf(d: Domain): DomainEvtchn {
  const e = d.evtchn;
  if (e === null) throw new Error(`d${d.domid} has no event channels`);
  return e;
}

/** XSM_TARGET under the dummy policy: oneself, or the control domain. 0 or -EPERM. */
function xsmTarget(src: Domain, target: Domain): number {
  return src === target || src.isPrivileged ? 0 : -EPERM;
}

export class EvtchnOps {
  constructor(
    private readonly domains: DomainLookup,
    private readonly l2: Evtchn2l,
  ) {}

  /**
   * rcu_lock_domain_by_any_id: DOMID_SELF is the caller; a dying domain is still
   * found; reserved ids (DOMID_IO, DOMID_XEN...) name no domain.
   */
  lookup(caller: Domain, domid: number): Domain | undefined {
    if (domid === DOMID_SELF) return caller;
    if (domid >= DOMID_FIRST_RESERVED) return undefined;
    const d = this.domains.domainById(domid);
    return d !== undefined && d.evtchn !== null ? d : undefined;
  }

  /**
   * evtchn_alloc_unbound: a port of `dom` that `remoteDom` may bind to. -ESRCH, then
   * allocation (-EINVAL dying, -ENOSPC), then XSM (-EPERM): a refused port stays FREE.
   * remoteDom is not checked; DOMID_SELF means the caller (not `dom`).
   */
  allocUnbound(caller: Domain, dom: number, remoteDom: number): number {
    const d = this.lookup(caller, dom);
    if (d === undefined) return this.fail(caller, -ESRCH, 'alloc_unbound: no such domain');
    const e = portsOf(d);
    const port = e.getFreePort(d.isDying);
    if (port < 0) return this.fail(caller, port, 'alloc_unbound: no free port');
    const rc = xsmTarget(caller, d);
    if (rc !== 0) return this.fail(caller, rc, 'alloc_unbound: not the domain or its controller');
    e.setState(port, ECS_UNBOUND);
    e.remoteDom[port] = remoteDom === DOMID_SELF ? caller.domid : remoteDom;
    return port;
  }

  /**
   * evtchn_bind_interdomain: connects a new port of the caller to remoteDom's UNBOUND
   * remotePort offered to the caller. -ESRCH; the local port is allocated first
   * (-ENOSPC beats the remote checks); -EINVAL for an invalid remote port, one not
   * UNBOUND, or one offered to another domain. The new local port is set pending.
   */
  bindInterdomain(caller: Domain, remoteDom: number, remotePort: number): number {
    const rd = this.lookup(caller, remoteDom);
    if (rd === undefined) return this.fail(caller, -ESRCH, 'bind_interdomain: no such domain');
    const le = portsOf(caller);
    const re = portsOf(rd);
    const lport = le.getFreePort(caller.isDying);
    if (lport < 0) return this.fail(caller, lport, 'bind_interdomain: no free local port');
    if (!re.isValid(remotePort)) return this.fail(caller, -EINVAL, 'bind_interdomain: remote port not valid');
    if (re.state[remotePort] !== ECS_UNBOUND || re.remoteDom[remotePort] !== caller.domid) {
      return this.fail(caller, -EINVAL, 'bind_interdomain: remote port not unbound for this domain');
    }
    le.setState(lport, ECS_INTERDOMAIN);
    le.remoteDom[lport] = rd.domid;
    le.remotePort[lport] = remotePort;
    re.setState(remotePort, ECS_INTERDOMAIN);
    re.remoteDom[remotePort] = caller.domid;
    re.remotePort[remotePort] = lport;
    // The peer may have sent while its port was unbound: those events were dropped.
    this.l2.setPending(caller, le.notifyVcpu[lport], lport);
    return lport;
  }

  /**
   * evtchn_bind_virq (4.17): -EINVAL for virq >= NR_VIRQS, or a global VIRQ on a vCPU
   * other than 0 (before the vCPU check); -ENOENT for no such vCPU; -EEXIST if that
   * vCPU's table already has it; then allocation. 4.17 lets any domain bind a global
   * VIRQ: it fires only in the handler domain.
   */
  bindVirq(caller: Domain, virq: number, vcpu: number): number {
    if (virq >= NR_VIRQS) return this.fail(caller, -EINVAL, 'bind_virq: no such VIRQ');
    if (virqIsGlobal(virq) && vcpu !== 0) return this.fail(caller, -EINVAL, 'bind_virq: global VIRQ not on vCPU 0');
    if (vcpu >= caller.vcpus.length) return this.fail(caller, -ENOENT, 'bind_virq: no such vCPU');
    const e = portsOf(caller);
    const slot = vcpu * NR_VIRQS + virq;
    if (e.virqToEvtchn[slot] !== 0) return this.fail(caller, -EEXIST, 'bind_virq: already bound on this vCPU');
    const port = e.getFreePort(caller.isDying);
    if (port < 0) return this.fail(caller, port, 'bind_virq: no free port');
    e.setState(port, ECS_VIRQ);
    e.notifyVcpu[port] = vcpu;
    e.virq[port] = virq;
    e.virqToEvtchn[slot] = port;
    return port;
  }

  /** evtchn_bind_ipi: -ENOENT for no such vCPU, then allocation. */
  bindIpi(caller: Domain, vcpu: number): number {
    if (vcpu >= caller.vcpus.length) return this.fail(caller, -ENOENT, 'bind_ipi: no such vCPU');
    const e = portsOf(caller);
    const port = e.getFreePort(caller.isDying);
    if (port < 0) return this.fail(caller, port, 'bind_ipi: no free port');
    e.setState(port, ECS_IPI);
    e.notifyVcpu[port] = vcpu;
    return port;
  }

  /**
   * evtchn_bind_pirq: -EINVAL past d->nr_pirqs (a u32 above INT_MAX is negative to Xen),
   * then -EPERM: a PV domain may bind only a PIRQ mapped to an IRQ it may access, and
   * this machine maps none (no PHYSDEVOP_map_pirq), so no domain gets further.
   */
  bindPirq(caller: Domain, pirq: number): number {
    if (pirq >= portsOf(caller).nrPirqs) return this.fail(caller, -EINVAL, 'bind_pirq: no such PIRQ');
    return this.fail(caller, -EPERM, 'bind_pirq: no access to the PIRQ');
  }

  /**
   * evtchn_close: -EINVAL for an invalid, FREE or RESERVED port. Unbinds a VIRQ from
   * its table; returns an INTERDOMAIN peer to UNBOUND naming d, untouched otherwise
   * (no event is sent). Freeing clears the pending bit, never the mask bit.
   */
  close(d: Domain, port: number): number {
    const e = portsOf(d);
    if (!e.isValid(port)) return this.fail(d, -EINVAL, 'close: port not valid');
    const state = e.state[port];
    if (state === ECS_FREE || state === ECS_RESERVED) return this.fail(d, -EINVAL, 'close: port not bound');
    if (state === ECS_VIRQ) {
      const virq = e.virq[port];
      e.virqToEvtchn[(virqIsGlobal(virq) ? 0 : e.notifyVcpu[port]) * NR_VIRQS + virq] = 0;
    } else if (state === ECS_INTERDOMAIN) {
      const rd = this.domains.domainById(e.remoteDom[port]);
      if (rd === undefined) throw new Error(`d${d.domid} port ${port}: peer d${e.remoteDom[port]} is gone`);
      const re = portsOf(rd);
      const rport = e.remotePort[port];
      re.setState(rport, ECS_UNBOUND);
      re.remoteDom[rport] = d.domid;
      re.remotePort[rport] = 0;
    }
    this.l2.clearPending(d, port);
    e.free(port);
    return 0;
  }

  /**
   * evtchn_send: INTERDOMAIN sets the peer port pending on the peer's notify vCPU; IPI
   * sets this port pending; UNBOUND drops the event and returns 0; anything else
   * (or an invalid port) is -EINVAL. The hot path: no allocation.
   */
  send(d: Domain, port: number): number {
    const e = portsOf(d);
    if (!e.isValid(port)) return this.fail(d, -EINVAL, 'send: port not valid');
    switch (e.state[port]) {
      case ECS_INTERDOMAIN: {
        const rd = this.domains.domainById(e.remoteDom[port])!;
        const rport = e.remotePort[port];
        this.l2.setPending(rd, portsOf(rd).notifyVcpu[rport], rport);
        return 0;
      }
      case ECS_IPI:
        this.l2.setPending(d, e.notifyVcpu[port], port);
        return 0;
      case ECS_UNBOUND:
        return 0;
      default:
        return this.fail(d, -EINVAL, 'send: port not interdomain, IPI or unbound');
    }
  }

  /**
   * evtchn_status: -ESRCH; -EINVAL for a port outside the valid buckets (a FREE port
   * inside them is "closed"); then XSM (-EPERM). Fills out[2] status, out[3] the notify
   * vCPU, and only the union fields the state defines (out[4..5]).
   */
  status(caller: Domain, dom: number, port: number, out: Uint32Array): number {
    const d = this.lookup(caller, dom);
    if (d === undefined) return this.fail(caller, -ESRCH, 'status: no such domain');
    const e = portsOf(d);
    if (!e.isValid(port)) return this.fail(caller, -EINVAL, 'status: port not valid');
    const rc = xsmTarget(caller, d);
    if (rc !== 0) return this.fail(caller, rc, "status: another domain's port");
    const state = e.state[port];
    out[2] = STATUS_OF_STATE[state];
    out[3] = e.notifyVcpu[port];
    if (state === ECS_UNBOUND || state === ECS_INTERDOMAIN) {
      out[4] = ((out[4] & 0xffff0000) | e.remoteDom[port]) >>> 0;
      if (state === ECS_INTERDOMAIN) out[5] = e.remotePort[port];
    } else if (state === ECS_VIRQ) {
      out[4] = e.virq[port];
    }
    return 0;
  }

  /**
   * evtchn_bind_vcpu: -ENOENT for no such vCPU (before the port check); -EINVAL for an
   * invalid port, or one that is not UNBOUND, INTERDOMAIN or a global VIRQ. Only the
   * notify vCPU changes: bits already set stay where they are.
   */
  bindVcpu(d: Domain, port: number, vcpu: number): number {
    if (vcpu >= d.vcpus.length) return this.fail(d, -ENOENT, 'bind_vcpu: no such vCPU');
    const e = portsOf(d);
    if (!e.isValid(port)) return this.fail(d, -EINVAL, 'bind_vcpu: port not valid');
    const state = e.state[port];
    const ok = state === ECS_UNBOUND || state === ECS_INTERDOMAIN || (state === ECS_VIRQ && virqIsGlobal(e.virq[port]));
    if (!ok) return this.fail(d, -EINVAL, 'bind_vcpu: port cannot be moved');
    e.notifyVcpu[port] = vcpu;
    return 0;
  }

  /** evtchn_unmask: -EINVAL for an invalid port; otherwise 0, unmasking a usable port. */
  unmask(d: Domain, port: number): number {
    const e = portsOf(d);
    if (!e.isValid(port)) return this.fail(d, -EINVAL, 'unmask: port not valid');
    if (e.state[port] > ECS_RESERVED) this.l2.unmask(d, e.notifyVcpu[port], port);
    return 0;
  }

  /**
   * EVTCHNOP_reset / reset_cont: -ESRCH, -EPERM (XSM), then -EINVAL for another domain
   * the toolstack has not paused, and -EBUSY for a fresh reset while one is in progress
   * or a continuation without one. Closes every port from 1 up; port 0 stays reserved.
   * Xen may preempt every 64 ports; this machine never needs to, so no reset is ever
   * left in progress.
   */
  reset(caller: Domain, dom: number, resuming: boolean): number {
    const d = this.lookup(caller, dom);
    if (d === undefined) return this.fail(caller, -ESRCH, 'reset: no such domain');
    const rc = xsmTarget(caller, d);
    if (rc !== 0) return this.fail(caller, rc, 'reset: not the domain or its controller');
    if (d !== caller && d.pauseCount === 0) return this.fail(caller, -EINVAL, 'reset: domain not paused');
    const e = portsOf(d);
    const start = resuming ? e.resetNext : e.resetNext === 0 ? 1 : 0;
    if (start > e.resetNext) e.resetNext = start;
    if (start === 0) return this.fail(caller, -EBUSY, 'reset: none in progress to continue, or one already is');
    for (let port = start; e.isValid(port) && e.active > 0; port++) {
      if (e.state[port] > ECS_RESERVED) this.close(d, port);
    }
    e.resetNext = 0;
    return e.active > 0 ? -EAGAIN : 0;
  }

  /** evtchn_set_priority under the 2-level ABI: -EINVAL for an invalid port, else -ENOSYS. */
  setPriority(d: Domain, port: number): number {
    if (!portsOf(d).isValid(port)) return this.fail(d, -EINVAL, 'set_priority: port not valid');
    return this.fail(d, -ENOSYS, 'set_priority: not in the 2-level ABI');
  }

  /** A guest mistake: logged at debug level with the rule, returned as the errno. */
  private fail(d: Domain, rc: number, rule: string): number {
    if (d.log.isLevelEnabled('debug')) d.log.debug({ sub: 'evtchn', dom: d.domid, rc: errnoName(rc), rule }, 'rejected');
    return rc;
  }
}
