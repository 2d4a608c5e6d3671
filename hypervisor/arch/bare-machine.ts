// The bare machine: one x86-64 CPU, memory, a local APIC timer and a serial port, with
// no hypervisor. Layer: hypervisor/arch (the machine itself). A native kernel runs here
// at CPL 0: its privileged instructions simply execute, its page tables are plain
// memory, and interrupts arrive through its own IDT. This is the baseline the patched
// and unpatched kernels under Xen are compared with.

import { ContextTable } from './contexts.ts';
import { makeCosts, type CostTable } from './costs.ts';
import {
  Cpu, KIND_FAULT, KIND_INTERRUPT, PRIV_CLI, PRIV_HLT, PRIV_IN, PRIV_INVLPG, PRIV_LGDT, PRIV_LIDT, PRIV_LTR, PRIV_OUT,
  PRIV_RDMSR, PRIV_READ_CR3, PRIV_STI, PRIV_WBINVD, PRIV_WRITE_CR3, PRIV_WRMSR, STEP_BLOCKED, STEP_HALTED, STEP_IDLE,
  type CpuHost,
} from './cpu.ts';
import { CpuPort } from './cpu-port.ts';
import { MSR_IA32_TSC, MSR_IA32_TSC_DEADLINE, MSR_X2APIC_LVT_TIMER } from './msr.ts';
import { bootMapLayout, bootVa, writeBootMap, writeStartInfo } from './boot-map.ts';
import { FrameTable } from './frame-table.ts';
import { MachineMemory, PAGE_SIZE } from './memory.ts';
import { GATE_DPL_DENIED, GATE_FAILED, GATE_INTERRUPT, deliverViaIdt } from './native-frames.ts';
import { PageWalker } from './paging.ts';
import { hi32, lo32, s64 } from './pte.ts';
import { TlbClock } from './tlb.ts';
import { REG_RAX, REG_RSI, REG_RSP, TRAP_gp_fault, TRAP_invalid_op, X86_EFLAGS_IF, type GuestCode, type GuestImage } from '../public/vcpu.ts';

// Devices, at their PC addresses.
export const COM1_PORT = 0x3f8;

export interface BareMachineConfig {
  memoryMb?: number;
  costs?: Partial<CostTable>;
}

export class BareMachine implements CpuHost {
  readonly mem: MachineMemory;
  readonly frames: FrameTable;
  readonly walker: PageWalker;
  readonly tlbClock = new TlbClock();
  readonly costs: CostTable;
  readonly cpu: Cpu;
  /** Lines written to the serial port. */
  readonly console: string[] = [];
  private line = '';
  image: GuestImage | null = null;
  /** Set when the CPU triple-faulted: it never runs again. */
  halted = '';
  // The local APIC timer: TSC deadline (in cycles; 0 = disarmed), vector, pending.
  private deadline = 0;
  private timerVector = 0;
  private timerPending = false;
  /** Timer interrupts raised, and those lost because one was already pending. */
  timerInterrupts = 0;
  timerLost = 0;

  constructor(cfg: BareMachineConfig = {}) {
    const nrFrames = Math.floor(((cfg.memoryMb ?? 64) * 1024 * 1024) / PAGE_SIZE);
    this.costs = makeCosts(cfg.costs);
    this.mem = new MachineMemory(nrFrames);
    this.frames = new FrameTable(nrFrames);
    this.walker = new PageWalker(this.mem, this.frames, false);
    this.cpu = new Cpu(this, new ContextTable(), 0, (c) => new CpuPort(c));
    this.cpu.cpl = 0;
    this.cpu.rflags = 2; // interrupts off at reset
  }

  get now(): number {
    return this.cpu.nowNs();
  }

  // ---- CpuHost ------------------------------------------------------------------

  emulateStore(): boolean {
    return false;
  }

  /** There is no hypervisor: the hypercall instruction is undefined here. */
  hypercall(cpu: Cpu): number {
    cpu.fault(TRAP_invalid_op, -1);
    return cpu.regs[REG_RAX];
  }

  privOp(cpu: Cpu, op: number, a: number, b: number, c: number): number {
    for (;;) {
      if (cpu.cpl === 0) return this.execute(cpu, op, a, b, c);
      cpu.fault(TRAP_gp_fault, 0);
    }
  }

  private execute(cpu: Cpu, op: number, a: number, b: number, c: number): number {
    cpu.cycles += this.costs.memoryAccess;
    switch (op) {
      case PRIV_CLI:
        cpu.rflags = (cpu.rflags & ~X86_EFLAGS_IF) >>> 0;
        return 0;
      case PRIV_STI:
        cpu.rflags = (cpu.rflags | X86_EFLAGS_IF) >>> 0;
        return 0;
      case PRIV_HLT:
        cpu.blocked = true;
        return 0;
      case PRIV_READ_CR3:
        return cpu.cr3 * PAGE_SIZE;
      case PRIV_WRITE_CR3:
        cpu.loadCr3(Math.floor(((b >>> 0) * 4294967296 + (a >>> 0)) / PAGE_SIZE));
        return 0;
      case PRIV_INVLPG:
        cpu.tlb.flushOne(a, b);
        cpu.cycles += this.costs.tlbFlushOne;
        return 0;
      case PRIV_LGDT:
        cpu.gdtrLo = a;
        cpu.gdtrHi = b;
        return 0;
      case PRIV_LIDT: {
        // The pseudo-descriptor: limit (2 bytes), then the 8-byte base.
        const va = s64(a, b);
        cpu.idtrLimit = cpu.load(lo32(va), hi32(va), 2);
        cpu.idtrLo = cpu.load(lo32(va + 2), hi32(va + 2), 4);
        cpu.idtrHi = cpu.load(lo32(va + 6), hi32(va + 6), 4);
        return 0;
      }
      case PRIV_LTR:
        cpu.trLo = a;
        cpu.trHi = b;
        return 0;
      case PRIV_IN:
        return a === COM1_PORT + 5 ? 0x60 : 0xff; // the line status register: ready
      case PRIV_OUT:
        if (a === COM1_PORT) this.serialOut(c & 0xff);
        return 0;
      case PRIV_RDMSR:
        return a === MSR_IA32_TSC ? cpu.tsc() : a === MSR_IA32_TSC_DEADLINE ? this.deadline : 0;
      case PRIV_WRMSR:
        if (a === MSR_IA32_TSC_DEADLINE) this.deadline = (c >>> 0) * 4294967296 + (b >>> 0);
        else if (a === MSR_X2APIC_LVT_TIMER) this.timerVector = b & 0xff;
        return 0;
      case PRIV_WBINVD:
        return 0;
      default:
        cpu.fault(TRAP_gp_fault, 0);
        return 0;
    }
  }

