// The guest kernel's rules, each checked natively, patched under Xen and unpatched under
// trap-and-emulate (the same program, the same expected output): system-call errors, demand paging, faults that
// kill a process, preemption by the timeslice, and sleep.

import { expect } from 'chai';
import { DEFAULT_COSTS } from '../../hypervisor/arch/costs.ts';
import { runKernel, type KernelRun } from '../../dom0/toolstack/kernel-runs.ts';
import { makeKernelImage } from '../../guests/kernel/index.ts';
import { BRK_BASE, MMAP_BASE, TICK_NS, TIMESLICE_TICKS } from '../../guests/kernel/layout.ts';
import {
  brk, fork, getpid, mmap, print, sched_yield, sleep, syscall, UserText, write,
} from '../../guests/kernel/user/libc.ts';

function rulesProgram(): { programs: UserText['programs']; init: number } {
  const t = new UserText();
  const wild = t.add(function* (cpu) {
    cpu.load32(0x5000);
    return 0;
  });
  const privileged = t.add(function* (cpu) {
    cpu.cli();
    return 0;
  });
  const hypercall = t.add(function* (cpu) {
    cpu.hypercall(17, 0, 0);
    return 0;
  });
  const spinner = t.add(function* (cpu) {
    // 60 ms of computing, with boundaries where the tick can preempt it.
    for (let i = 0; i < 600; i++) {
      cpu.compute(240_000);
      yield;
    }
    yield* print(cpu, 'spinner: done');
    return 0;
  });
  const other = t.add(function* (cpu) {
    yield* print(cpu, 'other: ran');
    return 0;
  });
  const init = t.add(function* (cpu) {
    yield* print(cpu, `write fd 5: ${yield* write(cpu, 5, 0x3ffff000, 1)}`);
    yield* print(cpu, `write unmapped: ${yield* write(cpu, 1, 0x5000, 4)}`);
    yield* print(cpu, `write past user space: ${yield* write(cpu, 1, 0x3ffffff0, 0x100)}`);
    yield* print(cpu, `unknown syscall: ${yield* syscall(cpu, 99)}`);
    yield* print(cpu, `brk(0): ${(yield* brk(cpu, 0)) === BRK_BASE}`);
    yield* print(cpu, `brk lower: ${(yield* brk(cpu, BRK_BASE - 4096)) === BRK_BASE}`);
    yield* print(cpu, `mmap(0): ${yield* mmap(cpu, 0)}`);
    const m = yield* mmap(cpu, 3 * 4096);
    yield* print(cpu, `mmap at base: ${m === MMAP_BASE}`);
    // A kernel copy from a never-touched mmap page maps it on demand.
    cpu.store8(m + 4096 + 10, 65);
    yield* print(cpu, `write from mmap: ${yield* write(cpu, 1, m + 2 * 4096 + 100, 1)}`);
    const second = yield* mmap(cpu, 4096);
    yield* print(cpu, `regions apart: ${second === m + 4 * 4096}`);
    for (const child of [wild, privileged, hypercall]) {
      yield* fork(cpu, child);
      yield* sched_yield(cpu);
    }
    // Preemption: the spinner runs longer than its timeslice; the other process runs before it finishes.
    yield* fork(cpu, spinner);
    yield* fork(cpu, other);
    const t0 = cpu.rdtsc();
    yield* sleep(cpu, 100);
    const slept = (cpu.rdtsc() - t0) / DEFAULT_COSTS.clockMhz / 1000;
    yield* print(cpu, `slept 100 ms: ${slept >= 100 && slept < 100 + (2 * TICK_NS) / 1e6}`);
    yield* print(cpu, `pid still ${yield* getpid(cpu)}`);
    return 0;
  });
  return { programs: t.programs, init };
}

for (const mode of ['native', 'patched', 'unpatched'] as const) {
  describe(`guest kernel rules (${mode})`, () => {
    let r: KernelRun;
    before(() => {
      r = runKernel(mode, makeKernelImage(rulesProgram()));
    });

    const lines = (): string[] => r.console.slice(2); // past the boot banner
    /** `first` appears, and `next` right after it. */
    const adjacent = (first: string, next: string): void => {
      const i = lines().indexOf(first);
      expect(i, first).to.be.greaterThan(-1);
      expect(lines()[i + 1]).to.equal(next);
    };

    it('runs to power-off', () => {
      expect(r.failure).to.equal('');
      expect(r.poweredOff).to.equal(true);
    });

    it('write to a descriptor other than 1 or 2 is -EBADF', () => {
      expect(lines()).to.include('write fd 5: -9');
    });

    it('write from an unmapped user buffer is -EFAULT (the kernel fault unwinds to the system call)', () => {
      expect(lines()).to.include('write unmapped: -14');
    });

    it('write from a buffer reaching past user space is -EFAULT before any access', () => {
      expect(lines()).to.include('write past user space: -14');
    });

    it('an unknown system call is -ENOSYS', () => {
      expect(lines()).to.include('unknown syscall: -38');
    });

    it('brk(0) and brk below the current end return the current end unchanged', () => {
      expect(lines()).to.include.members(['brk(0): true', 'brk lower: true']);
    });

    it('mmap of length 0 is -EINVAL; regions start at MMAP_BASE with a guard page between them', () => {
      expect(lines()).to.include.members(['mmap(0): -22', 'mmap at base: true', 'regions apart: true']);
    });

    it('a kernel access to an untouched page of an mmap region maps it on demand', () => {
      // The byte is 0 (a fresh page), which the console drops; the count says it was read.
      expect(lines()).to.include('write from mmap: 1');
    });

    it('a user access to an unmapped address kills the process with a segmentation fault (status 139)', () => {
      adjacent('pid 2: segmentation fault at 0x5000', 'pid 2 exited (139)');
    });

    it('a privileged instruction in user mode is a general protection fault that kills the process', () => {
      adjacent('pid 3: general protection fault', 'pid 3 exited (139)');
    });

    it('a hypercall instruction in user mode is an invalid opcode that kills the process', () => {
      adjacent('pid 4: invalid opcode', 'pid 4 exited (139)');
    });

    it(`a process computing past its timeslice (${TIMESLICE_TICKS} ticks) is preempted: another runs before it finishes`, () => {
      const l = lines();
      expect(l.indexOf('other: ran')).to.be.greaterThan(-1);
      expect(l.indexOf('other: ran')).to.be.lessThan(l.indexOf('spinner: done'));
    });

    it('sleep lasts at least its time and wakes within two ticks of it', () => {
      expect(lines()).to.include('slept 100 ms: true');
    });

    it('no tick is lost', () => {
      expect(r.console.some((l) => l.startsWith('timer:'))).to.equal(false);
    });
  });
}
