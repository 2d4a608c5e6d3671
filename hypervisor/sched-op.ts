// HYPERVISOR_sched_op and HYPERVISOR_set_timer_op (common/sched/core.c, common/domain.c):
// yielding, blocking, polling ports, shutting down, and the single-shot timer. Layer:
// hypervisor. A vCPU that blocks stops at its next boundary; the hypercall itself
// returns 0, and the guest code after it runs once the vCPU is woken.

import { EFAULT, EINVAL, ENOSPC, ENOSYS, EPERM, ESRCH } from './public/errno.ts';
import * as S from './public/sched.ts';
import { DOMID_FIRST_RESERVED, NR_EVENT_CHANNELS } from './public/xen.ts';
import { Timer } from './sched/timer-queue.ts';
import { eventsNeedDelivery, setUpcallMask } from './vcpu-info.ts';
import type { Hypervisor } from './hypervisor.ts';
import type { Vcpu } from './vcpu.ts';

/** SCHEDOP_poll takes at most this many ports. */
export const MAX_POLL_PORTS = 128;
/** set_timer_op: a deadline further than 2^50 ns ahead is taken as a wrapped jiffies value. */
const TIMER_FAR_FUTURE_NS = 2 ** 50;
const TIMER_FALLBACK_NS = 100_000_000;
/** NR_DOMAIN_WATCHDOG_TIMERS. */
export const NR_WATCHDOG_TIMERS = 2;

export class SchedOp {
  constructor(private readonly hv: Hypervisor) {}

  call(v: Vcpu, cmd: number, lo: number, hi: number): number {
    switch (cmd) {
      case S.SCHEDOP_yield:
        v.yieldPending = true;
        return 0;
      case S.SCHEDOP_block:
        return this.block(v);
      case S.SCHEDOP_shutdown: {
        if (!this.hv.ga.copyWords(v, lo, hi, 1)) return -EFAULT;
        this.hv.domainShutdown(v.domain, this.hv.ga.words[0]);
        return 0;
      }
      case S.SCHEDOP_poll:
        return this.poll(v, lo, hi);
      case S.SCHEDOP_remote_shutdown:
        return this.remoteShutdown(v, lo, hi);
      case S.SCHEDOP_shutdown_code: {
        if (!this.hv.ga.copyWords(v, lo, hi, 1)) return -EFAULT;
        if (v.domain.shutdownCode < 0) v.domain.shutdownCode = this.hv.ga.words[0] & 0xff;
        return 0;
      }
      case S.SCHEDOP_watchdog:
        return this.watchdog(v, lo, hi);
      case S.SCHEDOP_pin_override:
        return this.pinOverride(v, lo, hi);
      default:
        return -ENOSYS;
    }
  }

  /** SCHEDOP_block: events are enabled, and the vCPU sleeps unless one is already due. */
  private block(v: Vcpu): number {
    const mem = this.hv.mem;
    setUpcallMask(mem, v, 0);
    if (!eventsNeedDelivery(mem, v)) v.blocked = true;
    return 0;
  }

  /**
   * SCHEDOP_poll: sleep until one of the ports is pending or the absolute timeout
   * passes. -EINVAL for more than 128 ports or a port past the domain's limit, -EFAULT
   * for an unreadable argument or list. Events stay masked.
   */
  private poll(v: Vcpu, lo: number, hi: number): number {
    const ga = this.hv.ga;
    if (!ga.copyWords(v, lo, hi, 6)) return -EFAULT;
    const w = ga.words;
    const portsLo = w[0];
    const portsHi = w[1];
    const nr = w[2];
    const tLo = w[4];
    const tHi = w[5];
    if (nr > MAX_POLL_PORTS) return -EINVAL;
    const t = v.timers;
    t.pollPorts.length = 0;
    if (eventsNeedDelivery(this.hv.mem, v)) return 0;
    const d = v.domain;
    let plo = portsLo;
    let phi = portsHi;
    for (let i = 0; i < nr; i++) {
      if (!ga.copyWords(v, plo, phi, 1)) return this.pollFail(v, -EFAULT);
      const port = ga.words[0];
      if (port >= NR_EVENT_CHANNELS) return this.pollFail(v, -EINVAL); // d->max_evtchns (2-level)
      if (this.hv.evtchn.isPending(d, port)) return this.pollFail(v, 0);
      t.pollPorts.push(port);
      const next = plo + 4;
      phi = next > 0xffffffff ? (phi + 1) >>> 0 : phi;
      plo = next >>> 0;
    }
    t.polling = true;
    v.blocked = true;
    if (tLo !== 0 || tHi !== 0) this.hv.sched.timers.set(t.poll, Math.max(0, (tHi | 0) * 4294967296 + tLo));
    return 0;
  }

