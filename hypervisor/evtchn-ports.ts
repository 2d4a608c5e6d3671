// A domain's event-channel ports (struct domain's evtchn fields and struct evtchn):
// the port state machine with its legal transitions, per-port typed arrays, the VIRQ
// table of each vCPU, and Xen's port allocator (lowest free port, bucket by bucket).
// Layer: hypervisor. Knows nothing of shared_info or hypercalls.

import { EINVAL, ENOSPC } from './public/errno.ts';
import { NR_EVENT_CHANNELS, NR_VIRQS, VIRQ_DEBUG, VIRQ_TIMER, VIRQ_XENOPROF, VIRQ_XENPMU } from './public/xen.ts';

// Port states (Xen's ECS_*, xen/sched.h). A port is "usable" above ECS_RESERVED.
export const ECS_FREE = 0;
export const ECS_RESERVED = 1;
export const ECS_UNBOUND = 2;
export const ECS_INTERDOMAIN = 3;
export const ECS_PIRQ = 4;
export const ECS_VIRQ = 5;
export const ECS_IPI = 6;
export const ECS_NAMES = ['free', 'reserved', 'unbound', 'interdomain', 'pirq', 'virq', 'ipi'] as const;

/** The legal transitions, each with the operation that makes it. */
export const ECS_TRANSITIONS: readonly (Readonly<Partial<Record<number, string>>>)[] = [
  /* free */ {
    [ECS_RESERVED]: 'evtchn_init reserves port 0',
    [ECS_UNBOUND]: 'alloc_unbound',
    [ECS_INTERDOMAIN]: 'bind_interdomain (the new local port)',
    [ECS_PIRQ]: 'bind_pirq',
    [ECS_VIRQ]: 'bind_virq',
    [ECS_IPI]: 'bind_ipi',
  },
  /* reserved */ {},
  /* unbound */ { [ECS_FREE]: 'close', [ECS_INTERDOMAIN]: 'bind_interdomain (the remote port)' },
  /* interdomain */ { [ECS_FREE]: 'close', [ECS_UNBOUND]: 'the peer closed its end' },
  /* pirq */ { [ECS_FREE]: 'close' },
  /* virq */ { [ECS_FREE]: 'close' },
  /* ipi */ { [ECS_FREE]: 'close' },
];

/**
 * virq_is_global in Xen 4.17: TIMER, DEBUG, XENOPROF and XENPMU are per vCPU; every other
 * number below NR_VIRQS is global (x86's arch VIRQs included, and the unassigned 5, 14,
 * 15). A global VIRQ is bound on vCPU 0 and recorded in vCPU 0's table.
 */
export function virqIsGlobal(virq: number): boolean {
  return virq !== VIRQ_TIMER && virq !== VIRQ_DEBUG && virq !== VIRQ_XENOPROF && virq !== VIRQ_XENPMU;
}

/**
 * Ports come in buckets (EVTCHNS_PER_BUCKET = PAGE_SIZE / next_pow2(sizeof(struct
 * evtchn)), 64 in a release x86-64 build): a port is valid once its bucket exists, even
 * if it was never bound, and buckets are never freed while the domain lives.
 */
export const EVTCHNS_PER_BUCKET = 64;

/** The 2-level ABI's limit for a 64-bit guest (max_evtchns). */
export const MAX_2L_PORTS = NR_EVENT_CHANNELS;

/**
 * xl's default max_evtchn_port for a domU (libxl's event_channels = 1023). Dom0 is built
 * with max_evtchn_port = -1 (INT_MAX), leaving only the 2-level limit.
 */
export const XL_DEFAULT_MAX_EVTCHN_PORT = 1023;

export class DomainEvtchn {
  /** max_evtchn_port: the highest port allocation may hand out (inclusive). */
  readonly maxPort: number;
  /** valid_evtchns: ports below it are valid (a whole number of buckets). */
  validPorts = EVTCHNS_PER_BUCKET;
  /** Ports in a state above ECS_RESERVED (active_evtchns). */
  active = 0;
  /** next_evtchn: where a reset resumes; 0 when no reset is in progress. */
  resetNext = 0;
  /** d->nr_pirqs: bind_pirq's range. */
  readonly nrPirqs: number;

