// Interop with Xen's own ring code: a C program built against libxen-dev's io/ring.h and
// io/blkif.h (test/interop/c/blkif_peer.c) is one end of a blkif ring whose page is a
// file it shares with the TypeScript end, the two taking turns. Beside them, a TypeScript
// front and back end run the same steps on a reference page. After every step the shared
// page equals the reference byte for byte, and the C end reports the same requests or
// responses, notify decisions, work counts and private indices as its TypeScript twin —
// with the indices started just below 2^32 so that they wrap. TS front + C back, and
// C front + TS back. Pending when gcc or libxen-dev is missing.
// Seeded: XENSIM_SEED=<n> reproduces a run; the seed is in every failure message.

import { expect } from 'chai';
import { spawn, type ChildProcessWithoutNullStreams } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { createInterface } from 'node:readline';
import { fileURLToPath } from 'node:url';
import { BackRing } from '../../rings/back-ring.ts';
import {
  BLKIF_OP_READ, BLKIF_OP_WRITE, BLKIF_RING, BLKIF_RSP_ERROR, BLKIF_RSP_OKAY, BlkifRequest, BlkifResponse,
  blkifRequestError, decodeBlkifRequest, decodeBlkifResponse, encodeBlkifRequest, encodeBlkifResponse,
} from '../../rings/blkif.ts';
import { FrontRing } from '../../rings/front-ring.ts';
import { BytesPage, ByteView } from '../../rings/page.ts';
import { REQ_EVENT, REQ_PROD, RSP_EVENT, RSP_PROD, sharedRingInit } from '../../rings/sring.ts';
import { itNeeds, missingPackages } from '../support/needs.ts';
import { XEN_C_NEEDS, buildXenC } from '../support/xen-c.ts';

const SEED = Number(process.env.XENSIM_SEED ?? 20261121);
const START = 0xfffffff0;
const STEPS = 300;
const PEER_SOURCE = join(dirname(fileURLToPath(import.meta.url)), 'c', 'blkif_peer.c');

/** The request with sequence number k, built exactly as blkif_peer.c's build_request. */
function requestFor(k: number): BlkifRequest {
  const r = new BlkifRequest();
  r.operation = k % 2 ? BLKIF_OP_WRITE : BLKIF_OP_READ;
  r.nrSegments = k % 7 === 6 ? 0 : 1 + (k % 11);
  r.handle = 51712;
  r.idLo = k >>> 0;
  r.idHi = (k ^ 0xa5a5a5a5) >>> 0;
  r.sectorLo = (k * 8) >>> 0;
  r.sectorHi = Math.floor((k * 8) / 2 ** 32) + (k & 3);
  for (let j = 0; j < r.nrSegments; j++) {
    r.gref[j] = (k * 16 + j) >>> 0;
    r.firstSect[j] = j % 8;
    r.lastSect[j] = k % 5 === 4 && j === 0 ? 8 : 7;
  }
  return r;
}

/** What a peer answers a command with: blkif_peer.c's JSON line. */
type Reply = Record<string, unknown> & { pvt: [number, number] };

/** A TypeScript end answering blkif_peer.c's commands with rings/. */
class TsFront {
  private ring: FrontRing | null = null;
  private readonly buf = ByteView.ofSize(BLKIF_RING.responseSize);

  constructor(private readonly page: BytesPage) {}

  command(cmd: string, a: number, b: number): Reply {
    const out: Record<string, unknown> = {};
    if (cmd === 'init') sharedRingInit(this.page);
    else if (cmd === 'attach') {
      this.ring = new FrontRing(this.page, BLKIF_RING, a);
      out.nr_ents = this.ring.nrEnts;
    } else {
      const ring = this.ring!;
      if (cmd === 'produce') {
        for (let i = 0; i < a && !ring.full(); i++) encodeBlkifRequest(this.page, ring.produceRequest(), requestFor(b + i));
        out.free = ring.freeRequests();
      } else if (cmd === 'push') out.notify = ring.pushRequestsAndCheckNotify() ? 1 : 0;
      else if (cmd === 'consume') {
        const responses: number[][] = [];
        const rsp = new BlkifResponse();
        while (responses.length < a && ring.nextResponse(this.buf)) {
          decodeBlkifResponse(this.buf, 0, rsp);
          responses.push([rsp.idLo, rsp.idHi, rsp.operation, rsp.status]);
        }
        out.responses = responses;
        out.overflow = ring.fault ? 1 : 0;
      } else if (cmd === 'final') out.work = ring.finalCheckForResponses();
      else throw new Error(`front end: no command ${cmd}`);
    }
    return { ...out, pvt: this.ring ? [this.ring.reqProdPvt, this.ring.rspCons] : [0, 0] };
  }
}

class TsBack {
  private ring: BackRing | null = null;
  private readonly buf = ByteView.ofSize(BLKIF_RING.requestSize);
  private readonly unanswered: { idLo: number; idHi: number; op: number; status: number }[] = [];

