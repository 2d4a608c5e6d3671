// Conformance: HYPERVISOR_mmuext_op, driven through guest vCPUs with op structs in the
// guests' own memory. Each test names the rule and Xen's error code (notes §D).

import { expect } from 'chai';
import {
  TABLE, bootTestMachine, hookWindow, makeTable, roPage, type GuestKernel, type Page, type TestMachine,
} from '../support/fixture.ts';
import {
  PTE_P, PTE_RW, PTE_US, mmuUpdate, mmuextOp, pfnToVa, pinTable, pte, ptePtr, 
} from '../../guests/lib/xen-calls.ts';
import {
  EACCES, EBUSY, EFAULT, EINVAL, ENOSYS, EOPNOTSUPP, EPERM, ESRCH,
} from '../../hypervisor/public/errno.ts';
import * as X from '../../hypervisor/public/xen.ts';
import { GuestTrap, TRAP_page_fault } from '../../hypervisor/public/vcpu.ts';
import {
  PGT_l1_page_table, PGT_l2_page_table, PGT_l3_page_table, PGT_l4_page_table, PGT_pinned, PGT_validated,
  PGT_writable_page,
} from '../../hypervisor/arch/frame-table.ts';


/** mmuext_op with one op; the rc. */
function op1(k: GuestKernel, cmd: number, arg1 = 0, arg2 = 0, fd = X.DOMID_SELF): number {
  return mmuextOp(k.v, k.buf, [{ cmd, arg1, arg2 }], fd).rc;
}

function frameState(t: TestMachine, mfn: number): { type: number; count: number; typeCount: number; flags: number } {
  const f = t.m.hv.frames;
  return { type: f.type[mfn], count: f.count[mfn], typeCount: f.typeCount[mfn], flags: f.typeFlags[mfn] };
}

/**
 * A stale translation: va maps page A, is loaded (TLB filled), then its PTE is changed
 * to page B with mmu_update (which does not flush). Loads of va still see A.
 */
function staleTranslation(k: GuestKernel): { va: number; l1: Page } {
  const { va, l1, idx, b } = hookWindow(k);
  expect(mmuUpdate(k.v, k.buf, [[ptePtr(l1.mfn, idx), pte(b.mfn, PTE_P)]]).rc).to.equal(0);
  expect(k.v.load32(va), 'the TLB still holds the old translation').to.equal(0xaaaa);
  return { va, l1 };
}

/** Expects a load of va to page-fault. */
function expectFault(k: GuestKernel, va: number): GuestTrap {
  try {
    k.v.load32(va);
  } catch (e) {
    expect(e).to.be.instanceOf(GuestTrap);
    expect((e as GuestTrap).vector).to.equal(TRAP_page_fault);
    return e as GuestTrap;
  }
  throw new Error(`load at 0x${va.toString(16)} did not fault`);
}

