// xensim bench: blkif request/response round trips through rings/ on one page (host
// bytes), front and back end in one thread. Run by bench/index.ts in a fresh process, as
// its C twin bench/c/blkif_loop.c is, so that both loops start from a clean runtime and
// nothing else the bench loaded shapes the JIT's view of this one. Measured as the C
// loop is: after a warm-up, WINDOWS windows of this process's CPU time (time the host
// gives to other processes is not counted), and the best window's rate. Prints round
// trips per second and notifications per round trip; the optional argument is the CPU
// time to measure, in ms.
//
// The steps: the front end produces a one-segment read and pushes it, the back end copies
// it out, checks it, responds and pushes, the front end copies the response out; both do
// their final checks.

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

/** CPU time this process has used, in ms (user and system, every thread). */
function cpuMs(): number {
  const { user, system } = process.cpuUsage();
  return (user + system) / 1000;
}

const WINDOWS = 8;
const loop = new Loop();
const ms = Number(process.argv[2] ?? '600');
// Warm up until the JIT's optimising tier has settled, then measure.
const warm = cpuMs();
while (cpuMs() - warm < 250) loop.batch();
loop.notifies = 0;
let best = 0;
let counted = 0;
for (let w = 0; w < WINDOWS; w++) {
  let n = 0;
  const start = cpuMs();
  let elapsed = 0;
  do {
    loop.batch();
    n += 1000;
    elapsed = cpuMs() - start;
  } while (elapsed < ms / WINDOWS);
  best = Math.max(best, (n * 1000) / elapsed);
  counted += n;
}
console.log(`${best} ${loop.notifies / counted}`);
