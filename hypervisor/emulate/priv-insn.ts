// Trap-and-emulate mode: the privileged instructions of an unmodified kernel running in
// real ring 1 (its virtual ring 0). Layer: hypervisor (emulate/). Each one #GPs into
// the VMM, which decodes and emulates it as the bare machine (arch/bare-machine.ts)
// would execute it natively, against the vCPU's virtual state: cli/sti the virtual IF,
// hlt sleeps until the virtual APIC timer's next edge, CR3 is guest-physical, port I/O
// reaches the domain's own COM1 and the ACPI poweroff port, MSRs the TSC, EFER, the
// segment bases and the virtual APIC timer. An emulated one costs costs.trap plus
// costs.emulate; a refused one is a #GP reflected into the guest (the fault's trap and
// the delivery). From user mode (CPL 3) every one is #GP(0) reflected
// into the guest. popf is not here: at CPL > IOPL it never traps and silently keeps IF.

import {
  PRIV_CLI, PRIV_HLT, PRIV_IN, PRIV_INVLPG, PRIV_LGDT, PRIV_LIDT, PRIV_LTR, PRIV_NAMES, PRIV_OUT, PRIV_RDMSR,
  PRIV_READ_CR2, PRIV_READ_CR3, PRIV_STI, PRIV_WBINVD, PRIV_WRITE_CR3, PRIV_WRMSR,
} from '../arch/cpu.ts';
import { ACPI_PM1A_CNT, ACPI_POWEROFF, platformInfo } from '../arch/bare-machine.ts';
import { LVT_MASKED } from '../arch/lapic.ts';
import { PAGE_SIZE } from '../arch/memory.ts';
import { MSR_EFER, MSR_FS_BASE, MSR_GS_BASE, MSR_IA32_TSC, MSR_PLATFORM_INFO, MSR_SHADOW_GS_BASE } from '../arch/msr.ts';
import { s64 } from '../arch/pte.ts';
import { systemInsn } from '../arch/system-insn.ts';
import type { Hypervisor } from '../hypervisor.ts';
import { writeBaseMsr } from '../priv-op.ts';
import { SHUTDOWN_poweroff } from '../public/sched.ts';
import { TRAP_gp_fault } from '../public/vcpu.ts';
import { KERNEL_CPL, type Vcpu } from '../vcpu.ts';
import type { ShadowPaging } from './shadow.ts';

const MAX_GP_RETRIES = 1000;
/** EFER bits a 64-bit kernel may write: SCE and NXE; LME and LMA must stay set. */
const EFER_WRITABLE = 0x801;
const EFER_LONG_MODE = 0x500;

/** Timer edges later than this (about 52 days of virtual time) are treated as never. */
const FAR_NS = 2 ** 52;

export class EmulatedPrivOps {
  constructor(
    private readonly hv: Hypervisor,
    private readonly shadow: ShadowPaging,
  ) {}

  /** Privileged instruction `op` from an emulated domain's vCPU: emulated, or #GP(0). */
  execute(v: Vcpu, op: number, a: number, b: number, c: number): number {
    const costs = this.hv.costs;
    const emu = v.domain.emu!;
    for (let tries = 0; ; tries++) {
      if (v.cpl === KERNEL_CPL) {
        const r = this.emulate(v, op, a, b, c);
        if (r !== undefined) {
          // The #GP into the VMM and the emulation; a refused one is charged by fault().
          v.cycles += costs.trap + costs.emulate;
          emu.privOps[op]++;
          return r;
        }
      }
      emu.privRefused[op]++;
      // The handler's iret comes back to the instruction, which runs again.
      if (tries >= MAX_GP_RETRIES) v.crash(`${PRIV_NAMES[op] ?? op} faulted ${tries} times`);
      v.fault(TRAP_gp_fault, 0);
    }
  }

  /** The emulated result, or undefined for #GP(0). */
  private emulate(v: Vcpu, op: number, a: number, b: number, c: number): number | undefined {
    const ev = v.emu!;
    switch (op) {
      case PRIV_CLI:
        ev.vif = false;
        return 0;
      case PRIV_STI:
        ev.vif = true;
        return 0;
      case PRIV_HLT:
        this.hlt(v);
        return 0;
      case PRIV_READ_CR2:
        return s64(v.cr2Lo, v.cr2Hi);
      case PRIV_READ_CR3:
        return ev.cr3;
      case PRIV_WRITE_CR3:
        return this.writeCr3(v, a, b);
      case PRIV_INVLPG:
      case PRIV_LGDT:
      case PRIV_LIDT:
      case PRIV_LTR:
        systemInsn(v, op, a, b);
        return 0;
      case PRIV_IN: {
        const uart = v.domain.emu!.uart;
        if (uart.claims(a)) return uart.read(a, v.nowNs());
        return b === 1 ? 0xff : b === 2 ? 0xffff : 0xffffffff; // no device: the bus floats high
      }
      case PRIV_OUT:
        this.out(v, a, c);
        return 0;
      case PRIV_RDMSR:
        return this.rdmsr(v, a);
      case PRIV_WRMSR:
        return this.wrmsr(v, a, b, c);
      case PRIV_WBINVD:
        return 0;
      default:
        return undefined;
    }
  }

