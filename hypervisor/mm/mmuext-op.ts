// HYPERVISOR_mmuext_op (Xen's do_mmuext_op): pinning, page-table bases, TLB and cache
// flushes, the LDT, and clearing or copying a page. Layer: hypervisor/mm. Batched like
// mmu_update: the first failing op stops the batch and *pdone counts the ops done.

import { PGT_l1_page_table, PGT_l4_page_table, PGT_pinned, PGT_writable_page } from '../arch/frame-table.ts';
import type { Domain } from '../domain.ts';
import { addrOk, type GuestAccess } from '../guest-access.ts';
import { EACCES, EFAULT, EINVAL, ENOSYS, EOPNOTSUPP, EPERM, ESRCH } from '../public/errno.ts';
import * as X from '../public/xen.ts';
import { addHi, addLo, addOffset, type Vcpu } from '../vcpu.ts';
import type { Mm } from './mm.ts';

const OP_SIZE = 24;

/** The flushes mmuext_op asks of the hypervisor. */
export interface TlbControl {
  flushDomainTlbs(d: Domain): void;
  flushVcpuTlb(v: Vcpu): void;
  invlpgVcpu(v: Vcpu, lo: number, hi: number): void;
}

export class MmuextOp {
  constructor(
    private readonly mm: Mm,
    private readonly ga: GuestAccess,
    private readonly tlb: TlbControl,
  ) {}

  call(v: Vcpu, opsLo: number, opsHi: number, count: number, pdoneLo: number, pdoneHi: number, foreigndom: number): number {
    const d = v.domain;
    let done = 0;
    const hasPdone = pdoneLo !== 0 || pdoneHi !== 0;
    if ((count & X.MMU_UPDATE_PREEMPTED) !== 0) {
      count = (count & ~X.MMU_UPDATE_PREEMPTED) >>> 0;
      if (hasPdone && this.ga.copyWords(v, pdoneLo, pdoneHi, 1)) done = this.ga.words[0];
    }
    if (!addrOk(opsHi)) return -EFAULT;
    const pgOwner = this.mm.getPgOwner(d, foreigndom & 0xffff);
    if (!pgOwner) return -ESRCH;
    const xsm = this.mm.xsmTarget(d, pgOwner);
    if (xsm !== 0) return xsm;

    let rc = 0;
    let i = 0;
    let lo = opsLo;
    let hi = opsHi;
    for (; i < count; i++) {
      if (!this.ga.copyWords(v, lo, hi, 6)) {
        rc = -EFAULT;
        break;
      }
      const w = this.ga.words;
      // cmd @0 (u32); arg1 @8 (mfn or linear address); arg2 @16 (nr_ents, vcpumask or src_mfn).
      rc = this.op(v, pgOwner, w[0], w[2], w[3], w[4], w[5]);
      if (rc !== 0) break;
      hi = addHi(lo, hi, OP_SIZE);
      lo = addLo(lo, OP_SIZE);
    }
    if (hasPdone) this.ga.write32(v, pdoneLo, pdoneHi, (done + i) >>> 0);
    return rc;
  }

