// The 2-level event ABI (common/event_2l.c, x86 vcpu_mark_events_pending): the pending
// and mask bitmaps in shared_info, the selector word and upcall flag in vcpu_info.
// Layer: hypervisor. shared_info is a Xen-heap page, read and written directly in
// machine memory; port p is bit p & 31 of 32-bit word p >> 5 of each bitmap, and its
// selector bit is p >> 6. Allocation-free: these run on every event.

import type { MachineMemory } from './arch/memory.ts';
import type { Domain } from './domain.ts';
import { SHARED_INFO } from './public/xen.ts';
import { testAndSetPendingSel, testAndSetUpcallPending } from './vcpu-info.ts';
import type { Vcpu } from './vcpu.ts';

const PENDING = SHARED_INFO.fields.evtchn_pending.offset;
const MASK = SHARED_INFO.fields.evtchn_mask.offset;

/** What delivery needs from the hypervisor: waking vCPUs. */
export interface EventWaker {
  /** vcpu_kick: v's evtchn_upcall_pending went from 0 to 1. */
  vcpuKick(v: Vcpu): void;
  /** evtchn_check_pollers: port of d became pending (even masked). */
  wakePollers(d: Domain, port: number): void;
}

export class Evtchn2l {
  constructor(
    private readonly mem: MachineMemory,
    private readonly waker: EventWaker,
  ) {}

  /**
   * evtchn_2l_set_pending on the vCPU `vcpuId` of d (which must exist). Test-and-set
   * of the pending bit; only if it was clear: when the port is unmasked and its
   * selector bit newly set, mark events pending on the vCPU; then wake pollers.
   */
  setPending(d: Domain, vcpuId: number, port: number): void {
    const si = d.sharedInfoMfn;
    const off = PENDING + ((port >>> 5) << 2);
    const bit = 1 << (port & 31);
    const word = this.mem.read32(si, off);
    if ((word & bit) !== 0) return;
    this.mem.write32(si, off, (word | bit) >>> 0);
    const v = d.vcpus[vcpuId];
    if ((this.mem.read32(si, MASK + ((port >>> 5) << 2)) & bit) === 0 && testAndSetPendingSel(this.mem, v, port >>> 6)) {
      this.markEventsPending(v);
    }
    this.waker.wakePollers(d, port);
  }

  /** vcpu_mark_events_pending: set evtchn_upcall_pending; kick the vCPU if it was clear. */
  markEventsPending(v: Vcpu): void {
    if (testAndSetUpcallPending(this.mem, v)) this.waker.vcpuKick(v);
  }

  /** evtchn_2l_clear_pending. */
  clearPending(d: Domain, port: number): void {
    const off = PENDING + ((port >>> 5) << 2);
    const word = this.mem.read32(d.sharedInfoMfn, off);
    const bit = 1 << (port & 31);
    if ((word & bit) !== 0) this.mem.write32(d.sharedInfoMfn, off, (word & ~bit) >>> 0);
  }

  /**
   * evtchn_2l_unmask, signalling vCPU `vcpuId`: test-and-clear the mask bit; only if it
   * was set, the port is pending and its selector bit newly set, mark events pending.
   */
  unmask(d: Domain, vcpuId: number, port: number): void {
    const si = d.sharedInfoMfn;
    const off = (port >>> 5) << 2;
    const bit = 1 << (port & 31);
    const mask = this.mem.read32(si, MASK + off);
    if ((mask & bit) === 0) return;
    this.mem.write32(si, MASK + off, (mask & ~bit) >>> 0);
    const v = d.vcpus[vcpuId];
    if ((this.mem.read32(si, PENDING + off) & bit) !== 0 && testAndSetPendingSel(this.mem, v, port >>> 6)) {
      this.markEventsPending(v);
    }
  }

  /** The raw pending bit of a port (below the 2-level limit). */
  pendingBit(d: Domain, port: number): boolean {
    return (this.mem.read32(d.sharedInfoMfn, PENDING + ((port >>> 5) << 2)) & (1 << (port & 31))) !== 0;
  }

  /** The raw mask bit of a port (below the 2-level limit). */
  maskBit(d: Domain, port: number): boolean {
    return (this.mem.read32(d.sharedInfoMfn, MASK + ((port >>> 5) << 2)) & (1 << (port & 31))) !== 0;
  }
}
