// Building a PV domain's initial memory image, as Xen's dom0 builder does: allocate its
// memory, write start_info and the P2M list, build bootstrap page tables that map all of
// it at KERNEL_VIRT_BASE (page-table frames read-only), pin the L4 and load it as vCPU 0's
// CR3, with RSI pointing at start_info and RSP at a boot stack. Layer: hypervisor. (Later, the toolstack builds guests through hypercalls.)

import { PGT_l4_page_table, PGT_pinned } from './arch/frame-table.ts';
import { PAGE_SIZE } from './arch/memory.ts';
import { KERNEL_VIRT_BASE, bootMapLayout, bootVa, writeBootMap, writeStartInfo } from './arch/boot-map.ts';
import type { Domain } from './domain.ts';
import type { Hypervisor } from './hypervisor.ts';
import { SIF_INITDOMAIN, SIF_PRIVILEGED } from './public/xen.ts';
import { setUpcallMask } from './vcpu-info.ts';
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

/**
 * Gives `d` nrPages of memory, PFN 0 up, with their M2P entries; returns the P2M
 * (PFN → MFN), or why it could not (no memory).
 */
export function populate(hv: Hypervisor, d: Domain, nrPages: number): Float64Array | string {
  d.maxPages = Math.max(d.maxPages, nrPages);
  const mfns = new Float64Array(nrPages);
  for (let pfn = 0; pfn < nrPages; pfn++) {
    const mfn = hv.alloc.allocDomheap(d, 0);
    if (mfn < 0) return `out of machine memory after ${pfn} of ${nrPages} pages`;
    mfns[pfn] = mfn;
    hv.frames.m2pLo[mfn] = pfn;
    hv.frames.m2pHi[mfn] = 0;
  }
  return mfns;
}

/**
 * Gives `d` nrPages of memory and its boot image. Returns the layout, or a string
 * saying why it could not (no memory).
 */
export function buildPvDomain(hv: Hypervisor, d: Domain, nrPages: number, cmdline = ''): BootLayout | string {
  const l = bootMapLayout(nrPages);
  if (typeof l === 'string') return l;
  const { ptPfn, stackPfn } = l;
  const mfns = populate(hv, d, nrPages);
  if (typeof mfns === 'string') return mfns;
  const mem = hv.mem;
  writeBootMap(mem, mfns, l, true);
  // As Xen's builders do: every vCPU starts with upcalls masked, until its kernel is
  // ready to take events.
  for (const v of d.vcpus) setUpcallMask(mem, v, 1);
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
  writeStartInfo(mem, mfns[0], nrPages, l, {
    magic: 'xen-3.0-x86_64',
    sharedInfoMaddr: d.sharedInfoMfn * PAGE_SIZE,
    flags: d.isPrivileged ? SIF_PRIVILEGED | SIF_INITDOMAIN : 0,
    cmdline,
  });
  const va = bootVa;
  // As Xen's builder: RSI = start_info, RSP = the top of the boot stack after the tables.
  const stackTop = va(stackPfn + 1);
  v0.regs[REG_RSI] = va(0);
  v0.regs[REG_RSP] = stackTop;
  v0.initialised = true;
  return { startInfoVa: va(0), nrPages, firstFreePfn: stackPfn + 1, stackTop };
}
