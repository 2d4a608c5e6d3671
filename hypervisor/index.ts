// The hypervisor's host-facing face (DESIGN §3): boot a machine, build domains, inspect
// them. Used by the CLI, the scenario runner and tests, never by code inside the
// simulation (which holds only a GuestVcpu from hypervisor/public/).

import { PAGE_SIZE } from './arch/memory.ts';
import { buildPvDomain, KERNEL_VIRT_BASE, type BootLayout } from './domain-build.ts';
import { createDomain, killDomain } from './domain-lifecycle.ts';
import { DomainState, type Domain } from './domain.ts';
import { Hypervisor, type MachineConfig } from './hypervisor.ts';
import { checkInvariants } from './invariants.ts';
import type { GuestCode, GuestImage, GuestVcpu } from './public/vcpu.ts';
import { STEP_BLOCKED, STEP_HALTED, STEP_IDLE } from './arch/cpu.ts';
import { hi32, lo32 } from './arch/pte.ts';
import { buildEmulatedDomain } from './emulate/build.ts';
import { domainStats, type DomainStats } from './domain-stats.ts';

export { Hypervisor, KERNEL_VIRT_BASE, type MachineConfig };
export { BareMachine, type BareMachineConfig } from './arch/bare-machine.ts';
export type { DomainStats };

/** What the host gets back for a built domain: its id and its vCPUs' guest-facing ports. */
export interface GuestHandle extends BootLayout {
  readonly domid: number;
  readonly vcpus: readonly GuestVcpu[];
}

export interface GuestOptions {
  memoryMb?: number;
  /** Exact page count (overrides memoryMb). */
  pages?: number;
  maxVcpus?: number;
  cmdline?: string;
  /** The kernel: its code by virtual address and entry point (vCPU 0 starts there). */
  image?: GuestImage;
  /**
   * 'pv' (default): a paravirtualized guest built as Xen's builder does. 'emulate': an
   * unpatched native kernel in trap-and-emulate mode (hypervisor/emulate/), booted as
   * the bare machine's loader would boot it, its privileged instructions trapping.
   */
  mode?: 'pv' | 'emulate';
  /** createdomain's max_grant_frames and max_maptrack_frames (default 64 and 1024). */
  maxGrantFrames?: number;
  maxMaptrackFrames?: number;
}

/** How a host-driven run of one vCPU ended. */
export type ExecResult = 'idle' | 'blocked' | 'halted' | 'steps';

export class Machine {
  readonly hv: Hypervisor;

  constructor(cfg: MachineConfig = {}) {
    this.hv = new Hypervisor(cfg);
  }

  /** Builds Dom0: domain 0, privileged, with I/O access, unpaused. */
  bootDom0(opts: GuestOptions = {}): GuestHandle {
    if (opts.mode === 'emulate') throw new Error('Dom0 must be paravirtualized');
    const d = createDomain(this.hv, { privileged: true, hasIomem: true, maxVcpus: opts.maxVcpus ?? 1 }, true);
    return this.finish(d, opts);
  }

  /**
   * Builds an unprivileged guest, unpaused: PV the way Xen's dom0 builder would, or in
   * trap-and-emulate mode with `mode: 'emulate'`.
   */
  createGuest(opts: GuestOptions = {}): GuestHandle {
    if (opts.mode !== undefined && opts.mode !== 'pv' && opts.mode !== 'emulate') {
      throw new Error(`unknown guest mode "${String(opts.mode)}"`);
    }
    const d = createDomain(this.hv, {
      maxVcpus: opts.maxVcpus ?? 1, maxGrantFrames: opts.maxGrantFrames, maxMaptrackFrames: opts.maxMaptrackFrames,
    });
    return this.finish(d, opts);
  }

  private finish(d: Domain | number, opts: GuestOptions): GuestHandle {
    if (typeof d === 'number') throw new Error(`cannot create domain: errno ${-d}`);
    const pages = opts.pages ?? Math.floor(((opts.memoryMb ?? 16) * 1024 * 1024) / PAGE_SIZE);
    const emulate = opts.mode === 'emulate';
    const layout = emulate ? buildEmulatedDomain(this.hv, d, pages, opts.cmdline) : buildPvDomain(this.hv, d, pages, opts.cmdline);
    if (typeof layout === 'string') {
      killDomain(this.hv, d, undefined);
      throw new Error(`cannot build d${d.domid}: ${layout}`);
    }
    d.pauseCount = 0;
    d.transition(DomainState.Running);
    if (!emulate) this.hv.time.updateWallclock(d);
    if (opts.image) {
      d.image = opts.image;
      const entry = opts.image.entry;
      if (entry !== undefined) {
        d.vcpus[0].startAt(lo32(entry), hi32(entry));
        this.hv.sched.wakeDomain(d, this.hv.clock.now);
      }
    }
    return { ...layout, domid: d.domid, vcpus: d.vcpus.map((v) => v.port) };
  }

  /**
   * Runs `code` on a vCPU as kernel-mode code, stepping only that vCPU, until it stops
   * (its kernel code returned), blocks, is halted, or maxSteps boundaries pass. For
   * tests and tools that drive one vCPU without the scheduler.
   */
  exec(domid: number, vcpuId: number, code: GuestCode, maxSteps = 1_000_000): ExecResult {
    const v = this.hv.domainById(domid)?.vcpus[vcpuId];
    if (!v) throw new Error(`no vCPU d${domid}v${vcpuId}`);
    v.start(code);
    for (let i = 0; i < maxSteps; i++) {
      const st = v.step();
      if (st === STEP_IDLE) return 'idle';
      if (st === STEP_BLOCKED) return 'blocked';
      if (st === STEP_HALTED) return 'halted';
    }
    return 'steps';
  }

  /**
   * Runs the machine (every domain's vCPUs on the physical CPUs) for `ns` of virtual
   * time, or until nothing is left that could happen.
   */
  run(ns: number): void {
    this.hv.sched.run(this.hv.clock.now + ns);
  }

  /** Virtual time now, in ns. */
  get now(): number {
    return this.hv.clock.now;
  }

  /** Destroys a domain as the toolstack would (domctl destroydomain). */
  destroy(domid: number): void {
    const d = this.hv.domainById(domid);
    if (d) killDomain(this.hv, d, undefined);
  }

  domain(domid: number): Domain | undefined {
    return this.hv.domainById(domid);
  }

  /** A domain's statistics as plain numbers (hypercalls, emulated instructions, …), if it exists. */
  domainStats(domid: number): DomainStats | undefined {
    const d = this.hv.domainById(domid);
    return d ? domainStats(d) : undefined;
  }

  /** Every broken invariant, as text; empty when the machine is consistent. */
  checkInvariants(): string[] {
    return checkInvariants(this.hv);
  }

  get freeFrames(): number {
    return this.hv.alloc.freeFrames;
  }
}
