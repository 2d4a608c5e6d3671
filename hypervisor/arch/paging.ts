// The x86-64 four-level page walk with its TLB: translates a virtual address for a load,
// store or fetch at a privilege level, checks P/RW/US/NX, and sets Accessed and Dirty
// bits in the tables as the hardware does. Layer: hypervisor/arch.
//
// With a hypervisor present, L4 slots 256-271 are Xen's: rings 1-3 cannot reach them,
// except reads of the read-only M2P window in slot 256, served from the M2P table.
//
// Guest-physical tables (trap-and-emulate mode, hypervisor/emulate/): when the context
// has a P2M map, every entry's frame (upper levels and leaf) is a PFN translated through
// it, and each table frame the walk reads is stamped with the context's shadow epoch in
// one machine-wide array (the VMM's record of which frames it write-protects; see
// hypervisor/emulate/shadow.ts). A TLB hit reads neither.

import { MachineMemory, PAGE_SIZE } from './memory.ts';
import { FrameTable } from './frame-table.ts';
import {
  _PAGE_ACCESSED, _PAGE_DIRTY, _PAGE_NX_HI, _PAGE_PRESENT, _PAGE_PSE, _PAGE_RW, _PAGE_USER,
  PTE_RSVD_HI, isCanonical, l1Index, l2Index, l3Index, l4Index, pteMfn,
} from './pte.ts';
import { TLB_DIRTY, TLB_NX, TLB_RW, TLB_US, Tlb } from './tlb.ts';

// Kinds of access.
export const ACCESS_READ = 0;
export const ACCESS_WRITE = 1;
export const ACCESS_FETCH = 2;

// Page-fault error code bits (Xen's PFEC_*).
export const PFEC_page_present = 1;
export const PFEC_write_access = 2;
export const PFEC_user_mode = 4;
export const PFEC_reserved_bit = 8;
export const PFEC_insn_fetch = 16;

/** translate() result for a non-canonical address: #GP(0). */
export const XLATE_GP = -1;
const PF_BASE = 2;
/** translate() result for a page fault with error code `ec`. */
export function xlatePageFault(ec: number): number {
  return -(PF_BASE + ec);
}
/** The page-fault error code of a translate() result, or -1 if it is not a page fault. */
export function pageFaultCode(result: number): number {
  return result <= -PF_BASE ? -result - PF_BASE : -1;
}

/** Machine addresses at and above this are the M2P table seen through the RO M2P window. */
export const M2P_PSEUDO_BASE = 2 ** 52;

export const XEN_L4_FIRST = 256;
export const XEN_L4_LAST = 271;
export const RO_MPT_L4_SLOT = 256;

/** The parts of a vCPU the walk reads: CR3, the TLB, and for guest-physical tables the P2M. */
export interface PagingContext {
  /** The L4's machine frame. */
  cr3: number;
  readonly tlb: Tlb;
  /** PFN → MFN when the tables hold guest-physical frame numbers; null when they hold MFNs. */
  readonly p2m: Float64Array | null;
  /** The shadow epoch walks stamp table frames with (used only with a P2M). */
  readonly shadowEpoch: number;
}

export class PageWalker {
  /**
   * By MFN: the shadow epoch of the last walk that read the frame as a page table
   * through a P2M (0: never). Allocated when the first guest-physical context appears.
   */
  shadowStamps: Uint32Array | null = null;
  /** Table frames newly stamped (shadows built): the hidden faults of a shadow-paging VMM. */
  shadowFills = 0;

  constructor(
    private readonly mem: MachineMemory,
    private readonly frames: FrameTable,
    /** True under a hypervisor: L4 slots 256-271 are Xen's. */
    private readonly xenRange: boolean,
  ) {}

  /** Allocates the stamp array (once): a guest with guest-physical tables exists. */
  enableShadowStamps(): Uint32Array {
    if (this.shadowStamps === null) this.shadowStamps = new Uint32Array(this.frames.nrFrames);
    return this.shadowStamps;
  }

