// The invariant checker's view of trap-and-emulate domains. Layer: hypervisor
// (emulate/). Their page tables hold guest-physical frame numbers and are never
// validated, so the PV rules (type counts, validated tables, guest_table bases) do not
// apply to them; instead: no PV base is held, the P2M covers only the domain's own
// frames and agrees with the M2P, and each vCPU's CR3 is the machine frame of the
// guest-physical CR3 it wrote.

import { PAGE_SIZE } from '../arch/memory.ts';
import type { Domain } from '../domain.ts';
import type { Hypervisor } from '../hypervisor.ts';

export function checkEmulatedDomain(hv: Hypervisor, d: Domain, report: (s: string) => void): void {
  const emu = d.emu;
  if (emu === null) return;
  const f = hv.frames;
  for (const v of d.vcpus) {
    const where = `d${d.domid}v${v.vcpuId}`;
    if (v.guestTable !== 0 || v.guestTableUser !== 0) report(`${where}: an emulated vCPU holds a PV page-table base`);
    if (v.emu === null || v.p2m !== emu.p2m) report(`${where}: not set up for trap-and-emulate`);
    if (d.isDying || v.emu === null || !v.initialised) continue;
    const pfn = Math.floor(v.emu.cr3 / PAGE_SIZE);
    if (pfn >= emu.nrPages || v.cr3 !== emu.p2m[pfn]) report(`${where}: cr3 ${v.cr3} is not the frame of guest CR3 pfn ${pfn}`);
  }
  if (d.isDying) return;
  for (let pfn = 0; pfn < emu.nrPages; pfn++) {
    const mfn = emu.p2m[pfn];
    if (mfn >= f.nrFrames || f.owner[mfn] !== d.domid) {
      report(`d${d.domid}: P2M maps pfn ${pfn} to mfn ${mfn}, which it does not own`);
      continue;
    }
    if (f.m2pLo[mfn] !== pfn || f.m2pHi[mfn] !== 0) report(`d${d.domid}: M2P of mfn ${mfn} is not pfn ${pfn}`);
  }
}
