// The back end of an io/ring.h ring (struct <name>_back_ring and the macros that take
// one): consumes requests, each copied into private memory before anything looks at it,
// produces responses, pushes them with the notification check, and does the final check
// before sleeping. rings/ layer: imports only hypervisor/public/.
//
// The front end is not trusted. Its req_prod is read once per step and checked before
// use: an index no well-behaved front end could publish (more requests than slots, or an
// index that went backwards) makes this side give the ring up for good (`fault`), as
// Linux's blkback halts a ring on "bogus ring requests". Private indices only move by
// this side's own steps, so nothing a front end writes makes it read outside the ring,
// consume a slot twice, or write a response slot the front end still owns.

import type { ByteView, PageView } from './page.ts';
import {
  REQ_EVENT, REQ_PROD, RSP_EVENT, RSP_PROD, SRING_RING_OFFSET, ringFault, type RingFault, type RingFormat,
} from './sring.ts';

export class BackRing {
  /** rsp_prod_pvt: responses produced, pushed or not yet. */
  rspProdPvt: number;
  /** req_cons: requests consumed (copied out). */
  reqCons: number;
  /** RING_SIZE: the slots in the ring (a power of two). */
  readonly nrEnts: number;
  private readonly slotSize: number;
  private readonly mask: number;
  private readonly requestSize: number;
  private fault_: RingFault | null = null;

  /**
   * BACK_RING_ATTACH: takes over a ring whose shared indices are at `start` (0 is
   * BACK_RING_INIT, for a ring the front end has just initialised).
   */
  constructor(
    readonly page: PageView,
    readonly format: RingFormat,
    start = 0,
  ) {
    this.rspProdPvt = start >>> 0;
    this.reqCons = start >>> 0;
    this.nrEnts = format.nrEnts;
    this.slotSize = format.slotSize;
    this.mask = format.nrEnts - 1;
    this.requestSize = format.requestSize;
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

  /**
   * RING_HAS_UNCONSUMED_REQUESTS (XEN_RING_NR_UNCONSUMED_REQUESTS): the smaller of
   * req_prod - req_cons and the slots not awaiting a response, so a front end's req_prod
   * alone can never claim more than the ring holds.
   */
  unconsumedRequests(): number {
    const req = (this.page.read32(REQ_PROD) - this.reqCons) >>> 0;
    const rsp = this.nrEnts - ((this.reqCons - this.rspProdPvt) >>> 0);
    return req < rsp ? req : rsp;
  }

  /** RING_REQUEST_CONS_OVERFLOW: would consuming index `cons` overrun unanswered requests? */
  requestConsOverflow(cons: number): boolean {
    return ((cons - this.rspProdPvt) >>> 0) >= this.nrEnts;
  }

  /** RING_REQUEST_PROD_OVERFLOW: could there be this many requests? */
  requestProdOverflow(prod: number): boolean {
    return ((prod - this.rspProdPvt) >>> 0) > this.nrEnts;
  }

  /**
   * Consumes the request at req_cons: copies it (RING_COPY_REQUEST, requestSize bytes)
   * into `dst` and advances req_cons; validate and act on `dst` only. False when there
   * is none to take (or responses must be produced first, RING_REQUEST_CONS_OVERFLOW), or
   * when the front end's req_prod is impossible — then the ring has a fault and is given up.
   */
  nextRequest(dst: ByteView): boolean {
    if (this.fault_ !== null) return false;
    const page = this.page;
    const prod = page.read32(REQ_PROD);
    page.rmb(); // see the requests up to prod
    const ahead = (prod - this.rspProdPvt) >>> 0;
    if (ahead > this.nrEnts || ahead < ((this.reqCons - this.rspProdPvt) >>> 0)) {
      this.fault_ = ringFault('req_prod', prod, this.reqCons, (this.rspProdPvt + this.nrEnts) >>> 0);
      return false;
    }
    if (prod === this.reqCons || this.requestConsOverflow(this.reqCons)) return false;
    page.copyOut(this.slotOffset(this.reqCons), dst, 0, this.requestSize);
    this.reqCons = (this.reqCons + 1) >>> 0;
    return true;
  }

  /**
   * Claims the slot at rsp_prod_pvt for the response to the oldest unanswered request
   * and advances rsp_prod_pvt; returns the slot's byte offset for the caller to fill.
   * Not visible to the front end until pushed. Returns -1 once the ring has a fault.
   * Responding with no request outstanding is a bug and throws.
   */
  produceResponse(): number {
    if (this.fault_ !== null) return -1;
    if (this.rspProdPvt === this.reqCons) {
      throw new Error(`${this.format.name} back ring: no consumed request is waiting for a response`);
    }
    const off = this.slotOffset(this.rspProdPvt);
    this.rspProdPvt = (this.rspProdPvt + 1) >>> 0;
    return off;
  }

  /** RING_PUSH_RESPONSES: publishes rsp_prod_pvt, bodies first. */
  pushResponses(): void {
    if (this.fault_ !== null) return;
    this.page.wmb(); // the front end sees the responses before the index that covers them
    this.page.write32(RSP_PROD, this.rspProdPvt);
  }

  /**
   * RING_PUSH_RESPONSES_AND_CHECK_NOTIFY: publishes rsp_prod_pvt and says whether the
   * front end must be notified: iff rsp_event lies in (old rsp_prod, new rsp_prod], that
   * is (u32)(new - rsp_event) < (u32)(new - old). False once the ring has a fault.
   */
  pushResponsesAndCheckNotify(): boolean {
    if (this.fault_ !== null) return false;
    const page = this.page;
    const old = page.read32(RSP_PROD);
    const now = this.rspProdPvt;
    page.wmb(); // the front end sees the responses before the index that covers them
    page.write32(RSP_PROD, now);
    page.mb(); // ... and the new index before this side reads rsp_event
    return ((now - page.read32(RSP_EVENT)) >>> 0) < ((now - old) >>> 0);
  }

  /**
   * RING_FINAL_CHECK_FOR_REQUESTS, before waiting for a notification: the number of
   * unconsumed requests; when there are none, first sets req_event = req_cons + 1 (so
   * the next request notifies) and checks again after a full barrier. 0 once the ring
   * has a fault.
   */
  finalCheckForRequests(): number {
    if (this.fault_ !== null) return 0;
    const work = this.unconsumedRequests();
    if (work !== 0) return work;
    this.page.write32(REQ_EVENT, (this.reqCons + 1) >>> 0);
    this.page.mb(); // req_event visible before req_prod is read again
    return this.unconsumedRequests();
  }
}
