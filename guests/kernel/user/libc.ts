// What user programs link against: the system-call stubs (int 0x80 with the number in
// RAX and arguments in RDI, RSI, RDX) and a way to lay out program text. Layer:
// guests (user mode, ring 3).

import { REG_RAX, REG_RDI, REG_RDX, REG_RSI, type GuestCode, type GuestVcpu } from '../../../hypervisor/public/vcpu.ts';
import {
  SYS_brk, SYS_exit, SYS_fork, SYS_getpid, SYS_mmap, SYS_sleep, SYS_write, SYS_yield, USER_STACK_TOP, USER_TEXT,
} from '../layout.ts';

export type UserMain = (cpu: GuestVcpu) => Generator<number | undefined, number | void, number>;
type Call = Generator<number | undefined, number, number>;

export function* syscall(cpu: GuestVcpu, nr: number, a = 0, b = 0, c = 0): Call {
  cpu.setReg(REG_RAX, nr);
  cpu.setReg(REG_RDI, a);
  cpu.setReg(REG_RSI, b);
  cpu.setReg(REG_RDX, c);
  return yield 0x80;
}

/** Scratch buffer for strings: the bottom of the stack page. */
const SCRATCH = USER_STACK_TOP - 4096;

/** write(1, s + "\n"). */
export function* print(cpu: GuestVcpu, s: string): Call {
  const n = Math.min(s.length, 3000);
  for (let i = 0; i < n; i++) cpu.store8(SCRATCH + i, s.charCodeAt(i));
  cpu.store8(SCRATCH + n, 10);
  return yield* syscall(cpu, SYS_write, 1, SCRATCH, n + 1);
}

export function* write(cpu: GuestVcpu, fd: number, buf: number, len: number): Call {
  return yield* syscall(cpu, SYS_write, fd, buf, len);
}
export function* getpid(cpu: GuestVcpu): Call {
  return yield* syscall(cpu, SYS_getpid);
}
export function* sched_yield(cpu: GuestVcpu): Call {
  return yield* syscall(cpu, SYS_yield);
}
export function* sleep(cpu: GuestVcpu, ms: number): Call {
  return yield* syscall(cpu, SYS_sleep, ms);
}
export function* exit(cpu: GuestVcpu, code: number): Call {
  return yield* syscall(cpu, SYS_exit, code);
}
export function* brk(cpu: GuestVcpu, end: number): Call {
  return yield* syscall(cpu, SYS_brk, end);
}
export function* mmap(cpu: GuestVcpu, len: number): Call {
  return yield* syscall(cpu, SYS_mmap, len);
}
/** fork: returns the child's pid; the child starts at `childEntry` (a UserText address). */
export function* fork(cpu: GuestVcpu, childEntry: number): Call {
  return yield* syscall(cpu, SYS_fork, childEntry);
}

/**
 * Program text: each program gets an entry address in the text page; returning from
 * main calls exit with its result (0 if none).
 */
export class UserText {
  readonly programs = new Map<number, GuestCode>();
  private next = USER_TEXT;

  add(main: UserMain): number {
    if (this.next >= USER_TEXT + 4096) throw new Error('user text page is full');
    const va = this.next;
    this.next += 16;
    this.programs.set(va, function* (cpu) {
      const code = yield* main(cpu);
      yield* exit(cpu, typeof code === 'number' ? code : 0);
    });
    return va;
  }
}
