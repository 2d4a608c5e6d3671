// Building a trap-and-emulate domain: what a native boot loader would leave in memory,
// in the domain's own frames. Layer: hypervisor (emulate/). The domain's memory is
// allocated as for a PV guest (it owns the frames; the P2M maps PFN → MFN), and the
// boot image is the bare machine's loader's: start_info ("native-x86_64", no
// shared_info, flags 0, the command line), an identity P2M list, and page tables over
// all memory at KERNEL_VIRT_BASE whose entries hold guest-physical frame numbers —
// everything writable, nothing pinned or typed as a PV page table. vCPU 0 starts in
// real ring 1 (virtual ring 0) with the virtual IF clear and the real IF set, RSI at
// start_info and RSP at the top of the boot stack.

import { bootMapLayout, bootVa, writeBootMap, writeStartInfo } from '../arch/boot-map.ts';
import { PAGE_SIZE } from '../arch/memory.ts';
import { populate, type BootLayout } from '../domain-build.ts';
import type { Domain } from '../domain.ts';
import type { Hypervisor } from '../hypervisor.ts';
import { REG_RSI, REG_RSP, X86_EFLAGS_IF, X86_EFLAGS_MBS } from '../public/vcpu.ts';
import { KERNEL_CPL } from '../vcpu.ts';

/** Gives d nrPages of memory and a native boot image; the layout, or why it could not. */
export function buildEmulatedDomain(hv: Hypervisor, d: Domain, nrPages: number, cmdline = ''): BootLayout | string {
  const l = bootMapLayout(nrPages);
  if (typeof l === 'string') return l;
  const p2m = populate(hv, d, nrPages);
  if (typeof p2m === 'string') return p2m;
  writeBootMap(hv.mem, p2m, l, false, true);
  writeStartInfo(hv.mem, p2m[0], nrPages, l, { magic: 'native-x86_64', sharedInfoMaddr: 0, flags: 0, cmdline });
  hv.emulator.attach(d, p2m);
  const v0 = d.vcpus[0];
  const ev = v0.emu!;
  ev.cr3 = l.ptPfn * PAGE_SIZE;
  v0.loadCr3(p2m[l.ptPfn]);
  v0.cpl = KERNEL_CPL;
  ev.vif = false;
  v0.rflags = X86_EFLAGS_MBS | X86_EFLAGS_IF;
  const stackTop = bootVa(l.stackPfn + 1);
  v0.regs[REG_RSI] = bootVa(0);
  v0.regs[REG_RSP] = stackTop;
  v0.isUp = true;
  v0.initialised = true;
  return { startInfoVa: bootVa(0), nrPages, firstFreePfn: l.stackPfn + 1, stackTop };
}
