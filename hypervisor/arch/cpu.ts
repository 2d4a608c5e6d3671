// An x86-64 CPU as the simulator runs guest code on it: privilege level, registers,
// CR3/CR2 and the TLB, loads and stores through the page walk, and the execution engine
// that steps guest generators. Layer: hypervisor/arch. What the CPU does not decide by
// itself (privileged instructions, hypercalls, where a fault or interrupt is delivered)
// it asks its host: the hypervisor for a vCPU, the bare-machine firmware for a native CPU.
//
// Execution (DESIGN §2): the CPU runs one context (a generator) at a time. At a boundary
// (`yield`) it takes a pending interrupt; `yield n` executes `int n`. A fault in the
// middle of a step is delivered synchronously: the handler runs nested, and its iret back
// to the faulting code retries the instruction. An iret elsewhere is a context switch.

import { ContextTable, TOKEN_HI, type GuestContext } from './contexts.ts';
import type { CostTable } from './costs.ts';
import type { FrameTable } from './frame-table.ts';
import { PAGE_SIZE, type MachineMemory } from './memory.ts';
import {
  ACCESS_FETCH, ACCESS_READ, ACCESS_WRITE, M2P_PSEUDO_BASE, PFEC_page_present, PFEC_user_mode, PFEC_write_access,
  PageWalker, XLATE_GP, pageFaultCode, type PagingContext,
} from './paging.ts';
import { s64 } from './pte.ts';
import { Tlb, type TlbClock } from './tlb.ts';
import {
  REG_RAX, TRAP_gp_fault, TRAP_invalid_op, TRAP_page_fault, VcpuHalted, X86_EFLAGS_IF, X86_EFLAGS_IOPL,
  X86_EFLAGS_MBS, type GuestCode, type GuestVcpu,
} from '../public/vcpu.ts';

// How an event reaches the guest.
/** A fault or trap raised by an instruction (synchronous). */
export const KIND_FAULT = 0;
/** `int n` from guest code. */
export const KIND_SOFTINT = 1;
/** An external interrupt or event upcall, taken at a boundary. */
export const KIND_INTERRUPT = 2;
/** A system call instruction from user mode (64-bit PV: the syscall callback). */
export const KIND_SYSCALL = 3;

// Privileged instructions, as the host sees them.
export const PRIV_CLI = 1;
export const PRIV_STI = 2;
export const PRIV_READ_CR2 = 3;
export const PRIV_HLT = 4;
export const PRIV_READ_CR3 = 5;
export const PRIV_WRITE_CR3 = 6;
export const PRIV_INVLPG = 7;
export const PRIV_LGDT = 8;
export const PRIV_LIDT = 9;
export const PRIV_LTR = 10;
export const PRIV_IN = 11;
export const PRIV_OUT = 12;
export const PRIV_RDMSR = 13;
export const PRIV_WRMSR = 14;
export const PRIV_WBINVD = 15;
export const PRIV_NAMES = ['', 'cli', 'sti', 'mov from cr2', 'hlt', 'mov from cr3', 'mov to cr3', 'invlpg', 'lgdt', 'lidt',
  'ltr', 'in', 'out', 'rdmsr', 'wrmsr', 'wbinvd'];

// What one step of the engine ended with.
export const STEP_RAN = 0;
export const STEP_BLOCKED = 1;
export const STEP_IDLE = 2;
export const STEP_HALTED = 3;

/** A fault retried this many times in a row without progress is a livelock: crash. */
const MAX_RETRIES = 1000;

