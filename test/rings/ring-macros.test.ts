// FrontRing, BackRing and the shared-ring helpers do what each io/ring.h macro does:
// SHARED_RING_INIT, the _INIT/_ATTACH forms, RING_SIZE, RING_FREE_REQUESTS, RING_FULL,
// the unconsumed counts (the min() form for requests), the overflow tests, the push
// macros with their notification rule, and the final checks.

import { expect } from 'chai';
import { BackRing } from '../../rings/back-ring.ts';
import { BLKIF_RING } from '../../rings/blkif.ts';
import { FrontRing } from '../../rings/front-ring.ts';
import { NETIF_RX_RING, NETIF_TX_RING } from '../../rings/netif.ts';
import { BytesPage, ByteView, type PageView } from '../../rings/page.ts';
import {
  REQ_EVENT, REQ_PROD, RSP_EVENT, RSP_PROD, SRING_RING_OFFSET, ringSize, rounddownPow2, sharedRingInit, type RingFormat,
} from '../../rings/sring.ts';

/** A fresh page with the shared indices at `start`, as SHARED_RING_INIT leaves them shifted by `start`. */
function pageAt(start: number): BytesPage {
  const page = BytesPage.zeroed();
  sharedRingInit(page);
  page.write32(REQ_PROD, start);
  page.write32(RSP_PROD, start);
  page.write32(REQ_EVENT, (start + 1) >>> 0);
  page.write32(RSP_EVENT, (start + 1) >>> 0);
  return page;
}

function pair(start: number, format: RingFormat = BLKIF_RING): { page: BytesPage; front: FrontRing; back: BackRing } {
  const page = pageAt(start);
  return { page, front: new FrontRing(page, format, start), back: new BackRing(page, format, start) };
}

/** A page whose full barrier runs `hook` once: another side's step at the point ring.h orders. */
class HookedPage extends BytesPage implements PageView {
  hook: (() => void) | null = null;

  override mb(): void {
    const h = this.hook;
    this.hook = null;
    if (h) h();
  }
}

const START_BELOW_WRAP = 0xfffffffe;

