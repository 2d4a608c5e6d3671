// Conformance: HYPERVISOR_console_io and HYPERVISOR_vm_assist, driven through guest
// vCPUs with console text in the guests' own memory. Each test names the rule and Xen's
// result.

import { expect } from 'chai';
import { bootTestMachine, type GuestKernel, type TestMachine } from '../support/fixture.ts';
import { pfnToVa } from '../../guests/lib/xen-calls.ts';
import { E2BIG, EFAULT, EINVAL, ENOSYS, EPERM } from '../../hypervisor/public/errno.ts';
import * as X from '../../hypervisor/public/xen.ts';

const RO_M2P = -0x800000000000;

function putText(k: GuestKernel, at: number, text: string): void {
  k.v.write(at, Uint8Array.from(text, (c) => c.charCodeAt(0)));
}

/** console_io(CONSOLEIO_write, len, buf) with `text` written at k.buf. */
function consoleWrite(k: GuestKernel, text: string): number {
  putText(k, k.buf, text);
  return k.v.hypercall(X.HYPERVISOR_console_io, X.CONSOLEIO_write, text.length, k.buf);
}

function vmAssist(k: GuestKernel, cmd: number, type: number): number {
  return k.v.hypercall(X.HYPERVISOR_vm_assist, cmd, type);
}

const VALID_TYPES = [
  X.VMASST_TYPE_4gb_segments, X.VMASST_TYPE_4gb_segments_notify, X.VMASST_TYPE_writable_pagetables,
  X.VMASST_TYPE_pae_extended_cr3, X.VMASST_TYPE_architectural_iopl, X.VMASST_TYPE_runstate_update_flag,
  X.VMASST_TYPE_m2p_strict,
];

describe('console_io', () => {
  describe('release build', () => {
    let t: TestMachine;
    beforeEach(() => {
      t = bootTestMachine();
    });
    afterEach(() => t.check());

    it('CONSOLEIO_write from Dom0 returns 0 (not the count) and the text lands in the console log', () => {
      const before = t.m.hv.consoleLog.length;
      expect(consoleWrite(t.dom0, 'hello from dom0\n')).to.equal(0);
      expect(t.m.hv.consoleLog.slice(before)).to.deep.equal(['hello from dom0']);
    });

    it('CONSOLEIO_write from a domU returns -EPERM in a release build and prints nothing', () => {
      const before = t.m.hv.consoleLog.length;
      expect(consoleWrite(t.guest, 'let me speak\n')).to.equal(-EPERM);
      expect(t.m.hv.consoleLog.length).to.equal(before);
    });

    it('console_io from a domU is refused before the cmd is looked at: read and unknown cmds are -EPERM too', () => {
      const g = t.guest;
      expect(g.v.hypercall(X.HYPERVISOR_console_io, X.CONSOLEIO_read, 16, g.buf)).to.equal(-EPERM);
      expect(g.v.hypercall(X.HYPERVISOR_console_io, 7, 16, g.buf)).to.equal(-EPERM);
    });

    it('an unknown console_io cmd from Dom0 returns -ENOSYS', () => {
      const d0 = t.dom0;
      expect(d0.v.hypercall(X.HYPERVISOR_console_io, 2, 4, d0.buf)).to.equal(-ENOSYS);
      expect(d0.v.hypercall(X.HYPERVISOR_console_io, 99, 4, d0.buf)).to.equal(-ENOSYS);
    });

    it('CONSOLEIO_write with an unmapped or Xen-range buffer returns -EFAULT', () => {
      const d0 = t.dom0;
      const before = t.m.hv.consoleLog.length;
      expect(d0.v.hypercall(X.HYPERVISOR_console_io, X.CONSOLEIO_write, 8, pfnToVa(d0.si.nrPages))).to.equal(-EFAULT);
      expect(d0.v.hypercall(X.HYPERVISOR_console_io, X.CONSOLEIO_write, 8, RO_M2P)).to.equal(-EFAULT);
      expect(t.m.hv.consoleLog.length).to.equal(before);
    });

    it('CONSOLEIO_write faulting in a later 127-byte chunk returns -EFAULT after printing the earlier chunks', () => {
      const d0 = t.dom0;
      const at = pfnToVa(d0.si.nrPages) - 127;
      putText(d0, at, 'A'.repeat(126) + '\n');
      const before = t.m.hv.consoleLog.length;
      expect(d0.v.hypercall(X.HYPERVISOR_console_io, X.CONSOLEIO_write, 200, at)).to.equal(-EFAULT);
      expect(t.m.hv.consoleLog.slice(before)).to.deep.equal(['A'.repeat(126)]);
    });

    it('CONSOLEIO_write with count 0 returns 0 and prints nothing', () => {
      const before = t.m.hv.consoleLog.length;
      expect(t.dom0.v.hypercall(X.HYPERVISOR_console_io, X.CONSOLEIO_write, 0, RO_M2P)).to.equal(0);
      expect(t.m.hv.consoleLog.length).to.equal(before);
    });

    it('CONSOLEIO_read from Dom0 returns the bytes read (none pending: 0); a count above INT_MAX -E2BIG', () => {
      const d0 = t.dom0;
      expect(d0.v.hypercall(X.HYPERVISOR_console_io, X.CONSOLEIO_read, 16, d0.buf)).to.equal(0);
      expect(d0.v.hypercall(X.HYPERVISOR_console_io, X.CONSOLEIO_read, 0x80000000, d0.buf)).to.equal(-E2BIG);
    });
  });

  describe('debug build', () => {
    let t: TestMachine;
    beforeEach(() => {
      t = bootTestMachine({ debugBuild: true });
    });
    afterEach(() => t.check());

    it('CONSOLEIO_write from a domU returns 0 and appears as "(dN) text"', () => {
      const before = t.m.hv.consoleLog.length;
      expect(consoleWrite(t.guest, 'booting\n')).to.equal(0);
      expect(t.m.hv.consoleLog.slice(before)).to.deep.equal([`(d${t.guest.domid}) booting`]);
    });

    it('a domU\'s console text loses its non-printable characters, but keeps tabs', () => {
      const before = t.m.hv.consoleLog.length;
      expect(consoleWrite(t.other, 'ab\x01c\x07\x1b[1md\x7f\x9b\te\n')).to.equal(0);
      expect(t.m.hv.consoleLog.slice(before)).to.deep.equal([`(d${t.other.domid}) abc[1md\te`]);
    });

    it('a domU\'s text is held until a newline: "abc" then "def\\n" print one line', () => {
      const before = t.m.hv.consoleLog.length;
      expect(consoleWrite(t.guest, 'abc')).to.equal(0);
      expect(t.m.hv.consoleLog.length).to.equal(before);
      expect(consoleWrite(t.guest, 'def\n')).to.equal(0);
      expect(t.m.hv.consoleLog.slice(before)).to.deep.equal([`(d${t.guest.domid}) abcdef`]);
    });

    it('a lone newline from a domU prints an empty "(dN) " line', () => {
      const before = t.m.hv.consoleLog.length;
      expect(consoleWrite(t.guest, '\n')).to.equal(0);
      expect(t.m.hv.consoleLog.slice(before)).to.deep.equal([`(d${t.guest.domid}) `]);
    });

    it('a 300-character line overflows the 200-byte buffer: printed as 254 + 46 characters', () => {
      const before = t.m.hv.consoleLog.length;
      const line = 'x'.repeat(300);
      expect(consoleWrite(t.guest, `${line}\n`)).to.equal(0);
      const prefix = `(d${t.guest.domid}) `;
      expect(t.m.hv.consoleLog.slice(before)).to.deep.equal([prefix + 'x'.repeat(254), prefix + 'x'.repeat(46)]);
    });

    it('bytes 0xa0-0xff are printable in Xen\'s ctype table and are kept', () => {
      const before = t.m.hv.consoleLog.length;
      expect(consoleWrite(t.guest, 'caf\xe9 \xa0\xff\n')).to.equal(0);
      expect(t.m.hv.consoleLog.slice(before)).to.deep.equal([`(d${t.guest.domid}) caf\xe9 \xa0\xff`]);
    });

    it('a domU may only write in a debug build: CONSOLEIO_read is still -EPERM', () => {
      const g = t.guest;
      expect(g.v.hypercall(X.HYPERVISOR_console_io, X.CONSOLEIO_read, 16, g.buf)).to.equal(-EPERM);
    });

    it('CONSOLEIO_write from a domU with an unmapped buffer returns -EFAULT', () => {
      const g = t.guest;
      expect(g.v.hypercall(X.HYPERVISOR_console_io, X.CONSOLEIO_write, 4, pfnToVa(g.si.nrPages))).to.equal(-EFAULT);
    });
  });
});

