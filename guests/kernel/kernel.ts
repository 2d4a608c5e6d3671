// The guest kernel: boot, entries, the scheduler and the system calls. Layer: guests.
//
// It boots from start_info (from Xen's builder or a native boot loader), picks its
// pv-ops from start_info's magic, takes over the boot page tables and extends them with
// a mapping of its own text, installs its entry points, and starts the tick. User
// programs run at ring 3 in their own address spaces; a run queue, a sleep queue and a
// small system-call table serve them. The kernel keeps no context of its own across a
// block: a system call that blocks saves the user frame in the process, and whatever
// runs next starts from its own saved frame (a kernel of continuations, one stack per
// CPU). When no process is runnable the idle loop halts until an interrupt.

import { GuestTrap, REG_RAX, REG_RDI, REG_RDX, REG_RSI, TRAP_gp_fault, TRAP_invalid_op, TRAP_page_fault,
  type GuestVcpu } from '../../hypervisor/public/vcpu.ts';
import { readStartInfo } from '../lib/xen-calls.ts';
import {
  BRK_BASE, DIRECT_MAP, EFAULT, EINVAL, ENOMEM, ENOSYS, ENTRY_GP_FAULT, ENTRY_IDLE, ENTRY_INVALID_OP,
  ENTRY_PAGE_FAULT, ENTRY_SYSCALL, ENTRY_TIMER, KERNEL_TEXT_L3_SLOT, KERNEL_TEXT_L4_SLOT, MMAP_BASE, SYS_brk,
  SYS_exit, SYS_fork, SYS_getpid, SYS_mmap, SYS_sleep, SYS_write, SYS_yield, TICK_NS, TIMESLICE_TICKS, USER_LIMIT,
  USER_STACK_TOP, USER_TEXT,
} from './layout.ts';
import { AddressSpace, PTE_A, PTE_P, PageAllocator, TABLE_FLAGS, USER_DATA, USER_TEXT_FLAGS, allocZeroed, pfnVa } from './mm.ts';
import { NativeOps } from './pvops-native.ts';
import { XenOps } from './pvops-xen.ts';
import type { EntryFrame, PvOps } from './pvops.ts';

const EBADF = 9;
const MAX_WRITE = 4096;

/** A user process. */
export class Process {
  /** The saved user context: where it resumes, its stack, and RAX on resumption. */
  rip = 0;
  rsp = USER_STACK_TOP - 16;
  rax = 0;
  wakeAt = 0;
  sliceStart = 0;
  brk = BRK_BASE;
  mmapNext = MMAP_BASE;
  readonly mmaps: [number, number][] = [];

  constructor(readonly pid: number, readonly as: AddressSpace) {}
}

type Entry = Generator<number | undefined, void, number>;

export class Kernel {
  ops!: PvOps;
  private mem!: PageAllocator;
  /** The boot L4: the kernel's own address space, shared by every process's kernel half. */
  private masterL4 = 0;
  private textPfn = 0;
  private kernelStackTop = 0;
  private idleStackTop = 0;
  private readonly procs = new Map<number, Process>();
  private readonly runq: Process[] = [];
  private readonly sleepers: Process[] = [];
  private current: Process | null = null;
  /** The address space whose tables are loaded. */
  private loaded: AddressSpace | null = null;
  private nextPid = 1;
  /** Ticks since the timer started, and the tick's time origin. */
  jiffies = 0;
  private t0 = 0;
  /** Ticks that never arrived as interrupts (noticed from the clock). */
  lostTicks = 0;

  constructor(readonly cpu: GuestVcpu, private readonly initEntry: number) {}

  // ---- boot ---------------------------------------------------------------------

  *boot(): Entry {
    const cpu = this.cpu;
    const siVa = cpu.reg(REG_RSI);
    const si = readStartInfo(cpu, siVa);
    const ptPfn = Math.round((si.ptBase - DIRECT_MAP) / 4096);
    this.masterL4 = ptPfn;
    // The boot loader's image: start_info, the P2M list, the tables, one stack page.
    this.mem = new PageAllocator(ptPfn + si.nrPtFrames + 1, si.nrPages);
    const free = this.mem.available;
    this.ops = isXen(cpu, siVa) ? new XenOps(cpu, si) : new NativeOps(cpu);
    const pageVa = (): number => pfnVa(this.page());
    this.ops.init(pageVa);
    this.mapKernelText();
    this.kernelStackTop = this.stack(2);
    this.idleStackTop = this.stack(1);
    this.ops.setupTraps([
      { vector: TRAP_page_fault, address: ENTRY_PAGE_FAULT, dpl: 0, disableInterrupts: true },
      { vector: TRAP_gp_fault, address: ENTRY_GP_FAULT, dpl: 0, disableInterrupts: true },
      { vector: TRAP_invalid_op, address: ENTRY_INVALID_OP, dpl: 0, disableInterrupts: true },
      { vector: 0x80, address: ENTRY_SYSCALL, dpl: 3, disableInterrupts: false },
    ], ENTRY_TIMER, this.kernelStackTop, pageVa);
    yield* this.printk(`kernel: ${si.nrPages * 4} KiB of memory, ${free} pages free at boot`);
    this.textPfn = this.page();
    const init = this.spawn(this.initEntry);
    yield* this.printk(`kernel: starting init (pid ${init.pid})`);
    this.t0 = this.ops.clockNs();
    this.ops.startTick(this.t0, TICK_NS);
    this.runq.push(init);
    this.schedule();
  }

