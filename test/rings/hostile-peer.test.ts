// A peer that writes nonsense into the shared page can make the other side give that ring
// up — reported through `fault` — and nothing more: no read outside the ring, no request
// consumed twice, no write to the page after the fault, no effect on any other ring; and
// a request rewritten after the back end copied it changes nothing the back end acts on.

import { expect } from 'chai';
import { BackRing } from '../../rings/back-ring.ts';
import {
  BLKIF_OP_READ, BLKIF_OP_WRITE, BLKIF_RING, BLKIF_RSP_OKAY, BlkifRequest, BlkifResponse, blkifRequestError,
  decodeBlkifRequest, decodeBlkifResponse, encodeBlkifRequest, encodeBlkifResponse,
} from '../../rings/blkif.ts';
import { FrontRing } from '../../rings/front-ring.ts';
import { BytesPage, ByteView } from '../../rings/page.ts';
import { REQ_EVENT, REQ_PROD, RSP_EVENT, RSP_PROD, sharedRingInit } from '../../rings/sring.ts';

const START = 0xfffffff0;

function ringAt(start: number): { page: BytesPage; front: FrontRing; back: BackRing } {
  const page = BytesPage.zeroed();
  sharedRingInit(page);
  for (const [off, v] of [[REQ_PROD, start], [RSP_PROD, start], [REQ_EVENT, start + 1], [RSP_EVENT, start + 1]]) {
    page.write32(off, v >>> 0);
  }
  return { page, front: new FrontRing(page, BLKIF_RING, start), back: new BackRing(page, BLKIF_RING, start) };
}

/** A sound one-segment read of sector `sector`, id `id`. */
function readRequest(id: number, sector: number): BlkifRequest {
  const r = new BlkifRequest();
  r.operation = BLKIF_OP_READ;
  r.nrSegments = 1;
  r.idLo = id;
  r.sectorLo = sector;
  r.gref[0] = 5;
  r.firstSect[0] = 0;
  r.lastSect[0] = 7;
  return r;
}

/** Front end pushes n sound requests with ids from `id`. */
function pushRequests(front: FrontRing, n: number, id = 1): void {
  for (let i = 0; i < n; i++) encodeBlkifRequest(front.page, front.produceRequest(), readRequest(id + i, 8 * i));
  front.pushRequests();
}

/** Back end serves everything it can: returns the ids it answered. */
function serve(back: BackRing): number[] {
  const buf = ByteView.ofSize(BLKIF_RING.requestSize);
  const req = new BlkifRequest();
  const ids: number[] = [];
  while (back.nextRequest(buf)) {
    decodeBlkifRequest(buf, 0, req);
    encodeBlkifResponse(back.page, back.produceResponse(), req.idLo, req.idHi, req.operation, BLKIF_RSP_OKAY);
    ids.push(req.idLo);
  }
  back.pushResponses();
  return ids;
}

