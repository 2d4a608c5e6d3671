// Xen Security Advisories that concern PV page tables and the hypercall plumbing: each
// replays the hostile guest input and asserts Xen's fixed behaviour plus the invariants.

import { expect } from 'chai';
import { bootTestMachine, makeTable, type GuestKernel, type TestMachine } from '../support/fixture.ts';
import {
  PTE_A, PTE_P, PTE_PSE, PTE_RW, mmuUpdate, mmuextOp, pfnToVa, pte, ptePtr, updateVaMapping,
} from '../../guests/lib/xen-calls.ts';
import { EINVAL, EOPNOTSUPP } from '../../hypervisor/public/errno.ts';
import * as X from '../../hypervisor/public/xen.ts';

/** Maps `target` read-write at L2 slot `slot` through a new L1; returns the VA. */
function mapAt(g: GuestKernel, slot: number, target: number): { va: number; l1: number } {
  const l1 = makeTable(g, 1);
  expect(mmuUpdate(g.v, g.buf, [[ptePtr(l1.mfn, 0), pte(target, PTE_P | PTE_RW)]]).rc).to.equal(0);
  expect(mmuUpdate(g.v, g.buf, [[ptePtr(g.bootL2, slot), pte(l1.mfn, PTE_P | PTE_RW)]]).rc).to.equal(0);
  return { va: pfnToVa(0) + slot * 512 * 4096, l1: l1.mfn };
}

