// Conformance: HYPERVISOR_mmu_update, driven through guest vCPUs with request structs in
// the guests' own memory. Each test names the rule and Xen's error code.

import { expect } from 'chai';
import { bootTestMachine, makeTable, type TestMachine } from '../support/fixture.ts';
import {
  PTE_A, PTE_D, PTE_G, PTE_P, PTE_PCD, PTE_PSE, PTE_RW, mmuUpdate, pfnToVa, pte, ptePtr,
} from '../../guests/lib/xen-calls.ts';
import { EBUSY, EFAULT, EINVAL, ENOSYS, EPERM, ESRCH } from '../../hypervisor/public/errno.ts';
import * as X from '../../hypervisor/public/xen.ts';
import { GuestTrap } from '../../hypervisor/public/vcpu.ts';

export { makeTable } from '../support/fixture.ts';

describe('mmu_update', () => {
  let t: TestMachine;
  beforeEach(() => {
    t = bootTestMachine();
  });
  afterEach(() => t.check());

  it('an L1 entry mapping an owned frame read-write succeeds and the guest can use it', () => {
    const g = t.guest;
    const l1 = makeTable(g, 1);
    const data = g.allocPage();
    g.v.store32(data.va, 0x1234);
    expect(mmuUpdate(g.v, g.buf, [[ptePtr(l1.mfn, 0), pte(data.mfn, PTE_P | PTE_RW)]]).rc).to.equal(0);
    // Hook the L1 into the bootstrap L2 at a free slot and read through the new mapping.
    const slot = 300;
    expect(mmuUpdate(g.v, g.buf, [[ptePtr(g.bootL2, slot), pte(l1.mfn, PTE_P | PTE_RW)]]).rc).to.equal(0);
    const va = pfnToVa(0) + slot * 512 * 4096;
    expect(g.v.load32(va)).to.equal(0x1234);
    g.v.store32(va + 4, 0x5678);
    expect(g.v.load32(data.va + 4)).to.equal(0x5678);
  });

  it('mapping a pinned L1 frame writable returns -EBUSY', () => {
    const g = t.guest;
    const l1 = makeTable(g, 1);
    const other = makeTable(g, 1);
    expect(mmuUpdate(g.v, g.buf, [[ptePtr(l1.mfn, 0), pte(other.mfn, PTE_P | PTE_RW)]]).rc).to.equal(-EBUSY);
  });

  it('mapping a page-table frame read-only is allowed', () => {
    const g = t.guest;
    const l1 = makeTable(g, 1);
    const other = makeTable(g, 1);
    expect(mmuUpdate(g.v, g.buf, [[ptePtr(l1.mfn, 0), pte(other.mfn, PTE_P)]]).rc).to.equal(0);
  });

  it("mapping another domain's frame returns -EBUSY", () => {
    const g = t.guest;
    const l1 = makeTable(g, 1);
    const foreign = t.other.allocPage();
    expect(mmuUpdate(g.v, g.buf, [[ptePtr(l1.mfn, 0), pte(foreign.mfn, PTE_P)]]).rc).to.equal(-EBUSY);
  });

  it('a free frame cannot be mapped (-EBUSY)', () => {
    const g = t.guest;
    const l1 = makeTable(g, 1);
    let free = 0;
    while (!t.m.hv.alloc.isFree(free)) free++;
    expect(mmuUpdate(g.v, g.buf, [[ptePtr(l1.mfn, 0), pte(free, PTE_P)]]).rc).to.equal(-EBUSY);
  });

  it("a privileged domain naming the owner as foreigndom may map another domain's frame", () => {
    const d0 = t.dom0;
    const l1 = makeTable(d0, 1);
    const foreign = t.guest.allocPage();
    t.guest.v.store32(foreign.va, 0xcafe);
    const r = mmuUpdate(d0.v, d0.buf, [[ptePtr(l1.mfn, 0), pte(foreign.mfn, PTE_P | PTE_RW)]], t.guest.domid);
    expect(r.rc).to.equal(0);
    expect(mmuUpdate(d0.v, d0.buf, [[ptePtr(d0.bootL2, 300), pte(l1.mfn, PTE_P | PTE_RW)]]).rc).to.equal(0);
    expect(d0.v.load32(pfnToVa(0) + 300 * 512 * 4096)).to.equal(0xcafe);
  });

  it('a non-privileged domain naming a foreign data owner gets -EPERM', () => {
    const g = t.guest;
    const l1 = makeTable(g, 1);
    const foreign = t.other.allocPage();
    expect(mmuUpdate(g.v, g.buf, [[ptePtr(l1.mfn, 0), pte(foreign.mfn, PTE_P)]], t.other.domid).rc).to.equal(-EPERM);
  });

  it('naming its own numeric domid as foreigndom returns -ESRCH', () => {
    const g = t.guest;
    const l1 = makeTable(g, 1);
    const data = g.allocPage();
    expect(mmuUpdate(g.v, g.buf, [[ptePtr(l1.mfn, 0), pte(data.mfn, PTE_P)]], g.domid).rc).to.equal(-ESRCH);
  });

  it('an unknown foreigndom returns -ESRCH, even with no requests', () => {
    const g = t.guest;
    expect(g.v.hypercall(X.HYPERVISOR_mmu_update, g.buf, 0, 0, 999)).to.equal(-ESRCH);
    expect(g.v.hypercall(X.HYPERVISOR_mmu_update, g.buf, 0, 0, (999 + 1) << 16 | X.DOMID_SELF)).to.equal(-ESRCH);
  });

  it('cache attributes (PCD) in an L1 entry of a domain without I/O access return -EINVAL', () => {
    const g = t.guest;
    const l1 = makeTable(g, 1);
    const data = g.allocPage();
    expect(mmuUpdate(g.v, g.buf, [[ptePtr(l1.mfn, 0), pte(data.mfn, PTE_P | PTE_PCD)]]).rc).to.equal(-EINVAL);
    expect(mmuUpdate(g.v, g.buf, [[ptePtr(l1.mfn, 0), pte(data.mfn, PTE_P | PTE_G)]]).rc).to.equal(0);
  });

  it('a PSE (superpage) L2 entry returns -EINVAL', () => {
    const g = t.guest;
    expect(mmuUpdate(g.v, g.buf, [[ptePtr(g.bootL2, 300), pte(0, PTE_P | PTE_PSE)]]).rc).to.equal(-EINVAL);
  });

  it('a Global L2 entry returns -EINVAL', () => {
    const g = t.guest;
    const l1 = makeTable(g, 1);
    expect(mmuUpdate(g.v, g.buf, [[ptePtr(g.bootL2, 300), pte(l1.mfn, PTE_P | PTE_G)]]).rc).to.equal(-EINVAL);
  });

  it('commands 4-7 return -ENOSYS', () => {
    const g = t.guest;
    for (let cmd = 4; cmd < 8; cmd++) {
      const data = g.allocPage();
      expect(mmuUpdate(g.v, g.buf, [[ptePtr(data.mfn, 0, cmd), { lo: 0, hi: 0 }]]).rc).to.equal(-ENOSYS);
    }
  });

  it('the first failure stops the batch: its error is returned, done counts the requests before it', () => {
    const g = t.guest;
    const l1 = makeTable(g, 1);
    const a = g.allocPage();
    const b = g.allocPage();
    const foreign = t.other.allocPage();
    const r = mmuUpdate(g.v, g.buf, [
      [ptePtr(l1.mfn, 0), pte(a.mfn, PTE_P)],
      [ptePtr(l1.mfn, 1), pte(foreign.mfn, PTE_P)],
      [ptePtr(l1.mfn, 2), pte(b.mfn, PTE_P)],
    ]);
    expect(r).to.deep.equal({ rc: -EBUSY, done: 1 });
    // The first request stays applied; the third never ran.
    const hv = t.m.hv;
    expect(hv.mem.read32(l1.mfn, 0) >>> 12).to.equal(a.mfn);
    expect(hv.mem.read32(l1.mfn, 16)).to.equal(0);
  });

  it('a request array in Xen\'s range returns -EFAULT without writing done', () => {
    const g = t.guest;
    g.v.store32(g.buf, 77);
    expect(g.v.hypercall(X.HYPERVISOR_mmu_update, -0x800000000000, 1, g.buf, X.DOMID_SELF)).to.equal(-EFAULT);
    expect(g.v.load32(g.buf)).to.equal(77);
  });

  it('an unmapped request array returns -EFAULT after the requests before it', () => {
    const g = t.guest;
    // The last page of the direct map is the end of the guest's memory: nothing after it.
    const end = pfnToVa(g.si.nrPages);
    const l1 = makeTable(g, 1);
    const a = g.allocPage();
    const at = end - 16;
    g.v.store64(at, ptePtr(l1.mfn, 0).lo, 0);
    g.v.store64(at + 8, pte(a.mfn, PTE_P).lo, 0);
    expect(g.v.hypercall(X.HYPERVISOR_mmu_update, at, 2, g.buf, X.DOMID_SELF)).to.equal(-EFAULT);
    expect(g.v.load32(g.buf)).to.equal(1);
  });

  it('a count of 0 does nothing and reports 0 done', () => {
    const g = t.guest;
    expect(mmuUpdate(g.v, g.buf, [])).to.deep.equal({ rc: 0, done: 0 });
  });

  it('a count of 2^31 is a continuation of nothing: done is read back and returned unchanged', () => {
    const g = t.guest;
    g.v.store32(g.buf, 5);
    expect(g.v.hypercall(X.HYPERVISOR_mmu_update, g.buf + 64, 0x80000000, g.buf, X.DOMID_SELF)).to.equal(0);
    expect(g.v.load32(g.buf)).to.equal(5);
  });

  it('an update into an ordinary data page is a plain 8-byte store', () => {
    const g = t.guest;
    const data = g.allocPage();
    expect(mmuUpdate(g.v, g.buf, [[ptePtr(data.mfn, 3), { lo: 0xabcdef01, hi: 0x12345678 }]]).rc).to.equal(0);
    expect(g.v.load32(data.va + 24)).to.equal(0xabcdef01);
    expect(g.v.load32(data.va + 28)).to.equal(0x12345678);
  });

  it("an update of a frame the page-table owner does not own returns -EINVAL", () => {
    const g = t.guest;
    const foreign = t.other.allocPage();
    expect(mmuUpdate(g.v, g.buf, [[ptePtr(foreign.mfn, 0), { lo: 0, hi: 0 }]]).rc).to.equal(-EINVAL);
  });

  it('an L2-L4 update with a data owner other than the page-table owner returns -EINVAL', () => {
    const d0 = t.dom0;
    const r = mmuUpdate(d0.v, d0.buf, [[ptePtr(t.guest.bootL2, 300), { lo: 0, hi: 0 }]],
      ((t.guest.domid + 1) << 16) | t.other.domid);
    expect(r.rc).to.equal(-EINVAL);
  });

  it("an L4 update in Xen's slots 256-271 returns -EINVAL", () => {
    const g = t.guest;
    for (const slot of [256, 258, 271]) {
      expect(mmuUpdate(g.v, g.buf, [[ptePtr(g.l4, slot), { lo: 0, hi: 0 }]]).rc).to.equal(-EINVAL);
    }
  });

  it('MMU_PT_UPDATE_PRESERVE_AD keeps the Accessed and Dirty bits already in the entry', () => {
    const g = t.guest;
    const l1 = makeTable(g, 1);
    const data = g.allocPage();
    expect(mmuUpdate(g.v, g.buf, [[ptePtr(l1.mfn, 0), pte(data.mfn, PTE_P | PTE_RW | PTE_A | PTE_D)]]).rc).to.equal(0);
    const ptr = ptePtr(l1.mfn, 0, X.MMU_PT_UPDATE_PRESERVE_AD);
    expect(mmuUpdate(g.v, g.buf, [[ptr, pte(data.mfn, PTE_P | PTE_RW)]]).rc).to.equal(0);
    expect(t.m.hv.mem.read32(l1.mfn, 0) & (PTE_A | PTE_D)).to.equal(PTE_A | PTE_D);
  });

  it('MMU_MACHPHYS_UPDATE sets the M2P entry of an owned frame, readable in the RO M2P window', () => {
    const g = t.guest;
    const data = g.allocPage();
    const ptr = { lo: (data.mfn * 4096 + X.MMU_MACHPHYS_UPDATE) >>> 0, hi: 0 };
    expect(mmuUpdate(g.v, g.buf, [[ptr, { lo: 4242, hi: 0 }]]).rc).to.equal(0);
    expect(g.v.load32(-0x800000000000 + data.mfn * 8)).to.equal(4242);
  });

  it("MMU_MACHPHYS_UPDATE of another domain's frame returns -EINVAL", () => {
    const g = t.guest;
    const foreign = t.other.allocPage();
    const ptr = { lo: (foreign.mfn * 4096 + X.MMU_MACHPHYS_UPDATE) >>> 0, hi: 0 };
    expect(mmuUpdate(g.v, g.buf, [[ptr, { lo: 1, hi: 0 }]]).rc).to.equal(-EINVAL);
  });

  it('MMU_MACHPHYS_UPDATE with a foreign page-table owner returns -EPERM', () => {
    const d0 = t.dom0;
    const data = t.guest.allocPage();
    const ptr = { lo: (data.mfn * 4096 + X.MMU_MACHPHYS_UPDATE) >>> 0, hi: 0 };
    expect(mmuUpdate(d0.v, d0.buf, [[ptr, { lo: 1, hi: 0 }]], ((t.guest.domid + 1) << 16) | t.guest.domid).rc)
      .to.equal(-EPERM);
  });

  it('clearing an entry drops its mapping: the guest then faults on the address', () => {
    const g = t.guest;
    const data = g.allocPage();
    expect(mmuUpdate(g.v, g.buf, [[ptePtr(g.bootL1For(data.pfn), data.pfn % 512), { lo: 0, hi: 0 }]]).rc).to.equal(0);
    expect(g.v.hypercall(X.HYPERVISOR_mmuext_op, g.buf, 0, 0, X.DOMID_SELF)).to.equal(0);
    // A full flush so the cleared entry is seen.
    g.v.store64(g.buf + 512, X.MMUEXT_TLB_FLUSH_LOCAL, 0);
    expect(g.v.hypercall(X.HYPERVISOR_mmuext_op, g.buf + 512, 1, 0, X.DOMID_SELF)).to.equal(0);
    expect(() => g.v.load32(data.va)).to.throw(GuestTrap);
  });
});
