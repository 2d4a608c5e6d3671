// The demo `npm start` runs until the scenario runner exists: a machine boots, Dom0 and
// two guests are built, a guest builds and validates its own page tables through
// hypercalls, hostile updates are refused with Xen's errors, and a guest is destroyed
// with every frame returned; then the guest kernel runs natively, patched and unpatched.
// Host side (may use hypervisor/index.ts).

import { Machine } from '../../hypervisor/index.ts';
import { runKernelDemo } from './kernel-demo.ts';
import { errnoName } from '../../hypervisor/public/errno.ts';
import type { GuestVcpu } from '../../hypervisor/public/vcpu.ts';
import * as X from '../../hypervisor/public/xen.ts';
import { XEN_DOMCTL, XEN_DOMCTL_INTERFACE_VERSION } from '../../hypervisor/public/domctl.ts';
import {
  PTE_A, PTE_P, PTE_PSE, PTE_RW, mmuUpdate, pfnToMfn, pfnToVa, pinTable, pte, ptePtr, readStartInfo,
} from '../../guests/lib/xen-calls.ts';

export interface DemoOptions {
  memoryMb: number;
  logLevel: string;
  out: (s: string) => void;
}

export function runDemo(o: DemoOptions): number {
  const out = o.out;
  const m = new Machine({ memoryMb: o.memoryMb, logLevel: o.logLevel });
  const hv = m.hv;
  const total = hv.frames.nrFrames;
  out(`xensim: machine with ${o.memoryMb} MiB (${total} frames), ${hv.alloc.freeFrames} free after Xen\n`);
  const dom0 = m.bootDom0({ memoryMb: 32 });
  const g1 = m.createGuest({ memoryMb: 16 });
  const g2 = m.createGuest({ memoryMb: 16 });
  out(`built d${dom0.domid} (32 MiB, privileged), d${g1.domid} and d${g2.domid} (16 MiB each)\n`);

  const v = g1.vcpus[0];
  const si = readStartInfo(v, g1.startInfoVa);
  let next = g1.firstFreePfn;
  const page = (): { pfn: number; mfn: number; va: number } => {
    const pfn = next++;
    return { pfn, mfn: pfnToMfn(v, si, pfn), va: pfnToVa(pfn) };
  };
  const buf = page().va;
  const ptPfn = Math.round((si.ptBase - pfnToVa(0)) / 4096);
  const bootL2 = pfnToMfn(v, si, ptPfn + 2);
  const bootL1 = (pfn: number): number => pfnToMfn(v, si, ptPfn + 3 + Math.floor(pfn / 512));
  const show = (what: string, rc: number): void => {
    out(`  ${what.padEnd(64)} ${rc === 0 ? 'ok' : `-${errnoName(rc)}`}\n`);
  };

  out(`\nd${g1.domid} builds a page table of its own:\n`);
  const l1 = page();
  show('unmap the new table\'s page (it may not stay writable)',
    mmuUpdate(v, buf, [[ptePtr(bootL1(l1.pfn), l1.pfn % 512), pte(l1.mfn, PTE_P | PTE_A)]]).rc);
  show('pin it as an L1 table (validated)', pinTable(v, buf, 1, l1.mfn));
  const data = page();
  show('map a data page read-write through it', mmuUpdate(v, buf, [[ptePtr(l1.mfn, 0), pte(data.mfn, PTE_P | PTE_RW)]]).rc);
  show('hook the table into the L2 at slot 300', mmuUpdate(v, buf, [[ptePtr(bootL2, 300), pte(l1.mfn, PTE_P | PTE_RW)]]).rc);
  const newVa = pfnToVa(0) + 300 * 512 * 4096;
  v.store32(newVa, 0x600dcafe);
  out(`  a store through the new mapping reads back 0x${v.load32(data.va).toString(16)} at the old one\n`);

  out(`\nd${g1.domid} tries hostile updates:\n`);
  const other = readStartInfo(g2.vcpus[0], g2.startInfoVa);
  const foreign = pfnToMfn(g2.vcpus[0], other, 10);
  show(`map d${g2.domid}'s frame ${foreign}`, mmuUpdate(v, buf, [[ptePtr(l1.mfn, 1), pte(foreign, PTE_P)]]).rc);
  show('map its own pinned L1 writable', mmuUpdate(v, buf, [[ptePtr(l1.mfn, 1), pte(l1.mfn, PTE_P | PTE_RW)]]).rc);
  show('make a 2 MiB superpage in its L2 (XSA-148)', mmuUpdate(v, buf, [[ptePtr(bootL2, 301), pte(0, PTE_P | PTE_PSE)]]).rc);
  show("overwrite Xen's L4 slot 256", mmuUpdate(v, buf, [[ptePtr(pfnToMfn(v, si, ptPfn), 256), pte(0, 0)]]).rc);
  show(`act for d${g2.domid} with foreigndom`, mmuUpdate(v, buf, [[ptePtr(l1.mfn, 1), pte(foreign, PTE_P)]], g2.domid).rc);
  show('pass a request array in Xen\'s range', v.hypercall(X.HYPERVISOR_mmu_update, -0x800000000000, 1, 0, X.DOMID_SELF));
  writeDomctl(v, buf, 2, g2.domid); // XEN_DOMCTL_destroydomain
  show(`destroy d${g2.domid} with domctl (control domain only)`, v.hypercall(X.HYPERVISOR_domctl, buf));
  show('call an unknown hypercall', v.hypercall(63));

  out(`\nd${dom0.domid} (privileged) maps d${g2.domid}'s frame with foreigndom:\n`);
  const d0 = dom0.vcpus[0];
  const d0si = readStartInfo(d0, dom0.startInfoVa);
  const d0buf = pfnToVa(dom0.firstFreePfn);
  const d0l1pfn = dom0.firstFreePfn + 1;
  const d0l1 = pfnToMfn(d0, d0si, d0l1pfn);
  const d0ptPfn = Math.round((d0si.ptBase - pfnToVa(0)) / 4096);
  const d0bootL1 = pfnToMfn(d0, d0si, d0ptPfn + 3 + Math.floor(d0l1pfn / 512));
  mmuUpdate(d0, d0buf, [[ptePtr(d0bootL1, d0l1pfn % 512), pte(d0l1, PTE_P | PTE_A)]]);
  pinTable(d0, d0buf, 1, d0l1);
  show(`map d${g2.domid}'s frame ${foreign} into Dom0`, mmuUpdate(d0, d0buf, [[ptePtr(d0l1, 0), pte(foreign, PTE_P)]], g2.domid).rc);

  const problems = m.checkInvariants();
  out(`\ninvariants: ${problems.length === 0 ? 'all hold' : problems.join('; ')}\n`);
  const before = hv.alloc.freeFrames;
  destroyFromDom0(d0, d0buf, g1.domid);
  out(`destroyed d${g1.domid}: ${hv.alloc.freeFrames - before} frames returned to the pool\n`);
  const after = m.checkInvariants();

  out('\nhypercalls:\n');
  for (const [name, s] of Object.entries(hv.table.summary())) {
    const errs = Object.entries(s.errors).map(([e, n]) => `${e} ${n}`).join(', ');
    out(`  ${name.padEnd(22)} ${String(s.calls).padStart(4)} calls${errs ? `, rejected: ${errs}` : ''}\n`);
  }
  out(`domains: ${hv.listDomains().map((d) => `d${d.domid} ${d.state} ${d.totPages} pages`).join(', ')}\n`);
  out(`free frames: ${hv.alloc.freeFrames} of ${total}; invariants after destroy: ${after.length === 0 ? 'all hold' : after.join('; ')}\n`);
  const kernelOk = runKernelDemo(out);
  return problems.length === 0 && after.length === 0 && kernelOk ? 0 : 1;
}

/** Writes a struct xen_domctl header (cmd, interface version, domain) at buf. */
function writeDomctl(v: GuestVcpu, buf: number, cmd: number, domid: number): void {
  for (let i = 0; i < XEN_DOMCTL.size; i += 4) v.store32(buf + i, 0);
  v.store32(buf + XEN_DOMCTL.fields.cmd.offset, cmd);
  v.store32(buf + XEN_DOMCTL.fields.interface_version.offset, XEN_DOMCTL_INTERFACE_VERSION);
  v.store16(buf + XEN_DOMCTL.fields.domain.offset, domid);
}

/** Dom0 destroys a domain with domctl, as the toolstack does. */
function destroyFromDom0(d0: GuestVcpu, buf: number, domid: number): void {
  writeDomctl(d0, buf, 2, domid); // XEN_DOMCTL_destroydomain
  d0.hypercall(X.HYPERVISOR_domctl, buf);
}
