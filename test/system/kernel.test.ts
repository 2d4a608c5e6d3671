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

describe('system: one kernel, natively and under Xen', () => {
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

  it('the same workload twice gives the same output at the same virtual times', () => {
    for (const mode of ['native', 'patched'] as const) {
      const a = runKernel(mode, makeKernelImage(workload()));
      const b = runKernel(mode, makeKernelImage(workload()));
      expect(b).to.deep.equal(a);
    }
  });
});
