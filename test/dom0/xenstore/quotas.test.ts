// XenStore quotas for unprivileged domains, with xenstored 4.17's defaults, and what
// releasing a domain takes with it. The memory figures are those the reference 4.17
// daemon printed for the same steps (notes xen-rules-5 §7).
// Seeded where random: XENSIM_SEED=<n> reproduces a run; the seed is printed on failure.

import { expect } from 'chai';
import fc from 'fast-check';
import { watchMemory } from '../../../dom0/xenstore/connection.ts';
import { nodeMemory } from '../../../dom0/xenstore/store.ts';
import * as W from '../../../dom0/xenstore/wire.ts';
import type { XenStored } from '../../../dom0/xenstore/xenstored.ts';
import { Client, bytes, guest, xenstored } from '../../support/xs-harness.ts';

const SEED = Number(process.env.XENSIM_SEED ?? 20260611);
const RUNS = Number(process.env.XENSIM_RUNS ?? 40);

/** A number from CONTROL `quota <domid>`'s report. */
function reported(dom0: Client, domid: number, what: string): number {
  const m = new RegExp(`${what} *: *(-?[0-9]+)`).exec(dom0.req(W.XS_CONTROL, `quota|${domid}|`));
  if (m === null) throw new Error(`no ${what} in quota ${domid}`);
  return Number(m[1]);
}

/** The id a TRANSACTION_START reply names. */
function txOf(reply: string): number {
  return Number(reply.slice(0, -1));
}

/** Gives domain `domid` a memory quota `room` bytes above what it uses now. */
function leaveRoom(d: XenStored, dom0: Client, domid: number, room: number): void {
  expect(dom0.req(W.XS_SET_QUOTA, `${domid}|memory|${d.domains.get(domid).memory + room}|`)).to.equal('OK|');
}

/** Memory counted from scratch: the nodes a domain owns and its connections' watches. */
function recount(d: XenStored, domid: number): number {
  let bytes = 0;
  for (const node of d.store.walk()) if (node.perms.ids[0] === domid) bytes += nodeMemory(node);
  for (const c of d.connections) if (c.domid === domid) for (const w of c.watches) bytes += watchMemory(w.name, w.token);
  return bytes;
}

