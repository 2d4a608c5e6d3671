// Scheduling and the discrete-event loop (common/sched/core.c). Layer: hypervisor.
// Physical CPUs each run one vCPU at a time; every pCPU has its own virtual clock, and
// the loop always advances the pCPU that is furthest behind, so events happen in one
// fixed order: a run is a pure function of its inputs. Timers fire when the slowest
// pCPU reaches them. The credit policy (credit.ts) decides who runs next.

import { STEP_RAN } from '../arch/cpu.ts';
import { cyclesToNs, type CostTable } from '../arch/costs.ts';
import { DomainState, type Domain } from '../domain.ts';
import type { GuestTime } from '../time.ts';
import type { Vcpu } from '../vcpu.ts';
import { ACCT_PERIOD_NS, CreditPolicy, RATELIMIT_NS, TSLICE_NS } from './credit.ts';
import { Timer, TimerQueue } from './timer-queue.ts';
import { RUNSTATE_blocked, RUNSTATE_offline, RUNSTATE_runnable, RUNSTATE_running } from '../public/vcpu-op.ts';

/** What the scheduler needs from the hypervisor. */
export interface SchedHost {
  readonly costs: CostTable;
  readonly clock: { now: number };
  readonly time: GuestTime;
  listDomains(): Domain[];
  /** send_timer_event: VIRQ_TIMER to v. */
  sendTimerVirq(v: Vcpu): void;
}

export class Pcpu {
  now = 0;
  current: Vcpu | null = null;
  /** The vCPU that ran last (a different one costs a world switch). */
  last: Vcpu | null = null;
  sliceEnd = 0;
  dispatchedAt = 0;
  needResched = false;
  /** Virtual ns spent running vCPUs and idle. */
  busyNs = 0;
  idleNs = 0;

  constructor(readonly id: number) {}
}

/** Virtual-time state of one vCPU: its timers and runstate accounting. */
export class VcpuTimers {
  readonly singleshot: Timer;
  readonly periodic: Timer;
  readonly poll: Timer;
  /** VCPUOP_set_periodic_timer period (PV vCPUs start at 10 ms). */
  periodNs = 10_000_000;
  periodicLast = 0;
  /** Ports a SCHEDOP_poll waits on (empty: not polling). */
  pollPorts: number[] = [];
  polling = false;

  constructor(v: Vcpu, s: Scheduler) {
    this.singleshot = new Timer('singleshot', () => s.host.sendTimerVirq(v));
    this.periodic = new Timer('periodic', (when) => s.periodicFired(v, when));
    this.poll = new Timer('poll', (when) => s.pollTimedOut(v, when));
  }
}

export class Scheduler {
  readonly pcpus: Pcpu[];
  readonly timers = new TimerQueue();
  readonly policy: CreditPolicy;
  private readonly acct: Timer;
  /** The vCPU in the middle of a step (its clock is the time of what it does). */
  running: Vcpu | null = null;
  /** World switches between different vCPUs. */
  contextSwitches = 0;

  constructor(readonly host: SchedHost, nrPcpus: number) {
    if (!Number.isInteger(nrPcpus) || nrPcpus < 1 || nrPcpus > 256) throw new Error(`bad pCPU count ${nrPcpus}`);
    this.pcpus = Array.from({ length: nrPcpus }, (_, i) => new Pcpu(i));
    this.policy = new CreditPolicy(nrPcpus);
    this.acct = new Timer('credit accounting', (when) => this.accounting(when));
    this.timers.set(this.acct, ACCT_PERIOD_NS);
  }

  /** Global virtual time: the slowest pCPU's clock. */
  get now(): number {
    return this.host.clock.now;
  }

  /** Whether v can be given a pCPU. */
  runnable(v: Vcpu): boolean {
    return v.domain.state === DomainState.Running && v.isUp && v.initialised && !v.blocked && v.hasContext &&
      !v.credit.parked && v.onPcpu < 0;
  }

  private readonly isRunnable = (v: Vcpu): boolean => this.runnable(v);

  /** vcpu_wake: v may run again from virtual time `when`. */
  wake(v: Vcpu, when: number): void {
    const t = v.timers;
    if (t.polling) {
      t.polling = false;
      t.pollPorts.length = 0;
      this.timers.stop(t.poll);
    }
    const wasBlocked = v.blocked;
    v.blocked = false;
    if (v.onPcpu >= 0) return;
    if (when > v.readyAt) v.readyAt = when;
    if (!this.runnable(v)) return;
    if (wasBlocked) this.policy.boost(v, when);
    setRunstate(v, RUNSTATE_runnable, when);
    this.policy.enqueue(v);
    this.tickle(v);
  }

  /** Makes every runnable vCPU of d eligible (after unpause, build, vCPU up). */
  wakeDomain(d: Domain, when: number): void {
    for (const v of d.vcpus) this.wake(v, when);
  }

  /** A pCPU running something of lower priority reschedules at its next boundary. */
  private tickle(v: Vcpu): void {
    if (this.pcpus.some((p) => p.current === null)) return;
    let victim: Pcpu | null = null;
    for (const p of this.pcpus) {
      const cur = p.current!;
      if (cur.credit.pri > v.credit.pri && (victim === null || cur.credit.pri > victim.current!.credit.pri)) victim = p;
    }
    if (victim) victim.needResched = true;
  }

