// Privileged instructions executed by a PV guest (pv/emul-priv-op.c). Layer: hypervisor.
// The guest kernel is deprivileged, so each one faults into Xen with #GP(0). Xen
// emulates a few — CLI/STI (as no-ops) and port I/O when the virtual IOPL allows them,
// reads and writes of CR3, some MSRs, WBINVD — and injects #GP(0) for everything else,
// including HLT, INVLPG, LGDT, LIDT and LTR (PV kernels use hypercalls for those).

import {
  PRIV_CLI, PRIV_HLT, PRIV_IN, PRIV_INVLPG, PRIV_LGDT, PRIV_LIDT, PRIV_LTR, PRIV_NAMES, PRIV_OUT, PRIV_RDMSR,
  PRIV_READ_CR2, PRIV_READ_CR3, PRIV_STI, PRIV_WBINVD, PRIV_WRITE_CR3, PRIV_WRMSR,
} from './arch/cpu.ts';
import type { CostTable } from './arch/costs.ts';
import { s64 } from './arch/pte.ts';
import { MSR_EFER, MSR_FS_BASE, MSR_GS_BASE, MSR_IA32_TSC, MSR_SHADOW_GS_BASE } from './arch/msr.ts';
import type { Logger } from './log.ts';
import type { MmuextOp } from './mm/mmuext-op.ts';
import { TRAP_gp_fault } from './public/vcpu.ts';
import { VMASST_TYPE_architectural_iopl } from './public/xen.ts';
import type { Vcpu } from './vcpu.ts';

/** EFER as a 64-bit PV guest sees it: SCE, LME, LMA, NXE. */
const EFER_VALUE = 0xd01;
const MAX_GP_RETRIES = 1000;

export class PvPrivOps {
  /** Emulated instructions and #GPs injected, by PRIV_* number. */
  readonly emulated = new Float64Array(PRIV_NAMES.length);
  readonly refused = new Float64Array(PRIV_NAMES.length);

  constructor(
    private readonly mmuext: MmuextOp,
    private readonly costs: CostTable,
    private readonly log: Logger,
  ) {}

  /** Runs privileged instruction `op` for a PV vCPU at CPL > 0. */
  execute(v: Vcpu, op: number, a: number, b: number, c: number): number {
    for (let tries = 0; ; tries++) {
      const r = this.emulate(v, op, a, b, c);
      if (r !== undefined) {
        // The #GP into Xen and the emulation; a refused one is charged by fault() below.
        this.emulated[op]++;
        v.cycles += this.costs.trap + this.costs.emulate;
        return r;
      }
      this.refused[op]++;
      if (this.log.isLevelEnabled('debug')) {
        this.log.debug({ dom: v.domain.domid, vcpu: v.vcpuId, insn: PRIV_NAMES[op] }, 'privileged instruction: #GP');
      }
      // The handler's iret comes back to the instruction, which runs again: a kernel
      // that keeps executing it without fixing the cause is crashed.
      if (tries >= MAX_GP_RETRIES) v.crash(`${PRIV_NAMES[op]} faulted ${tries} times`);
      v.fault(TRAP_gp_fault, 0);
    }
  }

  /** The emulated result, or undefined for #GP(0). */
  private emulate(v: Vcpu, op: number, a: number, b: number, c: number): number | undefined {
    // Only port I/O and CLI/STI (by IOPL) are open to guest user mode.
    if (v.cpl === 3 && op !== PRIV_IN && op !== PRIV_OUT && op !== PRIV_CLI && op !== PRIV_STI) return undefined;
    switch (op) {
      case PRIV_CLI:
      case PRIV_STI:
        // Xen skips them when the virtual IOPL allows; they do not touch the event mask.
        return this.ioplOk(v) ? 0 : undefined;
      case PRIV_IN:
        // No device sits behind a PV guest's ports: reads float high.
        return this.ioplOk(v) ? (b === 1 ? 0xff : b === 2 ? 0xffff : 0xffffffff) : undefined;
      case PRIV_OUT:
        return this.ioplOk(v) ? 0 : undefined;
      case PRIV_READ_CR2:
        // The fault address Xen recorded when it injected the last #PF (arch.pv.ctrlreg[2]).
        return s64(v.cr2Lo, v.cr2Hi);
      case PRIV_READ_CR3:
        return v.guestTable * 4096;
      case PRIV_WRITE_CR3: {
        const mfn = Math.floor(((b >>> 0) * 4294967296 + (a >>> 0)) / 4096);
        return this.mmuext.newBaseptr(v, mfn) === 0 ? 0 : undefined;
      }
      case PRIV_RDMSR:
        return this.rdmsr(v, a);
      case PRIV_WRMSR:
        return this.wrmsr(v, a, b, c);
      case PRIV_WBINVD:
        return 0; // no cache flush permission: ignored
      case PRIV_HLT:
      case PRIV_INVLPG:
      case PRIV_LGDT:
      case PRIV_LIDT:
      case PRIV_LTR:
      default:
        return undefined;
    }
  }

  /** iopl_ok: with VMASST_TYPE_architectural_iopl the guest kernel counts as ring 0. */
  private ioplOk(v: Vcpu): boolean {
    const cpl = v.cpl === 3 ? 3 : v.domain.vmAssistEnabled(VMASST_TYPE_architectural_iopl) ? 0 : 1;
    return cpl <= v.viopl;
  }

  private rdmsr(v: Vcpu, msr: number): number | undefined {
    switch (msr) {
      case MSR_IA32_TSC: return v.tsc(); // as rdtsc (no vTSC)
      case MSR_EFER: return EFER_VALUE;
      case MSR_FS_BASE: return v.fsBase;
      case MSR_GS_BASE: return v.gsBase;
      case MSR_SHADOW_GS_BASE: return v.gsBaseShadow;
      default: return undefined;
    }
  }

  private wrmsr(v: Vcpu, msr: number, lo: number, hi: number): number | undefined {
    return writeBaseMsr(v, msr, lo, hi) === true ? 0 : undefined;
  }
}

/**
 * wrmsr of FS_BASE, GS_BASE or SHADOW_GS_BASE: true when written, false for a
 * non-canonical base (#GP), undefined when `msr` is none of them.
 */
export function writeBaseMsr(v: Vcpu, msr: number, lo: number, hi: number): boolean | undefined {
  if (msr !== MSR_FS_BASE && msr !== MSR_GS_BASE && msr !== MSR_SHADOW_GS_BASE) return undefined;
  if ((hi >> 15) !== 0 && (hi >> 15) !== -1) return false;
  const value = (hi | 0) * 4294967296 + (lo >>> 0);
  if (msr === MSR_FS_BASE) v.fsBase = value;
  else if (msr === MSR_GS_BASE) v.gsBase = value;
  else v.gsBaseShadow = value;
  return true;
}
