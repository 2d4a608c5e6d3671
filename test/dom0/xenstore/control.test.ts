// XS_CONTROL as xenstored 4.17 answers it (byte for byte where it prints), and the
// feature and quota messages that came after 4.17, as upstream documents them.

import { expect } from 'chai';
import * as W from '../../../dom0/xenstore/wire.ts';
import { guest, xenstored } from '../../support/xs-harness.ts';

describe('xenstored CONTROL and the feature and quota messages', () => {
  it('help prints 4.17\'s command list; unknown commands and argument counts are EINVAL', () => {
    const { dom0 } = xenstored();
    const help = dom0.req(W.XS_CONTROL, 'help|');
    expect(help.length).to.equal(226);
    expect(help.startsWith('check\t\nlog\ton|off\nlive-update\t')).to.equal(true);
    for (const p of ['HELP|', '', '|', 'help', 'print|', 'log|', 'log|maybe|', 'quota|3|x|']) {
      expect(dom0.req(W.XS_CONTROL, p), p).to.equal('E:EINVAL');
    }
  });

  it('check, print, log and memreport answer OK', () => {
    const printed: string[] = [];
    const { dom0 } = xenstored({ controlHooks: { print: (t) => printed.push(t) } });
    expect(dom0.req(W.XS_CONTROL, 'check|')).to.equal('OK|');
    expect(dom0.req(W.XS_CONTROL, 'print|hello|')).to.equal('OK|');
    expect(dom0.req(W.XS_CONTROL, 'log|off|')).to.equal('OK|');
    expect(dom0.req(W.XS_CONTROL, 'memreport|')).to.equal('OK|');
    expect(printed[0]).to.equal('hello');
  });

  it('quota lists the nine quotas with 4.17\'s defaults and layout (537 bytes)', () => {
    const { dom0 } = xenstored();
    const q = dom0.req(W.XS_CONTROL, 'quota|');
    expect(q.length).to.equal(537);
    expect(q.split('\n').slice(0, 3)).to.deep.equal([
      'Quota settings:', 'nodes            :     1000 Nodes per domain', 'watches          :      128 Watches per domain',
    ]);
  });

  it('quota set changes a global quota; quota <domid> shows a domain\'s use; an unknown domain is ENOENT', () => {
    const { d, dom0 } = xenstored();
    const g = guest(d, dom0, 3);
    expect(dom0.req(W.XS_CONTROL, 'quota|set|watches|1|')).to.equal('OK|');
    expect(dom0.req(W.XS_CONTROL, 'quota|set|nonsense|1|')).to.equal('E:EINVAL');
    g.req(W.XS_WATCH, 'a|t|');
    g.req(W.XS_WATCH, 'b|t|');
    expect(g.req(W.XS_WATCH, 'c|t|')).to.equal('E:E2BIG');
    const use = dom0.req(W.XS_CONTROL, 'quota|3|');
    expect(use.split('\n').slice(0, 3)).to.deep.equal(['Domain 3:', 'nodes           :        1', 'watches         :        2']);
    expect(dom0.req(W.XS_CONTROL, 'quota|77|')).to.equal('E:ENOENT');
  });

  it('live-update can only report that there is no session', () => {
    const { dom0 } = xenstored();
    expect(dom0.req(W.XS_CONTROL, 'live-update|-s|')).to.equal('Not in live-update session.|');
    expect(dom0.req(W.XS_CONTROL, 'live-update|/boot/xenstored|')).to.equal('E:EINVAL');
  });

  it('GET_FEATURE with no domid gives the features offered, to anyone; a domain\'s needs privilege', () => {
    const { d, dom0 } = xenstored();
    const g = guest(d, dom0, 3);
    expect(g.req(W.XS_GET_FEATURE, '')).to.equal('3|');
    expect(g.req(W.XS_GET_FEATURE, '3|')).to.equal('E:EACCES');
    expect(dom0.req(W.XS_GET_FEATURE, '3|')).to.equal('0|');
    expect(dom0.req(W.XS_GET_FEATURE, '3|4|')).to.equal('E:EINVAL');
  });

  it('SET_FEATURE sets a domain\'s features before it is introduced: EBUSY after, EINVAL for bits not offered', () => {
    const { dom0 } = xenstored();
    expect(dom0.req(W.XS_SET_FEATURE, '8|1|')).to.equal('OK|');
    expect(dom0.req(W.XS_SET_FEATURE, '8|4|')).to.equal('E:EINVAL');
    dom0.req(W.XS_INTRODUCE, '8|1|1|');
    expect(dom0.req(W.XS_GET_FEATURE, '8|')).to.equal('1|');
    expect(dom0.req(W.XS_SET_FEATURE, '8|3|')).to.equal('E:EBUSY');
  });

  it('GET_QUOTA and SET_QUOTA read and set quotas, global or per domain', () => {
    const { d, dom0 } = xenstored();
    const g = guest(d, dom0, 3);
    expect(dom0.req(W.XS_GET_QUOTA, '')).to.equal('nodes watches transactions outstanding transaction-nodes memory node-size path-max permissions|');
    expect(dom0.req(W.XS_GET_QUOTA, 'watches|')).to.equal('128|');
    expect(dom0.req(W.XS_SET_QUOTA, '3|watches|0|')).to.equal('OK|');
    expect(dom0.req(W.XS_GET_QUOTA, '3|watches|')).to.equal('0|');
    expect(dom0.req(W.XS_GET_QUOTA, 'watches|')).to.equal('128|');
    expect(dom0.req(W.XS_GET_QUOTA, 'bogus|')).to.equal('E:EINVAL');
    expect(g.req(W.XS_GET_QUOTA, 'watches|')).to.equal('E:EACCES');
  });

  it('a domain\'s own quotas (SET_QUOTA with its domid) bind it and no other: nodes, watches, transactions, permissions, node-size (ENOSPC, E2BIG)', () => {
    const { d, dom0 } = xenstored();
    const g3 = guest(d, dom0, 3);
    const g4 = guest(d, dom0, 4);
    const home3 = d.domains.get(3).nodes;
    for (const [q, v] of [['nodes', home3 + 1], ['watches', 0], ['transactions', 0], ['permissions', 1], ['node-size', 40]] as const) {
      expect(dom0.req(W.XS_SET_QUOTA, `3|${q}|${v}|`), q).to.equal('OK|');
    }
    // nodes: one more node, then ENOSPC; node-size: a record of 24 + 8 + value must stay under 40.
    expect(g3.req(W.XS_WRITE, 'a|1234567')).to.equal('OK|');
    expect(g3.req(W.XS_WRITE, 'b|x')).to.equal('E:ENOSPC');
    expect(g3.req(W.XS_WRITE, 'a|12345678')).to.equal('E:ENOSPC');
    // watches: the count is checked before adding, so quota 0 still lets one in.
    expect(g3.req(W.XS_WATCH, 'a|t1|')).to.equal('OK|');
    expect(g3.req(W.XS_WATCH, 'a|t2|')).to.equal('E:E2BIG');
    expect(g3.req(W.XS_TRANSACTION_START, '|')).to.match(/^[0-9]+\|$/);
    expect(g3.req(W.XS_TRANSACTION_START, '|')).to.equal('E:ENOSPC');
    expect(g3.req(W.XS_SET_PERMS, 'a|n3|r4|')).to.equal('E:ENOSPC');
    // Domain 4 keeps the global quotas.
    expect(g4.req(W.XS_WRITE, 'a|1234567890')).to.equal('OK|');
    expect(g4.req(W.XS_WRITE, 'b|x')).to.equal('OK|');
    expect(g4.req(W.XS_WATCH, 'a|t1|')).to.equal('OK|');
    expect(g4.req(W.XS_WATCH, 'a|t2|')).to.equal('OK|');
    expect(g4.req(W.XS_TRANSACTION_START, '|')).to.match(/^[0-9]+\|$/);
    expect(g4.req(W.XS_TRANSACTION_START, '|')).to.match(/^[0-9]+\|$/);
    expect(g4.req(W.XS_SET_PERMS, 'a|n4|r3|')).to.equal('OK|');
  });

  it('the path-max quota binds every caller, dom0\'s tools included', () => {
    const { dom0 } = xenstored();
    dom0.req(W.XS_CONTROL, 'quota|set|path-max|10|');
    expect(dom0.req(W.XS_WRITE, '/0123456789|v')).to.equal('E:EINVAL');
    expect(dom0.req(W.XS_WRITE, '/012345678|v')).to.equal('OK|');
    expect(dom0.req(W.XS_WATCH, '@0123456789|t|')).to.equal('E:EINVAL');
  });

  it('INTRODUCE of an introduced domain gives its connection a fresh start: no watches, no transactions', () => {
    const { d, dom0 } = xenstored();
    const g = guest(d, dom0, 3);
    g.req(W.XS_WATCH, 'w|t|');
    const t = Number(g.req(W.XS_TRANSACTION_START, '|').slice(0, -1));
    expect(dom0.req(W.XS_INTRODUCE, '3|1|1|')).to.equal('OK|');
    expect(g.req(W.XS_READ, 'w|', t)).to.equal('E:ENOENT');
    g.events();
    g.req(W.XS_WRITE, 'w|1');
    expect(g.events()).to.deep.equal([]);
    expect(d.domains.get(3).watches).to.equal(0);
  });
});
