// Grant host mappings for PV guests (Xen's arch/x86/pv/grant_table.c): Xen itself
// writes the L1 entry that maps a granted frame into the grantee's page tables, and
// later clears it. Layer: hypervisor/mm. The references such an entry stands for are
// taken by the grant-table code (map_grant_ref), not by get_page_from_l1e; once
// written, the entry is an ordinary present L1 entry, so devalidating its table drops
// them as for any other entry (which is how a dying grantee's host maps are released).

import { PGT_l1_page_table, PGT_validated } from '../arch/frame-table.ts';
import { findL1Slot } from '../arch/paging.ts';
import {
  _PAGE_ACCESSED, _PAGE_DIRTY, _PAGE_NX_HI, _PAGE_PAT, _PAGE_PCD, _PAGE_PRESENT, _PAGE_PWT, _PAGE_RW, _PAGE_USER,
  pteHiAddr, pteLo, pteMfn,
} from '../arch/pte.ts';
import { addrOk } from '../guest-access.ts';
import {
  GNTMAP_application_map, GNTMAP_contains_pte, GNTMAP_readonly, GNTST_general_error, GNTST_okay, GTF_PAT, GTF_PCD,
  GTF_PWT,
} from '../public/grant-table.ts';
import type { Vcpu } from '../vcpu.ts';
import type { Mm } from './mm.ts';

/**
 * grant_to_pte_flags: present, accessed, dirty and NX always; RW unless read-only; US
 * for an application map; the granter's cache attributes (GTF_PWT/PCD/PAT). Returns
 * the low word of the entry's flags (NX is in the high word, always set).
 */
export function grantPteFlags(mapFlags: number, cacheFlags: number): number {
  let f = _PAGE_PRESENT | _PAGE_ACCESSED | _PAGE_DIRTY;
  if ((mapFlags & GNTMAP_application_map) !== 0) f |= _PAGE_USER;
  if ((mapFlags & GNTMAP_readonly) === 0) f |= _PAGE_RW;
  if ((cacheFlags & GTF_PWT) !== 0) f |= _PAGE_PWT;
  if ((cacheFlags & GTF_PCD) !== 0) f |= _PAGE_PCD;
  if ((cacheFlags & GTF_PAT) !== 0) f |= _PAGE_PAT;
  return f;
}

export class GrantMappings {
  constructor(private readonly mm: Mm) {}

  /**
   * The L1 slot (table * 512 + index) a host address names, locked as a validated L1
   * of the caller's with a general reference held on the table; -1 when there is none.
   * With contains_pte the address is the machine address of the entry, which must be
   * 8-byte aligned (XSA-227); otherwise it is a linear address in the caller's kernel
   * page tables, whose L2 entry must be present and not a superpage.
   */
  private lockSlot(v: Vcpu, addrLo: number, addrHi: number, mapFlags: number): number {
    const mm = this.mm;
    const f = mm.host.frames;
    let slot: number;
    if ((mapFlags & GNTMAP_contains_pte) !== 0) {
      if ((addrLo & 7) !== 0) return -1;
      const mfn = addrHi * 1048576 + (addrLo >>> 12);
      slot = mfn * 512 + ((addrLo & 0xfff) >>> 3);
    } else {
      if (!addrOk(addrHi)) return -1;
      slot = findL1Slot(mm.host.mem, f, v.guestTable, addrLo, addrHi);
      if (slot < 0) return -1;
    }
    const l1 = Math.floor(slot / 512);
    if (!mm.refs.getPage(l1, v.domain)) return -1;
    // page_lock: only a validated table with type references can be locked.
    if (f.type[l1] !== PGT_l1_page_table || (f.typeFlags[l1] & PGT_validated) === 0 || f.typeCount[l1] === 0) {
      mm.refs.putPage(l1);
      return -1;
    }
    return slot;
  }

  /**
   * create_grant_pv_mapping: writes an entry mapping `frame` at the host address. The
   * entry it replaces loses its references afterwards (put_page_from_l1e).
   * GNTST_okay or GNTST_general_error (nothing changed).
   */
  create(v: Vcpu, addrLo: number, addrHi: number, frame: number, mapFlags: number, cacheFlags: number): number {
    const slot = this.lockSlot(v, addrLo, addrHi, mapFlags);
    if (slot < 0) return GNTST_general_error;
    const mm = this.mm;
    const mem = mm.host.mem;
    const l1 = Math.floor(slot / 512);
    const off = (slot % 512) << 3;
    const olo = mem.read32(l1, off);
    const ohi = mem.read32(l1, off + 4);
    mem.write32(l1, off, pteLo(frame, grantPteFlags(mapFlags, cacheFlags)));
    mem.write32(l1, off + 4, (pteHiAddr(frame) | _PAGE_NX_HI) >>> 0);
    mm.refs.putPage(l1);
    mm.tables.putPageFromL1e(olo, ohi);
    // A replaced translation may be cached; the new one must be seen at once.
    if ((olo & _PAGE_PRESENT) !== 0) mm.host.flushDomainTlbs(v.domain);
    return GNTST_okay;
  }

  /**
   * replace_grant_pv_mapping: the entry at the host address must map `frame` present
   * and with the RW bit the grant was mapped with (XSA-234: a PTE whose rights differ is
   * not this grant's). It is cleared, or with a new address (unmap_and_replace, linear
   * addresses only) replaced by the entry stolen from there, which is zapped first. The
   * grant's references are the grant code's to drop. GNTST_okay or GNTST_general_error
   * (then only a stolen entry is gone, its references dropped, as in Xen).
   */
  replace(v: Vcpu, addrLo: number, addrHi: number, frame: number, mapFlags: number, newLo: number,
    newHi: number): number {
    const hasNew = newLo !== 0 || newHi !== 0;
    if (hasNew && (mapFlags & GNTMAP_contains_pte) !== 0) return GNTST_general_error;
    const mm = this.mm;
    const mem = mm.host.mem;
    let nlo = 0;
    let nhi = 0;
    if (hasNew) {
      const from = this.lockSlot(v, newLo, newHi, 0);
      if (from < 0) return GNTST_general_error;
      const t = Math.floor(from / 512);
      const o = (from % 512) << 3;
      nlo = mem.read32(t, o);
      nhi = mem.read32(t, o + 4);
      mem.write32(t, o, 0);
      mem.write32(t, o + 4, 0);
      mm.refs.putPage(t);
    }
    let rc = GNTST_general_error;
    const slot = this.lockSlot(v, addrLo, addrHi, mapFlags);
    if (slot >= 0) {
      const l1 = Math.floor(slot / 512);
      const off = (slot % 512) << 3;
      const olo = mem.read32(l1, off);
      const ohi = mem.read32(l1, off + 4);
      const want = grantPteFlags(mapFlags, 0);
      if (pteMfn(olo, ohi) === frame && ((olo ^ want) & (_PAGE_PRESENT | _PAGE_RW)) === 0) {
        mem.write32(l1, off, nlo);
        mem.write32(l1, off + 4, nhi);
        rc = GNTST_okay;
      }
      mm.refs.putPage(l1);
    }
    if (rc !== GNTST_okay && hasNew) mm.tables.putPageFromL1e(nlo, nhi);
    return rc;
  }
}
