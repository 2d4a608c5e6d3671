// Updating one page-table entry of a validated table (Xen's mod_l1_entry ..
// mod_l4_entry). Layer: hypervisor/mm. Order: slot and flag checks, the fast path,
// references for the new entry, the write, then dropping the old entry's references.

import { _PAGE_ACCESSED, _PAGE_DIRTY, _PAGE_PRESENT } from '../arch/pte.ts';
import type { Domain } from '../domain.ts';
import { EINVAL } from '../public/errno.ts';
import type { MmHost } from './mm-host.ts';
import { LN_DISALLOW_MASK, isGuestL4Slot, type PageTables } from './page-table.ts';

// Bits whose change forces full revalidation: the frame address (12-51), P, RW, PWT,
// PCD and PSE/PAT. Changes to NX, AVAIL, G, D, A and US take the fast path; RW and PSE
// never do (XSA-148, XSA-182).
const CHANGED_MASK_LO = 0xfffff09b;
const CHANGED_MASK_HI = 0x000fffff;

function hasChanged(olo: number, ohi: number, nlo: number, nhi: number): boolean {
  return ((olo ^ nlo) & CHANGED_MASK_LO) !== 0 || ((ohi ^ nhi) & CHANGED_MASK_HI) !== 0;
}

export class EntryUpdater {
  constructor(
    private readonly host: MmHost,
    private readonly tables: PageTables,
  ) {}

  /**
   * mod_l1_entry: entry `idx` of validated L1 `table` (owned by `ptOwner`) becomes
   * (nlo, nhi), mapping a frame of `pgOwner`. 0 or get_page_from_l1e's error.
   */
  modL1Entry(table: number, idx: number, nlo: number, nhi: number, preserveAd: boolean,
    ptOwner: Domain, pgOwner: Domain, caller: Domain): number {
    const mem = this.host.mem;
    const off = idx << 3;
    const olo = mem.read32(table, off);
    const ohi = mem.read32(table, off + 4);
    if ((nlo & _PAGE_PRESENT) !== 0 && hasChanged(olo, ohi, nlo, nhi)) {
      const rc = this.tables.getPageFromL1e(nlo, nhi, ptOwner, pgOwner, caller);
      if (rc !== 0) return rc;
    } else if ((nlo & _PAGE_PRESENT) !== 0) {
      this.write(table, off, olo, nlo, nhi, preserveAd);
      return 0;
    }
    this.write(table, off, olo, nlo, nhi, preserveAd);
    this.tables.putPageFromL1e(olo, ohi);
    return 0;
  }

  /**
   * mod_l2_entry / mod_l3_entry / mod_l4_entry for `level` 2-4. -EINVAL for Xen's L4
   * slots or disallowed flags; otherwise 0 or get_page_from_lNe's error.
   */
  modUpperEntry(level: number, table: number, idx: number, nlo: number, nhi: number, preserveAd: boolean,
    ptOwner: Domain): number {
    if (level === 4 && !isGuestL4Slot(idx)) return -EINVAL;
    const mem = this.host.mem;
    const off = idx << 3;
    const olo = mem.read32(table, off);
    const ohi = mem.read32(table, off + 4);
    if ((nlo & _PAGE_PRESENT) !== 0) {
      if ((nlo & LN_DISALLOW_MASK) !== 0) return -EINVAL;
      if (!hasChanged(olo, ohi, nlo, nhi)) {
        this.write(table, off, olo, nlo, nhi, preserveAd);
        return 0;
      }
      const rc = this.tables.getPageFromUpper(level, nlo, nhi, table, ptOwner);
      if (rc !== 0) return rc;
    }
    this.write(table, off, olo, nlo, nhi, preserveAd);
    this.tables.putPageFromUpper(olo, ohi, table);
    return 0;
  }

  /** UPDATE_ENTRY: MMU_PT_UPDATE_PRESERVE_AD ORs in the current Accessed/Dirty bits. */
  private write(table: number, off: number, olo: number, nlo: number, nhi: number, preserveAd: boolean): void {
    const mem = this.host.mem;
    const lo = preserveAd ? (nlo | (olo & (_PAGE_ACCESSED | _PAGE_DIRTY))) >>> 0 : nlo >>> 0;
    mem.write32(table, off, lo);
    mem.write32(table, off + 4, nhi >>> 0);
  }
}
