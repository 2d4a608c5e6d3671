// The front end of an io/ring.h ring (struct <name>_front_ring and the macros that take
// one): produces requests, pushes them with the notification check, consumes responses
// (each copied out before anyone reads it) and does the final check before sleeping.
// rings/ layer: imports only hypervisor/public/.
//
// Indices are free-running u32s (RING_IDX): every difference is taken `>>> 0`. The
// private indices only ever move by this side's own steps, so a back end that writes
// nonsense into the shared page can make this side give the ring up (`fault`), but never
// make it read outside the ring or count a response twice.

import type { ByteView, PageView } from './page.ts';
import {
  REQ_EVENT, REQ_PROD, RSP_EVENT, RSP_PROD, SRING_RING_OFFSET, ringFault, sharedRingInit, type RingFault, type RingFormat,
} from './sring.ts';

export class FrontRing {
  /** req_prod_pvt: requests produced, pushed or not yet. */
  reqProdPvt: number;
  /** rsp_cons: responses consumed. */
  rspCons: number;
  /** RING_SIZE: the slots in the ring (a power of two). */
  readonly nrEnts: number;
  private readonly slotSize: number;
  private readonly mask: number;
  private readonly responseSize: number;
  private fault_: RingFault | null = null;

  /**
   * FRONT_RING_ATTACH: takes over a ring whose shared indices are at `start` (0 is
   * FRONT_RING_INIT, for a ring SHARED_RING_INIT just set up).
   */
  constructor(
    readonly page: PageView,
    readonly format: RingFormat,
    start = 0,
  ) {
    this.reqProdPvt = start >>> 0;
    this.rspCons = start >>> 0;
    this.nrEnts = format.nrEnts;
    this.slotSize = format.slotSize;
    this.mask = format.nrEnts - 1;
    this.responseSize = format.responseSize;
  }

  /** XEN_FRONT_RING_INIT: SHARED_RING_INIT on `page`, then FRONT_RING_INIT. */
  static init(page: PageView, format: RingFormat): FrontRing {
    sharedRingInit(page);
    return new FrontRing(page, format, 0);
  }

  /**
   * Why this side gave the ring up, or null while it is in use. Once set, every
   * operation refuses: nothing more is read from or written to the page.
   */
  get fault(): RingFault | null {
    return this.fault_;
  }

  /** RING_GET_REQUEST / RING_GET_RESPONSE: the byte offset of the slot for index `idx`. */
  slotOffset(idx: number): number {
    return SRING_RING_OFFSET + (idx & this.mask) * this.slotSize;
  }

  /** RING_FREE_REQUESTS: slots not holding a request still waiting for its response. */
  freeRequests(): number {
    return this.nrEnts - ((this.reqProdPvt - this.rspCons) >>> 0);
  }

  /** RING_FULL. */
  full(): boolean {
    return this.freeRequests() === 0;
  }

  /** RING_HAS_UNCONSUMED_RESPONSES (XEN_RING_NR_UNCONSUMED_RESPONSES): rsp_prod - rsp_cons. */
  unconsumedResponses(): number {
    return (this.page.read32(RSP_PROD) - this.rspCons) >>> 0;
  }

  /** RING_RESPONSE_PROD_OVERFLOW: could there be this many responses? */
  responseProdOverflow(prod: number): boolean {
    return ((prod - this.rspCons) >>> 0) > this.nrEnts;
  }

  /**
   * Claims the slot at req_prod_pvt for a new request and advances req_prod_pvt; returns
   * the slot's byte offset for the caller to fill. Not visible to the back end until
   * pushed. Returns -1 once the ring has a fault. The caller checks full() first:
   * producing into a full ring is a bug and throws.
   */
  produceRequest(): number {
    if (this.fault_ !== null) return -1;
    if (this.full()) throw new Error(`${this.format.name} front ring is full: check full() before producing`);
    const off = this.slotOffset(this.reqProdPvt);
    this.reqProdPvt = (this.reqProdPvt + 1) >>> 0;
    return off;
  }

  /** RING_PUSH_REQUESTS: publishes req_prod_pvt, bodies first. */
  pushRequests(): void {
    if (this.fault_ !== null) return;
    this.page.wmb(); // the back end sees the requests before the index that covers them
    this.page.write32(REQ_PROD, this.reqProdPvt);
  }

  /**
   * RING_PUSH_REQUESTS_AND_CHECK_NOTIFY: publishes req_prod_pvt and says whether the back
   * end must be notified: iff req_event lies in (old req_prod, new req_prod], that is
   * (u32)(new - req_event) < (u32)(new - old). False once the ring has a fault.
   */
  pushRequestsAndCheckNotify(): boolean {
    if (this.fault_ !== null) return false;
    const page = this.page;
    const old = page.read32(REQ_PROD);
    const now = this.reqProdPvt;
    page.wmb(); // the back end sees the requests before the index that covers them
    page.write32(REQ_PROD, now);
    page.mb(); // ... and the new index before this side reads req_event
    return ((now - page.read32(REQ_EVENT)) >>> 0) < ((now - old) >>> 0);
  }

  /**
   * Consumes the response at rsp_cons: copies it (RING_COPY_RESPONSE, responseSize
   * bytes) into `dst` and advances rsp_cons. False when there is none, or when the back
   * end's rsp_prod is impossible — more responses than requests outstanding — in which
   * case the ring now has a fault and is given up.
   */
  nextResponse(dst: ByteView): boolean {
    if (this.fault_ !== null) return false;
    const page = this.page;
    const prod = page.read32(RSP_PROD);
    page.rmb(); // see the responses up to prod
    const outstanding = (this.reqProdPvt - this.rspCons) >>> 0;
    if (((prod - this.rspCons) >>> 0) > outstanding) {
      this.fault_ = ringFault('rsp_prod', prod, this.rspCons, this.reqProdPvt);
      return false;
    }
    if (prod === this.rspCons) return false;
    page.copyOut(this.slotOffset(this.rspCons), dst, 0, this.responseSize);
    this.rspCons = (this.rspCons + 1) >>> 0;
    return true;
  }

  /**
   * RING_FINAL_CHECK_FOR_RESPONSES, before waiting for a notification: the number of
   * unconsumed responses; when there are none, first sets rsp_event = rsp_cons + 1 (so
   * the next response notifies) and checks again after a full barrier. 0 once the ring
   * has a fault.
   */
  finalCheckForResponses(): number {
    if (this.fault_ !== null) return 0;
    const work = this.unconsumedResponses();
    if (work !== 0) return work;
    this.page.write32(RSP_EVENT, (this.rspCons + 1) >>> 0);
    this.page.mb(); // rsp_event visible before rsp_prod is read again
    return this.unconsumedResponses();
  }
}