  constructor(private readonly page: BytesPage) {}

  command(cmd: string, a: number, _b: number): Reply {
    const out: Record<string, unknown> = {};
    if (cmd === 'init') sharedRingInit(this.page);
    else if (cmd === 'attach') {
      this.ring = new BackRing(this.page, BLKIF_RING, a);
      out.nr_ents = this.ring.nrEnts;
    } else {
      const ring = this.ring!;
      if (cmd === 'consume') {
        const requests: number[][] = [];
        const req = new BlkifRequest();
        while (requests.length < a && ring.nextRequest(this.buf)) {
          decodeBlkifRequest(this.buf, 0, req);
          const ok = blkifRequestError(req) === null;
          this.unanswered.push({ idLo: req.idLo, idHi: req.idHi, op: req.operation, status: ok ? BLKIF_RSP_OKAY : BLKIF_RSP_ERROR });
          requests.push([req.idLo, req.idHi, req.operation, req.nrSegments, req.sectorLo, req.sectorHi, ok ? 1 : 0]);
        }
        out.requests = requests;
        out.overflow = ring.fault ? 1 : 0;
      } else if (cmd === 'respond') {
        let n = 0;
        for (; n < a && this.unanswered.length > 0; n++) {
          const r = this.unanswered.shift()!;
          encodeBlkifResponse(this.page, ring.produceResponse(), r.idLo, r.idHi, r.op, r.status);
        }
        out.responded = n;
      } else if (cmd === 'push') out.notify = ring.pushResponsesAndCheckNotify() ? 1 : 0;
      else if (cmd === 'final') out.work = ring.finalCheckForRequests();
      else throw new Error(`back end: no command ${cmd}`);
    }
    return { ...out, pvt: this.ring ? [this.ring.rspProdPvt, this.ring.reqCons] : [0, 0] };
  }
}

/** blkif_peer.c running as one end: one command out, one JSON line back. */
class CPeer {
  private readonly proc: ChildProcessWithoutNullStreams;
  private readonly lines: string[] = [];
  private waiting: ((line: string | null) => void) | null = null;
  private stderr = '';
  private exited = false;

  constructor(exe: string, role: 'front' | 'back', pageFile: string) {
    this.proc = spawn(exe, [role, pageFile]);
    this.proc.stderr.on('data', (d: Buffer) => (this.stderr += d.toString()));
    createInterface({ input: this.proc.stdout }).on('line', (line) => {
      const w = this.waiting;
      this.waiting = null;
      if (w) w(line);
      else this.lines.push(line);
    });
    this.proc.on('exit', () => {
      this.exited = true;
      const w = this.waiting;
      this.waiting = null;
      if (w) w(null);
    });
  }

  async send(cmd: string): Promise<Reply> {
    this.proc.stdin.write(`${cmd}\n`);
    const line = this.lines.shift() ?? (this.exited ? null : await new Promise<string | null>((r) => (this.waiting = r)));
    if (line === null) throw new Error(`blkif_peer exited at "${cmd}": ${this.stderr}`);
    return JSON.parse(line) as Reply;
  }

  async close(): Promise<void> {
    if (this.exited) return;
    const done = new Promise<void>((r) => this.proc.on('exit', () => r()));
    this.proc.stdin.end();
    await done;
  }
}

/** mulberry32: a small seeded generator for the step script. */
function prng(seed: number): (n: number) => number {
  let s = seed >>> 0;
  return (n) => {
    s = (s + 0x6d2b79f5) >>> 0;
    let t = s;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return (((t ^ (t >>> 14)) >>> 0) % n);
  };
}

/** Sets a page up as the front end would before indices start at `start`. */
function initPage(page: BytesPage, start: number): void {
  for (let i = 0; i < 4096; i++) page.bytes[i] = (i * 13 + 7) & 0xff; // stale contents of a reused frame
  sharedRingInit(page);
  page.write32(REQ_PROD, start);
  page.write32(RSP_PROD, start);
  page.write32(REQ_EVENT, (start + 1) >>> 0);
  page.write32(RSP_EVENT, (start + 1) >>> 0);
}

interface Tally {
  notify: Record<'front' | 'back', Set<number>>;
  errors: number;
  answered: number;
}

/**
 * Runs the seeded script with the C program as `cSide` and TypeScript as the other end
 * on a shared page file, and a TypeScript pair on a reference page; compares as it goes.
 */
