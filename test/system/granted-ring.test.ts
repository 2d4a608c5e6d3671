// The split-driver path end to end on the machine: a guest front end grants its ring
// page to Dom0, Dom0's back end grant-maps it and both run a blkif ring through their
// own page tables (rings/ GuestPage views), waking each other over an interdomain event
// channel only when push-and-check-notify says so. Then a hostile front end: impossible
// indices make the back end report the peer broken and stop using that ring (it unmaps
// the grant), a request rewritten after the back end copied it changes nothing, and no
// other domain, ring or invariant is affected.

import { expect } from 'chai';
import { evtchnAllocUnbound, evtchnBindInterdomain, evtchnSend } from '../../guests/lib/evtchn-calls.ts';
import { endForeignAccess, grantAccess, mapGrantRef, setupTable, unmapGrantRef } from '../../guests/lib/grant-calls.ts';
import { PTE_A, PTE_D, PTE_P, PTE_RW, pte, updateVaMapping } from '../../guests/lib/xen-calls.ts';
import { GNTMAP_host_map, GNTST_okay } from '../../hypervisor/public/grant-table.ts';
import { BackRing } from '../../rings/back-ring.ts';
import {
  BLKIF_OP_READ, BLKIF_RING, BLKIF_RSP_OKAY, BlkifRequest, BlkifResponse, decodeBlkifRequest, decodeBlkifResponse,
  encodeBlkifRequest, encodeBlkifResponse,
} from '../../rings/blkif.ts';
import { FrontRing } from '../../rings/front-ring.ts';
import { ByteView, GuestPage } from '../../rings/page.ts';
import { REQ_PROD } from '../../rings/sring.ts';
import { bootTestMachine, type GuestKernel, type TestMachine } from '../support/fixture.ts';

const RING_REF = 8;

interface Split {
  t: TestMachine;
  front: FrontRing;
  back: BackRing;
  /** The front end's and the back end's views of the one ring frame. */
  frontVa: number;
  backVa: number;
  handle: number;
  backPort: number;
  frontPort: number;
}

/** Grants a fresh ring page of `fe` (t.guest) to Dom0, which maps it; an event channel joins them. */
function connect(t: TestMachine = bootTestMachine(), fe: GuestKernel = t.guest): Split {
  const be: GuestKernel = t.dom0;
  const s = setupTable(fe.v, fe.buf, 1);
  const gtVa = fe.allocPage().va;
  expect(updateVaMapping(fe.v, gtVa, pte(s.frames[0], PTE_P | PTE_RW | PTE_A | PTE_D), 0)).to.equal(0);
  const ring = fe.allocPage();
  const front = FrontRing.init(new GuestPage(fe.v, ring.va), BLKIF_RING);
  grantAccess(fe.v, gtVa, RING_REF, be.domid, ring.mfn);
  const frontPort = evtchnAllocUnbound(fe.v, fe.buf, be.domid).port;
  const backVa = be.allocPage().va;
  const m = mapGrantRef(be.v, be.buf, { hostAddr: backVa, flags: GNTMAP_host_map, ref: RING_REF, dom: fe.domid });
  expect(m.status).to.equal(GNTST_okay);
  const backPort = evtchnBindInterdomain(be.v, be.buf, fe.domid, frontPort).port;
  expect(backPort).to.be.greaterThan(0);
  const back = new BackRing(new GuestPage(be.v, backVa), BLKIF_RING);
  return { t, front, back, frontVa: ring.va, backVa, handle: m.handle, backPort, frontPort };
}

function readRequest(id: number): BlkifRequest {
  const r = new BlkifRequest();
  r.operation = BLKIF_OP_READ;
  r.nrSegments = 1;
  r.idLo = id;
  r.sectorLo = id * 8;
  r.gref[0] = 9;
  r.lastSect[0] = 7;
  return r;
}

/** The back end answers everything queued; returns the ids it saw. */
function serve(sp: Split): number[] {
  const buf = ByteView.ofSize(BLKIF_RING.requestSize);
  const req = new BlkifRequest();
  const ids: number[] = [];
  while (sp.back.nextRequest(buf)) {
    decodeBlkifRequest(buf, 0, req);
    encodeBlkifResponse(sp.back.page, sp.back.produceResponse(), req.idLo, req.idHi, req.operation, BLKIF_RSP_OKAY);
    ids.push(req.idLo);
  }
  if (sp.back.pushResponsesAndCheckNotify()) evtchnSend(sp.t.dom0.v, sp.t.dom0.buf, sp.backPort);
  return ids;
}