  /**
   * hlt: with the virtual IF set, sleep until the virtual APIC timer's next edge (at
   * once if one is pending; forever if the timer is masked or idle). With it clear,
   * nothing can wake the vCPU: it halts for good, as the hardware would.
   */
  private hlt(v: Vcpu): void {
    const ev = v.emu!;
    const timers = this.hv.sched.timers;
    if (!ev.vif) {
      timers.stop(ev.wakeTimer);
      v.blocked = true;
      v.domain.log.warn({ vcpu: v.vcpuId }, 'hlt with interrupts disabled: the vCPU halts for good');
      return;
    }
    const lapic = ev.lapic;
    if (lapic.poll(v.tsc())) return; // an interrupt is already pending: hlt ends at once
    v.blocked = true;
    if ((lapic.lvt & LVT_MASKED) !== 0 || lapic.nextEdge === Infinity) {
      timers.stop(ev.wakeTimer);
      return;
    }
    const at = this.edgeNs(lapic.nextEdge);
    if (at === Infinity) timers.stop(ev.wakeTimer); // beyond any run: it never comes
    else timers.set(ev.wakeTimer, at);
  }

  /**
   * The first virtual ns at which the TSC reads at least `tsc`, or Infinity for an edge
   * past FAR_NS (a 64-bit deadline may be anything; doubles stop counting ns there).
   */
  private edgeNs(tsc: number): number {
    const mhz = this.hv.costs.clockMhz;
    let ns = Math.ceil((tsc * 1000) / mhz);
    if (!(ns < FAR_NS)) return Infinity;
    for (let i = 0; i < 4 && Math.floor((ns * mhz) / 1000) < tsc; i++) ns++;
    return ns;
  }

  /** mov to cr3: a guest-physical address; the VMM loads the L4's machine frame. */
  private writeCr3(v: Vcpu, lo: number, hi: number): number | undefined {
    const emu = v.domain.emu!;
    const addr = (hi >>> 0) * 4294967296 + (lo >>> 0);
    const pfn = Math.floor(addr / PAGE_SIZE);
    if (pfn >= emu.nrPages) return undefined; // beyond the guest's memory: #GP(0)
    v.emu!.cr3 = pfn * PAGE_SIZE + (lo & 0x18); // PWT and PCD read back as written
    v.loadCr3(emu.p2m[pfn]);
    this.shadow.newEpoch(v.domain);
    return 0;
  }

  private out(v: Vcpu, port: number, value: number): void {
    const d = v.domain;
    const uart = d.emu!.uart;
    if (uart.claims(port)) uart.write(port, value, v.nowNs());
    else if (port === ACPI_PM1A_CNT && (value & 0x3c00) === ACPI_POWEROFF) this.hv.domainShutdown(d, SHUTDOWN_poweroff);
    // Any other port: no device, the write goes nowhere.
  }

  private rdmsr(v: Vcpu, msr: number): number | undefined {
    switch (msr) {
      case MSR_IA32_TSC: return v.tsc();
      case MSR_PLATFORM_INFO: return platformInfo(this.hv.costs);
      case MSR_EFER: return v.emu!.efer;
      case MSR_FS_BASE: return v.fsBase;
      case MSR_GS_BASE: return v.gsBase;
      case MSR_SHADOW_GS_BASE: return v.gsBaseShadow;
      default: return v.emu!.lapic.rdmsr(msr, v.tsc());
    }
  }

  private wrmsr(v: Vcpu, msr: number, lo: number, hi: number): number | undefined {
    switch (msr) {
      case MSR_EFER:
        if (hi !== 0 || (lo & ~(EFER_WRITABLE | EFER_LONG_MODE)) !== 0 || (lo & EFER_LONG_MODE) !== EFER_LONG_MODE) {
          return undefined;
        }
        v.emu!.efer = lo >>> 0;
        return 0;
      default: {
        const base = writeBaseMsr(v, msr, lo, hi);
        if (base !== undefined) return base ? 0 : undefined;
        return v.emu!.lapic.wrmsr(msr, (hi >>> 0) * 4294967296 + (lo >>> 0), v.tsc()) ? 0 : undefined;
      }
    }
  }
}
