// HYPERVISOR_iret for a 64-bit PV guest (pv/iret.c do_iret): pops an iret_context from
// the guest stack and returns there. Layer: hypervisor. Returning to user mode (CS RPL
// 3) switches to the user page tables, and without them the domain is crashed, as is a
// frame that cannot be read. The virtual IF (evtchn_upcall_mask) comes from RFLAGS.IF.

import { s64 } from './arch/pte.ts';
import type { GuestAccess } from './guest-access.ts';
import { VGCF_in_syscall } from './public/arch-x86.ts';
import { VMASST_TYPE_architectural_iopl } from './public/xen.ts';
import { REG_RAX, REG_RCX, REG_R11, REG_RSP, X86_EFLAGS_IF, X86_EFLAGS_IOPL, X86_EFLAGS_MBS } from './public/vcpu.ts';
import { setUpcallMask } from './vcpu-info.ts';
import type { MachineMemory } from './arch/memory.ts';
import { USER_CPL, type Vcpu } from './vcpu.ts';

/** RFLAGS bits iret does not take from the frame: IOPL and VM. */
const IRET_DROP = X86_EFLAGS_IOPL | (1 << 17);

export function doIret(mem: MachineMemory, ga: GuestAccess, v: Vcpu, crash: (v: Vcpu, why: string) => void): number {
  v.cycles += v.host.costs.iret;
  const sp = v.regs[REG_RSP];
  const w = ga.words;
  if (!ga.copyWords(v, sp >>> 0, Math.floor(sp / 4294967296) >>> 0, 18)) {
    crash(v, `iret: cannot read the frame at 0x${sp.toString(16)}`);
    return 0;
  }
  const rax = s64(w[0], w[1]);
  const r11 = s64(w[2], w[3]);
  const rcx = s64(w[4], w[5]);
  const flags = w[6];
  const ripLo = w[8];
  const ripHi = w[9];
  const cs = w[10];
  const rflags = w[12];
  const rsp = s64(w[14], w[15]);
  if ((cs & 3) === 3) {
    if (v.guestTableUser === 0) {
      crash(v, 'iret: return to user mode with no user page tables');
      return 0;
    }
    if (v.cpl !== USER_CPL) {
      v.cpl = USER_CPL;
      v.reloadCr3();
    }
  }
  if (v.domain.vmAssistEnabled(VMASST_TYPE_architectural_iopl)) v.viopl = (rflags & X86_EFLAGS_IOPL) >>> 12;
  v.rflags = ((rflags & ~IRET_DROP) | X86_EFLAGS_IF | X86_EFLAGS_MBS) >>> 0;
  v.regs[REG_RSP] = rsp;
  if ((flags & VGCF_in_syscall) === 0) {
    v.regs[REG_R11] = r11;
    v.regs[REG_RCX] = rcx;
  }
  setUpcallMask(mem, v, (rflags & X86_EFLAGS_IF) !== 0 ? 0 : 1);
  v.regs[REG_RAX] = rax;
  return v.transfer(ripLo, ripHi);
}