describe('xenstored quotas', () => {
  it('a domain may hold 129 watches; the 130th is E2BIG (the check is count > 128 before adding)', () => {
    const { d, dom0 } = xenstored();
    const g = guest(d, dom0, 3);
    for (let i = 0; i < 129; i++) expect(g.req(W.XS_WATCH, `w${i}|t|`), `watch ${i}`).to.equal('OK|');
    expect(g.req(W.XS_WATCH, 'w129|t|')).to.equal('E:E2BIG');
    expect(g.req(W.XS_UNWATCH, 'w0|t|')).to.equal('OK|');
    expect(g.req(W.XS_WATCH, 'w129|t|')).to.equal('OK|');
  });

  it('a connection may have 11 transactions open; the 12th is ENOSPC', () => {
    const { d, dom0 } = xenstored();
    const g = guest(d, dom0, 3);
    for (let i = 0; i < 11; i++) expect(g.req(W.XS_TRANSACTION_START, '|')).to.match(/^[0-9]+\|$/);
    expect(g.req(W.XS_TRANSACTION_START, '|')).to.equal('E:ENOSPC');
  });

  it('dom0\'s tools have no quota', () => {
    const { dom0 } = xenstored();
    for (let i = 0; i < 200; i++) expect(dom0.req(W.XS_WATCH, `/w${i}|t|`)).to.equal('OK|');
    for (let i = 0; i < 20; i++) expect(dom0.req(W.XS_TRANSACTION_START, '|')).to.match(/^[0-9]+\|$/);
    expect(dom0.req(W.XS_WRITE, `/big|${'v'.repeat(4000)}`)).to.equal('OK|');
    expect(dom0.req(W.XS_SET_PERMS, '/big|n0|r1|r2|r3|r4|r5|r6|r7|')).to.equal('OK|');
  });

  it('a node record of 2048 bytes or more (header, permissions, value, child names) is ENOSPC', () => {
    const { d, dom0 } = xenstored();
    const g = guest(d, dom0, 3);
    // 24 bytes of header and 8 per permission entry: one entry leaves 2015 bytes of value.
    expect(g.req(W.XS_WRITE, `v|${'x'.repeat(2015)}`)).to.equal('OK|');
    expect(g.req(W.XS_WRITE, `v|${'x'.repeat(2016)}`)).to.equal('E:ENOSPC');
    expect(g.req(W.XS_READ, 'v|').length).to.equal(2015);
    expect(g.req(W.XS_WRITE, `new|${'x'.repeat(2016)}`)).to.equal('E:ENOSPC');
    expect(g.req(W.XS_READ, 'new|')).to.equal('E:ENOENT');
  });

  it('child names count in the parent\'s record: a child that would take it to 2048 bytes is ENOSPC', () => {
    const { d, dom0 } = xenstored();
    const g = guest(d, dom0, 3);
    // n0..n424 with their NULs are 2015 bytes of names.
    for (let i = 0; i < 425; i++) expect(g.req(W.XS_MKDIR, `kids/n${i}|`)).to.equal('OK|');
    expect(g.req(W.XS_MKDIR, 'kids/n425|')).to.equal('E:ENOSPC');
    expect(g.req(W.XS_READ, 'kids/n425|')).to.equal('E:ENOENT');
  });

  it('more than 5 permission entries from a domain is ENOSPC, checked before the entries are parsed', () => {
    const { d, dom0 } = xenstored();
    const g = guest(d, dom0, 3);
    g.req(W.XS_WRITE, 'p|1');
    expect(g.req(W.XS_SET_PERMS, 'p|n3|r1|r2|r4|r5|')).to.equal('OK|');
    expect(g.req(W.XS_SET_PERMS, 'p|n3|r1|r2|r4|r5|r6|')).to.equal('E:ENOSPC');
    expect(g.req(W.XS_SET_PERMS, 'p|n3|x1|x2|x4|x5|x6|')).to.equal('E:ENOSPC');
  });

  it('a domain may own 1000 nodes; creating more is ENOSPC and creates none of a missing path', () => {
    const { d, dom0 } = xenstored();
    const g = guest(d, dom0, 3);
    const owned = () => d.domains.get(3).nodes;
    // In directories of 30, so that no directory's record outgrows the node-size quota.
    const path = (i: number) => `d${Math.floor(i / 30)}/n${i % 30}`;
    let i = 0;
    while (owned() < 1000) expect(g.req(W.XS_WRITE, `${path(i++)}|1`)).to.equal('OK|');
    expect(g.req(W.XS_WRITE, `${path(i)}|1`)).to.equal('E:ENOSPC');
    expect(g.req(W.XS_WRITE, 'x/y/z|1')).to.equal('E:ENOSPC');
    expect(g.req(W.XS_READ, 'x|')).to.equal('E:ENOENT');
    expect(g.req(W.XS_RM, `${path(i - 1)}|`)).to.equal('OK|');
    expect(g.req(W.XS_WRITE, `${path(i - 1)}|1`)).to.equal('OK|');
  });

  it('the node quota binds a transaction at its commit: ENOSPC, and nothing it made is kept', () => {
    const { d, dom0 } = xenstored();
    dom0.req(W.XS_SET_QUOTA, 'nodes|5|');
    const g = guest(d, dom0, 3);
    let t = Number(g.req(W.XS_TRANSACTION_START, '|').slice(0, -1));
    for (let i = 0; i < 5; i++) expect(g.req(W.XS_WRITE, `t${i}|1`, t)).to.equal('OK|');
    expect(g.req(W.XS_TRANSACTION_END, 'T|', t)).to.equal('E:ENOSPC');
    expect(g.req(W.XS_DIRECTORY, '/local/domain/3|')).to.equal('');
    t = Number(g.req(W.XS_TRANSACTION_START, '|').slice(0, -1));
    for (let i = 0; i < 4; i++) expect(g.req(W.XS_WRITE, `t${i}|1`, t)).to.equal('OK|');
    expect(g.req(W.XS_TRANSACTION_END, 'T|', t)).to.equal('OK|');
    expect(d.domains.get(3).nodes).to.equal(5);
  });
});