/** What a CPU needs from the software around it. */
export interface CpuHost {
  readonly mem: MachineMemory;
  readonly frames: FrameTable;
  readonly walker: PageWalker;
  readonly tlbClock: TlbClock;
  readonly costs: CostTable;
  /** A kernel write fault on a present read-only page: true if the store was emulated. */
  emulateStore(cpu: Cpu, lo: number, hi: number, size: number, vlo: number, vhi: number): boolean;
  /** Runs hypercall `nr` (arguments in cpu.args); HYPERVISOR_iret calls cpu.transfer. */
  hypercall(cpu: Cpu, nr: number): number;
  /** Performs privileged instruction `op`, or raises its fault with cpu.fault(). */
  privOp(cpu: Cpu, op: number, a: number, b: number, c: number): number;
  /** Records a page fault's address where the guest will read it (CR2, vcpu_info). */
  notePageFault(cpu: Cpu, lo: number, hi: number): void;
  /**
   * Delivers `vector` of `kind`: writes the frame returning to (retLo, retHi), switches
   * privilege and stack, and sets cpu.entryLo/entryHi to the handler. False when it could
   * not (the domain was crashed or the CPU reset).
   */
  deliver(cpu: Cpu, kind: number, vector: number, errorCode: number, retLo: number, retHi: number): boolean;
  /** The vector of an interrupt the CPU should take at this boundary, or -1. */
  pendingInterrupt(cpu: Cpu): number;
  /** The guest code at a virtual address (a key from s64), if any. */
  codeAt(cpu: Cpu, key: number): GuestCode | undefined;
  /** The CPU's software can no longer run (domain_crash, or a triple fault). */
  crash(cpu: Cpu, reason: string): void;
  /**
   * An iretq to an inner ring, which #GPs on x86: a VMM that runs a kernel deprivileged
   * may emulate it instead (pop the frame's CS, RFLAGS and RSP into the CPU's state) and
   * return true, and iretq then goes to the frame's RIP. False: the #GP is raised.
   */
  emulateIret(cpu: Cpu, cs: number, rflags: number, rsp: number): boolean;
  /**
   * A store (already translated, not yet performed) to machine frame `mfn`, which the
   * walker stamped with the CPU's shadow epoch: the VMM write-protects it (trap-and-emulate
   * shadow paging). Called only for CPUs with a P2M.
   */
  pageTableWrite(cpu: Cpu, mfn: number): void;
  /** A walk read `n` guest page-table frames not yet shadowed (guest-physical tables only). */
  shadowFill(cpu: Cpu, n: number): void;
}

/** Thrown through guest code when control leaves it for good (an iret elsewhere). */
export class ContextSwitch extends Error {
  constructor() {
    super('context switch');
    this.name = 'ContextSwitch';
  }
}
const SWITCH = new ContextSwitch();

export class Cpu implements PagingContext {
  cpl = 1;
  cr3 = 0;
  cr2Lo = 0;
  cr2Hi = 0;
  readonly tlb: Tlb;
  /** General registers; 64-bit values as JS numbers (sign-extended above 2^63). */
  readonly regs = new Float64Array(16);
  rflags = X86_EFLAGS_MBS | X86_EFLAGS_IF;
  /** Cycles this CPU has executed: what its steps cost in virtual time. */
  cycles = 0;
  /** Virtual ns at which `cycleBase` cycles had been executed (set by whoever runs it). */
  timeBase = 0;
  cycleBase = 0;
  /** Hypercall arguments: five 64-bit registers as (lo, hi) pairs. */
  readonly args = new Uint32Array(10);
  /** Set by hlt or a blocking hypercall; cleared when an interrupt wakes the CPU. */
  blocked = false;
  /** Where the host's deliver() says the handler is. */
  entryLo = 0;
  entryHi = 0;
  /** Counts for statistics: faults taken, interrupts taken, software interrupts. */
  faults = 0;
  interrupts = 0;
  softInts = 0;

  /** The running context and the value it is resumed with. */
  private ctx: GuestContext | null = null;
  private resumeValue = 0;
  /** Software interrupt to execute when the running context next runs, or -1. */
  private pendingInt = -1;
  /** Where the last transfer() went. */
  private targetLo = 0;
  private targetHi = 0;
  private nesting = 0;
  readonly port: GuestVcpu;

  /**
   * Guest-physical page tables (trap-and-emulate): PFN → MFN for the walker, and the
   * shadow epoch it stamps table frames with. Null and 0 for machine-frame tables.
   */
  p2m: Float64Array | null = null;
  shadowEpoch = 0;