  /** Runs the machine until virtual time `until` (ns), or until nothing can happen. */
  run(until: number): void {
    for (;;) {
      const p = this.nextPcpu();
      const t = p.now;
      if (t > this.host.clock.now) this.host.clock.now = t;
      this.timers.runDue(t);
      if (t >= until) return;
      if (p.current) {
        const ranFor = t - p.dispatchedAt;
        const preempt = t >= p.sliceEnd || p.current.yieldPending ||
          (p.needResched && ranFor >= RATELIMIT_NS && this.policy.bestWaiting() < p.current.credit.pri);
        if (preempt) this.deschedule(p, true);
      }
      p.needResched = false;
      if (!p.current) {
        const v = this.policy.pick(this.isRunnable);
        if (v) {
          this.dispatch(p, v, t);
        } else {
          if (!this.idle(p, until)) return;
          continue;
        }
      }
      this.step(p);
    }
  }

  /** The pCPU furthest behind; on a tie a busy one before an idle one, then by id. */
  private nextPcpu(): Pcpu {
    let best = this.pcpus[0];
    for (let i = 1; i < this.pcpus.length; i++) {
      const p = this.pcpus[i];
      if (p.now < best.now || (p.now === best.now && best.current === null && p.current !== null)) best = p;
    }
    return best;
  }

  /** Moves an idle pCPU to the next instant something can happen; false if nothing can. */
  private idle(p: Pcpu, until: number): boolean {
    let next = Math.min(this.timers.next(), until);
    for (const q of this.pcpus) if (q !== p && q.current !== null && q.now > p.now) next = Math.min(next, q.now);
    if (next === Infinity || next <= p.now) {
      if (this.pcpus.every((q) => q.current === null) && this.timers.next() === Infinity) return false;
      if (next <= p.now) next = p.now + 1;
    }
    p.idleNs += next - p.now;
    p.now = next;
    return true;
  }

  private dispatch(p: Pcpu, v: Vcpu, t: number): void {
    if (v.readyAt > t) {
      p.idleNs += v.readyAt - t;
      p.now = v.readyAt;
    }
    if (p.last !== v) {
      // A world switch: state saved and restored, and the hardware TLB is cold.
      this.contextSwitches++;
      p.now += cyclesToNs(this.host.costs, this.host.costs.worldSwitch);
      v.tlb.flushAll();
    }
    p.current = v;
    v.onPcpu = p.id;
    p.dispatchedAt = p.now;
    p.sliceEnd = p.now + TSLICE_NS;
    setRunstate(v, RUNSTATE_running, p.now);
    this.host.time.updateVcpuTime(v, p.now);
    this.armPeriodic(v, p.now);
  }

  private deschedule(p: Pcpu, requeue: boolean): void {
    const v = p.current!;
    v.yieldPending = false;
    p.current = null;
    p.last = v;
    v.onPcpu = -1;
    v.readyAt = p.now;
    this.timers.stop(v.timers.periodic);
    if (requeue && this.runnable(v)) {
      setRunstate(v, RUNSTATE_runnable, p.now);
      this.policy.enqueue(v);
    } else {
      setRunstate(v, v.blocked && v.isUp ? RUNSTATE_blocked : RUNSTATE_offline, p.now);
    }
  }

  /** One step of p's vCPU, to its next boundary. */
  private step(p: Pcpu): void {
    const v = p.current!;
    const c0 = v.cycles;
    v.timeBase = p.now;
    v.cycleBase = c0;
    this.running = v;
    const st = v.step();
    this.running = null;
    // Every step takes at least a cycle, so time always moves.
    if (v.cycles < c0 + 1) v.cycles = c0 + 1;
    const dt = cyclesToNs(this.host.costs, v.cycles - c0);
    p.now += dt;
    p.busyNs += dt;
    this.policy.burn(v, dt, p.now);
    // Blocked, stopped, crashed, paused or downed: off the pCPU (runnable() decides
    // whether it goes back on a queue).
    if (st !== STEP_RAN || !this.stillRunnable(v)) this.deschedule(p, true);
  }

  private stillRunnable(v: Vcpu): boolean {
    return v.domain.state === DomainState.Running && v.isUp && !v.blocked && v.hasContext && !v.credit.parked;
  }

  private armPeriodic(v: Vcpu, now: number): void {
    const t = v.timers;
    if (t.periodNs <= 0) return;
    let next = t.periodicLast + t.periodNs;
    if (next < now) next = now;
    this.timers.set(t.periodic, next);
  }

  /** The periodic timer: VIRQ_TIMER, then the next period (only while v runs). */
  periodicFired(v: Vcpu, when: number): void {
    const t = v.timers;
    t.periodicLast = when;
    this.host.sendTimerVirq(v);
    if (v.onPcpu >= 0 && t.periodNs > 0) this.timers.set(t.periodic, when + t.periodNs);
  }

  pollTimedOut(v: Vcpu, when: number): void {
    if (v.timers.polling) this.wake(v, when);
  }

  private accounting(when: number): void {
    const domains = this.host.listDomains();
    this.policy.account(domains);
    // Anything runnable but on no queue (unpaused, brought up, unparked) joins one.
    for (const d of domains) {
      for (const v of d.vcpus) {
        if (!v.credit.queued && this.runnable(v)) {
          if (when > v.readyAt) v.readyAt = when;
          setRunstate(v, RUNSTATE_runnable, when);
          this.policy.enqueue(v);
        }
      }
    }
    this.timers.set(this.acct, when + ACCT_PERIOD_NS);
  }
}

/** Moves v's runstate to `st` at `now`, charging the time spent in the old one. */
export function setRunstate(v: Vcpu, st: number, now: number): void {
  if (now > v.runstateEntry) v.runstateTime[v.runstate] += now - v.runstateEntry;
  if (now > v.runstateEntry) v.runstateEntry = now;
  v.runstate = st;
}