describe('xenstored memory quota', () => {
  it('memory counts each owned node\'s record and path, each watch\'s path and token, and a transaction\'s copies until it ends', () => {
    const { d, dom0 } = xenstored();
    const g = guest(d, dom0, 31);
    const memory = () => reported(dom0, 31, 'memory');
    // /local/domain/31: a 24-byte header, one permission entry of 8, and 16 bytes of path.
    expect(memory()).to.equal(48);
    expect(g.req(W.XS_WATCH, 'w|tok|')).to.equal('OK|');
    expect(memory()).to.equal(69); // the watch's absolute path and its token
    expect(g.req(W.XS_UNWATCH, 'w|tok|')).to.equal('OK|');
    expect(memory()).to.equal(48);
    expect(g.req(W.XS_WRITE, `a|${'x'.repeat(100)}`)).to.equal('OK|');
    expect(memory()).to.equal(200); // a: 32 + 100 + 18; the home's record gains "a" and its NUL
    const t = txOf(g.req(W.XS_TRANSACTION_START, '|'));
    expect(g.req(W.XS_READ, 'a|', t)).to.have.length(100);
    const withCopy = memory();
    expect(withCopy - 200).to.be.greaterThan(132 + 18); // the copy: a's record and a longer key
    expect(g.req(W.XS_WRITE, `a|${'y'.repeat(50)}`, t)).to.equal('OK|');
    expect(memory()).to.equal(withCopy - 50);
    expect(g.req(W.XS_WRITE, `b|${'z'.repeat(10)}`, t)).to.equal('OK|');
    expect(g.req(W.XS_TRANSACTION_END, 'T|', t)).to.equal('OK|');
    expect(memory()).to.equal(212); // home 52, a 100, b 60
    const t2 = txOf(g.req(W.XS_TRANSACTION_START, '|'));
    expect(g.req(W.XS_READ, 'b|', t2)).to.equal('z'.repeat(10));
    expect(memory()).to.be.greaterThan(212);
    expect(g.req(W.XS_TRANSACTION_END, 'F|', t2)).to.equal('OK|');
    expect(memory()).to.equal(212);
    expect(recount(d, 31)).to.equal(212);
  });

  it('a node write that would take the owner to its memory quota is EIO, dom0\'s writes included', () => {
    const { d, dom0 } = xenstored();
    const g = guest(d, dom0, 3);
    expect(dom0.req(W.XS_SET_QUOTA, '3|memory|1000|')).to.equal('OK|');
    // /local/domain/3 takes 47 bytes; a new child a takes 32 + value + 17, and 2 in the home's record.
    expect(g.req(W.XS_WRITE, `a|${'v'.repeat(902)}`)).to.equal('E:EIO');
    expect(g.req(W.XS_READ, 'a|')).to.equal('E:ENOENT');
    expect(g.req(W.XS_WRITE, `a|${'v'.repeat(901)}`)).to.equal('OK|');
    expect(d.domains.get(3).memory).to.equal(999);
    expect(dom0.req(W.XS_WRITE, `/local/domain/3/a|${'v'.repeat(902)}`)).to.equal('E:EIO');
    expect(dom0.req(W.XS_WRITE, '/local/domain/3/b|')).to.equal('E:EIO');
    expect(dom0.req(W.XS_SET_PERMS, '/local/domain/3/a|n3|r0|')).to.equal('E:EIO');
    expect(dom0.req(W.XS_WRITE, `/dom0-owned|${'v'.repeat(4000)}`)).to.equal('OK|');
    expect(g.req(W.XS_WRITE, `a|${'v'.repeat(900)}`)).to.equal('OK|');
    expect(d.domains.get(3).memory).to.equal(998);
  });

  it('a reply of more than 16 bytes needs room in the memory quota (else ENOMEM); shorter replies always go out', () => {
    const { d, dom0 } = xenstored();
    const g = guest(d, dom0, 3);
    expect(g.req(W.XS_WRITE, `a|${'v'.repeat(100)}`)).to.equal('OK|');
    leaveRoom(d, dom0, 3, 100 + 16);
    expect(g.req(W.XS_READ, 'a|')).to.equal('E:ENOMEM');
    leaveRoom(d, dom0, 3, 100 + 17);
    expect(g.req(W.XS_READ, 'a|')).to.equal('v'.repeat(100));
    leaveRoom(d, dom0, 3, 1);
    expect(g.req(W.XS_GET_DOMAIN_PATH, '3|')).to.equal('/local/domain/3|'); // 16 bytes
    expect(g.req(W.XS_GET_DOMAIN_PATH, '33|')).to.equal('E:ENOMEM'); // 17
    expect(g.req(W.XS_READ, 'nothing|')).to.equal('E:ENOENT');
  });

  it('WATCH without room in the memory quota for its path and token is ENOMEM', () => {
    const { d, dom0 } = xenstored();
    const g = guest(d, dom0, 3);
    leaveRoom(d, dom0, 3, watchMemory('/local/domain/3/w', 'tok'));
    expect(g.req(W.XS_WATCH, 'w|tok|')).to.equal('E:ENOMEM');
    expect(g.req(W.XS_WATCH, 'w|to|')).to.equal('OK|');
    expect(d.domains.get(3).watches).to.equal(1);
  });

  it('a watch event a domain has no memory quota left for is dropped', () => {
    const { d, dom0 } = xenstored();
    const g = guest(d, dom0, 3);
    expect(g.req(W.XS_WATCH, 'ev|t|')).to.equal('OK|');
    expect(dom0.req(W.XS_MKDIR, '/local/domain/3/ev|')).to.equal('OK|');
    expect(dom0.req(W.XS_SET_PERMS, '/local/domain/3/ev|n0|r3|')).to.equal('OK|');
    expect(g.events()).to.deep.equal(['ev|t|', 'ev|t|', 'ev|t|']);
    // The event: "ev|t|" (the watch was set relative) and a 16-byte header.
    leaveRoom(d, dom0, 3, 5 + 16);
    expect(dom0.req(W.XS_WRITE, '/local/domain/3/ev|x')).to.equal('OK|');
    expect(g.events()).to.deep.equal([]);
    leaveRoom(d, dom0, 3, 5 + 17);
    expect(dom0.req(W.XS_WRITE, '/local/domain/3/ev|y')).to.equal('OK|');
    expect(g.events()).to.deep.equal(['ev|t|']);
  });

  it('a domain at its memory quota is not read from until it is back under; then it is answered in order', () => {
    const { d, dom0 } = xenstored();
    const g = guest(d, dom0, 3);
    expect(g.req(W.XS_WRITE, `big|${'v'.repeat(1000)}`)).to.equal('OK|');
    const t = txOf(g.req(W.XS_TRANSACTION_START, '|'));
    leaveRoom(d, dom0, 3, 8);
    // The transaction's copy of big is charged unchecked; the 1000-byte reply is not.
    expect(g.req(W.XS_READ, 'big|', t)).to.equal('E:ENOMEM');
    expect(d.domains.get(3).memory).to.be.at.least(d.domains.get(3).quotas?.memory ?? 0);
    g.raw(W.encodeMessage(W.XS_GET_DOMAIN_PATH, 50, 0, W.nulTerminated('3')));
    g.raw(W.encodeMessage(W.XS_GET_DOMAIN_PATH, 51, 0, W.nulTerminated('4')));
    expect(g.received.filter((m) => m.reqId >= 50)).to.deep.equal([]);
    expect(g.inputPaused).to.equal(true);
    expect(dom0.req(W.XS_WRITE, '/local/domain/3/x|')).to.equal('E:EIO');
    expect(dom0.req(W.XS_RM, '/local/domain/3/big|')).to.equal('OK|');
    expect(g.received.filter((m) => m.reqId >= 50).map((m) => m.payload)).to.deep.equal(['/local/domain/3|', '/local/domain/4|']);
    expect(g.inputPaused).to.equal(false);
  });

  it('a node write refused inside a transaction (node size ENOSPC, memory EIO) fails it: the commit is ENOMEM', () => {
    const { d, dom0 } = xenstored();
    const g = guest(d, dom0, 3);
    let t = txOf(g.req(W.XS_TRANSACTION_START, '|'));
    expect(g.req(W.XS_WRITE, `big|${'x'.repeat(2100)}`, t)).to.equal('E:ENOSPC');
    expect(g.req(W.XS_WRITE, 'small|x', t)).to.equal('OK|');
    expect(g.req(W.XS_TRANSACTION_END, 'T|', t)).to.equal('E:ENOMEM');
    expect(g.req(W.XS_READ, 'small|')).to.equal('E:ENOENT');
    expect(g.req(W.XS_WRITE, 'e|x')).to.equal('OK|');
    t = txOf(g.req(W.XS_TRANSACTION_START, '|'));
    leaveRoom(d, dom0, 3, 200);
    expect(g.req(W.XS_WRITE, `e|${'x'.repeat(300)}`, t)).to.equal('E:EIO');
    expect(g.req(W.XS_TRANSACTION_END, 'T|', t)).to.equal('E:ENOMEM');
    expect(g.req(W.XS_READ, 'e|')).to.equal('x');
  });

  it('inside a transaction a node\'s copy is charged to the transaction\'s domain, not its owner: EIO when that one has no room', () => {
    const { d, dom0 } = xenstored();
    const g = guest(d, dom0, 3);
    expect(dom0.req(W.XS_WRITE, '/shared|')).to.equal('OK|');
    expect(dom0.req(W.XS_SET_PERMS, '/shared|n0|b3|')).to.equal('OK|');
    leaveRoom(d, dom0, 3, 100);
    expect(g.req(W.XS_WRITE, `/shared|${'v'.repeat(500)}`)).to.equal('OK|');
    const t = txOf(g.req(W.XS_TRANSACTION_START, '|'));
    expect(g.req(W.XS_WRITE, `/shared|${'w'.repeat(500)}`, t)).to.equal('E:EIO');
  });

  it(`stays equal to a count from scratch whatever domains and dom0 do, with transactions left open and output held back (seed ${SEED}, ${5 * RUNS} runs)`, () => {
    const name = fc.constantFrom('a', 'b', 'a/c', 'b/d/e', 'f');
    const home = fc.constantFrom(3, 4);
    const anyone = fc.integer({ min: 0, max: 2 }); // dom0's tools, domain 3, domain 4
    const domain = fc.integer({ min: 1, max: 2 });
    const inTx = fc.boolean();
    const op = fc.oneof(
      fc.record({ k: fc.constant('write' as const), who: anyone, home, name, len: fc.integer({ min: 0, max: 300 }), inTx }),
      fc.record({ k: fc.constant('rm' as const), who: anyone, home, name, inTx }),
      fc.record({ k: fc.constant('read' as const), who: anyone, home, name, inTx }),
      fc.record({
        k: fc.constant('perms' as const), who: anyone, home, name, inTx,
        // Domain 7 never exists: its entries are marked to count for nobody.
        owner: fc.constantFrom(0, 3, 4), other: fc.constantFrom('r3', 'b3', 'r4', 'b4', 'b7'),
      }),
      fc.record({ k: fc.constant('watch' as const), who: domain, name, token: fc.constantFrom('t', 'token') }),
      fc.record({ k: fc.constant('unwatch' as const), who: domain, name, token: fc.constantFrom('t', 'token') }),
      fc.record({ k: fc.constant('start' as const), who: anyone }),
      fc.record({ k: fc.constant('end' as const), who: anyone, commit: fc.boolean() }),
      fc.record({ k: fc.constant('hold' as const), who: domain, on: fc.boolean() }),
      fc.record({ k: fc.constant('deliver' as const), who: domain, n: fc.integer({ min: 1, max: 4 }) }),
      fc.record({ k: fc.constant('release' as const), who: domain }),
      fc.record({ k: fc.constant('introduce' as const), who: domain }),
    );
    /** A client, its open transaction, and the requests it sent (req_ids from RAW) in order. */
    interface Slot { c: Client; tx: number; sent: number[] }
    const RAW = 100000;
    try {
      fc.assert(
        fc.property(fc.array(op, { minLength: 1, maxLength: 60 }), (ops) => {
          const { d, dom0 } = xenstored({ quotas: { outstanding: 3 } });
          const slot = (c: Client): Slot => ({ c, tx: 0, sent: [] });
          const slots: Slot[] = [slot(dom0), slot(guest(d, dom0, 3)), slot(guest(d, dom0, 4))];
          const live = (s: Slot) => d.connections.includes(s.c.conn);
          let reqId = RAW;
          /** Sends without waiting: a held connection answers later. */
          const send = (s: Slot, type: number, payload: string, tx = 0): number => {
            const id = reqId++;
            s.sent.push(id);
            s.c.raw(W.encodeMessage(type, id, tx, bytes(payload)));
            return id;
          };
          const memory = (domid: number): number => {
            let n = recount(d, domid);
            for (const c of d.connections) if (c.domid === domid) for (const t of c.transactions.values()) n += t.recountCopies();
            for (const s of slots) if (s.c.conn.domid === domid && live(s)) n += s.c.undeliveredBytes;
            return n;
          };
          const check = (after: string): void => {
            for (const domid of [0, 3, 4]) {
              const dom = d.domains.get(domid);
              const conns = d.connections.filter((c) => c.domid === domid);
              const outstanding = conns.reduce((n, c) => n + c.outstanding, 0);
              if (dom.memory !== memory(domid) || dom.outstanding !== outstanding || conns.some((c) => c.outstanding > 3)) {
                throw new Error(`after ${after}: domain ${domid} counted memory ${dom.memory}, outstanding ${dom.outstanding}; ` +
                  `recount ${memory(domid)}, ${outstanding}`);
              }
            }
          };
          for (const o of ops) {
            const s = slots[o.who];
            const tx = 'inTx' in o && o.inTx ? s.tx : 0;
            const path = 'home' in o ? `/local/domain/${o.home}/${o.name}` : '';
            if (o.k === 'write') send(s, W.XS_WRITE, `${path}|${'v'.repeat(o.len)}`, tx);
            else if (o.k === 'rm') send(s, W.XS_RM, `${path}|`, tx);
            else if (o.k === 'read') send(s, W.XS_READ, `${path}|`, tx);
            else if (o.k === 'perms') send(s, W.XS_SET_PERMS, `${path}|n${o.owner}|${o.other}|`, tx);
            else if (o.k === 'watch') send(s, W.XS_WATCH, `${o.name}|${o.token}|`);
            else if (o.k === 'unwatch') send(s, W.XS_UNWATCH, `${o.name}|${o.token}|`);
            else if (o.k === 'start') {
              if (s.tx !== 0 || s.c.holding || s.c.inputPaused) continue;
              const id = send(s, W.XS_TRANSACTION_START, '|');
              const reply = s.c.received.find((m) => m.reqId === id);
              if (reply !== undefined && reply.type === W.XS_TRANSACTION_START) s.tx = txOf(reply.payload);
            } else if (o.k === 'end') {
              if (s.tx === 0) continue;
              send(s, W.XS_TRANSACTION_END, o.commit ? 'T|' : 'F|', s.tx);
              s.tx = 0;
            } else if (o.k === 'hold') {
              s.c.holding = o.on;
            } else if (o.k === 'deliver') {
              s.c.deliver(o.n);
            } else if (o.k === 'release') {
              dom0.req(W.XS_RELEASE, `${s.c.conn.domid}|`);
              slots[o.who] = slot(guest(d, dom0, s.c.conn.domid));
            } else {
              // Introduced again: the domain's transactions end.
              const domid = s.c.conn.domid;
              dom0.req(W.XS_INTRODUCE, `${domid}|${1000 + domid}|${domid + 10}|`);
              s.tx = 0;
            }
            check(JSON.stringify(o));
          }
          // Every request is answered once and in order once the domains read their output.
          for (const s of slots) {
            s.c.holding = false;
            s.c.deliver();
          }
          for (const s of slots) {
            if (s.tx !== 0) send(s, W.XS_TRANSACTION_END, 'F|', s.tx);
            const answered = s.c.received.filter((m) => m.type !== W.XS_WATCH_EVENT && m.reqId >= RAW).map((m) => m.reqId);
            if (s.c.inputPaused || answered.join() !== s.sent.join()) {
              throw new Error(`domain ${s.c.conn.domid}: sent ${s.sent.join()}, answered ${answered.join()}`);
            }
          }
          check('the end');
          for (const domid of [3, 4]) {
            if (d.domains.get(domid).outstanding !== 0 || d.domains.get(domid).memory !== recount(d, domid)) {
              throw new Error(`at the end, domain ${domid} has outstanding ${d.domains.get(domid).outstanding}, memory ${d.domains.get(domid).memory}`);
            }
          }
        }),
        { seed: SEED, numRuns: 5 * RUNS },
      );
    } catch (e) {
      throw new Error(`property failed with XENSIM_SEED=${SEED}: ${(e as Error).message}`);
    }
  });
});

