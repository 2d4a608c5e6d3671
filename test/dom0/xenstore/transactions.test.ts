// XenStore transactions: private views, watch events held until commit, EAGAIN when a
// node the transaction touched changed meanwhile, and the TRANSACTION_START/END rules.

import { expect } from 'chai';
import * as W from '../../../dom0/xenstore/wire.ts';
import { guest, xenstored } from '../../support/xs-harness.ts';

function start(c: { req(t: number, p: string, tx?: number): string }): number {
  const r = c.req(W.XS_TRANSACTION_START, '|');
  expect(r).to.match(/^[0-9]+\|$/);
  return Number(r.slice(0, -1));
}

describe('xenstored transactions', () => {
  it('TRANSACTION_START replies with the new id as a decimal string and a NUL; the payload is ignored', () => {
    const { dom0 } = xenstored();
    expect(dom0.req(W.XS_TRANSACTION_START, '|')).to.equal('1|');
    expect(dom0.req(W.XS_TRANSACTION_START, '')).to.equal('2|');
    expect(dom0.req(W.XS_TRANSACTION_START, 'abc|')).to.equal('3|');
  });

  it('TRANSACTION_START inside a transaction is EBUSY', () => {
    const { dom0 } = xenstored();
    const t = start(dom0);
    expect(dom0.req(W.XS_TRANSACTION_START, '|', t)).to.equal('E:EBUSY');
  });

  it('changes inside a transaction are invisible outside it until commit', () => {
    const { dom0 } = xenstored();
    const t = start(dom0);
    expect(dom0.req(W.XS_WRITE, '/tx/a|1', t)).to.equal('OK|');
    expect(dom0.req(W.XS_READ, '/tx/a|', t)).to.equal('1');
    expect(dom0.req(W.XS_READ, '/tx/a|')).to.equal('E:ENOENT');
    expect(dom0.req(W.XS_TRANSACTION_END, 'T|', t)).to.equal('OK|');
    expect(dom0.req(W.XS_READ, '/tx/a|')).to.equal('1');
  });

  it('a transaction keeps the version of a node it read, though others change it', () => {
    const { dom0 } = xenstored();
    dom0.req(W.XS_WRITE, '/snap|old');
    const t = start(dom0);
    expect(dom0.req(W.XS_READ, '/snap|', t)).to.equal('old');
    dom0.req(W.XS_WRITE, '/snap|new');
    expect(dom0.req(W.XS_READ, '/snap|', t)).to.equal('old');
  });

  it('TRANSACTION_END F abandons the changes and succeeds', () => {
    const { dom0 } = xenstored();
    const t = start(dom0);
    dom0.req(W.XS_WRITE, '/ab|1', t);
    expect(dom0.req(W.XS_TRANSACTION_END, 'F|', t)).to.equal('OK|');
    expect(dom0.req(W.XS_READ, '/ab|')).to.equal('E:ENOENT');
    expect(dom0.req(W.XS_READ, '/ab|', t)).to.equal('E:ENOENT');
  });

  it('TRANSACTION_END needs exactly T or F (EINVAL), a live transaction (ENOENT), and ends it either way', () => {
    const { dom0 } = xenstored();
    const t = start(dom0);
    for (const a of ['t|', 'TT|', 'T', '', 'T|F|']) expect(dom0.req(W.XS_TRANSACTION_END, a, t), a).to.equal('E:EINVAL');
    expect(dom0.req(W.XS_TRANSACTION_END, 'T|', 0)).to.equal('E:ENOENT');
    expect(dom0.req(W.XS_TRANSACTION_END, 'T', 0)).to.equal('E:EINVAL');
    expect(dom0.req(W.XS_TRANSACTION_END, 'T|', t)).to.equal('OK|');
    expect(dom0.req(W.XS_TRANSACTION_END, 'T|', t)).to.equal('E:ENOENT');
  });

  describe('EAGAIN', () => {
    it('a node the transaction read and another client then changed makes the commit EAGAIN', () => {
      const { dom0 } = xenstored();
      dom0.req(W.XS_WRITE, '/c/r|1');
      const t = start(dom0);
      dom0.req(W.XS_READ, '/c/r|', t);
      dom0.req(W.XS_WRITE, '/c/other|x', t);
      dom0.req(W.XS_WRITE, '/c/r|2');
      expect(dom0.req(W.XS_TRANSACTION_END, 'T|', t)).to.equal('E:EAGAIN');
      expect(dom0.req(W.XS_READ, '/c/other|')).to.equal('E:ENOENT');
    });

    it('a node the transaction wrote and another client then changed makes the commit EAGAIN', () => {
      const { dom0 } = xenstored();
      dom0.req(W.XS_WRITE, '/c/w|1');
      const t = start(dom0);
      dom0.req(W.XS_WRITE, '/c/w|mine', t);
      dom0.req(W.XS_WRITE, '/c/w|theirs');
      expect(dom0.req(W.XS_TRANSACTION_END, 'T|', t)).to.equal('E:EAGAIN');
      expect(dom0.req(W.XS_READ, '/c/w|')).to.equal('theirs');
    });

    it('a node found missing and then created, or read and then deleted, makes the commit EAGAIN', () => {
      const { dom0 } = xenstored();
      const t1 = start(dom0);
      expect(dom0.req(W.XS_READ, '/c/late|', t1)).to.equal('E:ENOENT');
      dom0.req(W.XS_WRITE, '/c/late|now');
      expect(dom0.req(W.XS_TRANSACTION_END, 'T|', t1)).to.equal('E:EAGAIN');
      dom0.req(W.XS_WRITE, '/c/gone|1');
      const t2 = start(dom0);
      dom0.req(W.XS_READ, '/c/gone|', t2);
      dom0.req(W.XS_RM, '/c/gone|');
      expect(dom0.req(W.XS_TRANSACTION_END, 'T|', t2)).to.equal('E:EAGAIN');
    });

    it('RM of a node the transaction read, whose parent went meanwhile, is EINVAL; the commit then EAGAIN', () => {
      const { d, dom0 } = xenstored();
      const g = guest(d, dom0, 3);
      expect(g.req(W.XS_WRITE, 'a/b|v')).to.equal('OK|');
      const t = start(g);
      expect(g.req(W.XS_READ, 'a/b|', t)).to.equal('v');
      expect(g.req(W.XS_RM, 'a|')).to.equal('OK|');
      expect(g.req(W.XS_RM, 'a/b|', t)).to.equal('E:EINVAL');
      expect(g.req(W.XS_TRANSACTION_END, 'T|', t)).to.equal('E:EAGAIN');
      expect(d.store.check()).to.deep.equal([]);
    });

    it('a directory the transaction listed and another client then gave a child makes the commit EAGAIN', () => {
      const { dom0 } = xenstored();
      dom0.req(W.XS_MKDIR, '/c/dir|');
      const t = start(dom0);
      dom0.req(W.XS_DIRECTORY, '/c/dir|', t);
      dom0.req(W.XS_MKDIR, '/c/dir/new|');
      expect(dom0.req(W.XS_TRANSACTION_END, 'T|', t)).to.equal('E:EAGAIN');
    });

    it('changes elsewhere do not disturb the commit', () => {
      const { dom0 } = xenstored();
      dom0.req(W.XS_WRITE, '/c/mine|1');
      dom0.req(W.XS_WRITE, '/elsewhere|1');
      const t = start(dom0);
      dom0.req(W.XS_READ, '/c/mine|', t);
      dom0.req(W.XS_WRITE, '/c/mine|2', t);
      dom0.req(W.XS_WRITE, '/elsewhere|2');
      expect(dom0.req(W.XS_TRANSACTION_END, 'T|', t)).to.equal('OK|');
      expect(dom0.req(W.XS_READ, '/c/mine|')).to.equal('2');
    });
  });

  it('watch events of a transaction\'s changes are held until it commits, one per changed node (none for a node made and removed inside), and dropped when it is abandoned', () => {
    const { d, dom0 } = xenstored();
    const w = guest(d, dom0, 7);
    dom0.req(W.XS_MKDIR, '/ev|');
    dom0.req(W.XS_SET_PERMS, '/ev|n0|r7|');
    w.req(W.XS_WATCH, '/ev|tok|');
    w.events();
    const t = start(dom0);
    dom0.req(W.XS_WRITE, '/ev/a|1', t);
    dom0.req(W.XS_RM, '/ev/a|', t);
    dom0.req(W.XS_WRITE, '/ev/b|1', t);
    dom0.req(W.XS_WRITE, '/ev/b|2', t);
    expect(w.events()).to.deep.equal([]);
    expect(dom0.req(W.XS_TRANSACTION_END, 'T|', t)).to.equal('OK|');
    expect(w.events()).to.deep.equal(['/ev/b|tok|']);
    const t2 = start(dom0);
    dom0.req(W.XS_WRITE, '/ev/c|1', t2);
    dom0.req(W.XS_TRANSACTION_END, 'F|', t2);
    expect(w.events()).to.deep.equal([]);
  });

  it('commit events follow the order the transaction first touched the nodes: a removed node before its descendants', () => {
    const { dom0 } = xenstored();
    dom0.req(W.XS_WRITE, '/o2|1');
    dom0.req(W.XS_WRITE, '/r/s/t|1');
    for (const w of ['/o1', '/o2', '/r', '/r/s/t']) dom0.req(W.XS_WATCH, `${w}|${w}|`);
    dom0.events();
    const t = start(dom0);
    dom0.req(W.XS_READ, '/o2|', t);
    dom0.req(W.XS_WRITE, '/o1|1', t);
    dom0.req(W.XS_WRITE, '/o2|2', t);
    dom0.req(W.XS_RM, '/r|', t);
    dom0.req(W.XS_WRITE, '/made|1', t);
    dom0.req(W.XS_RM, '/made|', t);
    expect(dom0.req(W.XS_TRANSACTION_END, 'T|', t)).to.equal('OK|');
    expect(dom0.events()).to.deep.equal(['/o2|/o2|', '/o1|/o1|', '/r|/r|', '/r/s/t|/r/s/t|']);
  });

  it('touching more than 1024 nodes in a domain\'s transaction is ENOSPC, and its commit then fails with ENOMEM', () => {
    const { d, dom0 } = xenstored();
    const g = guest(d, dom0, 3);
    for (let i = 0; i < 40; i++) dom0.req(W.XS_WRITE, `/local/domain/3/d${i % 40}/x|1`);
    const t = start(g);
    let r = '';
    let n = 0;
    for (let i = 0; r !== 'E:ENOSPC' && i < 2000; i++) {
      r = g.req(W.XS_READ, `d${i % 40}/n${i}|`, t);
      n++;
    }
    expect(r).to.equal('E:ENOSPC');
    expect(n).to.be.within(900, 1024);
    expect(g.req(W.XS_TRANSACTION_END, 'T|', t)).to.equal('E:ENOMEM');
  });

  it('a transaction belongs to its connection: another connection naming its id gets ENOENT', () => {
    const { d, dom0 } = xenstored();
    const t = start(dom0);
    const other = new (dom0.constructor as typeof import('../../support/xs-harness.ts').Client)(d, 0, true);
    expect(other.req(W.XS_READ, '/tool|', t)).to.equal('E:ENOENT');
  });

  it('closing a connection ends its transactions without committing them', () => {
    const { d, dom0 } = xenstored();
    const g = guest(d, dom0, 5);
    const t = start(g);
    g.req(W.XS_WRITE, 'x|1', t);
    g.close();
    expect(dom0.req(W.XS_READ, '/local/domain/5/x|')).to.equal('E:ENOENT');
  });

  it('RESET_WATCHES ends the connection\'s transactions', () => {
    const { dom0 } = xenstored();
    const t = start(dom0);
    expect(dom0.req(W.XS_RESET_WATCHES, '')).to.equal('OK|');
    expect(dom0.req(W.XS_READ, '/tool|', t)).to.equal('E:ENOENT');
  });
});
