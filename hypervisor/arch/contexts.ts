// Suspended guest contexts and the return addresses that name them. Layer: hypervisor/arch.
//
// Guest code is a generator; a generator suspended at a boundary cannot be written into
// guest memory, so when the CPU interrupts one it parks it here and puts a token in the
// frame as its return address (RIP). An iret to that token resumes it; an iret anywhere
// else leaves it parked until the kernel returns to it. Tokens belong to the domain, so
// a kernel may resume a context on another of its vCPUs. A context interrupted in the
// middle of a step (a synchronous fault) is "in flight": only the handler's iret back to
// it can resume it, and if the kernel goes elsewhere it is abandoned.

import type { GuestCode } from '../public/vcpu.ts';

export type GuestContext = ReturnType<GuestCode>;

/** Tokens are canonical lower-half addresses 0x7ff0_xxxx_xxx0 (high half TOKEN_HI). */
export const TOKEN_HI = 0x7ff0;
const MAX_CONTEXTS = 1 << 20;

const FREE = 0;
const PARKED = 1;
const IN_FLIGHT = 2;

export class ContextTable {
  private readonly gens: (GuestContext | null)[] = [];
  private readonly state: number[] = [];
  private readonly cpl: number[] = [];
  /** A software interrupt to execute again on resume (the frame pointed at it), or -1. */
  private readonly retry: number[] = [];
  /** The CPU's nesting depth when it was parked (0: at the top level). */
  private readonly depth: number[] = [];
  private readonly free: number[] = [];
  /** Contexts parked or in flight now. */
  live = 0;

  private alloc(): number {
    const idx = this.free.pop();
    if (idx !== undefined) return idx;
    if (this.gens.length >= MAX_CONTEXTS) return -1;
    this.gens.push(null);
    this.state.push(FREE);
    this.cpl.push(0);
    this.retry.push(-1);
    this.depth.push(0);
    return this.gens.length - 1;
  }

  /** Parks a context suspended at a boundary; returns the token's low half, or -1 if full. */
  park(gen: GuestContext | null, cpl: number, retryVector: number, depth: number): number {
    const idx = this.alloc();
    if (idx < 0) return -1;
    this.depth[idx] = depth;
    this.gens[idx] = gen;
    this.state[idx] = PARKED;
    this.cpl[idx] = cpl;
    this.retry[idx] = retryVector;
    this.live++;
    return idx * 16;
  }

  /** Marks the context running now as in flight; returns the token's low half, or -1. */
  inFlight(cpl: number): number {
    const idx = this.alloc();
    if (idx < 0) return -1;
    this.state[idx] = IN_FLIGHT;
    this.cpl[idx] = cpl;
    this.retry[idx] = -1;
    this.live++;
    return idx * 16;
  }

  static isToken(lo: number, hi: number): boolean {
    return hi === TOKEN_HI && (lo & 15) === 0;
  }

  isParked(lo: number): boolean {
    const idx = lo >>> 4;
    return idx < this.state.length && this.state[idx] === PARKED;
  }

  parkedDepth(lo: number): number {
    return this.depth[lo >>> 4];
  }

  parkedCpl(lo: number): number {
    return this.cpl[lo >>> 4];
  }

  /** The context parked at `lo` is to execute `int vector` again when resumed. */
  setRetry(lo: number, vector: number): void {
    if (this.isParked(lo)) this.retry[lo >>> 4] = vector;
  }

  retryVector(lo: number): number {
    return this.retry[lo >>> 4];
  }

  /** Takes a parked context out of the table (its token becomes free). */
  take(lo: number): GuestContext | null {
    const idx = lo >>> 4;
    const gen = this.gens[idx];
    this.release(idx);
    return gen;
  }

  /** Frees an in-flight token (its context resumed or was abandoned). */
  done(lo: number): void {
    const idx = lo >>> 4;
    if (idx < this.state.length && this.state[idx] !== FREE) this.release(idx);
  }

  private release(idx: number): void {
    this.gens[idx] = null;
    this.state[idx] = FREE;
    this.free.push(idx);
    this.live--;
  }

  /** Closes every parked generator (the domain is gone). */
  clear(): void {
    for (let i = 0; i < this.gens.length; i++) {
      const g = this.gens[i];
      this.gens[i] = null;
      if (this.state[i] !== FREE) {
        this.state[i] = FREE;
        this.free.push(i);
      }
      if (g) {
        try {
          g.return(undefined);
        } catch {
          // A guest finally block that throws: the context is gone either way.
        }
      }
    }
    this.live = 0;
  }
}
