// HYPERVISOR_multicall (Xen's do_multicall): a batch of hypercalls in one entry. Layer:
// hypervisor. Each entry's result goes back into the entry; a failing call does not
// stop the batch. The batch stops after iret or once the vCPU has left kernel mode
// (XSA-213), and a multicall inside a multicall is refused (-EINVAL).

import type { Hypervisor } from './hypervisor.ts';
import { addrOk, type GuestAccess } from './guest-access.ts';
import { ContextSwitch } from './arch/cpu.ts';
import { REG_RAX } from './public/vcpu.ts';
import { EFAULT, EINVAL, ENOSYS } from './public/errno.ts';
import { HYPERVISOR_iret, MULTICALL_ENTRY } from './public/xen.ts';
import { USER_CPL, addOffset, type Vcpu } from './vcpu.ts';

const ENTRY_WORDS = MULTICALL_ENTRY.size / 4;
const RESULT_OFF = MULTICALL_ENTRY.fields.result.offset;
const ARGS_WORD = MULTICALL_ENTRY.fields.args.offset / 4;

function writeResult(ga: GuestAccess, v: Vcpu, lo: number, hi: number, rc: number): boolean {
  return ga.write64(v, lo, hi, rc >>> 0, rc < 0 ? 0xffffffff : Math.floor(rc / 4294967296) >>> 0);
}

export class Multicall {
  private readonly args = new Uint32Array(12);
  private inMulticall = false;

  constructor(private readonly hv: Hypervisor) {}

  /** multicall(call_list, nr_calls): 0, or -EFAULT / -EINVAL for the batch itself. */
  call(v: Vcpu, listLo: number, listHi: number, nrCalls: number): number {
    if (this.inMulticall) return -EINVAL;
    if (!addrOk(listHi)) return -EFAULT;
    this.inMulticall = true;
    try {
      return this.run(v, listLo, listHi, nrCalls);
    } finally {
      this.inMulticall = false;
    }
  }

  private run(v: Vcpu, lo: number, hi: number, nrCalls: number): number {
    const ga = this.hv.ga;
    for (let i = 0; i < nrCalls; i++) {
      if (!ga.copyWords(v, lo, hi, ENTRY_WORDS)) return -EFAULT;
      const w = ga.words;
      const opLo = w[0];
      const opHi = w[1];
      for (let k = 0; k < 12; k++) this.args[k] = w[ARGS_WORD + k];
      const [rlo, rhi] = addOffset(lo, hi, RESULT_OFF);
      let rc: number;
      try {
        rc = opHi === 0 && this.hv.table.has(opLo) ? this.hv.table.dispatch(v, opLo, this.args) : -ENOSYS;
      } catch (e) {
        // iret succeeded: its result (the restored RAX) goes into its entry, and the
        // batch ends with control at the frame iret popped.
        if (e instanceof ContextSwitch) writeResult(ga, v, rlo, rhi, v.regs[REG_RAX]);
        throw e;
      }
      const written = writeResult(ga, v, rlo, rhi, rc);
      if (opHi === 0 && opLo === HYPERVISOR_iret) return rc;
      if (!written) return -EFAULT;
      if (!v.domain.isAlive || v.cpl === USER_CPL) return 0;
      [lo, hi] = addOffset(lo, hi, MULTICALL_ENTRY.size);
    }
    return 0;
  }
}
