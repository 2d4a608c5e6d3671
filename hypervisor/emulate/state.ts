// Trap-and-emulate mode: what the VMM keeps for a domain whose unmodified native kernel
// runs deprivileged in ring 1 believing it owns a bare PC, and for each of its vCPUs.
// Layer: hypervisor (emulate/). The per-domain part is the guest-physical memory map
// (P2M), the emulated COM1 and the statistics; the per-vCPU part is the virtual
// interrupt flag, the guest-physical CR3, EFER and a virtual local APIC timer.

import { PRIV_NAMES } from '../arch/cpu.ts';
import { LocalApicTimer } from '../arch/lapic.ts';
import { COM1_PORT, Uart } from '../arch/uart.ts';
import { DOMAIN_PBUF_SIZE } from '../console-io.ts';
import { Timer } from '../sched/timer-queue.ts';

/** EFER as a 64-bit kernel finds it at boot: SCE, LME, LMA, NXE. */
export const EFER_BOOT = 0xd01;

export class EmuDomain {
  /** The domain's COM1: whole lines go to the hypervisor's console log. */
  readonly uart: Uart;
  /** Privileged instructions trapped and emulated, by PRIV_* number. */
  readonly privOps = new Float64Array(PRIV_NAMES.length);
  /** Privileged instructions that trapped and were answered with #GP(0), by PRIV_*. */
  readonly privRefused = new Float64Array(PRIV_NAMES.length);
  /** Guest stores to shadowed page-table frames (each a trap). */
  ptWriteTraps = 0;
  /** Shadows built: the first walk through a guest table frame in an epoch (a hidden fault). */
  shadowFills = 0;
  /** iretq to ring 0 frames, caught as #GP and emulated. */
  iretsEmulated = 0;
  /** External (virtual APIC) interrupts delivered through the guest's IDT. */
  interrupts = 0;

  constructor(
    /** PFN → MFN for all of the domain's memory (fixed: the guest makes no hypercalls). */
    readonly p2m: Float64Array,
    onLine: (text: string) => void,
  ) {
    // Lines are cut where Xen's console cuts a guest's (console_io's DOMAIN_PBUF_SIZE).
    this.uart = new Uart(COM1_PORT, onLine, DOMAIN_PBUF_SIZE - 1);
  }

  get nrPages(): number {
    return this.p2m.length;
  }
}

export class EmuVcpu {
  /** The interrupt flag the kernel believes it has (cli/sti/iret/gates change it). */
  vif = false;
  /** CR3 as the guest wrote it: a guest-physical address. */
  cr3 = 0;
  efer = EFER_BOOT;
  /** The vCPU's virtual local APIC timer (time: the vCPU's TSC). */
  readonly lapic = new LocalApicTimer();
  /** Wakes the vCPU from hlt at the APIC timer's next edge. */
  readonly wakeTimer: Timer;

  constructor(wake: (when: number) => void) {
    this.wakeTimer = new Timer('apic wake', wake);
  }
}
