// HYPERVISOR_mmu_update (Xen's do_mmu_update): a batch of checked page-table writes and
// M2P updates. Layer: hypervisor/mm. Requests run in order; the first failure stops the
// batch with its error, earlier requests stay applied, and *pdone counts those done.

import { PGT_l1_page_table, PGT_l4_page_table, PGT_validated, PGT_writable_page } from '../arch/frame-table.ts';
import type { Domain } from '../domain.ts';
import type { GuestAccess } from '../guest-access.ts';
import { addrOk } from '../guest-access.ts';
import { EFAULT, EINVAL, ENOSYS, EPERM, ESRCH } from '../public/errno.ts';
import {
  DOMID_IO, MMU_MACHPHYS_UPDATE, MMU_NORMAL_PT_UPDATE, MMU_PT_UPDATE_NO_TRANSLATE,
  MMU_PT_UPDATE_PRESERVE_AD, MMU_UPDATE_PREEMPTED,
} from '../public/xen.ts';
import { addHi, addLo, type Vcpu } from '../vcpu.ts';
import type { Mm } from './mm.ts';

const REQ_SIZE = 16;

// Which kinds of request the XSM check has covered so far (Xen's xsm_needed bits).
const XSM_NORMAL = 1;
const XSM_READ = 2;
const XSM_WRITE = 4;
const XSM_MACHPHYS = 8;

export class MmuUpdate {
  constructor(
    private readonly mm: Mm,
    private readonly ga: GuestAccess,
  ) {}

  /**
   * do_mmu_update(reqs, count, pdone, foreigndom). foreigndom: bits 15-0 the owner of
   * mapped data (FD), bits 31-16 one more than the owner of the page tables (PFD).
   */
  call(v: Vcpu, reqLo: number, reqHi: number, count: number, pdoneLo: number, pdoneHi: number, foreigndom: number): number {
    const d = v.domain;
    const mm = this.mm;
    let done = 0;
    const hasPdone = pdoneLo !== 0 || pdoneHi !== 0;
    if ((count & MMU_UPDATE_PREEMPTED) !== 0) {
      // A continuation: carry on from the count the earlier part reported.
      count = (count & ~MMU_UPDATE_PREEMPTED) >>> 0;
      if (hasPdone && this.ga.copyWords(v, pdoneLo, pdoneHi, 1)) done = this.ga.words[0];
    }
    if (!addrOk(reqHi)) return -EFAULT;

    let ptOwner: Domain = d;
    const ptDom = foreigndom >>> 16;
    if (ptDom !== 0) {
      const pt = mm.liveDomain(ptDom - 1);
      if (!pt) return -ESRCH;
      if (pt !== d && pt.vcpus.length === 0) return this.finish(v, -EINVAL, done, 0, hasPdone, pdoneLo, pdoneHi);
      ptOwner = pt;
    }
    const pgOwner = mm.getPgOwner(d, foreigndom & 0xffff);
    if (!pgOwner) return this.finish(v, -ESRCH, done, 0, hasPdone, pdoneLo, pdoneHi);

    let rc = 0;
    let i = 0;
    let xsmNeeded = 0;
    let xsmChecked = 0;
    let flushPt = false;
    let lo = reqLo;
    let hi = reqHi;
    for (; i < count; i++) {
      if (!this.ga.copyWords(v, lo, hi, 4)) {
        rc = -EFAULT;
        break;
      }
      const w = this.ga.words;
      const ptrLo = w[0];
      const ptrHi = w[1];
      const valLo = w[2];
      const valHi = w[3];
      const cmd = ptrLo & 7;
      switch (cmd) {
        case MMU_NORMAL_PT_UPDATE:
        case MMU_PT_UPDATE_PRESERVE_AD:
        case MMU_PT_UPDATE_NO_TRANSLATE: {
          xsmNeeded |= XSM_NORMAL;
          if ((valLo & 1) !== 0) xsmNeeded |= XSM_READ | ((valLo & 2) !== 0 ? XSM_WRITE : 0);
          if (xsmNeeded !== xsmChecked) {
            rc = this.xsmMmuUpdate(d, ptOwner, pgOwner);
            if (rc !== 0) break;
            xsmChecked = xsmNeeded;
          }
          rc = this.ptUpdate(v, ptrLo - cmd, ptrHi, valLo, valHi, cmd === MMU_PT_UPDATE_PRESERVE_AD, ptOwner, pgOwner);
          if (rc === 1) {
            flushPt = true;
            rc = 0;
          }
          break;
        }
        case MMU_MACHPHYS_UPDATE:
          if (d !== ptOwner) {
            rc = -EPERM;
            break;
          }
          xsmNeeded |= XSM_MACHPHYS;
          if (xsmNeeded !== xsmChecked) {
            rc = this.xsmMmuUpdate(d, undefined, pgOwner);
            if (rc !== 0) break;
            xsmChecked = xsmNeeded;
          }
          rc = this.machphysUpdate(pgOwner, ptrLo, ptrHi, valLo, valHi);
          break;
        default:
          rc = -ENOSYS;
      }
      if (rc !== 0) break;
      hi = addHi(lo, hi, REQ_SIZE);
      lo = addLo(lo, REQ_SIZE);
    }
    // XSA-286: after changing an L2-L4 entry no vCPU may keep translations through the
    // old one.
    if (flushPt) mm.host.flushDomainTlbs(ptOwner);
    return this.finish(v, rc, done, i, hasPdone, pdoneLo, pdoneHi);
  }

