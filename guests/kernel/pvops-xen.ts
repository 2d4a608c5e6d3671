// Xen pv-ops: the kernel is paravirtualized. Layer: guests. The interrupt flag is
// vcpu_info's evtchn_upcall_mask (a store, no trap); entries are the trap table and the
// event callback, and returns are HYPERVISOR_iret; page tables are read-only to the
// kernel once in use, built with plain stores while fresh and then pinned, and changed
// afterwards with batched mmu_update; the address space switches with mmuext_op; the
// timer is VIRQ_TIMER driven by set_timer_op; the console is console_io.

import { CALLBACKTYPE_event } from '../../hypervisor/public/callback.ts';
import { SCHEDOP_block, SCHEDOP_shutdown, SHUTDOWN_poweroff } from '../../hypervisor/public/sched.ts';
import { VCPUOP_stop_periodic_timer } from '../../hypervisor/public/vcpu-op.ts';
import type { GuestVcpu } from '../../hypervisor/public/vcpu.ts';
import * as X from '../../hypervisor/public/xen.ts';
import { evtchnBindVirq } from '../lib/evtchn-calls.ts';
import {
  PTE_A, PTE_D, PTE_P, PTE_RW, mmuUpdate, mmuextOp, pfnToVa, pte, ptePtr, updateVaMapping, type StartInfo, type U64,
} from '../lib/xen-calls.ts';
import { readBounceFrame, registerCallback, setTrapTable, stackSwitch, xenIret } from '../lib/xen-traps.ts';
import { get64, iretqTo } from './mem.ts';
import { FLAT_USER_CS, FLAT_USER_SS } from '../../hypervisor/public/arch-x86.ts';
import type { EntryFrame, PvOps, ReturnTarget, TrapGate } from './pvops.ts';

const X86_EFLAGS_IF = 1 << 9;
const VI = X.VCPU_INFO.fields;
/** mmu_update requests that fit in the request page (16 bytes each, and `done`). */
const MAX_BATCH = 128;

export class XenOps implements PvOps {
  readonly kind = 'xen' as const;
  /** Where shared_info is mapped, and this vCPU's vcpu_info in it. */
  private sharedInfo = 0;
  private vcpuInfo = 0;
  /** A page for hypercall arguments, and one for mmu_update batches. */
  private buf = 0;
  private batchVa = 0;
  private readonly batch: [U64, U64][] = [];
  private timerPort = -1;
  /** TSC cycles per microsecond, from vcpu_time_info's scale. */
  private mhz = 0;

  constructor(readonly cpu: GuestVcpu, private readonly si: StartInfo) {}

  /** Takes two pages for hypercall arguments and maps shared_info over a third's direct-map VA. */
  init(pageVa: () => number): void {
    const cpu = this.cpu;
    this.buf = pageVa();
    this.batchVa = pageVa();
    this.sharedInfo = pageVa();
    const siMfn = Math.floor(this.si.sharedInfoMaddr / 4096);
    this.check(updateVaMapping(cpu, this.sharedInfo, pte(siMfn, PTE_P | PTE_RW | PTE_A | PTE_D), X.UVMF_INVLPG),
      'map shared_info');
    this.vcpuInfo = this.sharedInfo + cpu.vcpuId * X.VCPU_INFO.size;
    // Xen starts a 10 ms periodic timer for every vCPU; this kernel uses set_timer_op.
    this.check(cpu.hypercall(X.HYPERVISOR_vcpu_op, VCPUOP_stop_periodic_timer, cpu.vcpuId, 0), 'stop periodic timer');
    const mul = cpu.load32(this.vcpuInfo + VI['time.tsc_to_system_mul'].offset);
    const shift = (cpu.load8(this.vcpuInfo + VI['time.tsc_shift'].offset) << 24) >> 24;
    // ns = (tsc << shift) * mul / 2^32, so cycles per us = 1000 * 2^32 / mul / 2^shift.
    this.mhz = (1000 * 4294967296) / mul / 2 ** shift;
  }

  private check(rc: number, what: string): void {
    if (rc !== 0) throw new Error(`xen: ${what} failed: ${rc}`);
  }

