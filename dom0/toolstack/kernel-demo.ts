// The demo's second part: the guest kernel (guests/kernel/) runs one user workload the
// three ways — natively on the bare machine, patched under Xen, unpatched under
// trap-and-emulate — and the demo prints what it printed and what each way cost. Host
// side (may use hypervisor/index.ts).

import { makeKernelImage } from '../../guests/kernel/index.ts';
import { workload } from '../../guests/kernel/user/workload.ts';
import { KERNEL_MODES, runKernel, type KernelRun } from './kernel-runs.ts';

const WAYS: Record<string, string> = {
  native: 'natively at CPL 0 on the bare machine',
  patched: 'patched: Xen pv-ops in ring 1',
  unpatched: 'unpatched: native pv-ops in ring 1, trap-and-emulate',
};

/** Runs the workload three ways; true when the outputs differ exactly by the lost tick. */
export function runKernelDemo(out: (s: string) => void): boolean {
  const runs: KernelRun[] = KERNEL_MODES.map((mode) => runKernel(mode, makeKernelImage(workload())));
  const [native, patched, unpatched] = runs;
  out('\nthe guest kernel, booted three ways with the same user workload\n');
  out('(system calls, page faults, fork, a timer sleep); its console, natively:\n');
  for (const line of native.console) out(`  | ${line}\n`);
  const diff = unpatched.console.filter((l) => !native.console.includes(l));
  const samePatched = patched.console.join('\n') === native.console.join('\n');
  // Identical but for the added lines: the rest in the same order, nothing missing.
  const sameRest = unpatched.console.filter((l) => !diff.includes(l)).join('\n') === native.console.join('\n');
  out(`patched output: ${samePatched ? 'identical' : 'DIFFERENT'}; unpatched output: ` +
    `${sameRest ? 'identical but for' : 'DIFFERENT, and adds'} ${diff.length === 0 ? 'nothing' : diff.map((l) => `"${l}"`).join(', ')}\n`);
  out('  (in ring 1 popf cannot set IF: the console driver\'s irqrestore left interrupts off,\n' +
    '   and a tick that came while one was pending was lost)\n\n');
  out(`  ${'way'.padEnd(56)}${'virtual ms'.padStart(11)}${'hypercalls'.padStart(11)}${'traps'.padStart(8)}` +
    `${'lost ticks'.padStart(11)}\n`);
  for (const r of runs) {
    const traps = r.privTraps + r.ptWriteTraps + r.shadowFills + r.iretTraps;
    out(`  ${WAYS[r.mode].padEnd(56)}${(r.endNs / 1e6).toFixed(2).padStart(11)}${String(r.hypercalls).padStart(11)}` +
      `${String(traps).padStart(8)}${String(r.kernelLostTicks).padStart(11)}${r.failure ? `  (${r.failure})` : ''}\n`);
  }
  out('  (native and unpatched print on a 115200-baud serial port, polled; patched uses console_io)\n');
  const top = Object.entries(unpatched.privOpsByName).sort((a, b) => b[1] - a[1]).slice(0, 5);
  out(`  unpatched traps by instruction: ${top.map(([n, c]) => `${n} ${c}`).join(', ')}, ` +
    `page-table writes ${unpatched.ptWriteTraps}, shadow fills ${unpatched.shadowFills}, irets ${unpatched.iretTraps}\n`);
  return runs.every((r) => r.poweredOff) && samePatched && sameRest && diff.length === 1 && unpatched.timerLost === 1;
}