describe('XSA cases (PV page tables and hypercalls)', () => {
  let t: TestMachine;
  beforeEach(() => {
    t = bootTestMachine();
  });
  afterEach(() => t.check());

  it('XSA-148: setting PSE on an existing L2 entry is not a fast-path change: -EINVAL, entry unchanged', () => {
    const g = t.guest;
    const { l1 } = mapAt(g, 300, g.allocPage().mfn);
    const before = t.m.hv.mem.read32(g.bootL2, 300 * 8);
    expect(mmuUpdate(g.v, g.buf, [[ptePtr(g.bootL2, 300), pte(l1, PTE_P | PTE_RW | PTE_PSE)]]).rc).to.equal(-EINVAL);
    expect(t.m.hv.mem.read32(g.bootL2, 300 * 8)).to.equal(before);
    expect(t.m.hv.frames.isValidated(l1)).to.equal(true);
  });

  it('XSA-148: a PSE L2 entry over the page tables (a writable superpage) is refused with -EINVAL', () => {
    const g = t.guest;
    // 2 MiB at frame 0 of the bootstrap tables would expose them writable.
    const ptMfn = g.bootL2 & ~511;
    expect(mmuUpdate(g.v, g.buf, [[ptePtr(g.bootL2, 301), pte(ptMfn, PTE_P | PTE_RW | PTE_PSE)]]).rc).to.equal(-EINVAL);
  });

  it('XSA-167: MARK_SUPER with a huge MFN returns -EOPNOTSUPP and touches nothing', () => {
    const g = t.guest;
    const huge = 0xfffffffe00000 / 4096 * 4096; // an MFN far beyond the frame table
    for (const cmd of [X.MMUEXT_MARK_SUPER, X.MMUEXT_UNMARK_SUPER]) {
      expect(mmuextOp(g.v, g.buf, [{ cmd, arg1: huge }]).rc).to.equal(-EOPNOTSUPP);
    }
  });

  it('XSA-182: a read-only recursive L4 entry is allowed, rewriting it read-write is -EINVAL', () => {
    const g = t.guest;
    const l4 = g.l4;
    expect(mmuUpdate(g.v, g.buf, [[ptePtr(l4, 300), pte(l4, PTE_P | PTE_A)]]).rc).to.equal(0);
    expect(mmuUpdate(g.v, g.buf, [[ptePtr(l4, 300), pte(l4, PTE_P | PTE_A | PTE_RW)]]).rc).to.equal(-EINVAL);
    // The self-map stays read-only: the guest can read its L4 through it, not write it.
    const selfVa = (300 - 512) * 2 ** 39 + 300 * 2 ** 30 + 300 * 2 ** 21 + 300 * 2 ** 12;
    expect(g.v.load32(selfVa + 272 * 8) & PTE_P).to.equal(PTE_P);
    expect(() => g.v.store32(selfVa, 0)).to.throw(/#PF/);
  });

  it('XSA-182: a read-write linear L4 entry to another L4 returns -EINVAL', () => {
    const g = t.guest;
    const other = makeTable(g, 4);
    expect(mmuUpdate(g.v, g.buf, [[ptePtr(g.l4, 301), pte(other.mfn, PTE_P | PTE_RW)]]).rc).to.equal(-EINVAL);
    expect(mmuUpdate(g.v, g.buf, [[ptePtr(g.l4, 301), pte(other.mfn, PTE_P)]]).rc).to.equal(0);
  });

  it('XSA-240: linear page tables are one level deep: a target cannot hold links, a holder cannot be a target', () => {
    const g = t.guest;
    const a = makeTable(g, 4);
    const b = makeTable(g, 4);
    const c = makeTable(g, 4);
    expect(mmuUpdate(g.v, g.buf, [[ptePtr(a.mfn, 0), pte(b.mfn, PTE_P)]]).rc).to.equal(0);
    // b is a target now: it may not contain a link.
    expect(mmuUpdate(g.v, g.buf, [[ptePtr(b.mfn, 0), pte(c.mfn, PTE_P)]]).rc).to.equal(-EINVAL);
    // a contains a link: it may not become a target.
    expect(mmuUpdate(g.v, g.buf, [[ptePtr(c.mfn, 0), pte(a.mfn, PTE_P)]]).rc).to.equal(-EINVAL);
    expect(t.m.hv.frames.linearPtCount[a.mfn]).to.equal(1);
    expect(t.m.hv.frames.linearPtCount[b.mfn]).to.equal(-1);
  });

  it("XSA-240: a linear entry to another domain's page table returns -EINVAL", () => {
    const g = t.guest;
    expect(mmuUpdate(g.v, g.buf, [[ptePtr(g.l4, 302), pte(t.other.l4, PTE_P)]]).rc).to.equal(-EINVAL);
  });

  it('XSA-240: destroying a domain with circular linear links returns every frame', () => {
    const g = t.guest;
    const a = makeTable(g, 4);
    const b = makeTable(g, 4);
    expect(mmuUpdate(g.v, g.buf, [[ptePtr(a.mfn, 0), pte(b.mfn, PTE_P)]]).rc).to.equal(0);
    expect(mmuUpdate(g.v, g.buf, [[ptePtr(a.mfn, 1), pte(a.mfn, PTE_P)]]).rc).to.equal(0);
    const free = t.m.freeFrames;
    const d = t.m.domain(g.domid)!;
    const pages = d.totPages + d.xenheapPages; // and its shared_info and grant-table pages
    t.m.destroy(g.domid);
    expect(t.m.freeFrames).to.equal(free + pages);
    expect(t.m.domain(g.domid)).to.equal(undefined);
  });

  it('XSA-279: update_va_mapping of a non-canonical va with UVMF_INVLPG|UVMF_ALL returns -EINVAL and flushes nothing', () => {
    const g = t.guest;
    const flushes = t.m.hv.listDomains().flatMap((d) => d.vcpus).map((v) => v.tlb.flushes);
    const rc = updateVaMapping(g.v, 2 ** 63, pte(g.allocPage().mfn, PTE_P), X.UVMF_INVLPG | X.UVMF_ALL);
    expect(rc).to.equal(-EINVAL);
    expect(t.m.hv.listDomains().flatMap((d) => d.vcpus).map((v) => v.tlb.flushes)).to.deep.equal(flushes);
  });

  it('XSA-286: after an L2 update by mmu_update no stale translation through the old entry is used', () => {
    const g = t.guest;
    const x = g.allocPage();
    const y = g.allocPage();
    g.v.store32(x.va, 0x1111);
    g.v.store32(y.va, 0x2222);
    const { va } = mapAt(g, 300, x.mfn);
    expect(g.v.load32(va)).to.equal(0x1111); // now cached in the TLB
    const l1b = makeTable(g, 1);
    expect(mmuUpdate(g.v, g.buf, [[ptePtr(l1b.mfn, 0), pte(y.mfn, PTE_P | PTE_RW)]]).rc).to.equal(0);
    expect(mmuUpdate(g.v, g.buf, [[ptePtr(g.bootL2, 300), pte(l1b.mfn, PTE_P | PTE_RW)]]).rc).to.equal(0);
    expect(g.v.load32(va)).to.equal(0x2222);
  });

  it('an L1 update leaves the TLB alone: the stale translation is used until the guest flushes', () => {
    const g = t.guest;
    const x = g.allocPage();
    const y = g.allocPage();
    g.v.store32(x.va, 0x1111);
    g.v.store32(y.va, 0x2222);
    const { va, l1 } = mapAt(g, 300, x.mfn);
    expect(g.v.load32(va)).to.equal(0x1111);
    expect(mmuUpdate(g.v, g.buf, [[ptePtr(l1, 0), pte(y.mfn, PTE_P | PTE_RW)]]).rc).to.equal(0);
    expect(g.v.load32(va)).to.equal(0x1111);
    expect(mmuextOp(g.v, g.buf, [{ cmd: X.MMUEXT_INVLPG_LOCAL, arg1: va }]).rc).to.equal(0);
    expect(g.v.load32(va)).to.equal(0x2222);
  });
});