describe('mmuext_op', () => {
  let t: TestMachine;
  beforeEach(() => {
    t = bootTestMachine();
  });
  afterEach(() => t.check());

  describe('PIN_Ln_TABLE', () => {
    it('PIN_L1..L4_TABLE of an empty owned frame returns 0: typed, validated, pinned, one type reference', () => {
      const g = t.guest;
      for (let level = 1; level <= 4; level++) {
        const p = roPage(g, []);
        const before = frameState(t, p.mfn).count;
        expect(pinTable(g.v, g.buf, level, p.mfn)).to.equal(0);
        const s = frameState(t, p.mfn);
        expect(s.type).to.equal(PGT_l1_page_table + level - 1);
        expect(s.flags & (PGT_pinned | PGT_validated)).to.equal(PGT_pinned | PGT_validated);
        expect(s.typeCount).to.equal(1);
        expect(s.count).to.equal(before + 1);
      }
    });

    it('PIN_L4_TABLE validates the whole subtree: each child gets a type reference of its level', () => {
      const g = t.guest;
      const data = g.allocPage();
      const dataBefore = frameState(t, data.mfn);
      const l1 = roPage(g, [[0, pte(data.mfn, PTE_P | PTE_RW)]]);
      const l2 = roPage(g, [[0, pte(l1.mfn, TABLE)]]);
      const l3 = roPage(g, [[0, pte(l2.mfn, TABLE)]]);
      const l4 = roPage(g, [[0, pte(l3.mfn, TABLE)]]);
      expect(pinTable(g.v, g.buf, 4, l4.mfn)).to.equal(0);
      for (const [p, type] of [[l3, PGT_l3_page_table], [l2, PGT_l2_page_table], [l1, PGT_l1_page_table]] as const) {
        const s = frameState(t, p.mfn);
        expect(s.type).to.equal(type);
        expect(s.typeCount).to.equal(1);
        expect(s.flags).to.equal(PGT_validated); // validated, not pinned
      }
      // The RW L1 entry holds a writable type reference on the data frame.
      expect(frameState(t, data.mfn).typeCount).to.equal(dataBefore.typeCount + 1);
      // The L1 is now a page table: it can no longer be mapped writable.
      const r = mmuUpdate(g.v, g.buf, [[ptePtr(g.bootL1For(l1.pfn), l1.pfn % 512), pte(l1.mfn, PTE_P | PTE_RW)]]);
      expect(r.rc).to.equal(-EBUSY);
    });

    it('PIN_L1_TABLE of an already pinned table returns -EINVAL and keeps only one pin\'s references', () => {
      const g = t.guest;
      const l1 = makeTable(g, 1);
      const before = frameState(t, l1.mfn);
      expect(pinTable(g.v, g.buf, 1, l1.mfn)).to.equal(-EINVAL);
      expect(frameState(t, l1.mfn)).to.deep.equal(before);
    });

    it('PIN_L2_TABLE of a frame already typed L1 returns -EINVAL (type mismatch) and leaves it as it was', () => {
      const g = t.guest;
      const l1 = makeTable(g, 1);
      const before = frameState(t, l1.mfn);
      expect(pinTable(g.v, g.buf, 2, l1.mfn)).to.equal(-EINVAL);
      expect(frameState(t, l1.mfn)).to.deep.equal(before);
      // Likewise an unpinned L1 in use by the boot L2.
      const boot = g.bootL1For(0);
      const bootBefore = frameState(t, boot);
      expect(pinTable(g.v, g.buf, 2, boot)).to.equal(-EINVAL);
      expect(frameState(t, boot)).to.deep.equal(bootBefore);
    });

    it('PIN_L1_TABLE of a frame mapped writable returns -EINVAL', () => {
      const g = t.guest;
      const p = g.allocPage(); // still mapped RW by the direct map
      const before = frameState(t, p.mfn);
      expect(before.type).to.equal(PGT_writable_page);
      expect(pinTable(g.v, g.buf, 1, p.mfn)).to.equal(-EINVAL);
      expect(frameState(t, p.mfn)).to.deep.equal(before);
      g.v.store32(p.va, 5); // still writable
      expect(g.v.load32(p.va)).to.equal(5);
    });

    it('PIN_Ln_TABLE of a frame the data owner does not own returns -EINVAL', () => {
      const g = t.guest;
      const foreign = roPage(t.other, []);
      const before = frameState(t, foreign.mfn);
      for (let level = 1; level <= 4; level++) {
        expect(pinTable(g.v, g.buf, level, foreign.mfn)).to.equal(-EINVAL);
      }
      expect(frameState(t, foreign.mfn)).to.deep.equal(before);
      expect(pinTable(g.v, g.buf, 1, 0x7fffffff)).to.equal(-EINVAL);
    });

    it("PIN_L1_TABLE of a table whose entry maps another domain's frame returns -EBUSY", () => {
      const g = t.guest;
      const foreign = t.other.allocPage();
      const fBefore = frameState(t, foreign.mfn);
      const l1 = roPage(g, [[3, pte(foreign.mfn, PTE_P)]]);
      expect(pinTable(g.v, g.buf, 1, l1.mfn)).to.equal(-EBUSY);
      const s = frameState(t, l1.mfn);
      expect(s.typeCount).to.equal(0);
      expect(s.flags & (PGT_pinned | PGT_validated)).to.equal(0);
      expect(frameState(t, foreign.mfn)).to.deep.equal(fBefore);
    });

    it("PIN_L2_TABLE whose L1 child maps another domain's frame returns the child's -EBUSY; nothing stays typed", () => {
      const g = t.guest;
      const foreign = t.other.allocPage();
      const fBefore = frameState(t, foreign.mfn);
      const l1 = roPage(g, [[0, pte(foreign.mfn, PTE_P)]]);
      const l2 = roPage(g, [[0, pte(l1.mfn, TABLE)]]);
      expect(pinTable(g.v, g.buf, 2, l2.mfn)).to.equal(-EBUSY);
      for (const p of [l1, l2]) {
        const s = frameState(t, p.mfn);
        expect(s.typeCount).to.equal(0);
        expect(s.flags & (PGT_pinned | PGT_validated)).to.equal(0);
      }
      expect(frameState(t, foreign.mfn)).to.deep.equal(fBefore);
    });

    it("Dom0 pinning with foreigndom = the guest pins the guest's table (returns 0), and may unpin it", () => {
      const g = t.guest;
      const d0 = t.dom0;
      const data = g.allocPage();
      const l1 = roPage(g, [[0, pte(data.mfn, PTE_P)]]);
      const dataCount = frameState(t, data.mfn).count;
      expect(pinTable(d0.v, d0.buf, 1, l1.mfn, g.domid)).to.equal(0);
      const s = frameState(t, l1.mfn);
      expect(s.type).to.equal(PGT_l1_page_table);
      expect(s.flags & (PGT_pinned | PGT_validated)).to.equal(PGT_pinned | PGT_validated);
      expect(frameState(t, data.mfn).count).to.equal(dataCount + 1);
      // The guest itself now sees its frame as a pinned page table.
      expect(pinTable(g.v, g.buf, 1, l1.mfn)).to.equal(-EINVAL);
      expect(op1(d0, X.MMUEXT_UNPIN_TABLE, l1.mfn, 0, g.domid)).to.equal(0);
      expect(frameState(t, l1.mfn).typeCount).to.equal(0);
    });

    it('a domU pinning with foreigndom = another domain gets -EPERM before any op (pdone not written)', () => {
      const g = t.guest;
      const l1 = roPage(g, []);
      const r = mmuextOp(t.other.v, t.other.buf, [{ cmd: X.MMUEXT_PIN_L1_TABLE, arg1: l1.mfn }], g.domid);
      expect(r).to.deep.equal({ rc: -EPERM, done: 0xdeadbeef });
      expect(frameState(t, l1.mfn).typeCount).to.equal(0);
    });
  });

  describe('UNPIN_TABLE', () => {
    it('UNPIN_TABLE of a frame that is not pinned returns -EINVAL', () => {
      const g = t.guest;
      const boot = g.bootL1For(0); // typed L1, in use, never pinned
      const before = frameState(t, boot);
      expect(op1(g, X.MMUEXT_UNPIN_TABLE, boot)).to.equal(-EINVAL);
      expect(frameState(t, boot)).to.deep.equal(before);
      const data = g.allocPage();
      const dBefore = frameState(t, data.mfn);
      expect(op1(g, X.MMUEXT_UNPIN_TABLE, data.mfn)).to.equal(-EINVAL);
      expect(frameState(t, data.mfn)).to.deep.equal(dBefore);
    });

    it('UNPIN_TABLE of a frame the domain does not own returns -EINVAL', () => {
      const foreign = makeTable(t.other, 1);
      const before = frameState(t, foreign.mfn);
      expect(op1(t.guest, X.MMUEXT_UNPIN_TABLE, foreign.mfn)).to.equal(-EINVAL);
      expect(frameState(t, foreign.mfn)).to.deep.equal(before);
    });

    it('UNPIN_TABLE returns 0 and devalidates: the entries\' references go and the frame can be mapped writable', () => {
      const g = t.guest;
      const data = g.allocPage();
      const l1 = makeTable(g, 1);
      expect(mmuUpdate(g.v, g.buf, [[ptePtr(l1.mfn, 0), pte(data.mfn, PTE_P | PTE_RW)]]).rc).to.equal(0);
      const dataTypeCount = frameState(t, data.mfn).typeCount;
      const mapRw = (): number =>
        mmuUpdate(g.v, g.buf, [[ptePtr(g.bootL1For(l1.pfn), l1.pfn % 512), pte(l1.mfn, PTE_P | PTE_RW)]]).rc;
      expect(mapRw()).to.equal(-EBUSY);
      expect(op1(g, X.MMUEXT_UNPIN_TABLE, l1.mfn)).to.equal(0);
      const s = frameState(t, l1.mfn);
      expect(s.typeCount).to.equal(0);
      expect(s.flags & (PGT_pinned | PGT_validated)).to.equal(0);
      expect(frameState(t, data.mfn).typeCount).to.equal(dataTypeCount - 1);
      expect(mapRw()).to.equal(0);
      g.v.store32(l1.va + 8, 0x1234);
      expect(g.v.load32(l1.va + 8)).to.equal(0x1234);
    });
  });

  describe('NEW_BASEPTR', () => {
    it('NEW_BASEPTR returns 0, installs the new L4, and the guest\'s loads go through it', () => {
      const g = t.guest;
      const oldL4 = g.l4;
      const l3 = g.bootL3;
      const data = g.allocPage();
      g.v.store32(data.va, 0x5eed);
      // The new L4 maps the boot L3 both at the direct map (slot 272) and at slot 1.
      const l4 = roPage(g, [[272, pte(l3, TABLE)], [1, pte(l3, TABLE)]]);
      const alias = 2 ** 39 + data.pfn * 4096;
      expectFault(g, alias);
      const oldBefore = frameState(t, oldL4);
      expect(op1(g, X.MMUEXT_NEW_BASEPTR, l4.mfn)).to.equal(0);
      expect(g.v.load32(alias)).to.equal(0x5eed);
      expect(g.v.load32(data.va)).to.equal(0x5eed);
      const s = frameState(t, l4.mfn);
      expect(s.type).to.equal(PGT_l4_page_table);
      expect(s.typeCount).to.equal(1);
      expect(s.flags).to.equal(PGT_validated);
      // The old base's references are dropped (it stays pinned).
      expect(frameState(t, oldL4).typeCount).to.equal(oldBefore.typeCount - 1);
      expect(frameState(t, oldL4).count).to.equal(oldBefore.count - 1);
      // The RO M2P slot is filled in the new base (m2p_strict is off).
      expect(g.v.load32(-0x800000000000 + data.mfn * 8)).to.equal(data.pfn);
    });

    it('NEW_BASEPTR of a frame that is not an L4 returns -EINVAL; the old base stays', () => {
      const g = t.guest;
      const oldL4 = g.l4;
      const l1 = makeTable(g, 1);
      const before = frameState(t, l1.mfn);
      const baseBefore = frameState(t, oldL4);
      expect(op1(g, X.MMUEXT_NEW_BASEPTR, l1.mfn)).to.equal(-EINVAL);
      expect(frameState(t, l1.mfn)).to.deep.equal(before);
      expect(frameState(t, oldL4)).to.deep.equal(baseBefore);
      expect(g.v.load32(g.buf)).to.be.a('number');
    });

    it('NEW_BASEPTR of an L4 whose subtree fails validation returns that error (-EBUSY) and takes nothing', () => {
      const g = t.guest;
      const l3boot = g.bootL3;
      const foreign = t.other.allocPage();
      const l1 = roPage(g, [[0, pte(foreign.mfn, PTE_P)]]);
      const l2 = roPage(g, [[0, pte(l1.mfn, TABLE)]]);
      const l3 = roPage(g, [[0, pte(l2.mfn, TABLE)]]);
      const l4 = roPage(g, [[272, pte(l3boot, TABLE)], [300, pte(l3.mfn, TABLE)]]);
      const l3bootBefore = frameState(t, l3boot);
      const foreignBefore = frameState(t, foreign.mfn);
      expect(op1(g, X.MMUEXT_NEW_BASEPTR, l4.mfn)).to.equal(-EBUSY);
      for (const p of [l1, l2, l3, l4]) {
        const s = frameState(t, p.mfn);
        expect(s.typeCount).to.equal(0);
        expect(s.flags & PGT_validated).to.equal(0);
      }
      expect(frameState(t, l3boot)).to.deep.equal(l3bootBefore);
      expect(frameState(t, foreign.mfn)).to.deep.equal(foreignBefore);
    });

    it("NEW_BASEPTR of another domain's L4 returns -EINVAL", () => {
      const g = t.guest;
      const otherL4 = t.other.l4;
      const before = frameState(t, otherL4);
      expect(op1(g, X.MMUEXT_NEW_BASEPTR, otherL4)).to.equal(-EINVAL);
      expect(frameState(t, otherL4)).to.deep.equal(before);
    });

    it('NEW_BASEPTR with foreigndom other than self returns -EPERM, even for the current base', () => {
      const d0 = t.dom0;
      const l4 = d0.l4;
      const r = mmuextOp(d0.v, d0.buf, [{ cmd: X.MMUEXT_NEW_BASEPTR, arg1: l4 }], t.guest.domid);
      expect(r).to.deep.equal({ rc: -EPERM, done: 0 });
    });

    it('NEW_BASEPTR of the current base is a reload: returns 0, keeps the references, flushes the TLB', () => {
      const g = t.guest;
      const l4 = g.l4;
      const before = frameState(t, l4);
      const { va } = staleTranslation(g);
      expect(op1(g, X.MMUEXT_NEW_BASEPTR, l4)).to.equal(0);
      expect(frameState(t, l4)).to.deep.equal(before);
      expect(g.v.load32(va)).to.equal(0xbbbb);
    });
  });

  describe('NEW_USER_BASEPTR', () => {
    /** User page tables mapping `data` at VA 0 (US at every level); the user L4 page. */
    function userTables(k: GuestKernel, data: Page): Page[] {
      const l1 = roPage(k, [[0, pte(data.mfn, PTE_P | PTE_US)]]);
      const l2 = roPage(k, [[0, pte(l1.mfn, TABLE)]]);
      const l3 = roPage(k, [[0, pte(l2.mfn, TABLE)]]);
      const l4 = roPage(k, [[0, pte(l3.mfn, TABLE)]]);
      return [l4, l3, l2, l1];
    }

    it('NEW_USER_BASEPTR returns 0 and user-mode loads go through the user L4; kernel loads do not', () => {
      const g = t.guest;
      const data = g.allocPage();
      g.v.store32(data.va + 16, 0x0a0b0c0d);
      const [l4] = userTables(g, data);
      expect(op1(g, X.MMUEXT_NEW_USER_BASEPTR, l4.mfn)).to.equal(0);
      const s = frameState(t, l4.mfn);
      expect(s.type).to.equal(PGT_l4_page_table);
      expect(s.typeCount).to.equal(1);
      // The kernel base has nothing at VA 0.
      expectFault(g, 16);
      expect(g.asUser(0x800, (u) => [u.cpl, u.load32(16)])).to.deep.equal([3, 0x0a0b0c0d]);
      // The user L4 does not map the kernel's direct map: a user, not-present fault.
      expect(g.asUser(0x800, (u) => u.load32(g.buf))).to.equal(undefined);
      expect(g.userTrap?.vector).to.equal(TRAP_page_fault);
      expect(g.userTrap?.errorCode).to.equal(4);
      expect(g.v.cpl).to.equal(1);
    });

    it('NEW_USER_BASEPTR with mfn 0 clears the user base and drops its references', () => {
      const g = t.guest;
      const data = g.allocPage();
      const [l4, l3] = userTables(g, data);
      expect(op1(g, X.MMUEXT_NEW_USER_BASEPTR, l4.mfn)).to.equal(0);
      expect(frameState(t, l3.mfn).typeCount).to.equal(1);
      expect(op1(g, X.MMUEXT_NEW_USER_BASEPTR, 0)).to.equal(0);
      for (const p of [l4, l3]) {
        const s = frameState(t, p.mfn);
        expect(s.typeCount).to.equal(0);
        expect(s.flags & PGT_validated).to.equal(0);
      }
      // Nothing holds the L4 as a page table any more: it may be mapped writable.
      expect(mmuUpdate(g.v, g.buf, [[ptePtr(g.bootL1For(l4.pfn), l4.pfn % 512), pte(l4.mfn, PTE_P | PTE_RW)]]).rc)
        .to.equal(0);
      // And with no user base, returning to user mode crashes the domain.
      expect(() => g.asUser(0x800, () => 0)).to.throw();
      expect(t.m.domain(g.domid)?.state).to.equal('crashed');
    });

    it('NEW_USER_BASEPTR of the current user base is a no-op returning 0', () => {
      const g = t.guest;
      const data = g.allocPage();
      const [l4] = userTables(g, data);
      expect(op1(g, X.MMUEXT_NEW_USER_BASEPTR, l4.mfn)).to.equal(0);
      const before = frameState(t, l4.mfn);
      expect(op1(g, X.MMUEXT_NEW_USER_BASEPTR, l4.mfn)).to.equal(0);
      expect(frameState(t, l4.mfn)).to.deep.equal(before);
      expect(before.typeCount).to.equal(1);
    });

    it('NEW_USER_BASEPTR of a frame that is not an L4 returns -EINVAL', () => {
      const g = t.guest;
      const l2 = makeTable(g, 2);
      const before = frameState(t, l2.mfn);
      expect(op1(g, X.MMUEXT_NEW_USER_BASEPTR, l2.mfn)).to.equal(-EINVAL);
      expect(frameState(t, l2.mfn)).to.deep.equal(before);
    });
  });

  describe('TLB flushes', () => {
    it('TLB_FLUSH_LOCAL returns 0 and drops a stale translation', () => {
      const g = t.guest;
      const { va } = staleTranslation(g);
      expect(op1(g, X.MMUEXT_TLB_FLUSH_LOCAL)).to.equal(0);
      expect(g.v.load32(va)).to.equal(0xbbbb);
    });

    it('INVLPG_LOCAL returns 0 and drops the stale translation of that address only', () => {
      const g = t.guest;
      const { va } = staleTranslation(g);
      expect(op1(g, X.MMUEXT_INVLPG_LOCAL, va + 4096)).to.equal(0);
      expect(g.v.load32(va)).to.equal(0xaaaa);
      expect(op1(g, X.MMUEXT_INVLPG_LOCAL, va)).to.equal(0);
      expect(g.v.load32(va)).to.equal(0xbbbb);
    });

    it('INVLPG_LOCAL of a non-canonical or Xen address is silently ignored (returns 0)', () => {
      const g = t.guest;
      const { va } = staleTranslation(g);
      expect(op1(g, X.MMUEXT_INVLPG_LOCAL, 0x800000000000)).to.equal(0);
      expect(op1(g, X.MMUEXT_INVLPG_LOCAL, -0x800000000000)).to.equal(0);
      expect(g.v.load32(va)).to.equal(0xaaaa);
    });

    it('TLB_FLUSH_ALL returns 0 and drops a stale translation', () => {
      const g = t.guest;
      const { va } = staleTranslation(g);
      expect(op1(g, X.MMUEXT_TLB_FLUSH_ALL)).to.equal(0);
      expect(g.v.load32(va)).to.equal(0xbbbb);
    });

    it('INVLPG_ALL returns 0 and drops the stale translation of that address only', () => {
      const g = t.guest;
      const { va } = staleTranslation(g);
      expect(op1(g, X.MMUEXT_INVLPG_ALL, va + 4096)).to.equal(0);
      expect(g.v.load32(va)).to.equal(0xaaaa);
      expect(op1(g, X.MMUEXT_INVLPG_ALL, va)).to.equal(0);
      expect(g.v.load32(va)).to.equal(0xbbbb);
    });

    it('TLB_FLUSH_MULTI flushes the vCPUs in the guest bitmap: none with an empty mask, vCPU 0 with bit 0', () => {
      const g = t.guest;
      const { va } = staleTranslation(g);
      const mask = g.buf + 2048;
      g.v.store64(mask, 0, 0);
      expect(op1(g, X.MMUEXT_TLB_FLUSH_MULTI, 0, mask)).to.equal(0);
      expect(g.v.load32(va)).to.equal(0xaaaa);
      g.v.store64(mask, 1, 0);
      expect(op1(g, X.MMUEXT_TLB_FLUSH_MULTI, 0, mask)).to.equal(0);
      expect(g.v.load32(va)).to.equal(0xbbbb);
    });

    it('INVLPG_MULTI flushes the address on the vCPUs in the guest bitmap', () => {
      const g = t.guest;
      const { va } = staleTranslation(g);
      const mask = g.buf + 2048;
      g.v.store64(mask, 0, 0);
      expect(op1(g, X.MMUEXT_INVLPG_MULTI, va, mask)).to.equal(0);
      expect(g.v.load32(va)).to.equal(0xaaaa);
      g.v.store64(mask, 1, 0);
      expect(op1(g, X.MMUEXT_INVLPG_MULTI, va, mask)).to.equal(0);
      expect(g.v.load32(va)).to.equal(0xbbbb);
    });

    it('TLB_FLUSH_MULTI / INVLPG_MULTI with an unreadable vcpumask return -EINVAL and flush nothing', () => {
      const g = t.guest;
      const { va } = staleTranslation(g);
      for (const bad of [0x1000, -0x800000000000]) {
        expect(mmuextOp(g.v, g.buf, [{ cmd: X.MMUEXT_TLB_FLUSH_MULTI, arg2: bad }])).to.deep.equal({ rc: -EINVAL, done: 0 });
        expect(mmuextOp(g.v, g.buf, [{ cmd: X.MMUEXT_INVLPG_MULTI, arg1: va, arg2: bad }]))
          .to.deep.equal({ rc: -EINVAL, done: 0 });
      }
      expect(g.v.load32(va)).to.equal(0xaaaa);
    });

    it('ops on the caller itself (flushes, NEW_USER_BASEPTR, SET_LDT, FLUSH_CACHE) with foreigndom other than self return -EPERM', () => {
      const d0 = t.dom0;
      const mask = d0.buf + 2048;
      d0.v.store64(mask, 1, 0);
      for (const cmd of [X.MMUEXT_TLB_FLUSH_LOCAL, X.MMUEXT_INVLPG_LOCAL, X.MMUEXT_TLB_FLUSH_ALL, X.MMUEXT_INVLPG_ALL,
        X.MMUEXT_TLB_FLUSH_MULTI, X.MMUEXT_INVLPG_MULTI, X.MMUEXT_NEW_USER_BASEPTR, X.MMUEXT_SET_LDT,
        X.MMUEXT_FLUSH_CACHE, X.MMUEXT_FLUSH_CACHE_GLOBAL]) {
        expect(op1(d0, cmd, 0, mask, t.guest.domid), `cmd ${cmd}`).to.equal(-EPERM);
      }
    });
  });

  describe('cache flushes', () => {
    it('FLUSH_CACHE returns -EACCES for a domU and 0 for Dom0', () => {
      expect(op1(t.guest, X.MMUEXT_FLUSH_CACHE)).to.equal(-EACCES);
      expect(op1(t.dom0, X.MMUEXT_FLUSH_CACHE)).to.equal(0);
    });

    it('FLUSH_CACHE_GLOBAL returns -EINVAL for a domU and 0 for Dom0', () => {
      expect(op1(t.guest, X.MMUEXT_FLUSH_CACHE_GLOBAL)).to.equal(-EINVAL);
      expect(op1(t.dom0, X.MMUEXT_FLUSH_CACHE_GLOBAL)).to.equal(0);
    });
  });

  describe('SET_LDT', () => {
    function ldt(): { base: number; ents: number } {
      const v = t.m.hv.domainById(t.guest.domid)!.vcpus[0];
      return { base: v.ldtBase, ents: v.ldtEnts };
    }

    it('SET_LDT with an aligned guest base and nr_ents <= 8192 returns 0 and loads it', () => {
      const g = t.guest;
      expect(op1(g, X.MMUEXT_SET_LDT, 0x10000, 16)).to.equal(0);
      expect(ldt()).to.deep.equal({ base: 0x10000, ents: 16 });
      expect(op1(g, X.MMUEXT_SET_LDT, 0x20000, 8192)).to.equal(0);
      expect(ldt()).to.deep.equal({ base: 0x20000, ents: 8192 });
      // nr_ents 0: the base is ignored (treated as 0), even unaligned.
      expect(op1(g, X.MMUEXT_SET_LDT, 0x123, 0)).to.equal(0);
      expect(ldt().ents).to.equal(0);
    });

    it('SET_LDT with nr_ents > 8192 returns -EINVAL', () => {
      const g = t.guest;
      expect(op1(g, X.MMUEXT_SET_LDT, 0x10000, 16)).to.equal(0);
      expect(op1(g, X.MMUEXT_SET_LDT, 0x20000, 8193)).to.equal(-EINVAL);
      expect(ldt()).to.deep.equal({ base: 0x10000, ents: 16 });
    });

    it('SET_LDT with an unaligned base returns -EINVAL', () => {
      const g = t.guest;
      expect(op1(g, X.MMUEXT_SET_LDT, 0x10008, 1)).to.equal(-EINVAL);
      expect(ldt()).to.deep.equal({ base: 0, ents: 0 });
    });

    it("SET_LDT with a base in Xen's range or non-canonical returns -EINVAL", () => {
      const g = t.guest;
      expect(op1(g, X.MMUEXT_SET_LDT, -0x800000000000, 1)).to.equal(-EINVAL);
      expect(op1(g, X.MMUEXT_SET_LDT, -0x780000000000 - 4096, 1)).to.equal(-EINVAL);
      expect(op1(g, X.MMUEXT_SET_LDT, 0x800000000000, 1)).to.equal(-EINVAL);
      expect(ldt()).to.deep.equal({ base: 0, ents: 0 });
    });
  });

  describe('CLEAR_PAGE and COPY_PAGE', () => {
    function fill(k: GuestKernel, p: Page, seed: number): void {
      for (let off = 0; off < 4096; off += 512) k.v.store32(p.va + off, seed + off);
    }

    it('CLEAR_PAGE of an owned data page returns 0 and zeroes it', () => {
      const g = t.guest;
      const p = g.allocPage();
      fill(g, p, 0x100);
      expect(op1(g, X.MMUEXT_CLEAR_PAGE, p.mfn)).to.equal(0);
      for (let off = 0; off < 4096; off += 4) expect(t.m.hv.mem.read32(p.mfn, off)).to.equal(0);
      expect(g.v.load32(p.va + 512)).to.equal(0);
    });

    it('CLEAR_PAGE of a pinned page table returns -EINVAL and leaves it intact', () => {
      const g = t.guest;
      const data = g.allocPage();
      const l1 = makeTable(g, 1);
      expect(mmuUpdate(g.v, g.buf, [[ptePtr(l1.mfn, 7), pte(data.mfn, PTE_P)]]).rc).to.equal(0);
      const entry = t.m.hv.mem.read32(l1.mfn, 56);
      expect(op1(g, X.MMUEXT_CLEAR_PAGE, l1.mfn)).to.equal(-EINVAL);
      expect(t.m.hv.mem.read32(l1.mfn, 56)).to.equal(entry);
      expect(entry >>> 12).to.equal(data.mfn);
    });

    it('CLEAR_PAGE of a frame the domain does not own returns -EINVAL', () => {
      const foreign = t.other.allocPage();
      fill(t.other, foreign, 0x200);
      expect(op1(t.guest, X.MMUEXT_CLEAR_PAGE, foreign.mfn)).to.equal(-EINVAL);
      expect(t.other.v.load32(foreign.va + 512)).to.equal(0x200 + 512);
    });

    it('COPY_PAGE returns 0 and copies src to dst', () => {
      const g = t.guest;
      const src = g.allocPage();
      const dst = g.allocPage();
      fill(g, src, 0x300);
      expect(op1(g, X.MMUEXT_COPY_PAGE, dst.mfn, src.mfn)).to.equal(0);
      for (let off = 0; off < 4096; off += 512) expect(g.v.load32(dst.va + off)).to.equal(0x300 + off);
    });

    it('COPY_PAGE may copy from a page table (src needs only a general reference)', () => {
      const g = t.guest;
      const data = g.allocPage();
      const l1 = makeTable(g, 1);
      expect(mmuUpdate(g.v, g.buf, [[ptePtr(l1.mfn, 5), pte(data.mfn, PTE_P)]]).rc).to.equal(0);
      const dst = g.allocPage();
      expect(op1(g, X.MMUEXT_COPY_PAGE, dst.mfn, l1.mfn)).to.equal(0);
      expect(g.v.load32(dst.va + 40)).to.equal(t.m.hv.mem.read32(l1.mfn, 40));
      expect(g.v.load32(dst.va + 40) >>> 12).to.equal(data.mfn);
    });

    it('COPY_PAGE to a page table returns -EINVAL and leaves it intact', () => {
      const g = t.guest;
      const src = g.allocPage();
      fill(g, src, 0x400);
      const l1 = makeTable(g, 1);
      expect(op1(g, X.MMUEXT_COPY_PAGE, l1.mfn, src.mfn)).to.equal(-EINVAL);
      for (let off = 0; off < 4096; off += 4) expect(t.m.hv.mem.read32(l1.mfn, off)).to.equal(0);
    });

    it('COPY_PAGE from a frame the domain does not own returns -EINVAL', () => {
      const g = t.guest;
      const foreign = t.other.allocPage();
      fill(t.other, foreign, 0x500);
      const dst = g.allocPage();
      fill(g, dst, 0x600);
      expect(op1(g, X.MMUEXT_COPY_PAGE, dst.mfn, foreign.mfn)).to.equal(-EINVAL);
      expect(g.v.load32(dst.va + 512)).to.equal(0x600 + 512);
    });

    it('COPY_PAGE to a frame the domain does not own returns -EINVAL', () => {
      const g = t.guest;
      const src = g.allocPage();
      fill(g, src, 0x700);
      const foreign = t.other.allocPage();
      fill(t.other, foreign, 0x800);
      expect(op1(g, X.MMUEXT_COPY_PAGE, foreign.mfn, src.mfn)).to.equal(-EINVAL);
      expect(t.other.v.load32(foreign.va + 512)).to.equal(0x800 + 512);
    });
  });

  describe('unsupported commands', () => {
    it('MARK_SUPER and UNMARK_SUPER return -EOPNOTSUPP', () => {
      const g = t.guest;
      const p = g.allocPage();
      expect(op1(g, X.MMUEXT_MARK_SUPER, p.mfn)).to.equal(-EOPNOTSUPP);
      expect(op1(g, X.MMUEXT_UNMARK_SUPER, p.mfn)).to.equal(-EOPNOTSUPP);
    });

    it('commands 14 and 21 (and beyond) return -ENOSYS', () => {
      const g = t.guest;
      for (const cmd of [14, 21, 22, 0x7fffffff]) {
        expect(mmuextOp(g.v, g.buf, [{ cmd }])).to.deep.equal({ rc: -ENOSYS, done: 0 });
      }
    });
  });

  describe('batches and arguments', () => {
    it('the first failure stops the batch: its error is returned, pdone counts the ops before it', () => {
      const g = t.guest;
      const good = roPage(g, []);
      const foreign = roPage(t.other, []);
      const r = mmuextOp(g.v, g.buf, [
        { cmd: X.MMUEXT_PIN_L1_TABLE, arg1: good.mfn },
        { cmd: X.MMUEXT_PIN_L1_TABLE, arg1: foreign.mfn },
        { cmd: X.MMUEXT_UNPIN_TABLE, arg1: good.mfn },
      ]);
      expect(r).to.deep.equal({ rc: -EINVAL, done: 1 });
      // The first op stays applied; the third never ran.
      expect(frameState(t, good.mfn).flags & PGT_pinned).to.equal(PGT_pinned);
      expect(frameState(t, foreign.mfn).typeCount).to.equal(0);
    });

    it('a whole successful batch returns 0 with pdone = count', () => {
      const g = t.guest;
      const a = roPage(g, []);
      const b = roPage(g, []);
      const r = mmuextOp(g.v, g.buf, [
        { cmd: X.MMUEXT_PIN_L1_TABLE, arg1: a.mfn },
        { cmd: X.MMUEXT_PIN_L2_TABLE, arg1: b.mfn },
        { cmd: X.MMUEXT_TLB_FLUSH_LOCAL },
      ]);
      expect(r).to.deep.equal({ rc: 0, done: 3 });
      expect(frameState(t, a.mfn).type).to.equal(PGT_l1_page_table);
      expect(frameState(t, b.mfn).type).to.equal(PGT_l2_page_table);
    });

    it("an op array in Xen's range returns -EFAULT without writing pdone", () => {
      const g = t.guest;
      g.v.store32(g.buf, 77);
      expect(g.v.hypercall(X.HYPERVISOR_mmuext_op, -0x800000000000, 1, g.buf, X.DOMID_SELF)).to.equal(-EFAULT);
      expect(g.v.load32(g.buf)).to.equal(77);
    });

    it('an unmapped op returns -EFAULT after the ops before it; pdone counts them', () => {
      const g = t.guest;
      const p = roPage(g, []);
      const at = pfnToVa(g.si.nrPages) - X.MMUEXT_OP.size; // the last op slot of guest memory
      g.v.store64(at, X.MMUEXT_PIN_L1_TABLE, 0);
      g.v.store64(at + 8, p.mfn, 0);
      g.v.store64(at + 16, 0, 0);
      expect(g.v.hypercall(X.HYPERVISOR_mmuext_op, at, 2, g.buf, X.DOMID_SELF)).to.equal(-EFAULT);
      expect(g.v.load32(g.buf)).to.equal(1);
      expect(frameState(t, p.mfn).flags & PGT_pinned).to.equal(PGT_pinned);
    });

    it('an unknown foreigndom returns -ESRCH, even with no ops (pdone not written)', () => {
      const g = t.guest;
      expect(mmuextOp(g.v, g.buf, [], 999)).to.deep.equal({ rc: -ESRCH, done: 0xdeadbeef });
      expect(mmuextOp(g.v, g.buf, [{ cmd: X.MMUEXT_TLB_FLUSH_LOCAL }], 999)).to.deep.equal({ rc: -ESRCH, done: 0xdeadbeef });
    });

    it('naming its own numeric domid as foreigndom returns -ESRCH', () => {
      const g = t.guest;
      expect(mmuextOp(g.v, g.buf, [{ cmd: X.MMUEXT_TLB_FLUSH_LOCAL }], g.domid).rc).to.equal(-ESRCH);
    });

    it('a domU naming another domain as foreigndom returns -EPERM, even with no ops', () => {
      const g = t.guest;
      expect(mmuextOp(g.v, g.buf, [], t.other.domid)).to.deep.equal({ rc: -EPERM, done: 0xdeadbeef });
      const foreign = makeTable(t.other, 1);
      expect(mmuextOp(g.v, g.buf, [{ cmd: X.MMUEXT_UNPIN_TABLE, arg1: foreign.mfn }], t.other.domid).rc)
        .to.equal(-EPERM);
      expect(frameState(t, foreign.mfn).flags & PGT_pinned).to.equal(PGT_pinned);
    });

    it('a count of 0 does nothing and reports 0 done', () => {
      const g = t.guest;
      expect(mmuextOp(g.v, g.buf, [])).to.deep.equal({ rc: 0, done: 0 });
    });
  });
});
