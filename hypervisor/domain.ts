// A domain (Xen's struct domain): identity, privilege, memory accounting, vCPUs and
// its life-cycle state machine. Layer: hypervisor. Creation and destruction are done by
// domain-lifecycle.ts; this file holds the state and its legal transitions.

import type { Logger } from './log.ts';
import type { PageOwner } from './page-alloc.ts';
import type { Vcpu } from './vcpu.ts';
import { ContextTable } from './arch/contexts.ts';
import type { GuestImage } from './public/vcpu.ts';
import type { DomainEvtchn } from './event-channel.ts';
import type { DomainGrants } from './grant-table.ts';
import type { Timer } from './sched/timer-queue.ts';
import { VMASST_TYPE_m2p_strict } from './public/xen.ts';
import type { EmuDomain } from './emulate/state.ts';

/** Life-cycle states; a domain moves only along DOMAIN_TRANSITIONS. */
export const DomainState = {
  /** Running (or runnable): pause count 0. */
  Running: 'running',
  /** Paused by the toolstack (pausedomain) or still paused after creation. */
  Paused: 'paused',
  /** Crashed by the hypervisor (domain_crash): it never runs again. */
  Crashed: 'crashed',
  /** Shut down by itself (SCHEDOP_shutdown) or by Dom0 (remote_shutdown): waits for the toolstack. */
  Shutdown: 'shutdown',
  /** destroydomain started: resources are being relinquished. */
  Dying: 'dying',
  /** All resources returned; the domain id may be reused. */
  Dead: 'dead',
} as const;
export type DomainState = (typeof DomainState)[keyof typeof DomainState];

/** Legal transitions, each with the reason it exists. */
export const DOMAIN_TRANSITIONS: Readonly<Record<DomainState, Readonly<Partial<Record<DomainState, string>>>>> = {
  running: { paused: 'pausedomain', crashed: 'domain_crash', shutdown: 'domain_shutdown', dying: 'destroydomain' },
  paused: { running: 'unpausedomain', crashed: 'domain_crash', shutdown: 'domain_shutdown', dying: 'destroydomain' },
  crashed: { dying: 'destroydomain' },
  shutdown: { dying: 'destroydomain' },
  dying: { dead: 'last page freed' },
  dead: {},
};

export class Domain implements PageOwner {
  state: DomainState = DomainState.Paused;
  /** Toolstack pause count: createdomain leaves 1, unpausedomain drops it. */
  pauseCount = 1;
  totPages = 0;
  xenheapPages = 0;
  maxPages: number;
  pageHead = -1;
  isDying = false;
  /** Enabled VM assists, a bitmask over VMASST_TYPE_* numbers. */
  vmAssist = 0;
  readonly vcpus: Vcpu[] = [];
  /** Machine frame of this domain's shared_info page (a Xen-heap page). */
  sharedInfoMfn = -1;
  /** The toolstack's 16-byte handle (a UUID). */
  readonly handle = new Uint8Array(16);
  /** XEN_DOMCTL_CDF_* flags it was created with. */
  createFlags = 0;
  maxVcpus: number;
  /** Why the domain was crashed, for logs and getdomaininfo. */
  crashReason = '';
  /** Guest contexts suspended at a boundary, named by the tokens in their frames. */
  readonly contexts = new ContextTable();
  /** Credit scheduler parameters (XEN_DOMCTL_SCHEDOP_putinfo). */
  readonly sched = { weight: 256, cap: 0 };
  /** SHUTDOWN_* reason once the domain has shut down, else -1. */
  shutdownCode = -1;
  /** SCHEDOP_watchdog timers (NR_DOMAIN_WATCHDOG_TIMERS slots). */
  readonly watchdogs: (Timer | null)[] = [null, null];
  /** Event-channel ports (event-channel.ts); all closed once the domain is dying. */
  evtchn: DomainEvtchn | null = null;
  /** Grant table (grant-table.ts): its frames, active entries and maptrack. */
  grants: DomainGrants | null = null;
  /** The kernel image the domain was built with: its code by virtual address. */
  image: GuestImage | null = null;
  /** console_io output held until a newline (Xen's pbuf). */
  consoleBuf = '';
  /** Trap-and-emulate mode's state (hypervisor/emulate/); null for a PV domain. */
  emu: EmuDomain | null = null;
  /** Hypercall instructions its kernel executed (entries into Xen; a multicall is one). */
  hypercalls = 0;

  constructor(
    readonly domid: number,
    /** The control domain (Dom0): domctl, foreign mappings, XSM_TARGET over everyone. */
    readonly isPrivileged: boolean,
    /** Access to MMIO frames and I/O ports (the hardware domain). */
    readonly hasIomem: boolean,
    maxPages: number,
    maxVcpus: number,
    readonly log: Logger,
  ) {
    this.maxPages = maxPages;
    this.maxVcpus = maxVcpus;
  }

  vmAssistEnabled(type: number): boolean {
    return type < 32 ? (this.vmAssist & (1 << type)) !== 0 : type === VMASST_TYPE_m2p_strict && this.m2pStrict;
  }

  /** m2p_strict is type 32, past the low word of the bitmask. */
  m2pStrict = false;

  /** Moves to `to`; an illegal transition is a hypervisor bug. */
  transition(to: DomainState): void {
    const reason = DOMAIN_TRANSITIONS[this.state][to];
    if (reason === undefined) throw new Error(`d${this.domid}: illegal transition ${this.state} -> ${to}`);
    this.log.debug({ from: this.state, to, reason }, 'domain state');
    this.state = to;
  }

  get isAlive(): boolean {
    return this.state === DomainState.Running || this.state === DomainState.Paused;
  }
}
