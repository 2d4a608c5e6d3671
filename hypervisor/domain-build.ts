// Building a PV domain's initial memory image, as Xen's dom0 builder does: allocate its
// memory, write start_info and the P2M list, build bootstrap page tables that map all of
// it at KERNEL_VIRT_BASE (page-table frames read-only), pin the L4 and load it as vCPU 0's
// CR3, with RSI pointing at start_info and RSP at a boot stack. Layer: hypervisor. (Later, the toolstack builds guests through hypercalls.)

import { PGT_l4_page_table, PGT_pinned } from './arch/frame-table.ts';
import { PAGE_SIZE } from './arch/memory.ts';
import { hi32, lo32 } from './arch/pte.ts';
import { KERNEL_VIRT_BASE, bootMapLayout, bootVa, writeBootMap } from './arch/boot-map.ts';
import type { Domain } from './domain.ts';
import type { Hypervisor } from './hypervisor.ts';
import { START_INFO, SIF_INITDOMAIN, SIF_PRIVILEGED } from './public/xen.ts';
import { REG_RSI, REG_RSP } from './public/vcpu.ts';

export { KERNEL_VIRT_BASE };

export interface BootLayout {
  /** VA of start_info (passed to the kernel in rsi). */
  readonly startInfoVa: number;
  readonly nrPages: number;
  /** First PFN not used by the boot image (start_info, P2M, page tables, boot stack). */
  readonly firstFreePfn: number;
  /** VA just past the boot stack page: vCPU 0's RSP at entry. */
  readonly stackTop: number;
}

const SI = START_INFO.fields;

/**
 * Gives `d` nrPages of memory and its boot image. Returns the layout, or a string
 * saying why it could not (no memory).
 */
export function buildPvDomain(hv: Hypervisor, d: Domain, nrPages: number, cmdline = ''): BootLayout | string {
  const l = bootMapLayout(nrPages);
  if (typeof l === 'string') return l;
  const { ptPfn, nrPt, stackPfn } = l;
  d.maxPages = Math.max(d.maxPages, nrPages);
  const mfns = new Float64Array(nrPages);
  for (let pfn = 0; pfn < nrPages; pfn++) {
    const mfn = hv.alloc.allocDomheap(d, 0);
    if (mfn < 0) return `out of machine memory after ${pfn} of ${nrPages} pages`;
    mfns[pfn] = mfn;
    hv.frames.m2pLo[mfn] = pfn;
    hv.frames.m2pHi[mfn] = 0;
  }
  const mem = hv.mem;
  const put64 = (mfn: number, off: number, lo: number, hi: number): void => {
    mem.write32(mfn, off, lo >>> 0);
    mem.write32(mfn, off + 4, hi >>> 0);
  };
  writeBootMap(mem, mfns, l, true);
  const l4 = mfns[ptPfn];
  // Pin the L4 (validating the whole tree) and load it as vCPU 0's kernel base.
  const { types, tables } = hv.mm;
  const rc = types.getPageAndType(l4, PGT_l4_page_table, d);
  if (rc !== 0) throw new Error(`boot page tables of d${d.domid} failed validation: ${rc}`);
  hv.frames.typeFlags[l4] |= PGT_pinned;
  const v0 = d.vcpus[0];
  if (types.getPageAndType(l4, PGT_l4_page_table, d) !== 0) throw new Error('L4 base reference failed');
  if (!d.m2pStrict) tables.setRoMpt(l4, true);
  v0.guestTable = l4;
  v0.isUp = true;
  v0.reloadCr3();
  // start_info.
  const si = mfns[0];
  const va = bootVa;
  const putVa = (off: number, pfn: number): void => put64(si, off, lo32(va(pfn)), hi32(va(pfn)));
  const magic = 'xen-3.0-x86_64';
  for (let i = 0; i < magic.length; i++) mem.write8(si, SI.magic.offset + i, magic.charCodeAt(i));
  put64(si, SI.nr_pages.offset, nrPages, 0);
  put64(si, SI.shared_info.offset, lo32(d.sharedInfoMfn * PAGE_SIZE), hi32(d.sharedInfoMfn * PAGE_SIZE));
  mem.write32(si, SI.flags.offset, d.isPrivileged ? SIF_PRIVILEGED | SIF_INITDOMAIN : 0);
  putVa(SI.pt_base.offset, ptPfn);
  put64(si, SI.nr_pt_frames.offset, nrPt, 0);
  putVa(SI.mfn_list.offset, 1);
  for (let i = 0; i < cmdline.length && i < SI.cmd_line.size - 1; i++) {
    mem.write8(si, SI.cmd_line.offset + i, cmdline.charCodeAt(i) & 0xff);
  }
  // As Xen's builder: RSI = start_info, RSP = the top of the boot stack after the tables.
  const stackTop = va(stackPfn + 1);
  v0.regs[REG_RSI] = va(0);
  v0.regs[REG_RSP] = stackTop;
  v0.initialised = true;
  return { startInfoVa: va(0), nrPages, firstFreePfn: stackPfn + 1, stackTop };
}
