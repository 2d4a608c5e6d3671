// The system test's workload: system calls, page faults, fork and a timer sleep, with
// output that does not depend on how fast the machine under it is. Layer: guests (user).
//
// init forks a child, then sleeps; the child runs while init sleeps and exits. When
// init wakes it writes one long line at once — under trap-and-emulate the popf at the
// end of the console driver's first byte leaves interrupts disabled for the whole line
// (113 bytes: 9.8 ms of serial output at 115200 baud). The line starts just after the
// tick that woke init, so the window holds the next two 4 ms ticks and ends before the
// third: the second is lost, and the kernel reports it. (Were the line to start later
// than about 2 ms after that tick — a much slower wake-up path — a third tick would
// fall in the window and two would be lost.)

import { BRK_BASE } from '../layout.ts';
import { brk, fork, getpid, mmap, print, sched_yield, sleep, UserText } from './libc.ts';

/** 112 characters (and a newline): at 115200 baud, 9.8 ms — more than two 4 ms ticks, less than three. */
export const LONG_LINE = 'init: awake; ' + 'the quick brown fox jumps over the lazy dog; '.repeat(2) + 'done.....';

export function workload(): { programs: UserText['programs']; init: number } {
  const t = new UserText();
  const child = t.add(function* (cpu) {
    const pid = yield* getpid(cpu);
    yield* print(cpu, `child: pid ${pid}`);
    yield* print(cpu, `child: inherited ${cpu.load32(BRK_BASE)}`);
    cpu.store32(BRK_BASE, 7);
    yield* print(cpu, `child: now ${cpu.load32(BRK_BASE)}`);
    return 3;
  });
  const init = t.add(function* (cpu) {
    yield* print(cpu, 'init: hello from user mode');
    yield* print(cpu, `init: pid ${yield* getpid(cpu)}`);
    // brk: four pages, allocated and mapped now.
    const base = yield* brk(cpu, 0);
    const end = yield* brk(cpu, base + 4 * 4096);
    for (let va = base; va < end; va += 4096) cpu.store32(va, (va - base) / 4096 + 40);
    yield* print(cpu, `init: brk grew by ${(end - base) / 1024} KiB`);
    // mmap: eight pages, each mapped by a page fault on first touch.
    const m = yield* mmap(cpu, 8 * 4096);
    let sum = 0;
    for (let i = 0; i < 8; i++) {
      cpu.store32(m + i * 4096, i + 1);
      sum += cpu.load32(m + i * 4096);
      yield;
    }
    yield* print(cpu, `init: mmap pages sum to ${sum}`);
    const pid = yield* fork(cpu, child);
    yield* print(cpu, `init: forked pid ${pid}`);
    yield* sleep(cpu, 20);
    yield* print(cpu, LONG_LINE);
    yield* print(cpu, `init: still ${cpu.load32(BRK_BASE)}`);
    for (let i = 0; i < 3; i++) yield* sched_yield(cpu);
    return 0;
  });
  return { programs: t.programs, init };
}