  private page(): number {
    const pfn = allocZeroed(this.ops, this.mem);
    if (pfn < 0) throw new Error('kernel: out of memory');
    return pfn;
  }

  /** `n` contiguous pages for a stack; returns its top. */
  private stack(n: number): number {
    let last = -1;
    for (let i = 0; i < n; i++) last = this.page();
    return pfnVa(last) + 4096;
  }

  /**
   * Extends the boot tables: maps one page of kernel text at KERNEL_TEXT through new
   * L3, L2 and L1 tables, written while fresh and then hooked into the live boot L4.
   */
  private mapKernelText(): void {
    const ops = this.ops;
    const l3 = this.page();
    const l2 = this.page();
    const l1 = this.page();
    const text = this.page();
    const entry = (pfn: number, flags: number): [number, number] => {
      const f = ops.frameOf(pfn);
      return [((f * 4096) | flags) >>> 0, Math.floor(f / 0x100000)];
    };
    ops.writePte(l1, pfnVa(l1), 0, ...entry(text, PTE_P | PTE_A), false);
    ops.writePte(l2, pfnVa(l2), 0, ...entry(l1, TABLE_FLAGS), false);
    ops.writePte(l3, pfnVa(l3), KERNEL_TEXT_L3_SLOT, ...entry(l2, TABLE_FLAGS), false);
    ops.activateTables([l3, l2, l1], -1);
    ops.writePte(this.masterL4, pfnVa(this.masterL4), KERNEL_TEXT_L4_SLOT, ...entry(l3, TABLE_FLAGS), true);
    ops.flushPtes();
  }

  /** The first process: program text and one stack page in a new address space. */
  private spawn(entry: number): Process {
    const as = AddressSpace.create(this.ops, this.mem, this.masterL4);
    const stack = this.page();
    if (!as || !as.map(USER_TEXT, this.textPfn, USER_TEXT_FLAGS, true) ||
      !as.map(USER_STACK_TOP - 4096, stack, USER_DATA)) {
      throw new Error('kernel: out of memory for init');
    }
    as.activate();
    const p = new Process(this.nextPid++, as);
    p.rip = entry;
    this.procs.set(p.pid, p);
    return p;
  }

  // ---- scheduling --------------------------------------------------------------------

  /** Runs the next runnable process, or the idle loop. Never returns. */
  private schedule(): never {
    const next = this.runq.shift();
    if (next) return this.switchTo(next);
    this.current = null;
    return this.ops.returnTo({ rip: ENTRY_IDLE, rsp: this.idleStackTop, user: false, interruptsOn: false, rax: 0 });
  }

  private switchTo(p: Process): never {
    this.current = p;
    p.sliceStart = this.jiffies;
    if (this.loaded !== p.as) {
      this.ops.switchAddressSpace(p.as.l4);
      this.loaded = p.as;
    }
    return this.ops.returnTo({ rip: p.rip, rsp: p.rsp, user: true, interruptsOn: true, rax: p.rax });
  }

  /** The idle loop: with nothing runnable, enable interrupts and halt until one comes. */
  *idle(): Entry {
    const ops = this.ops;
    for (;;) {
      ops.irqDisable();
      if (this.procs.size === 0) return yield* this.shutdown();
      if (this.runq.length > 0) this.schedule();
      ops.safeHalt();
      yield;
    }
  }

  private *shutdown(): Entry {
    this.ops.stopTick();
    if (this.lostTicks > 0) {
      yield* this.printk(`timer: ${this.lostTicks} tick${this.lostTicks === 1 ? '' : 's'} lost`);
    }
    yield* this.printk('kernel: no processes left, powering off');
    this.ops.powerOff();
  }

  // ---- entries --------------------------------------------------------------------

