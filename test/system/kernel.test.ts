// System: the guest kernel (guests/kernel/) running one user workload — system calls,
// page faults, fork and a timer sleep — natively on the bare machine, patched under Xen
// and unpatched under trap-and-emulate. The output is the same every way except that
// the unpatched kernel, whose popf cannot re-enable interrupts in ring 1, loses a tick.

import { expect } from 'chai';
import { runKernel, type KernelMode, type KernelRun } from '../../dom0/toolstack/kernel-runs.ts';
import { makeKernelImage } from '../../guests/kernel/index.ts';
import { LONG_LINE, workload } from '../../guests/kernel/user/workload.ts';

const EXPECTED = [
  'kernel: 16384 KiB of memory, 4075 pages free at boot',
  'kernel: starting init (pid 1)',
  'init: hello from user mode',
  'init: pid 1',
  'init: brk grew by 16 KiB',
  'init: mmap pages sum to 36',
  'init: forked pid 2',
  'child: pid 2',
  'child: inherited 40',
  'child: now 7',
  'pid 2 exited (3)',
  LONG_LINE,
  'init: still 40',
  'kernel: no processes left, powering off',
];

const runs = new Map<KernelMode, KernelRun>();
function run(mode: KernelMode): KernelRun {
  let r = runs.get(mode);
  if (!r) {
    r = runKernel(mode, makeKernelImage(workload()));
    runs.set(mode, r);
  }
  return r;
}

describe('system: one kernel natively, patched and unpatched', () => {
  it('natively at CPL 0 on the bare machine the workload completes and the machine powers off', () => {
    const r = run('native');
    expect(r.failure).to.equal('');
    expect(r.poweredOff).to.equal(true);
    expect(r.console).to.deep.equal(EXPECTED);
    expect(r.timerLost).to.equal(0);
    expect(r.timerRaised).to.be.greaterThan(5);
  });

  it('patched (Xen pv-ops, ring 1) gives the same console output and shuts the domain down with poweroff', () => {
    const r = run('patched');
    expect(r.failure).to.equal('');
    expect(r.poweredOff).to.equal(true);
    expect(r.console).to.deep.equal(EXPECTED);
  });

  it('unpatched (native pv-ops in ring 1 under trap-and-emulate) prints the same, plus one lost tick: a popf did not re-enable interrupts', () => {
    const r = run('unpatched');
    expect(r.failure).to.equal('');
    expect(r.poweredOff).to.equal(true);
    const expected = [...EXPECTED];
    expected.splice(expected.length - 1, 0, 'timer: 1 tick lost');
    expect(r.console).to.deep.equal(expected);
    // The virtual APIC saw it: one edge arrived while the previous was still pending.
    expect(r.timerLost).to.equal(1);
    expect(r.kernelLostTicks).to.equal(1);
    expect(run('native').timerLost).to.equal(0);
    expect(run('native').kernelLostTicks + run('patched').kernelLostTicks).to.equal(0);
  });

  it('the unpatched kernel takes traps where the patched one makes hypercalls', () => {
    const u = run('unpatched');
    const p = run('patched');
    expect(u.hypercalls).to.equal(0);
    expect(p.privTraps + p.ptWriteTraps + p.shadowFills + p.iretTraps).to.equal(0);
    expect(p.hypercalls).to.be.greaterThan(50);
    expect(u.privTraps).to.be.greaterThan(p.hypercalls);
    // Each kind of privileged work trapped: interrupt flag, CR3, the APIC, the serial port.
    for (const insn of ['cli', 'sti', 'mov to cr3', 'wrmsr', 'in', 'out', 'hlt', 'lidt']) {
      expect(u.privOpsByName[insn] ?? 0, insn).to.be.greaterThan(0);
    }
    expect(u.ptWriteTraps).to.be.greaterThan(0);
    expect(u.shadowFills).to.be.greaterThan(0);
    expect(u.iretTraps).to.be.greaterThan(0);
  });

  it('the same workload twice gives the same output, the same log and the same virtual times', () => {
    for (const mode of ['native', 'patched', 'unpatched'] as const) {
      const once = (): [KernelRun, string[]] => {
        const log: string[] = [];
        const r = runKernel(mode, makeKernelImage(workload()), {
          logLevel: 'debug', logDestination: { write: (line: string) => { log.push(line); } },
        });
        return [r, log];
      };
      const [a, logA] = once();
      const [b, logB] = once();
      expect(b, mode).to.deep.equal(a);
      expect(logB, mode).to.deep.equal(logA);
      if (mode !== 'native') expect(logA.length, `${mode}: log records`).to.be.greaterThan(0);
      // Each record names its domain once (a child logger's binding is not repeated).
      for (const line of logA) expect(line.split('"dom":').length, line).to.be.at.most(2);
    }
  });
});