  private finish(v: Vcpu, rc: number, done: number, i: number, hasPdone: boolean, lo: number, hi: number): number {
    // Xen ignores a failure to write *pdone.
    if (hasPdone) this.ga.write32(v, lo, hi, (done + i) >>> 0);
    return rc;
  }

  /** xsm_mmu_update under the dummy policy: FD (unless DOMID_IO) and PFD. */
  private xsmMmuUpdate(d: Domain, ptOwner: Domain | undefined, pgOwner: Domain): number {
    let rc = pgOwner.domid !== DOMID_IO ? this.mm.xsmTarget(d, pgOwner) : 0;
    if (ptOwner && rc === 0) rc = this.mm.xsmTarget(d, ptOwner);
    return rc;
  }

  /**
   * One NORMAL / PRESERVE_AD request. Returns 0, 1 (done, and an L2-L4 entry changed),
   * or a negative errno.
   */
  private ptUpdate(v: Vcpu, ptrLo: number, ptrHi: number, valLo: number, valHi: number, preserveAd: boolean,
    ptOwner: Domain, pgOwner: Domain): number {
    const mm = this.mm;
    const f = mm.host.frames;
    const mfn = (ptrLo >>> 12) + ptrHi * 0x100000;
    const idx = (ptrLo & 0xfff) >>> 3;
    if (!mm.refs.getPage(mfn, ptOwner)) return -EINVAL;
    let rc = -EINVAL;
    // page_lock: only a validated page with type references.
    if ((f.typeFlags[mfn] & PGT_validated) !== 0 && f.typeCount[mfn] > 0) {
      const type = f.type[mfn];
      if (type === PGT_l1_page_table) {
        rc = mm.entries.modL1Entry(mfn, idx, valLo, valHi, preserveAd, ptOwner, pgOwner, v.domain);
      } else if (type > PGT_l1_page_table && type <= PGT_l4_page_table) {
        if (pgOwner === ptOwner) {
          rc = mm.entries.modUpperEntry(type, mfn, idx, valLo, valHi, preserveAd, ptOwner);
          if (rc === 0) rc = 1;
        }
      } else if (type === PGT_writable_page) {
        this.plainStore(mfn, idx, valLo, valHi);
        rc = 0;
      }
    } else if (mm.types.getPageType(mfn, PGT_writable_page) === 0) {
      this.plainStore(mfn, idx, valLo, valHi);
      mm.types.putPageType(mfn);
      rc = 0;
    }
    mm.refs.putPage(mfn);
    return rc;
  }

  /** mmu_update into an ordinary data page is a checked 8-byte store. */
  private plainStore(mfn: number, idx: number, lo: number, hi: number): void {
    this.mm.host.mem.write32(mfn, idx << 3, lo >>> 0);
    this.mm.host.mem.write32(mfn, (idx << 3) + 4, hi >>> 0);
  }

  /** MMU_MACHPHYS_UPDATE: M2P[ptr >> 12] = val (unchecked), for a frame FD owns. */
  private machphysUpdate(pgOwner: Domain, ptrLo: number, ptrHi: number, valLo: number, valHi: number): number {
    const mm = this.mm;
    const mfn = (ptrLo >>> 12) + ptrHi * 0x100000;
    if (!mm.refs.getPage(mfn, pgOwner)) return -EINVAL;
    mm.host.frames.m2pLo[mfn] = valLo >>> 0;
    mm.host.frames.m2pHi[mfn] = valHi >>> 0;
    mm.refs.putPage(mfn);
    return 0;
  }
}