  /** IDTR, GDTR and TR (native and trap-and-emulate kernels; xensim's ltr takes an address). */
  idtrLo = 0;
  idtrHi = 0;
  idtrLimit = 0;
  gdtrLo = 0;
  gdtrHi = 0;
  gdtrLimit = 0;
  trLo = 0;
  trHi = 0;

  constructor(
    readonly host: CpuHost,
    readonly contexts: ContextTable,
    readonly cpuId: number,
    makePort: (cpu: Cpu) => GuestVcpu,
  ) {
    this.tlb = new Tlb(host.tlbClock);
    this.port = makePort(this);
  }

  /** Virtual time now, as this CPU sees it in the middle of a step. */
  nowNs(): number {
    return this.timeBase + ((this.cycles - this.cycleBase) * 1000) / this.host.costs.clockMhz;
  }

  /** The time-stamp counter: cycles of virtual time at the clock rate. */
  tsc(): number {
    return Math.floor((this.nowNs() * this.host.costs.clockMhz) / 1000);
  }

  /** Why this CPU stopped for good (a triple fault), or ''. */
  haltReason = '';

  /** Whether this CPU may execute at all; throws VcpuHalted into guest code otherwise. */
  checkRunnable(): void {
    if (this.haltReason) throw new VcpuHalted(this.haltReason);
  }

  // ---- memory ------------------------------------------------------------------

  /** A load of 1, 2, 4 or 8 bytes; returns the value (8 bytes: exact below 2^53). */
  load(lo: number, hi: number, size: number): number {
    this.checkRunnable();
    this.cycles += this.host.costs.memoryAccess;
    if ((lo & 0xfff) + size > PAGE_SIZE) return this.loadBytewise(lo, hi, size);
    return this.readMachine(this.translate(lo, hi, ACCESS_READ), size);
  }

  /** A store of 1, 2, 4 or 8 bytes: value given as halves (vhi only for 8 bytes). */
  store(lo: number, hi: number, size: number, vlo: number, vhi: number): void {
    this.checkRunnable();
    this.cycles += this.host.costs.memoryAccess;
    if ((lo & 0xfff) + size > PAGE_SIZE) {
      this.storeBytewise(lo, hi, size, vlo, vhi);
      return;
    }
    for (let tries = 0; ; tries++) {
      const ma = this.walk(lo, hi, ACCESS_WRITE);
      if (ma >= 0) {
        if (this.shadowEpoch !== 0) this.shadowCheck(ma);
        this.writeMachine(ma, size, vlo, vhi);
        return;
      }
      const ec = pageFaultCode(ma);
      if (ec === (PFEC_page_present | PFEC_write_access) && this.cpl < 3 &&
        this.host.emulateStore(this, lo, hi, size, vlo, vhi)) return;
      this.translationFault(ma, lo, hi, tries);
    }
  }

  /** Translates for an access; a fault is delivered and the translation retried. */
  translate(lo: number, hi: number, access: number): number {
    for (let tries = 0; ; tries++) {
      const ma = this.walk(lo, hi, access);
      if (ma >= 0) return ma;
      this.translationFault(ma, lo, hi, tries);
    }
  }

  /** One walk, charging a page walk on a TLB miss. */
  private walk(lo: number, hi: number, access: number): number {
    const walks = this.tlb.fills;
    const walker = this.host.walker;
    const fills = walker.shadowFills;
    const ma = walker.translate(this, lo, hi, access, this.cpl);
    if (this.tlb.fills !== walks || ma < 0) this.cycles += this.host.costs.pageWalk;
    if (walker.shadowFills !== fills) this.host.shadowFill(this, walker.shadowFills - fills);
    return ma;
  }

  private translationFault(result: number, lo: number, hi: number, tries: number): void {
    if (tries >= MAX_RETRIES) this.crash(`fault at 0x${s64(lo, hi).toString(16)} retried ${tries} times`);
    if (result === XLATE_GP) {
      this.fault(TRAP_gp_fault, 0);
      return;
    }
    const ec = pageFaultCode(result);
    this.cr2Lo = lo;
    this.cr2Hi = hi;
    this.host.notePageFault(this, lo, hi);
    // The hardware error code's U/S bit says whether CPL was 3.
    this.fault(TRAP_page_fault, (ec & ~PFEC_user_mode) | (this.cpl === 3 ? PFEC_user_mode : 0));
  }

