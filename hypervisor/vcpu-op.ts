// HYPERVISOR_vcpu_op (common/domain.c do_vcpu_op, arch/x86/domain.c arch_set_info_guest):
// bringing vCPUs up and down, giving a new vCPU its first context, its timers and its
// runstate. Layer: hypervisor. The vCPU is looked up first (-ENOENT), then the command.

import { PGT_l4_page_table } from './arch/frame-table.ts';
import { isCanonical } from './arch/pte.ts';
import { fixupGuestSelector } from './callback.ts';
import type { Hypervisor } from './hypervisor.ts';
import {
  VCPU_GUEST_CONTEXT, VGCF_failsafe_disables_events, VGCF_in_kernel, VGCF_online, VGCF_syscall_disables_events,
  XEN_LEGACY_MAX_VCPUS, CPU_USER_REGS,
} from './public/arch-x86.ts';
import { EEXIST, EFAULT, EINVAL, ENOENT, ENOSYS, ETIME } from './public/errno.ts';
import * as O from './public/vcpu-op.ts';
import { SHUTDOWN_poweroff } from './public/sched.ts';
import { REG_RSP, X86_EFLAGS_IF, X86_EFLAGS_IOPL, X86_EFLAGS_MBS } from './public/vcpu.ts';
import { setRunstate } from './sched/core.ts';
import { KERNEL_CPL, USER_CPL, type Vcpu } from './vcpu.ts';

const G = VCPU_GUEST_CONTEXT.fields;
const R = CPU_USER_REGS.fields;
const USER_REGS = G.user_regs.offset;
/** The periodic timer's shortest period (1 ms) and longest (STIME_DELTA_MAX). */
const MIN_PERIOD_NS = 1_000_000;
const MAX_PERIOD_NS = 2 ** 62;

export class VcpuOp {
  private readonly ctx = new Uint8Array(VCPU_GUEST_CONTEXT.size);
  private readonly dv = new DataView(this.ctx.buffer);

  constructor(private readonly hv: Hypervisor) {}

  call(v: Vcpu, cmd: number, vcpuid: number, lo: number, hi: number): number {
    const d = v.domain;
    const target = vcpuid < d.vcpus.length ? d.vcpus[vcpuid] : undefined;
    if (target === undefined) return -ENOENT;
    switch (cmd) {
      case O.VCPUOP_initialise:
        return this.initialise(v, target, lo, hi);
      case O.VCPUOP_up:
        if (!target.initialised) return -EINVAL;
        if (!target.isUp) {
          target.isUp = true;
          this.hv.sched.wake(target, v.nowNs());
        }
        return 0;
      case O.VCPUOP_down:
        return this.down(v, target);
      case O.VCPUOP_is_up:
        return target.isUp ? 1 : 0;
      case O.VCPUOP_get_runstate_info:
        return this.runstateInfo(v, target, lo, hi);
      case O.VCPUOP_set_periodic_timer: {
        if (!this.hv.ga.copyWords(v, lo, hi, 2)) return -EFAULT;
        const period = this.hv.ga.words[1] * 4294967296 + this.hv.ga.words[0];
        if (period < MIN_PERIOD_NS || period > MAX_PERIOD_NS) return -EINVAL;
        target.timers.periodNs = period;
        if (target.onPcpu >= 0) this.hv.sched.timers.set(target.timers.periodic, v.nowNs() + period);
        return 0;
      }
      case O.VCPUOP_stop_periodic_timer:
        target.timers.periodNs = 0;
        this.hv.sched.timers.stop(target.timers.periodic);
        return 0;
      case O.VCPUOP_set_singleshot_timer:
        return this.singleshot(v, target, lo, hi);
      case O.VCPUOP_stop_singleshot_timer:
        if (target !== v) return -EINVAL;
        this.hv.sched.timers.stop(v.timers.singleshot);
        return 0;
      default:
        return -ENOSYS;
    }
  }

  /**
   * VCPUOP_down: the vCPU leaves the scheduler at its next boundary. Downing the last
   * vCPU still up powers the domain off instead.
   */
  private down(v: Vcpu, target: Vcpu): number {
    const othersUp = v.domain.vcpus.some((x) => x !== target && x.isUp);
    if (!othersUp) {
      this.hv.domainShutdown(v.domain, SHUTDOWN_poweroff);
      return 0;
    }
    target.isUp = false;
    return 0;
  }