  readonly state: Uint8Array;
  /** UNBOUND: the domain allowed to bind; INTERDOMAIN: the peer domain. */
  readonly remoteDom: Uint16Array;
  /** INTERDOMAIN: the peer port. */
  readonly remotePort: Uint16Array;
  /** The vCPU whose vcpu_info an event on this port is signalled in. */
  readonly notifyVcpu: Uint16Array;
  /** VIRQ: the VIRQ number. */
  readonly virq: Uint8Array;
  /** virq_to_evtchn of each vCPU: entry vcpu * NR_VIRQS + virq, 0 = not bound. */
  readonly virqToEvtchn: Uint16Array;

  /** No port below it is FREE (a search hint; port 0 is reserved). */
  private firstFree = 1;

  /**
   * evtchn_init: bucket 0 exists and port 0 is reserved. maxPort above the 2-level
   * limit (dom0's INT_MAX) is clipped to it.
   */
  constructor(readonly domid: number, nrVcpus: number, maxPort: number, nrPirqs: number) {
    this.maxPort = Math.min(maxPort, MAX_2L_PORTS - 1);
    this.nrPirqs = nrPirqs;
    const n = Math.ceil((this.maxPort + 1) / EVTCHNS_PER_BUCKET) * EVTCHNS_PER_BUCKET;
    this.state = new Uint8Array(n);
    this.remoteDom = new Uint16Array(n);
    this.remotePort = new Uint16Array(n);
    this.notifyVcpu = new Uint16Array(n);
    this.virq = new Uint8Array(n);
    this.virqToEvtchn = new Uint16Array(Math.max(nrVcpus, 1) * NR_VIRQS);
    this.setState(0, ECS_RESERVED);
  }

  /** port_is_valid: inside an allocated bucket (whatever its state). */
  isValid(port: number): boolean {
    return port < this.validPorts;
  }

  /**
   * get_free_port: the lowest FREE port from 1, allocating the next bucket when the
   * search reaches it. -ENOSPC past max_evtchn_port or the 2-level limit; -EINVAL when
   * the domain is dying. The port stays FREE until the caller binds it.
   */
  getFreePort(dying: boolean): number {
    if (dying) return -EINVAL;
    for (let p = this.firstFree; ; p++) {
      if (p > this.maxPort || p >= MAX_2L_PORTS) return -ENOSPC;
      if (p >= this.validPorts) {
        this.validPorts += EVTCHNS_PER_BUCKET;
        this.firstFree = p;
        return p;
      }
      if (this.state[p] === ECS_FREE) {
        this.firstFree = p;
        return p;
      }
    }
  }

  /** Moves `port` to state `to`; an illegal transition is a hypervisor bug. */
  setState(port: number, to: number): void {
    const from = this.state[port];
    if (ECS_TRANSITIONS[from][to] === undefined) {
      throw new Error(`d${this.domid} port ${port}: illegal transition ${ECS_NAMES[from]} -> ${ECS_NAMES[to]}`);
    }
    if (from === ECS_FREE && to !== ECS_RESERVED) this.active++;
    else if (to === ECS_FREE) this.active--;
    this.state[port] = to;
  }

  /** evtchn_free's bookkeeping: FREE, notify vCPU 0 (the caller clears the pending bit). */
  free(port: number): void {
    this.setState(port, ECS_FREE);
    this.notifyVcpu[port] = 0;
    this.remoteDom[port] = 0;
    this.remotePort[port] = 0;
    this.virq[port] = 0;
    if (port < this.firstFree) this.firstFree = port;
  }

  /** Ports that are in use (above RESERVED), for the usability checks of the 2-level ABI. */
  isUsable(port: number): boolean {
    return port < this.validPorts && this.state[port] > ECS_RESERVED;
  }
}