  readMachine(ma: number, size: number): number {
    const mem = this.host.mem;
    if (ma >= M2P_PSEUDO_BASE) return this.readM2p(ma - M2P_PSEUDO_BASE, size);
    const mfn = Math.floor(ma / PAGE_SIZE);
    const off = ma % PAGE_SIZE;
    if (mfn >= mem.nrFrames) return size === 8 ? 2 ** 64 - 1 : 2 ** (size * 8) - 1; // MMIO: no device
    if (size === 4 && (off & 3) === 0) return mem.read32(mfn, off);
    if (size === 8 && (off & 3) === 0) return mem.read32(mfn, off + 4) * 4294967296 + mem.read32(mfn, off);
    let v = 0;
    for (let i = size - 1; i >= 0; i--) v = v * 256 + mem.read8(mfn, off + i);
    return v;
  }

  private writeMachine(ma: number, size: number, vlo: number, vhi: number): void {
    const mem = this.host.mem;
    const mfn = Math.floor(ma / PAGE_SIZE);
    const off = ma % PAGE_SIZE;
    if (mfn >= mem.nrFrames) return; // MMIO with no device behind it
    if (size === 4 && (off & 3) === 0) {
      mem.write32(mfn, off, vlo >>> 0);
    } else if (size === 8 && (off & 3) === 0) {
      mem.write32(mfn, off, vlo >>> 0);
      mem.write32(mfn, off + 4, vhi >>> 0);
    } else {
      for (let i = 0; i < size; i++) {
        const byte = i < 4 ? (vlo >>> (i * 8)) & 0xff : (vhi >>> ((i - 4) * 8)) & 0xff;
        mem.write8(mfn, off + i, byte);
      }
    }
  }

  /** A store to a frame stamped with this CPU's shadow epoch traps to the host first. */
  private shadowCheck(ma: number): boolean {
    const stamps = this.host.walker.shadowStamps;
    const mfn = Math.floor(ma / PAGE_SIZE);
    if (stamps === null || mfn >= stamps.length || stamps[mfn] !== this.shadowEpoch) return false;
    this.host.pageTableWrite(this, mfn);
    return true;
  }

  private readM2p(offset: number, size: number): number {
    const f = this.host.frames;
    let v = 0;
    for (let i = size - 1; i >= 0; i--) {
      const byteIdx = offset + i;
      const entry = Math.floor(byteIdx / 8);
      const b = byteIdx % 8;
      let word: number;
      if (entry >= f.nrFrames) word = 0xffffffff;
      else word = b < 4 ? f.m2pLo[entry] : f.m2pHi[entry];
      v = v * 256 + ((word >>> ((b & 3) * 8)) & 0xff);
    }
    return v;
  }

  private loadBytewise(lo: number, hi: number, size: number): number {
    let v = 0;
    for (let i = size - 1; i >= 0; i--) {
      v = v * 256 + this.readMachine(this.translate(addLo(lo, i), addHi(lo, hi, i), ACCESS_READ), 1);
    }
    return v;
  }

  /**
   * A store split across two pages: x86 commits none of it if either page faults, and
   * Xen's ptwr emulation takes only stores inside one page, so both are translated first.
   */
  private storeBytewise(lo: number, hi: number, size: number, vlo: number, vhi: number): void {
    const first = this.translate(lo, hi, ACCESS_WRITE);
    const last = this.translate(addLo(lo, size - 1), addHi(lo, hi, size - 1), ACCESS_WRITE);
    // One instruction: at most one shadow-paging trap, whichever page it hits.
    if (this.shadowEpoch !== 0 && !this.shadowCheck(first)) this.shadowCheck(last);
    for (let i = 0; i < size; i++) {
      const byte = i < 4 ? (vlo >>> (i * 8)) & 0xff : (vhi >>> ((i - 4) * 8)) & 0xff;
      this.writeMachine(this.translate(addLo(lo, i), addHi(lo, hi, i), ACCESS_WRITE), 1, byte, 0);
    }
  }

