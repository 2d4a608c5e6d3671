// Conformance: HYPERVISOR_multicall, driven through guest vCPUs with arrays of
// struct multicall_entry (64 bytes: op, result, args[6]) in the guests' own memory.
// Each test names the rule and Xen's result.

import { expect } from 'chai';
import { bootTestMachine, type GuestKernel, type TestMachine } from '../support/fixture.ts';
import { pfnToVa } from '../../guests/lib/xen-calls.ts';
import { pushIretContext } from '../../guests/lib/xen-traps.ts';
import { REG_RAX, REG_RSP } from '../../hypervisor/public/vcpu.ts';
import { EFAULT, EINVAL, ENOSYS, EPERM } from '../../hypervisor/public/errno.ts';
import * as V from '../../hypervisor/public/version.ts';
import * as X from '../../hypervisor/public/xen.ts';

const E = X.MULTICALL_ENTRY;
const XEN_VERSION = (4 << 16) | 17;
/** A result value no sub-call returns: an untouched entry keeps it. */
const SENTINEL = { lo: 0x5a5a5a5a, hi: 0xa5a5a5a5 };

// ---- struct-writing helpers: what a guest kernel's multicall batching would do -----------

function writeU64(k: GuestKernel, va: number, x: number): void {
  k.v.store64(va, x >>> 0, Math.floor(x / 4294967296) >>> 0);
}

interface Call {
  op: number;
  args?: readonly number[];
}

/** Writes entries at `at`, each with its result set to SENTINEL. */
function writeEntries(k: GuestKernel, at: number, calls: readonly Call[]): void {
  calls.forEach((c, i) => {
    const e = at + i * E.size;
    k.v.write(e, new Uint8Array(E.size));
    writeU64(k, e + E.fields.op.offset, c.op);
    k.v.store64(e + E.fields.result.offset, SENTINEL.lo, SENTINEL.hi);
    (c.args ?? []).forEach((a, j) => writeU64(k, e + E.fields.args.offset + j * 8, a));
  });
}

/** Entry i's result: a signed value, or the sentinel object if untouched. */
function result(k: GuestKernel, at: number, i: number): number | { lo: number; hi: number } {
  const e = at + i * E.size + E.fields.result.offset;
  const lo = k.v.load32(e);
  const hi = k.v.load32(e + 4);
  if (lo === SENTINEL.lo && hi === SENTINEL.hi) return SENTINEL;
  return (hi | 0) * 4294967296 + lo;
}

function multicall(k: GuestKernel, at: number, calls: readonly Call[]): number {
  writeEntries(k, at, calls);
  return k.v.hypercall(X.HYPERVISOR_multicall, at, calls.length);
}

const version = (): Call => ({ op: X.HYPERVISOR_xen_version, args: [V.XENVER_version, 0] });

