// Conformance: what a vCPU may and may not do with its TLB and its registers — stale
// translations never outlive a frame's reuse, split stores are all-or-nothing, Xen's
// range is never emulated, down vCPUs do not run, and hostile register values are safe.

import { expect } from 'chai';
import {
  HOOK_SLOT, bootTestMachine, hookWindow, makeTable, type TestMachine,
} from '../support/fixture.ts';
import { PTE_P, PTE_RW, mmuUpdate, pfnToVa, pte, ptePtr } from '../../guests/lib/xen-calls.ts';
import { EINVAL } from '../../hypervisor/public/errno.ts';
import * as M from '../../hypervisor/public/memory.ts';
import { GuestTrap, TRAP_gp_fault, VcpuHalted, type GuestVcpu } from '../../hypervisor/public/vcpu.ts';
import * as X from '../../hypervisor/public/xen.ts';
import { Machine } from '../../hypervisor/index.ts';
import { bootKernel } from '../support/fixture.ts';

/** Writes a xen_memory_reservation at `at` for `n` extents listed at `list` (0: none). */
function reservation(v: GuestVcpu, at: number, list: number, n: number, domid: number): void {
  v.write(at, new Uint8Array(32));
  v.store64(at, list >>> 0, Math.floor(list / 2 ** 32) >>> 0);
  v.store32(at + 8, n);
  v.store16(at + 24, domid);
}

describe('TLB and vCPU safety', () => {
  let t: TestMachine;
  beforeEach(() => {
    t = bootTestMachine();
  });
  afterEach(() => t.check());

  for (const [name, ticks] of [['', 0], [' after the TLB clock passes 2^32', 2 ** 32 + 7]] as const) {
    it(`a frame freed and given to another domain is unreachable through a stale TLB entry${name}`, () => {
      t.m.hv.tlbClock.advance(ticks);
      const g = t.guest;
      const { va, a, l1, idx } = hookWindow(g); // va -> page A, now cached in g's TLB
      // Drop both mappings of A (L1 updates: no flush), then give A back to Xen.
      expect(mmuUpdate(g.v, g.buf, [
        [ptePtr(g.bootL1For(a.pfn), a.pfn % 512), { lo: 0, hi: 0 }],
        [ptePtr(l1.mfn, idx), { lo: 0, hi: 0 }],
      ]).rc).to.equal(0);
      expect(g.v.load32(va), 'the stale entry is still used').to.equal(0xaaaa);
      g.v.store64(g.buf + 512, a.mfn, 0);
      reservation(g.v, g.buf, g.buf + 512, 1, X.DOMID_SELF);
      expect(g.v.hypercall(X.HYPERVISOR_memory_op, M.XENMEM_decrease_reservation, g.buf)).to.equal(1);
      expect(t.m.hv.alloc.isFree(a.mfn)).to.equal(true);
      // Dom0 gives the other guest every free frame, A among them.
      const d0 = t.dom0;
      const other = t.m.domain(t.other.domid)!;
      other.maxPages = other.totPages + t.m.freeFrames;
      reservation(d0.v, d0.buf, 0, t.m.freeFrames, t.other.domid);
      expect(d0.v.hypercall(X.HYPERVISOR_memory_op, M.XENMEM_increase_reservation, d0.buf)).to.be.above(0);
      expect(t.m.hv.frames.owner[a.mfn]).to.equal(t.other.domid);
      // The guest's stale entry was flushed before A was reused: the address no longer
      // translates, so the other domain's frame cannot be read through it.
      t.m.hv.mem.write32(a.mfn, 0, 0x5ec7e7);
      expect(() => g.v.load32(va)).to.throw(GuestTrap);
    });
  }

  it('a store split across two pages commits nothing when the second page faults', () => {
    const g = t.guest;
    const end = pfnToVa(g.si.nrPages); // nothing is mapped from here on
    const last = end - 4096;
    g.v.store32(end - 4, 0x11111111);
    expect(() => g.v.store64(end - 4, 0x22222222, 0x33333333)).to.throw(GuestTrap);
    expect(g.v.load32(last + 4092)).to.equal(0x11111111);
  });

  it("writable page-table emulation never applies in Xen's range: the store gets #PF and writes nothing", () => {
    const g = t.guest;
    expect(g.v.hypercall(X.HYPERVISOR_vm_assist, X.VMASST_CMD_enable, X.VMASST_TYPE_writable_pagetables)).to.equal(0);
    const l1 = makeTable(g, 1);
    // A read-only L2 entry to the L1: through Xen's self-map in slot 258 that L1 would
    // be reachable at this address, read-only.
    expect(mmuUpdate(g.v, g.buf, [[ptePtr(g.bootL2, HOOK_SLOT), pte(l1.mfn, PTE_P)]]).rc).to.equal(0);
    const xenSelfMap = -0x7f0000000000; // 0xFFFF810000000000, L4 slot 258
    const va = xenSelfMap + 272 * 2 ** 30 + HOOK_SLOT * 4096 + 40;
    const data = g.allocPage();
    expect(() => g.v.store64(va, pte(data.mfn, PTE_P | PTE_RW).lo, 0)).to.throw(GuestTrap);
    expect(t.m.hv.mem.read32(l1.mfn, 40)).to.equal(0);
  });

  it('a vCPU that was never brought up cannot run', () => {
    const m = new Machine({ memoryMb: 32 });
    const k = bootKernel(m, false, { memoryMb: 4, maxVcpus: 2 });
    const v1 = k.handle.vcpus[1];
    expect(() => v1.load32(k.buf)).to.throw(VcpuHalted);
    expect(() => v1.hypercall(X.HYPERVISOR_xen_version, 0, 0)).to.throw(VcpuHalted);
    expect(m.checkInvariants()).to.deep.equal([]);
  });

  it('hostile register values: a non-number address is #GP, a non-number argument reads as 0', () => {
    const v = t.guest.v;
    for (const bad of [Number.NaN, Infinity, 1n, 'x', undefined]) {
      let trap: unknown;
      try {
        v.load32(bad as unknown as number);
      } catch (e) {
        trap = e;
      }
      expect(trap, String(bad)).to.be.instanceOf(GuestTrap);
      expect((trap as GuestTrap).vector).to.equal(TRAP_gp_fault);
    }
    expect(v.hypercall(X.HYPERVISOR_xen_version, { lo: 1n, hi: 0 } as never, Number.NaN)).to.equal(0x40011);
  });

  it('memory_op takes its start extent from the whole 64-bit cmd: maximum_ram_page with one returns -EINVAL', () => {
    const v = t.guest.v;
    expect(v.hypercall(X.HYPERVISOR_memory_op, { lo: M.XENMEM_maximum_ram_page, hi: 1 }, 0)).to.equal(-EINVAL);
  });

  it('an address_bits limit smaller than the extent allocates nothing', () => {
    const d0 = t.dom0;
    t.m.domain(0)!.maxPages += 1024;
    reservation(d0.v, d0.buf, 0, 1, X.DOMID_SELF);
    d0.v.store32(d0.buf + 16, 9); // extent_order 9: 512 frames
    d0.v.store32(d0.buf + 20, M.XENMEMF_address_bits(20)); // only 256 frames below 2^20
    expect(d0.v.hypercall(X.HYPERVISOR_memory_op, M.XENMEM_increase_reservation, d0.buf)).to.equal(0);
  });
});