describe('a hostile peer on a ring', () => {
  describe('a front end publishing an impossible req_prod', () => {
    const impossible: [string, (rspProdPvt: number, reqCons: number) => number][] = [
      ['one more request than slots', (p) => p + 33],
      ['half the index space ahead', (p) => p + 0x80000000],
      ['behind what the back end already consumed', (_p, c) => c - 1],
    ];
    for (const [what, reqProd] of impossible) {
      it(`(${what}) makes the back end fault the ring, say why, and touch the page no more`, () => {
        const { page, front, back } = ringAt(START);
        pushRequests(front, 3);
        const buf = ByteView.ofSize(BLKIF_RING.requestSize);
        expect(back.nextRequest(buf)).to.equal(true);
        expect(back.nextRequest(buf)).to.equal(true);
        back.produceResponse();
        page.write32(REQ_PROD, reqProd(back.rspProdPvt, back.reqCons) >>> 0);
        const consumed = back.reqCons;

        expect(back.nextRequest(buf)).to.equal(false);
        expect(back.fault).to.not.equal(null);
        expect(back.fault!.index).to.equal('req_prod');
        expect(back.fault!.value).to.equal(page.read32(REQ_PROD));
        expect(back.fault!.message).to.match(/^req_prod 0x[0-9a-f]{8} is outside 0x[0-9a-f]{8}\.\.0x[0-9a-f]{8}$/);

        page.write32(REQ_PROD, (START + 3) >>> 0); // even a sensible index now
        const before = Uint8Array.from(page.bytes);
        expect(back.nextRequest(buf)).to.equal(false);
        expect(back.finalCheckForRequests()).to.equal(0);
        expect(back.produceResponse()).to.equal(-1);
        expect(back.pushResponsesAndCheckNotify()).to.equal(false);
        back.pushResponses();
        expect(page.bytes).to.deep.equal(before);
        expect(back.reqCons).to.equal(consumed);
      });
    }

    it('exactly nrEnts requests past rsp_prod_pvt is no fault', () => {
      const { page, back } = ringAt(START);
      page.write32(REQ_PROD, (START + 32) >>> 0);
      const buf = ByteView.ofSize(BLKIF_RING.requestSize);
      let n = 0;
      while (back.nextRequest(buf)) n++;
      expect([n, back.fault]).to.deep.equal([32, null]);
    });

    it('leaves every other ring working: a second front/back pair completes its requests', () => {
      const bad = ringAt(START);
      const good = ringAt(START);
      pushRequests(bad.front, 2);
      pushRequests(good.front, 2);
      bad.page.write32(REQ_PROD, 0x12345678);
      expect(serve(bad.back)).to.deep.equal([]);
      expect(bad.back.fault).to.not.equal(null);

      pushRequests(good.front, 30, 3);
      expect(serve(good.back)).to.deep.equal([...Array(32).keys()].map((i) => i + 1));
      const rsp = new BlkifResponse();
      const buf = ByteView.ofSize(BLKIF_RING.responseSize);
      const ids: number[] = [];
      while (good.front.nextResponse(buf)) ids.push(decodeBlkifResponse(buf, 0, rsp).idLo);
      expect(ids).to.have.length(32);
      expect([good.front.fault, good.back.fault]).to.deep.equal([null, null]);
    });

    it('scribbling on rsp_prod and rsp_event can change whether the back end notifies, and nothing else', () => {
      const { page, front, back } = ringAt(START);
      pushRequests(front, 2);
      const buf = ByteView.ofSize(BLKIF_RING.requestSize);
      back.nextRequest(buf);
      back.nextRequest(buf);
      back.produceResponse();
      back.produceResponse();
      page.write32(RSP_PROD, 0xdeadbeef);
      page.write32(RSP_EVENT, 0xdeadbef0);
      back.pushResponsesAndCheckNotify();
      expect(page.read32(RSP_PROD)).to.equal((START + 2) >>> 0);
      expect([back.rspProdPvt, back.reqCons, back.fault]).to.deep.equal([(START + 2) >>> 0, (START + 2) >>> 0, null]);
    });
  });

  describe('a back end publishing an impossible rsp_prod', () => {
    for (const [what, ahead] of [['more responses than slots', 33], ['responses to requests never made', 3]] as const) {
      it(`(${what}) makes the front end fault the ring and stop`, () => {
        const { page, front } = ringAt(START);
        pushRequests(front, 2);
        page.write32(RSP_PROD, (START + ahead) >>> 0);
        const buf = ByteView.ofSize(BLKIF_RING.responseSize);
        expect(front.nextResponse(buf)).to.equal(false);
        expect(front.fault?.index).to.equal('rsp_prod');
        expect(front.rspCons).to.equal(START);
        const before = Uint8Array.from(page.bytes);
        expect(front.finalCheckForResponses()).to.equal(0);
        expect(front.produceRequest()).to.equal(-1);
        expect(front.pushRequestsAndCheckNotify()).to.equal(false);
        expect(page.bytes).to.deep.equal(before);
      });
    }

    it('as many responses as requests pushed is no fault', () => {
      const { page, front } = ringAt(START);
      pushRequests(front, 2);
      page.write32(RSP_PROD, (START + 2) >>> 0);
      const buf = ByteView.ofSize(BLKIF_RING.responseSize);
      expect([front.nextResponse(buf), front.nextResponse(buf), front.nextResponse(buf)]).to.deep.equal([true, true, false]);
      expect(front.fault).to.equal(null);
    });
  });

  describe('a front end rewriting a request after the back end copied it', () => {
    it('changes nothing the back end validates, acts on or echoes', () => {
      const { page, front, back } = ringAt(START);
      const slot = front.produceRequest();
      encodeBlkifRequest(page, slot, readRequest(41, 800));
      front.pushRequests();

      const buf = ByteView.ofSize(BLKIF_RING.requestSize);
      expect(back.nextRequest(buf)).to.equal(true);
      // The front end now rewrites the slot: another operation, id and sector, and 11
      // segments whose sector ranges overrun the page.
      const evil = readRequest(0x666, 0xdead);
      evil.operation = BLKIF_OP_WRITE;
      evil.nrSegments = 11;
      for (let i = 0; i < 11; i++) {
        evil.gref[i] = 1000 + i;
        evil.firstSect[i] = 3;
        evil.lastSect[i] = 9;
      }
      encodeBlkifRequest(page, slot, evil);
      // What the slot holds now would be refused: reading it instead of the copy would show.
      const inSlot = decodeBlkifRequest(page, slot, new BlkifRequest());
      expect([inSlot.idLo, blkifRequestError(inSlot)]).to.deep.equal([0x666, 'last_sect is past the end of the page']);

      const req = decodeBlkifRequest(buf, 0, new BlkifRequest());
      expect(blkifRequestError(req)).to.equal(null);
      expect([req.operation, req.nrSegments, req.idLo, req.sectorLo, req.gref[0], req.lastSect[0]])
        .to.deep.equal([BLKIF_OP_READ, 1, 41, 800, 5, 7]);
      encodeBlkifResponse(page, back.produceResponse(), req.idLo, req.idHi, req.operation, BLKIF_RSP_OKAY);
      back.pushResponses();
      const rsp = decodeBlkifResponse(page, back.slotOffset(START), new BlkifResponse());
      expect([rsp.idLo, rsp.operation, rsp.status]).to.deep.equal([41, BLKIF_OP_READ, BLKIF_RSP_OKAY]);
    });
  });
});
