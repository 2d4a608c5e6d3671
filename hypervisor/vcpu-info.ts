// Xen's side of the shared_info page: the vcpu_info bytes that carry the virtual
// interrupt flag (evtchn_upcall_mask) and the upcall-pending flag, and the event
// selector word. Layer: hypervisor. shared_info is a Xen-heap page of the domain, read
// and written here directly in machine memory, as Xen does through its own mapping.

import type { MachineMemory } from './arch/memory.ts';
import type { Vcpu } from './vcpu.ts';
import { VCPU_INFO } from './public/xen.ts';
import { XEN_LEGACY_MAX_VCPUS } from './public/arch-x86.ts';

const PENDING = VCPU_INFO.fields.evtchn_upcall_pending.offset;
const MASK = VCPU_INFO.fields.evtchn_upcall_mask.offset;
const SEL = VCPU_INFO.fields.evtchn_pending_sel.offset;

/** Byte offset of v's vcpu_info in shared_info, or -1 (vCPUs past 32 have none here). */
function base(v: Vcpu): number {
  if (v.vcpuId >= XEN_LEGACY_MAX_VCPUS || v.domain.sharedInfoMfn < 0) return -1;
  return v.vcpuId * VCPU_INFO.size;
}

export function upcallMask(mem: MachineMemory, v: Vcpu): number {
  const b = base(v);
  return b < 0 ? 1 : mem.read8(v.domain.sharedInfoMfn, b + MASK);
}

export function setUpcallMask(mem: MachineMemory, v: Vcpu, mask: number): void {
  const b = base(v);
  if (b >= 0) mem.write8(v.domain.sharedInfoMfn, b + MASK, mask & 0xff);
}

export function upcallPending(mem: MachineMemory, v: Vcpu): number {
  const b = base(v);
  return b < 0 ? 0 : mem.read8(v.domain.sharedInfoMfn, b + PENDING);
}

/** Test-and-set of evtchn_upcall_pending: true if it was clear. */
export function testAndSetUpcallPending(mem: MachineMemory, v: Vcpu): boolean {
  const b = base(v);
  if (b < 0) return false;
  const was = mem.read8(v.domain.sharedInfoMfn, b + PENDING);
  if (was !== 0) return false;
  mem.write8(v.domain.sharedInfoMfn, b + PENDING, 1);
  return true;
}

/** Xen delivers an upcall when the pending/mask pair, read as one 16-bit word, is 1..0xff. */
export function eventsNeedDelivery(mem: MachineMemory, v: Vcpu): boolean {
  const b = base(v);
  if (b < 0) return false;
  const si = v.domain.sharedInfoMfn;
  return mem.read8(si, b + PENDING) !== 0 && mem.read8(si, b + MASK) === 0;
}

/** Test-and-set of selector bit `word` in evtchn_pending_sel: true if it was clear. */
export function testAndSetPendingSel(mem: MachineMemory, v: Vcpu, word: number): boolean {
  const b = base(v);
  if (b < 0) return false;
  const off = b + SEL + (word >>> 5) * 4;
  const bit = 1 << (word & 31);
  const si = v.domain.sharedInfoMfn;
  const was = mem.read32(si, off);
  if ((was & bit) !== 0) return false;
  mem.write32(si, off, (was | bit) >>> 0);
  return true;
}