  /**
   * VCPUOP_set_singleshot_timer {timeout_abs_ns, flags}: only for the calling vCPU
   * (-EINVAL); with VCPU_SSHOTTMR_future a deadline already past is -ETIME (Xen 4.17).
   */
  private singleshot(v: Vcpu, target: Vcpu, lo: number, hi: number): number {
    if (target !== v) return -EINVAL;
    const ga = this.hv.ga;
    if (!ga.copyWords(v, lo, hi, 3)) return -EFAULT;
    const when = (ga.words[1] | 0) * 4294967296 + ga.words[0];
    const flags = ga.words[2];
    if ((flags & O.VCPU_SSHOTTMR_future) !== 0 && when < v.nowNs()) return -ETIME;
    this.hv.sched.timers.set(v.timers.singleshot, when);
    return 0;
  }

  /** VCPUOP_get_runstate_info: state, entry time and time per state, up to now. */
  private runstateInfo(v: Vcpu, target: Vcpu, lo: number, hi: number): number {
    const now = v.nowNs();
    const buf = new Uint8Array(O.VCPU_RUNSTATE_INFO.size);
    const dv = new DataView(buf.buffer);
    const put64 = (off: number, x: number): void => {
      dv.setUint32(off, Math.floor(x) >>> 0, true);
      dv.setUint32(off + 4, Math.floor(x / 4294967296) >>> 0, true);
    };
    dv.setUint32(0, target.runstate, true);
    put64(8, target.runstateEntry);
    for (let i = 0; i < 4; i++) {
      let t = target.runstateTime[i];
      if (i === target.runstate && now > target.runstateEntry) t += now - target.runstateEntry;
      put64(16 + i * 8, t);
    }
    return this.hv.ga.copyTo(v, lo, hi, buf, buf.length) ? 0 : -EFAULT;
  }