async function lockStep(exe: string, dir: string, cSide: 'front' | 'back'): Promise<Tally & { end: number }> {
  const file = join(dir, `page-${cSide}`);
  const shared = BytesPage.zeroed();
  const ref = BytesPage.zeroed();
  initPage(shared, START);
  initPage(ref, START);
  writeFileSync(file, shared.bytes);
  const c = new CPeer(exe, cSide, file);
  const ts = cSide === 'back' ? new TsFront(shared) : new TsBack(shared);
  const refs = { front: new TsFront(ref), back: new TsBack(ref) };
  const tally: Tally = { notify: { front: new Set(), back: new Set() }, errors: 0, answered: 0 };
  let stepNo = 0;

  const step = async (side: 'front' | 'back', cmd: string, a = 0, b = 0): Promise<Reply> => {
    const where = `step ${stepNo++} (${side} ${cmd} ${a} ${b}; C is the ${cSide} end; seed ${SEED})`;
    let got: Reply;
    if (side === cSide) {
      writeFileSync(file, shared.bytes);
      got = await c.send(`${cmd} ${a} ${b}`);
      shared.bytes.set(readFileSync(file));
    } else {
      got = ts.command(cmd, a, b);
    }
    const want = refs[side].command(cmd, a, b);
    expect(got, where).to.deep.equal(want);
    const diff = shared.bytes.findIndex((x, i) => x !== ref.bytes[i]);
    expect(diff, `${where}: first differing page byte`).to.equal(-1);
    if (cmd === 'push') tally.notify[side].add(want.notify as number);
    if (side === 'front' && cmd === 'consume') {
      for (const r of want.responses as number[][]) {
        tally.answered++;
        if (r[3] === BLKIF_RSP_ERROR) tally.errors++;
      }
    }
    return want;
  };

  try {
    await step('front', 'attach', START);
    await step('back', 'attach', START);
    const rnd = prng(SEED ^ (cSide === 'front' ? 0x1234 : 0));
    let seq = 0;
    let free = BLKIF_RING.nrEnts;
    for (let i = 0; i < STEPS; i++) {
      const n = 1 + rnd(8);
      switch (rnd(8)) {
        case 0:
        case 1: {
          const r = await step('front', 'produce', Math.min(n, free), seq);
          seq += Math.min(n, free);
          free = r.free as number;
          break;
        }
        case 2: await step('front', 'push'); break;
        case 3: await step('back', 'consume', n); break;
        case 4: await step('back', 'respond', n); break;
        case 5: await step('back', 'push'); break;
        case 6: await step(rnd(2) ? 'back' : 'front', 'final'); break;
        default: {
          const r = await step('front', 'consume', n);
          free += (r.responses as unknown[]).length;
        }
      }
    }
    // Finish the work in flight, then both ends go idle.
    await step('front', 'push');
    await step('back', 'consume', 64);
    await step('back', 'respond', 64);
    await step('back', 'push');
    await step('back', 'final');
    await step('front', 'consume', 64);
    const last = await step('front', 'final');
    expect(last.work, 'work left at the end').to.equal(0);
    expect(tally.answered, 'requests answered').to.equal(seq);
    return { ...tally, end: last.pvt[0] };
  } finally {
    await c.close();
  }
}

const itC = itNeeds(XEN_C_NEEDS);

describe("interop: a blkif ring shared with a C end built on Xen's io/ring.h", () => {
  let dir = '';
  let exe = '';

  before(() => {
    if (missingPackages(XEN_C_NEEDS).length > 0) return;
    dir = mkdtempSync(join(tmpdir(), 'xensim-interop-'));
    exe = join(dir, 'blkif_peer');
    buildXenC(PEER_SOURCE, exe);
  });
  after(() => {
    if (dir) rmSync(dir, { recursive: true, force: true });
  });

  itC('SHARED_RING_INIT in C and sharedRingInit leave the same page', async () => {
    const file = join(dir, 'page-init');
    const page = BytesPage.zeroed();
    for (let i = 0; i < 4096; i++) page.bytes[i] = (i * 101) & 0xff;
    writeFileSync(file, page.bytes);
    const c = new CPeer(exe, 'front', file);
    try {
      await c.send('init');
    } finally {
      await c.close();
    }
    sharedRingInit(page);
    expect(Buffer.from(readFileSync(file)).equals(Buffer.from(page.bytes))).to.equal(true);
  });

  for (const cSide of ['back', 'front'] as const) {
    const tsSide = cSide === 'back' ? 'front' : 'back';
    itC(`TS ${tsSide} end + C ${cSide} end from 0x${START.toString(16)}: same bytes, indices and notify decisions at every step`,
      async () => {
        const t = await lockStep(exe, dir, cSide);
        // The script is only a test if it wrapped the indices, notified and suppressed on
        // both sides, and carried requests the back end had to refuse.
        expect(t.end, 'req_prod_pvt at the end').to.be.below(START);
        expect([...t.notify.front].sort(), 'front push notify decisions').to.deep.equal([0, 1]);
        expect([...t.notify.back].sort(), 'back push notify decisions').to.deep.equal([0, 1]);
        expect(t.errors, 'requests answered BLKIF_RSP_ERROR').to.be.greaterThan(0);
      });
  }
});