describe('xenstored outstanding requests', () => {
  /** `n` READs of `path` in one piece, req_ids from 1. */
  function pipelined(n: number, path: string): Uint8Array {
    const msgs = Array.from({ length: n }, (_, i) => W.encodeMessage(W.XS_READ, i + 1, 0, W.nulTerminated(path)));
    return Buffer.concat(msgs);
  }

  it('a domain\'s connection takes no more requests while 20 replies are undelivered, and takes them again as they are delivered', () => {
    const { d, dom0 } = xenstored();
    const g = guest(d, dom0, 3);
    expect(g.req(W.XS_WRITE, `x|${'v'.repeat(900)}`)).to.equal('OK|');
    g.received.length = 0;
    g.holding = true;
    g.raw(pipelined(40, 'x'));
    expect(g.undelivered).to.equal(20);
    expect(g.inputPaused).to.equal(true);
    expect(reported(dom0, 3, 'outstanding')).to.equal(20);
    // The replies queued count against memory too: 900 bytes and a header each.
    expect(reported(dom0, 3, 'memory')).to.equal(recount(d, 3) + 20 * 916);
    g.deliver(1);
    expect(g.received.map((m) => m.reqId)).to.deep.equal([1]);
    expect(g.undelivered).to.equal(20);
    while (g.undelivered > 0) g.deliver();
    expect(g.received.map((m) => m.reqId)).to.deep.equal(Array.from({ length: 40 }, (_, i) => i + 1));
    expect(g.received.every((m) => m.payload === 'v'.repeat(900))).to.equal(true);
    expect(g.inputPaused).to.equal(false);
    expect(reported(dom0, 3, 'outstanding')).to.equal(0);
    expect(reported(dom0, 3, 'memory')).to.equal(recount(d, 3));
  });

  it('dom0\'s tools have no outstanding quota', () => {
    const { d, dom0 } = xenstored();
    const tools = new Client(d, 0, true);
    tools.holding = true;
    tools.raw(pipelined(40, '/tool'));
    expect(tools.undelivered).to.equal(40);
    expect(reported(dom0, 0, 'outstanding')).to.equal(0);
  });

  it('a domain\'s own outstanding quota (SET_QUOTA with its domid) binds it', () => {
    const { d, dom0 } = xenstored();
    const g = guest(d, dom0, 3);
    expect(dom0.req(W.XS_SET_QUOTA, '3|outstanding|2|')).to.equal('OK|');
    g.holding = true;
    g.raw(pipelined(5, '/local/domain/3'));
    expect(g.undelivered).to.equal(2);
    expect(dom0.req(W.XS_SET_QUOTA, '3|outstanding|4|')).to.equal('OK|');
    expect(g.undelivered).to.equal(4);
  });

  it('a request stays outstanding until the watch events it caused are delivered, on whatever connection', () => {
    const { d, dom0 } = xenstored();
    const watcher = guest(d, dom0, 4);
    const writer = guest(d, dom0, 3, 'n3 r4');
    expect(watcher.req(W.XS_WATCH, '/local/domain/3|t|')).to.equal('OK|');
    watcher.events();
    watcher.holding = true;
    for (let i = 0; i < 20; i++) expect(writer.req(W.XS_WRITE, `k${i}|v`)).to.equal('OK|');
    expect(reported(dom0, 3, 'outstanding')).to.equal(20);
    expect(watcher.undelivered).to.equal(20);
    writer.raw(W.encodeMessage(W.XS_WRITE, 99, 0, bytes('k20|v')));
    expect(writer.received.filter((m) => m.reqId === 99)).to.deep.equal([]);
    expect(writer.inputPaused).to.equal(true);
    watcher.deliver(1);
    expect(writer.received.filter((m) => m.reqId === 99).map((m) => m.payload)).to.deep.equal(['OK|']);
    expect(reported(dom0, 3, 'outstanding')).to.equal(20);
    watcher.close();
    expect(reported(dom0, 3, 'outstanding')).to.equal(0);
    expect(reported(dom0, 4, 'memory')).to.equal(recount(d, 4));
  });

  it('a watch event identical to one still undelivered is not queued again; special events always are', () => {
    const { d, dom0 } = xenstored();
    const g = guest(d, dom0, 3);
    expect(g.req(W.XS_WATCH, 'k|t|')).to.equal('OK|');
    expect(dom0.req(W.XS_SET_PERMS, '@releaseDomain|n0|r3|')).to.equal('OK|');
    expect(g.req(W.XS_WATCH, '@releaseDomain|r|')).to.equal('OK|');
    g.events();
    g.holding = true;
    for (let i = 0; i < 5; i++) expect(dom0.req(W.XS_WRITE, `/local/domain/3/k|${i}`)).to.equal('OK|');
    for (let i = 0; i < 2; i++) {
      guest(d, dom0, 10 + i);
      expect(dom0.req(W.XS_RELEASE, `${10 + i}|`)).to.equal('OK|');
    }
    g.deliver();
    expect(g.events()).to.deep.equal(['k|t|', '@releaseDomain|r|', '@releaseDomain|r|']);
    for (let i = 0; i < 2; i++) expect(dom0.req(W.XS_WRITE, `/local/domain/3/k|${i}`)).to.equal('OK|');
    expect(g.undelivered).to.equal(1);
  });
});

