// Conformance: the credit scheduler and the discrete-event loop. CPU-bound guest
// kernels (compute, then a boundary, forever) share the physical CPUs; their shares of
// a second of virtual time follow weights and caps. Times are virtual, so these are
// exact functions of the inputs, not timing measurements.

import { expect } from 'chai';
import { Machine } from '../../hypervisor/index.ts';
import type { GuestCode, GuestImage } from '../../hypervisor/public/vcpu.ts';
import { pfnToVa } from '../../guests/lib/xen-calls.ts';

const SECOND = 1_000_000_000;
const ENTRY = pfnToVa(0) + 0xe00;

/** A kernel that burns 10 us of cycles between boundaries, forever. */
function spinner(): GuestImage {
  const spin: GuestCode = function* (cpu) {
    for (;;) {
      cpu.compute(24_000);
      yield;
    }
  };
  return { text: new Map([[ENTRY, spin]]), entry: ENTRY };
}

/** Virtual ns each domain spent running, after `ns` of virtual time. */
function shares(m: Machine, domids: number[]): number[] {
  return domids.map((id) => {
    const d = m.domain(id)!;
    return d.vcpus.reduce((s, v) => s + v.runstateTime[0] + (v.runstate === 0 ? m.now - v.runstateEntry : 0), 0);
  });
}

function boot(pcpus: number, specs: { weight?: number; cap?: number; vcpus?: number }[]): { m: Machine; ids: number[] } {
  const m = new Machine({ memoryMb: 128, pcpus });
  m.bootDom0({ memoryMb: 8 });
  const ids = specs.map((s) => {
    const h = m.createGuest({ memoryMb: 4, image: spinner() });
    const d = m.domain(h.domid)!;
    if (s.weight !== undefined) d.sched.weight = s.weight;
    if (s.cap !== undefined) d.sched.cap = s.cap;
    return h.domid;
  });
  return { m, ids };
}

describe('credit scheduler', () => {
  it('two CPU-bound guests of equal weight on one pCPU each get half of a second, within 2%', () => {
    const { m, ids } = boot(1, [{}, {}]);
    m.run(SECOND);
    const [a, b] = shares(m, ids);
    expect(a / (a + b)).to.be.closeTo(0.5, 0.02);
    expect(a + b).to.be.greaterThan(0.95 * SECOND);
  });

  it('weights 256 and 512 split one pCPU 1:2 over a second, within 3%', () => {
    const { m, ids } = boot(1, [{ weight: 256 }, { weight: 512 }]);
    m.run(SECOND);
    const [a, b] = shares(m, ids);
    expect(a / (a + b)).to.be.closeTo(1 / 3, 0.03);
  });

  it('a cap of 25 holds a guest to a quarter of a pCPU even when the pCPU is otherwise idle', () => {
    const { m, ids } = boot(1, [{ cap: 25 }]);
    m.run(SECOND);
    const [a] = shares(m, ids);
    expect(a / SECOND).to.be.closeTo(0.25, 0.03);
  });

  it('three equal guests on two pCPUs each get two thirds of a pCPU, within 3%', () => {
    const { m, ids } = boot(2, [{}, {}, {}]);
    m.run(SECOND);
    for (const s of shares(m, ids)) expect(s / SECOND).to.be.closeTo(2 / 3, 0.03);
  });

  it('a second of the same machine twice gives identical virtual times and switch counts', () => {
    const run = (): number[] => {
      const { m, ids } = boot(2, [{ weight: 128 }, { weight: 256 }, { cap: 30 }]);
      m.run(SECOND);
      return [...shares(m, ids), m.hv.sched.contextSwitches, m.now];
    };
    expect(run()).to.deep.equal(run());
  });
});
