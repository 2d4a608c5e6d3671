// System time and wall-clock time as Xen publishes them to guests (arch/x86/time.c):
// each vcpu_info.time record (TSC stamp, system time, TSC-to-ns scale) and the
// shared_info wall clock, both written with the odd/even version protocol. Layer:
// hypervisor. System time is virtual nanoseconds since boot; the TSC counts cycles of
// virtual time at the cost table's clock rate.

import type { CostTable } from './arch/costs.ts';
import type { MachineMemory } from './arch/memory.ts';
import type { Domain } from './domain.ts';
import { XEN_LEGACY_MAX_VCPUS } from './public/arch-x86.ts';
import { SHARED_INFO, VCPU_INFO } from './public/xen.ts';
import type { Vcpu } from './vcpu.ts';

/** vcpu_time_info.flags: the TSC is stable across CPUs. */
export const XEN_PVCLOCK_TSC_STABLE_BIT = 1;

const T = VCPU_INFO.fields;
const W = SHARED_INFO.fields;

/** The (mul, shift) pair with ns = ((tsc << shift) * mul) >> 32 for a clock of `mhz`. */
export function tscScale(mhz: number): { mul: number; shift: number } {
  let ratio = 1000 / mhz; // ns per cycle
  let shift = 0;
  while (ratio >= 1) {
    ratio /= 2;
    shift++;
  }
  while (ratio < 0.5) {
    ratio *= 2;
    shift--;
  }
  return { mul: Math.round(ratio * 4294967296) >>> 0, shift };
}

/** Virtual ns to TSC cycles. */
export function nsToTsc(costs: CostTable, ns: number): number {
  return Math.floor((ns * costs.clockMhz) / 1000);
}

export class GuestTime {
  private readonly mul: number;
  private readonly shift: number;
  /** Record updates written, for statistics. */
  updates = 0;

  constructor(
    private readonly mem: MachineMemory,
    private readonly costs: CostTable,
    /** Wall-clock seconds at system time 0. */
    readonly bootWallclockSec: number,
  ) {
    const s = tscScale(costs.clockMhz);
    this.mul = s.mul;
    this.shift = s.shift;
  }

  /**
   * update_vcpu_system_time: stamps v's vcpu_time_info with system time `now` and the
   * matching TSC, bumping version to odd before the fields and to even after.
   */
  updateVcpuTime(v: Vcpu, now: number): void {
    const si = v.domain.sharedInfoMfn;
    if (si < 0 || v.vcpuId >= XEN_LEGACY_MAX_VCPUS) return;
    const base = v.vcpuId * VCPU_INFO.size;
    const mem = this.mem;
    const ver = base + T['time.version'].offset;
    const version = mem.read32(si, ver);
    mem.write32(si, ver, ((version + 1) | 1) >>> 0);
    const tsc = nsToTsc(this.costs, now);
    put64(mem, si, base + T['time.tsc_timestamp'].offset, tsc);
    put64(mem, si, base + T['time.system_time'].offset, Math.floor(now));
    mem.write32(si, base + T['time.tsc_to_system_mul'].offset, this.mul);
    mem.write8(si, base + T['time.tsc_shift'].offset, this.shift & 0xff);
    mem.write8(si, base + T['time.flags'].offset, XEN_PVCLOCK_TSC_STABLE_BIT);
    mem.write32(si, ver, (((version + 1) | 1) + 1) >>> 0);
    this.updates++;
  }

  /** update_domain_wallclock_time: the wall time at system time 0, odd/even versioned. */
  updateWallclock(d: Domain): void {
    const si = d.sharedInfoMfn;
    if (si < 0) return;
    const mem = this.mem;
    const version = mem.read32(si, W.wc_version.offset);
    mem.write32(si, W.wc_version.offset, ((version + 1) | 1) >>> 0);
    const sec = this.bootWallclockSec;
    mem.write32(si, W.wc_sec.offset, sec >>> 0);
    mem.write32(si, W.wc_nsec.offset, 0);
    mem.write32(si, W.wc_sec_hi.offset, Math.floor(sec / 4294967296) >>> 0);
    mem.write32(si, W.wc_version.offset, (((version + 1) | 1) + 1) >>> 0);
  }
}

function put64(mem: MachineMemory, mfn: number, off: number, value: number): void {
  mem.write32(mfn, off, value >>> 0);
  mem.write32(mfn, off + 4, Math.floor(value / 4294967296) >>> 0);
}
