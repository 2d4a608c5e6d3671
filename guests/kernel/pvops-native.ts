// Native pv-ops: the kernel drives a PC directly. Layer: guests. Privileged
// instructions for the interrupt flag, CR3, the IDT/GDT/TSS and MSRs; page tables are
// plain memory written with stores; the timer is the local APIC's in periodic mode;
// the console is COM1, polled. On the bare machine this runs at CPL 0. Under the
// hypervisor's trap-and-emulate mode the same code runs in ring 1, and every one of
// these instructions traps — except popf, which silently keeps IF (irqRestore).

import type { GuestVcpu } from '../../hypervisor/public/vcpu.ts';
import { REG_RSP } from '../../hypervisor/public/vcpu.ts';
import type { EntryFrame, PvOps, ReturnTarget, TrapGate } from './pvops.ts';
import { TIMER_VECTOR } from './pvops.ts';
import { get64, iretqTo, put64 } from './mem.ts';

const X86_EFLAGS_IF = 1 << 9;
const KERNEL_CS = 0x10;
const KERNEL_SS = 0x18;
const USER_CS = 0x33;
const USER_SS = 0x2b;

// Devices, at their PC addresses.
const COM1 = 0x3f8;
const COM1_LSR = COM1 + 5;
const COM1_LCR = COM1 + 3;
const LSR_THRE = 0x20;
const ACPI_PM1A_CNT = 0x604;
const ACPI_SLP_EN_S5 = 0x2000;

// MSRs.
const MSR_PLATFORM_INFO = 0xce;
const MSR_X2APIC_EOI = 0x80b;
const MSR_X2APIC_LVT_TIMER = 0x832;
const MSR_X2APIC_INIT_COUNT = 0x838;
const MSR_X2APIC_DIV_CONF = 0x83e;
const LVT_PERIODIC = 1 << 17;
const DIVIDE_BY_1 = 0xb;

export class NativeOps implements PvOps {
  readonly kind = 'native' as const;
  /** TSC cycles per microsecond, from MSR_PLATFORM_INFO (the ratio to 100 MHz). */
  private mhz = 0;

  constructor(readonly cpu: GuestVcpu) {}

  /** Reads the TSC rate and sets COM1 to 115200 baud, 8N1. */
  init(): void {
    const cpu = this.cpu;
    this.mhz = ((cpu.rdmsr(MSR_PLATFORM_INFO) >>> 8) & 0xff) * 100;
    // COM1: 115200 baud (divisor 1), 8 data bits, no parity, one stop bit.
    cpu.out(COM1_LCR, 1, 0x83);
    cpu.out(COM1, 1, 1);
    cpu.out(COM1 + 1, 1, 0);
    cpu.out(COM1_LCR, 1, 0x03);
  }

  setupTraps(gates: readonly TrapGate[], timerEntry: number, kernelStackTop: number, pageVa: () => number): void {
    const cpu = this.cpu;
    const idt = pageVa();
    const all = [...gates, { vector: TIMER_VECTOR, address: timerEntry, dpl: 0, disableInterrupts: true }];
    for (const g of all) {
      const at = idt + g.vector * 16;
      const lo = g.address >>> 0;
      const hi = Math.floor(g.address / 4294967296) >>> 0;
      const attr = 0x80 | (g.dpl << 5) | (g.disableInterrupts ? 0xe : 0xf);
      cpu.store32(at, ((lo & 0xffff) | (KERNEL_CS << 16)) >>> 0);
      cpu.store32(at + 4, ((lo & 0xffff0000) | (attr << 8)) >>> 0);
      cpu.store32(at + 8, hi);
      cpu.store32(at + 12, 0);
    }
    // GDT: null, (unused), kernel code 0x10, kernel data 0x18, (unused), user data 0x28, user code 0x30.
    const gdt = pageVa();
    // Descriptors' high words: present, DPL, type, L (64-bit code).
    cpu.store64(gdt + 0x10, 0, 0x00209a00);
    cpu.store64(gdt + 0x18, 0, 0x00009200);
    cpu.store64(gdt + 0x28, 0, 0x0000f200);
    cpu.store64(gdt + 0x30, 0, 0x0020fa00);
    const desc = pageVa();
    cpu.store16(desc, 0x37);
    put64(cpu, desc + 2, gdt);
    cpu.lgdt(desc);
    cpu.store16(desc + 16, 256 * 16 - 1);
    put64(cpu, desc + 18, idt);
    cpu.lidt(desc + 16);
    // The 64-bit TSS: RSP0 (offset 4) is the stack for entries from ring 3.
    const tss = pageVa();
    cpu.store32(tss + 4, kernelStackTop >>> 0);
    cpu.store32(tss + 8, Math.floor(kernelStackTop / 4294967296) >>> 0);
    cpu.ltr(tss);
  }

