// Conformance: HYPERVISOR_update_va_mapping and update_va_mapping_otherdomain, driven
// through guest vCPUs. Each test names the rule and Xen's error code (notes §E).

import { expect } from 'chai';
import {
  HOOK_SLOT, MB2, bootTestMachine, makeTable, hookWindow, type GuestKernel, type TestMachine,
} from '../support/fixture.ts';
import {
  PTE_A, PTE_P, PTE_PCD, PTE_RW, mmuUpdate, mmuextOp, pfnToVa, pte, ptePtr, updateVaMapping,
  type U64,
} from '../../guests/lib/xen-calls.ts';
import { EBUSY, EFAULT, EINVAL, EPERM, ESRCH } from '../../hypervisor/public/errno.ts';
import * as X from '../../hypervisor/public/xen.ts';


function entry(t: TestMachine, l1: number, idx: number): U64 {
  return { lo: t.m.hv.mem.read32(l1, idx * 8), hi: t.m.hv.mem.read32(l1, idx * 8 + 4) };
}

function flushLocal(k: GuestKernel): void {
  expect(mmuextOp(k.v, k.buf, [{ cmd: X.MMUEXT_TLB_FLUSH_LOCAL }]).rc).to.equal(0);
}

function uvmOther(k: GuestKernel, va: number, val: U64, flags: number, domid: number): number {
  return k.v.hypercall(X.HYPERVISOR_update_va_mapping_otherdomain, va, val, flags, domid);
}

