// HYPERVISOR_memory_op (Xen's do_memory_op and the x86 subarch ops): a domain's
// reservation of machine memory. Layer: hypervisor. increase/decrease/populate never
// return an errno: any failure shows only as fewer extents done (Xen's convention).

import { PGC_allocated, PGC_xen_heap } from './arch/frame-table.ts';
import type { Domain } from './domain.ts';
import { addrOk } from './guest-access.ts';
import type { Hypervisor } from './hypervisor.ts';
import { EFAULT, EINVAL, ENOSYS, ENXIO, ESRCH } from './public/errno.ts';
import * as M from './public/memory.ts';
import { DOMID_SELF, SHARED_INFO } from './public/xen.ts';
import { addOffset, type Vcpu } from './vcpu.ts';

const RES = M.XEN_MEMORY_RESERVATION.fields;
/**
 * Largest extent order per caller (Xen's max_order): CONFIG_DOMU_MAX_ORDER 9,
 * CONFIG_HWDOM_MAX_ORDER 12, and for the control domain CONFIG_PAGEALLOC_MAX_ORDER,
 * 2 * PAGETABLE_ORDER = 18 on x86.
 */
const DOMU_MAX_ORDER = 9;
const HWDOM_MAX_ORDER = 12;
const CTLDOM_MAX_ORDER = 18;

function maxOrder(d: Domain): number {
  let order = DOMU_MAX_ORDER;
  if (d.hasIomem) order = Math.max(order, HWDOM_MAX_ORDER);
  if (d.isPrivileged) order = Math.max(order, CTLDOM_MAX_ORDER);
  return order;
}

export class MemoryOp {
  private readonly buf = new Uint8Array(32);

  constructor(private readonly hv: Hypervisor) {}

  /** memory_op(cmd, arg): the op in cmd's low 6 bits, a continuation's start extent above. */
  call(v: Vcpu, cmd: number, cmdHi: number, argLo: number, argHi: number): number {
    const op = cmd & M.MEMOP_CMD_MASK;
    const start = (cmd >>> M.MEMOP_EXTENT_SHIFT) + cmdHi * 2 ** (32 - M.MEMOP_EXTENT_SHIFT);
    switch (op) {
      case M.XENMEM_increase_reservation:
      case M.XENMEM_decrease_reservation:
      case M.XENMEM_populate_physmap:
        return this.reservation(v, op, start, argLo, argHi);
      case M.XENMEM_maximum_ram_page:
        return start !== 0 ? -EINVAL : this.hv.frames.nrFrames;
      case M.XENMEM_current_reservation:
      case M.XENMEM_maximum_reservation:
      case M.XENMEM_maximum_gpfn:
        return start !== 0 ? -EINVAL : this.stat(v, op, argLo, argHi);
      case M.XENMEM_machphys_mfn_list:
        return start !== 0 ? -ENOSYS : this.machphysMfnList(v, argLo, argHi);
      default:
        return -ENOSYS;
    }
  }

  /**
   * rcu_lock_domain_by_any_id: DOMID_SELF or a number (the caller's own is fine); a
   * dying domain is still found (allocating to it fails later).
   */
  private target(caller: Domain, domid: number): Domain | undefined {
    if (domid === DOMID_SELF) return caller;
    return domid < 0x7ff0 ? this.hv.domainById(domid) : undefined;
  }

