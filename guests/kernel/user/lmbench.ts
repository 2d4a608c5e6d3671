// lmbench-style microbenchmarks as user programs, timed in virtual time with rdtsc
// (cycles): null system call, page fault, fork, and context switch — the rows of the
// Xen paper's lmbench table. Layer: guests (user). Each result is printed as
// "lmbench <name> <cycles per operation>" for the bench harness to read.

import type { GuestVcpu } from '../../../hypervisor/public/vcpu.ts';
import { fork, getpid, mmap, print, sched_yield, UserText } from './libc.ts';

export const LMBENCH_ROWS = ['null-syscall', 'page-fault', 'fork', 'context-switch'] as const;

export interface LmbenchCounts {
  syscalls?: number;
  faults?: number;
  forks?: number;
  switches?: number;
}

function* report(cpu: GuestVcpu, name: string, cycles: number, n: number): Generator<number | undefined, void, number> {
  yield* print(cpu, `lmbench ${name} ${Math.round(cycles / n)}`);
}

export function lmbench(c: LmbenchCounts = {}): { programs: UserText['programs']; init: number } {
  const syscalls = c.syscalls ?? 2000;
  const faults = c.faults ?? 200;
  const forks = c.forks ?? 20;
  const switches = c.switches ?? 500;
  const t = new UserText();
  const quit = t.add(function* () {
    return 0;
  });
  const pingPong = t.add(function* (cpu) {
    for (let i = 0; i < switches; i++) yield* sched_yield(cpu);
    return 0;
  });
  const init = t.add(function* (cpu) {
    // null system call: getpid.
    let t0 = cpu.rdtsc();
    for (let i = 0; i < syscalls; i++) yield* getpid(cpu);
    yield* report(cpu, 'null-syscall', cpu.rdtsc() - t0, syscalls);
    // fork: fork a child that exits at once, and yield until it has gone (lmbench's
    // fork+exit; there is no wait).
    t0 = cpu.rdtsc();
    for (let i = 0; i < forks; i++) {
      yield* fork(cpu, quit);
      yield* sched_yield(cpu);
    }
    yield* report(cpu, 'fork', cpu.rdtsc() - t0, forks);
    // context switch: two processes yielding to each other.
    yield* fork(cpu, pingPong);
    yield* sched_yield(cpu);
    t0 = cpu.rdtsc();
    for (let i = 0; i < switches; i++) yield* sched_yield(cpu);
    yield* report(cpu, 'context-switch', cpu.rdtsc() - t0, 2 * switches);
    // page fault: the first touch of each page of an anonymous mapping (last, so that
    // fork copies a small address space, as lmbench's does).
    const m = yield* mmap(cpu, faults * 4096);
    t0 = cpu.rdtsc();
    for (let i = 0; i < faults; i++) cpu.store32(m + i * 4096, i);
    yield* report(cpu, 'page-fault', cpu.rdtsc() - t0, faults);
    return 0;
  });
  return { programs: t.programs, init };
}
