// xensim bench: blkif request/response round trips through rings/ on one page (host
// bytes), front and back end in one thread. Run by bench/index.ts in a fresh process, as
// its C twin bench/c/blkif_loop.c is, so that both loops start from a clean runtime and
// nothing else the bench loaded shapes the JIT's view of this one. Prints round trips
// per second and notifications per round trip; the optional argument is how long to
// measure, in ms.
//
// The steps: the front end produces a one-segment read and pushes it, the back end copies
// it out, checks it, responds and pushes, the front end copies the response out; both do
// their final checks.

import { performance } from 'node:perf_hooks';
import { BytesPage, ByteView } from '../rings/page.ts';
import { FrontRing } from '../rings/front-ring.ts';
import { BackRing } from '../rings/back-ring.ts';
import {
  BLKIF_OP_READ, BLKIF_RING, BLKIF_RSP_ERROR, BLKIF_RSP_OKAY, BlkifRequest, BlkifResponse, blkifRequestError,
  decodeBlkifRequest, decodeBlkifResponse, encodeBlkifRequest, encodeBlkifResponse,
} from '../rings/blkif.ts';

/** The loop's state in one object, so the hot path reads fields rather than closure slots. */
class Loop {
  readonly page = BytesPage.zeroed();
  readonly front = FrontRing.init(this.page, BLKIF_RING);
  readonly back = new BackRing(this.page, BLKIF_RING);
  readonly req = new BlkifRequest();
  readonly reqCopy = ByteView.ofSize(BLKIF_RING.requestSize);
  readonly rspCopy = ByteView.ofSize(BLKIF_RING.responseSize);
  readonly got = new BlkifRequest();
  readonly rsp = new BlkifResponse();
  id = 0;
  notifies = 0;

  constructor() {
    this.req.operation = BLKIF_OP_READ;
    this.req.nrSegments = 1;
    this.req.handle = 0;
    this.req.gref[0] = 7;
    this.req.lastSect[0] = 7;
  }

  roundTrip(): void {
    const { page, front, back, req, got, rsp, reqCopy, rspCopy } = this;
    const id = this.id;
    req.idLo = id;
    req.sectorLo = (id * 8) >>> 0;
    req.sectorHi = Math.floor((id * 8) / 4294967296);
    encodeBlkifRequest(page, front.produceRequest(), req);
    if (front.pushRequestsAndCheckNotify()) this.notifies++;
    do {
      while (back.nextRequest(reqCopy)) {
        decodeBlkifRequest(reqCopy, 0, got);
        const status = blkifRequestError(got) === null ? BLKIF_RSP_OKAY : BLKIF_RSP_ERROR;
        encodeBlkifResponse(page, back.produceResponse(), got.idLo, got.idHi, got.operation, status);
      }
      if (back.pushResponsesAndCheckNotify()) this.notifies++;
    } while (back.finalCheckForRequests() !== 0);
    do {
      while (front.nextResponse(rspCopy)) {
        decodeBlkifResponse(rspCopy, 0, rsp);
        if (rsp.idLo !== id || rsp.status !== BLKIF_RSP_OKAY) throw new Error('blkif bench: wrong response');
      }
    } while (front.finalCheckForResponses() !== 0);
    this.id = (id + 1) >>> 0;
  }

  batch(): void {
    for (let i = 0; i < 1000; i++) this.roundTrip();
  }
}

const loop = new Loop();
const ms = Number(process.argv[2] ?? '600');
// Warm up until the JIT's optimising tier has settled, then measure.
const warm = performance.now();
while (performance.now() - warm < 250) loop.batch();
const startId = loop.id;
const startNotifies = loop.notifies;
let n = 0;
const start = performance.now();
let now = start;
while (now - start < ms) {
  loop.batch();
  n += 1000;
  now = performance.now();
}
const trips = (loop.id - startId) >>> 0;
console.log(`${(n * 1000) / (now - start)} ${(loop.notifies - startNotifies) / trips}`);
