// XenStore watches: the initial fire, which changes fire which watches and in what order,
// relative paths, tokens, the read check on events, and the special domain watches.

import { expect } from 'chai';
import * as W from '../../../dom0/xenstore/wire.ts';
import { Client, guest, xenstored } from '../../support/xs-harness.ts';

describe('xenstored watches', () => {
  it('WATCH replies OK and then fires once at once with the path as given, even on a missing node', () => {
    const { dom0 } = xenstored();
    dom0.req(W.XS_WATCH, '/nowhere/yet|t1|');
    expect(dom0.received.map((m) => [m.type, m.payload])).to.deep.equal([
      [W.XS_WATCH, 'OK|'], [W.XS_WATCH_EVENT, '/nowhere/yet|t1|'],
    ]);
  });

  it('WATCH needs exactly a path and a token: a depth argument is EINVAL in 4.17', () => {
    const { dom0 } = xenstored();
    expect(dom0.req(W.XS_WATCH, '/a|t|2|')).to.equal('E:EINVAL');
    expect(dom0.req(W.XS_WATCH, '/a|')).to.equal('E:EINVAL');
    expect(dom0.req(W.XS_WATCH, '/a|t')).to.equal('E:EINVAL');
    expect(dom0.req(W.XS_WATCH, '/a/|t|')).to.equal('E:EINVAL');
  });

  it('the same path and token twice is EEXIST; another token on the same path is a second watch', () => {
    const { dom0 } = xenstored();
    expect(dom0.req(W.XS_WATCH, '/a|t|')).to.equal('OK|');
    expect(dom0.req(W.XS_WATCH, '/a|t|')).to.equal('E:EEXIST');
    expect(dom0.req(W.XS_WATCH, '/a|u|')).to.equal('OK|');
    dom0.events();
    dom0.req(W.XS_WRITE, '/a|1');
    expect(dom0.events()).to.deep.equal(['/a|t|', '/a|u|']);
  });

  it('a change fires watches on the node and on its ancestors, with the changed path', () => {
    const { dom0 } = xenstored();
    for (const w of ['/|root|', '/x|x|', '/x/y|xy|', '/x/y/z|xyz|', '/other|o|']) dom0.req(W.XS_WATCH, w);
    dom0.events();
    dom0.req(W.XS_WRITE, '/x/y|1');
    expect(dom0.events()).to.deep.equal(['/x/y|root|', '/x/y|x|', '/x/y|xy|']);
  });

  it('a watch matches whole path components only', () => {
    const { dom0 } = xenstored();
    dom0.req(W.XS_WATCH, '/ab|t|');
    dom0.events();
    dom0.req(W.XS_WRITE, '/abc|1');
    expect(dom0.events()).to.deep.equal([]);
  });

  it('the writer\'s own watch events come before its reply', () => {
    const { dom0 } = xenstored();
    dom0.req(W.XS_WATCH, '/q|Q1|');
    dom0.req(W.XS_WATCH, '/q|Q2|');
    dom0.events();
    dom0.req(W.XS_WRITE, '/q|v');
    expect(dom0.received.map((m) => [m.type, m.payload])).to.deep.equal([
      [W.XS_WATCH_EVENT, '/q|Q1|'], [W.XS_WATCH_EVENT, '/q|Q2|'], [W.XS_WRITE, 'OK|'],
    ]);
  });

  it('WRITE and MKDIR fire for the requested path only, not for the parents they create; MKDIR of an existing node fires nothing', () => {
    const { dom0 } = xenstored();
    dom0.req(W.XS_WATCH, '/|all|');
    dom0.events();
    dom0.req(W.XS_WRITE, '/m/n/o|1');
    dom0.req(W.XS_MKDIR, '/k/l|');
    dom0.req(W.XS_MKDIR, '/k/l|');
    dom0.req(W.XS_RM, '/k/none|');
    expect(dom0.events()).to.deep.equal(['/m/n/o|all|', '/k/l|all|']);
  });

  it('RM fires the watches on each removed descendant, deepest first, then those on the node and its ancestors', () => {
    const { dom0 } = xenstored();
    for (const n of ['/a/b/c/d/f', '/a/b/c/e']) dom0.req(W.XS_WRITE, `${n}|1`);
    for (const w of ['/a/b/c/d/f', '/a/b/c/e', '/a/b/c', '/a/b/c/d/zz', '/a/b', '/a', '/']) dom0.req(W.XS_WATCH, `${w}|${w}|`);
    dom0.events();
    dom0.req(W.XS_RM, '/a/b|');
    expect(dom0.events()).to.deep.equal([
      '/a/b/c/d/f|/a/b/c/d/f|', '/a/b/c/e|/a/b/c/e|', '/a/b/c|/a/b/c|', '/a/b|/a/b|', '/a/b|/a|', '/a/b|/|',
    ]);
  });

  it('events go to connections oldest first, and within one in the order its watches were set', () => {
    const { d, dom0 } = xenstored();
    const second = new Client(d, 0, true);
    second.req(W.XS_WATCH, '/o|s1|');
    dom0.req(W.XS_WATCH, '/o|d2|');
    dom0.req(W.XS_WATCH, '/|d1|');
    const order: string[] = [];
    const tap = (c: Client, name: string) => {
      const send = c.conn.transport.send;
      (c.conn as { transport: { send: (m: Uint8Array) => void } }).transport.send = (m) => {
        if (new DataView(m.buffer, m.byteOffset).getUint32(0, true) === W.XS_WATCH_EVENT) order.push(name);
        send(m);
      };
    };
    tap(dom0, 'dom0');
    tap(second, 'second');
    dom0.events();
    second.events();
    second.req(W.XS_WRITE, '/o|1');
    expect(order).to.deep.equal(['dom0', 'dom0', 'second']);
    expect(dom0.events()).to.deep.equal(['/o|d2|', '/o|d1|']);
  });

  it('a relative watch gets relative paths', () => {
    const { d, dom0 } = xenstored();
    const g = guest(d, dom0, 3);
    g.req(W.XS_WATCH, 'device|dev|');
    expect(g.events()).to.deep.equal(['device|dev|']);
    g.req(W.XS_WRITE, 'device/vbd/1|x');
    expect(g.events()).to.deep.equal(['device/vbd/1|dev|']);
  });

  it('UNWATCH removes the watch; an unknown one, or an invalid path, is ENOENT', () => {
    const { dom0 } = xenstored();
    dom0.req(W.XS_WATCH, 'rel|t|');
    expect(dom0.req(W.XS_UNWATCH, '/local/domain/0/rel|t|')).to.equal('OK|');
    expect(dom0.req(W.XS_UNWATCH, 'rel|t|')).to.equal('E:ENOENT');
    expect(dom0.req(W.XS_UNWATCH, '/bad//path|t|')).to.equal('E:ENOENT');
    expect(dom0.req(W.XS_UNWATCH, '/a|')).to.equal('E:EINVAL');
    dom0.events();
    dom0.req(W.XS_WRITE, 'rel|1');
    expect(dom0.events()).to.deep.equal([]);
  });

  it('RESET_WATCHES removes every watch of the connection', () => {
    const { dom0 } = xenstored();
    dom0.req(W.XS_WATCH, '/r|t|');
    dom0.req(W.XS_RESET_WATCHES, '');
    dom0.events();
    dom0.req(W.XS_WRITE, '/r|1');
    expect(dom0.events()).to.deep.equal([]);
  });

  describe('the read check on events', () => {
    it('a watcher gets an event only if it can read the node or its parent', () => {
      const { d, dom0 } = xenstored();
      const g = guest(d, dom0, 3);
      dom0.req(W.XS_MKDIR, '/rc|');
      dom0.req(W.XS_SET_PERMS, '/rc|n0|r3|');
      dom0.req(W.XS_MKDIR, '/hidden|');
      g.req(W.XS_WATCH, '/|all|');
      g.events();
      dom0.req(W.XS_WRITE, '/rc/child|1');
      dom0.req(W.XS_SET_PERMS, '/rc/child|n0|');
      dom0.req(W.XS_WRITE, '/hidden/child|1');
      expect(g.events()).to.deep.equal(['/rc/child|all|', '/rc/child|all|']);
    });

    it('SET_PERMS that takes away read access still tells the watcher that lost it', () => {
      const { d, dom0 } = xenstored();
      const g = guest(d, dom0, 3);
      dom0.req(W.XS_WRITE, '/sp|1');
      dom0.req(W.XS_SET_PERMS, '/sp|n0|r3|');
      g.req(W.XS_WATCH, '/sp|t|');
      g.events();
      dom0.req(W.XS_SET_PERMS, '/sp|n0|');
      expect(g.events()).to.deep.equal(['/sp|t|']);
      dom0.req(W.XS_WRITE, '/sp|2');
      expect(g.events()).to.deep.equal([]);
    });

    it('RM is checked against the removed node\'s permissions, or its parent\'s; at a commit, against the node\'s alone', () => {
      const { d, dom0 } = xenstored();
      const g = guest(d, dom0, 3);
      dom0.req(W.XS_WRITE, '/rmc/x|1');
      dom0.req(W.XS_SET_PERMS, '/rmc/x|n0|r3|');
      g.req(W.XS_WATCH, '/rmc/x|t|');
      g.events();
      dom0.req(W.XS_RM, '/rmc/x|');
      expect(g.events()).to.deep.equal(['/rmc/x|t|']);
      dom0.req(W.XS_SET_PERMS, '/rmc|n0|r3|');
      dom0.req(W.XS_WRITE, '/rmc/hidden|1');
      dom0.req(W.XS_SET_PERMS, '/rmc/hidden|n0|');
      g.req(W.XS_WATCH, '/rmc|p|');
      g.events();
      dom0.req(W.XS_RM, '/rmc/hidden|');
      expect(g.events()).to.deep.equal(['/rmc/hidden|p|']);
      dom0.req(W.XS_WRITE, '/rmc/hidden|1');
      dom0.req(W.XS_SET_PERMS, '/rmc/hidden|n0|');
      g.events();
      const t = dom0.req(W.XS_TRANSACTION_START, '|').slice(0, -1);
      dom0.req(W.XS_RM, '/rmc/hidden|', Number(t));
      expect(dom0.req(W.XS_TRANSACTION_END, 'T|', Number(t))).to.equal('OK|');
      expect(g.events()).to.deep.equal([]);
    });
  });

  describe('@introduceDomain and @releaseDomain', () => {
    it('INTRODUCE fires @introduceDomain; introducing an introduced domain again fires nothing', () => {
      const { dom0 } = xenstored();
      dom0.req(W.XS_WATCH, '@introduceDomain|in|');
      dom0.events();
      expect(dom0.req(W.XS_INTRODUCE, '9|100|5|')).to.equal('OK|');
      expect(dom0.req(W.XS_INTRODUCE, '9|100|5|')).to.equal('OK|');
      expect(dom0.events()).to.deep.equal(['@introduceDomain|in|']);
    });

    it('RELEASE fires @releaseDomain', () => {
      const { dom0 } = xenstored();
      dom0.req(W.XS_INTRODUCE, '9|100|5|');
      dom0.req(W.XS_WATCH, '@releaseDomain|rel|');
      dom0.events();
      expect(dom0.req(W.XS_RELEASE, '9|')).to.equal('OK|');
      expect(dom0.events()).to.deep.equal(['@releaseDomain|rel|']);
    });

    it('an unprivileged watcher gets only the initial fire, unless the special node\'s permissions let it read', () => {
      const { d, dom0 } = xenstored();
      const g = guest(d, dom0, 3);
      g.req(W.XS_WATCH, '@introduceDomain|in|');
      g.req(W.XS_WATCH, '@releaseDomain|rel|');
      expect(g.events()).to.deep.equal(['@introduceDomain|in|', '@releaseDomain|rel|']);
      dom0.req(W.XS_INTRODUCE, '9|100|5|');
      dom0.req(W.XS_RELEASE, '9|');
      expect(g.events()).to.deep.equal([]);
      dom0.req(W.XS_SET_PERMS, '@releaseDomain|n0|r3|');
      dom0.req(W.XS_INTRODUCE, '9|100|5|');
      dom0.req(W.XS_RELEASE, '9|');
      expect(g.events()).to.deep.equal(['@releaseDomain|rel|']);
    });
  });
});