describe('multicall', () => {
  let t: TestMachine;
  beforeEach(() => {
    t = bootTestMachine();
  });
  afterEach(() => t.check());

  it("each entry's result is written into that entry; the multicall itself returns 0", () => {
    const g = t.guest;
    const rc = multicall(g, g.buf, [
      version(),
      { op: X.HYPERVISOR_vm_assist, args: [X.VMASST_CMD_enable, X.VMASST_TYPE_pae_extended_cr3] },
      { op: X.HYPERVISOR_xen_version, args: [V.XENVER_pagesize, 0] },
    ]);
    expect(rc).to.equal(0);
    expect(result(g, g.buf, 0)).to.equal(XEN_VERSION);
    expect(result(g, g.buf, 1)).to.equal(0);
    expect(result(g, g.buf, 2)).to.equal(4096);
    // The vm_assist entry really ran.
    expect(t.m.domain(g.domid)!.vmAssistEnabled(X.VMASST_TYPE_pae_extended_cr3)).to.equal(true);
  });

  it('a failing entry does not stop the batch: its errno goes in its result, later entries run', () => {
    const g = t.guest;
    const rc = multicall(g, g.buf, [
      { op: X.HYPERVISOR_vm_assist, args: [X.VMASST_CMD_enable, 6] },
      { op: X.HYPERVISOR_xen_version, args: [V.XENVER_pagesize, g.buf] },
      version(),
    ]);
    expect(rc).to.equal(0);
    expect(result(g, g.buf, 0)).to.equal(-EINVAL);
    expect(result(g, g.buf, 1)).to.equal(-EINVAL);
    expect(result(g, g.buf, 2)).to.equal(XEN_VERSION);
  });

  it('an unknown op puts -ENOSYS in its result and the batch continues', () => {
    const g = t.guest;
    const rc = multicall(g, g.buf, [
      { op: 60 },
      { op: 1000 },
      { op: 2 ** 32 + X.HYPERVISOR_xen_version, args: [V.XENVER_version] },
      version(),
    ]);
    expect(rc).to.equal(0);
    expect(result(g, g.buf, 0)).to.equal(-ENOSYS);
    expect(result(g, g.buf, 1)).to.equal(-ENOSYS);
    expect(result(g, g.buf, 2)).to.equal(-ENOSYS);
    expect(result(g, g.buf, 3)).to.equal(XEN_VERSION);
  });

  it('a nested multicall gives -EINVAL in that entry; the inner batch never runs, the outer continues', () => {
    const g = t.guest;
    const inner = g.buf + 2048;
    writeEntries(g, inner, [version()]);
    const rc = multicall(g, g.buf, [
      { op: X.HYPERVISOR_multicall, args: [inner, 1] },
      version(),
    ]);
    expect(rc).to.equal(0);
    expect(result(g, g.buf, 0)).to.equal(-EINVAL);
    expect(result(g, inner, 0)).to.equal(SENTINEL);
    expect(result(g, g.buf, 1)).to.equal(XEN_VERSION);
    // Afterwards a plain multicall works again.
    expect(multicall(g, g.buf, [version()])).to.equal(0);
    expect(result(g, g.buf, 0)).to.equal(XEN_VERSION);
  });

  it("a call list in Xen's range returns -EFAULT and runs nothing", () => {
    const g = t.guest;
    const d = t.m.domain(g.domid)!;
    expect(g.v.hypercall(X.HYPERVISOR_multicall, -0x800000000000, 1)).to.equal(-EFAULT);
    expect(g.v.hypercall(X.HYPERVISOR_multicall, -0x7ff000000000, 3)).to.equal(-EFAULT);
    expect(d.vmAssistEnabled(X.VMASST_TYPE_pae_extended_cr3)).to.equal(false);
  });

  it('an entry that cannot be read stops the batch with -EFAULT after the entries before it ran', () => {
    const g = t.guest;
    // The second entry would be just past the end of the guest's memory: unmapped.
    const at = pfnToVa(g.si.nrPages) - E.size;
    writeEntries(g, at, [version()]);
    expect(g.v.hypercall(X.HYPERVISOR_multicall, at, 2)).to.equal(-EFAULT);
    expect(result(g, at, 0)).to.equal(XEN_VERSION);
  });

  it('nr_calls 0 does nothing and returns 0', () => {
    const g = t.guest;
    writeEntries(g, g.buf, [version()]);
    expect(g.v.hypercall(X.HYPERVISOR_multicall, g.buf, 0)).to.equal(0);
    expect(result(g, g.buf, 0)).to.equal(SENTINEL);
  });

  it('sub-calls run as the calling domain: a domU\'s domctl entry gets -EPERM, Dom0\'s works', () => {
    const run = (k: GuestKernel): number | object => {
      const dc = k.buf + 2048;
      k.v.write(dc, new Uint8Array(144));
      k.v.store32(dc, 5); // XEN_DOMCTL_getdomaininfo
      k.v.store32(dc + 4, 0x15);
      k.v.store16(dc + 8, t.other.domid);
      expect(multicall(k, k.buf, [{ op: X.HYPERVISOR_domctl, args: [dc] }])).to.equal(0);
      return result(k, k.buf, 0);
    };
    expect(run(t.guest)).to.equal(-EPERM);
    expect(run(t.dom0)).to.equal(0);
  });

  /**
   * Runs a batch on g's vCPU with an iret_context on its stack that returns to kernel
   * code at CONT with RAX = 0x1234; true if control arrived there.
   */
  function batchWithIret(g: GuestKernel, calls: readonly Call[]): boolean {
    const CONT = pfnToVa(0) + 0xd00;
    let resumed = false;
    g.define(CONT, function* (cpu) {
      resumed = cpu.reg(REG_RAX) === 0x1234;
    });
    g.exec(function* (cpu) {
      pushIretContext(cpu, { rip: CONT, user: false, rsp: cpu.reg(REG_RSP), eventsOn: true, rax: 0x1234 });
      multicall(g, g.buf, calls);
      throw new Error('the multicall returned after an iret');
    });
    return resumed;
  }

  it('XSA-213: [iret, xen_version] stops after the iret: the xen_version entry is left untouched', () => {
    const g = t.guest;
    expect(batchWithIret(g, [{ op: X.HYPERVISOR_iret }, version()])).to.equal(true);
    // iret's result (the RAX it restored) is written into its entry.
    expect(result(g, g.buf, 0)).to.equal(0x1234);
    expect(result(g, g.buf, 1)).to.equal(SENTINEL);
  });

  it('XSA-213: an iret in the middle of a batch ends it there; the entries before it ran', () => {
    const g = t.guest;
    expect(batchWithIret(g, [
      version(),
      { op: X.HYPERVISOR_iret },
      { op: X.HYPERVISOR_vm_assist, args: [X.VMASST_CMD_enable, X.VMASST_TYPE_pae_extended_cr3] },
    ])).to.equal(true);
    expect(result(g, g.buf, 0)).to.equal(XEN_VERSION);
    expect(result(g, g.buf, 1)).to.equal(0x1234);
    expect(result(g, g.buf, 2)).to.equal(SENTINEL);
    expect(t.m.domain(g.domid)!.vmAssistEnabled(X.VMASST_TYPE_pae_extended_cr3)).to.equal(false);
  });
});