describe('vm_assist', () => {
  let t: TestMachine;
  beforeEach(() => {
    t = bootTestMachine();
  });
  afterEach(() => t.check());

  const enabled = (k: GuestKernel, type: number): boolean => t.m.domain(k.domid)!.vmAssistEnabled(type);

  for (const type of VALID_TYPES) {
    it(`enabling and disabling type ${type} returns 0 and sets, then clears, the assist`, () => {
      const g = t.guest;
      expect(enabled(g, type)).to.equal(false);
      expect(vmAssist(g, X.VMASST_CMD_enable, type)).to.equal(0);
      expect(enabled(g, type)).to.equal(true);
      // Enabling twice is fine.
      expect(vmAssist(g, X.VMASST_CMD_enable, type)).to.equal(0);
      expect(vmAssist(g, X.VMASST_CMD_disable, type)).to.equal(0);
      expect(enabled(g, type)).to.equal(false);
      // The assist is per domain.
      expect(enabled(t.other, type)).to.equal(false);
    });
  }

  it('an invalid type (6, 31, 33, 63, 64) returns -EINVAL for enable and disable', () => {
    const g = t.guest;
    for (const type of [6, 31, 33, 63, 64]) {
      expect(vmAssist(g, X.VMASST_CMD_enable, type), `type ${type}`).to.equal(-EINVAL);
      expect(vmAssist(g, X.VMASST_CMD_disable, type), `type ${type}`).to.equal(-EINVAL);
    }
    expect(t.m.domain(g.domid)!.vmAssist).to.equal(0);
  });

  it('a valid type with cmd 2 returns -ENOSYS and changes nothing', () => {
    const g = t.guest;
    expect(vmAssist(g, X.VMASST_CMD_enable, X.VMASST_TYPE_writable_pagetables)).to.equal(0);
    expect(vmAssist(g, 2, X.VMASST_TYPE_writable_pagetables)).to.equal(-ENOSYS);
    expect(vmAssist(g, 2, X.VMASST_TYPE_m2p_strict)).to.equal(-ENOSYS);
    expect(enabled(g, X.VMASST_TYPE_writable_pagetables)).to.equal(true);
    expect(enabled(g, X.VMASST_TYPE_m2p_strict)).to.equal(false);
  });

  it('the type is checked before the cmd: an invalid type with cmd 2 returns -EINVAL', () => {
    expect(vmAssist(t.guest, 2, 6)).to.equal(-EINVAL);
    expect(vmAssist(t.guest, 2, 33)).to.equal(-EINVAL);
  });
});
