// The credit scheduler's policy (common/sched/credit.c): per-domain weight and cap,
// credits earned every accounting period and burnt while running, priorities BOOST >
// UNDER > OVER, one FIFO run queue per priority. Layer: hypervisor. Simplified from
// Xen in one respect: a single run queue shared by all physical CPUs stands in for
// Xen's per-CPU queues with work stealing.

import type { Domain } from '../domain.ts';
import type { Vcpu } from '../vcpu.ts';

export const PRI_BOOST = 0;
export const PRI_UNDER = 1;
export const PRI_OVER = 2;
const NR_PRI = 3;

export const CSCHED_DEFAULT_WEIGHT = 256;
/** Credits a physical CPU hands out per timeslice: 10 per ms over 30 ms. */
export const CREDITS_PER_TSLICE = 300;
export const CREDITS_PER_MS = 10;
export const TSLICE_NS = 30_000_000;
export const TICK_NS = 10_000_000;
export const ACCT_PERIOD_NS = 30_000_000;
/** A vCPU keeps the CPU at least this long before a wake-up preempts it. */
export const RATELIMIT_NS = 1_000_000;

/** Per-vCPU scheduling state (csched_unit). */
export class CreditUnit {
  credit = 0;
  pri = PRI_UNDER;
  /** On a run queue now. */
  queued = false;
  /** A cap made it wait for credit (parked). */
  parked = false;
  /** Ran (or was runnable) during the current accounting period. */
  active = false;
  /** Virtual ns when it was boosted, to drop the boost after a tick of running. */
  boostedAt = 0;
}

/** Per-domain parameters (csched_dom). */
export interface CreditParams {
  weight: number;
  /** Percent of one physical CPU; 0 = no cap. */
  cap: number;
}

export class CreditPolicy {
  private readonly queues: Vcpu[][] = Array.from({ length: NR_PRI }, () => []);
  private readonly heads = new Int32Array(NR_PRI);

  constructor(private readonly nrPcpus: number) {}

  enqueue(v: Vcpu): void {
    const u = v.credit;
    if (u.queued) return;
    u.queued = true;
    u.active = true;
    this.queues[u.pri].push(v);
  }

  /** Takes the first runnable vCPU of the highest priority, or null. */
  pick(runnable: (v: Vcpu) => boolean): Vcpu | null {
    for (let p = 0; p < NR_PRI; p++) {
      const q = this.queues[p];
      while (this.heads[p] < q.length) {
        const v = q[this.heads[p]++];
        if (this.heads[p] > 1024 && this.heads[p] * 2 > q.length) {
          q.splice(0, this.heads[p]);
          this.heads[p] = 0;
        }
        const u = v.credit;
        if (!u.queued) continue;
        if (u.pri !== p) continue; // re-queued at another priority
        u.queued = false;
        if (runnable(v)) return v;
      }
    }
    return null;
  }

  /** The highest priority waiting, or NR_PRI if none. */
  bestWaiting(): number {
    for (let p = 0; p < NR_PRI; p++) {
      const q = this.queues[p];
      for (let i = this.heads[p]; i < q.length; i++) {
        const u = q[i].credit;
        if (u.queued && u.pri === p) return p;
      }
    }
    return NR_PRI;
  }

  /** Burns credit for `ns` of running; a boost lasts one tick of running. */
  burn(v: Vcpu, ns: number, now: number): void {
    const u = v.credit;
    u.credit -= (ns * CREDITS_PER_MS) / 1_000_000;
    u.active = true;
    if (u.pri === PRI_BOOST && now - u.boostedAt >= TICK_NS) u.pri = PRI_UNDER;
  }

  /** A vCPU woke from blocking: UNDER becomes BOOST (I/O-bound vCPUs get in first). */
  boost(v: Vcpu, now: number): void {
    const u = v.credit;
    if (u.pri === PRI_UNDER && !u.parked) {
      u.pri = PRI_BOOST;
      u.boostedAt = now;
    }
  }

  /**
   * csched_acct: shares this period's credit (300 per physical CPU) among the active
   * domains by weight, limits capped domains, and sets each vCPU's priority. Parks
   * vCPUs of capped domains that are out of credit, unparks those back in credit.
   */
  account(domains: readonly Domain[]): void {
    let weightTotal = 0;
    for (const d of domains) {
      const active = activeUnits(d);
      if (active > 0) weightTotal += d.sched.weight * active;
    }
    if (weightTotal === 0) return;
    const pool = CREDITS_PER_TSLICE * this.nrPcpus;
    for (const d of domains) {
      const active = activeUnits(d);
      if (active === 0) continue;
      let fair = Math.ceil((pool * d.sched.weight * active) / weightTotal);
      const peak = Math.min(active, this.nrPcpus) * CREDITS_PER_TSLICE;
      if (fair > peak) fair = peak;
      const capCredits = d.sched.cap > 0 ? Math.ceil((d.sched.cap * CREDITS_PER_TSLICE) / 100) : Infinity;
      if (fair > capCredits) fair = capCredits;
      const perUnit = Math.ceil(fair / active);
      for (const v of d.vcpus) {
        const u = v.credit;
        if (!isActive(v)) continue;
        const oldPri = u.pri;
        u.credit += perUnit;
        if (u.credit > CREDITS_PER_TSLICE) u.credit = CREDITS_PER_TSLICE;
        if (u.credit < -CREDITS_PER_TSLICE) u.credit = -CREDITS_PER_TSLICE;
        u.pri = u.credit < 0 ? PRI_OVER : PRI_UNDER;
        u.parked = d.sched.cap > 0 && u.credit < 0;
        u.active = false;
        if (u.queued && u.pri !== oldPri) this.queues[u.pri].push(v);
      }
    }
  }
}

/** Active: ran this period, or is waiting to run (queued, running, or parked by its cap). */
function isActive(v: Vcpu): boolean {
  const u = v.credit;
  return u.active || u.queued || u.parked || v.onPcpu >= 0;
}

function activeUnits(d: Domain): number {
  let n = 0;
  for (const v of d.vcpus) if (isActive(v)) n++;
  return n;
}