describe('io/ring.h macros on FrontRing and BackRing', () => {
  describe('sizes and initialisation', () => {
    it('__RD32 rounds down to a power of two; a page holds 32 blkif, 256 netif tx and 256 netif rx slots', () => {
      expect([0, 1, 2, 3, 36, 63, 64, 0xffffffff].map(rounddownPow2)).to.deep.equal([0, 1, 2, 2, 32, 32, 64, 0x80000000]);
      expect([BLKIF_RING.nrEnts, NETIF_TX_RING.nrEnts, NETIF_RX_RING.nrEnts]).to.deep.equal([32, 256, 256]);
      expect([ringSize(4032), ringSize(2017), ringSize(2016), ringSize(4033)]).to.deep.equal([1, 1, 2, 0]);
    });

    it('SHARED_RING_INIT zeroes both producers, sets both events to 1, clears pvt and padding, leaves the slots', () => {
      const page = new BytesPage(new Uint8Array(4096).fill(0xaa));
      sharedRingInit(page);
      expect([page.read32(REQ_PROD), page.read32(REQ_EVENT), page.read32(RSP_PROD), page.read32(RSP_EVENT)])
        .to.deep.equal([0, 1, 0, 1]);
      expect([...page.bytes.subarray(16, SRING_RING_OFFSET)].every((b) => b === 0)).to.equal(true);
      expect([...page.bytes.subarray(SRING_RING_OFFSET)].every((b) => b === 0xaa)).to.equal(true);
    });

    it('FrontRing.init is XEN_FRONT_RING_INIT: the shared ring initialised, private indices 0', () => {
      const page = new BytesPage(new Uint8Array(4096).fill(0x55));
      const front = FrontRing.init(page, BLKIF_RING);
      expect([front.reqProdPvt, front.rspCons, front.nrEnts]).to.deep.equal([0, 0, 32]);
      expect(page.read32(REQ_EVENT)).to.equal(1);
    });

    it('the _ATTACH forms start both private indices at the given index; the slot is idx & (nrEnts - 1)', () => {
      const { front, back } = pair(0xfffffff0);
      expect([front.reqProdPvt, front.rspCons, back.rspProdPvt, back.reqCons]).to.deep.equal(Array(4).fill(0xfffffff0));
      expect(front.slotOffset(0xffffffff)).to.equal(SRING_RING_OFFSET + 31 * 112);
      expect(front.slotOffset(0)).to.equal(SRING_RING_OFFSET);
      expect(back.slotOffset(0x100000021)).to.equal(SRING_RING_OFFSET + 112);
    });
  });

  describe('front end', () => {
    it('RING_FREE_REQUESTS counts down as requests are produced and RING_FULL holds at nrEnts, across 2^32', () => {
      const { front } = pair(START_BELOW_WRAP);
      for (let i = 0; i < 32; i++) {
        expect(front.freeRequests()).to.equal(32 - i);
        expect(front.full()).to.equal(false);
        front.produceRequest();
      }
      expect(front.freeRequests()).to.equal(0);
      expect(front.full()).to.equal(true);
      expect(front.reqProdPvt).to.equal(30);
      expect(() => front.produceRequest()).to.throw(/full/);
    });

    it('produceRequest hands out consecutive slots and publishes nothing until pushed', () => {
      const { page, front } = pair(START_BELOW_WRAP);
      expect([front.produceRequest(), front.produceRequest(), front.produceRequest()])
        .to.deep.equal([30, 31, 0].map((s) => SRING_RING_OFFSET + s * 112));
      expect(page.read32(REQ_PROD)).to.equal(START_BELOW_WRAP);
      front.pushRequests();
      expect(page.read32(REQ_PROD)).to.equal(1);
    });

    it('RING_PUSH_REQUESTS writes req_prod and nothing else', () => {
      const { page, front } = pair(7);
      front.produceRequest();
      const before = Uint8Array.from(page.bytes);
      front.pushRequests();
      const changed = [...page.bytes.keys()].filter((i) => page.bytes[i] !== before[i]);
      expect(changed).to.deep.equal([REQ_PROD]);
      expect(page.read32(REQ_PROD)).to.equal(8);
    });

    it('push-and-check notifies iff req_event is in (old req_prod, new req_prod], modulo 2^32', () => {
      // [old, new, req_event, notify]
      const cases: [number, number, number, boolean][] = [
        [10, 13, 11, true], [10, 13, 13, true], [10, 13, 10, false], [10, 13, 14, false], [10, 13, 5, false],
        [0xfffffffe, 1, 0xffffffff, true], [0xfffffffe, 1, 0, true], [0xfffffffe, 1, 1, true],
        [0xfffffffe, 1, 2, false], [0xfffffffe, 1, 0xfffffffe, false], [5, 5, 5, false], [5, 5, 6, false],
      ];
      for (const [old, now, event, notify] of cases) {
        const page = pageAt(old);
        const front = new FrontRing(page, NETIF_TX_RING, old);
        while (front.reqProdPvt !== now) front.produceRequest();
        page.write32(REQ_EVENT, event);
        expect(front.pushRequestsAndCheckNotify(), `old ${old} new ${now} event ${event}`).to.equal(notify);
        expect(page.read32(REQ_PROD)).to.equal(now);
      }
    });

    it('RING_RESPONSE_PROD_OVERFLOW: up to nrEnts responses past rsp_cons are possible, one more is not', () => {
      const { front } = pair(0xfffffff8);
      expect(front.responseProdOverflow((0xfffffff8 + 32) >>> 0)).to.equal(false);
      expect(front.responseProdOverflow((0xfffffff8 + 33) >>> 0)).to.equal(true);
      expect(front.responseProdOverflow(0xfffffff7)).to.equal(true);
    });

    it('RING_FINAL_CHECK_FOR_RESPONSES with responses waiting counts them and leaves rsp_event alone', () => {
      const { page, front, back } = pair(START_BELOW_WRAP);
      for (let i = 0; i < 3; i++) front.produceRequest();
      front.pushRequests();
      const buf = ByteView.ofSize(112);
      while (back.nextRequest(buf)) back.produceResponse();
      back.pushResponses();
      expect(front.finalCheckForResponses()).to.equal(3);
      expect(page.read32(RSP_EVENT)).to.equal(START_BELOW_WRAP + 1);
    });

    it('RING_FINAL_CHECK_FOR_RESPONSES with none sets rsp_event = rsp_cons + 1 and rechecks after the barrier', () => {
      const page = new HookedPage(new Uint8Array(4096));
      sharedRingInit(page);
      const front = new FrontRing(page, BLKIF_RING);
      const back = new BackRing(page, BLKIF_RING);
      front.produceRequest();
      front.pushRequests();
      back.nextRequest(ByteView.ofSize(112));
      expect(front.finalCheckForResponses()).to.equal(0);
      expect(page.read32(RSP_EVENT)).to.equal(1);
      // A response pushed between the event write and the recheck is found by the recheck.
      front.produceRequest();
      front.pushRequests();
      back.nextRequest(ByteView.ofSize(112));
      page.hook = () => {
        back.produceResponse();
        back.pushResponses();
      };
      expect(front.finalCheckForResponses()).to.equal(1);
    });
  });

  describe('back end', () => {
    it('RING_HAS_UNCONSUMED_REQUESTS is the smaller of req_prod - req_cons and the slots not awaiting a response', () => {
      const { page, front, back } = pair(START_BELOW_WRAP);
      for (let i = 0; i < 5; i++) front.produceRequest();
      front.pushRequests();
      expect(back.unconsumedRequests()).to.equal(5);
      const buf = ByteView.ofSize(112);
      for (let i = 0; i < 5; i++) back.nextRequest(buf);
      expect(back.unconsumedRequests()).to.equal(0);
      // A req_prod claiming 40 more: only the 27 slots not awaiting a response count.
      page.write32(REQ_PROD, (START_BELOW_WRAP + 45) >>> 0);
      expect(back.unconsumedRequests()).to.equal(27);
    });

    it('RING_REQUEST_CONS_OVERFLOW once nrEnts requests are consumed and unanswered; nextRequest then waits', () => {
      const { front, back } = pair(START_BELOW_WRAP);
      const buf = ByteView.ofSize(112);
      for (let i = 0; i < 32; i++) front.produceRequest();
      front.pushRequests();
      for (let i = 0; i < 32; i++) expect(back.nextRequest(buf)).to.equal(true);
      expect(back.requestConsOverflow(back.reqCons)).to.equal(true);
      back.produceResponse();
      expect(back.requestConsOverflow(back.reqCons)).to.equal(false);
      expect(back.nextRequest(buf)).to.equal(false);
      expect(back.fault).to.equal(null);
    });

    it('RING_REQUEST_PROD_OVERFLOW: up to nrEnts requests past rsp_prod_pvt are possible, one more is not', () => {
      const { back } = pair(0xfffffff8);
      expect(back.requestProdOverflow((0xfffffff8 + 32) >>> 0)).to.equal(false);
      expect(back.requestProdOverflow((0xfffffff8 + 33) >>> 0)).to.equal(true);
    });

    it('nextRequest copies exactly the request (RING_COPY_REQUEST) and advances req_cons', () => {
      const { page, front, back } = pair(START_BELOW_WRAP, NETIF_TX_RING);
      const off = front.produceRequest();
      for (let i = 0; i < 12; i++) page.write8(off + i, i + 1);
      page.write8(off + 12, 0xee); // the next slot
      front.pushRequests();
      const buf = new ByteView(new Uint8Array(16).fill(0x77));
      expect(back.nextRequest(buf)).to.equal(true);
      expect([...buf.bytes]).to.deep.equal([1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 0x77, 0x77, 0x77, 0x77]);
      expect(back.reqCons).to.equal(START_BELOW_WRAP + 1);
      expect(back.nextRequest(buf)).to.equal(false);
    });

    it('nextResponse copies exactly the response (RING_COPY_RESPONSE): 16 bytes of a 112-byte blkif slot', () => {
      const { page, front, back } = pair(0);
      front.produceRequest();
      front.pushRequests();
      back.nextRequest(ByteView.ofSize(112));
      const off = back.produceResponse();
      for (let i = 0; i < 112; i++) page.write8(off + i, 0xc0 + (i & 15));
      back.pushResponses();
      const buf = new ByteView(new Uint8Array(20));
      expect(front.nextResponse(buf)).to.equal(true);
      expect([...buf.bytes.subarray(0, 16)]).to.deep.equal([...Array(16).keys()].map((i) => 0xc0 + i));
      expect([...buf.bytes.subarray(16)]).to.deep.equal([0, 0, 0, 0]);
    });

    it('produceResponse with no consumed request waiting throws (a back-end bug, not a peer problem)', () => {
      const { back } = pair(0);
      expect(() => back.produceResponse()).to.throw(/no consumed request/);
    });

    it('push-and-check for responses notifies iff rsp_event is in (old rsp_prod, new rsp_prod]', () => {
      for (const [event, notify] of [[START_BELOW_WRAP + 1, true], [1, true], [2, false], [START_BELOW_WRAP, false]] as const) {
        const { page, front, back } = pair(START_BELOW_WRAP);
        for (let i = 0; i < 3; i++) front.produceRequest();
        front.pushRequests();
        const buf = ByteView.ofSize(112);
        while (back.nextRequest(buf)) back.produceResponse();
        page.write32(RSP_EVENT, event >>> 0);
        expect(back.pushResponsesAndCheckNotify(), `rsp_event ${event}`).to.equal(notify);
        expect(page.read32(RSP_PROD)).to.equal(1);
      }
    });

    it('RING_FINAL_CHECK_FOR_REQUESTS with none sets req_event = req_cons + 1; the next push notifies, a second does not', () => {
      const { page, front, back } = pair(START_BELOW_WRAP);
      page.write32(REQ_EVENT, 12345); // stale
      expect(back.finalCheckForRequests()).to.equal(0);
      expect(page.read32(REQ_EVENT)).to.equal(START_BELOW_WRAP + 1);
      front.produceRequest();
      expect(front.pushRequestsAndCheckNotify()).to.equal(true);
      front.produceRequest();
      expect(front.pushRequestsAndCheckNotify()).to.equal(false);
      expect(back.finalCheckForRequests()).to.equal(2);
      expect(page.read32(REQ_EVENT)).to.equal(START_BELOW_WRAP + 1);
    });

    it('RING_FINAL_CHECK_FOR_REQUESTS finds a request pushed between its event write and its recheck', () => {
      const page = new HookedPage(new Uint8Array(4096));
      sharedRingInit(page);
      const front = new FrontRing(page, BLKIF_RING);
      const back = new BackRing(page, BLKIF_RING);
      let notified: boolean | null = null;
      page.hook = () => {
        front.produceRequest();
        notified = front.pushRequestsAndCheckNotify();
      };
      expect(back.finalCheckForRequests()).to.equal(1);
      expect(notified).to.equal(true); // and the front end notified too: a spurious but harmless event
    });
  });
});
