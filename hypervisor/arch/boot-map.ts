// The initial address space a boot loader hands a kernel: every page of its memory
// mapped at KERNEL_VIRT_BASE (Linux's direct map, L4 slot 272) by a 4-level tree that
// sits in that memory after start_info and the P2M list. Layer: hypervisor/arch. Xen's
// domain builder maps the page-table pages read-only (they will be validated); the
// bare machine's loader maps everything writable. For a trap-and-emulate guest the
// entries (and the P2M list) hold guest-physical frame numbers, as the native loader
// writes them, while the tables sit in the domain's machine frames.

import { PAGE_SIZE, type MachineMemory } from './memory.ts';
import { _PAGE_ACCESSED, _PAGE_DIRTY, _PAGE_PRESENT, _PAGE_RW, _PAGE_USER, hi32, lo32, pteHiAddr, pteLo } from './pte.ts';
import { START_INFO } from '../public/xen.ts';

const SI = START_INFO.fields;

/** Where the boot mapping starts: 0xFFFF880000000000 (L4 slot 272), as a signed number. */
export const KERNEL_VIRT_BASE = -0x780000000000;
export const KERNEL_L4_SLOT = 272;

/** Where each part of the boot image lies, in PFNs. */
export interface BootMapLayout {
  /** start_info at PFN 0, the P2M list from PFN 1. */
  readonly p2mPages: number;
  readonly ptPfn: number;
  readonly nrPt: number;
  readonly nrL1: number;
  readonly nrL2: number;
  readonly nrL3: number;
  /** One page of boot stack after the tables. */
  readonly stackPfn: number;
}

/** The layout for nrPages of memory, or a reason it cannot hold one. */
export function bootMapLayout(nrPages: number): BootMapLayout | string {
  const p2mPages = Math.ceil((nrPages * 8) / PAGE_SIZE);
  const nrL1 = Math.ceil(nrPages / 512);
  const nrL2 = Math.ceil(nrL1 / 512);
  const nrL3 = Math.ceil(nrL2 / 512);
  const ptPfn = 1 + p2mPages;
  const nrPt = 1 + nrL3 + nrL2 + nrL1;
  if (nrL3 > 1) return 'a boot image is limited to 512 GiB';
  const stackPfn = ptPfn + nrPt;
  if (stackPfn + 1 > nrPages) return `${nrPages} pages cannot hold the boot image (${stackPfn + 1} needed)`;
  return { p2mPages, ptPfn, nrPt, nrL1, nrL2, nrL3, stackPfn };
}

/**
 * Writes the P2M list and the page tables for memory whose PFN p is machine frame
 * mfns[p]. Page-table pages are mapped read-only when `roTables` is set. With
 * `guestPhysical`, entries and the P2M list hold PFNs (the list is the identity, as on a
 * bare machine); the pages written are still mfns[p].
 */
export function writeBootMap(mem: MachineMemory, mfns: Float64Array, l: BootMapLayout, roTables: boolean,
  guestPhysical = false): void {
  const nrPages = mfns.length;
  const frame = (pfn: number): number => (guestPhysical ? pfn : mfns[pfn]);
  const put64 = (mfn: number, off: number, lo: number, hi: number): void => {
    mem.write32(mfn, off, lo >>> 0);
    mem.write32(mfn, off + 4, hi >>> 0);
  };
  for (let pfn = 0; pfn < nrPages; pfn++) {
    const at = pfn * 8;
    put64(mfns[1 + Math.floor(at / PAGE_SIZE)], at % PAGE_SIZE, frame(pfn), 0);
  }
  const l4 = mfns[l.ptPfn];
  const l3 = mfns[l.ptPfn + 1];
  const l2Base = l.ptPfn + 1 + l.nrL3;
  const l1Base = l2Base + l.nrL2;
  const tableFlags = _PAGE_PRESENT | _PAGE_RW | _PAGE_USER | _PAGE_ACCESSED;
  const l3Entry = frame(l.ptPfn + 1);
  put64(l4, KERNEL_L4_SLOT * 8, pteLo(l3Entry, tableFlags), pteHiAddr(l3Entry));
  for (let i = 0; i < l.nrL2; i++) {
    const e = frame(l2Base + i);
    put64(l3, i * 8, pteLo(e, tableFlags), pteHiAddr(e));
  }
  for (let i = 0; i < l.nrL1; i++) {
    const l2 = mfns[l2Base + Math.floor(i / 512)];
    const e = frame(l1Base + i);
    put64(l2, (i % 512) * 8, pteLo(e, tableFlags), pteHiAddr(e));
  }
  for (let pfn = 0; pfn < nrPages; pfn++) {
    const isPt = pfn >= l.ptPfn && pfn < l.ptPfn + l.nrPt;
    const flags = isPt && roTables
      ? _PAGE_PRESENT | _PAGE_ACCESSED
      : _PAGE_PRESENT | _PAGE_RW | _PAGE_ACCESSED | _PAGE_DIRTY;
    const l1 = mfns[l1Base + Math.floor(pfn / 512)];
    const e = frame(pfn);
    put64(l1, (pfn % 512) * 8, pteLo(e, flags), pteHiAddr(e));
  }
}

/** The boot-mapping VA of PFN `pfn`. */
export function bootVa(pfn: number): number {
  return KERNEL_VIRT_BASE + pfn * PAGE_SIZE;
}

/** What start_info tells the kernel beyond the layout. */
export interface StartInfoFields {
  magic: string;
  sharedInfoMaddr: number;
  flags: number;
  cmdline: string;
}

/**
 * Writes start_info at machine frame `si`: magic, nr_pages, shared_info, flags, the
 * boot tables' VA and count, the P2M list's VA and the command line.
 */
export function writeStartInfo(mem: MachineMemory, si: number, nrPages: number, l: BootMapLayout,
  f: StartInfoFields): void {
  const put64 = (off: number, v: number): void => {
    mem.write32(si, off, lo32(v));
    mem.write32(si, off + 4, hi32(v));
  };
  for (let i = 0; i < f.magic.length; i++) mem.write8(si, SI.magic.offset + i, f.magic.charCodeAt(i));
  put64(SI.nr_pages.offset, nrPages);
  put64(SI.shared_info.offset, f.sharedInfoMaddr);
  mem.write32(si, SI.flags.offset, f.flags >>> 0);
  put64(SI.pt_base.offset, bootVa(l.ptPfn));
  put64(SI.nr_pt_frames.offset, l.nrPt);
  put64(SI.mfn_list.offset, bootVa(1));
  for (let i = 0; i < f.cmdline.length && i < SI.cmd_line.size - 1; i++) {
    mem.write8(si, SI.cmd_line.offset + i, f.cmdline.charCodeAt(i) & 0xff);
  }
}