  private pollFail(v: Vcpu, rc: number): number {
    v.timers.pollPorts.length = 0;
    return rc;
  }

  /** remote_shutdown: -ESRCH for no such domain (DOMID_SELF is not one), -EPERM unprivileged. */
  private remoteShutdown(v: Vcpu, lo: number, hi: number): number {
    const ga = this.hv.ga;
    if (!ga.copyWords(v, lo, hi, 2)) return -EFAULT;
    const domid = ga.words[0] & 0xffff;
    const reason = ga.words[1];
    const d = domid < DOMID_FIRST_RESERVED ? this.hv.domainById(domid) : undefined;
    if (!d) return -ESRCH;
    if (!v.domain.isPrivileged) return -EPERM;
    this.hv.domainShutdown(d, reason);
    return 0;
  }

  /**
   * SCHEDOP_watchdog {id, timeout s}: id 0 takes a free timer (returns its id, 1-based,
   * or -ENOSPC); a known id re-arms it, or frees it with timeout 0; else -EINVAL.
   * When one expires, the domain shuts down with SHUTDOWN_watchdog.
   */
  private watchdog(v: Vcpu, lo: number, hi: number): number {
    const ga = this.hv.ga;
    if (!ga.copyWords(v, lo, hi, 2)) return -EFAULT;
    const id = ga.words[0];
    const timeoutSec = ga.words[1];
    const d = v.domain;
    if (id > NR_WATCHDOG_TIMERS) return -EINVAL;
    const now = v.nowNs();
    if (id === 0) {
      for (let i = 0; i < NR_WATCHDOG_TIMERS; i++) {
        if (d.watchdogs[i] !== null) continue;
        const t = new Timer(`watchdog ${i}`, () => this.hv.domainShutdown(d, S.SHUTDOWN_watchdog));
        d.watchdogs[i] = t;
        this.hv.sched.timers.set(t, now + timeoutSec * 1e9);
        return i + 1;
      }
      return -ENOSPC;
    }
    const t = d.watchdogs[id - 1];
    if (t === null) return -EINVAL;
    if (timeoutSec === 0) {
      this.hv.sched.timers.stop(t);
      d.watchdogs[id - 1] = null;
      return 0;
    }
    this.hv.sched.timers.set(t, now + timeoutSec * 1e9);
    return 0;
  }

  /** pin_override: only the hardware domain (-EPERM); a CPU beyond the machine is -EINVAL. */
  private pinOverride(v: Vcpu, lo: number, hi: number): number {
    if (!v.domain.hasIomem) return -EPERM;
    if (!this.hv.ga.copyWords(v, lo, hi, 1)) return -EFAULT;
    const pcpu = this.hv.ga.words[0] | 0;
    if (pcpu >= this.hv.sched.pcpus.length) return -EINVAL;
    return 0;
  }

  /**
   * set_timer_op(timeout): arms the single-shot timer at absolute system time `timeout`
   * (ns); 0 stops it; a negative or absurdly distant one is taken as now + 100 ms. A
   * time in the past fires at once. Always 0.
   */
  setTimerOp(v: Vcpu, lo: number, hi: number): number {
    const timers = this.hv.sched.timers;
    const t = v.timers.singleshot;
    if (lo === 0 && hi === 0) {
      timers.stop(t);
      return 0;
    }
    const now = v.nowNs();
    const when = (hi | 0) * 4294967296 + lo;
    timers.set(t, when < 0 || when > now + TIMER_FAR_FUTURE_NS ? now + TIMER_FALLBACK_NS : when);
    return 0;
  }
}