  private reservation(v: Vcpu, op: number, start: number, argLo: number, argHi: number): number {
    const hv = this.hv;
    const b = this.buf;
    if (!hv.ga.copyFrom(v, argLo, argHi, b, M.XEN_MEMORY_RESERVATION.size)) return start;
    const dv = new DataView(b.buffer, b.byteOffset, b.byteLength);
    const listLo = dv.getUint32(RES.extent_start.offset, true);
    const listHi = dv.getUint32(RES.extent_start.offset + 4, true);
    const nrLo = dv.getUint32(RES.nr_extents.offset, true);
    const nrHi = dv.getUint32(RES.nr_extents.offset + 4, true);
    const order = dv.getUint32(RES.extent_order.offset, true);
    const memFlags = dv.getUint32(RES.mem_flags.offset, true);
    const domid = dv.getUint16(RES.domid.offset, true);
    if (nrHi !== 0 || nrLo > 0xffffffff >>> M.MEMOP_EXTENT_SHIFT) return start;
    if (start >= nrLo) return start;
    const d = this.target(v.domain, domid);
    if (!d) return start;
    // address_bits: frames must lie below 2^bits (for DMA); 1-12 cannot be met at all.
    const addressBits = M.XENMEMF_get_address_bits(memFlags);
    if (addressBits !== 0 && addressBits <= 12) return start;
    const limit = addressBits === 0 ? Infinity : 2 ** (addressBits - 12);
    if (hv.mm.xsmTarget(v.domain, d) !== 0) return start;
    const hasList = listLo !== 0 || listHi !== 0;
    if (hasList && !addrOk(listHi)) return start;
    if (order > maxOrder(v.domain)) return start;
    let i = start;
    for (; i < nrLo; i++) {
      const [eLo, eHi] = addOffset(listLo, listHi, i * 8);
      if (op === M.XENMEM_increase_reservation) {
        const mfn = hv.alloc.allocDomheap(d, order, limit);
        if (mfn < 0) break;
        if (hasList && !hv.ga.write64(v, eLo, eHi, mfn >>> 0, Math.floor(mfn / 4294967296))) break;
      } else if (op === M.XENMEM_populate_physmap) {
        if (!hasList || !hv.ga.copyWords(v, eLo, eHi, 2)) break;
        const gpfnLo = hv.ga.words[0];
        const gpfnHi = hv.ga.words[1];
        const mfn = hv.alloc.allocDomheap(d, order, limit);
        if (mfn < 0) break;
        // guest_physmap_add_page for PV: the M2P learns each frame's pfn.
        for (let j = 0; j < 2 ** order; j++) {
          const sum = gpfnLo + j;
          hv.frames.m2pLo[mfn + j] = sum >>> 0;
          hv.frames.m2pHi[mfn + j] = sum > 0xffffffff ? (gpfnHi + 1) >>> 0 : gpfnHi;
        }
        if (!hv.ga.write64(v, eLo, eHi, mfn >>> 0, Math.floor(mfn / 4294967296))) break;
      } else {
        if (!hasList || !hv.ga.copyWords(v, eLo, eHi, 2)) break;
        const gmfn = hv.ga.words[0] + hv.ga.words[1] * 4294967296;
        let ok = true;
        for (let j = 0; j < 2 ** order && ok; j++) ok = this.guestRemovePage(d, gmfn + j) === 0;
        if (!ok) break;
      }
    }
    return i;
  }

  /**
   * guest_remove_page for PV: drops the allocation reference of a frame the domain owns
   * (-EINVAL if not RAM, -ENXIO if not the domain's). A frame still mapped, pinned or in
   * use as a page table stays until its last reference goes. Xen-heap pages refuse.
   */
  private guestRemovePage(d: Domain, mfn: number): number {
    const { refs } = this.hv.mm;
    const f = this.hv.frames;
    if (!refs.isRam(mfn)) return -EINVAL;
    if (!refs.getPage(mfn, d)) return -ENXIO;
    if ((f.pgc[mfn] & PGC_xen_heap) !== 0) {
      refs.putPage(mfn);
      return -EINVAL;
    }
    if ((f.pgc[mfn] & PGC_allocated) !== 0) {
      f.pgc[mfn] &= ~PGC_allocated;
      refs.putPage(mfn);
    }
    refs.putPage(mfn);
    return 0;
  }

  /** current_reservation, maximum_reservation, maximum_gpfn: arg is a domid_t. */
  private stat(v: Vcpu, op: number, argLo: number, argHi: number): number {
    const hv = this.hv;
    if (!hv.ga.copyFrom(v, argLo, argHi, this.buf, 2)) return -EFAULT;
    const domid = this.buf[0] | (this.buf[1] << 8);
    const d = this.target(v.domain, domid);
    if (!d) return -ESRCH;
    const xsm = hv.mm.xsmTarget(v.domain, d);
    if (xsm !== 0) return xsm;
    if (op === M.XENMEM_current_reservation) return d.totPages;
    if (op === M.XENMEM_maximum_reservation) return d.maxPages;
    // PV: whatever the guest published in shared_info.arch.max_pfn, less one.
    const off = SHARED_INFO.fields['arch.max_pfn'].offset;
    const maxPfn = d.sharedInfoMfn >= 0 ? hv.mem.read32(d.sharedInfoMfn, off) : 0;
    return (maxPfn === 0 ? 1 : maxPfn) - 1;
  }

  /**
   * machphys_mfn_list: the MFN of each 2 MiB chunk of the M2P table, up to max_extents;
   * nr_extents is written back.
   */
  private machphysMfnList(v: Vcpu, argLo: number, argHi: number): number {
    const hv = this.hv;
    const L = M.XEN_MACHPHYS_MFN_LIST.fields;
    if (!hv.ga.copyWords(v, argLo, argHi, 6)) return -EFAULT;
    const w = hv.ga.words;
    const max = w[L.max_extents.offset / 4];
    const listLo = w[L.extent_start.offset / 4];
    const listHi = w[L.extent_start.offset / 4 + 1];
    const chunks = hv.m2pChunks;
    let i = 0;
    for (; i < max && i < chunks.length; i++) {
      const [lo, hi] = addOffset(listLo, listHi, i * 8);
      if (!hv.ga.write64(v, lo, hi, chunks[i], 0)) return -EFAULT;
    }
    const [nlo, nhi] = addOffset(argLo, argHi, L.nr_extents.offset);
    return hv.ga.write32(v, nlo, nhi, i) ? 0 : -EFAULT;
  }
}
