// Virtual-time timers (Xen's common/timer.c): a binary heap ordered by expiry time and
// then by arming order, so that timers due at the same instant fire in a fixed order.
// Layer: hypervisor. A timer is an object owned by its user (a vCPU's single-shot
// timer, its poll timeout, the scheduler's accounting tick); re-arming it leaves the
// old heap entry stale, and stale entries are skipped when they reach the top.

export class Timer {
  /** Expiry in virtual ns, or -1 when not armed. */
  expires = -1;
  /** Arming generation: a heap entry is live only if it carries the current one. */
  gen = 0;

  constructor(
    readonly name: string,
    readonly fire: (now: number) => void,
  ) {}

  get active(): boolean {
    return this.expires >= 0;
  }
}

export class TimerQueue {
  private times: Float64Array = new Float64Array(64);
  private seqs: Float64Array = new Float64Array(64);
  private gens: Float64Array = new Float64Array(64);
  private timers: Timer[] = [];
  private size = 0;
  private seq = 0;

  /** Arms (or re-arms) `t` to fire at `when` (virtual ns). */
  set(t: Timer, when: number): void {
    t.expires = when;
    t.gen++;
    this.push(when, t);
  }

  /** Disarms `t`; its heap entry becomes stale. */
  stop(t: Timer): void {
    t.expires = -1;
    t.gen++;
  }

  /** Expiry of the earliest live timer, or Infinity. */
  next(): number {
    this.dropStale();
    return this.size === 0 ? Infinity : this.times[0];
  }

  /** Fires every live timer due at or before `now`, in order. */
  runDue(now: number): void {
    for (;;) {
      this.dropStale();
      if (this.size === 0 || this.times[0] > now) return;
      const t = this.timers[0];
      const when = this.times[0];
      this.pop();
      t.expires = -1;
      t.gen++;
      t.fire(when);
    }
  }

  private dropStale(): void {
    while (this.size > 0 && (this.timers[0].gen !== this.gens[0] || this.timers[0].expires !== this.times[0])) {
      this.pop();
    }
  }

  private less(i: number, j: number): boolean {
    return this.times[i] < this.times[j] || (this.times[i] === this.times[j] && this.seqs[i] < this.seqs[j]);
  }

  private swap(i: number, j: number): void {
    const t = this.times[i]; this.times[i] = this.times[j]; this.times[j] = t;
    const s = this.seqs[i]; this.seqs[i] = this.seqs[j]; this.seqs[j] = s;
    const g = this.gens[i]; this.gens[i] = this.gens[j]; this.gens[j] = g;
    const x = this.timers[i]; this.timers[i] = this.timers[j]; this.timers[j] = x;
  }

  private push(when: number, t: Timer): void {
    if (this.size === this.times.length) this.grow();
    let i = this.size++;
    this.times[i] = when;
    this.seqs[i] = this.seq++;
    this.gens[i] = t.gen;
    this.timers[i] = t;
    while (i > 0) {
      const parent = (i - 1) >> 1;
      if (!this.less(i, parent)) break;
      this.swap(i, parent);
      i = parent;
    }
  }

  private pop(): void {
    const last = --this.size;
    if (last > 0) this.swap(0, last);
    let i = 0;
    for (;;) {
      const l = 2 * i + 1;
      const r = l + 1;
      let m = i;
      if (l < this.size && this.less(l, m)) m = l;
      if (r < this.size && this.less(r, m)) m = r;
      if (m === i) break;
      this.swap(i, m);
      i = m;
    }
  }

  private grow(): void {
    const n = this.times.length * 2;
    const grow = (a: Float64Array): Float64Array => {
      const b = new Float64Array(n);
      b.set(a);
      return b;
    };
    this.times = grow(this.times);
    this.seqs = grow(this.seqs);
    this.gens = grow(this.gens);
  }
}