  /**
   * Translates the virtual address (lo, hi) for `access` at privilege `cpl`.
   * Returns the machine address (>= 0), or XLATE_GP, or xlatePageFault(error code).
   */
  translate(ctx: PagingContext, lo: number, hi: number, access: number, cpl: number): number {
    if (!isCanonical(hi)) return XLATE_GP;
    const l4 = l4Index(hi);
    if (this.xenRange && cpl > 0 && l4 >= XEN_L4_FIRST && l4 <= XEN_L4_LAST) {
      return this.xenRangeAccess(ctx, lo, hi, l4, access, cpl);
    }
    const tlb = ctx.tlb;
    const vpn = Tlb.vpnOf(lo, hi);
    const slot = tlb.lookup(lo, vpn);
    if (slot >= 0) {
      const perm = tlb.perm[slot];
      if (permits(perm, access, cpl) && (access !== ACCESS_WRITE || (perm & TLB_DIRTY) !== 0)) {
        return tlb.mfn[slot] * PAGE_SIZE + (lo & 0xfff);
      }
      // x86 drops the entry and faults; re-walking first is what Xen's spurious-fault
      // check would do, so a fault here reflects the tables as they are now.
      tlb.invalidateSlot(slot);
    }
    return this.walk(ctx, lo, hi, vpn, access, cpl);
  }

  private walk(ctx: PagingContext, lo: number, hi: number, vpn: number, access: number, cpl: number): number {
    const mem = this.mem;
    const nrFrames = this.frames.nrFrames;
    const p2m = ctx.p2m;
    const user = cpl === 3;
    let table = ctx.cr3;
    let rw = 1;
    let us = 1;
    let nx = 0;
    let leafTable = 0;
    let leafOff = 0;
    let leafLo = 0;
    let mfn = 0;
    for (let level = 4; level >= 1; level--) {
      if (table >= nrFrames) return xlatePageFault(faultCode(PFEC_reserved_bit | PFEC_page_present, access, user));
      if (p2m !== null && this.shadowStamps![table] !== ctx.shadowEpoch) {
        // The first walk through this table since the epoch began: the VMM builds its shadow.
        this.shadowStamps![table] = ctx.shadowEpoch;
        this.shadowFills++;
      }
      const idx = level === 4 ? l4Index(hi) : level === 3 ? l3Index(lo, hi) : level === 2 ? l2Index(lo) : l1Index(lo);
      const off = idx << 3;
      let elo = mem.read32(table, off);
      const ehi = mem.read32(table, off + 4);
      if ((elo & _PAGE_PRESENT) === 0) return xlatePageFault(faultCode(0, access, user));
      if ((ehi & PTE_RSVD_HI) !== 0 || (level === 4 && (elo & _PAGE_PSE) !== 0)) {
        return xlatePageFault(faultCode(PFEC_reserved_bit | PFEC_page_present, access, user));
      }
      rw &= elo >>> 1;
      us &= elo >>> 2;
      nx |= ehi >>> 31;
      if ((elo & _PAGE_ACCESSED) === 0) {
        elo = (elo | _PAGE_ACCESSED) >>> 0;
        mem.write32(table, off, elo);
      }
      mfn = pteMfn(elo, ehi);
      if (level === 1 || ((level === 3 || level === 2) && (elo & _PAGE_PSE) !== 0)) {
        if (level > 1) {
          // A superpage: the frame is the base plus the page's index inside it. The
          // frame bits below the superpage's alignment are reserved (#PF, RSVD).
          const pages = level === 3 ? 0x40000 : 0x200;
          if (mfn % pages !== 0) return xlatePageFault(faultCode(PFEC_reserved_bit | PFEC_page_present, access, user));
          mfn += vpn % pages;
        }
        // A guest-physical leaf outside the guest's memory is MMIO with no device behind
        // it: a frame past the end of machine memory (reads all-ones, writes ignored).
        if (p2m !== null) mfn = mfn < p2m.length ? p2m[mfn] : nrFrames + mfn;
        leafTable = table;
        leafOff = off;
        leafLo = elo;
        break;
      }
      if (p2m !== null) {
        // A table outside the guest's memory: reserved-bit fault, as for a missing frame.
        if (mfn >= p2m.length) return xlatePageFault(faultCode(PFEC_reserved_bit | PFEC_page_present, access, user));
        mfn = p2m[mfn];
      }
      table = mfn;
    }
    let perm = (rw & 1 ? TLB_RW : 0) | (us & 1 ? TLB_US : 0) | (nx ? TLB_NX : 0);
    if (!permits(perm, access, cpl)) return xlatePageFault(faultCode(PFEC_page_present, access, user));
    if ((leafLo & _PAGE_DIRTY) !== 0) {
      perm |= TLB_DIRTY;
    } else if (access === ACCESS_WRITE) {
      mem.write32(leafTable, leafOff, (leafLo | _PAGE_DIRTY) >>> 0);
      perm |= TLB_DIRTY;
    }
    ctx.tlb.fill(lo, vpn, mfn, perm);
    return mfn * PAGE_SIZE + (lo & 0xfff);
  }

