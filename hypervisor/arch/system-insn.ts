// The system instructions that load the CPU's own tables — invlpg, lgdt, lidt, ltr — as
// a kernel in (virtual) ring 0 executes them: natively on the bare machine, and emulated
// for an unpatched kernel under trap-and-emulate. Layer: hypervisor/arch.

import { PRIV_INVLPG, PRIV_LGDT, PRIV_LIDT, PRIV_LTR, type Cpu } from './cpu.ts';
import { hi32, lo32, s64 } from './pte.ts';

/** Executes PRIV_INVLPG/LGDT/LIDT/LTR on `cpu`; false for any other instruction. */
export function systemInsn(cpu: Cpu, op: number, a: number, b: number): boolean {
  switch (op) {
    case PRIV_INVLPG:
      cpu.tlb.flushOne(a, b);
      cpu.cycles += cpu.host.costs.tlbFlushOne;
      return true;
    case PRIV_LGDT:
    case PRIV_LIDT: {
      // Both read a pseudo-descriptor in memory: limit (2 bytes), then the 8-byte base.
      const va = s64(a, b);
      const limit = cpu.load(lo32(va), hi32(va), 2);
      const lo = cpu.load(lo32(va + 2), hi32(va + 2), 4);
      const hi = cpu.load(lo32(va + 6), hi32(va + 6), 4);
      if (op === PRIV_LGDT) {
        cpu.gdtrLimit = limit;
        cpu.gdtrLo = lo;
        cpu.gdtrHi = hi;
      } else {
        cpu.idtrLimit = limit;
        cpu.idtrLo = lo;
        cpu.idtrHi = hi;
      }
      return true;
    }
    case PRIV_LTR:
      cpu.trLo = a;
      cpu.trHi = b;
      return true;
    default:
      return false;
  }
}
