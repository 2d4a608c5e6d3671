// Per-domain statistics for the host (Machine.domainStats): plain numbers that compare
// an unpatched kernel under trap-and-emulate with a patched one under PV. Layer:
// hypervisor. Counts that belong to one mode read 0 in the other.

import { PRIV_NAMES } from './arch/cpu.ts';
import type { Domain } from './domain.ts';

export interface DomainStats {
  readonly domid: number;
  readonly mode: 'pv' | 'emulate';
  /** Hypercall instructions its kernel executed (entries into Xen; a multicall counts once). */
  readonly hypercalls: number;
  /** Trap-and-emulate: privileged instructions trapped and emulated, by PRIV_* number (index 0 unused). */
  readonly privOps: readonly number[];
  /** The same, by instruction name ('cli', 'mov to cr3', …), non-zero ones only. */
  readonly privOpsByName: Readonly<Record<string, number>>;
  readonly privOpsTotal: number;
  /** Trap-and-emulate: privileged instructions answered with #GP(0) (CPL 3, or invalid), by PRIV_*. */
  readonly privOpsRefused: readonly number[];
  /** Trap-and-emulate: stores to shadowed page-table frames (each one a trap). */
  readonly ptWriteTraps: number;
  /** Trap-and-emulate: hidden faults building shadows (first walk through a table frame in an epoch). */
  readonly shadowFills: number;
  /** Trap-and-emulate: iretq to ring-0 frames caught (#GP) and emulated. */
  readonly iretsEmulated: number;
  /** External interrupts delivered: virtual APIC interrupts (emulate) or event upcalls (PV). */
  readonly interruptsDelivered: number;
  /** Trap-and-emulate: virtual APIC timer edges raised, and lost to an edge still pending. */
  readonly apicRaised: number;
  readonly apicLost: number;
}

export function domainStats(d: Domain): DomainStats {
  const emu = d.emu;
  const privOps = emu ? Array.from(emu.privOps) : new Array<number>(PRIV_NAMES.length).fill(0);
  const privOpsByName: Record<string, number> = {};
  let privOpsTotal = 0;
  for (let op = 1; op < privOps.length; op++) {
    privOpsTotal += privOps[op];
    if (privOps[op] > 0) privOpsByName[PRIV_NAMES[op]] = privOps[op];
  }
  let apicRaised = 0;
  let apicLost = 0;
  let upcalls = 0;
  for (const v of d.vcpus) {
    upcalls += v.interrupts;
    if (v.emu) {
      apicRaised += v.emu.lapic.raised;
      apicLost += v.emu.lapic.lost;
    }
  }
  return {
    domid: d.domid,
    mode: emu ? 'emulate' : 'pv',
    hypercalls: d.hypercalls,
    privOps,
    privOpsByName,
    privOpsTotal,
    privOpsRefused: emu ? Array.from(emu.privRefused) : new Array<number>(PRIV_NAMES.length).fill(0),
    ptWriteTraps: emu ? emu.ptWriteTraps : 0,
    shadowFills: emu ? emu.shadowFills : 0,
    iretsEmulated: emu ? emu.iretsEmulated : 0,
    interruptsDelivered: emu ? emu.interrupts : upcalls,
    apicRaised,
    apicLost,
  };
}
