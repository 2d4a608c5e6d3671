// Conformance: writable page tables (VMASST_TYPE_writable_pagetables, Xen's
// pv/ro-page-fault.c), driven by guest stores into read-only mappings of its own page
// tables. Each test names the rule and what the guest sees (notes §F).

import { expect } from 'chai';
import {
  HOOK_SLOT, MB2, TABLE, bootTestMachine, makeTable, roPage, quietIndex, type GuestKernel, type Page, type TestMachine,
} from '../support/fixture.ts';
import {
  PTE_A, PTE_NX_HI, PTE_P, PTE_RW, PTE_US, mmuUpdate, mmuextOp, pfnToVa, pte, ptePtr, type U64,
} from '../../guests/lib/xen-calls.ts';
import * as X from '../../hypervisor/public/xen.ts';
import { GuestTrap, TRAP_page_fault } from '../../hypervisor/public/vcpu.ts';
import { PGT_l1_page_table, PGT_pinned, PGT_validated } from '../../hypervisor/arch/frame-table.ts';

/** #PF error code of a kernel write to a present read-only page. */
const PF_PRESENT_WRITE = 3;
/** ... and of a user-mode one. */
const PF_PRESENT_WRITE_USER = 7;
/**
 * The high-half bits checked in entries: NX and the frame address. (Xen may also set its
 * software bit 52, _PAGE_GUEST_KERNEL, when it writes a kernel entry.)
 */
const HI_CHECKED = PTE_NX_HI | 0x000fffff;

function setVmAssist(k: GuestKernel, on: boolean): void {
  const cmd = on ? X.VMASST_CMD_enable : X.VMASST_CMD_disable;
  expect(k.v.hypercall(X.HYPERVISOR_vm_assist, cmd, X.VMASST_TYPE_writable_pagetables)).to.equal(0);
}

interface Setup {
  l1: Page;
  idx: number;
  /** The read-only mapping of entry idx of l1 (in the kernel's direct map). */
  entryVa: number;
  /** The VA that entry idx of l1 maps (l1 hooked into the boot L2). */
  va: number;
  /** A data page holding 0xd00d. */
  data: Page;
}

function setup(k: GuestKernel): Setup {
  const data = k.allocPage();
  k.v.store32(data.va, 0xd00d);
  const l1 = makeTable(k, 1);
  const idx = quietIndex(k);
  expect(mmuUpdate(k.v, k.buf, [[ptePtr(k.bootL2, HOOK_SLOT), pte(l1.mfn, TABLE)]]).rc).to.equal(0);
  return { l1, idx, entryVa: pfnToVa(l1.pfn) + idx * 8, va: pfnToVa(0) + HOOK_SLOT * MB2 + idx * 4096, data };
}

function entry(t: TestMachine, mfn: number, idx: number): U64 {
  return { lo: t.m.hv.mem.read32(mfn, idx * 8), hi: t.m.hv.mem.read32(mfn, idx * 8 + 4) };
}

/** Runs a store that must fault: returns the page fault the guest got. */
function pageFault(store: () => void): GuestTrap {
  try {
    store();
  } catch (e) {
    expect(e).to.be.instanceOf(GuestTrap);
    expect((e as GuestTrap).vector).to.equal(TRAP_page_fault);
    return e as GuestTrap;
  }
  throw new Error('the store did not fault');
}

