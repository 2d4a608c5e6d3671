// HYPERVISOR_update_va_mapping and _otherdomain (Xen's __do_update_va_mapping): set the
// L1 entry that maps one virtual address in the caller's current page tables, then
// flush as asked. Layer: hypervisor/mm. A failed update flushes nothing (XSA-279).

import { PGT_l1_page_table, PGT_validated } from '../arch/frame-table.ts';
import { findL1Slot } from '../arch/paging.ts';
import type { Domain } from '../domain.ts';
import { addrOk, type GuestAccess } from '../guest-access.ts';
import { EFAULT, EINVAL, ESRCH } from '../public/errno.ts';
import { UVMF_ALL, UVMF_FLUSHTYPE_MASK, UVMF_INVLPG, UVMF_TLB_FLUSH } from '../public/xen.ts';
import { addOffset, type Vcpu } from '../vcpu.ts';
import type { Mm } from './mm.ts';
import type { TlbControl } from './mmuext-op.ts';

export class UpdateVaMapping {
  constructor(
    private readonly mm: Mm,
    private readonly ga: GuestAccess,
    private readonly tlb: TlbControl,
  ) {}

  /** update_va_mapping(va, val, flags): the data owner is the caller. */
  call(v: Vcpu, vaLo: number, vaHi: number, valLo: number, valHi: number, flagsLo: number, flagsHi: number): number {
    return this.update(v, vaLo, vaHi, valLo, valHi, flagsLo, flagsHi, v.domain);
  }

  /** update_va_mapping_otherdomain(va, val, flags, domid): -ESRCH for an unknown domid. */
  callOther(v: Vcpu, vaLo: number, vaHi: number, valLo: number, valHi: number, flagsLo: number, flagsHi: number,
    domid: number): number {
    const pgOwner = this.mm.getPgOwner(v.domain, domid & 0xffff);
    if (!pgOwner) return -ESRCH;
    return this.update(v, vaLo, vaHi, valLo, valHi, flagsLo, flagsHi, pgOwner);
  }

  private update(v: Vcpu, vaLo: number, vaHi: number, valLo: number, valHi: number, flagsLo: number,
    flagsHi: number, pgOwner: Domain): number {
    const mm = this.mm;
    const d = v.domain;
    const xsm = mm.xsmTarget(d, pgOwner);
    if (xsm !== 0) return xsm;
    if (!addrOk(vaHi)) return -EINVAL;
    // map_guest_l1e: through the kernel's current tables; the L2E must be present, not PSE.
    const slot = findL1Slot(mm.host.mem, mm.host.frames, v.guestTable, vaLo, vaHi);
    if (slot < 0) return -EINVAL;
    const l1 = Math.floor(slot / 512);
    const f = mm.host.frames;
    if (!mm.refs.getPage(l1, d)) return -EINVAL;
    let rc = -EINVAL;
    if ((f.typeFlags[l1] & PGT_validated) !== 0 && f.typeCount[l1] > 0 && f.type[l1] === PGT_l1_page_table) {
      rc = mm.entries.modL1Entry(l1, slot % 512, valLo, valHi, false, d, pgOwner, d);
    }
    mm.refs.putPage(l1);
    if (rc !== 0) return rc;
    return this.flush(v, vaLo, vaHi, flagsLo, flagsHi);
  }

  /** Flush type in bits 1:0; target in the rest: local, UVMF_ALL, or a vCPU bitmap pointer. */
  private flush(v: Vcpu, vaLo: number, vaHi: number, flagsLo: number, flagsHi: number): number {
    const type = flagsLo & UVMF_FLUSHTYPE_MASK;
    if (type !== UVMF_TLB_FLUSH && type !== UVMF_INVLPG) return 0;
    const targetLo = (flagsLo & ~UVMF_FLUSHTYPE_MASK) >>> 0;
    const d = v.domain;
    const apply = (w: Vcpu): void => {
      if (type === UVMF_TLB_FLUSH) this.tlb.flushVcpuTlb(w);
      else this.tlb.invlpgVcpu(w, vaLo, vaHi);
    };
    if (targetLo === 0 && flagsHi === 0) {
      apply(v);
    } else if (targetLo === UVMF_ALL && flagsHi === 0) {
      for (const w of d.vcpus) apply(w);
    } else {
      // A guest pointer to a bitmap of vCPUs; the PTE is already written if it is bad.
      let lo = targetLo;
      let hi = flagsHi;
      const words = Math.ceil(d.maxVcpus / 64) * 2;
      for (let i = 0; i < words; i++) {
        if (!this.ga.copyWords(v, lo, hi, 1)) return -EFAULT;
        const bits = this.ga.words[0];
        for (let b = 0; b < 32; b++) {
          const w = d.vcpus[i * 32 + b];
          if ((bits & (1 << b)) !== 0 && w) apply(w);
        }
        [lo, hi] = addOffset(lo, hi, 4);
      }
    }
    return 0;
  }
}
