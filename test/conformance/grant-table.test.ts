// Conformance: HYPERVISOR_grant_table_op (common/grant_table.c and x86/pv/grant_table.c,
// Xen 4.17, version 1). One test per rule, named after it and the GNTST status or errno.
// The granter is t.guest, which maps its grant frame at gtVa; the grantee is t.other.
// After each test the invariant checker must find nothing.

import { expect } from 'chai';
import {
  endForeignAccess, entryVa, getVersion, gnttabCopy, gnttabOp, grantAccess, grantFlags, mapGrantRef, mapGrantRefs,
  querySize, setupTable, setVersion, swapGrantRef, unmapAndReplace, unmapGrantRef, unmapGrantRefs,
} from '../../guests/lib/grant-calls.ts';
import {
  PTE_A, PTE_D, PTE_P, PTE_RW, mmuextOp, pte, updateVaMapping,
} from '../../guests/lib/xen-calls.ts';
import { OWNER_NONE, OWNER_XEN_PRIVATE } from '../../hypervisor/arch/frame-table.ts';
import { EFAULT, EILSEQ, EINVAL, ENOSYS, EOPNOTSUPP, EPERM, ESRCH } from '../../hypervisor/public/errno.ts';
import * as G from '../../hypervisor/public/grant-table.ts';
import { GuestTrap, TRAP_page_fault } from '../../hypervisor/public/vcpu.ts';
import { DOMID_SELF, MMUEXT_PIN_L1_TABLE, MMUEXT_UNPIN_TABLE } from '../../hypervisor/public/xen.ts';
import { bootKernel, bootTestMachine, makeTable, type GuestKernel, type Page, type TestMachine } from '../support/fixture.ts';

const HOST = G.GNTMAP_host_map;
const DEV = G.GNTMAP_device_map;
const RO = G.GNTMAP_readonly;