  private op(v: Vcpu, fd: Domain, cmd: number, a1lo: number, a1hi: number, a2lo: number, a2hi: number): number {
    const d = v.domain;
    const mfn = a1lo + a1hi * 4294967296;
    switch (cmd) {
      case X.MMUEXT_PIN_L1_TABLE:
      case X.MMUEXT_PIN_L2_TABLE:
      case X.MMUEXT_PIN_L3_TABLE:
      case X.MMUEXT_PIN_L4_TABLE:
        return this.pin(d, fd, mfn, cmd - X.MMUEXT_PIN_L1_TABLE + PGT_l1_page_table);
      case X.MMUEXT_UNPIN_TABLE:
        return this.unpin(fd, mfn);
      case X.MMUEXT_NEW_BASEPTR:
        return fd !== d ? -EPERM : this.newBaseptr(v, mfn);
      case X.MMUEXT_NEW_USER_BASEPTR:
        return fd !== d ? -EPERM : this.newUserBaseptr(v, mfn);
      case X.MMUEXT_TLB_FLUSH_LOCAL:
        if (fd !== d) return -EPERM;
        this.tlb.flushVcpuTlb(v);
        return 0;
      case X.MMUEXT_INVLPG_LOCAL:
        if (fd !== d) return -EPERM;
        if (addrOk(a1hi)) this.tlb.invlpgVcpu(v, a1lo, a1hi);
        return 0;
      case X.MMUEXT_TLB_FLUSH_MULTI:
      case X.MMUEXT_INVLPG_MULTI:
        if (fd !== d) return -EPERM;
        return this.flushMulti(v, cmd === X.MMUEXT_INVLPG_MULTI, a1lo, a1hi, a2lo, a2hi);
      case X.MMUEXT_TLB_FLUSH_ALL:
        if (fd !== d) return -EPERM;
        this.tlb.flushDomainTlbs(d);
        return 0;
      case X.MMUEXT_INVLPG_ALL:
        if (fd !== d) return -EPERM;
        if (addrOk(a1hi)) for (const w of d.vcpus) this.tlb.invlpgVcpu(w, a1lo, a1hi);
        return 0;
      case X.MMUEXT_FLUSH_CACHE:
        if (fd !== d) return -EPERM;
        return d.hasIomem ? 0 : -EACCES;
      case X.MMUEXT_FLUSH_CACHE_GLOBAL:
        if (fd !== d) return -EPERM;
        return d.hasIomem ? 0 : -EINVAL;
      case X.MMUEXT_SET_LDT:
        return fd !== d ? -EPERM : this.setLdt(v, a1lo, a1hi, a2lo);
      case X.MMUEXT_CLEAR_PAGE:
        return this.clearPage(fd, mfn);
      case X.MMUEXT_COPY_PAGE:
        return this.copyPage(fd, mfn, a2lo + a2hi * 4294967296);
      case X.MMUEXT_MARK_SUPER:
      case X.MMUEXT_UNMARK_SUPER:
        return -EOPNOTSUPP;
      default:
        return -ENOSYS;
    }
  }

  /** PIN_Ln_TABLE: a general and a level-n type reference, kept by the pin. */
  private pin(d: Domain, fd: Domain, mfn: number, type: number): number {
    const { refs, types } = this.mm;
    if (!refs.getPage(mfn, fd)) return -EINVAL;
    const rc = types.getPageType(mfn, type);
    if (rc !== 0) {
      refs.putPage(mfn);
      return rc;
    }
    const f = this.mm.host.frames;
    if ((f.typeFlags[mfn] & PGT_pinned) !== 0) {
      types.putPageAndType(mfn);
      return -EINVAL;
    }
    f.typeFlags[mfn] |= PGT_pinned;
    // Racing the owner's destruction: the pin must not outlive relinquish_memory.
    if (fd !== d && fd.isDying) {
      f.typeFlags[mfn] &= ~PGT_pinned;
      types.putPageAndType(mfn);
    }
    return 0;
  }

  private unpin(fd: Domain, mfn: number): number {
    const { refs, types } = this.mm;
    if (!refs.getPage(mfn, fd)) return -EINVAL;
    const f = this.mm.host.frames;
    if ((f.typeFlags[mfn] & PGT_pinned) === 0) {
      refs.putPage(mfn);
      return -EINVAL;
    }
    f.typeFlags[mfn] &= ~PGT_pinned;
    types.putPageAndType(mfn);
    refs.putPage(mfn);
    return 0;
  }