  /** Reloads CR3 with a new L4 (a CR3 load flushes the TLB). */
  loadCr3(mfn: number): void {
    this.cr3 = mfn;
    this.flushTlb();
  }

  flushTlb(): void {
    this.tlb.flushAll();
    this.cycles += this.host.costs.tlbFlush;
  }

  // ---- instructions the CPU decides by itself ---------------------------------------

  /** popf: IF changes only at CPL <= IOPL; elsewhere it is silently kept (no trap). */
  popf(flags: number): void {
    this.checkRunnable();
    this.cycles += this.host.costs.memoryAccess;
    const iopl = (this.rflags & X86_EFLAGS_IOPL) >>> 12;
    const keep = this.cpl <= iopl ? 0 : X86_EFLAGS_IF | X86_EFLAGS_IOPL;
    const writable = 0x3f7fd5 & ~keep; // the flags popf may change in 64-bit mode
    this.rflags = ((this.rflags & ~writable) | (flags & writable) | X86_EFLAGS_MBS) >>> 0;
  }

  /** pushf is not privileged on x86: at CPL > 0 under a hypervisor it shows the real IF. */
  pushf(): number {
    this.checkRunnable();
    this.cycles += this.host.costs.memoryAccess;
    return this.rflags;
  }

  privileged(op: number, a: number, b: number, c: number): number {
    this.checkRunnable();
    const r = this.host.privOp(this, op, a, b, c);
    this.checkRunnable();
    return r;
  }

  hypercall(nr: number): number {
    this.checkRunnable();
    this.cycles += this.host.costs.hypercall;
    const rc = this.host.hypercall(this, nr);
    this.checkRunnable(); // a call that crashed or shut down its own domain never returns
    return rc;
  }

  // ---- faults and control transfer ------------------------------------------------

  /**
   * Raises a synchronous fault in the running code and runs its handler nested. Returns
   * when the handler's iret comes back to the faulting code (which then retries); throws
   * when control went elsewhere (the faulting context is abandoned) or the domain died.
   */
  fault(vector: number, errorCode: number): void {
    this.faults++;
    this.trapNested(KIND_FAULT, vector, errorCode);
  }

  /**
   * A system call instruction in user mode: the kernel's handler runs nested and its
   * iret returns here; the result is RAX.
   */
  syscall(): number {
    this.checkRunnable();
    this.cycles += this.host.costs.syscall;
    this.trapNested(KIND_SYSCALL, 0, -1);
    return this.regs[REG_RAX];
  }

  private trapNested(kind: number, vector: number, errorCode: number): void {
    this.cycles += this.host.costs.trap;
    const token = this.contexts.inFlight(this.cpl);
    if (token < 0) this.crash('too many suspended contexts');
    // What the faulting code had, for a handler that unwinds into it by throwing.
    const cpl = this.cpl;
    const cr3 = this.cr3;
    const rsp = this.regs[4];
    const rflags = this.rflags;
    const extra = this.unwindState();
    if (!this.host.deliver(this, kind, vector, errorCode, token, TOKEN_HI)) {
      this.contexts.done(token);
      this.checkRunnable();
      throw new VcpuHalted('vCPU reset');
    }
    try {
      this.runNested(this.enterHandler(), token);
    } catch (e) {
      this.contexts.done(token);
      if (e === SWITCH || e instanceof VcpuHalted) throw e;
      // A guest exception out of the handler: a kernel fixup unwinding into kernel code.
      if (cpl === this.cplAtHandler && cpl < 3) {
        this.cpl = cpl;
        if (this.cr3 !== cr3) this.loadCr3(cr3);
        this.regs[4] = rsp;
        this.rflags = rflags;
        this.restoreAfterUnwind(extra);
        throw e;
      }
      this.crash(`exception in a trap handler: ${errorText(e)}`);
    }
  }

  /** The CPL a handler ran at (set by enterHandler). */
  private cplAtHandler = 0;

  /**
   * Hooks for subclasses: state beyond the registers (as a number) saved before a
   * delivery, and restored when its handler unwinds into the faulting code by throwing.
   */
  protected unwindState(): number {
    return 0;
  }