  setupTraps(gates: readonly TrapGate[], timerEntry: number, kernelStackTop: number): void {
    const cpu = this.cpu;
    this.check(setTrapTable(cpu, this.buf, gates.map((g) => ({
      vector: g.vector, dpl: g.dpl, maskEvents: g.disableInterrupts, address: g.address,
    }))), 'set_trap_table');
    this.check(registerCallback(cpu, this.buf, CALLBACKTYPE_event, timerEntry, true), 'event callback');
    this.check(stackSwitch(cpu, kernelStackTop), 'stack_switch');
  }

  private get maskVa(): number {
    return this.vcpuInfo + VI.evtchn_upcall_mask.offset;
  }

  irqDisable(): void {
    this.cpu.store8(this.maskVa, 1);
  }

  /** Clears the mask; a pending upcall is taken at the next boundary. */
  irqEnable(): void {
    this.cpu.store8(this.maskVa, 0);
  }

  irqSave(): number {
    const masked = this.cpu.load8(this.maskVa);
    this.cpu.store8(this.maskVa, 1);
    return masked !== 0 ? 0 : X86_EFLAGS_IF;
  }

  irqRestore(flags: number): void {
    this.cpu.store8(this.maskVa, (flags & X86_EFLAGS_IF) !== 0 ? 0 : 1);
  }

  /** SCHEDOP_block enables events and blocks until one is pending. */
  safeHalt(): void {
    this.cpu.hypercall(X.HYPERVISOR_sched_op, SCHEDOP_block, 0);
  }

  readFrame(hasErrorCode: boolean): EntryFrame {
    const f = readBounceFrame(this.cpu, hasErrorCode);
    return { rip: f.rip, rsp: f.rsp, interruptsOn: f.savedMask === 0, fromUser: f.fromUser, errorCode: f.errorCode };
  }

  /** Takes the pending events (2-level ABI); true if VIRQ_TIMER's port was among them. */
  timerAck(): boolean {
    const cpu = this.cpu;
    cpu.store8(this.vcpuInfo + VI.evtchn_upcall_pending.offset, 0);
    const selVa = this.vcpuInfo + VI.evtchn_pending_sel.offset;
    let tick = false;
    for (let half = 0; half < 2; half++) {
      const sel = cpu.load32(selVa + half * 4);
      if (sel === 0) continue;
      cpu.store32(selVa + half * 4, 0);
      for (let b = 0; b < 32; b++) {
        if ((sel & (1 << b)) === 0) continue;
        const word = half * 32 + b;
        const pendVa = this.sharedInfo + X.SHARED_INFO.fields.evtchn_pending.offset + word * 8;
        const maskVa = this.sharedInfo + X.SHARED_INFO.fields.evtchn_mask.offset + word * 8;
        for (let h = 0; h < 2; h++) {
          const bits = (cpu.load32(pendVa + h * 4) & ~cpu.load32(maskVa + h * 4)) >>> 0;
          if (bits === 0) continue;
          cpu.store32(pendVa + h * 4, (cpu.load32(pendVa + h * 4) & ~bits) >>> 0);
          for (let i = 0; i < 32; i++) {
            if ((bits & (1 << i)) !== 0 && word * 64 + h * 32 + i === this.timerPort) tick = true;
          }
        }
      }
    }
    return tick;
  }

  faultAddress(): number {
    return get64(this.cpu, this.vcpuInfo + VI['arch.cr2'].offset);
  }

  /**
   * To user mode, a native iretq: a ring-1 kernel may iret to ring 3 without Xen (the
   * classic Xen fast path; this kernel's user and kernel page tables are the same L4),
   * after re-enabling events as the frame says. Elsewhere HYPERVISOR_iret.
   */
  returnTo(t: ReturnTarget): never {
    if (t.user) {
      this.cpu.store8(this.maskVa, t.interruptsOn ? 0 : 1);
      return iretqTo(this.cpu, t.rip, t.rsp, FLAT_USER_CS, FLAT_USER_SS, true, t.rax);
    }
    return xenIret(this.cpu, { rip: t.rip, user: t.user, rsp: t.rsp, eventsOn: t.interruptsOn, rax: t.rax });
  }

  frameOf(pfn: number): number {
    return this.cpu.load32(this.si.mfnList + pfn * 8);
  }

  writePte(tablePfn: number, tableVa: number, idx: number, lo: number, hi: number, live: boolean): void {
    if (!live) {
      this.cpu.store64(tableVa + idx * 8, lo, hi);
      return;
    }
    this.batch.push([ptePtr(this.frameOf(tablePfn), idx), { lo, hi }]);
    if (this.batch.length >= MAX_BATCH) this.flushPtes();
  }

