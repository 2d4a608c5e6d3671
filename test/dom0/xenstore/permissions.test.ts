// XenStore permissions: the owner-first rule, the check order that hides whether nodes
// exist, inheritance on creation, and SET_PERMS's rules, as xenstored 4.17 applies them.

import { expect } from 'chai';
import * as W from '../../../dom0/xenstore/wire.ts';
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
});
