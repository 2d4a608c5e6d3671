// The hypercall dispatch table (Xen's hypercall_table / pv_hypercall): one handler per
// number, arguments in the vCPU's registers as (lo, hi) halves. Layer: hypervisor.
// Unknown numbers return -ENOSYS. Counts by number and result feed the statistics.

import { ENOSYS, errnoName } from './public/errno.ts';
import { hypercallName } from './public/xen.ts';
import type { Logger } from './log.ts';
import type { Vcpu } from './vcpu.ts';

/** A handler reads its arguments from `a` (a[2i], a[2i+1] = lo, hi of argument i). */
export type HypercallHandler = (v: Vcpu, a: Uint32Array) => number;

export const NR_HYPERCALLS = 64;
const NR_ERRNOS = 128;

export class HypercallTable {
  private readonly handlers: (HypercallHandler | undefined)[] = new Array(NR_HYPERCALLS).fill(undefined);
  /** Calls per hypercall number. */
  readonly calls = new Float64Array(NR_HYPERCALLS);
  /** Failures per (number, errno): index nr * 128 + errno. */
  readonly failures = new Float64Array(NR_HYPERCALLS * NR_ERRNOS);

  constructor(private readonly log: Logger) {}

  register(nr: number, handler: HypercallHandler): void {
    this.handlers[nr] = handler;
  }

  has(nr: number): boolean {
    return Number.isInteger(nr) && nr >= 0 && nr < NR_HYPERCALLS && this.handlers[nr] !== undefined;
  }

  dispatch(v: Vcpu, nr: number, a: Uint32Array): number {
    const h = Number.isInteger(nr) && nr >= 0 && nr < NR_HYPERCALLS ? this.handlers[nr] : undefined;
    if (h === undefined) {
      this.log.debug({ dom: v.domain.domid, vcpu: v.vcpuId, hc: nr }, 'unknown hypercall');
      return -ENOSYS;
    }
    this.calls[nr]++;
    const rc = h(v, a);
    if (rc < 0 && rc > -NR_ERRNOS) {
      this.failures[nr * NR_ERRNOS - rc]++;
      if (this.log.isLevelEnabled('debug')) {
        this.log.debug({ dom: v.domain.domid, vcpu: v.vcpuId, hc: hypercallName(nr), rc: errnoName(rc) }, 'rejected');
      }
    }
    return rc;
  }

  /** Counts as {name: {calls, errors: {ERRNO: n}}} for summaries. */
  summary(): Record<string, { calls: number; errors: Record<string, number> }> {
    const out: Record<string, { calls: number; errors: Record<string, number> }> = {};
    for (let nr = 0; nr < NR_HYPERCALLS; nr++) {
      if (this.calls[nr] === 0) continue;
      const errors: Record<string, number> = {};
      for (let e = 1; e < NR_ERRNOS; e++) {
        const n = this.failures[nr * NR_ERRNOS + e];
        if (n > 0) errors[errnoName(e)] = n;
      }
      out[hypercallName(nr)] = { calls: this.calls[nr], errors };
    }
    return out;
  }
}