describe('grant tables (GNTTABOP_*, version 1)', () => {
  let t: TestMachine;
  let gr: GuestKernel;
  let ge: GuestKernel;
  /** The granter's mapping of its first grant-table frame. */
  let gtVa: number;
  /** A page of the granter's, holding 0x1234 at offset 0. */
  let data: Page;

  beforeEach(() => {
    t = bootTestMachine();
    gr = t.guest;
    ge = t.other;
    const s = setupTable(gr.v, gr.buf, 1);
    expect([s.rc, s.status]).to.deep.equal([0, G.GNTST_okay]);
    gtVa = gr.allocPage().va;
    expect(updateVaMapping(gr.v, gtVa, pte(s.frames[0], PTE_P | PTE_RW | PTE_A | PTE_D), 0)).to.equal(0);
    data = gr.allocPage();
    gr.v.store32(data.va, 0x1234);
  });

  afterEach(() => t.check());

  /** Grants `ref` on the data page (or `frame`) to the grantee. */
  const grant = (ref: number, o: { frame?: number; to?: number; ro?: boolean; extra?: number } = {}): void =>
    grantAccess(gr.v, gtVa, ref, o.to ?? ge.domid, o.frame ?? data.mfn, o.ro ?? false, o.extra ?? 0);

  /** The grantee maps `ref` of the granter at a fresh page's address. */
  const mapAt = (flags: number, ref: number, k = ge, dom = gr.domid): { va: number; rc: number; status: number; handle: number; devBusAddr: number } => {
    const va = k.allocPage().va;
    return { va, ...mapGrantRef(k.v, k.buf, { hostAddr: va, flags, ref, dom }) };
  };

  const pinOf = (ref: number): number => t.m.domain(gr.domid)!.grants!.pin[ref];

  // ---- dispatch ---------------------------------------------------------------------------

  describe('dispatch', () => {
    it('a count of 2^31 or more returns -EINVAL', () => {
      expect(gnttabOp(ge.v, G.GNTTABOP_map_grant_ref, ge.buf, 0x80000000)).to.equal(-EINVAL);
    });

    it('continuation bits above bit 12 on any command but cache_flush return -EINVAL', () => {
      expect(gnttabOp(ge.v, G.GNTTABOP_map_grant_ref | (1 << 12), ge.buf, 1)).to.equal(-EINVAL);
    });

    it('an unknown command, and dump_table, return -ENOSYS', () => {
      expect(gnttabOp(ge.v, 13, ge.buf, 1)).to.equal(-ENOSYS);
      expect(gnttabOp(ge.v, G.GNTTABOP_dump_table, ge.buf, 1)).to.equal(-ENOSYS);
    });

    it('transfer returns -EOPNOTSUPP (a host booted with gnttab=transfer=0)', () => {
      expect(gnttabOp(ge.v, G.GNTTABOP_transfer, ge.buf, 1)).to.equal(-EOPNOTSUPP);
    });

    it("an array in Xen's range returns -EFAULT before any element is done", () => {
      grant(8);
      expect(gnttabOp(ge.v, G.GNTTABOP_map_grant_ref, -0x7fff00000000, 1)).to.equal(-EFAULT);
      expect(pinOf(8)).to.equal(0);
    });

    it('count 0 does nothing and returns 0', () => {
      expect(gnttabOp(ge.v, G.GNTTABOP_map_grant_ref, ge.buf, 0)).to.equal(0);
    });

    it('an element that cannot be read stops the batch with -EFAULT; earlier elements stay done', () => {
      grant(8);
      const q = ge.allocPage();
      const p = ge.allocPage();
      expect(p.va).to.equal(q.va + 4096);
      expect(updateVaMapping(ge.v, p.va, { lo: 0, hi: 0 }, 2)).to.equal(0);
      // Element 0 in the last 32 bytes of q, element 1 in the unmapped page p.
      const at = p.va - G.GNTTAB_MAP_GRANT_REF.size;
      const host = ge.allocPage().va;
      expect(mapGrantRefs(ge.v, at, [{ hostAddr: host, flags: HOST, ref: 8, dom: gr.domid }]).results[0].status).to.equal(0);
      expect(gnttabOp(ge.v, G.GNTTABOP_map_grant_ref, at, 2)).to.equal(-EFAULT);
      expect(pinOf(8)).to.equal(2); // the first map, and element 0 again
    });
  });

  // ---- setup_table, query_size, versions ---------------------------------------------------

  describe('setup_table and query_size', () => {
    it('a table starts with one frame of a maximum of 64: query_size', () => {
      const q = querySize(ge.v, ge.buf);
      expect(q).to.deep.equal({ rc: 0, status: G.GNTST_okay, nrFrames: 1, maxNrFrames: 64 });
    });

    it('setup_table and query_size with count other than 1 return -EINVAL', () => {
      expect(setupTable(ge.v, ge.buf, 1, DOMID_SELF, 2).rc).to.equal(-EINVAL);
      expect(querySize(ge.v, ge.buf, DOMID_SELF, 0).rc).to.equal(-EINVAL);
    });

    it('setup_table for an unknown domain gives GNTST_bad_domain', () => {
      expect(setupTable(ge.v, ge.buf, 1, 999).status).to.equal(G.GNTST_bad_domain);
      expect(querySize(ge.v, ge.buf, 999).status).to.equal(G.GNTST_bad_domain);
    });

    it("setup_table and query_size of another domain give GNTST_permission_denied, except to the control domain", () => {
      expect(setupTable(ge.v, ge.buf, 1, gr.domid).status).to.equal(G.GNTST_permission_denied);
      expect(querySize(ge.v, ge.buf, gr.domid).status).to.equal(G.GNTST_permission_denied);
      expect(querySize(t.dom0.v, t.dom0.buf, gr.domid).status).to.equal(G.GNTST_okay);
    });

    it('setup_table beyond max_grant_frames gives GNTST_general_error and grows nothing', () => {
      expect(setupTable(ge.v, ge.buf, 65).status).to.equal(G.GNTST_general_error);
      expect(querySize(ge.v, ge.buf).nrFrames).to.equal(1);
    });

    it("setup_table grows the table and lists the frames' MFNs: Xen-heap pages of the domain's own, mappable writable", () => {
      const s = setupTable(ge.v, ge.buf, 3);
      expect(s.status).to.equal(G.GNTST_okay);
      expect(new Set(s.frames).size).to.equal(3);
      for (const f of s.frames) expect(t.m.hv.frames.owner[f]).to.equal(ge.domid);
      expect(querySize(ge.v, ge.buf).nrFrames).to.equal(3);
      const va = ge.allocPage().va;
      expect(updateVaMapping(ge.v, va, pte(s.frames[2], PTE_P | PTE_RW | PTE_A | PTE_D), 0)).to.equal(0);
      // Entry 1024 (the third frame's first) is now mappable.
      grantAccess(ge.v, va - 1024 * 8 + 0, 1024, gr.domid, ge.allocPage().mfn);
      expect(mapAt(HOST, 1024, gr, ge.domid).status).to.equal(G.GNTST_okay);
    });

    it('setup_table with a frame_list outside guest space returns -EFAULT', () => {
      ge.v.write(ge.buf, new Uint8Array(24));
      ge.v.store16(ge.buf, DOMID_SELF);
      ge.v.store32(ge.buf + 4, 1);
      ge.v.store32(ge.buf + 20, 0xffff8000);
      expect(gnttabOp(ge.v, G.GNTTABOP_setup_table, ge.buf, 1)).to.equal(-EFAULT);
    });

    it('setup_table with an unwritable frame_list gives GNTST_bad_virt_addr', () => {
      ge.v.write(ge.buf, new Uint8Array(24));
      ge.v.store16(ge.buf, DOMID_SELF);
      ge.v.store32(ge.buf + 4, 1);
      ge.v.store32(ge.buf + 16, 0x1000); // canonical, unmapped
      expect(gnttabOp(ge.v, G.GNTTABOP_setup_table, ge.buf, 1)).to.equal(0);
      expect(ge.v.load16(ge.buf + 8)).to.equal(G.GNTST_bad_virt_addr & 0xffff);
    });
  });

  describe('versions and status frames', () => {
    it('set_version 1 returns 0 and echoes version 1; get_version reports 1', () => {
      expect(setVersion(ge.v, ge.buf, 1)).to.deep.equal({ rc: 0, version: 1 });
      expect(getVersion(ge.v, ge.buf)).to.deep.equal({ rc: 0, version: 1 });
    });

    it('set_version 2 returns -ENOSYS (version 1 only, as in QEMU), still echoing 1', () => {
      expect(setVersion(ge.v, ge.buf, 2)).to.deep.equal({ rc: -ENOSYS, version: 1 });
    });

    it('set_version of anything but 1 or 2 returns -EINVAL', () => {
      expect(setVersion(ge.v, ge.buf, 0).rc).to.equal(-EINVAL);
      expect(setVersion(ge.v, ge.buf, 3).rc).to.equal(-EINVAL);
    });

    it("get_version of an unknown domain is -ESRCH, of another domain -EPERM unless privileged", () => {
      expect(getVersion(ge.v, ge.buf, 999).rc).to.equal(-ESRCH);
      expect(getVersion(ge.v, ge.buf, gr.domid).rc).to.equal(-EPERM);
      expect(getVersion(t.dom0.v, t.dom0.buf, gr.domid)).to.deep.equal({ rc: 0, version: 1 });
    });

    it('get_status_frames: version 1 has none, so asking for one is GNTST_general_error; zero is okay', () => {
      const ask = (nr: number): number => {
        ge.v.write(ge.buf, new Uint8Array(16));
        ge.v.store32(ge.buf, nr);
        ge.v.store16(ge.buf + 4, DOMID_SELF);
        ge.v.store32(ge.buf + 8, (ge.buf + 64) >>> 0);
        ge.v.store32(ge.buf + 12, Math.floor((ge.buf + 64) / 4294967296) >>> 0);
        expect(gnttabOp(ge.v, G.GNTTABOP_get_status_frames, ge.buf, 1)).to.equal(0);
        return (ge.v.load16(ge.buf + 6) << 16) >> 16;
      };
      expect(ask(1)).to.equal(G.GNTST_general_error);
      expect(ask(0)).to.equal(G.GNTST_okay);
    });
  });

  // ---- map_grant_ref -------------------------------------------------------------------------

  describe('map_grant_ref', () => {
    it('a map installs a PTE in the grantee: both sides see the same bytes; GTF_reading|GTF_writing are set', () => {
      grant(8);
      const m = mapAt(HOST, 8);
      expect([m.rc, m.status]).to.deep.equal([0, G.GNTST_okay]);
      expect(ge.v.load32(m.va)).to.equal(0x1234);
      ge.v.store32(m.va + 4, 0xbeef);
      expect(gr.v.load32(data.va + 4)).to.equal(0xbeef);
      expect(grantFlags(gr.v, gtVa, 8)).to.equal(G.GTF_permit_access | G.GTF_reading | G.GTF_writing);
      expect(m.devBusAddr).to.equal(data.mfn * 4096);
    });

    it('a read-only map sets only GTF_reading and its PTE refuses writes (#PF)', () => {
      grant(8);
      const m = mapAt(HOST | RO, 8);
      expect(m.status).to.equal(G.GNTST_okay);
      expect(grantFlags(gr.v, gtVa, 8)).to.equal(G.GTF_permit_access | G.GTF_reading);
      expect(() => ge.v.store32(m.va, 1)).to.throw(GuestTrap).with.property('vector', TRAP_page_fault);
    });

    it('neither host_map nor device_map gives GNTST_bad_gntref', () => {
      grant(8);
      expect(mapAt(RO, 8).status).to.equal(G.GNTST_bad_gntref);
    });

    it('DOMID_SELF (not a numeric id) and an unknown domain give GNTST_bad_domain', () => {
      grant(8);
      expect(mapAt(HOST, 8, ge, DOMID_SELF).status).to.equal(G.GNTST_bad_domain);
      expect(mapAt(HOST, 8, ge, 999).status).to.equal(G.GNTST_bad_domain);
    });

    it('a domain may map its own grant by its numeric id', () => {
      grantAccess(gr.v, gtVa, 8, gr.domid, data.mfn);
      const m = mapAt(HOST, 8, gr, gr.domid);
      expect(m.status).to.equal(G.GNTST_okay);
      expect(gr.v.load32(m.va)).to.equal(0x1234);
    });

    it('no maptrack handle left gives GNTST_no_space, before the ref is checked', () => {
      const k = bootKernel(t.m, false, { memoryMb: 4, maxMaptrackFrames: 0 });
      expect(mapAt(HOST, 8, k).status).to.equal(G.GNTST_no_space);
      expect(mapAt(HOST, 100000, k).status).to.equal(G.GNTST_no_space);
    });

    it("a ref beyond the granter's current entries gives GNTST_bad_gntref; growing the table makes it valid", () => {
      expect(mapAt(HOST, 512).status).to.equal(G.GNTST_bad_gntref);
      const s = setupTable(gr.v, gr.buf, 2);
      const va2 = gr.allocPage().va;
      expect(updateVaMapping(gr.v, va2, pte(s.frames[1], PTE_P | PTE_RW | PTE_A | PTE_D), 0)).to.equal(0);
      grantAccess(gr.v, va2 - 512 * 8, 512, ge.domid, data.mfn);
      expect(mapAt(HOST, 512).status).to.equal(G.GNTST_okay);
    });

    it('an entry that is not permit_access, or names another domain, gives GNTST_general_error', () => {
      expect(mapAt(HOST, 8).status).to.equal(G.GNTST_general_error); // GTF_invalid
      grant(9, { to: t.dom0.domid });
      expect(mapAt(HOST, 9).status).to.equal(G.GNTST_general_error);
      gr.v.store16(entryVa(gtVa, 10) + 2, ge.domid);
      gr.v.store32(entryVa(gtVa, 10) + 4, data.mfn);
      gr.v.store16(entryVa(gtVa, 10), G.GTF_accept_transfer);
      expect(mapAt(HOST, 10).status).to.equal(G.GNTST_general_error);
      expect(grantFlags(gr.v, gtVa, 9)).to.equal(G.GTF_permit_access);
    });

    it('a sub_page entry cannot be mapped: GNTST_general_error', () => {
      grant(8, { extra: G.GTF_sub_page });
      expect(mapAt(HOST | RO, 8).status).to.equal(G.GNTST_general_error);
    });

    it('a writable map of a GTF_readonly entry gives GNTST_general_error; a read-only map succeeds', () => {
      grant(8, { ro: true });
      expect(mapAt(HOST, 8).status).to.equal(G.GNTST_general_error);
      expect(mapAt(HOST | RO, 8).status).to.equal(G.GNTST_okay);
      // Already pinned: the readonly rule still applies.
      expect(mapAt(DEV, 8).status).to.equal(G.GNTST_general_error);
    });

    it('an entry pinned by another grantee gives GNTST_general_error', () => {
      grant(8, { to: t.dom0.domid });
      expect(mapAt(HOST, 8, t.dom0).status).to.equal(G.GNTST_okay);
      grant(8);
      expect(mapAt(HOST, 8).status).to.equal(G.GNTST_general_error);
    });

    it("a frame the granter does not own gives GNTST_bad_page, and the flags set for it are cleared again", () => {
      grant(8, { frame: ge.allocPage().mfn });
      expect(mapAt(HOST, 8).status).to.equal(G.GNTST_bad_page);
      expect(grantFlags(gr.v, gtVa, 8)).to.equal(G.GTF_permit_access);
      expect(pinOf(8)).to.equal(0);
    });

    it("a writable map of the granter's page table gives GNTST_general_error; a read-only one succeeds", () => {
      const l1 = makeTable(gr, 1);
      grant(8, { frame: l1.mfn });
      expect(mapAt(HOST, 8).status).to.equal(G.GNTST_general_error);
      expect(grantFlags(gr.v, gtVa, 8)).to.equal(G.GTF_permit_access);
      expect(mapAt(HOST | RO, 8).status).to.equal(G.GNTST_okay);
    });

    it('a host address whose L2 entry is not present gives GNTST_general_error (never bad_virt_addr)', () => {
      grant(8);
      const r = mapGrantRef(ge.v, ge.buf, { hostAddr: 0x40000000, flags: HOST, ref: 8, dom: gr.domid });
      expect(r.status).to.equal(G.GNTST_general_error);
      expect(pinOf(8)).to.equal(0);
      expect(grantFlags(gr.v, gtVa, 8)).to.equal(G.GTF_permit_access);
    });

    it('contains_pte to a frame that is not one of the caller\'s L1 tables gives GNTST_general_error', () => {
      grant(8);
      const p = ge.allocPage();
      const r = mapGrantRef(ge.v, ge.buf, { hostAddr: p.mfn * 4096 + 16, flags: HOST | G.GNTMAP_contains_pte, ref: 8, dom: gr.domid });
      expect(r.status).to.equal(G.GNTST_general_error);
    });

    it('contains_pte writes the PTE at the machine address given', () => {
      grant(8);
      const p = ge.allocPage();
      const l1 = ge.bootL1For(p.pfn);
      const r = mapGrantRef(ge.v, ge.buf, { hostAddr: l1 * 4096 + (p.pfn % 512) * 8, flags: HOST | G.GNTMAP_contains_pte, ref: 8, dom: gr.domid });
      expect(r.status).to.equal(G.GNTST_okay);
      expect(ge.v.load32(p.va)).to.equal(0x1234);
    });

    it('a device map returns the bus address (MFN << 12) and installs no PTE', () => {
      grant(8);
      const m = mapAt(DEV, 8);
      expect(m.status).to.equal(G.GNTST_okay);
      expect(m.devBusAddr).to.equal(data.mfn * 4096);
      expect(ge.v.load32(m.va)).to.not.equal(0x1234 + 1); // its own page, still mapped
      expect(t.m.hv.frames.count[data.mfn]).to.be.greaterThan(1);
    });

    it('mapping the same ref twice gives two handles, numbered from 0', () => {
      grant(8);
      const a = mapAt(HOST, 8);
      const b = mapAt(HOST, 8);
      expect([a.handle, b.handle]).to.deep.equal([0, 1]);
    });

    it('a pin counter at 128 refuses further pins of that kind: GNTST_general_error', () => {
      grant(8);
      for (let i = 0; i < 128; i++) expect(mapAt(DEV | RO, 8).status).to.equal(G.GNTST_okay);
      expect(mapAt(DEV | RO, 8).status).to.equal(G.GNTST_general_error);
      expect(mapAt(HOST | RO, 8).status).to.equal(G.GNTST_okay); // another counter
    });
  });

  // ---- unmap_grant_ref -----------------------------------------------------------------------

  describe('unmap_grant_ref', () => {
    it('unmap clears the PTE and the flags; the granter may then revoke, but not while mapped', () => {
      grant(8);
      const m = mapAt(HOST, 8);
      expect(endForeignAccess(gr.v, gtVa, 8)).to.equal(false);
      expect(unmapGrantRef(ge.v, ge.buf, { hostAddr: m.va, devBusAddr: 0, handle: m.handle })).to.deep.equal({ rc: 0, status: G.GNTST_okay });
      expect(grantFlags(gr.v, gtVa, 8)).to.equal(G.GTF_permit_access);
      expect(() => ge.v.load32(m.va)).to.throw(GuestTrap).with.property('vector', TRAP_page_fault);
      expect(endForeignAccess(gr.v, gtVa, 8)).to.equal(true);
      expect(pinOf(8)).to.equal(0);
    });

    it('a handle beyond the maptrack limit, or already unmapped, gives GNTST_bad_handle', () => {
      grant(8);
      expect(unmapGrantRef(ge.v, ge.buf, { hostAddr: 0, devBusAddr: 0, handle: 5000 }).status).to.equal(G.GNTST_bad_handle);
      const m = mapAt(HOST, 8);
      expect(unmapGrantRef(ge.v, ge.buf, { hostAddr: m.va, devBusAddr: 0, handle: m.handle }).status).to.equal(G.GNTST_okay);
      expect(unmapGrantRef(ge.v, ge.buf, { hostAddr: m.va, devBusAddr: 0, handle: m.handle }).status).to.equal(G.GNTST_bad_handle);
    });

    it('a dev_bus_addr that is not the frame gives GNTST_bad_dev_addr and unmaps nothing', () => {
      grant(8);
      const m = mapAt(DEV | HOST, 8);
      expect(unmapGrantRef(ge.v, ge.buf, { hostAddr: m.va, devBusAddr: (data.mfn + 1) * 4096, handle: m.handle }).status)
        .to.equal(G.GNTST_bad_dev_addr);
      expect(ge.v.load32(m.va)).to.equal(0x1234);
    });

    it('a host address whose PTE does not map the frame gives GNTST_general_error', () => {
      grant(8);
      const m = mapAt(HOST, 8);
      expect(unmapGrantRef(ge.v, ge.buf, { hostAddr: ge.allocPage().va, devBusAddr: 0, handle: m.handle }).status)
        .to.equal(G.GNTST_general_error);
      expect(ge.v.load32(m.va)).to.equal(0x1234);
    });

    it('host_addr 0 leaves the host part mapped: status okay, the handle stays live', () => {
      grant(8);
      const m = mapAt(HOST, 8);
      expect(unmapGrantRef(ge.v, ge.buf, { hostAddr: 0, devBusAddr: 0, handle: m.handle }).status).to.equal(G.GNTST_okay);
      expect(ge.v.load32(m.va)).to.equal(0x1234);
      expect(unmapGrantRef(ge.v, ge.buf, { hostAddr: m.va, devBusAddr: 0, handle: m.handle }).status).to.equal(G.GNTST_okay);
    });

    it('GTF_writing stays while any writable pin remains; GTF_reading until the last pin goes', () => {
      grant(8);
      const w = mapAt(HOST, 8);
      const r = mapAt(HOST | RO, 8);
      expect(unmapGrantRef(ge.v, ge.buf, { hostAddr: r.va, devBusAddr: 0, handle: r.handle }).status).to.equal(G.GNTST_okay);
      expect(grantFlags(gr.v, gtVa, 8)).to.equal(G.GTF_permit_access | G.GTF_reading | G.GTF_writing);
      const r2 = mapAt(HOST | RO, 8);
      expect(unmapGrantRef(ge.v, ge.buf, { hostAddr: w.va, devBusAddr: 0, handle: w.handle }).status).to.equal(G.GNTST_okay);
      expect(grantFlags(gr.v, gtVa, 8)).to.equal(G.GTF_permit_access | G.GTF_reading);
      expect(unmapGrantRef(ge.v, ge.buf, { hostAddr: r2.va, devBusAddr: 0, handle: r2.handle }).status).to.equal(G.GNTST_okay);
      expect(grantFlags(gr.v, gtVa, 8)).to.equal(G.GTF_permit_access);
    });

    it('freed handles are reused last (FIFO), after the free ones', () => {
      grant(8);
      const a = mapAt(DEV, 8);
      const b = mapAt(DEV, 8);
      const dev = data.mfn * 4096;
      expect(unmapGrantRefs(ge.v, ge.buf, [{ hostAddr: 0, devBusAddr: dev, handle: a.handle }]).statuses).to.deep.equal([0]);
      expect(mapAt(DEV, 8).handle).to.equal(2);
      expect(b.handle).to.equal(1);
    });
  });

  // ---- the XSAs ------------------------------------------------------------------------------

  describe('XSAs', () => {
    it('XSA-224: host+device writable, unmapped in two calls, drops exactly the references taken', () => {
      const page = gr.allocPage();
      grantAccess(gr.v, gtVa, 8, gr.domid, page.mfn);
      const m = mapAt(HOST | DEV, 8, gr, gr.domid);
      expect(m.status).to.equal(G.GNTST_okay);
      expect(unmapGrantRef(gr.v, gr.buf, { hostAddr: m.va, devBusAddr: 0, handle: m.handle }).status).to.equal(G.GNTST_okay);
      expect(unmapGrantRef(gr.v, gr.buf, { hostAddr: 0, devBusAddr: page.mfn * 4096, handle: m.handle }).status).to.equal(G.GNTST_okay);
      // The guest's own RW mapping still holds a writable type reference.
      expect(mmuextOp(gr.v, gr.buf, [{ cmd: MMUEXT_PIN_L1_TABLE, arg1: page.mfn }]).rc).to.equal(-EINVAL);
    });

    it('XSA-227: a misaligned contains_pte address gives GNTST_general_error and corrupts no PTE', () => {
      grantAccess(gr.v, gtVa, 8, gr.domid, data.mfn);
      const a = gr.allocPage();
      const b = gr.allocPage();
      gr.v.store32(a.va, 0xaaaa);
      const l1 = gr.bootL1For(b.pfn);
      expect(updateVaMapping(gr.v, b.va, { lo: 0, hi: 0 }, 2)).to.equal(0);
      const r = mapGrantRef(gr.v, gr.buf, { hostAddr: l1 * 4096 + (b.pfn % 512) * 8 - 2, flags: HOST | G.GNTMAP_contains_pte, ref: 8, dom: gr.domid });
      expect([r.rc, r.status]).to.deep.equal([0, G.GNTST_general_error]);
      expect(gr.v.load32(a.va)).to.equal(0xaaaa);
    });

    it('XSA-234: unmapping a writable grant through a read-only PTE fails (general_error) and keeps its type reference', () => {
      const f1 = gr.allocPage();
      const f2 = gr.allocPage();
      expect(updateVaMapping(gr.v, f1.va, pte(f1.mfn, PTE_P | PTE_A), 2)).to.equal(0);
      grantAccess(gr.v, gtVa, 8, gr.domid, f1.mfn);
      grantAccess(gr.v, gtVa, 9, gr.domid, f2.mfn);
      const va4 = gr.allocPage().va;
      const va8 = gr.allocPage().va;
      const m1 = mapGrantRef(gr.v, gr.buf, { hostAddr: va4, flags: HOST, ref: 8, dom: gr.domid });
      const m2 = mapGrantRef(gr.v, gr.buf, { hostAddr: va8, flags: HOST | RO, ref: 9, dom: gr.domid });
      expect([m1.status, m2.status]).to.deep.equal([0, 0]);
      expect(unmapAndReplace(gr.v, gr.buf, va8, va4, m2.handle)).to.deep.equal({ rc: 0, status: G.GNTST_okay });
      expect(updateVaMapping(gr.v, va4, pte(f1.mfn, PTE_P | PTE_A), 2)).to.equal(0);
      expect(unmapGrantRef(gr.v, gr.buf, { hostAddr: va4, devBusAddr: 0, handle: m1.handle })).to.deep.equal({ rc: 0, status: G.GNTST_general_error });
      expect(mmuextOp(gr.v, gr.buf, [{ cmd: MMUEXT_PIN_L1_TABLE, arg1: f1.mfn }]).rc).to.equal(-EINVAL);
      // The grant PTE moved to va8 by unmap_and_replace is still a proper unmap target.
      expect(unmapGrantRef(gr.v, gr.buf, { hostAddr: va8, devBusAddr: 0, handle: m1.handle }).status).to.equal(G.GNTST_okay);
      expect(mmuextOp(gr.v, gr.buf, [{ cmd: MMUEXT_PIN_L1_TABLE, arg1: f1.mfn }]).rc).to.equal(0);
      expect(mmuextOp(gr.v, gr.buf, [{ cmd: MMUEXT_UNPIN_TABLE, arg1: f1.mfn }]).rc).to.equal(0);
    });

    it("XSA-316: mapping another domain's entry not granted to the caller gives GNTST_general_error", () => {
      expect(mapAt(HOST, 8, gr, t.dom0.domid).status).to.equal(G.GNTST_general_error);
    });
  });

  // ---- copy ---------------------------------------------------------------------------------

  describe('copy', () => {
    const SRC = G.GNTCOPY_source_gref;
    const DST = G.GNTCOPY_dest_gref;

    it('copies from a granted page into one of the caller\'s frames, and back; the grant is unpinned after', () => {
      grant(8);
      const mine = ge.allocPage();
      let r = gnttabCopy(ge.v, ge.buf, [{ source: { refOrGmfn: 8, domid: gr.domid, offset: 0 }, dest: { refOrGmfn: mine.mfn, domid: DOMID_SELF, offset: 100 }, len: 4, flags: SRC }]);
      expect(r).to.deep.equal({ rc: 0, statuses: [0] });
      expect(ge.v.load32(mine.va + 100)).to.equal(0x1234);
      ge.v.store32(mine.va, 0x5678);
      r = gnttabCopy(ge.v, ge.buf, [{ source: { refOrGmfn: mine.mfn, domid: DOMID_SELF, offset: 0 }, dest: { refOrGmfn: 8, domid: gr.domid, offset: 8 }, len: 4, flags: DST }]);
      expect(r.statuses).to.deep.equal([0]);
      expect(gr.v.load32(data.va + 8)).to.equal(0x5678);
      expect(pinOf(8)).to.equal(0);
      expect(grantFlags(gr.v, gtVa, 8)).to.equal(G.GTF_permit_access);
    });

    it('a frame (not a gref) of another domain gives GNTST_permission_denied', () => {
      const r = gnttabCopy(ge.v, ge.buf, [{ source: { refOrGmfn: data.mfn, domid: gr.domid, offset: 0 }, dest: { refOrGmfn: ge.allocPage().mfn, domid: DOMID_SELF, offset: 0 }, len: 4, flags: 0 }]);
      expect(r.statuses).to.deep.equal([G.GNTST_permission_denied]);
    });

    it('an unknown domain gives GNTST_bad_domain, even with offsets beyond the page', () => {
      const r = gnttabCopy(ge.v, ge.buf, [{ source: { refOrGmfn: 8, domid: 999, offset: 4000 }, dest: { refOrGmfn: ge.allocPage().mfn, domid: DOMID_SELF, offset: 0 }, len: 200, flags: SRC }]);
      expect(r.statuses).to.deep.equal([G.GNTST_bad_domain]);
    });

    it('a ref beyond the table gives GNTST_bad_gntref', () => {
      const r = gnttabCopy(ge.v, ge.buf, [{ source: { refOrGmfn: 9999, domid: gr.domid, offset: 0 }, dest: { refOrGmfn: ge.allocPage().mfn, domid: DOMID_SELF, offset: 0 }, len: 4, flags: SRC }]);
      expect(r.statuses).to.deep.equal([G.GNTST_bad_gntref]);
    });

    it('offset + len beyond the page gives GNTST_bad_copy_arg (after the grants are checked) and releases the grant', () => {
      grant(8);
      const r = gnttabCopy(ge.v, ge.buf, [{ source: { refOrGmfn: 8, domid: gr.domid, offset: 4000 }, dest: { refOrGmfn: ge.allocPage().mfn, domid: DOMID_SELF, offset: 0 }, len: 200, flags: SRC }]);
      expect(r.statuses).to.deep.equal([G.GNTST_bad_copy_arg]);
      expect(pinOf(8)).to.equal(0);
      expect(grantFlags(gr.v, gtVa, 8)).to.equal(G.GTF_permit_access);
    });

    it('a GTF_readonly entry as destination gives GNTST_general_error', () => {
      grant(8, { ro: true });
      const mine = ge.allocPage();
      const r = gnttabCopy(ge.v, ge.buf, [{ source: { refOrGmfn: mine.mfn, domid: DOMID_SELF, offset: 0 }, dest: { refOrGmfn: 8, domid: gr.domid, offset: 0 }, len: 4, flags: DST }]);
      expect(r.statuses).to.deep.equal([G.GNTST_general_error]);
    });

    it('a page table as destination gives GNTST_general_error', () => {
      const l1 = makeTable(ge, 1);
      grant(8);
      const r = gnttabCopy(ge.v, ge.buf, [{ source: { refOrGmfn: 8, domid: gr.domid, offset: 0 }, dest: { refOrGmfn: l1.mfn, domid: DOMID_SELF, offset: 0 }, len: 8, flags: SRC }]);
      expect(r.statuses).to.deep.equal([G.GNTST_general_error]);
      expect(pinOf(8)).to.equal(0);
    });

    it("a frame number that is not the caller's gives GNTST_bad_page", () => {
      const r = gnttabCopy(ge.v, ge.buf, [{ source: { refOrGmfn: data.mfn, domid: DOMID_SELF, offset: 0 }, dest: { refOrGmfn: ge.allocPage().mfn, domid: DOMID_SELF, offset: 0 }, len: 4, flags: 0 }]);
      expect(r.statuses).to.deep.equal([G.GNTST_bad_page]);
    });

    it('length 0 succeeds', () => {
      grant(8);
      const r = gnttabCopy(ge.v, ge.buf, [{ source: { refOrGmfn: 8, domid: gr.domid, offset: 0 }, dest: { refOrGmfn: ge.allocPage().mfn, domid: DOMID_SELF, offset: 0 }, len: 0, flags: SRC }]);
      expect(r.statuses).to.deep.equal([0]);
    });
  });

  // ---- cache_flush (x86) ------------------------------------------------------------------------

  describe('cache_flush', () => {
    const CLEAN = G.GNTTAB_CACHE_CLEAN;
    const INVAL = G.GNTTAB_CACHE_INVAL;
    const F = G.GNTTAB_CACHE_FLUSH.fields;
    const SIZE = G.GNTTAB_CACHE_FLUSH.size;
    interface Flush { mfn: number; offset?: number; length?: number; op?: number; addrBits?: number }

    /**
     * Writes `items` as struct gnttab_cache_flush at `at` in k's memory and issues the op,
     * with `opaque` (a ref, a multiple of 4096) as the continuation argument in cmd's bits 12-31.
     */
    const flush = (k: GuestKernel, items: readonly Flush[], opaque = 0, at = k.buf): number => {
      items.forEach((it, i) => {
        const e = at + i * SIZE;
        const addr = it.mfn * 4096 + (it.addrBits ?? 0);
        k.v.store64(e + F['a.dev_bus_addr'].offset, addr >>> 0, Math.floor(addr / 4294967296) >>> 0);
        k.v.store16(e + F.offset.offset, it.offset ?? 0);
        k.v.store16(e + F.length.offset, it.length ?? 4096);
        k.v.store32(e + F.op.offset, it.op ?? CLEAN);
      });
      return gnttabOp(k.v, G.GNTTABOP_cache_flush | opaque, at, items.length);
    };

    /** Grows the granter's table to 9 frames and grants, as ref 4100, a second page (holding 0x5678) to the grantee. */
    const grantHighRef = (): Page => {
      const s = setupTable(gr.v, gr.buf, 9);
      expect(s.status).to.equal(G.GNTST_okay);
      const va = gr.allocPage().va;
      expect(updateVaMapping(gr.v, va, pte(s.frames[8], PTE_P | PTE_RW | PTE_A | PTE_D), 0)).to.equal(0);
      const page = gr.allocPage();
      gr.v.store32(page.va, 0x5678);
      grantAccess(gr.v, va, 4100 - 8 * 512, ge.domid, page.mfn, false, 0);
      return page;
    };

    it('CLEAN and CLEAN|INVAL return 0 on a page the caller maps by grant (host or device map) and on its own pages', () => {
      grant(8);
      const other = gr.allocPage();
      grant(9, { frame: other.mfn });
      mapAt(HOST, 8);
      mapAt(DEV, 9);
      expect(flush(ge, [{ mfn: data.mfn }])).to.equal(0);
      expect(flush(ge, [{ mfn: data.mfn, op: CLEAN | INVAL }])).to.equal(0);
      expect(flush(ge, [{ mfn: other.mfn, offset: 100, length: 8 }])).to.equal(0);
      expect(flush(ge, [{ mfn: ge.allocPage().mfn, op: CLEAN | INVAL }])).to.equal(0);
      expect(flush(gr, [{ mfn: data.mfn }])).to.equal(0);
    });

    it('INVAL alone returns -EOPNOTSUPP (x86 cannot invalidate without writing back), after the grant check', () => {
      grant(8);
      expect(flush(ge, [{ mfn: data.mfn, op: INVAL }])).to.equal(-EINVAL);
      mapAt(HOST, 8);
      expect(flush(ge, [{ mfn: data.mfn, op: INVAL }])).to.equal(-EOPNOTSUPP);
      expect(flush(ge, [{ mfn: ge.allocPage().mfn, op: INVAL }])).to.equal(-EOPNOTSUPP);
    });

    it('an offset or length beyond the page returns -EINVAL, even for an empty range', () => {
      const mine = ge.allocPage().mfn;
      expect(flush(ge, [{ mfn: mine, offset: 4096, length: 0 }])).to.equal(-EINVAL);
      expect(flush(ge, [{ mfn: mine, length: 4097, op: 0 }])).to.equal(-EINVAL);
      expect(flush(ge, [{ mfn: mine, offset: 4000, length: 97 }])).to.equal(-EINVAL);
      expect(flush(ge, [{ mfn: mine, offset: 4000, length: 96 }])).to.equal(0);
    });

    it('op bits other than CLEAN and INVAL return -EINVAL, GNTTAB_CACHE_SOURCE_GREF included (its -EOPNOTSUPP is never reached)', () => {
      const mine = ge.allocPage().mfn;
      expect(flush(ge, [{ mfn: mine, op: CLEAN | 4 }])).to.equal(-EINVAL);
      expect(flush(ge, [{ mfn: mine, op: CLEAN | G.GNTTAB_CACHE_SOURCE_GREF }])).to.equal(-EINVAL);
      expect(flush(ge, [{ mfn: mine, op: G.GNTTAB_CACHE_SOURCE_GREF, length: 0 }])).to.equal(-EINVAL);
    });

    it('length 0 or op 0 returns 0 without looking at the frame', () => {
      const beyond = t.m.hv.frames.nrFrames;
      expect(flush(ge, [{ mfn: beyond, length: 0 }])).to.equal(0);
      expect(flush(ge, [{ mfn: beyond, op: 0 }])).to.equal(0);
      expect(flush(ge, [{ mfn: data.mfn, op: INVAL, length: 0 }])).to.equal(0);
    });

    it("a dev_bus_addr whose frame is not RAM returns -EINVAL; the address's low 12 bits are ignored", () => {
      expect(flush(ge, [{ mfn: t.m.hv.frames.nrFrames }])).to.equal(-EINVAL);
      expect(flush(ge, [{ mfn: 2 ** 40 + ge.allocPage().mfn }])).to.equal(-EINVAL);
      expect(flush(ge, [{ mfn: ge.allocPage().mfn, addrBits: 0xfff }])).to.equal(0);
    });

    it("a free frame, or one of Xen's own, returns -EPERM and takes no reference", () => {
      const frames = t.m.hv.frames;
      const free = frames.owner.indexOf(OWNER_NONE);
      const xen = frames.owner.indexOf(OWNER_XEN_PRIVATE);
      expect([free, xen].every((f) => f >= 0)).to.equal(true);
      const before = [frames.count[free], frames.count[xen]];
      expect(flush(ge, [{ mfn: free }])).to.equal(-EPERM);
      expect(flush(ge, [{ mfn: xen, op: CLEAN | INVAL }])).to.equal(-EPERM);
      expect([frames.count[free], frames.count[xen]]).to.deep.equal(before);
    });

    it("another domain's frame that the caller has no grant mapping of returns -EINVAL: granted but unmapped, mapped by a third domain, unmapped again", () => {
      grant(8);
      expect(flush(ge, [{ mfn: data.mfn }])).to.equal(-EINVAL);
      grant(9, { to: t.dom0.domid });
      mapAt(HOST, 9, t.dom0);
      expect(flush(ge, [{ mfn: data.mfn }])).to.equal(-EINVAL);
      expect(flush(t.dom0, [{ mfn: data.mfn }])).to.equal(0);
      expect(flush(t.dom0, [{ mfn: ge.allocPage().mfn }])).to.equal(-EINVAL); // privilege is no bypass
      const m = mapAt(HOST, 8);
      expect(flush(ge, [{ mfn: data.mfn }])).to.equal(0);
      expect(flush(ge, [{ mfn: gr.allocPage().mfn }])).to.equal(-EINVAL); // the grant covers its own frame only
      expect(unmapGrantRef(ge.v, ge.buf, { hostAddr: m.va, devBusAddr: 0, handle: m.handle }).status).to.equal(G.GNTST_okay);
      expect(flush(ge, [{ mfn: data.mfn }])).to.equal(-EINVAL);
    });

    it('the first element that fails ends the call with its errno; the elements after it are not read', () => {
      const q = ge.allocPage();
      const p = ge.allocPage();
      expect(p.va).to.equal(q.va + 4096);
      expect(updateVaMapping(ge.v, p.va, { lo: 0, hi: 0 }, 2)).to.equal(0);
      const mine = ge.allocPage().mfn;
      // Two elements in the last 32 bytes of q; a third would be in the unmapped page p.
      const at = p.va - 2 * SIZE;
      expect(flush(ge, [{ mfn: mine }, { mfn: data.mfn }], 0, at)).to.equal(-EINVAL);
      expect(gnttabOp(ge.v, G.GNTTABOP_cache_flush, at, 3)).to.equal(-EINVAL);
      expect(flush(ge, [{ mfn: mine }, { mfn: mine, op: INVAL }], 0, at)).to.equal(-EOPNOTSUPP);
      expect(flush(ge, [{ mfn: mine }, { mfn: mine }], 0, at)).to.equal(0);
      expect(gnttabOp(ge.v, G.GNTTABOP_cache_flush, at, 3)).to.equal(-EFAULT);
    });

    it('an array outside guest space returns -EFAULT; count 0 returns 0', () => {
      expect(gnttabOp(ge.v, G.GNTTABOP_cache_flush, -0x7fff00000000, 1)).to.equal(-EFAULT);
      expect(gnttabOp(ge.v, G.GNTTABOP_cache_flush, ge.buf, 0)).to.equal(0);
    });

    it("the continuation argument (cmd bits 12-31) is the ref where the first element's grant search resumes", () => {
      grant(8);
      mapAt(HOST, 8);
      expect(flush(ge, [{ mfn: data.mfn }], 4096)).to.equal(-EINVAL); // beyond the table's 512 entries
      const high = grantHighRef();
      expect(mapAt(HOST, 4100).status).to.equal(G.GNTST_okay);
      expect(flush(ge, [{ mfn: high.mfn }], 4096)).to.equal(0);
      expect(flush(ge, [{ mfn: high.mfn }], 8192)).to.equal(-EINVAL);
      expect(flush(ge, [{ mfn: data.mfn }], 4096)).to.equal(-EINVAL); // ref 8 lies below
      expect(flush(ge, [{ mfn: data.mfn }], 0)).to.equal(0);
      expect(flush(ge, [{ mfn: ge.allocPage().mfn }], 8192)).to.equal(0); // its own page: no search
    });

    it('the continuation argument applies to the first element only: later ones search from ref 0', () => {
      grant(8);
      mapAt(HOST, 8);
      const high = grantHighRef();
      mapAt(HOST, 4100);
      expect(flush(ge, [{ mfn: high.mfn }, { mfn: data.mfn }], 4096)).to.equal(0);
      expect(flush(ge, [{ mfn: data.mfn }, { mfn: high.mfn }], 4096)).to.equal(-EINVAL);
    });

    it('an empty element while a continuation is in progress returns -EILSEQ', () => {
      const mine = ge.allocPage().mfn;
      expect(flush(ge, [{ mfn: mine, length: 0 }], 4096)).to.equal(-EILSEQ);
      expect(flush(ge, [{ mfn: mine, op: 0 }], 4096)).to.equal(-EILSEQ);
      expect(flush(ge, [{ mfn: mine }, { mfn: mine, length: 0 }], 4096)).to.equal(0);
    });
  });

  // ---- swap ---------------------------------------------------------------------------------

  describe('swap_grant_ref', () => {
    it('swaps two entries; a ref out of range gives GNTST_bad_gntref; a pinned one GNTST_eagain', () => {
      grant(8);
      grant(9, { to: t.dom0.domid });
      expect(swapGrantRef(gr.v, gr.buf, 8, 9)).to.deep.equal({ rc: 0, status: 0 });
      expect(gr.v.load16(entryVa(gtVa, 8) + 2)).to.equal(t.dom0.domid);
      expect(swapGrantRef(gr.v, gr.buf, 8, 512).status).to.equal(G.GNTST_bad_gntref);
      mapAt(HOST, 9);
      expect(swapGrantRef(gr.v, gr.buf, 8, 9).status).to.equal(G.GNTST_eagain);
      expect(swapGrantRef(gr.v, gr.buf, 9, 9).status).to.equal(G.GNTST_okay);
    });
  });

  // ---- domain life cycle -----------------------------------------------------------------------

  describe('domain destruction', () => {
    it('a mapped grant keeps the frame alive when the granter dies; the grantee unmapping lets the granter go', () => {
      grant(8);
      const m = mapAt(HOST, 8);
      t.m.destroy(gr.domid);
      t.check();
      expect(t.m.domain(gr.domid)).to.not.equal(undefined); // a zombie, held by the frame
      expect(ge.v.load32(m.va)).to.equal(0x1234);
      expect(unmapGrantRef(ge.v, ge.buf, { hostAddr: m.va, devBusAddr: 0, handle: m.handle }).status).to.equal(G.GNTST_okay);
      expect(t.m.domain(gr.domid)).to.equal(undefined);
    });

    it("a dying granter's entries can no longer be mapped: GNTST_general_error", () => {
      grant(8);
      grant(9);
      const m = mapAt(HOST, 8);
      t.m.destroy(gr.domid);
      expect(mapAt(HOST, 9).status).to.equal(G.GNTST_general_error);
      expect(unmapGrantRef(ge.v, ge.buf, { hostAddr: m.va, devBusAddr: 0, handle: m.handle }).status).to.equal(G.GNTST_okay);
    });

    it("destroying the grantee unmaps all its grants: pins and flags drop and the granter may revoke", () => {
      grant(8);
      grant(9);
      mapAt(HOST, 8);
      mapAt(DEV, 9);
      mapAt(HOST | DEV | RO, 9);
      t.m.destroy(ge.domid);
      expect(t.m.domain(ge.domid)).to.equal(undefined);
      expect([pinOf(8), pinOf(9)]).to.deep.equal([0, 0]);
      expect(endForeignAccess(gr.v, gtVa, 8)).to.equal(true);
      expect(endForeignAccess(gr.v, gtVa, 9)).to.equal(true);
    });
  });
});