  /** The timer interrupt (native) or the event upcall (Xen). */
  *timer(): Entry {
    const ops = this.ops;
    const f = ops.readFrame(false);
    const rax = this.cpu.reg(REG_RAX);
    if (ops.timerAck()) this.tick();
    const p = this.current;
    if (f.fromUser && p && this.jiffies - p.sliceStart >= TIMESLICE_TICKS && this.runq.length > 0) {
      this.save(p, f, rax);
      this.runq.push(p);
      this.schedule();
    }
    ops.returnTo({ rip: f.rip, rsp: f.rsp, user: f.fromUser, interruptsOn: f.interruptsOn, rax });
  }

  /**
   * One tick. The clock says how many tick periods have passed: more than one since
   * the last tick means timer interrupts were lost (interrupts were off too long).
   */
  private tick(): void {
    const now = this.ops.clockNs();
    const expected = Math.floor((now - this.t0) / TICK_NS);
    if (expected > this.jiffies) {
      this.lostTicks += expected - this.jiffies - 1;
      this.jiffies = expected;
      for (let i = 0; i < this.sleepers.length;) {
        const p = this.sleepers[i];
        if (p.wakeAt <= this.jiffies) {
          this.sleepers.splice(i, 1);
          this.runq.push(p);
        } else {
          i++;
        }
      }
    }
    this.ops.rearmTick(this.t0 + (this.jiffies + 1) * TICK_NS);
  }

  private save(p: Process, f: EntryFrame, rax: number): void {
    p.rip = f.rip;
    p.rsp = f.rsp;
    p.rax = rax;
  }

  *pageFault(): Entry {
    const ops = this.ops;
    const f = ops.readFrame(true);
    const addr = ops.faultAddress();
    const rax = this.cpu.reg(REG_RAX);
    const p = this.current;
    // The fault address is safe in hand: interrupts back on if the faulting code had them.
    if (f.interruptsOn) ops.irqEnable();
    if (p && this.demandMap(p, addr)) {
      ops.returnTo({ rip: f.rip, rsp: f.rsp, user: f.fromUser, interruptsOn: f.interruptsOn, rax });
    }
    // A kernel access to a bad user pointer: unwind to the system call (its fixup).
    if (!f.fromUser) throw new GuestTrap(TRAP_page_fault, f.errorCode, addr);
    yield* this.kill(p!, `segmentation fault at 0x${addr.toString(16)}`);
  }

  /** Demand-zero paging for mmap'd regions; false if `addr` is not one of them or mapped. */
  private demandMap(p: Process, addr: number): boolean {
    if (addr < 0 || addr >= USER_LIMIT) return false;
    const va = Math.floor(addr / 4096) * 4096;
    if (p.as.isMapped(va) || !p.mmaps.some(([s, e]) => va >= s && va < e)) return false;
    const pfn = allocZeroed(this.ops, this.mem);
    if (pfn < 0 || !p.as.map(va, pfn, USER_DATA)) {
      if (pfn >= 0) this.mem.release(pfn);
      return false;
    }
    this.ops.flushPtes();
    return true;
  }

  *gpFault(): Entry {
    const f = this.ops.readFrame(true);
    if (f.interruptsOn) this.ops.irqEnable();
    if (!f.fromUser) throw new GuestTrap(TRAP_gp_fault, f.errorCode, 0);
    yield* this.kill(this.current!, 'general protection fault');
  }

  *invalidOp(): Entry {
    const f = this.ops.readFrame(false);
    if (f.interruptsOn) this.ops.irqEnable();
    if (!f.fromUser) throw new GuestTrap(TRAP_invalid_op, 0, 0);
    yield* this.kill(this.current!, 'invalid opcode');
  }

  private *kill(p: Process, why: string): Entry {
    yield* this.printk(`pid ${p.pid}: ${why}`);
    yield* this.exit(p, 139);
  }

  // ---- system calls ---------------------------------------------------------------

  *syscall(): Entry {
    const cpu = this.cpu;
    const f = this.ops.readFrame(false);
    const p = this.current!;
    this.save(p, f, 0);
    const a = cpu.reg(REG_RDI);
    const b = cpu.reg(REG_RSI);
    const c = cpu.reg(REG_RDX);
    let r: number;
    switch (cpu.reg(REG_RAX)) {
      case SYS_write: r = yield* this.sysWrite(a, b, c); break;
      case SYS_getpid: r = p.pid; break;
      case SYS_yield:
        this.runq.push(p);
        return this.schedule();
      case SYS_sleep: return this.sysSleep(p, a);
      case SYS_exit: return yield* this.exit(p, a);
      case SYS_brk: r = this.sysBrk(p, a); break;
      case SYS_mmap: r = this.sysMmap(p, a); break;
      case SYS_fork: r = this.sysFork(p, a); break;
      default: r = -ENOSYS;
    }
    this.ops.returnTo({ rip: f.rip, rsp: f.rsp, user: true, interruptsOn: true, rax: r });
  }