  protected restoreAfterUnwind(_saved: number): void {}

  /**
   * Transfers control to (lo, hi) for good: the caller (an iret) has set up privilege,
   * stack and registers. Never returns into the code that called it.
   */
  transfer(lo: number, hi: number): never {
    this.targetLo = lo >>> 0;
    this.targetHi = hi >>> 0;
    throw SWITCH;
  }

  /** Crashes this CPU's software and unwinds the guest code running on it. */
  crash(reason: string): never {
    this.host.crash(this, reason);
    this.checkRunnable();
    throw new VcpuHalted(reason);
  }

  /** The handler deliver() chose, as a fresh context; a handler with no code is fatal. */
  private enterHandler(): GuestContext {
    const lo = this.entryLo;
    const hi = this.entryHi;
    this.cplAtHandler = this.cpl;
    const key = s64(lo, hi);
    const code = this.host.codeAt(this, key);
    if (code === undefined) this.crash(`no code at handler address 0x${key.toString(16)}`);
    if (this.host.walker.translate(this, lo, hi, ACCESS_FETCH, this.cpl) < 0) {
      this.crash(`handler at 0x${key.toString(16)} is not mapped executable`);
    }
    return code(this.port);
  }

  /**
   * Runs a handler context (and whatever it switches to) until an iret comes back to the
   * in-flight `token`. Asynchronous interrupts are taken at its boundaries.
   */
  private runNested(gen: GuestContext, token: number): void {
    this.nesting++;
    let resume = 0;
    try {
      for (;;) {
        let r: IteratorResult<number | undefined, unknown>;
        try {
          r = gen.next(resume);
        } catch (e) {
          if (e !== SWITCH) throw e;
          if (this.stopping) throw e;
          if (this.targetHi === TOKEN_HI && this.targetLo === token) {
            this.contexts.done(token);
            return;
          }
          if (this.targetHi === TOKEN_HI && (this.targetLo & 15) === 0 && this.contexts.isParked(this.targetLo) &&
            this.contexts.parkedDepth(this.targetLo) === this.nesting) {
            // Back to a context this handler chain parked (an upcall taken inside it).
            const next = this.resolveTarget(false);
            if (next === null) throw e;
            gen = next;
            resume = this.resumeValue;
            continue;
          }
          // Control leaves the handler chain: the faulting context is abandoned.
          throw e;
        }
        if (r.done === true) {
          // Kernel code that returns stops the CPU: unwind everything beneath it.
          this.stopping = true;
          throw SWITCH;
        }
        if (this.blocked) this.crash('blocked inside a trap handler');
        const parked = this.contexts.park(gen, this.cpl, -1, this.nesting);
        if (parked < 0) this.crash('too many suspended contexts');
        const ok = typeof r.value === 'number'
          ? this.softInt(r.value, parked)
          : this.takeInterrupt(parked);
        if (ok) {
          gen = this.enterHandler();
          resume = 0;
        } else if (typeof r.value === 'number' || this.host.pendingInterrupt(this) >= 0) {
          this.contexts.take(parked);
          this.undelivered();
        } else {
          gen = this.contexts.take(parked)!;
          resume = this.regs[REG_RAX];
        }
      }
    } finally {
      this.nesting--;
    }
  }

  /** int n from the context parked at `token`: false when it was not delivered. */
  private softInt(vector: number, token: number): boolean {
    this.softInts++;
    // The instruction's own transition through the gate; the host adds what it does.
    this.cycles += this.host.costs.syscall;
    if (!Number.isInteger(vector) || vector < 0 || vector > 255) {
      // Not an encodable instruction: #UD.
      return this.host.deliver(this, KIND_FAULT, TRAP_invalid_op, -1, token, TOKEN_HI);
    }
    return this.host.deliver(this, KIND_SOFTINT, vector, -1, token, TOKEN_HI);
  }