describe('system: a blkif ring on a granted page between a guest and Dom0', () => {
  it('requests and responses cross through both page tables; notifications only when the peer asked', () => {
    const sp = connect();
    const fe = sp.t.guest;
    let sends = 0;
    for (let id = 1; id <= 40; id++) {
      encodeBlkifRequest(sp.front.page, sp.front.produceRequest(), readRequest(id));
      if (sp.front.pushRequestsAndCheckNotify()) {
        expect(evtchnSend(fe.v, fe.buf, sp.frontPort)).to.equal(0);
        sends++;
      }
      expect(serve(sp)).to.deep.equal([id]);
      const rsp = ByteView.ofSize(BLKIF_RING.responseSize);
      expect(sp.front.nextResponse(rsp)).to.equal(true);
      expect(decodeBlkifResponse(rsp, 0, new BlkifResponse()).idLo).to.equal(id);
    }
    // The back end never did its final check, so req_event stayed at 1: one notification.
    expect(sends).to.equal(1);
    expect(sp.back.finalCheckForRequests()).to.equal(0);
    encodeBlkifRequest(sp.front.page, sp.front.produceRequest(), readRequest(41));
    expect(sp.front.pushRequestsAndCheckNotify()).to.equal(true);
    sp.t.check();
  });

  it('a front end writing req_prod far beyond the ring: the back end reports it broken, stops, unmaps; nothing else is hurt', () => {
    const sp = connect();
    const { t } = sp;
    const other = t.other;
    other.v.store32(other.buf, 0xfeed);
    encodeBlkifRequest(sp.front.page, sp.front.produceRequest(), readRequest(1));
    sp.front.pushRequests();
    expect(serve(sp)).to.deep.equal([1]);
    // The hostile step: through its own mapping of the ring.
    t.guest.v.store32(sp.frontVa + REQ_PROD, 1 + 1000);
    expect(serve(sp)).to.deep.equal([]);
    expect(sp.back.fault).to.not.equal(null);
    expect(sp.back.fault!.index).to.equal('req_prod');
    // Broken for good: a sane index afterwards changes nothing.
    t.guest.v.store32(sp.frontVa + REQ_PROD, 2);
    expect(serve(sp)).to.deep.equal([]);
    // The back end lets go of the ring: the grant is unmapped and the front may revoke it.
    expect(unmapGrantRef(t.dom0.v, t.dom0.buf, { hostAddr: sp.backVa, devBusAddr: 0, handle: sp.handle }).status)
      .to.equal(GNTST_okay);
    t.check();
    expect(other.v.load32(other.buf)).to.equal(0xfeed);
    // Dom0 serves a second, well-behaved front end (the bystander) on a new ring as before.
    const sp2 = connect(t, other);
    encodeBlkifRequest(sp2.front.page, sp2.front.produceRequest(), readRequest(7));
    sp2.front.pushRequests();
    expect(serve(sp2)).to.deep.equal([7]);
    sp2.t.check();
  });

  it('a request rewritten after the back end copied it changes nothing the back end acts on', () => {
    const sp = connect();
    const slot = sp.front.produceRequest();
    encodeBlkifRequest(sp.front.page, slot, readRequest(5));
    sp.front.pushRequests();
    const copy = ByteView.ofSize(BLKIF_RING.requestSize);
    expect(sp.back.nextRequest(copy)).to.equal(true);
    // The front end rewrites the slot (id and segment count) after the copy.
    const evil = readRequest(666);
    evil.nrSegments = 200;
    encodeBlkifRequest(sp.front.page, slot, evil);
    const req = decodeBlkifRequest(copy, 0, new BlkifRequest());
    expect([req.idLo, req.nrSegments]).to.deep.equal([5, 1]);
    sp.t.check();
  });

  it('the granter cannot revoke the ring while the back end maps it, and can once it is unmapped', () => {
    const sp = connect();
    const fe = sp.t.guest;
    const si = setupTable(fe.v, fe.buf, 1); // the same frame again
    const gtVa = fe.allocPage().va;
    expect(updateVaMapping(fe.v, gtVa, pte(si.frames[0], PTE_P | PTE_RW | PTE_A | PTE_D), 0)).to.equal(0);
    expect(endForeignAccess(fe.v, gtVa, RING_REF)).to.equal(false);
    expect(unmapGrantRef(sp.t.dom0.v, sp.t.dom0.buf, { hostAddr: sp.backVa, devBusAddr: 0, handle: sp.handle }).status)
      .to.equal(GNTST_okay);
    expect(endForeignAccess(fe.v, gtVa, RING_REF)).to.equal(true);
    sp.t.check();
  });
});
