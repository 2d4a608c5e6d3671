// Conformance: HYPERVISOR_memory_op (XENMEM_*), driven through guest vCPUs with
// xen_memory_reservation and friends written into the guests' own memory. Each test
// names the rule and Xen's result. increase/decrease/populate never return an errno:
// every failure shows only as the number of extents done.

import { expect } from 'chai';
import { bootTestMachine, makeTable, type GuestKernel, type TestMachine } from '../support/fixture.ts';
import { PTE_P, PTE_RW, mmuUpdate, pfnToVa, pte, ptePtr } from '../../guests/lib/xen-calls.ts';
import { EFAULT, EINVAL, ENOSYS, EPERM, ESRCH } from '../../hypervisor/public/errno.ts';
import * as M from '../../hypervisor/public/memory.ts';
import * as C from '../../hypervisor/public/domctl.ts';
import * as X from '../../hypervisor/public/xen.ts';

/** The read-only M2P window every PV guest sees (RO_MPT_VIRT_START, 0xFFFF800000000000). */
const RO_M2P = -0x800000000000;
/** Xen's INVALID_M2P_ENTRY, as the low (and high) half the guest reads. */
const M2P_INVALID = 0xffffffff;
const SENTINEL = 0x5a5a5a5a;

// ---- struct-writing helpers: what a guest kernel's Xen layer would do ------------------

function writeU64(k: GuestKernel, va: number, x: number): void {
  k.v.store64(va, x >>> 0, Math.floor(x / 4294967296) >>> 0);
}

function readU64(k: GuestKernel, va: number): number {
  return k.v.load32(va + 4) * 4294967296 + k.v.load32(va);
}

interface Reservation {
  /** Guest VA of the extent list (0 = NULL). */
  extentStart: number;
  nrExtents: number;
  order?: number;
  memFlags?: number;
  domid?: number;
}

/** Writes struct xen_memory_reservation at `at`. */
function writeReservation(k: GuestKernel, at: number, r: Reservation): void {
  const F = M.XEN_MEMORY_RESERVATION.fields;
  k.v.write(at, new Uint8Array(M.XEN_MEMORY_RESERVATION.size));
  writeU64(k, at + F.extent_start.offset, r.extentStart);
  writeU64(k, at + F.nr_extents.offset, r.nrExtents);
  k.v.store32(at + F.extent_order.offset, r.order ?? 0);
  k.v.store32(at + F.mem_flags.offset, r.memFlags ?? 0);
  k.v.store16(at + F.domid.offset, r.domid ?? X.DOMID_SELF);
}

function memoryOp(k: GuestKernel, cmd: number, arg: number): number {
  return k.v.hypercall(X.HYPERVISOR_memory_op, cmd, arg);
}

/** A reservation op with the struct at k.buf and the extent list at k.buf + 256. */
function reservation(k: GuestKernel, op: number, r: Omit<Reservation, 'extentStart'> & { extentStart?: number },
  cmdHigh = 0): number {
  writeReservation(k, k.buf, { extentStart: k.buf + 256, ...r });
  return memoryOp(k, op | cmdHigh, k.buf);
}

function fillList(k: GuestKernel, at: number, values: readonly number[]): void {
  values.forEach((x, i) => writeU64(k, at + i * 8, x));
}

function readList(k: GuestKernel, at: number, n: number): number[] {
  return Array.from({ length: n }, (_, i) => readU64(k, at + i * 8));
}

/** A stat op (current/maximum_reservation) with the domid_t at k.buf. */
function stat(k: GuestKernel, op: number, domid: number): number {
  k.v.store16(k.buf, domid);
  return memoryOp(k, op, k.buf);
}