  /** An interrupt pending at a boundary of the context parked at `token`. */
  private takeInterrupt(token: number): boolean {
    const vector = this.host.pendingInterrupt(this);
    if (vector < 0) return false;
    this.blocked = false;
    this.interrupts++;
    this.cycles += this.host.costs.trap;
    return this.host.deliver(this, KIND_INTERRUPT, vector, -1, token, TOKEN_HI);
  }

  /**
   * The context an iret went to: a parked one (resumed with RAX), or fresh code at that
   * address. Null when the target is in flight (a nested fault's code) or nothing runs
   * there — in which case a fault is raised at the target when `raise` is set.
   */
  private resolveTarget(raise: boolean): GuestContext | null {
    const lo = this.targetLo;
    const hi = this.targetHi;
    if (hi === TOKEN_HI) {
      if ((lo & 15) === 0 && this.contexts.isParked(lo)) {
        if (this.contexts.parkedCpl(lo) !== this.cpl) {
          this.crash(`iret to a ring-${this.contexts.parkedCpl(lo)} context at ring ${this.cpl}`);
        }
        this.pendingInt = this.contexts.retryVector(lo);
        const gen = this.contexts.take(lo);
        this.resumeValue = this.regs[REG_RAX];
        return gen;
      }
      if (!raise) return null;
    }
    const key = s64(lo, hi);
    const code = this.host.codeAt(this, key);
    const ma = this.host.walker.translate(this, lo, hi, ACCESS_FETCH, this.cpl);
    if (ma < 0 || code === undefined) {
      if (!raise) return null;
      return this.entryFault(ma, lo, hi);
    }
    this.pendingInt = -1;
    this.resumeValue = 0;
    return code(this.port);
  }

  /**
   * Control went to (lo, hi) with nothing runnable there: an instruction-fetch fault
   * whose frame points at (lo, hi). Returns the handler's context.
   */
  private entryFault(ma: number, lo: number, hi: number): GuestContext {
    let ok: boolean;
    this.faults++;
    this.cycles += this.host.costs.trap;
    if (ma === XLATE_GP) {
      ok = this.host.deliver(this, KIND_FAULT, TRAP_gp_fault, 0, lo, hi);
    } else if (ma < 0) {
      this.cr2Lo = lo;
      this.cr2Hi = hi;
      this.host.notePageFault(this, lo, hi);
      const ec = (pageFaultCode(ma) & ~PFEC_user_mode) | (this.cpl === 3 ? PFEC_user_mode : 0);
      ok = this.host.deliver(this, KIND_FAULT, TRAP_page_fault, ec, lo, hi);
    } else {
      ok = this.host.deliver(this, KIND_FAULT, TRAP_invalid_op, -1, lo, hi);
    }
    if (!ok) this.undelivered();
    this.resumeValue = 0;
    return this.enterHandler();
  }

  /** A delivery failed: the software was crashed, so nothing of it runs again. */
  private undelivered(): never {
    this.checkRunnable();
    throw new VcpuHalted('an exception could not be delivered');
  }

  // ---- the top-level engine ---------------------------------------------------------

  /** Starts `code` as this CPU's running context (boot, or a test driving the CPU). */
  start(code: GuestCode): void {
    this.closeContext();
    this.pendingStart = false;
    this.ctx = code(this.port);
    this.resumeValue = 0;
    this.pendingInt = -1;
    this.blocked = false;
  }

  /** Starts the code at a virtual address, as a reset vector or VCPUOP_initialise would. */
  startAt(lo: number, hi: number): void {
    this.closeContext();
    this.targetLo = lo >>> 0;
    this.targetHi = hi >>> 0;
    this.ctx = null;
    this.pendingStart = true;
  }

  private pendingStart = false;

  get hasContext(): boolean {
    return this.ctx !== null || this.pendingStart;
  }

  /**
   * Runs the current context to its next boundary. Returns STEP_RAN, STEP_BLOCKED (the
   * CPU waits for an interrupt), STEP_IDLE (nothing to run) or STEP_HALTED.
   */
  step(): number {
    try {
      return this.stepInner();
    } catch (e) {
      this.ctx = null;
      if (e instanceof VcpuHalted) return STEP_HALTED;
      if (e === SWITCH) {
        // Kernel code returned inside a handler, beneath which this context was unwound.
        this.stopping = false;
        return STEP_IDLE;
      }
      this.host.crash(this, `guest code threw: ${errorText(e)}`);
      return STEP_HALTED;
    }
  }

