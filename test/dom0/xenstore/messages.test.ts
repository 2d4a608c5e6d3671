// XenStore conformance, per message type: framing, payload conventions, replies and
// errno names, as xenstored 4.17 answers them (probed against Debian's C daemon).

import { expect } from 'chai';
import * as W from '../../../dom0/xenstore/wire.ts';
import { bytes, xenstored } from '../../support/xs-harness.ts';

describe('xenstored messages (xs_wire)', () => {
  describe('dispatch', () => {
    it('an unknown type, a server-only type (WATCH_EVENT, ERROR) or the removed type 20 gets ENOSYS', () => {
      const { dom0 } = xenstored();
      for (const t of [W.XS_WATCH_EVENT, W.XS_ERROR, 20, 27, 100, 0xffffffff]) expect(dom0.req(t, '/a|'), `type ${t}`).to.equal('E:ENOSYS');
    });

    it('a privileged-only type from an unprivileged domain gets EACCES, before its transaction is looked up', () => {
      const { d, dom0 } = xenstored();
      const g = guestClient(d, dom0, 3);
      for (const t of [W.XS_CONTROL, W.XS_INTRODUCE, W.XS_RELEASE, W.XS_IS_DOMAIN_INTRODUCED, W.XS_RESUME, W.XS_SET_TARGET]) {
        expect(g.req(t, '1|', 99), `type ${t}`).to.equal('E:EACCES');
      }
    });

    it('a tx_id naming no transaction of the connection gets ENOENT, except on WATCH and UNWATCH', () => {
      const { dom0 } = xenstored();
      expect(dom0.req(W.XS_READ, '/tool|', 5)).to.equal('E:ENOENT');
      expect(dom0.req(W.XS_GET_DOMAIN_PATH, '1|', 5)).to.equal('E:ENOENT');
      expect(dom0.req(W.XS_TRANSACTION_START, '', 5)).to.equal('E:ENOENT');
      expect(dom0.req(W.XS_WATCH, '/w|t|', 5)).to.equal('OK|');
      expect(dom0.req(W.XS_UNWATCH, '/w|t|', 5)).to.equal('OK|');
    });

    it('every reply echoes the request\'s req_id and tx_id, error replies too', () => {
      const { dom0 } = xenstored();
      const r = dom0.send(W.XS_READ, '/nope|', 0);
      expect([r.type, r.payload]).to.deep.equal([W.XS_ERROR, 'ENOENT|']);
      const e = dom0.send(W.XS_READ, '/x|', 77);
      expect(e.txId).to.equal(77);
      expect(e.reqId).to.equal(2);
    });

    it('a reply longer than 4096 bytes becomes E2BIG', () => {
      const { dom0 } = xenstored();
      for (let i = 0; i < 400; i++) dom0.req(W.XS_MKDIR, `/big/child-number-${i}|`);
      expect(dom0.req(W.XS_DIRECTORY, '/big|')).to.equal('E:E2BIG');
    });
  });

  describe('READ, WRITE, MKDIR, RM, DIRECTORY', () => {
    it('WRITE takes everything after the first NUL as the value, NULs included; READ returns it without a NUL', () => {
      const { dom0 } = xenstored();
      expect(dom0.req(W.XS_WRITE, '/a/b|he|lo')).to.equal('OK|');
      expect(dom0.req(W.XS_READ, '/a/b|')).to.equal('he|lo');
      expect(dom0.req(W.XS_WRITE, '/a/e|')).to.equal('OK|');
      expect(dom0.req(W.XS_READ, '/a/e|')).to.equal('');
    });

    it('WRITE without any NUL is EINVAL', () => {
      const { dom0 } = xenstored();
      expect(dom0.req(W.XS_WRITE, '/a/b')).to.equal('E:EINVAL');
      expect(dom0.req(W.XS_WRITE, '')).to.equal('E:EINVAL');
      expect(dom0.req(W.XS_READ, '/a|')).to.equal('E:ENOENT');
    });

    it('a one-argument request that is not exactly "path|" is EINVAL', () => {
      const { dom0 } = xenstored();
      for (const t of [W.XS_READ, W.XS_DIRECTORY, W.XS_GET_PERMS, W.XS_MKDIR, W.XS_RM]) {
        for (const p of ['', '/tool', '/tool|x', '/tool|x|']) expect(dom0.req(t, p), `type ${t} "${p}"`).to.equal('E:EINVAL');
      }
    });

    it('WRITE and MKDIR create missing parents with empty values', () => {
      const { dom0 } = xenstored();
      expect(dom0.req(W.XS_WRITE, '/p/q/r|v')).to.equal('OK|');
      expect(dom0.req(W.XS_READ, '/p/q|')).to.equal('');
      expect(dom0.req(W.XS_MKDIR, '/m/n/o|')).to.equal('OK|');
      expect(dom0.req(W.XS_DIRECTORY, '/m/n|')).to.equal('o|');
    });

    it('MKDIR of an existing node is OK and keeps its value', () => {
      const { dom0 } = xenstored();
      dom0.req(W.XS_WRITE, '/k|v');
      expect(dom0.req(W.XS_MKDIR, '/k|')).to.equal('OK|');
      expect(dom0.req(W.XS_READ, '/k|')).to.equal('v');
    });

    it('DIRECTORY lists children in creation order, each with a NUL; an empty directory is an empty payload', () => {
      const { dom0 } = xenstored();
      for (const c of ['zeta', 'alpha', 'mid']) dom0.req(W.XS_MKDIR, `/d/${c}|`);
      expect(dom0.req(W.XS_DIRECTORY, '/d|')).to.equal('zeta|alpha|mid|');
      expect(dom0.req(W.XS_DIRECTORY, '/d/mid|')).to.equal('');
    });

    it('READ or DIRECTORY of a missing node is ENOENT', () => {
      const { dom0 } = xenstored();
      expect(dom0.req(W.XS_READ, '/missing|')).to.equal('E:ENOENT');
      expect(dom0.req(W.XS_DIRECTORY, '/missing/deeper|')).to.equal('E:ENOENT');
    });

    it('RM removes the whole subtree', () => {
      const { d, dom0 } = xenstored();
      dom0.req(W.XS_WRITE, '/r/a/b|1');
      dom0.req(W.XS_WRITE, '/r/c|2');
      expect(dom0.req(W.XS_RM, '/r|')).to.equal('OK|');
      expect(dom0.req(W.XS_READ, '/r/a/b|')).to.equal('E:ENOENT');
      expect(dom0.req(W.XS_DIRECTORY, '/|')).to.equal('tool|');
      expect(d.store.check()).to.deep.equal([]);
      expect(d.store.size).to.equal(3);
    });

    it('RM of a missing node is OK when its parent exists, else ENOENT', () => {
      const { dom0 } = xenstored();
      expect(dom0.req(W.XS_RM, '/tool/none|')).to.equal('OK|');
      expect(dom0.req(W.XS_RM, '/none/none|')).to.equal('E:ENOENT');
    });

    it('RM of the root is EINVAL', () => {
      const { dom0 } = xenstored();
      expect(dom0.req(W.XS_RM, '/|')).to.equal('E:EINVAL');
      expect(dom0.req(W.XS_DIRECTORY, '/|')).to.equal('tool|');
    });

    it('the store starts with /tool/xenstored, owned by dom0', () => {
      const { dom0 } = xenstored();
      expect(dom0.req(W.XS_DIRECTORY, '/tool|')).to.equal('xenstored|');
      expect(dom0.req(W.XS_GET_PERMS, '/tool/xenstored|')).to.equal('n0|');
    });
  });

  describe('paths', () => {
    it('an invalid path is EINVAL: trailing slash, "//", a character outside [A-Za-z0-9-/_@], empty', () => {
      const { dom0 } = xenstored();
      for (const p of ['/a/', '/a//b', '/a b', '/a.b', '/a:b', '']) {
        expect(dom0.req(W.XS_WRITE, `${p}|v`), p).to.equal('E:EINVAL');
        expect(dom0.req(W.XS_READ, `${p}|`), p).to.equal('E:EINVAL');
      }
    });

    it('a node path may not start with "@": those names are for watches', () => {
      const { dom0 } = xenstored();
      expect(dom0.req(W.XS_WRITE, '@introduceDomain|v')).to.equal('E:EINVAL');
      expect(dom0.req(W.XS_GET_PERMS, '@releaseDomain|')).to.equal('E:EINVAL');
    });

    it('a path may run 2048 bytes past /local/domain/N/, not one more (EINVAL)', () => {
      const { dom0 } = xenstored();
      const base = '/local/domain/0/';
      const ok = `${base}${'x'.repeat(2048)}`;
      expect(dom0.req(W.XS_WRITE, `${ok}|v`)).to.equal('OK|');
      expect(dom0.req(W.XS_WRITE, `${ok}y|v`)).to.equal('E:EINVAL');
      const other = `/${'y'.repeat(2047)}`;
      expect(dom0.req(W.XS_WRITE, `${other}|v`)).to.equal('OK|');
      expect(dom0.req(W.XS_WRITE, `${other}z|v`)).to.equal('E:EINVAL');
    });

    it('a relative path resolves against /local/domain/<caller>, dom0\'s tools included', () => {
      const { d, dom0 } = xenstored();
      expect(dom0.req(W.XS_WRITE, 'rel/x|1')).to.equal('OK|');
      expect(dom0.req(W.XS_READ, '/local/domain/0/rel/x|')).to.equal('1');
      const g = guestClient(d, dom0, 4);
      expect(g.req(W.XS_WRITE, 'data|2')).to.equal('OK|');
      expect(dom0.req(W.XS_READ, '/local/domain/4/data|')).to.equal('2');
    });
  });

  describe('DIRECTORY_PART', () => {
    it('replies with the generation, the children from the byte offset, and a final NUL at the end of the list', () => {
      const { dom0 } = xenstored();
      for (let i = 0; i < 5; i++) dom0.req(W.XS_MKDIR, `/dp/child${i}|`);
      const whole = dom0.req(W.XS_DIRECTORY_PART, '/dp|0|');
      const gen = whole.slice(0, whole.indexOf('|'));
      expect(gen).to.match(/^[0-9]+$/);
      expect(whole).to.equal(`${gen}|child0|child1|child2|child3|child4||`);
      expect(dom0.req(W.XS_DIRECTORY_PART, '/dp|7|')).to.equal(`${gen}|child1|child2|child3|child4||`);
      expect(dom0.req(W.XS_DIRECTORY_PART, '/dp|6|')).to.equal(`${gen}||child1|child2|child3|child4||`);
      for (const off of ['35', '100', '-1']) expect(dom0.req(W.XS_DIRECTORY_PART, `/dp|${off}|`)).to.equal(`${gen}||`);
    });

    it('the generation changes when a child is added', () => {
      const { dom0 } = xenstored();
      dom0.req(W.XS_MKDIR, '/g/a|');
      const before = dom0.req(W.XS_DIRECTORY_PART, '/g|0|').split('|')[0];
      dom0.req(W.XS_MKDIR, '/g/b|');
      const after = dom0.req(W.XS_DIRECTORY_PART, '/g|0|').split('|')[0];
      expect(after).to.not.equal(before);
    });

    it('a long list comes in parts that each fit 4096 bytes and together make the whole list', () => {
      const { dom0 } = xenstored();
      const names = Array.from({ length: 300 }, (_, i) => `a-rather-long-child-name-${i}`);
      for (const n of names) dom0.req(W.XS_MKDIR, `/long/${n}|`);
      const got: string[] = [];
      let off = 0;
      for (;;) {
        const r = dom0.send(W.XS_DIRECTORY_PART, `/long|${off}|`);
        expect(r.payload.length).to.be.at.most(4096);
        const body = r.payload.slice(r.payload.indexOf('|') + 1);
        if (body.endsWith('||') || body === '|') {
          got.push(...body.slice(0, -1).split('|').filter((s) => s !== ''));
          break;
        }
        got.push(...body.split('|').filter((s) => s !== ''));
        off += body.length;
      }
      expect(got).to.deep.equal(names);
    });

    it('DIRECTORY_PART needs exactly a path and an offset (EINVAL)', () => {
      const { dom0 } = xenstored();
      expect(dom0.req(W.XS_DIRECTORY_PART, '/tool|')).to.equal('E:EINVAL');
      expect(dom0.req(W.XS_DIRECTORY_PART, '/tool|0')).to.equal('E:EINVAL');
    });
  });

  describe('GET_DOMAIN_PATH and IS_DOMAIN_INTRODUCED', () => {
    it('GET_DOMAIN_PATH reads the domid as atoi does and prints it unsigned', () => {
      const { dom0 } = xenstored();
      expect(dom0.req(W.XS_GET_DOMAIN_PATH, '7|')).to.equal('/local/domain/7|');
      expect(dom0.req(W.XS_GET_DOMAIN_PATH, '7x|')).to.equal('/local/domain/7|');
      expect(dom0.req(W.XS_GET_DOMAIN_PATH, 'abc|')).to.equal('/local/domain/0|');
      expect(dom0.req(W.XS_GET_DOMAIN_PATH, '-1|')).to.equal('/local/domain/4294967295|');
      expect(dom0.req(W.XS_GET_DOMAIN_PATH, '7')).to.equal('E:EINVAL');
    });

    it('IS_DOMAIN_INTRODUCED is T for dom0 and introduced domains, F otherwise', () => {
      const { dom0 } = xenstored();
      expect(dom0.req(W.XS_IS_DOMAIN_INTRODUCED, '0|')).to.equal('T|');
      expect(dom0.req(W.XS_IS_DOMAIN_INTRODUCED, '5|')).to.equal('F|');
      expect(dom0.req(W.XS_INTRODUCE, '5|99|3|')).to.equal('OK|');
      expect(dom0.req(W.XS_IS_DOMAIN_INTRODUCED, '5|')).to.equal('T|');
    });
  });

  describe('stream framing', () => {
    it('messages split anywhere, or several in one piece, are each handled once, in order', () => {
      const { dom0 } = xenstored();
      const msgs = [
        W.encodeMessage(W.XS_WRITE, 1, 0, bytes('/s/a|1')),
        W.encodeMessage(W.XS_WRITE, 2, 0, bytes('/s/b|2')),
        W.encodeMessage(W.XS_DIRECTORY, 3, 0, bytes('/s|')),
      ];
      const all = new Uint8Array(msgs.reduce((n, m) => n + m.length, 0));
      let o = 0;
      for (const m of msgs) {
        all.set(m, o);
        o += m.length;
      }
      for (let i = 0; i < all.length; i += 5) dom0.raw(all.subarray(i, Math.min(i + 5, all.length)));
      expect(dom0.received.map((m) => [m.reqId, m.payload])).to.deep.equal([[1, 'OK|'], [2, 'OK|'], [3, 'a|b|']]);
    });

    it('a payload of exactly 4096 bytes is accepted', () => {
      const { dom0 } = xenstored();
      expect(dom0.req(W.XS_WRITE, `/big|${'v'.repeat(4091)}`)).to.equal('OK|');
      expect(dom0.req(W.XS_READ, '/big|').length).to.equal(4091);
    });

    it('a header announcing more than 4096 bytes drops the connection at once, without a reply', () => {
      const { d, dom0 } = xenstored();
      const hdr = new Uint8Array(W.XS_HEADER_BYTES);
      W.writeHeader(hdr, 0, W.XS_WRITE, 1, 0, 4097);
      dom0.raw(hdr);
      expect(dom0.failed).to.match(/4097/);
      expect(dom0.received).to.deep.equal([]);
      expect(d.connections).to.not.include(dom0.conn);
    });
  });
});

import { guest as guestClient } from '../../support/xs-harness.ts';
