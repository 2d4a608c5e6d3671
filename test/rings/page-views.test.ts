// A page view is little-endian bytes at offsets within one page: over host bytes (the
// hypervisor's or a back end's view, a page file) or through a guest's own mapping,
// where every access goes through the guest's MMU — so a ring a guest drives through its
// mapping is byte for byte the machine frame a back end sees, and an unmapped or
// read-only mapping faults into the guest.

import { expect } from 'chai';
import { GuestTrap, TRAP_page_fault } from '../../hypervisor/public/vcpu.ts';
import { BackRing } from '../../rings/back-ring.ts';
import {
  BLKIF_OP_WRITE, BLKIF_RING, BLKIF_RSP_OKAY, BlkifRequest, BlkifResponse, decodeBlkifRequest, decodeBlkifResponse,
  encodeBlkifRequest, encodeBlkifResponse,
} from '../../rings/blkif.ts';
import { FrontRing } from '../../rings/front-ring.ts';
import { BytesPage, ByteView, GuestPage } from '../../rings/page.ts';
import { REQ_PROD } from '../../rings/sring.ts';
import { bootTestMachine, roPage, type TestMachine } from '../support/fixture.ts';

describe('page views', () => {
  describe('over host bytes', () => {
    it('stores and loads little-endian at any offset', () => {
      const page = BytesPage.zeroed();
      page.write32(1, 0x11223344);
      page.write16(6, 0xbeef);
      page.write8(9, 0x1ff);
      expect([...page.bytes.subarray(0, 10)]).to.deep.equal([0, 0x44, 0x33, 0x22, 0x11, 0, 0xef, 0xbe, 0, 0xff]);
      expect([page.read32(1), page.read16(6), page.read8(4), page.read32(4092)]).to.deep.equal([0x11223344, 0xbeef, 0x11, 0]);
      page.write32(0, -1);
      expect(page.read32(0)).to.equal(0xffffffff);
    });

    it('is exactly one page, even as a window on a larger buffer, and nothing outside it is reachable', () => {
      expect(() => new BytesPage(new Uint8Array(4095))).to.throw(RangeError);
      const big = new Uint8Array(3 * 4096);
      const page = new BytesPage(big.subarray(4096, 8192));
      page.write32(4092, 0xffffffff);
      page.write8(0, 7);
      expect([big[4095], big[4096], big[8191], big[8192]]).to.deep.equal([0, 7, 0xff, 0]);
      expect(() => page.read32(4093)).to.throw(RangeError);
      expect(() => page.write8(-1, 1)).to.throw(RangeError);
      expect(() => page.copyOut(4000, ByteView.ofSize(200), 0, 200)).to.throw(RangeError);
      expect(() => page.copyOut(0, ByteView.ofSize(8), 4, 8)).to.throw(RangeError);
    });

    it('copies out and in, aligned or not, exactly the bytes asked for', () => {
      const page = BytesPage.zeroed();
      for (let i = 0; i < 64; i++) page.write8(i, i + 1);
      for (const [off, dstOff, len] of [[0, 0, 16], [3, 1, 13], [8, 4, 20], [1, 0, 0]]) {
        const dst = new ByteView(new Uint8Array(32).fill(0xee));
        page.copyOut(off, dst, dstOff, len);
        const want = [...Array(32)].map((_, i) => (i >= dstOff && i < dstOff + len ? off + (i - dstOff) + 1 : 0xee));
        expect([...dst.bytes], `copyOut(${off}, ${dstOff}, ${len})`).to.deep.equal(want);
        const back = BytesPage.zeroed();
        back.copyIn(off, dst, dstOff, len);
        expect([...back.bytes.subarray(off, off + len)]).to.deep.equal([...page.bytes.subarray(off, off + len)]);
        expect(back.bytes.reduce((n, b) => n + (b !== 0 ? 1 : 0), 0)).to.equal(len);
      }
    });
  });

  describe("through a guest's mapping", () => {
    let t: TestMachine;

    beforeEach(() => {
      t = bootTestMachine();
    });

    it('drives a ring whose bytes are the machine frame a back end sees, both ways', () => {
      const g = t.guest;
      const p = g.allocPage();
      const guestView = new GuestPage(g.v, p.va);
      const front = FrontRing.init(guestView, BLKIF_RING);
      const req = new BlkifRequest();
      req.operation = BLKIF_OP_WRITE;
      req.nrSegments = 2;
      req.idLo = 0x89abcdef;
      req.idHi = 0x01234567;
      req.sectorLo = 4096;
      req.gref.set([17, 18]);
      req.lastSect.set([7, 3]);
      encodeBlkifRequest(guestView, front.produceRequest(), req);
      expect(front.pushRequestsAndCheckNotify()).to.equal(true);

      // The back end's view: the frame's bytes, copied in and out around its step.
      const frame = new Uint8Array(4096);
      t.m.hv.mem.readBytes(p.mfn, 0, frame, 0, 4096);
      const hostView = new BytesPage(frame);
      expect(hostView.read32(REQ_PROD)).to.equal(1);
      const back = new BackRing(hostView, BLKIF_RING);
      const buf = ByteView.ofSize(BLKIF_RING.requestSize);
      expect(back.nextRequest(buf)).to.equal(true);
      const got = decodeBlkifRequest(buf, 0, new BlkifRequest());
      expect([got.operation, got.nrSegments, got.idLo, got.idHi, got.sectorLo, [...got.gref.subarray(0, 2)],
        [...got.lastSect.subarray(0, 2)]]).to.deep.equal([BLKIF_OP_WRITE, 2, 0x89abcdef, 0x01234567, 4096, [17, 18], [7, 3]]);
      encodeBlkifResponse(hostView, back.produceResponse(), got.idLo, got.idHi, got.operation, BLKIF_RSP_OKAY);
      expect(back.pushResponsesAndCheckNotify()).to.equal(true);
      t.m.hv.mem.writeBytes(p.mfn, 0, frame, 0, 4096);

      const rspBuf = ByteView.ofSize(BLKIF_RING.responseSize);
      expect(front.nextResponse(rspBuf)).to.equal(true);
      const rsp = decodeBlkifResponse(rspBuf, 0, new BlkifResponse());
      expect([rsp.idLo, rsp.idHi, rsp.operation, rsp.status]).to.deep.equal([0x89abcdef, 0x01234567, BLKIF_OP_WRITE, 0]);
      for (let off = 0; off < 4096; off += 4) expect(guestView.read32(off), `offset ${off}`).to.equal(hostView.read32(off));
    });

    it('copies out through the MMU what the host view copies out, aligned or not', () => {
      const g = t.guest;
      const p = g.allocPage();
      const guestView = new GuestPage(g.v, p.va);
      for (let i = 0; i < 256; i++) guestView.write8(i, (i * 7) & 0xff);
      const frame = new Uint8Array(4096);
      t.m.hv.mem.readBytes(p.mfn, 0, frame, 0, 4096);
      const hostView = new BytesPage(frame);
      for (const [off, len] of [[0, 112], [2, 17], [64, 16]]) {
        const a = ByteView.ofSize(128);
        const b = ByteView.ofSize(128);
        guestView.copyOut(off, a, 1, len);
        hostView.copyOut(off, b, 1, len);
        expect([...a.bytes]).to.deep.equal([...b.bytes]);
      }
      const src = ByteView.ofSize(40);
      src.bytes.forEach((_, i) => (src.bytes[i] = 200 + i));
      guestView.copyIn(1024, src, 0, 40);
      guestView.copyIn(2049, src, 3, 9);
      t.m.hv.mem.readBytes(p.mfn, 0, frame, 0, 4096);
      expect([...frame.subarray(1024, 1064)]).to.deep.equal([...src.bytes]);
      expect([...frame.subarray(2049, 2058)]).to.deep.equal([...src.bytes.subarray(3, 12)]);
    });

    it('faults into the guest (#PF) on an unmapped page, and on a store to a read-only mapping', () => {
      const g = t.guest;
      const unmapped = new GuestPage(g.v, 0x123000);
      expect(() => unmapped.read32(0)).to.throw(GuestTrap);
      const ro = new GuestPage(g.v, roPage(g, []).va);
      expect(ro.read32(REQ_PROD)).to.equal(0);
      let trap: unknown = null;
      try {
        FrontRing.init(ro, BLKIF_RING);
      } catch (e) {
        trap = e;
      }
      expect(trap).to.be.instanceOf(GuestTrap);
      expect((trap as GuestTrap).vector).to.equal(TRAP_page_fault);
    });

    it('needs a page-aligned address and offsets within the page', () => {
      expect(() => new GuestPage(t.guest.v, t.guest.buf + 8)).to.throw(RangeError);
      const view = new GuestPage(t.guest.v, t.guest.buf);
      expect(() => view.read32(4094)).to.throw(RangeError);
      expect(() => view.copyIn(4090, ByteView.ofSize(8), 0, 8)).to.throw(RangeError);
    });
  });
});