describe('update_va_mapping', () => {
  let t: TestMachine;
  beforeEach(() => {
    t = bootTestMachine();
  });
  afterEach(() => t.check());

  describe('success and flushes', () => {
    it('update_va_mapping returns 0 and with UVMF_INVLPG the new mapping is seen at once', () => {
      const g = t.guest;
      const w = hookWindow(g);
      expect(updateVaMapping(g.v, w.va, pte(w.b.mfn, PTE_P), X.UVMF_INVLPG)).to.equal(0);
      expect(entry(t, w.l1.mfn, w.idx).lo >>> 12).to.equal(w.b.mfn);
      expect(g.v.load32(w.va)).to.equal(0xbbbb);
    });

    it('update_va_mapping with UVMF_NONE returns 0 but the stale TLB entry is still used until a flush', () => {
      const g = t.guest;
      const w = hookWindow(g);
      expect(updateVaMapping(g.v, w.va, pte(w.b.mfn, PTE_P), X.UVMF_NONE)).to.equal(0);
      expect(entry(t, w.l1.mfn, w.idx).lo >>> 12).to.equal(w.b.mfn);
      expect(g.v.load32(w.va)).to.equal(0xaaaa);
      flushLocal(g);
      expect(g.v.load32(w.va)).to.equal(0xbbbb);
    });

    it('update_va_mapping with UVMF_TLB_FLUSH (local) returns 0 and flushes', () => {
      const g = t.guest;
      const w = hookWindow(g);
      expect(updateVaMapping(g.v, w.va, pte(w.b.mfn, PTE_P), X.UVMF_TLB_FLUSH | X.UVMF_LOCAL)).to.equal(0);
      expect(g.v.load32(w.va)).to.equal(0xbbbb);
    });

    it('update_va_mapping with UVMF_INVLPG | UVMF_ALL returns 0 and flushes the address', () => {
      const g = t.guest;
      const w = hookWindow(g);
      expect(updateVaMapping(g.v, w.va, pte(w.b.mfn, PTE_P), X.UVMF_INVLPG | X.UVMF_ALL)).to.equal(0);
      expect(g.v.load32(w.va)).to.equal(0xbbbb);
    });

    it('update_va_mapping with a readable vCPU bitmap pointer flushes the vCPUs it names', () => {
      const g = t.guest;
      const w = hookWindow(g);
      const mask = g.buf + 2048;
      g.v.store64(mask, 0, 0);
      expect(updateVaMapping(g.v, w.va, pte(w.b.mfn, PTE_P), mask + X.UVMF_INVLPG)).to.equal(0);
      expect(g.v.load32(w.va)).to.equal(0xaaaa);
      g.v.store64(mask, 1, 0);
      expect(updateVaMapping(g.v, w.va, pte(w.a.mfn, PTE_P), mask + X.UVMF_INVLPG)).to.equal(0);
      expect(g.v.load32(w.va)).to.equal(0xaaaa);
      expect(updateVaMapping(g.v, w.va, pte(w.b.mfn, PTE_P), mask + X.UVMF_INVLPG)).to.equal(0);
      expect(g.v.load32(w.va)).to.equal(0xbbbb);
    });

    it('update_va_mapping with a not-present value clears the entry; the address then faults', () => {
      const g = t.guest;
      const w = hookWindow(g);
      const aCount = t.m.hv.frames.count[w.a.mfn];
      expect(updateVaMapping(g.v, w.va, { lo: 0, hi: 0 }, X.UVMF_INVLPG)).to.equal(0);
      expect(entry(t, w.l1.mfn, w.idx)).to.deep.equal({ lo: 0, hi: 0 });
      expect(t.m.hv.frames.count[w.a.mfn]).to.equal(aCount - 1);
      expect(() => g.v.load32(w.va)).to.throw(/#PF/);
    });
  });

  describe('the address', () => {
    it("a va in Xen's range or non-canonical returns -EINVAL", () => {
      const g = t.guest;
      const data = g.allocPage();
      for (const va of [-0x800000000000, -0x780000000000 - 4096, 0x800000000000, -0x800000000001 - 4095]) {
        expect(updateVaMapping(g.v, va, pte(data.mfn, PTE_P), X.UVMF_INVLPG)).to.equal(-EINVAL);
      }
    });

    it('a va whose L2 entry is not present returns -EINVAL', () => {
      const g = t.guest;
      const data = g.allocPage();
      expect(updateVaMapping(g.v, pfnToVa(0) + (HOOK_SLOT + 1) * MB2, pte(data.mfn, PTE_P), X.UVMF_NONE))
        .to.equal(-EINVAL);
    });

    it('a va whose L4 entry is not present returns -EINVAL', () => {
      const g = t.guest;
      const data = g.allocPage();
      expect(updateVaMapping(g.v, 2 ** 39, pte(data.mfn, PTE_P), X.UVMF_NONE)).to.equal(-EINVAL);
      expect(updateVaMapping(g.v, 0x1000, pte(data.mfn, PTE_P), X.UVMF_NONE)).to.equal(-EINVAL);
    });

    it('a va whose "L1" is an L2 (read-only linear self-map) returns -EINVAL: the frame must be typed L1', () => {
      const g = t.guest;
      const l2 = g.bootL2;
      const data = g.allocPage();
      expect(mmuUpdate(g.v, g.buf, [[ptePtr(l2, HOOK_SLOT + 1), pte(l2, PTE_P | PTE_A)]]).rc).to.equal(0);
      const va = pfnToVa(0) + (HOOK_SLOT + 1) * MB2 + 5 * 4096;
      const before = entry(t, l2, 5);
      expect(updateVaMapping(g.v, va, pte(data.mfn, PTE_P), X.UVMF_NONE)).to.equal(-EINVAL);
      expect(entry(t, l2, 5)).to.deep.equal(before);
    });
  });

  describe('mod_l1_entry rules', () => {
    it("mapping another domain's frame returns -EBUSY and leaves the entry alone", () => {
      const g = t.guest;
      const w = hookWindow(g);
      const foreign = t.other.allocPage();
      const before = entry(t, w.l1.mfn, w.idx);
      expect(updateVaMapping(g.v, w.va, pte(foreign.mfn, PTE_P), X.UVMF_INVLPG)).to.equal(-EBUSY);
      expect(entry(t, w.l1.mfn, w.idx)).to.deep.equal(before);
    });

    it('a failed update flushes nothing (XSA-279): a stale translation survives UVMF_INVLPG', () => {
      const g = t.guest;
      const w = hookWindow(g);
      // Change the entry behind the TLB's back, then fail an update with INVLPG.
      expect(mmuUpdate(g.v, g.buf, [[ptePtr(w.l1.mfn, w.idx), pte(w.b.mfn, PTE_P)]]).rc).to.equal(0);
      expect(g.v.load32(w.va)).to.equal(0xaaaa);
      const foreign = t.other.allocPage();
      expect(updateVaMapping(g.v, w.va, pte(foreign.mfn, PTE_P), X.UVMF_INVLPG)).to.equal(-EBUSY);
      expect(g.v.load32(w.va)).to.equal(0xaaaa);
    });

    it('mapping a page table writable returns -EBUSY; read-only is allowed', () => {
      const g = t.guest;
      const w = hookWindow(g);
      const table = makeTable(g, 1);
      const before = entry(t, w.l1.mfn, w.idx);
      expect(updateVaMapping(g.v, w.va, pte(table.mfn, PTE_P | PTE_RW), X.UVMF_INVLPG)).to.equal(-EBUSY);
      expect(entry(t, w.l1.mfn, w.idx)).to.deep.equal(before);
      expect(updateVaMapping(g.v, w.va, pte(table.mfn, PTE_P), X.UVMF_INVLPG)).to.equal(0);
      expect(() => g.v.store32(w.va, 1)).to.throw(/#PF/);
    });

    it('cache attributes (PCD) for a domain without I/O access return -EINVAL', () => {
      const g = t.guest;
      const w = hookWindow(g);
      const before = entry(t, w.l1.mfn, w.idx);
      expect(updateVaMapping(g.v, w.va, pte(w.b.mfn, PTE_P | PTE_PCD), X.UVMF_INVLPG)).to.equal(-EINVAL);
      expect(entry(t, w.l1.mfn, w.idx)).to.deep.equal(before);
      expect(g.v.load32(w.va)).to.equal(0xaaaa);
    });

    it('a bad vCPU bitmap pointer in flags returns -EFAULT, but the PTE is already written', () => {
      const g = t.guest;
      const w = hookWindow(g);
      for (const bad of [0x1000, -0x800000000000]) {
        const target = bad === 0x1000 ? w.b : w.a;
        expect(updateVaMapping(g.v, w.va, pte(target.mfn, PTE_P), bad + X.UVMF_INVLPG)).to.equal(-EFAULT);
        expect(entry(t, w.l1.mfn, w.idx).lo >>> 12).to.equal(target.mfn);
      }
      flushLocal(g);
      expect(g.v.load32(w.va)).to.equal(0xaaaa);
    });

    it('with flush type UVMF_NONE the rest of flags is ignored, even a bad pointer (returns 0)', () => {
      const g = t.guest;
      const w = hookWindow(g);
      expect(updateVaMapping(g.v, w.va, pte(w.b.mfn, PTE_P), 0x1000 | X.UVMF_NONE)).to.equal(0);
      expect(updateVaMapping(g.v, w.va, pte(w.a.mfn, PTE_P), 0x1000 | X.UVMF_FLUSHTYPE_MASK)).to.equal(0);
      expect(entry(t, w.l1.mfn, w.idx).lo >>> 12).to.equal(w.a.mfn);
    });
  });

  describe('update_va_mapping_otherdomain', () => {
    it('an unknown domid returns -ESRCH', () => {
      const g = t.guest;
      const w = hookWindow(g);
      const before = entry(t, w.l1.mfn, w.idx);
      expect(uvmOther(g, w.va, pte(w.b.mfn, PTE_P), X.UVMF_INVLPG, 999)).to.equal(-ESRCH);
      expect(entry(t, w.l1.mfn, w.idx)).to.deep.equal(before);
    });

    it('naming its own numeric domid returns -ESRCH', () => {
      const g = t.guest;
      const w = hookWindow(g);
      expect(uvmOther(g, w.va, pte(w.b.mfn, PTE_P), X.UVMF_INVLPG, g.domid)).to.equal(-ESRCH);
    });

    it('a domU naming another domain returns -EPERM', () => {
      const g = t.guest;
      const w = hookWindow(g);
      const foreign = t.other.allocPage();
      const before = entry(t, w.l1.mfn, w.idx);
      expect(uvmOther(g, w.va, pte(foreign.mfn, PTE_P), X.UVMF_INVLPG, t.other.domid)).to.equal(-EPERM);
      expect(entry(t, w.l1.mfn, w.idx)).to.deep.equal(before);
      expect(g.v.load32(w.va)).to.equal(0xaaaa);
    });

    it("Dom0 naming the owner returns 0 and maps the guest's frame into its own page tables", () => {
      const d0 = t.dom0;
      const w = hookWindow(d0);
      const foreign = t.guest.allocPage();
      t.guest.v.store32(foreign.va, 0xf00d);
      const count = t.m.hv.frames.count[foreign.mfn];
      expect(uvmOther(d0, w.va, pte(foreign.mfn, PTE_P | PTE_RW), X.UVMF_INVLPG, t.guest.domid)).to.equal(0);
      expect(d0.v.load32(w.va)).to.equal(0xf00d);
      d0.v.store32(w.va + 4, 0xbeef);
      expect(t.guest.v.load32(foreign.va + 4)).to.equal(0xbeef);
      expect(t.m.hv.frames.count[foreign.mfn]).to.equal(count + 1);
    });

    it("Dom0 naming the guest as owner of a frame it does not own returns -EBUSY", () => {
      const d0 = t.dom0;
      const w = hookWindow(d0);
      const own = d0.allocPage();
      expect(uvmOther(d0, w.va, pte(own.mfn, PTE_P), X.UVMF_INVLPG, t.guest.domid)).to.equal(-EBUSY);
    });
  });
});
