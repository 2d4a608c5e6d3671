// The bare machine: one x86-64 CPU, memory, a local APIC timer and a serial port, with
// no hypervisor. Layer: hypervisor/arch (the machine itself). A native kernel runs here
// at CPL 0: its privileged instructions simply execute, its page tables are plain
// memory, and interrupts arrive through its own IDT. This is the baseline the patched
// and unpatched kernels under Xen are compared with.

import { ContextTable } from './contexts.ts';
import { makeCosts, type CostTable } from './costs.ts';
import {
  Cpu, KIND_FAULT, KIND_INTERRUPT, PRIV_CLI, PRIV_NAMES, PRIV_HLT, PRIV_IN, PRIV_INVLPG, PRIV_LGDT, PRIV_LIDT, PRIV_LTR, PRIV_OUT,
  PRIV_RDMSR, PRIV_READ_CR2, PRIV_READ_CR3, PRIV_STI, PRIV_WBINVD, PRIV_WRITE_CR3, PRIV_WRMSR, STEP_BLOCKED,
  STEP_HALTED, STEP_IDLE, type CpuHost,
} from './cpu.ts';
import { CpuPort } from './cpu-port.ts';
import { MSR_IA32_TSC, MSR_PLATFORM_INFO } from './msr.ts';
import { bootMapLayout, bootVa, writeBootMap, writeStartInfo } from './boot-map.ts';
import { FrameTable } from './frame-table.ts';
import { LocalApicTimer } from './lapic.ts';
import { MachineMemory, PAGE_SIZE } from './memory.ts';
import { GATE_DPL_DENIED, GATE_FAILED, GATE_INTERRUPT, deliverViaIdt } from './native-frames.ts';
import { PageWalker } from './paging.ts';
import { hi32, lo32, s64 } from './pte.ts';
import { systemInsn } from './system-insn.ts';
import { TlbClock } from './tlb.ts';
import { COM1_PORT, Uart } from './uart.ts';
import { REG_RAX, REG_RSI, REG_RSP, TRAP_gp_fault, TRAP_invalid_op, X86_EFLAGS_IF, type GuestCode, type GuestImage } from '../public/vcpu.ts';

export { COM1_PORT };
/** The ACPI PM1a control port (as QEMU's PIIX4/ICH9 place it): writing SLP_EN|SLP_TYP 0 powers off. */
export const ACPI_PM1A_CNT = 0x604;
export const ACPI_POWEROFF = 0x2000;

export interface BareMachineConfig {
  memoryMb?: number;
  costs?: Partial<CostTable>;
}

/** A #GP retried this many times without progress is a livelock: the machine stops. */
const MAX_GP_RETRIES = 1000;

export class BareMachine implements CpuHost {
  readonly mem: MachineMemory;
  readonly frames: FrameTable;
  readonly walker: PageWalker;
  readonly tlbClock = new TlbClock();
  readonly costs: CostTable;
  readonly cpu: Cpu;
  /** Lines written to the serial port. */
  readonly console: string[] = [];
  readonly uart = new Uart(COM1_PORT, (line) => this.console.push(line));
  readonly lapic = new LocalApicTimer();
  image: GuestImage | null = null;
  /** Set when the CPU triple-faulted or the machine was powered off: it never runs again. */
  halted = '';
  poweredOff = false;

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

  /**
   * A privileged instruction: executed at CPL 0; #GP(0) at CPL > 0 or when invalid (an
   * unknown MSR). #GP is a fault: the handler's iret runs the instruction again.
   */
  privOp(cpu: Cpu, op: number, a: number, b: number, c: number): number {
    for (let tries = 0; ; tries++) {
      const r = cpu.cpl === 0 ? this.execute(cpu, op, a, b, c) : undefined;
      if (r !== undefined) return r;
      if (tries >= MAX_GP_RETRIES) cpu.crash(`${PRIV_NAMES[op]} faulted ${tries} times`);
      cpu.fault(TRAP_gp_fault, 0);
    }
  }

