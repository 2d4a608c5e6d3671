// The hypervisor's host-facing face (DESIGN §3): boot a machine, build domains, inspect
// them. Used by the CLI, the scenario runner and tests, never by code inside the
// simulation (which holds only a GuestVcpu from hypervisor/public/).

import { PAGE_SIZE } from './arch/memory.ts';
import { buildPvDomain, KERNEL_VIRT_BASE, type BootLayout } from './domain-build.ts';
import { createDomain, killDomain } from './domain-lifecycle.ts';
import { DomainState, type Domain } from './domain.ts';
import { Hypervisor, type MachineConfig } from './hypervisor.ts';
import { checkInvariants } from './invariants.ts';
import type { GuestVcpu } from './public/vcpu.ts';

export { Hypervisor, KERNEL_VIRT_BASE, type MachineConfig };

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
}

export class Machine {
  readonly hv: Hypervisor;

  constructor(cfg: MachineConfig = {}) {
    this.hv = new Hypervisor(cfg);
  }

  /** Builds Dom0: domain 0, privileged, with I/O access, unpaused. */
  bootDom0(opts: GuestOptions = {}): GuestHandle {
    const d = createDomain(this.hv, { privileged: true, hasIomem: true, maxVcpus: opts.maxVcpus ?? 1 }, true);
    return this.finish(d, opts);
  }

  /** Builds an unprivileged PV guest the way Xen's dom0 builder would, unpaused. */
  createGuest(opts: GuestOptions = {}): GuestHandle {
    const d = createDomain(this.hv, { maxVcpus: opts.maxVcpus ?? 1 });
    return this.finish(d, opts);
  }

  private finish(d: Domain | number, opts: GuestOptions): GuestHandle {
    if (typeof d === 'number') throw new Error(`cannot create domain: errno ${-d}`);
    const pages = opts.pages ?? Math.floor(((opts.memoryMb ?? 16) * 1024 * 1024) / PAGE_SIZE);
    const layout = buildPvDomain(this.hv, d, pages, opts.cmdline);
    if (typeof layout === 'string') {
      killDomain(this.hv, d, undefined);
      throw new Error(`cannot build d${d.domid}: ${layout}`);
    }
    d.pauseCount = 0;
    d.transition(DomainState.Running);
    return { ...layout, domid: d.domid, vcpus: d.vcpus.map((v) => v.port) };
  }

  /** Destroys a domain as the toolstack would (domctl destroydomain). */
  destroy(domid: number): void {
    const d = this.hv.domainById(domid);
    if (d) killDomain(this.hv, d, undefined);
  }

  domain(domid: number): Domain | undefined {
    return this.hv.domainById(domid);
  }

  /** Every broken invariant, as text; empty when the machine is consistent. */
  checkInvariants(): string[] {
    return checkInvariants(this.hv);
  }

  get freeFrames(): number {
    return this.hv.alloc.freeFrames;
  }
}
