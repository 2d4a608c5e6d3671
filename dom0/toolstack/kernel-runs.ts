// Running the guest kernel the three ways DESIGN §1 describes, for the demo, the bench
// and the system tests: natively on the bare machine (CPL 0, no hypervisor), patched
// under Xen (ring 1, Xen pv-ops), and unpatched under Xen's trap-and-emulate mode (ring
// 1, native pv-ops, every privileged instruction trapping). Host side (may use
// hypervisor/index.ts).

import { BareMachine, Machine, type MachineConfig } from '../../hypervisor/index.ts';
import type { GuestImage } from '../../hypervisor/public/vcpu.ts';

export type KernelMode = 'native' | 'patched' | 'unpatched';
export const KERNEL_MODES: readonly KernelMode[] = ['native', 'patched', 'unpatched'];

export interface KernelRun {
  mode: KernelMode;
  /** Console lines, without Xen's "(dN) " prefix. */
  console: string[];
  /** Virtual time when the kernel powered off (or the run's end). */
  endNs: number;
  poweredOff: boolean;
  /** Why it stopped, if not by powering off. */
  failure: string;
  /** Timer interrupts the (virtual) local APIC raised and lost (native and unpatched only). */
  timerRaised: number;
  timerLost: number;
  /** Ticks the kernel itself found missing ("timer: N ticks lost"), in every way. */
  kernelLostTicks: number;
  /** Hypercalls made (patched); privileged-instruction, page-table-write and iret traps (unpatched). */
  hypercalls: number;
  privTraps: number;
  ptWriteTraps: number;
  /** Hidden faults building shadows of the unpatched kernel's page tables. */
  shadowFills: number;
  iretTraps: number;
  /** The trapped privileged instructions by name (unpatched). */
  privOpsByName: Record<string, number>;
}

export interface KernelRunOptions {
  memoryMb?: number;
  /** Longest virtual time to run (default 10 s). */
  limitNs?: number;
  costs?: MachineConfig['costs'];
  logLevel?: string;
  logDestination?: MachineConfig['logDestination'];
}

/** Boots `image` (a fresh one per run) the given way and runs it until it powers off. */
export function runKernel(mode: KernelMode, image: GuestImage, o: KernelRunOptions = {}): KernelRun {
  const memoryMb = o.memoryMb ?? 16;
  const limit = o.limitNs ?? 10e9;
  const run: KernelRun = {
    mode, console: [], endNs: 0, poweredOff: false, failure: '', timerRaised: 0, timerLost: 0, kernelLostTicks: 0, hypercalls: 0,
    privTraps: 0, ptWriteTraps: 0, shadowFills: 0, iretTraps: 0, privOpsByName: {},
  };
  if (mode === 'native') {
    const bm = new BareMachine({ memoryMb, costs: o.costs });
    bm.boot(image);
    bm.run(limit);
    run.console = [...bm.console];
    run.endNs = bm.now;
    run.poweredOff = bm.poweredOff;
    run.failure = bm.poweredOff ? '' : bm.halted || 'still running';
    run.timerRaised = bm.timerInterrupts;
    run.timerLost = bm.timerLost;
    run.kernelLostTicks = kernelLost(run.console);
    return run;
  }
  // A debug build lets an unprivileged guest write to Xen's console (console_io).
  const m = new Machine({
    memoryMb: memoryMb + 64, debugBuild: true, costs: o.costs, logLevel: o.logLevel, logDestination: o.logDestination,
  });
  const h = m.createGuest({ image, memoryMb, mode: mode === 'unpatched' ? 'emulate' : 'pv' });
  const d = m.domain(h.domid)!;
  const step = 1e6;
  while (m.now < limit && d.isAlive) m.run(step);
  const prefix = `(d${h.domid}) `;
  run.console = m.hv.consoleLog.filter((l) => l.startsWith(prefix)).map((l) => l.slice(prefix.length));
  run.endNs = d.vcpus[0].nowNs(); // its clock stopped when it shut down
  run.poweredOff = d.shutdownCode === 0 && !d.isAlive;
  run.failure = run.poweredOff ? '' : d.crashReason || (d.isAlive ? 'still running' : `shut down (${d.shutdownCode})`);
  const st = m.domainStats(h.domid)!;
  run.hypercalls = st.hypercalls;
  run.privTraps = st.privOpsTotal;
  run.ptWriteTraps = st.ptWriteTraps;
  run.shadowFills = st.shadowFills;
  run.iretTraps = st.iretsEmulated;
  run.privOpsByName = { ...st.privOpsByName };
  run.timerRaised = st.apicRaised;
  run.timerLost = st.apicLost;
  run.kernelLostTicks = kernelLost(run.console);
  return run;
}

/** The count in the kernel's "timer: N tick(s) lost" line, or 0. */
function kernelLost(lines: readonly string[]): number {
  for (const l of lines) {
    const m = /^timer: (\d+) ticks? lost$/.exec(l);
    if (m) return Number(m[1]);
  }
  return 0;
}
