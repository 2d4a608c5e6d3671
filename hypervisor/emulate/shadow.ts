// Shadow paging, as trap-and-emulate mode models it. Layer: hypervisor (emulate/).
//
// An unmodified kernel builds page tables holding guest-physical frame numbers. A
// shadow-paging VMM cannot let the MMU walk them: it keeps shadow tables with machine
// frames and, to keep them in sync, write-protects every frame the guest uses as a page
// table, so that each guest store to one traps and the VMM resyncs the shadow before
// letting the write through. That trap is what this file charges for.
//
// xensim models the cost, not the shadow structures. The walker translates each entry's
// PFN through the domain's P2M directly (arch/paging.ts), and:
// - every walk under a P2M stamps the table frames it reads with the domain's current
//   shadow epoch, in one machine-wide Uint32Array by MFN (the set of shadowed frames);
// - a mov to CR3 takes a new epoch from a machine-wide counter: the old shadows are
//   dropped, and frames are shadowed again as walks under the new CR3 read them;
// - a guest store (Cpu.store; a store split across pages traps at most once) whose
//   target frame carries the current epoch traps: costs.trap + costs.emulate, counted
//   per domain, and the vCPU's TLB is flushed (the resync; costs.tlbFlush) before the
//   store is performed;
// - the first walk through a table frame in an epoch (the walker counts them) is a
//   hidden page fault in which the VMM builds that shadow: trap + emulate each;
// - Accessed and Dirty bits set by the walker never trap (the VMM keeps them itself);
// - TLB hits read no stamps and cost nothing extra.
// A frame stays shadowed until the epoch changes, even when the guest no longer uses it
// as a table (shadow VMMs unshadow lazily too), and the hypervisor's own writes (frames
// pushed by interrupt delivery) never trap.

import type { CostTable } from '../arch/costs.ts';
import type { PageWalker } from '../arch/paging.ts';
import type { Domain } from '../domain.ts';
import type { Vcpu } from '../vcpu.ts';

const LAST_EPOCH = 0xffffffff;

export class ShadowPaging {
  /** The last epoch handed out (0: none; stamps of 0 mean "never shadowed"). */
  private epoch = 0;

  constructor(
    private readonly walker: PageWalker,
    private readonly costs: CostTable,
    private readonly domains: () => readonly Domain[],
  ) {}

  /** Drops d's shadows: its vCPUs walk and stamp with a fresh epoch from now on. */
  newEpoch(d: Domain): void {
    const stamps = this.walker.enableShadowStamps();
    if (this.epoch === LAST_EPOCH) {
      // The counter wraps: forget every shadow, and renumber the other guests.
      stamps.fill(0);
      this.epoch = 0;
      for (const o of this.domains()) if (o.emu !== null && o !== d) this.assign(o, ++this.epoch);
    }
    this.assign(d, ++this.epoch);
  }

  private assign(d: Domain, epoch: number): void {
    for (const v of d.vcpus) v.shadowEpoch = epoch;
  }

  /**
   * A walk read `n` table frames with no shadow in this epoch: each is a hidden page
   * fault in which the VMM builds the shadow (trap + emulate). With no shadow cache,
   * every CR3 load makes the next walks pay them again — the cost of context switches
   * and fork under shadow paging.
   */
  fill(v: Vcpu, n: number): void {
    v.cycles += n * (this.costs.trap + this.costs.emulate);
    v.domain.emu!.shadowFills += n;
  }

  /** A store to a shadowed page table: the write-protection trap and the shadow resync. */
  writeTrap(v: Vcpu): void {
    v.cycles += this.costs.trap + this.costs.emulate;
    v.domain.emu!.ptWriteTraps++;
    v.flushTlb();
  }
}
