// The kernel's table of privileged operations (like Linux's pv-ops): everything the
// kernel does that a hypervisor must be involved in goes through one of these. Layer:
// guests. Two implementations: native (privileged instructions, direct page-table
// writes — pvops-native.ts) and Xen (hypercalls, batched mmu_update, the virtual IF in
// vcpu_info — pvops-xen.ts). The kernel chooses at boot from start_info's magic, so
// one kernel image runs natively, patched under Xen, and unpatched under
// trap-and-emulate (where a Xen-unaware loader hands it a native start_info).

import type { GuestVcpu } from '../../hypervisor/public/vcpu.ts';

/** The interrupted context, as the entry code finds it in the frame at RSP. */
export interface EntryFrame {
  rip: number;
  rsp: number;
  /** Whether interrupts (events) were enabled in the interrupted context. */
  interruptsOn: boolean;
  fromUser: boolean;
  errorCode: number;
}

/** Where a return from the kernel goes. */
export interface ReturnTarget {
  rip: number;
  rsp: number;
  user: boolean;
  interruptsOn: boolean;
  rax: number;
}

/** An entry point the kernel installs: a vector and its handler's address. */
export interface TrapGate {
  vector: number;
  address: number;
  /** Lowest privilege that may `int n` it (3 for the system call gate). */
  dpl: number;
  /** Interrupt gate: interrupts are disabled on entry (else a trap gate). */
  disableInterrupts: boolean;
}

/** The vector the timer interrupts on (native), and the pseudo-entry for Xen's events. */
export const TIMER_VECTOR = 0x20;

export interface PvOps {
  readonly kind: 'native' | 'xen';
  readonly cpu: GuestVcpu;

  // ---- boot ----
  /** First thing at boot: device and hypervisor set-up (may take pages from pageVa). */
  init(pageVa: () => number): void;
  /**
   * Installs the exception and system-call entries, the timer entry, and the kernel
   * stack used on entry from user mode. `pageVa(n)` gives the VA of a fresh kernel
   * page the implementation may use (IDT, TSS, GDT, hypercall buffers).
   */
  setupTraps(gates: readonly TrapGate[], timerEntry: number, kernelStackTop: number, pageVa: () => number): void;

  // ---- the interrupt flag ----
  irqDisable(): void;
  irqEnable(): void;
  /** Saves the interrupt state and disables: pushf; cli natively. */
  irqSave(): number;
  /** Restores a saved state: popf natively. */
  irqRestore(flags: number): void;
  /** Enables interrupts and waits for one, atomically (sti; hlt / SCHEDOP_block). */
  safeHalt(): void;

  // ---- entry and exit ----
  /** The frame of the interrupted context at RSP (hasErrorCode for #PF/#GP). */
  readFrame(hasErrorCode: boolean): EntryFrame;
  /** For the timer/event entry: acknowledges it; true if it was a timer tick. */
  timerAck(): boolean;
  /** The address of the page fault being handled. */
  faultAddress(): number;
  /** Returns from the kernel to `t` (iretq / HYPERVISOR_iret). Never returns. */
  returnTo(t: ReturnTarget): never;

  // ---- memory management ----
  /** The frame number a PTE for `pfn` holds (the PFN natively, the MFN under Xen). */
  frameOf(pfn: number): number;
  /**
   * Writes entry `idx` of page table `tablePfn` (whose direct-map VA is tableVa): a
   * store natively; under Xen a direct store while the table is not yet in use
   * (`live` false), else a queued mmu_update.
   */
  writePte(tablePfn: number, tableVa: number, idx: number, lo: number, hi: number, live: boolean): void;
  /** Issues queued page-table updates. */
  flushPtes(): void;
  /**
   * Makes freshly written tables usable as page tables: under Xen their direct-map
   * aliases become read-only and `l4Pfn` (if not -1) is pinned, validating the tree.
   */
  activateTables(pfns: readonly number[], l4Pfn: number): void;
  /** Undoes activateTables for tables no longer in use (unpin; writable again). */
  retireTables(pfns: readonly number[], l4Pfn: number): void;
  /** Switches to the address space whose L4 is `l4Pfn`. */
  switchAddressSpace(l4Pfn: number): void;

  // ---- time ----
  /** Nanoseconds since boot. */
  clockNs(): number;
  /** Starts the tick every periodNs, first tick at t0 + periodNs. */
  startTick(t0: number, periodNs: number): void;
  /** Re-arms a one-shot tick for absolute time `at` (native: periodic, nothing to do). */
  rearmTick(at: number): void;
  stopTick(): void;
  /** Busy-waits about `us` microseconds. */
  udelay(us: number): void;

  // ---- console and power ----
  /** Writes bytes to the console; yields at its boundaries (interrupts taken there). */
  consoleWrite(bytes: Uint8Array, len: number): Generator<undefined, void, number>;
  powerOff(): never;
}