  private stepInner(): number {
    if (this.pendingStart) {
      this.pendingStart = false;
      this.ctx = this.resolveTarget(true);
      if (this.ctx === null) return this.blocked ? STEP_BLOCKED : STEP_IDLE;
    }
    if (this.ctx === null) return this.blocked ? STEP_BLOCKED : STEP_IDLE;
    // At a boundary: a pending interrupt comes first (it also ends a halt).
    if (this.host.pendingInterrupt(this) >= 0) {
      const token = this.contexts.park(this.ctx, this.cpl, this.pendingInt, 0);
      if (token < 0) this.crash('too many suspended contexts');
      this.ctx = null;
      this.pendingInt = -1;
      if (this.takeInterrupt(token)) {
        this.ctx = this.enterHandler();
        this.resumeValue = 0;
      } else {
        this.ctx = this.contexts.take(token);
        this.checkRunnable();
      }
    }
    if (this.blocked) return STEP_BLOCKED;
    if (this.pendingInt >= 0) {
      const vector = this.pendingInt;
      this.pendingInt = -1;
      this.interruptWith(vector);
      return STEP_RAN;
    }
    const gen = this.ctx!;
    let r: IteratorResult<number | undefined, unknown>;
    try {
      r = gen.next(this.resumeValue);
    } catch (e) {
      if (e !== SWITCH) throw e;
      if (this.stopping) {
        this.stopping = false;
        this.ctx = null;
        return STEP_IDLE;
      }
      this.ctx = this.resolveTarget(true);
      return STEP_RAN;
    }
    if (r.done === true) {
      this.ctx = null;
      this.contextEnded();
      return STEP_RAN;
    }
    if (typeof r.value === 'number') this.interruptWith(r.value);
    return this.blocked ? STEP_BLOCKED : STEP_RAN;
  }

  /** Executes `int vector` for the running context, parking it. */
  private interruptWith(vector: number): void {
    const token = this.contexts.park(this.ctx, this.cpl, -1, 0);
    if (token < 0) this.crash('too many suspended contexts');
    this.ctx = null;
    if (this.softInt(vector, token)) {
      this.ctx = this.enterHandler();
      this.resumeValue = 0;
    } else {
      this.contexts.take(token);
      this.undelivered();
    }
  }

  /**
   * The running code returned from its entry function. User code has jumped to address
   * 0 (a fetch fault for its kernel); kernel code stops the CPU until it is restarted.
   */
  private contextEnded(): void {
    if (this.cpl < 3) return;
    this.targetLo = 0;
    this.targetHi = 0;
    this.ctx = this.resolveTarget(true);
  }

  /** Set while unwinding to the top level because kernel code returned. */
  private stopping = false;

  private closeContext(): void {
    const gen = this.ctx;
    this.ctx = null;
    if (gen) {
      try {
        gen.return(undefined);
      } catch {
        // The context is gone either way.
      }
    }
  }

  /** Stops executing: drops the running context (the domain is being destroyed). */
  reset(): void {
    this.closeContext();
    this.pendingStart = false;
    this.blocked = false;
  }
}

function errorText(e: unknown): string {
  return e instanceof Error ? `${e.name}: ${e.message}` : String(e);
}

/** High half of (lo, hi) + n; use before addLo (allocation-free, for loops). */
export function addHi(lo: number, hi: number, n: number): number {
  return lo + n > 0xffffffff ? (hi + 1) >>> 0 : hi;
}

/** Low half of (lo, hi) + n. */
export function addLo(lo: number, n: number): number {
  return (lo + n) >>> 0;
}

/** (lo, hi) + n as halves, carrying into the high half. */
export function addOffset(lo: number, hi: number, n: number): [number, number] {
  const sum = lo + n;
  return sum > 0xffffffff ? [sum >>> 0, (hi + 1) >>> 0] : [sum, hi];
}

export { ContextTable };
