// XenStore permissions: the owner-first rule, the check order that hides whether nodes
// exist, inheritance on creation, SET_PERMS's rules, and the entries that count for
// nobody because their domain is gone or never was, as xenstored 4.17 applies them.

import { expect } from 'chai';
import * as W from '../../../dom0/xenstore/wire.ts';
import type { XenStored } from '../../../dom0/xenstore/xenstored.ts';
import { Client, guest, xenstored } from '../../support/xs-harness.ts';

function setup(): { dom0: Client; g3: Client; g4: Client } {
  const { d, dom0 } = xenstored();
  const g3 = guest(d, dom0, 3);
  const g4 = guest(d, dom0, 4);
  return { dom0, g3, g4 };
}

describe('xenstored permissions', () => {
  it('entry 0 is the owner, and its letter is the access of every domain not listed', () => {
    const { dom0, g3, g4 } = setup();
    dom0.req(W.XS_WRITE, '/p/n|v');
    dom0.req(W.XS_SET_PERMS, '/p/n|r0|');
    expect(g3.req(W.XS_READ, '/p/n|')).to.equal('v');
    expect(g3.req(W.XS_WRITE, '/p/n|x')).to.equal('E:EACCES');
    dom0.req(W.XS_SET_PERMS, '/p/n|n0|');
    expect(g4.req(W.XS_READ, '/p/n|')).to.equal('E:EACCES');
  });

  it('a listed domain gets its own entry\'s access, the first match deciding', () => {
    const { dom0, g3, g4 } = setup();
    dom0.req(W.XS_WRITE, '/p/l|v');
    dom0.req(W.XS_SET_PERMS, '/p/l|n0|w3|r3|r4|');
    expect(g3.req(W.XS_READ, '/p/l|')).to.equal('E:EACCES');
    expect(g3.req(W.XS_WRITE, '/p/l|x')).to.equal('OK|');
    expect(g4.req(W.XS_READ, '/p/l|')).to.equal('x');
    expect(g4.req(W.XS_WRITE, '/p/l|y')).to.equal('E:EACCES');
  });

  it('the owner has full access whatever the letters say', () => {
    const { dom0, g3 } = setup();
    dom0.req(W.XS_WRITE, '/p/o|v');
    dom0.req(W.XS_SET_PERMS, '/p/o|n3|');
    expect(g3.req(W.XS_READ, '/p/o|')).to.equal('v');
    expect(g3.req(W.XS_WRITE, '/p/o|w')).to.equal('OK|');
  });

  it('dom0\'s tools have full access to any node', () => {
    const { dom0, g3 } = setup();
    g3.req(W.XS_WRITE, 'secret|s');
    g3.req(W.XS_SET_PERMS, 'secret|n3|');
    expect(dom0.req(W.XS_READ, '/local/domain/3/secret|')).to.equal('s');
  });

  it('only the node\'s own permissions count: no check on the way down', () => {
    const { dom0, g3, g4 } = setup();
    g3.req(W.XS_WRITE, 'shared|v');
    g3.req(W.XS_SET_PERMS, 'shared|n3|b4|');
    expect(g4.req(W.XS_READ, '/local/domain/3|')).to.equal('E:EACCES');
    expect(g4.req(W.XS_READ, '/local/domain/3/shared|')).to.equal('v');
    expect(dom0.req(W.XS_GET_PERMS, '/local/domain/3/shared|')).to.equal('n3|b4|');
  });

  describe('hiding existence', () => {
    it('a missing node under a directory the caller cannot read is EACCES, not ENOENT', () => {
      const { g3 } = setup();
      expect(g3.req(W.XS_READ, '/nonexist|')).to.equal('E:EACCES');
      expect(g3.req(W.XS_READ, '/nonexist/deeper|')).to.equal('E:EACCES');
      expect(g3.req(W.XS_READ, '/local/domain/4/x|')).to.equal('E:EACCES');
    });

    it('a missing node under a directory the caller can read is ENOENT for READ, EACCES for WRITE and RM', () => {
      const { dom0, g4 } = setup();
      dom0.req(W.XS_MKDIR, '/ro|');
      dom0.req(W.XS_SET_PERMS, '/ro|n0|r4|');
      expect(g4.req(W.XS_READ, '/ro/missing|')).to.equal('E:ENOENT');
      expect(g4.req(W.XS_DIRECTORY, '/ro/missing/more|')).to.equal('E:ENOENT');
      expect(g4.req(W.XS_WRITE, '/ro/missing|v')).to.equal('E:EACCES');
      expect(g4.req(W.XS_RM, '/ro/missing|')).to.equal('E:EACCES');
    });

    it('an existing node the caller may not read is EACCES, the same as a hidden missing one', () => {
      const { dom0, g3 } = setup();
      dom0.req(W.XS_WRITE, '/h/x|v');
      expect(g3.req(W.XS_READ, '/h/x|')).to.equal('E:EACCES');
      expect(g3.req(W.XS_READ, '/h/y|')).to.equal('E:EACCES');
    });
  });

  describe('creation', () => {
    it('creating needs write access to the nearest existing ancestor (EACCES)', () => {
      const { g3 } = setup();
      expect(g3.req(W.XS_WRITE, '/tool/x|1')).to.equal('E:EACCES');
      expect(g3.req(W.XS_MKDIR, '/local/domain/4/x|')).to.equal('E:EACCES');
      expect(g3.req(W.XS_WRITE, 'a/b/c|1')).to.equal('OK|');
    });

    it('a new node copies its parent\'s list, with an unprivileged creator as owner', () => {
      const { dom0, g3 } = setup();
      dom0.req(W.XS_SET_PERMS, '/local/domain/3|n0|b3|r4|');
      expect(g3.req(W.XS_WRITE, 'made/leaf|1')).to.equal('OK|');
      expect(dom0.req(W.XS_GET_PERMS, '/local/domain/3/made|')).to.equal('n3|b3|r4|');
      expect(dom0.req(W.XS_GET_PERMS, '/local/domain/3/made/leaf|')).to.equal('n3|b3|r4|');
    });

    it('a node dom0 creates copies its parent\'s list unchanged, owner included', () => {
      const { dom0 } = setup();
      dom0.req(W.XS_WRITE, '/local/domain/3/fromdom0|1');
      expect(dom0.req(W.XS_GET_PERMS, '/local/domain/3/fromdom0|')).to.equal('n3|');
    });

    it('MKDIR of an existing node still needs write access to it (EACCES)', () => {
      const { dom0, g4 } = setup();
      dom0.req(W.XS_MKDIR, '/ro4|');
      dom0.req(W.XS_SET_PERMS, '/ro4|n0|r4|');
      expect(g4.req(W.XS_MKDIR, '/ro4|')).to.equal('E:EACCES');
      expect(g4.req(W.XS_MKDIR, '/local/domain|')).to.equal('E:EACCES');
    });

    it('RM needs write access to the node itself only', () => {
      const { dom0, g3 } = setup();
      expect(g3.req(W.XS_RM, '/local/domain/3|')).to.equal('OK|');
      expect(dom0.req(W.XS_READ, '/local/domain/3|')).to.equal('E:ENOENT');
    });
  });

  describe('SET_PERMS', () => {
    it('needs a path and at least one entry (EINVAL); bytes after the last NUL are ignored', () => {
      const { dom0 } = setup();
      dom0.req(W.XS_WRITE, '/t/a|v');
      expect(dom0.req(W.XS_SET_PERMS, '/t/a|')).to.equal('E:EINVAL');
      expect(dom0.req(W.XS_SET_PERMS, '/t/a|n0|r5')).to.equal('OK|');
      expect(dom0.req(W.XS_GET_PERMS, '/t/a|')).to.equal('n0|');
    });

    it('a malformed entry is EINVAL: a letter other than n r w b, a domid strtol does not consume whole', () => {
      const { dom0 } = setup();
      dom0.req(W.XS_WRITE, '/t/b|v');
      for (const e of ['x0', 'n', 'nabc', 'n0x', '']) expect(dom0.req(W.XS_SET_PERMS, `/t/b|${e}|`), e).to.equal('E:EINVAL');
    });

    it('domids are read as strtol(…, 0) reads them and shown signed', () => {
      const { dom0 } = setup();
      dom0.req(W.XS_WRITE, '/t/c|v');
      expect(dom0.req(W.XS_SET_PERMS, '/t/c|n 0|r0x10|r010|r-1|')).to.equal('OK|');
      expect(dom0.req(W.XS_GET_PERMS, '/t/c|')).to.equal('n0|r16|r8|r-1|');
    });

    it('an owner that is not an existing domain is ENOENT; other entries may name any domain', () => {
      const { dom0 } = setup();
      dom0.req(W.XS_WRITE, '/t/d|v');
      expect(dom0.req(W.XS_SET_PERMS, '/t/d|n99|')).to.equal('E:ENOENT');
      expect(dom0.req(W.XS_SET_PERMS, '/t/d|n0|r99|')).to.equal('OK|');
    });

    it('needs write and owner rights: a "b" entry is not enough (EACCES)', () => {
      const { dom0, g4 } = setup();
      dom0.req(W.XS_WRITE, '/t/e|v');
      dom0.req(W.XS_SET_PERMS, '/t/e|n0|b4|');
      expect(g4.req(W.XS_SET_PERMS, '/t/e|n0|b4|')).to.equal('E:EACCES');
    });

    it('an unprivileged owner may not give the node away (EPERM)', () => {
      const { g3 } = setup();
      g3.req(W.XS_WRITE, 'mine|v');
      expect(g3.req(W.XS_SET_PERMS, 'mine|n4|')).to.equal('E:EPERM');
      expect(g3.req(W.XS_SET_PERMS, 'mine|n3|r4|')).to.equal('OK|');
    });

    it('dom0 may change the owner, which moves the node to the new owner\'s count', () => {
      const { dom0, g3 } = setup();
      g3.req(W.XS_WRITE, 'given|v');
      const d = g3.d;
      const before = d.domains.get(3).nodes;
      expect(dom0.req(W.XS_SET_PERMS, '/local/domain/3/given|n4|')).to.equal('OK|');
      expect(d.domains.get(3).nodes).to.equal(before - 1);
    });

    it('@introduceDomain and @releaseDomain take permissions; other "@" names are EINVAL', () => {
      const { dom0, g3 } = setup();
      expect(dom0.req(W.XS_SET_PERMS, '@releaseDomain|n0|r3|')).to.equal('OK|');
      expect(dom0.req(W.XS_SET_PERMS, '@other|n0|')).to.equal('E:EINVAL');
      expect(g3.req(W.XS_SET_PERMS, '@introduceDomain|n0|')).to.equal('E:EACCES');
    });
  });

  describe('entries naming a domain that is gone or never was (XS_PERM_IGNORE, XSA-322)', () => {
    /** Introduces `domid` without a home, as a bare INTRODUCE does, and connects as it. */
    function bare(d: XenStored, dom0: Client, domid: number): Client {
      expect(dom0.req(W.XS_INTRODUCE, `${domid}|${1000 + domid}|${domid + 10}|`)).to.equal('OK|');
      return new Client(d, domid, false);
    }

    /** /ig/b readable by dom6, then dom6 released and a new dom6 introduced. */
    function reborn(): { d: XenStored; dom0: Client; g6: Client } {
      const { d, dom0 } = xenstored();
      const old6 = guest(d, dom0, 6);
      dom0.req(W.XS_WRITE, '/ig/b|v');
      dom0.req(W.XS_SET_PERMS, '/ig/b|n0|r6|');
      expect(old6.req(W.XS_READ, '/ig/b|')).to.equal('v');
      expect(dom0.req(W.XS_RELEASE, '6|')).to.equal('OK|');
      return { d, dom0, g6: guest(d, dom0, 6) };
    }

    it('an entry naming a domain that does not exist when it is set counts for nobody, even once the domain exists (EACCES)', () => {
      // dom7 exists without being introduced (SET_PERMS makes xenstored's record of it); dom5 does not exist.
      const { d, dom0 } = xenstored({ domainExists: (id) => id === 7 });
      dom0.req(W.XS_WRITE, '/ig/a|v');
      expect(dom0.req(W.XS_SET_PERMS, '/ig/a|n0|r5|r7|')).to.equal('OK|');
      expect(dom0.req(W.XS_GET_PERMS, '/ig/a|')).to.equal('n0|r5|r7|');
      expect(guest(d, dom0, 5).req(W.XS_READ, '/ig/a|')).to.equal('E:EACCES');
      expect(guest(d, dom0, 7).req(W.XS_READ, '/ig/a|')).to.equal('v');
    });

    it('entries of a released domain count for nobody on nodes written before its domid came back (EACCES, no watch events)', () => {
      const { dom0, g6 } = reborn();
      expect(g6.req(W.XS_READ, '/ig/b|')).to.equal('E:EACCES');
      expect(dom0.req(W.XS_GET_PERMS, '/ig/b|')).to.equal('n0|r6|');
      g6.req(W.XS_WATCH, '/ig/b|t|');
      g6.events();
      dom0.req(W.XS_WRITE, '/ig/b|again');
      expect(g6.events()).to.deep.equal([]);
    });

    it('writing the node, or making a child under it, keeps such an entry ignored (EACCES)', () => {
      const { dom0, g6 } = reborn();
      expect(dom0.req(W.XS_WRITE, '/ig/b|w')).to.equal('OK|');
      expect(g6.req(W.XS_READ, '/ig/b|')).to.equal('E:EACCES');
      expect(dom0.req(W.XS_MKDIR, '/ig/b/kid|')).to.equal('OK|');
      expect(dom0.req(W.XS_GET_PERMS, '/ig/b/kid|')).to.equal('n0|r6|');
      expect(g6.req(W.XS_READ, '/ig/b/kid|')).to.equal('E:EACCES');
    });

    it('SET_PERMS sets the entries afresh: they count for the domain that has the domid now (EACCES before)', () => {
      const { dom0, g6 } = reborn();
      expect(g6.req(W.XS_READ, '/ig/b|')).to.equal('E:EACCES');
      expect(dom0.req(W.XS_SET_PERMS, '/ig/b|n0|r6|')).to.equal('OK|');
      expect(g6.req(W.XS_READ, '/ig/b|')).to.equal('v');
    });

    it('inside a transaction, SET_PERMS sets the entries afresh only when it commits (EACCES before)', () => {
      const { dom0, g6 } = reborn();
      const tx = Number(dom0.req(W.XS_TRANSACTION_START, '|').replace('|', ''));
      expect(dom0.req(W.XS_SET_PERMS, '/ig/b|n0|r6|', tx)).to.equal('OK|');
      expect(g6.req(W.XS_READ, '/ig/b|')).to.equal('E:EACCES');
      expect(dom0.req(W.XS_TRANSACTION_END, 'T|', tx)).to.equal('OK|');
      expect(g6.req(W.XS_READ, '/ig/b|')).to.equal('v');
    });

    it('a domain recorded at the generation of the node\'s last write still counts; a transaction start in between makes it newer (EACCES)', () => {
      const { d, dom0 } = xenstored();
      bare(d, dom0, 8);
      dom0.req(W.XS_WRITE, '/ig/c|v');
      dom0.req(W.XS_SET_PERMS, '/ig/c|n0|r8|');
      dom0.req(W.XS_RELEASE, '8|');
      // Nothing was written since /ig/c: the new record is as old as the node (4.17's <=).
      expect(bare(d, dom0, 8).req(W.XS_READ, '/ig/c|')).to.equal('v');
      dom0.req(W.XS_WRITE, '/ig/d|v');
      dom0.req(W.XS_SET_PERMS, '/ig/d|n0|r8|');
      dom0.req(W.XS_RELEASE, '8|');
      const tx = Number(dom0.req(W.XS_TRANSACTION_START, '|').replace('|', ''));
      dom0.req(W.XS_TRANSACTION_END, 'F|', tx);
      expect(bare(d, dom0, 8).req(W.XS_READ, '/ig/d|')).to.equal('E:EACCES');
    });

    it('@releaseDomain\'s entries naming no domain count for nobody, and a released domain\'s go with it (no events)', () => {
      const { d, dom0 } = xenstored();
      const g10 = bare(d, dom0, 10);
      expect(dom0.req(W.XS_SET_PERMS, '@releaseDomain|n0|r10|r12|')).to.equal('OK|');
      const g12 = bare(d, dom0, 12);
      g10.req(W.XS_WATCH, '@releaseDomain|t|');
      g12.req(W.XS_WATCH, '@releaseDomain|t|');
      g10.events();
      g12.events();
      bare(d, dom0, 11);
      dom0.req(W.XS_RELEASE, '11|');
      expect(g10.events()).to.deep.equal(['@releaseDomain|t|']);
      expect(g12.events()).to.deep.equal([]);
      dom0.req(W.XS_RELEASE, '10|');
      const again = bare(d, dom0, 10);
      again.req(W.XS_WATCH, '@releaseDomain|t|');
      again.events();
      bare(d, dom0, 11);
      dom0.req(W.XS_RELEASE, '11|');
      expect(again.events()).to.deep.equal([]);
    });
  });
});