  /**
   * Slot 256, when the loaded L4 has Xen's RO M2P entry there, maps the M2P table for
   * reads; everything else in Xen's range faults (all of it for guest-physical tables).
   */
  private xenRangeAccess(ctx: PagingContext, lo: number, hi: number, l4: number, access: number, cpl: number): number {
    const user = cpl === 3;
    // A guest with guest-physical tables is not Xen-aware: the whole range is the VMM's.
    if (ctx.p2m !== null) return xlatePageFault(faultCode(PFEC_page_present, access, user));
    if (l4 === RO_MPT_L4_SLOT && (this.mem.read32(ctx.cr3, RO_MPT_L4_SLOT << 3) & _PAGE_PRESENT) === 0) {
      return xlatePageFault(faultCode(0, access, user));
    }
    if (l4 !== RO_MPT_L4_SLOT || access !== ACCESS_READ) {
      return xlatePageFault(faultCode(PFEC_page_present, access, user));
    }
    // Offset into the 512 GiB window: bits 0-38 of the address.
    const offset = (hi & 0x7f) * 4294967296 + lo;
    // The window is populated for the machine's frames, rounded up to a page of entries.
    const populated = Math.ceil(this.frames.nrFrames / 512) * PAGE_SIZE;
    if (offset >= populated) return xlatePageFault(faultCode(0, access, user));
    return M2P_PSEUDO_BASE + offset;
  }
}

function permits(perm: number, access: number, cpl: number): boolean {
  if (cpl === 3 && (perm & TLB_US) === 0) return false;
  // CR0.WP is set: supervisor writes honour RW too.
  if (access === ACCESS_WRITE) return (perm & TLB_RW) !== 0;
  if (access === ACCESS_FETCH) return (perm & TLB_NX) === 0;
  return true;
}

function faultCode(base: number, access: number, user: boolean): number {
  return base | (access === ACCESS_WRITE ? PFEC_write_access : 0) |
    (access === ACCESS_FETCH ? PFEC_insn_fetch : 0) | (user ? PFEC_user_mode : 0);
}

/**
 * Reads the L1 entry that maps (lo, hi) under `cr3` without side effects (Xen's
 * guest_get_eff_l1e). Returns the L1 table's MFN and the entry's index, or -1 when an
 * upper level is not present or is a superpage. Used by the writable-pagetable emulation.
 */
export function findL1Slot(mem: MachineMemory, frames: FrameTable, cr3: number, lo: number, hi: number): number {
  let table = cr3;
  for (let level = 4; level >= 2; level--) {
    if (table >= frames.nrFrames) return -1;
    const idx = level === 4 ? l4Index(hi) : level === 3 ? l3Index(lo, hi) : l2Index(lo);
    const elo = mem.read32(table, idx << 3);
    if ((elo & _PAGE_PRESENT) === 0 || (level < 4 && (elo & _PAGE_PSE) !== 0)) return -1;
    table = pteMfn(elo, mem.read32(table, (idx << 3) + 4));
  }
  if (table >= frames.nrFrames) return -1;
  return table * 512 + l1Index(lo);
}