  private *sysWrite(fd: number, buf: number, len: number): Generator<number | undefined, number, number> {
    if (fd !== 1 && fd !== 2) return -EBADF;
    if (len < 0 || len > MAX_WRITE) return -EINVAL;
    if (buf < 0 || buf + len > USER_LIMIT) return -EFAULT;
    const bytes = new Uint8Array(len);
    try {
      for (let i = 0; i < len; i++) bytes[i] = this.cpu.load8(buf + i);
    } catch (e) {
      if (e instanceof GuestTrap) return -EFAULT;
      throw e;
    }
    yield* this.ops.consoleWrite(bytes, len);
    return len;
  }

  private sysSleep(p: Process, ms: number): never {
    const ticks = Math.max(1, Math.ceil((ms * 1e6) / TICK_NS));
    // The sleep queue is shared with the tick handler: interrupts off while changing it.
    const flags = this.ops.irqSave();
    // One tick more than asked, as Linux's msleep: the current tick is partly gone.
    p.wakeAt = this.jiffies + ticks + 1;
    this.sleepers.push(p);
    this.ops.irqRestore(flags);
    p.rax = 0;
    return this.schedule();
  }

  private *exit(p: Process, code: number): Entry {
    // Like a shell, the kernel reports only a failing exit status.
    if (code !== 0) yield* this.printk(`pid ${p.pid} exited (${code})`);
    this.procs.delete(p.pid);
    if (this.loaded === p.as) {
      this.ops.switchAddressSpace(this.masterL4);
      this.loaded = null;
    }
    p.as.destroy();
    this.current = null;
    this.schedule();
  }

  /** brk: grows the heap, allocating and mapping its pages now; 0 asks for the current end. */
  private sysBrk(p: Process, end: number): number {
    if (end === 0 || end <= p.brk) return p.brk;
    if (end > MMAP_BASE) return p.brk;
    const from = Math.ceil(p.brk / 4096) * 4096;
    for (let va = from; va < end; va += 4096) {
      const pfn = allocZeroed(this.ops, this.mem);
      if (pfn < 0 || !p.as.map(va, pfn, USER_DATA)) {
        if (pfn >= 0) this.mem.release(pfn);
        this.ops.flushPtes();
        return p.brk;
      }
      p.brk = Math.min(end, va + 4096);
    }
    p.brk = end;
    this.ops.flushPtes();
    return end;
  }

  /** mmap of anonymous memory: reserves the range; pages come on first touch. */
  private sysMmap(p: Process, len: number): number {
    if (len <= 0) return -EINVAL;
    const size = Math.ceil(len / 4096) * 4096;
    const start = p.mmapNext;
    if (start + size > USER_STACK_TOP - 0x100000) return -ENOMEM;
    p.mmaps.push([start, start + size]);
    p.mmapNext = start + size + 4096; // a guard page between regions
    return start;
  }

  /**
   * fork: the child gets a copy of the address space and starts at `childEntry` (a
   * generator cannot be cloned, so the child's resume point is an address) with the
   * parent's stack pointer and RAX 0.
   */
  private sysFork(p: Process, childEntry: number): number {
    if (childEntry < 0 || childEntry >= USER_LIMIT) return -EFAULT;
    const as = p.as.fork();
    if (!as) return -ENOMEM;
    const child = new Process(this.nextPid++, as);
    child.rip = childEntry;
    child.rsp = p.rsp;
    child.brk = p.brk;
    child.mmapNext = p.mmapNext;
    for (const m of p.mmaps) child.mmaps.push([m[0], m[1]]);
    this.procs.set(child.pid, child);
    this.runq.push(child);
    return child.pid;
  }

  // ---- console ----------------------------------------------------------------------

  *printk(s: string): Entry {
    const bytes = new Uint8Array(s.length + 1);
    for (let i = 0; i < s.length; i++) bytes[i] = s.charCodeAt(i) & 0xff;
    bytes[s.length] = 10;
    yield* this.ops.consoleWrite(bytes, bytes.length);
  }
}

/** Whether start_info's magic says Xen ("xen-3.0-x86_64"). */
function isXen(cpu: GuestVcpu, siVa: number): boolean {
  return cpu.load8(siVa) === 0x78 && cpu.load8(siVa + 1) === 0x65 && cpu.load8(siVa + 2) === 0x6e &&
    cpu.load8(siVa + 3) === 0x2d;
}
