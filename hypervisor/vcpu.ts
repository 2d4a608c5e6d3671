// A vCPU (Xen's struct vcpu): the CPU it runs guest code on, plus what Xen keeps per
// vCPU for a PV guest — the kernel and user page-table bases, the LDT, the virtual trap
// table, the callbacks, the kernel stack for entries from user mode, and whether it is
// up. Layer: hypervisor. Guest code receives only its port (DESIGN §1).

import { CpuPort } from './arch/cpu-port.ts';
import { Cpu, type CpuHost } from './arch/cpu.ts';
import type { ContextTable } from './arch/contexts.ts';
import type { Domain } from './domain.ts';
import { VcpuHalted } from './public/vcpu.ts';
import { CreditUnit } from './sched/credit.ts';
import type { VcpuTimers } from './sched/core.ts';
import { RUNSTATE_offline } from './public/vcpu-op.ts';
import type { EmuVcpu } from './emulate/state.ts';

export { addHi, addLo, addOffset } from './arch/cpu.ts';

export const KERNEL_CPL = 1;
export const USER_CPL = 3;

/** What a vCPU needs from the hypervisor around it. */
export interface VcpuHost extends CpuHost {
  domainCrash(d: Domain, reason: string): void;
}

export class Vcpu extends Cpu {
  /** guest_table: the kernel's L4 MFN (0 = none). */
  guestTable = 0;
  /** guest_table_user: the user L4 MFN (0 = none). */
  guestTableUser = 0;
  ldtBase = 0;
  ldtEnts = 0;
  isUp = true;
  /** Set when VCPUOP_initialise (or the domain builder) has given it a context. */
  initialised = false;

  // The virtual IDT (set_trap_table): handler address halves, flags and selector.
  readonly trapLo = new Uint32Array(256);
  readonly trapHi = new Uint32Array(256);
  readonly trapFlags = new Uint8Array(256);
  readonly trapCs = new Uint16Array(256);

  // Callbacks (set_callbacks / callback_op), with CALLBACKF_mask_events.
  eventLo = 0;
  eventHi = 0;
  eventMask = true;
  failsafeLo = 0;
  failsafeHi = 0;
  failsafeMask = false;
  syscallLo = 0;
  syscallHi = 0;
  syscallMask = false;
  nmiLo = 0;
  nmiHi = 0;

  /** The virtual IOPL (VCPUOP_initialise's RFLAGS.IOPL): CLI/STI and port I/O need CPL <= it. */
  viopl = 0;
  fsBase = 0;
  gsBase = 0;
  gsBaseShadow = 0;

  /** SCHEDOP_yield: give up the pCPU at the next boundary. */
  yieldPending = false;
  // Scheduling: the pCPU it runs on (-1: none), when it may next run, its credit.
  onPcpu = -1;
  readyAt = 0;
  readonly credit = new CreditUnit();
  /** Its timers (single-shot, periodic, poll), made by the scheduler. */
  timers!: VcpuTimers;
  runstate = RUNSTATE_offline;
  runstateEntry = 0;
  readonly runstateTime = new Float64Array(4);

  /** stack_switch: the kernel stack used on entry from user mode. */
  kernelSs = 0;
  kernelSp = 0;

  /** Trap-and-emulate mode's virtual state (hypervisor/emulate/); null for a PV vCPU. */
  emu: EmuVcpu | null = null;

  constructor(
    readonly domain: Domain,
    readonly vcpuId: number,
    readonly xen: VcpuHost,
    contexts: ContextTable,
  ) {
    super(xen, contexts, vcpuId, (c) => new CpuPort(c));
  }

  /**
   * Loads CR3 for the current mode: guestTableUser in user mode, else guestTable. A
   * kernel whose user and kernel tables are one L4 switches no tables between the two
   * (as ring 1 and ring 3 shared one CR3 in classic Xen), so nothing is reloaded then.
   */
  reloadCr3(): void {
    const base = this.cpl === USER_CPL ? this.guestTableUser : this.guestTable;
    if (base !== this.cr3 || this.guestTable !== this.guestTableUser) this.loadCr3(base);
  }

  /**
   * A handler unwinding into an emulated kernel restores its virtual IF with its RFLAGS,
   * and its guest-physical CR3 follows the CR3 the CPU restored.
   */
  protected override unwindState(): number {
    return this.emu !== null && this.emu.vif ? 1 : 0;
  }

  protected override restoreAfterUnwind(saved: number): void {
    const emu = this.emu;
    if (emu === null) return;
    emu.vif = saved === 1;
    const pfn = this.xen.frames.m2pLo[this.cr3];
    if (Math.floor(emu.cr3 / 4096) !== pfn) emu.cr3 = pfn * 4096;
  }

  override checkRunnable(): void {
    if (!this.domain.isAlive) {
      throw new VcpuHalted(`d${this.domain.domid}v${this.vcpuId} cannot run: domain ${this.domain.state}`);
    }
    if (!this.initialised) throw new VcpuHalted(`d${this.domain.domid}v${this.vcpuId} was never initialised`);
  }
}
