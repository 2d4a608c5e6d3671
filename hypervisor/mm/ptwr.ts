// Writable page tables (VMASST_TYPE_writable_pagetables; Xen's pv/ro-page-fault.c): a
// guest-kernel store that faults on a present read-only mapping of one of its own L1
// tables is emulated, the new entry validated exactly as mod_l1_entry would (but with no
// fast path). Layer: hypervisor/mm. Upper levels are never emulated.

import { PGT_l1_page_table, PGT_validated } from '../arch/frame-table.ts';
import { findL1Slot } from '../arch/paging.ts';
import { _PAGE_PRESENT, _PAGE_RW, pteMfn } from '../arch/pte.ts';
import { VMASST_TYPE_writable_pagetables } from '../public/xen.ts';
import { addrOk } from '../guest-access.ts';
import type { Vcpu } from '../vcpu.ts';
import type { Mm } from './mm.ts';

export class WritablePagetables {
  emulations = 0;

  constructor(private readonly mm: Mm) {}

  /**
   * Tries to emulate a `size`-byte store of (vlo, vhi) at (lo, hi). True when done;
   * false leaves the guest with its page fault.
   */
  emulateStore(v: Vcpu, lo: number, hi: number, size: number, vlo: number, vhi: number): boolean {
    const d = v.domain;
    if (v.cpl === 3 || !d.vmAssistEnabled(VMASST_TYPE_writable_pagetables)) return false;
    // fixup_page_fault leaves faults in Xen's range alone: the guest gets its #PF.
    if (!addrOk(hi)) return false;
    if ((size !== 1 && size !== 2 && size !== 4 && size !== 8) || (lo & (size - 1)) !== 0) return false;
    const mm = this.mm;
    const { mem, frames } = mm.host;
    const slot = findL1Slot(mem, frames, v.cr3, lo, hi);
    if (slot < 0) return false;
    const mapTable = Math.floor(slot / 512);
    const plo = mem.read32(mapTable, (slot % 512) << 3);
    if ((plo & (_PAGE_PRESENT | _PAGE_RW)) !== _PAGE_PRESENT) return false;
    const l1 = pteMfn(plo, mem.read32(mapTable, ((slot % 512) << 3) + 4));
    if (!mm.refs.getPage(l1, d)) return false;
    const ok = (frames.typeFlags[l1] & PGT_validated) !== 0 && frames.typeCount[l1] > 0 &&
      frames.type[l1] === PGT_l1_page_table && this.update(v, l1, lo & 0xfff, size, vlo, vhi);
    mm.refs.putPage(l1);
    return ok;
  }

  /** ptwr_emulated_update: merge a narrow store into its entry, validate, write, put old. */
  private update(v: Vcpu, l1: number, off: number, size: number, vlo: number, vhi: number): boolean {
    const mm = this.mm;
    const mem = mm.host.mem;
    const eoff = off & ~7;
    const olo = mem.read32(l1, eoff);
    const ohi = mem.read32(l1, eoff + 4);
    let nlo = olo;
    let nhi = ohi;
    if (size === 8) {
      nlo = vlo >>> 0;
      nhi = vhi >>> 0;
    } else {
      const shift = (off & 3) * 8;
      const mask = size === 4 ? 0xffffffff : ((1 << (size * 8)) - 1) << shift;
      const bits = size === 4 ? vlo >>> 0 : (vlo << shift) & mask;
      if ((off & 4) === 0) nlo = ((olo & ~mask) | bits) >>> 0;
      else nhi = ((ohi & ~mask) | bits) >>> 0;
    }
    const d = v.domain;
    if (mm.tables.getPageFromL1e(nlo, nhi, d, d, d) !== 0) return false;
    mem.write32(l1, eoff, nlo);
    mem.write32(l1, eoff + 4, nhi);
    mm.tables.putPageFromL1e(olo, ohi);
    this.emulations++;
    return true;
  }
}