  private serialOut(ch: number): void {
    if (ch === 10) {
      this.console.push(this.line);
      this.line = '';
    } else {
      this.line += String.fromCharCode(ch);
    }
  }

  notePageFault(): void {}

  deliver(cpu: Cpu, kind: number, vector: number, errorCode: number, retLo: number, retHi: number): boolean {
    const flags = cpu.rflags;
    let type = deliverViaIdt(cpu, kind, vector, errorCode, retLo, retHi, 0, flags);
    if (type === GATE_DPL_DENIED) {
      cpu.contexts.setRetry(retLo, vector);
      type = deliverViaIdt(cpu, KIND_FAULT, TRAP_gp_fault, (vector << 3) | 2, retLo, retHi, 0, flags);
    }
    if (type === GATE_FAILED) {
      this.crash(cpu, `triple fault delivering vector ${vector}`);
      return false;
    }
    cpu.cycles += this.costs.trap;
    if (type === GATE_INTERRUPT) cpu.rflags = (cpu.rflags & ~X86_EFLAGS_IF) >>> 0;
    if (kind === KIND_INTERRUPT) this.timerPending = false;
    return true;
  }

  pendingInterrupt(cpu: Cpu): number {
    return this.timerPending && (cpu.rflags & X86_EFLAGS_IF) !== 0 ? this.timerVector : -1;
  }

  codeAt(_cpu: Cpu, key: number): GuestCode | undefined {
    return this.image?.text.get(key);
  }

  crash(cpu: Cpu, reason: string): void {
    if (!this.halted) this.halted = reason;
    if (!cpu.haltReason) cpu.haltReason = reason;
  }

  // ---- running --------------------------------------------------------------------

  /**
   * The boot loader: maps all memory at KERNEL_VIRT_BASE (frame n is PFN n), writes a
   * start_info like Xen's (magic "native-x86_64", no shared_info) and starts the CPU at
   * the image's entry with RSI = start_info and RSP = a boot stack. Returns the layout.
   */
  boot(image: GuestImage, cmdline = ''): { startInfoVa: number; firstFreePfn: number; stackTop: number } {
    const nrPages = this.mem.nrFrames;
    const l = bootMapLayout(nrPages);
    if (typeof l === 'string') throw new Error(`cannot boot: ${l}`);
    const mfns = new Float64Array(nrPages);
    for (let i = 0; i < nrPages; i++) mfns[i] = i;
    writeBootMap(this.mem, mfns, l, false);
    writeStartInfo(this.mem, 0, nrPages, l, { magic: 'native-x86_64', sharedInfoMaddr: 0, flags: 0, cmdline });
    const cpu = this.cpu;
    cpu.loadCr3(l.ptPfn);
    const stackTop = bootVa(l.stackPfn + 1);
    cpu.regs[REG_RSI] = bootVa(0);
    cpu.regs[REG_RSP] = stackTop;
    this.image = image;
    if (image.entry !== undefined) cpu.startAt(lo32(image.entry), hi32(image.entry));
    return { startInfoVa: bootVa(0), firstFreePfn: l.stackPfn + 1, stackTop };
  }

  /** Runs for `ns` of virtual time, or until the CPU halts for good. */
  run(ns: number): void {
    const until = this.now + ns;
    const cpu = this.cpu;
    while (!this.halted && this.now < until) {
      this.tickTimer();
      const st = cpu.step();
      if (st === STEP_HALTED || st === STEP_IDLE) return;
      if (st === STEP_BLOCKED) {
        // hlt: sleep until the timer fires (with interrupts off or no timer: forever).
        const wake = this.deadlineNs();
        if (wake === Infinity || (cpu.rflags & X86_EFLAGS_IF) === 0) return;
        if (wake > this.now) cpu.cycles += ((Math.min(wake, until) - this.now) * this.costs.clockMhz) / 1000;
      } else {
        cpu.cycles += 1;
      }
    }
  }

  private deadlineNs(): number {
    return this.deadline === 0 ? Infinity : (this.deadline * 1000) / this.costs.clockMhz;
  }

  /** The TSC-deadline timer fires once its deadline passes; a second edge while one is pending is lost. */
  private tickTimer(): void {
    if (this.deadline === 0 || this.cpu.tsc() < this.deadline) return;
    this.deadline = 0;
    this.timerInterrupts++;
    if (this.timerPending) this.timerLost++;
    this.timerPending = true;
    if (this.cpu.blocked && (this.cpu.rflags & X86_EFLAGS_IF) !== 0) this.cpu.blocked = false;
  }
}
