// XenStore quotas for unprivileged domains, with xenstored 4.17's defaults, and what
// releasing a domain takes with it.

import { expect } from 'chai';
import * as W from '../../../dom0/xenstore/wire.ts';
import { guest, xenstored } from '../../support/xs-harness.ts';

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

  it('INTRODUCE needs a domid, a frame and a positive port (EINVAL); again with another frame is EINVAL', () => {
    const { dom0 } = xenstored();
    expect(dom0.req(W.XS_INTRODUCE, '5|7|')).to.equal('E:EINVAL');
    expect(dom0.req(W.XS_INTRODUCE, '5|7|0|')).to.equal('E:EINVAL');
    expect(dom0.req(W.XS_INTRODUCE, '5|7|1|')).to.equal('OK|');
    expect(dom0.req(W.XS_INTRODUCE, '5|8|1|')).to.equal('E:EINVAL');
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