  flushPtes(): void {
    if (this.batch.length === 0) return;
    const { rc } = mmuUpdate(this.cpu, this.batchVa, this.batch);
    this.batch.length = 0;
    this.check(rc, 'mmu_update');
  }

  activateTables(pfns: readonly number[], l4Pfn: number): void {
    const cpu = this.cpu;
    for (const pfn of pfns) {
      this.check(updateVaMapping(cpu, pfnToVa(pfn), pte(this.frameOf(pfn), PTE_P | PTE_A), X.UVMF_INVLPG),
        'make a page table read-only');
    }
    if (l4Pfn >= 0) {
      this.check(mmuextOp(cpu, this.buf, [{ cmd: X.MMUEXT_PIN_L4_TABLE, arg1: this.frameOf(l4Pfn) }]).rc, 'pin L4');
    }
  }

  retireTables(pfns: readonly number[], l4Pfn: number): void {
    const cpu = this.cpu;
    this.flushPtes();
    if (l4Pfn >= 0) {
      this.check(mmuextOp(cpu, this.buf, [{ cmd: X.MMUEXT_UNPIN_TABLE, arg1: this.frameOf(l4Pfn) }]).rc, 'unpin L4');
    }
    for (const pfn of pfns) {
      this.check(updateVaMapping(cpu, pfnToVa(pfn), pte(this.frameOf(pfn), PTE_P | PTE_RW | PTE_A | PTE_D),
        X.UVMF_INVLPG), 'make a page writable');
    }
  }

  switchAddressSpace(l4Pfn: number): void {
    this.flushPtes();
    const mfn = this.frameOf(l4Pfn);
    this.check(mmuextOp(this.cpu, this.buf, [
      { cmd: X.MMUEXT_NEW_BASEPTR, arg1: mfn },
      { cmd: X.MMUEXT_NEW_USER_BASEPTR, arg1: mfn },
    ]).rc, 'new baseptr');
  }

  /** System time from vcpu_time_info, read with the version protocol. */
  clockNs(): number {
    const cpu = this.cpu;
    const t = this.vcpuInfo + VI.time.offset;
    for (;;) {
      const version = cpu.load32(t);
      if ((version & 1) !== 0) continue;
      const stamp = get64(cpu, t + 8);
      const system = get64(cpu, t + 16);
      const mul = cpu.load32(t + 24);
      const shift = (cpu.load8(t + 28) << 24) >> 24;
      const tsc = cpu.rdtsc();
      if (cpu.load32(t) !== version) continue;
      const delta = Math.floor((tsc - stamp) * 2 ** shift);
      return system + Math.floor((delta * mul) / 4294967296);
    }
  }

  startTick(t0: number, periodNs: number): void {
    const r = evtchnBindVirq(this.cpu, this.buf, X.VIRQ_TIMER, this.cpu.vcpuId);
    this.check(r.rc, 'bind VIRQ_TIMER');
    this.timerPort = r.port;
    this.rearmTick(t0 + periodNs);
  }

  rearmTick(at: number): void {
    this.check(this.cpu.hypercall(X.HYPERVISOR_set_timer_op, Math.ceil(at)), 'set_timer_op');
  }

  stopTick(): void {
    this.cpu.hypercall(X.HYPERVISOR_set_timer_op, 0);
  }

  udelay(us: number): void {
    this.cpu.compute(us * this.mhz);
  }

  *consoleWrite(bytes: Uint8Array, len: number): Generator<undefined, void, number> {
    const cpu = this.cpu;
    for (let off = 0; off < len; off += 4096) {
      const n = Math.min(4096, len - off);
      for (let i = 0; i < n; i++) cpu.store8(this.buf + i, bytes[off + i]);
      cpu.hypercall(X.HYPERVISOR_console_io, X.CONSOLEIO_write, n, this.buf);
    }
    yield;
  }

  powerOff(): never {
    this.cpu.store32(this.buf, SHUTDOWN_poweroff);
    this.cpu.hypercall(X.HYPERVISOR_sched_op, SCHEDOP_shutdown, this.buf);
    throw new Error('the domain did not shut down');
  }
}