  /** The instruction's result, or undefined for #GP(0). */
  private execute(cpu: Cpu, op: number, a: number, b: number, c: number): number | undefined {
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
      case PRIV_READ_CR2:
        return s64(cpu.cr2Lo, cpu.cr2Hi);
      case PRIV_READ_CR3:
        return cpu.cr3 * PAGE_SIZE;
      case PRIV_WRITE_CR3:
        cpu.loadCr3(Math.floor(((b >>> 0) * 4294967296 + (a >>> 0)) / PAGE_SIZE));
        return 0;
      case PRIV_INVLPG:
      case PRIV_LGDT:
      case PRIV_LIDT:
      case PRIV_LTR:
        systemInsn(cpu, op, a, b);
        return 0;
      case PRIV_IN:
        return this.uart.claims(a) ? this.uart.read(a, cpu.nowNs()) : b === 1 ? 0xff : b === 2 ? 0xffff : 0xffffffff;
      case PRIV_OUT:
        if (this.uart.claims(a)) this.uart.write(a, c, cpu.nowNs());
        else if (a === ACPI_PM1A_CNT && (c & 0x3c00) === ACPI_POWEROFF) this.powerOff(cpu);
        return 0;
      case PRIV_RDMSR: {
        if (a === MSR_IA32_TSC) return cpu.tsc();
        if (a === MSR_PLATFORM_INFO) return platformInfo(this.costs);
        return this.lapic.rdmsr(a, cpu.tsc()); // undefined: no such MSR
      }
      case PRIV_WRMSR:
        return this.lapic.wrmsr(a, (c >>> 0) * 4294967296 + (b >>> 0), cpu.tsc()) ? 0 : undefined;
      case PRIV_WBINVD:
        return 0;
      default:
        return undefined;
    }
  }

  /** ACPI S5: the machine stops; the CPU never runs again. */
  private powerOff(cpu: Cpu): never {
    this.poweredOff = true;
    this.halted = 'powered off';
    cpu.haltReason = 'powered off';
    return cpu.crash('powered off');
  }

  notePageFault(): void {}

  /** At CPL 0 an iretq never goes to an inner ring; from user mode it #GPs. */
  emulateIret(): boolean {
    return false;
  }

  /** No P2M, so no shadow paging: never called. */
  pageTableWrite(): void {}

  shadowFill(): void {}

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
    // Nothing to add: the CPU charged the exception, interrupt or int n it delivers.
    if (type === GATE_INTERRUPT) cpu.rflags = (cpu.rflags & ~X86_EFLAGS_IF) >>> 0;
    if (kind === KIND_INTERRUPT) this.lapic.accept();
    return true;
  }

  pendingInterrupt(cpu: Cpu): number {
    return this.lapic.poll(cpu.tsc()) && (cpu.rflags & X86_EFLAGS_IF) !== 0 ? this.lapic.vector : -1;
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
    const lapic = this.lapic;
    while (!this.halted && this.now < until) {
      const st = cpu.step();
      if (st === STEP_HALTED || st === STEP_IDLE) return;
      if (st === STEP_BLOCKED) {
        // hlt: sleep until the timer's next edge (with interrupts off or no timer: forever).
        lapic.poll(cpu.tsc());
        if ((cpu.rflags & X86_EFLAGS_IF) === 0 || (lapic.lvt & 0x10000) !== 0) return;
        if (lapic.deliverable) {
          cpu.blocked = false;
          continue;
        }
        if (lapic.nextEdge === Infinity) return;
        const wakeNs = (lapic.nextEdge * 1000) / this.costs.clockMhz;
        if (wakeNs > until) {
          cpu.cycles += ((until - this.now) * this.costs.clockMhz) / 1000;
          return;
        }
        cpu.cycles += Math.max(0, lapic.nextEdge - cpu.tsc());
        if (cpu.tsc() < lapic.nextEdge) cpu.cycles += 1; // rounding
        cpu.blocked = false;
      } else {
        cpu.cycles += 1;
      }
    }
  }

  /** Timer interrupts raised, and lost because one was already pending. */
  get timerInterrupts(): number {
    return this.lapic.raised;
  }

  get timerLost(): number {
    return this.lapic.lost;
  }
}

/** MSR_PLATFORM_INFO: the TSC's ratio to 100 MHz in bits 15:8. */
export function platformInfo(costs: CostTable): number {
  return (Math.round(costs.clockMhz / 100) & 0xff) << 8;
}