  irqDisable(): void {
    this.cpu.cli();
  }

  irqEnable(): void {
    this.cpu.sti();
  }

  irqSave(): number {
    const flags = this.cpu.pushf();
    this.cpu.cli();
    return flags;
  }

  irqRestore(flags: number): void {
    this.cpu.popf(flags);
  }

  safeHalt(): void {
    this.cpu.sti();
    this.cpu.hlt();
  }

  readFrame(hasErrorCode: boolean): EntryFrame {
    const cpu = this.cpu;
    const sp = cpu.reg(REG_RSP);
    const at = sp + (hasErrorCode ? 8 : 0);
    const cs = cpu.load32(at + 8);
    return {
      errorCode: hasErrorCode ? cpu.load32(sp) : -1,
      rip: get64(cpu, at),
      interruptsOn: (cpu.load32(at + 16) & X86_EFLAGS_IF) !== 0,
      rsp: get64(cpu, at + 24),
      fromUser: (cs & 3) === 3,
    };
  }

  timerAck(): boolean {
    this.cpu.wrmsr(MSR_X2APIC_EOI, 0);
    return true;
  }

  faultAddress(): number {
    return this.cpu.readCr2();
  }

  returnTo(t: ReturnTarget): never {
    return iretqTo(this.cpu, t.rip, t.rsp, t.user ? USER_CS : KERNEL_CS, t.user ? USER_SS : KERNEL_SS, t.interruptsOn,
      t.rax);
  }

  frameOf(pfn: number): number {
    return pfn;
  }

  writePte(_tablePfn: number, tableVa: number, idx: number, lo: number, hi: number): void {
    this.cpu.store64(tableVa + idx * 8, lo, hi);
  }

  flushPtes(): void {}

  activateTables(): void {}

  retireTables(): void {}

  switchAddressSpace(l4Pfn: number): void {
    this.cpu.writeCr3(l4Pfn * 4096);
  }

  clockNs(): number {
    return (this.cpu.rdtsc() * 1000) / this.mhz;
  }

  startTick(_t0: number, periodNs: number): void {
    const cpu = this.cpu;
    cpu.wrmsr(MSR_X2APIC_DIV_CONF, DIVIDE_BY_1);
    cpu.wrmsr(MSR_X2APIC_LVT_TIMER, TIMER_VECTOR | LVT_PERIODIC);
    cpu.wrmsr(MSR_X2APIC_INIT_COUNT, Math.round((periodNs * this.mhz) / 1000));
  }

  rearmTick(): void {}

  stopTick(): void {
    this.cpu.wrmsr(MSR_X2APIC_INIT_COUNT, 0);
  }

  udelay(us: number): void {
    this.cpu.compute(us * this.mhz);
  }

  /**
   * A polled serial console, a byte at a time: each byte waits for THRE (polling the
   * line status with a microsecond's delay, as Linux's 8250 driver does) inside its own
   * irqsave/irqrestore, and interrupts are taken between bytes.
   */
  *consoleWrite(bytes: Uint8Array, len: number): Generator<undefined, void, number> {
    const cpu = this.cpu;
    for (let i = 0; i < len; i++) {
      const flags = this.irqSave();
      while ((cpu.in(COM1_LSR, 1) & LSR_THRE) === 0) this.udelay(1);
      cpu.out(COM1, 1, bytes[i]);
      this.irqRestore(flags);
      yield;
    }
  }

  powerOff(): never {
    this.cpu.out(ACPI_PM1A_CNT, 2, ACPI_SLP_EN_S5);
    throw new Error('the machine did not power off');
  }
}