describe('writable page tables (ptwr)', () => {
  let t: TestMachine;
  beforeEach(() => {
    t = bootTestMachine();
  });
  afterEach(() => t.check());

  it('with the VM assist, a kernel store64 of a valid PTE into its own pinned L1 is emulated and validated', () => {
    const g = t.guest;
    setVmAssist(g, true);
    const s = setup(g);
    const dataTypeCount = t.m.hv.frames.typeCount[s.data.mfn];
    const dataCount = t.m.hv.frames.count[s.data.mfn];
    const val = pte(s.data.mfn, PTE_P | PTE_RW);
    g.v.store64(s.entryVa, val.lo, val.hi);
    const e = entry(t, s.l1.mfn, s.idx);
    expect(e.lo >>> 12).to.equal(s.data.mfn);
    expect(e.lo & (PTE_P | PTE_RW)).to.equal(PTE_P | PTE_RW);
    // Validated as mod_l1_entry would: a general and a writable type reference.
    expect(t.m.hv.frames.count[s.data.mfn]).to.equal(dataCount + 1);
    expect(t.m.hv.frames.typeCount[s.data.mfn]).to.equal(dataTypeCount + 1);
    // The table is still a pinned, validated L1, and the new mapping works.
    expect(t.m.hv.frames.type[s.l1.mfn]).to.equal(PGT_l1_page_table);
    expect(t.m.hv.frames.typeFlags[s.l1.mfn]).to.equal(PGT_pinned | PGT_validated);
    expect(g.v.load32(s.va)).to.equal(0xd00d);
    g.v.store32(s.va + 8, 0x77);
    expect(g.v.load32(s.data.va + 8)).to.equal(0x77);
    // The guest reads its entry back through the read-only mapping.
    expect(g.v.load32(s.entryVa) >>> 12).to.equal(s.data.mfn);
  });

  it("a store of a PTE mapping another domain's frame is not emulated: #PF error code 3, CR2 = the address", () => {
    const g = t.guest;
    setVmAssist(g, true);
    const s = setup(g);
    const foreign = t.other.allocPage();
    const count = t.m.hv.frames.count[foreign.mfn];
    const val = pte(foreign.mfn, PTE_P);
    const trap = pageFault(() => g.v.store64(s.entryVa, val.lo, val.hi));
    expect(trap.errorCode).to.equal(PF_PRESENT_WRITE);
    expect(trap.address).to.equal(s.entryVa);
    expect(entry(t, s.l1.mfn, s.idx)).to.deep.equal({ lo: 0, hi: 0 });
    expect(t.m.hv.frames.count[foreign.mfn]).to.equal(count);
  });

  it('a store of a PTE mapping a page table writable is not emulated: #PF error code 3', () => {
    const g = t.guest;
    setVmAssist(g, true);
    const s = setup(g);
    const other = makeTable(g, 1);
    const val = pte(other.mfn, PTE_P | PTE_RW);
    const trap = pageFault(() => g.v.store64(s.entryVa, val.lo, val.hi));
    expect(trap.errorCode).to.equal(PF_PRESENT_WRITE);
    expect(trap.address).to.equal(s.entryVa);
    expect(entry(t, s.l1.mfn, s.idx)).to.deep.equal({ lo: 0, hi: 0 });
    // Read-only is fine.
    const ro = pte(other.mfn, PTE_P);
    g.v.store64(s.entryVa, ro.lo, ro.hi);
    expect(entry(t, s.l1.mfn, s.idx).lo >>> 12).to.equal(other.mfn);
  });

  it('a 4-byte store is merged with the other half of the entry before validation', () => {
    const g = t.guest;
    setVmAssist(g, true);
    const s = setup(g);
    const old = g.allocPage();
    expect(mmuUpdate(g.v, g.buf, [[ptePtr(s.l1.mfn, s.idx), pte(old.mfn, PTE_P, PTE_NX_HI)]]).rc).to.equal(0);
    const oldCount = t.m.hv.frames.count[old.mfn];
    // Low half: the new frame; the high half (NX) stays.
    g.v.store32(s.entryVa, pte(s.data.mfn, PTE_P).lo);
    let e = entry(t, s.l1.mfn, s.idx);
    expect(e.lo >>> 12).to.equal(s.data.mfn);
    expect((e.hi & HI_CHECKED) >>> 0).to.equal(PTE_NX_HI);
    expect(t.m.hv.frames.count[old.mfn]).to.equal(oldCount - 1);
    // High half: clear NX; the low half stays.
    g.v.store32(s.entryVa + 4, 0);
    e = entry(t, s.l1.mfn, s.idx);
    expect(e.lo >>> 12).to.equal(s.data.mfn);
    expect((e.hi & HI_CHECKED) >>> 0).to.equal(0);
    expect(g.v.load32(s.va)).to.equal(0xd00d);
  });

  it('aligned 2-byte and 1-byte stores are merged into their place in the entry', () => {
    const g = t.guest;
    setVmAssist(g, true);
    const s = setup(g);
    expect(mmuUpdate(g.v, g.buf, [[ptePtr(s.l1.mfn, s.idx), pte(s.data.mfn, PTE_P)]]).rc).to.equal(0);
    const lo = entry(t, s.l1.mfn, s.idx).lo;
    // Bits 48-63: set NX.
    g.v.store16(s.entryVa + 6, 0x8000);
    let e = entry(t, s.l1.mfn, s.idx);
    expect(e.lo).to.equal(lo);
    expect((e.hi & HI_CHECKED) >>> 0).to.equal(PTE_NX_HI);
    // Bits 0-7: set RW (the frame is an ordinary data page).
    g.v.store8(s.entryVa, (lo | PTE_RW) & 0xff);
    e = entry(t, s.l1.mfn, s.idx);
    expect(e.lo).to.equal((lo | PTE_RW) >>> 0);
    expect((e.hi & HI_CHECKED) >>> 0).to.equal(PTE_NX_HI);
    g.v.store32(s.va + 12, 0x99);
    expect(g.v.load32(s.data.va + 12)).to.equal(0x99);
  });

  it('a 4-byte store whose merged entry is invalid is not emulated: #PF error code 3', () => {
    const g = t.guest;
    setVmAssist(g, true);
    const s = setup(g);
    const foreign = t.other.allocPage();
    const trap = pageFault(() => g.v.store32(s.entryVa, pte(foreign.mfn, PTE_P).lo));
    expect(trap.errorCode).to.equal(PF_PRESENT_WRITE);
    expect(entry(t, s.l1.mfn, s.idx)).to.deep.equal({ lo: 0, hi: 0 });
  });

  it('a misaligned store is not emulated: #PF error code 3', () => {
    const g = t.guest;
    setVmAssist(g, true);
    const s = setup(g);
    const val = pte(s.data.mfn, PTE_P);
    for (const [off, store] of [
      [4, () => g.v.store64(s.entryVa + 4, val.lo, 0)],
      [2, () => g.v.store32(s.entryVa + 2, val.lo)],
      [1, () => g.v.store16(s.entryVa + 1, 0x21)],
    ] as const) {
      const trap = pageFault(store);
      expect(trap.errorCode).to.equal(PF_PRESENT_WRITE);
      expect(trap.address).to.equal(s.entryVa + off);
    }
    expect(entry(t, s.l1.mfn, s.idx)).to.deep.equal({ lo: 0, hi: 0 });
    expect(entry(t, s.l1.mfn, s.idx + 1)).to.deep.equal({ lo: 0, hi: 0 });
  });

  it('without the VM assist the store faults: #PF error code 3 (it is not on by default)', () => {
    const g = t.guest;
    const s = setup(g);
    const val = pte(s.data.mfn, PTE_P);
    let trap = pageFault(() => g.v.store64(s.entryVa, val.lo, val.hi));
    expect(trap.errorCode).to.equal(PF_PRESENT_WRITE);
    expect(trap.address).to.equal(s.entryVa);
    expect(entry(t, s.l1.mfn, s.idx)).to.deep.equal({ lo: 0, hi: 0 });
    // Enabled then disabled again: still faults.
    setVmAssist(g, true);
    setVmAssist(g, false);
    trap = pageFault(() => g.v.store64(s.entryVa, val.lo, val.hi));
    expect(trap.errorCode).to.equal(PF_PRESENT_WRITE);
    expect(entry(t, s.l1.mfn, s.idx)).to.deep.equal({ lo: 0, hi: 0 });
  });

  it('a store into a read-only mapping of an L2 (or L4) is never emulated: #PF error code 3', () => {
    const g = t.guest;
    setVmAssist(g, true);
    const l1 = makeTable(g, 1);
    const ptPfn = Math.round((g.si.ptBase - pfnToVa(0)) / 4096);
    const l4 = g.l4;
    const l2 = g.bootL2;
    const l3 = g.bootL3;
    const l2Va = pfnToVa(ptPfn + 2) + (HOOK_SLOT + 1) * 8;
    // Values that would pass as L1 entries too (read-only mappings of owned frames), so
    // only the table's level can refuse them.
    const val = pte(l1.mfn, PTE_P | PTE_US | PTE_A);
    let trap = pageFault(() => g.v.store64(l2Va, val.lo, val.hi));
    expect(trap.errorCode).to.equal(PF_PRESENT_WRITE);
    expect(trap.address).to.equal(l2Va);
    expect(entry(t, l2, HOOK_SLOT + 1)).to.deep.equal({ lo: 0, hi: 0 });
    const l4Va = pfnToVa(ptPfn) + 8;
    trap = pageFault(() => g.v.store64(l4Va, pte(l3, PTE_P | PTE_US | PTE_A).lo, 0));
    expect(trap.errorCode).to.equal(PF_PRESENT_WRITE);
    expect(entry(t, l4, 1)).to.deep.equal({ lo: 0, hi: 0 });
  });

  it('a store into a read-only mapping of a page that is not a page table faults: #PF error code 3', () => {
    const g = t.guest;
    setVmAssist(g, true);
    const p = roPage(g, []);
    const trap = pageFault(() => g.v.store64(p.va, 0, 0));
    expect(trap.errorCode).to.equal(PF_PRESENT_WRITE);
  });

  it('a store of a not-present value is emulated: the entry is cleared and its reference dropped', () => {
    const g = t.guest;
    setVmAssist(g, true);
    const s = setup(g);
    expect(mmuUpdate(g.v, g.buf, [[ptePtr(s.l1.mfn, s.idx), pte(s.data.mfn, PTE_P | PTE_RW)]]).rc).to.equal(0);
    expect(g.v.load32(s.va)).to.equal(0xd00d);
    const count = t.m.hv.frames.count[s.data.mfn];
    const typeCount = t.m.hv.frames.typeCount[s.data.mfn];
    g.v.store64(s.entryVa, 0, 0);
    expect(entry(t, s.l1.mfn, s.idx)).to.deep.equal({ lo: 0, hi: 0 });
    expect(t.m.hv.frames.count[s.data.mfn]).to.equal(count - 1);
    expect(t.m.hv.frames.typeCount[s.data.mfn]).to.equal(typeCount - 1);
    // No flush by the emulation: the guest flushes, then the address faults.
    expect(mmuextOp(g.v, g.buf, [{ cmd: X.MMUEXT_INVLPG_LOCAL, arg1: s.va }]).rc).to.equal(0);
    expect(pageFault(() => g.v.load32(s.va)).errorCode).to.equal(0);
  });

  it('a user-mode store into a read-only user mapping of an L1 is not emulated: #PF error code 7', () => {
    const g = t.guest;
    setVmAssist(g, true);
    const s = setup(g);
    // User page tables mapping the L1 read-only (with US) at VA 0x1000.
    const ul1 = roPage(g, [[1, pte(s.l1.mfn, PTE_P | PTE_US)]]);
    const ul2 = roPage(g, [[0, pte(ul1.mfn, TABLE)]]);
    const ul3 = roPage(g, [[0, pte(ul2.mfn, TABLE)]]);
    const ul4 = roPage(g, [[0, pte(ul3.mfn, TABLE)]]);
    expect(mmuextOp(g.v, g.buf, [{ cmd: X.MMUEXT_NEW_USER_BASEPTR, arg1: ul4.mfn }]).rc).to.equal(0);
    // In kernel mode the same kind of store is emulated.
    const val = pte(s.data.mfn, PTE_P);
    g.v.store64(s.entryVa, val.lo, val.hi);
    expect(entry(t, s.l1.mfn, s.idx).lo >>> 12).to.equal(s.data.mfn);
    const userVa = 0x1000 + (s.idx + 1) * 8;
    expect(g.asUser(0x1800, (u) => u.load32(userVa))).to.equal(0); // readable from user mode
    g.asUser(0x1800, (u) => u.store64(userVa, val.lo, val.hi));
    const trap = g.userTrap!;
    expect(trap.vector).to.equal(TRAP_page_fault);
    expect(trap.errorCode).to.equal(PF_PRESENT_WRITE_USER);
    expect(trap.address).to.equal(userVa);
    expect(entry(t, s.l1.mfn, s.idx + 1)).to.deep.equal({ lo: 0, hi: 0 });
  });
});