/** Dom0's toolstack raises `domid`'s max_pages with XEN_DOMCTL_max_mem. */
function setMaxPages(d0: GuestKernel, domid: number, pages: number): void {
  const F = C.XEN_DOMCTL.fields;
  const at = d0.buf + 2048;
  d0.v.write(at, new Uint8Array(C.XEN_DOMCTL.size));
  d0.v.store32(at + F.cmd.offset, C.XEN_DOMCTL_max_mem);
  d0.v.store32(at + F.interface_version.offset, C.XEN_DOMCTL_INTERFACE_VERSION);
  d0.v.store16(at + F.domain.offset, domid);
  writeU64(d0, at + F['u.max_mem.max_memkb'].offset, pages * 4);
  expect(d0.v.hypercall(X.HYPERVISOR_domctl, at)).to.equal(0);
}

/** M2P[mfn] as the guest reads it in the read-only window: [lo, hi]. */
function m2p(k: GuestKernel, mfn: number): [number, number] {
  return [k.v.load32(RO_M2P + mfn * 8), k.v.load32(RO_M2P + mfn * 8 + 4)];
}

describe('memory_op', () => {
  let t: TestMachine;
  beforeEach(() => {
    t = bootTestMachine();
  });
  afterEach(() => t.check());

  const dom = (k: GuestKernel) => t.m.domain(k.domid)!;

  // ---- increase_reservation ----------------------------------------------------------

  it('increase_reservation returns the extents done and writes each new MFN into extent_start', () => {
    const g = t.guest;
    const tot = dom(g).totPages;
    setMaxPages(t.dom0, g.domid, tot + 4);
    const free = t.m.freeFrames;
    fillList(g, g.buf + 256, [SENTINEL, SENTINEL, SENTINEL, SENTINEL, SENTINEL]);
    expect(reservation(g, M.XENMEM_increase_reservation, { nrExtents: 4 })).to.equal(4);
    const mfns = readList(g, g.buf + 256, 4);
    expect(new Set(mfns).size).to.equal(4);
    for (const mfn of mfns) expect(t.m.hv.frames.owner[mfn]).to.equal(g.domid);
    expect(readU64(g, g.buf + 256 + 32)).to.equal(SENTINEL);
    expect(stat(g, M.XENMEM_current_reservation, X.DOMID_SELF)).to.equal(tot + 4);
    expect(t.m.freeFrames).to.equal(free - 4);
  });

  it('increase_reservation leaves the M2P entry of each new frame INVALID (the guest must set it)', () => {
    const g = t.guest;
    setMaxPages(t.dom0, g.domid, dom(g).totPages + 2);
    expect(reservation(g, M.XENMEM_increase_reservation, { nrExtents: 2 })).to.equal(2);
    for (const mfn of readList(g, g.buf + 256, 2)) {
      expect(m2p(g, mfn)).to.deep.equal([M2P_INVALID, M2P_INVALID]);
    }
  });

  it('increase_reservation beyond max_pages stops early and returns the extents done', () => {
    const g = t.guest;
    const tot = dom(g).totPages;
    setMaxPages(t.dom0, g.domid, tot + 2);
    fillList(g, g.buf + 256, [SENTINEL, SENTINEL, SENTINEL, SENTINEL, SENTINEL]);
    expect(reservation(g, M.XENMEM_increase_reservation, { nrExtents: 5 })).to.equal(2);
    expect(readList(g, g.buf + 256 + 16, 3)).to.deep.equal([SENTINEL, SENTINEL, SENTINEL]);
    expect(dom(g).totPages).to.equal(tot + 2);
    // At the limit nothing more is given: 0 extents, not an errno.
    expect(reservation(g, M.XENMEM_increase_reservation, { nrExtents: 1 })).to.equal(0);
  });

  it('increase_reservation with a NULL extent list allocates and returns the count', () => {
    const g = t.guest;
    const tot = dom(g).totPages;
    setMaxPages(t.dom0, g.domid, tot + 3);
    const free = t.m.freeFrames;
    expect(reservation(g, M.XENMEM_increase_reservation, { extentStart: 0, nrExtents: 3 })).to.equal(3);
    expect(stat(g, M.XENMEM_current_reservation, X.DOMID_SELF)).to.equal(tot + 3);
    expect(t.m.freeFrames).to.equal(free - 3);
  });

  it("increase_reservation with extent_order above the caller's max order (domU: 9) returns 0", () => {
    const g = t.guest;
    const tot = dom(g).totPages;
    setMaxPages(t.dom0, g.domid, tot + 2048);
    const free = t.m.freeFrames;
    expect(reservation(g, M.XENMEM_increase_reservation, { nrExtents: 1, order: 10 })).to.equal(0);
    expect(dom(g).totPages).to.equal(tot);
    expect(t.m.freeFrames).to.equal(free);
    // Order 9 (2 MiB) is within the limit and is granted.
    expect(reservation(g, M.XENMEM_increase_reservation, { nrExtents: 1, order: 9 })).to.equal(1);
    expect(dom(g).totPages).to.equal(tot + 512);
  });

  it('increase_reservation by a domU targeting another domain returns 0 (not -EPERM)', () => {
    const g = t.guest;
    const o = t.other;
    const tot = dom(o).totPages;
    setMaxPages(t.dom0, o.domid, tot + 4);
    expect(reservation(g, M.XENMEM_increase_reservation, { nrExtents: 2, domid: o.domid })).to.equal(0);
    expect(dom(o).totPages).to.equal(tot);
    // The privileged Dom0 may do it.
    expect(reservation(t.dom0, M.XENMEM_increase_reservation, { nrExtents: 2, domid: o.domid })).to.equal(2);
    expect(dom(o).totPages).to.equal(tot + 2);
  });

  it('increase_reservation naming its own numeric domid works like DOMID_SELF', () => {
    const g = t.guest;
    const tot = dom(g).totPages;
    setMaxPages(t.dom0, g.domid, tot + 1);
    expect(reservation(g, M.XENMEM_increase_reservation, { nrExtents: 1, domid: g.domid })).to.equal(1);
    expect(dom(g).totPages).to.equal(tot + 1);
  });

  it('increase_reservation for an unknown domain returns 0', () => {
    const d0 = t.dom0;
    const free = t.m.freeFrames;
    expect(reservation(d0, M.XENMEM_increase_reservation, { nrExtents: 1, domid: 999 })).to.equal(0);
    expect(t.m.freeFrames).to.equal(free);
  });

  it('increase_reservation with nr_extents beyond UINT_MAX >> 6 returns 0', () => {
    const g = t.guest;
    const tot = dom(g).totPages;
    setMaxPages(t.dom0, g.domid, tot + 2);
    const limit = 0xffffffff >>> M.MEMOP_EXTENT_SHIFT;
    expect(reservation(g, M.XENMEM_increase_reservation, { extentStart: 0, nrExtents: limit + 1 })).to.equal(0);
    expect(reservation(g, M.XENMEM_increase_reservation, { extentStart: 0, nrExtents: 2 ** 32 + 1 })).to.equal(0);
    expect(dom(g).totPages).to.equal(tot);
    // Exactly UINT_MAX >> 6 is accepted: it stops at max_pages.
    expect(reservation(g, M.XENMEM_increase_reservation, { extentStart: 0, nrExtents: limit })).to.equal(2);
    expect(dom(g).totPages).to.equal(tot + 2);
  });

  it('increase_reservation with a start extent (cmd >> 6) at or past nr_extents returns the start extent', () => {
    const g = t.guest;
    const tot = dom(g).totPages;
    setMaxPages(t.dom0, g.domid, tot + 4);
    expect(reservation(g, M.XENMEM_increase_reservation, { nrExtents: 3 }, 3 << M.MEMOP_EXTENT_SHIFT)).to.equal(3);
    expect(dom(g).totPages).to.equal(tot);
    // A start extent of 1 of 3 does extents 1 and 2, and returns the cumulative 3.
    fillList(g, g.buf + 256, [SENTINEL, SENTINEL, SENTINEL]);
    expect(reservation(g, M.XENMEM_increase_reservation, { nrExtents: 3 }, 1 << M.MEMOP_EXTENT_SHIFT)).to.equal(3);
    expect(readU64(g, g.buf + 256)).to.equal(SENTINEL);
    expect(readU64(g, g.buf + 264)).to.not.equal(SENTINEL);
    expect(dom(g).totPages).to.equal(tot + 2);
  });

  it("increase_reservation with an extent list in Xen's range returns 0 and allocates nothing", () => {
    const g = t.guest;
    const tot = dom(g).totPages;
    setMaxPages(t.dom0, g.domid, tot + 2);
    expect(reservation(g, M.XENMEM_increase_reservation, { extentStart: RO_M2P, nrExtents: 2 })).to.equal(0);
    expect(dom(g).totPages).to.equal(tot);
  });

  it('increase_reservation whose MFN write-back faults stops there: the frame stays allocated, uncounted', () => {
    const g = t.guest;
    const tot = dom(g).totPages;
    setMaxPages(t.dom0, g.domid, tot + 4);
    // The list's second slot is just past the end of the guest's memory: unmapped.
    const list = pfnToVa(g.si.nrPages) - 8;
    expect(reservation(g, M.XENMEM_increase_reservation, { extentStart: list, nrExtents: 3 })).to.equal(1);
    expect(t.m.hv.frames.owner[readU64(g, list)]).to.equal(g.domid);
    expect(dom(g).totPages).to.equal(tot + 2);
  });

  it('increase_reservation with XENMEMF_address_bits allocates below 2^bits, and returns 0 when nothing there is free', () => {
    const g = t.guest;
    setMaxPages(t.dom0, g.domid, dom(g).totPages + 2);
    expect(reservation(g, M.XENMEM_increase_reservation, { nrExtents: 1, memFlags: M.XENMEMF_address_bits(20) })).to.equal(1);
    expect(readList(g, g.buf + 256, 1)[0]).to.be.below(2 ** (20 - 12));
    // Below 2^13 are frames 0 and 1, which are Xen's.
    expect(reservation(g, M.XENMEM_increase_reservation, { nrExtents: 1, memFlags: M.XENMEMF_address_bits(13) })).to.equal(0);
  });

  it('the control domain may allocate extents up to order 18 (PAGEALLOC_MAX_ORDER), not beyond', () => {
    const d0 = t.dom0;
    setMaxPages(d0, d0.domid, dom(d0).totPages + 8192);
    expect(reservation(d0, M.XENMEM_increase_reservation, { nrExtents: 1, order: 19, extentStart: 0 })).to.equal(0);
    expect(reservation(d0, M.XENMEM_increase_reservation, { nrExtents: 1, order: 13, extentStart: 0 })).to.equal(1);
    expect(dom(d0).totPages).to.be.at.least(8192);
  });

  it('current_reservation still finds a dying domain: Dom0 sees the frames it keeps alive', () => {
    const d0 = t.dom0;
    const g = t.guest;
    const l1 = makeTable(d0, 1);
    const page = g.allocPage();
    expect(mmuUpdate(d0.v, d0.buf, [[ptePtr(l1.mfn, 0), pte(page.mfn, PTE_P)]], g.domid).rc).to.equal(0);
    t.m.destroy(g.domid);
    expect(stat(d0, M.XENMEM_current_reservation, g.domid)).to.equal(1);
    expect(mmuUpdate(d0.v, d0.buf, [[ptePtr(l1.mfn, 0), { lo: 0, hi: 0 }]]).rc).to.equal(0);
    expect(stat(d0, M.XENMEM_current_reservation, g.domid)).to.equal(-ESRCH);
  });

  it('increase_reservation with XENMEMF_address_bits of 12 or less returns 0; a width beyond the machine is ignored', () => {
    const g = t.guest;
    const tot = dom(g).totPages;
    setMaxPages(t.dom0, g.domid, tot + 2);
    for (const bits of [1, 12]) {
      expect(reservation(g, M.XENMEM_increase_reservation, { nrExtents: 1, memFlags: M.XENMEMF_address_bits(bits) }))
        .to.equal(0);
    }
    expect(dom(g).totPages).to.equal(tot);
    // 64 MiB of RAM needs 26 address bits: a 40-bit limit restricts nothing.
    expect(reservation(g, M.XENMEM_increase_reservation, { nrExtents: 2, memFlags: M.XENMEMF_address_bits(40) }))
      .to.equal(2);
    expect(dom(g).totPages).to.equal(tot + 2);
  });

  it('increase_reservation with an unreadable struct returns 0', () => {
    const g = t.guest;
    expect(memoryOp(g, M.XENMEM_increase_reservation, pfnToVa(g.si.nrPages))).to.equal(0);
    expect(memoryOp(g, M.XENMEM_increase_reservation, RO_M2P)).to.equal(0);
  });

  // ---- populate_physmap -----------------------------------------------------------

  it('populate_physmap reads each gpfn, writes the MFN back over it, and sets M2P[mfn] = gpfn', () => {
    const g = t.guest;
    const tot = dom(g).totPages;
    setMaxPages(t.dom0, g.domid, tot + 3);
    const gpfns = [0x5000, 0x5001, 0x7123];
    fillList(g, g.buf + 256, gpfns);
    expect(reservation(g, M.XENMEM_populate_physmap, { nrExtents: 3 })).to.equal(3);
    const mfns = readList(g, g.buf + 256, 3);
    mfns.forEach((mfn, i) => {
      expect(t.m.hv.frames.owner[mfn]).to.equal(g.domid);
      expect(m2p(g, mfn)).to.deep.equal([gpfns[i], 0]);
    });
    expect(dom(g).totPages).to.equal(tot + 3);
  });

  it('populate_physmap of an order-1 extent sets M2P[mfn + j] = gpfn + j', () => {
    const g = t.guest;
    setMaxPages(t.dom0, g.domid, dom(g).totPages + 2);
    fillList(g, g.buf + 256, [0x6000]);
    expect(reservation(g, M.XENMEM_populate_physmap, { nrExtents: 1, order: 1 })).to.equal(1);
    const [mfn] = readList(g, g.buf + 256, 1);
    expect(m2p(g, mfn)).to.deep.equal([0x6000, 0]);
    expect(m2p(g, mfn + 1)).to.deep.equal([0x6001, 0]);
  });

  it('populate_physmap beyond max_pages stops early: later gpfns are left in the list', () => {
    const g = t.guest;
    const tot = dom(g).totPages;
    setMaxPages(t.dom0, g.domid, tot + 1);
    fillList(g, g.buf + 256, [0x5000, 0x5001]);
    expect(reservation(g, M.XENMEM_populate_physmap, { nrExtents: 2 })).to.equal(1);
    expect(readU64(g, g.buf + 264)).to.equal(0x5001);
    expect(dom(g).totPages).to.equal(tot + 1);
  });

  it('populate_physmap by a domU for another domain returns 0', () => {
    const o = t.other;
    const tot = dom(o).totPages;
    setMaxPages(t.dom0, o.domid, tot + 1);
    fillList(t.guest, t.guest.buf + 256, [0x5000]);
    expect(reservation(t.guest, M.XENMEM_populate_physmap, { nrExtents: 1, domid: o.domid })).to.equal(0);
    expect(readU64(t.guest, t.guest.buf + 256)).to.equal(0x5000);
    expect(dom(o).totPages).to.equal(tot);
  });

  // ---- decrease_reservation -------------------------------------------------------

  it('decrease_reservation frees unmapped frames: returns the extents done, the pool grows', () => {
    const g = t.guest;
    const tot = dom(g).totPages;
    setMaxPages(t.dom0, g.domid, tot + 3);
    expect(reservation(g, M.XENMEM_increase_reservation, { nrExtents: 3 })).to.equal(3);
    const mfns = readList(g, g.buf + 256, 3);
    const free = t.m.freeFrames;
    expect(reservation(g, M.XENMEM_decrease_reservation, { nrExtents: 3 })).to.equal(3);
    expect(t.m.freeFrames).to.equal(free + 3);
    expect(stat(g, M.XENMEM_current_reservation, X.DOMID_SELF)).to.equal(tot);
    for (const mfn of mfns) expect(t.m.hv.alloc.isFree(mfn)).to.equal(true);
  });

  it('decrease_reservation stops at a frame the domain does not own: the extents before it are done', () => {
    const g = t.guest;
    const tot = dom(g).totPages;
    setMaxPages(t.dom0, g.domid, tot + 2);
    expect(reservation(g, M.XENMEM_increase_reservation, { nrExtents: 2 })).to.equal(2);
    const [a, b] = readList(g, g.buf + 256, 2);
    const foreign = t.other.allocPage().mfn;
    fillList(g, g.buf + 256, [a, foreign, b]);
    expect(reservation(g, M.XENMEM_decrease_reservation, { nrExtents: 3 })).to.equal(1);
    expect(t.m.hv.alloc.isFree(a)).to.equal(true);
    expect(t.m.hv.frames.owner[foreign]).to.equal(t.other.domid);
    expect(t.m.hv.frames.owner[b]).to.equal(g.domid);
    expect(dom(g).totPages).to.equal(tot + 1);
  });

  it('decrease_reservation of a free frame stops the batch and returns 0', () => {
    const g = t.guest;
    let free = 0;
    while (!t.m.hv.alloc.isFree(free)) free++;
    const tot = dom(g).totPages;
    fillList(g, g.buf + 256, [free]);
    expect(reservation(g, M.XENMEM_decrease_reservation, { nrExtents: 1 })).to.equal(0);
    expect(dom(g).totPages).to.equal(tot);
    expect(t.m.hv.alloc.isFree(free)).to.equal(true);
  });

  it('decrease_reservation of a still-mapped page succeeds but the page stays in tot_pages until unmapped', () => {
    const g = t.guest;
    const page = g.allocPage(); // mapped read-write in the direct map by the builder
    g.v.store32(page.va, 0x1234);
    const tot = stat(g, M.XENMEM_current_reservation, X.DOMID_SELF);
    const free = t.m.freeFrames;
    fillList(g, g.buf + 256, [page.mfn]);
    expect(reservation(g, M.XENMEM_decrease_reservation, { nrExtents: 1 })).to.equal(1);
    // Neither unmapped nor freed: still owned, still counted, still usable.
    expect(stat(g, M.XENMEM_current_reservation, X.DOMID_SELF)).to.equal(tot);
    expect(t.m.freeFrames).to.equal(free);
    expect(t.m.hv.frames.owner[page.mfn]).to.equal(g.domid);
    expect(g.v.load32(page.va)).to.equal(0x1234);
    // Clearing the last mapping drops the last reference: now it is freed.
    expect(mmuUpdate(g.v, g.buf + 1024, [[ptePtr(g.bootL1For(page.pfn), page.pfn % 512), { lo: 0, hi: 0 }]]).rc)
      .to.equal(0);
    expect(stat(g, M.XENMEM_current_reservation, X.DOMID_SELF)).to.equal(tot - 1);
    expect(t.m.freeFrames).to.equal(free + 1);
    expect(t.m.hv.alloc.isFree(page.mfn)).to.equal(true);
  });

  it('decrease_reservation of a page mapped twice is freed only when the second mapping goes too', () => {
    const g = t.guest;
    const page = g.allocPage();
    const other = g.allocPage();
    // Map `page` a second time in place of `other`'s direct-map entry.
    const l1Other = ptePtr(g.bootL1For(other.pfn), other.pfn % 512);
    expect(mmuUpdate(g.v, g.buf + 1024, [[l1Other, pte(page.mfn, PTE_P | PTE_RW)]]).rc).to.equal(0);
    const tot = dom(g).totPages;
    fillList(g, g.buf + 256, [page.mfn]);
    expect(reservation(g, M.XENMEM_decrease_reservation, { nrExtents: 1 })).to.equal(1);
    expect(mmuUpdate(g.v, g.buf + 1024, [[ptePtr(g.bootL1For(page.pfn), page.pfn % 512), { lo: 0, hi: 0 }]]).rc)
      .to.equal(0);
    expect(dom(g).totPages).to.equal(tot);
    expect(mmuUpdate(g.v, g.buf + 1024, [[l1Other, { lo: 0, hi: 0 }]]).rc).to.equal(0);
    expect(dom(g).totPages).to.equal(tot - 1);
    expect(t.m.hv.alloc.isFree(page.mfn)).to.equal(true);
  });

  it('decrease_reservation by a domU targeting another domain returns 0 and frees nothing', () => {
    const o = t.other;
    const victim = o.allocPage().mfn;
    const tot = dom(o).totPages;
    fillList(t.guest, t.guest.buf + 256, [victim]);
    expect(reservation(t.guest, M.XENMEM_decrease_reservation, { nrExtents: 1, domid: o.domid })).to.equal(0);
    expect(dom(o).totPages).to.equal(tot);
    expect(t.m.hv.frames.owner[victim]).to.equal(o.domid);
  });

  it("decrease_reservation with extent_order above the caller's max order returns 0", () => {
    const g = t.guest;
    const page = g.allocPage();
    const tot = dom(g).totPages;
    fillList(g, g.buf + 256, [page.mfn]);
    expect(reservation(g, M.XENMEM_decrease_reservation, { nrExtents: 1, order: 10 })).to.equal(0);
    expect(dom(g).totPages).to.equal(tot);
  });

  // ---- maximum_ram_page ------------------------------------------------------------

  it('maximum_ram_page returns the number of machine frames (highest MFN + 1)', () => {
    expect(memoryOp(t.guest, M.XENMEM_maximum_ram_page, 0)).to.equal(64 * 256);
    expect(memoryOp(t.dom0, M.XENMEM_maximum_ram_page, 0)).to.equal(t.m.hv.frames.nrFrames);
  });

  it('maximum_ram_page with a start extent returns -EINVAL', () => {
    expect(memoryOp(t.guest, M.XENMEM_maximum_ram_page | (1 << M.MEMOP_EXTENT_SHIFT), 0)).to.equal(-EINVAL);
  });

  // ---- current_reservation / maximum_reservation -------------------------------------

  it('current_reservation and maximum_reservation of DOMID_SELF return tot_pages and max_pages', () => {
    const g = t.guest;
    expect(stat(g, M.XENMEM_current_reservation, X.DOMID_SELF)).to.equal(1024);
    expect(stat(g, M.XENMEM_maximum_reservation, X.DOMID_SELF)).to.equal(1024);
    setMaxPages(t.dom0, g.domid, 1500);
    expect(stat(g, M.XENMEM_maximum_reservation, X.DOMID_SELF)).to.equal(1500);
    expect(stat(g, M.XENMEM_current_reservation, X.DOMID_SELF)).to.equal(dom(g).totPages);
  });

  it('current_reservation of its own numeric domid is allowed', () => {
    const g = t.guest;
    expect(stat(g, M.XENMEM_current_reservation, g.domid)).to.equal(dom(g).totPages);
  });

  it('current_reservation of an unknown domain returns -ESRCH', () => {
    expect(stat(t.guest, M.XENMEM_current_reservation, 999)).to.equal(-ESRCH);
    expect(stat(t.dom0, M.XENMEM_maximum_reservation, 999)).to.equal(-ESRCH);
  });

  it('current_reservation and maximum_reservation by a domU about another domain return -EPERM', () => {
    const g = t.guest;
    expect(stat(g, M.XENMEM_current_reservation, t.other.domid)).to.equal(-EPERM);
    expect(stat(g, M.XENMEM_maximum_reservation, t.other.domid)).to.equal(-EPERM);
    expect(stat(g, M.XENMEM_current_reservation, 0)).to.equal(-EPERM);
  });

  it('the privileged Dom0 may read another domain\'s reservation', () => {
    setMaxPages(t.dom0, t.guest.domid, 2000);
    expect(stat(t.dom0, M.XENMEM_current_reservation, t.guest.domid)).to.equal(1024);
    expect(stat(t.dom0, M.XENMEM_maximum_reservation, t.guest.domid)).to.equal(2000);
  });

  it('current_reservation with an unreadable domid argument returns -EFAULT', () => {
    const g = t.guest;
    expect(memoryOp(g, M.XENMEM_current_reservation, pfnToVa(g.si.nrPages))).to.equal(-EFAULT);
    expect(memoryOp(g, M.XENMEM_maximum_reservation, RO_M2P)).to.equal(-EFAULT);
    expect(memoryOp(g, M.XENMEM_current_reservation, 0)).to.equal(-EFAULT);
  });

  it('current_reservation with a start extent returns -EINVAL', () => {
    const g = t.guest;
    g.v.store16(g.buf, X.DOMID_SELF);
    expect(memoryOp(g, M.XENMEM_current_reservation | (1 << M.MEMOP_EXTENT_SHIFT), g.buf)).to.equal(-EINVAL);
  });

  // ---- machphys_mfn_list -----------------------------------------------------------

  it('machphys_mfn_list writes the MFN of each 2 MiB chunk of the M2P and the count, returns 0', () => {
    const g = t.guest;
    const L = M.XEN_MACHPHYS_MFN_LIST.fields;
    const list = g.buf + 256;
    fillList(g, list, [SENTINEL, SENTINEL, SENTINEL]);
    g.v.store32(g.buf + L.max_extents.offset, 3);
    writeU64(g, g.buf + L.extent_start.offset, list);
    g.v.store32(g.buf + L.nr_extents.offset, SENTINEL);
    expect(memoryOp(g, M.XENMEM_machphys_mfn_list, g.buf)).to.equal(0);
    // 16384 frames * 8 bytes is one 2 MiB chunk.
    const chunks = t.m.hv.m2pChunks;
    expect(chunks.length).to.equal(1);
    expect(g.v.load32(g.buf + L.nr_extents.offset)).to.equal(1);
    expect(readList(g, list, 2)).to.deep.equal([chunks[0], SENTINEL]);
  });

  it('machphys_mfn_list with max_extents 0 writes nothing but nr_extents = 0', () => {
    const g = t.guest;
    const L = M.XEN_MACHPHYS_MFN_LIST.fields;
    const list = g.buf + 256;
    fillList(g, list, [SENTINEL]);
    g.v.store32(g.buf + L.max_extents.offset, 0);
    writeU64(g, g.buf + L.extent_start.offset, list);
    g.v.store32(g.buf + L.nr_extents.offset, SENTINEL);
    expect(memoryOp(g, M.XENMEM_machphys_mfn_list, g.buf)).to.equal(0);
    expect(g.v.load32(g.buf + L.nr_extents.offset)).to.equal(0);
    expect(readU64(g, list)).to.equal(SENTINEL);
  });

  it('machphys_mfn_list with an unreadable struct or an unwritable list returns -EFAULT', () => {
    const g = t.guest;
    const L = M.XEN_MACHPHYS_MFN_LIST.fields;
    expect(memoryOp(g, M.XENMEM_machphys_mfn_list, pfnToVa(g.si.nrPages))).to.equal(-EFAULT);
    g.v.store32(g.buf + L.max_extents.offset, 1);
    writeU64(g, g.buf + L.extent_start.offset, RO_M2P);
    expect(memoryOp(g, M.XENMEM_machphys_mfn_list, g.buf)).to.equal(-EFAULT);
  });

  it('machphys_mfn_list with a start extent is no known op: -ENOSYS', () => {
    const g = t.guest;
    const L = M.XEN_MACHPHYS_MFN_LIST.fields;
    g.v.store32(g.buf + L.max_extents.offset, 1);
    writeU64(g, g.buf + L.extent_start.offset, g.buf + 256);
    expect(memoryOp(g, M.XENMEM_machphys_mfn_list | (1 << M.MEMOP_EXTENT_SHIFT), g.buf)).to.equal(-ENOSYS);
  });

  // ---- unknown ---------------------------------------------------------------------

  it('an unknown memory_op subop returns -ENOSYS', () => {
    expect(memoryOp(t.guest, 40, t.guest.buf)).to.equal(-ENOSYS);
    expect(memoryOp(t.guest, 63, t.guest.buf)).to.equal(-ENOSYS);
    expect(memoryOp(t.dom0, 50, t.dom0.buf)).to.equal(-ENOSYS);
  });
});
