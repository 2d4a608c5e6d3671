// The cost table: what each simulated operation costs in CPU cycles, and the clock rate
// that turns cycles into virtual nanoseconds. Layer: hypervisor/arch. One table for the
// whole machine (DESIGN §2); every vCPU advances virtual time by what it executes.
//
// The defaults are round figures in the range published measurements report for x86
// machines of the kind Xen was designed on and since:
// - Barham et al., "Xen and the Art of Virtualization" (SOSP 2003), lmbench tables on
//   a 2.4 GHz Xeon: null syscall 0.45 us native / 0.46 us Xen, page fault 1.6 / 3.3 us,
//   fork 0.15 / 0.43 ms, context switch 0.77 / 1.97 us (2p/0K).
// - Adams and Agesen, "A Comparison of Software and Hardware Techniques for x86
//   Virtualization" (ASPLOS 2006): a trap into a VMM and back costs on the order of
//   a thousand cycles or more; a syscall round trip a few hundred.
// - Soares and Stumm, "FlexSC" (OSDI 2010): a null system call's mode switch alone is
//   on the order of 100 cycles on modern cores, before cache and TLB pollution.
// - Bhargava et al., "Accelerating Two-Dimensional Page Walks" (ASPLOS 2008): a native
//   4-level walk that hits in the caches costs a few tens of cycles.
// They are not a model of any one CPU; scenarios may override any entry.

export interface CostTable {
  /** Clock rate in MHz: cycles per microsecond. */
  clockMhz: number;
  /** A load or store that hits in the TLB. */
  memoryAccess: number;
  /** A TLB miss: the 4-level walk (cached). */
  pageWalk: number;
  /** Flushing the whole TLB (the refills are charged as page walks). */
  tlbFlush: number;
  /** INVLPG of one page. */
  tlbFlushOne: number;
  /** Entering and leaving the hypervisor for a hypercall. */
  hypercall: number;
  /** A hardware exception or interrupt taken into ring 0 (save state, vector). */
  trap: number;
  /** Building a bounce frame on the guest kernel stack and entering its handler. */
  bounce: number;
  /** iret (the instruction, or Xen's iret hypercall work beyond its entry). */
  iret: number;
  /** A system call into the guest kernel by the int 0x80 fast path, one way. */
  syscall: number;
  /** Decoding and emulating one trapped privileged instruction (on top of the trap). */
  emulate: number;
  /** Switching the physical CPU from one vCPU to another (state save and restore). */
  worldSwitch: number;
  /** One byte copied by the hypervisor between guest memory and its own. */
  byteCopied: number;
  /** Validating one page-table entry in an update (get_page_from_lNe and friends). */
  pteValidate: number;
}

export const DEFAULT_COSTS: Readonly<CostTable> = Object.freeze({
  clockMhz: 2400,
  memoryAccess: 1,
  pageWalk: 30,
  tlbFlush: 200,
  tlbFlushOne: 50,
  hypercall: 250,
  trap: 500,
  bounce: 200,
  iret: 150,
  syscall: 150,
  emulate: 600,
  worldSwitch: 2400,
  byteCopied: 0.25,
  pteValidate: 60,
});

/** A complete cost table: the defaults with `over` applied; rejects unknown or bad entries. */
export function makeCosts(over: Partial<CostTable> = {}): CostTable {
  const out: CostTable = { ...DEFAULT_COSTS };
  for (const [k, v] of Object.entries(over)) {
    if (!(k in DEFAULT_COSTS)) throw new Error(`cost table: unknown entry "${k}"`);
    if (typeof v !== 'number' || !Number.isFinite(v) || v < 0) throw new Error(`cost table: "${k}" must be a number >= 0`);
    if (k === 'clockMhz' && v === 0) throw new Error('cost table: "clockMhz" must be > 0');
    (out as unknown as Record<string, number>)[k] = v;
  }
  return out;
}

/** Virtual nanoseconds for `cycles` at the table's clock rate. */
export function cyclesToNs(costs: CostTable, cycles: number): number {
  return (cycles * 1000) / costs.clockMhz;
}

/** Cycles in `ns` virtual nanoseconds. */
export function nsToCycles(costs: CostTable, ns: number): number {
  return (ns * costs.clockMhz) / 1000;
}