  /** new_guest_cr3: the kernel's L4 base. The old base's references go last. */
  newBaseptr(v: Vcpu, mfn: number): number {
    const old = v.guestTable;
    if (mfn === old) {
      this.tlb.flushVcpuTlb(v);
      return 0;
    }
    const rc = this.mm.types.getPageAndType(mfn, PGT_l4_page_table, v.domain);
    if (rc !== 0) return rc;
    if (!v.domain.m2pStrict) this.mm.tables.setRoMpt(mfn, true);
    v.guestTable = mfn;
    if (v.cpl !== 3) v.reloadCr3();
    if (old !== 0) this.mm.types.putPageAndType(old);
    return 0;
  }

  private newUserBaseptr(v: Vcpu, mfn: number): number {
    const old = v.guestTableUser;
    if (mfn === old) return 0;
    if (mfn !== 0) {
      const rc = this.mm.types.getPageAndType(mfn, PGT_l4_page_table, v.domain);
      if (rc !== 0) return rc;
      if (v.domain.m2pStrict) this.mm.tables.setRoMpt(mfn, false);
    }
    v.guestTableUser = mfn;
    if (v.cpl === 3) v.reloadCr3();
    if (old !== 0) this.mm.types.putPageAndType(old);
    return 0;
  }

  /** TLB_FLUSH_MULTI / INVLPG_MULTI: a guest bitmap of vCPUs, one u64 per 64. */
  private flushMulti(v: Vcpu, invlpg: boolean, vaLo: number, vaHi: number, maskLo: number, maskHi: number): number {
    const d = v.domain;
    const words = Math.ceil(d.maxVcpus / 64) * 2;
    let lo = maskLo;
    let hi = maskHi;
    for (let w = 0; w < words; w++) {
      if (!this.ga.copyWords(v, lo, hi, 1)) return -EINVAL;
      const bits = this.ga.words[0];
      for (let b = 0; b < 32; b++) {
        if ((bits & (1 << b)) === 0) continue;
        const target = d.vcpus[w * 32 + b];
        if (!target) continue;
        if (!invlpg) this.tlb.flushVcpuTlb(target);
        else if (addrOk(vaHi)) this.tlb.invlpgVcpu(target, vaLo, vaHi);
      }
      [lo, hi] = addOffset(lo, hi, 4);
    }
    return 0;
  }

  private setLdt(v: Vcpu, baseLo: number, baseHi: number, ents: number): number {
    const ptrLo = ents !== 0 ? baseLo : 0;
    const ptrHi = ents !== 0 ? baseHi : 0;
    if ((ptrLo & 0xfff) !== 0 || !addrOk(ptrHi) || ents > 8192) return -EINVAL;
    const base = (ptrHi | 0) * 4294967296 + ptrLo;
    if (v.ldtEnts !== ents || v.ldtBase !== base) {
      v.ldtBase = base;
      v.ldtEnts = ents;
    }
    return 0;
  }

  /** CLEAR_PAGE: the frame must take a writable type reference (not a page table). */
  private clearPage(fd: Domain, mfn: number): number {
    const { refs, types } = this.mm;
    if (!refs.getPage(mfn, fd)) return -EINVAL;
    if (types.getPageType(mfn, PGT_writable_page) !== 0) {
      refs.putPage(mfn);
      return -EINVAL;
    }
    this.mm.host.mem.clearFrame(mfn);
    types.putPageAndType(mfn);
    return 0;
  }

  /** COPY_PAGE: any owned source; a destination that takes a writable type reference. */
  private copyPage(fd: Domain, dst: number, src: number): number {
    const { refs, types } = this.mm;
    if (!refs.getPage(src, fd)) return -EINVAL;
    const gotDst = refs.getPage(dst, fd);
    if (!gotDst || types.getPageType(dst, PGT_writable_page) !== 0) {
      refs.putPage(src);
      if (gotDst) refs.putPage(dst);
      return -EINVAL;
    }
    this.mm.host.mem.copyFrame(dst, src);
    types.putPageAndType(dst);
    refs.putPage(src);
    return 0;
  }
}