  /**
   * VCPUOP_initialise: the first context of a vCPU, from a vcpu_guest_context. -EINVAL
   * for a vCPU with no vcpu_info, -EFAULT, -EEXIST when already initialised, then
   * arch_set_info_guest's checks: non-canonical addresses, a bad LDT, no user page
   * tables for user mode, and a CR3 that is not one of the domain's frames usable as
   * an L4 (-EINVAL, or the validation's error).
   */
  private initialise(v: Vcpu, target: Vcpu, lo: number, hi: number): number {
    if (target.vcpuId >= XEN_LEGACY_MAX_VCPUS) return -EINVAL;
    const c = this.ctx;
    if (!this.hv.ga.copyFrom(v, lo, hi, c, c.length)) return -EFAULT;
    if (target.initialised) return -EEXIST;
    const dv = this.dv;
    const u64lo = (off: number): number => dv.getUint32(off, true);
    const u64hi = (off: number): number => dv.getUint32(off + 4, true);
    const s64 = (off: number): number => (u64hi(off) | 0) * 4294967296 + u64lo(off);
    const flags = u64lo(G.flags.offset);
    const canon = [USER_REGS + R.rip.offset, USER_REGS + R.rsp.offset, G.kernel_sp.offset, G.fs_base.offset,
      G.gs_base_kernel.offset, G.gs_base_user.offset, G.event_callback_eip.offset, G.failsafe_callback_eip.offset,
      G.syscall_callback_eip.offset];
    const ldtEnts = s64(G.ldt_ents.offset);
    if (ldtEnts !== 0) canon.push(G.ldt_base.offset);
    for (const off of canon) if (!isCanonical(u64hi(off))) return -EINVAL;
    for (let i = 0; i < 256; i++) if (!isCanonical(u64hi(G.trap_ctxt.offset + i * 16 + 8))) return -EINVAL;
    if ((u64lo(G.ldt_base.offset) & 0xfff) !== 0 || ldtEnts > 8192 || ldtEnts < 0) return -EINVAL;
    const inKernel = (flags & VGCF_in_kernel) !== 0;
    const cr1 = s64(G.ctrlreg.offset + 8);
    if (!inKernel && cr1 === 0) return -EINVAL;
    // The page-table bases: machine frames of this domain, typed as L4 roots.
    const types = this.hv.mm.types;
    const cr3Mfn = Math.floor(s64(G.ctrlreg.offset + 24) / 4096);
    const userMfn = Math.floor(cr1 / 4096);
    const d = target.domain;
    if (cr3Mfn <= 0 || cr3Mfn >= this.hv.frames.nrFrames || this.hv.frames.owner[cr3Mfn] !== d.domid) return -EINVAL;
    let rc = types.getPageAndType(cr3Mfn, PGT_l4_page_table, d);
    if (rc !== 0) return rc;
    if (userMfn !== 0) {
      if (userMfn >= this.hv.frames.nrFrames || this.hv.frames.owner[userMfn] !== d.domid) rc = -EINVAL;
      else rc = types.getPageAndType(userMfn, PGT_l4_page_table, d);
      if (rc !== 0) {
        types.putPageAndType(cr3Mfn);
        return rc;
      }
    }
    // Everything checked: load the context.
    for (let i = 0; i < 256; i++) {
      const at = G.trap_ctxt.offset + i * 16;
      target.trapFlags[i] = dv.getUint8(at + 1);
      target.trapCs[i] = fixupGuestSelector(dv.getUint16(at + 2, true));
      target.trapLo[i] = u64lo(at + 8);
      target.trapHi[i] = u64hi(at + 8);
    }
    target.ldtBase = s64(G.ldt_base.offset);
    target.ldtEnts = ldtEnts;
    target.kernelSs = fixupGuestSelector(u64lo(G.kernel_ss.offset));
    target.kernelSp = s64(G.kernel_sp.offset);
    target.eventLo = u64lo(G.event_callback_eip.offset);
    target.eventHi = u64hi(G.event_callback_eip.offset);
    target.failsafeLo = u64lo(G.failsafe_callback_eip.offset);
    target.failsafeHi = u64hi(G.failsafe_callback_eip.offset);
    target.failsafeMask = (flags & VGCF_failsafe_disables_events) !== 0;
    target.syscallLo = u64lo(G.syscall_callback_eip.offset);
    target.syscallHi = u64hi(G.syscall_callback_eip.offset);
    target.syscallMask = (flags & VGCF_syscall_disables_events) !== 0;
    target.fsBase = s64(G.fs_base.offset);
    target.gsBase = s64(G.gs_base_kernel.offset);
    target.gsBaseShadow = s64(G.gs_base_user.offset);
    const rflags = u64lo(USER_REGS + R.rflags.offset);
    target.viopl = (rflags & X86_EFLAGS_IOPL) >>> 12;
    target.rflags = ((rflags & ~X86_EFLAGS_IOPL) | X86_EFLAGS_IF | X86_EFLAGS_MBS) >>> 0;
    const gpr = ['rax', 'rcx', 'rdx', 'rbx', 'rsp', 'rbp', 'rsi', 'rdi', 'r8', 'r9', 'r10', 'r11', 'r12', 'r13', 'r14',
      'r15'] as const;
    gpr.forEach((name, i) => { target.regs[i] = s64(USER_REGS + R[name].offset); });
    target.regs[REG_RSP] = s64(USER_REGS + R.rsp.offset);
    target.guestTable = cr3Mfn;
    target.guestTableUser = userMfn;
    if (!d.m2pStrict) this.hv.mm.tables.setRoMpt(cr3Mfn, true);
    target.cpl = inKernel ? KERNEL_CPL : USER_CPL;
    target.reloadCr3();
    target.initialised = true;
    target.startAt(u64lo(USER_REGS + R.rip.offset), u64hi(USER_REGS + R.rip.offset));
    if (target.vcpuId === 0) this.hv.time.updateWallclock(d);
    if ((flags & VGCF_online) !== 0) {
      target.isUp = true;
      this.hv.sched.wake(target, v.nowNs());
    } else {
      setRunstate(target, O.RUNSTATE_offline, v.nowNs());
    }
    return 0;
  }
}
