// Guest-side hypercall wrappers, as a PV kernel's Xen layer writes them: structs go into
// the guest's own memory at a scratch virtual address, and the hypercall gets pointers.
// Layer: guests (imports only hypervisor/public/). Used by guest kernels, the demo and
// the conformance tests.

import type { GuestVcpu } from '../../hypervisor/public/vcpu.ts';
import * as X from '../../hypervisor/public/xen.ts';

export const PAGE_SIZE = 4096;
/** The kernel's direct map of its memory (where the domain builder maps it). */
export const KERNEL_VIRT_BASE = -0x780000000000;

// PTE flag bits (low half).
export const PTE_P = 0x001;
export const PTE_RW = 0x002;
export const PTE_US = 0x004;
export const PTE_PWT = 0x008;
export const PTE_PCD = 0x010;
export const PTE_A = 0x020;
export const PTE_D = 0x040;
export const PTE_PSE = 0x080;
export const PTE_G = 0x100;
/** NX is bit 63: bit 31 of the high half. */
export const PTE_NX_HI = 0x80000000;

/** One 64-bit quantity as halves. */
export interface U64 {
  readonly lo: number;
  readonly hi: number;
}

/** A PTE for frame `mfn` with low flags and optional high-half bits. */
export function pte(mfn: number, flags: number, hiBits = 0): U64 {
  return { lo: ((mfn << 12) | flags) >>> 0, hi: (Math.floor(mfn / 0x100000) | hiBits) >>> 0 };
}

/** The machine address of entry `idx` of table `mfn`, with an mmu_update command. */
export function ptePtr(mfn: number, idx: number, cmd = X.MMU_NORMAL_PT_UPDATE): U64 {
  const addr = mfn * PAGE_SIZE + idx * 8 + cmd;
  return { lo: addr >>> 0, hi: Math.floor(addr / 4294967296) };
}

export function pfnToVa(pfn: number): number {
  return KERNEL_VIRT_BASE + pfn * PAGE_SIZE;
}

export function store64(v: GuestVcpu, va: number, x: U64): void {
  v.store64(va, x.lo, x.hi);
}

export interface StartInfo {
  nrPages: number;
  sharedInfoMaddr: number;
  flags: number;
  ptBase: number;
  nrPtFrames: number;
  mfnList: number;
}

/** Reads start_info at `va` (the pointer the builder passes in rsi). */
export function readStartInfo(v: GuestVcpu, va: number): StartInfo {
  const F = X.START_INFO.fields;
  const s64 = (off: number): number => {
    const lo = v.load32(va + off);
    const hi = v.load32(va + off + 4);
    return (hi | 0) * 4294967296 + lo;
  };
  return {
    nrPages: s64(F.nr_pages.offset),
    sharedInfoMaddr: s64(F.shared_info.offset),
    flags: v.load32(va + F.flags.offset),
    ptBase: s64(F.pt_base.offset),
    nrPtFrames: s64(F.nr_pt_frames.offset),
    mfnList: s64(F.mfn_list.offset),
  };
}

/** The MFN behind a PFN, from the P2M list the builder gave us. */
export function pfnToMfn(v: GuestVcpu, si: StartInfo, pfn: number): number {
  return v.load32(si.mfnList + pfn * 8);
}

/**
 * mmu_update with requests [ptr, val] written at bufVa (and *pdone just after them).
 * Returns the hypercall's result and the done count.
 */
export function mmuUpdate(v: GuestVcpu, bufVa: number, reqs: readonly (readonly [U64, U64])[],
  foreigndom = X.DOMID_SELF): { rc: number; done: number } {
  reqs.forEach(([ptr, val], i) => {
    store64(v, bufVa + i * 16, ptr);
    store64(v, bufVa + i * 16 + 8, val);
  });
  const pdone = bufVa + reqs.length * 16;
  v.store32(pdone, 0xdeadbeef);
  const rc = v.hypercall(X.HYPERVISOR_mmu_update, bufVa, reqs.length, pdone, foreigndom);
  return { rc, done: v.load32(pdone) };
}

export interface MmuextOpArgs {
  cmd: number;
  arg1?: number;
  arg2?: number;
}

/** mmuext_op with ops written at bufVa (24 bytes each, *pdone just after). */
export function mmuextOp(v: GuestVcpu, bufVa: number, ops: readonly MmuextOpArgs[],
  foreigndom = X.DOMID_SELF): { rc: number; done: number } {
  ops.forEach((op, i) => {
    const at = bufVa + i * X.MMUEXT_OP.size;
    v.store64(at, op.cmd, 0);
    const a1 = op.arg1 ?? 0;
    const a2 = op.arg2 ?? 0;
    v.store64(at + 8, a1 >>> 0, Math.floor(a1 / 4294967296) >>> 0);
    v.store64(at + 16, a2 >>> 0, Math.floor(a2 / 4294967296) >>> 0);
  });
  const pdone = bufVa + ops.length * X.MMUEXT_OP.size;
  v.store32(pdone, 0xdeadbeef);
  const rc = v.hypercall(X.HYPERVISOR_mmuext_op, bufVa, ops.length, pdone, foreigndom);
  return { rc, done: v.load32(pdone) };
}

/** Pins `mfn` as a page table of `level` (1-4). */
export function pinTable(v: GuestVcpu, bufVa: number, level: number, mfn: number, foreigndom = X.DOMID_SELF): number {
  return mmuextOp(v, bufVa, [{ cmd: X.MMUEXT_PIN_L1_TABLE + level - 1, arg1: mfn }], foreigndom).rc;
}

export function unpinTable(v: GuestVcpu, bufVa: number, mfn: number): number {
  return mmuextOp(v, bufVa, [{ cmd: X.MMUEXT_UNPIN_TABLE, arg1: mfn }]).rc;
}

/** update_va_mapping(va, pte, flags). */
export function updateVaMapping(v: GuestVcpu, va: number, val: U64, flags: number): number {
  return v.hypercall(X.HYPERVISOR_update_va_mapping, va, val, flags);
}