describe('xenstored domains', () => {
  it('RELEASE removes the domain\'s watches, transactions and connection, and every node it owns', () => {
    const { d, dom0 } = xenstored();
    const g = guest(d, dom0, 3);
    g.req(W.XS_WRITE, 'data/x|1');
    g.req(W.XS_WATCH, 'data|t|');
    g.req(W.XS_TRANSACTION_START, '|');
    dom0.req(W.XS_WRITE, '/elsewhere|1');
    dom0.req(W.XS_SET_PERMS, '/elsewhere|n3|');
    dom0.req(W.XS_WATCH, '/elsewhere|e|');
    dom0.events();
    expect(dom0.req(W.XS_RELEASE, '3|')).to.equal('OK|');
    expect(g.failed).to.match(/released/);
    expect(d.connections).to.not.include(g.conn);
    expect(d.domains.get(3).watches).to.equal(0);
    expect(dom0.req(W.XS_READ, '/local/domain/3|')).to.equal('E:ENOENT');
    expect(dom0.req(W.XS_READ, '/elsewhere|')).to.equal('E:ENOENT');
    expect(dom0.events()).to.deep.equal(['/elsewhere|e|']);
    expect(dom0.req(W.XS_IS_DOMAIN_INTRODUCED, '3|')).to.equal('F|');
    expect(d.store.check()).to.deep.equal([]);
  });

  it('RELEASE of dom0 or of a malformed domid is EINVAL, of a domain not introduced ENOENT', () => {
    const { dom0 } = xenstored();
    expect(dom0.req(W.XS_RELEASE, '0|')).to.equal('E:EINVAL');
    expect(dom0.req(W.XS_RELEASE, 'abc|')).to.equal('E:EINVAL');
    expect(dom0.req(W.XS_RELEASE, '42|')).to.equal('E:ENOENT');
  });

  it('INTRODUCE needs a domid, a frame and a positive port (EINVAL); again, with any frame, is OK', () => {
    const { dom0 } = xenstored();
    expect(dom0.req(W.XS_INTRODUCE, '5|7|')).to.equal('E:EINVAL');
    expect(dom0.req(W.XS_INTRODUCE, '5|7|0|')).to.equal('E:EINVAL');
    expect(dom0.req(W.XS_INTRODUCE, '5|7|1|')).to.equal('OK|');
    expect(dom0.req(W.XS_INTRODUCE, '5|8|2|')).to.equal('OK|');
  });

  it('RESUME of dom0 is EINVAL, of a domain not introduced ENOENT', () => {
    const { dom0 } = xenstored();
    expect(dom0.req(W.XS_RESUME, '0|')).to.equal('E:EINVAL');
    expect(dom0.req(W.XS_RESUME, '6|')).to.equal('E:ENOENT');
    dom0.req(W.XS_INTRODUCE, '6|7|1|');
    expect(dom0.req(W.XS_RESUME, '6|')).to.equal('OK|');
  });

  it('SET_TARGET gives a domain its target\'s rights; a domain not introduced is ENOENT', () => {
    const { d, dom0 } = xenstored();
    const stub = guest(d, dom0, 3);
    guest(d, dom0, 4);
    dom0.req(W.XS_WRITE, '/local/domain/4/secret|s');
    expect(stub.req(W.XS_READ, '/local/domain/4/secret|')).to.equal('E:EACCES');
    expect(dom0.req(W.XS_SET_TARGET, '3|44|')).to.equal('E:ENOENT');
    expect(dom0.req(W.XS_SET_TARGET, '3|')).to.equal('E:EINVAL');
    expect(dom0.req(W.XS_SET_TARGET, '3|4|')).to.equal('OK|');
    expect(stub.req(W.XS_READ, '/local/domain/4/secret|')).to.equal('s');
  });
});
