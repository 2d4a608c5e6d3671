// Conformance: HYPERVISOR_xen_version, driven through guest vCPUs with the output
// buffers in the guests' own memory. Each test names the rule and Xen's result.

import { expect } from 'chai';
import { bootTestMachine, type GuestKernel, type TestMachine } from '../support/fixture.ts';
import { pfnToVa } from '../../guests/lib/xen-calls.ts';
import { EFAULT, EINVAL, ENOBUFS, ENOSYS, EPERM } from '../../hypervisor/public/errno.ts';
import * as V from '../../hypervisor/public/version.ts';
import * as X from '../../hypervisor/public/xen.ts';
import { XEN_EXTRAVERSION } from '../../hypervisor/version.ts';

const FILL = 0xaa;
const RO_M2P = -0x800000000000;

function xenVersion(k: GuestKernel, cmd: number, arg: number): number {
  return k.v.hypercall(X.HYPERVISOR_xen_version, cmd, arg);
}

/** Fills n bytes at `at` with FILL, so untouched bytes can be told apart. */
function fill(k: GuestKernel, at: number, n: number): void {
  k.v.write(at, new Uint8Array(n).fill(FILL));
}

function bytes(k: GuestKernel, at: number, n: number): Uint8Array {
  const b = new Uint8Array(n);
  k.v.read(at, b);
  return b;
}

/** The NUL-terminated string at the start of b. */
function cstr(b: Uint8Array): string {
  const end = b.indexOf(0);
  return String.fromCharCode(...b.subarray(0, end < 0 ? b.length : end));
}

/**
 * A buffer of `size` bytes: a NUL-terminated string padded with NULs to the end, and
 * the byte after the buffer untouched.
 */
function expectPaddedString(k: GuestKernel, at: number, size: number): string {
  const b = bytes(k, at, size + 1);
  const s = cstr(b);
  expect(s.length).to.be.below(size);
  expect([...b.subarray(s.length, size)].every((x) => x === 0)).to.equal(true);
  expect(b[size]).to.equal(FILL);
  return s;
}

/** get_features for submap_idx; returns [rc, submap read back]. */
function getFeatures(k: GuestKernel, idx: number): [number, number] {
  const F = V.XEN_FEATURE_INFO.fields;
  k.v.store32(k.buf + F.submap_idx.offset, idx);
  k.v.store32(k.buf + F.submap.offset, 0xdeadbeef);
  const rc = xenVersion(k, V.XENVER_get_features, k.buf);
  return [rc, k.v.load32(k.buf + F.submap.offset)];
}

describe('xen_version', () => {
  let t: TestMachine;
  beforeEach(() => {
    t = bootTestMachine();
  });
  afterEach(() => t.check());

  it('XENVER_version returns (4 << 16) | 17 and needs no argument', () => {
    expect(xenVersion(t.guest, V.XENVER_version, 0)).to.equal((4 << 16) | 17);
    expect(xenVersion(t.dom0, V.XENVER_version, RO_M2P)).to.equal(0x40011);
  });

  it('XENVER_extraversion copies a 16-byte NUL-padded string and returns 0', () => {
    const g = t.guest;
    fill(g, g.buf, 64);
    expect(xenVersion(g, V.XENVER_extraversion, g.buf)).to.equal(0);
    expect(expectPaddedString(g, g.buf, V.XEN_EXTRAVERSION_LEN)).to.equal(XEN_EXTRAVERSION);
  });

  it('XENVER_capabilities copies the 1024-byte ABI string, starting "xen-3.0-x86_64"', () => {
    const g = t.guest;
    fill(g, g.buf, 1100);
    expect(xenVersion(g, V.XENVER_capabilities, g.buf)).to.equal(0);
    const s = expectPaddedString(g, g.buf, V.XEN_CAPABILITIES_INFO_LEN);
    expect(s.startsWith('xen-3.0-x86_64')).to.equal(true);
  });

  it('XENVER_changeset copies a 64-byte NUL-padded string', () => {
    const g = t.guest;
    fill(g, g.buf, 128);
    expect(xenVersion(g, V.XENVER_changeset, g.buf)).to.equal(0);
    expect(expectPaddedString(g, g.buf, V.XEN_CHANGESET_INFO_LEN).length).to.be.above(0);
  });

  it('XENVER_compile_info copies the 144-byte struct of four strings', () => {
    const g = t.guest;
    fill(g, g.buf, 200);
    expect(xenVersion(g, V.XENVER_compile_info, g.buf)).to.equal(0);
    const L = V.XEN_COMPILE_INFO.fields;
    for (const f of [L.compiler, L.compile_by, L.compile_domain, L.compile_date]) {
      const b = bytes(g, g.buf + f.offset, f.size);
      expect(b.indexOf(0)).to.be.at.least(0);
      expect(b.includes(FILL)).to.equal(false);
    }
    expect(g.v.load8(g.buf + V.XEN_COMPILE_INFO.size)).to.equal(FILL);
  });

  it('XENVER_platform_parameters writes virt_start = 0xFFFF800000000000', () => {
    const g = t.guest;
    fill(g, g.buf, 16);
    expect(xenVersion(g, V.XENVER_platform_parameters, g.buf)).to.equal(0);
    expect(g.v.load32(g.buf)).to.equal(0);
    expect(g.v.load32(g.buf + 4)).to.equal(0xffff8000);
    expect(g.v.load8(g.buf + 8)).to.equal(FILL);
  });

  it('XENVER_get_features submap_idx 0 returns the PV feature bits (no writable_page_tables, dom0 only for Dom0)', () => {
    const [rc, submap] = getFeatures(t.guest, 0);
    expect(rc).to.equal(0);
    const bit = (n: number): number => (submap >>> n) & 1;
    expect(bit(V.XENFEAT_mmu_pt_update_preserve_ad)).to.equal(1);
    expect(bit(V.XENFEAT_highmem_assist)).to.equal(1);
    expect(bit(V.XENFEAT_gnttab_map_avail_bits)).to.equal(1);
    expect(bit(V.XENFEAT_memory_op_vnode_supported)).to.equal(1);
    expect(bit(V.XENFEAT_writable_page_tables)).to.equal(0);
    expect(bit(V.XENFEAT_auto_translated_physmap)).to.equal(0);
    expect(bit(V.XENFEAT_supervisor_mode_kernel)).to.equal(0);
    expect(bit(V.XENFEAT_dom0)).to.equal(0);
    expect(bit(V.XENFEAT_pae_pgdir_above_4gb)).to.equal(0);
    const [rc0, submap0] = getFeatures(t.dom0, 0);
    expect(rc0).to.equal(0);
    expect((submap0 >>> V.XENFEAT_dom0) & 1).to.equal(1);
  });

  it('XENVER_get_features reports pae_pgdir_above_4gb once VMASST pae_extended_cr3 is enabled', () => {
    const g = t.guest;
    expect(g.v.hypercall(X.HYPERVISOR_vm_assist, X.VMASST_CMD_enable, X.VMASST_TYPE_pae_extended_cr3)).to.equal(0);
    const [rc, submap] = getFeatures(g, 0);
    expect(rc).to.equal(0);
    expect((submap >>> V.XENFEAT_pae_pgdir_above_4gb) & 1).to.equal(1);
  });

  it('XENVER_get_features with submap_idx 1 returns -EINVAL and leaves submap alone', () => {
    const [rc, submap] = getFeatures(t.guest, 1);
    expect(rc).to.equal(-EINVAL);
    expect(submap).to.equal(0xdeadbeef);
    expect(getFeatures(t.guest, 0xffffffff)[0]).to.equal(-EINVAL);
  });

  it('XENVER_pagesize with a NULL argument returns 4096; with a pointer -EINVAL', () => {
    expect(xenVersion(t.guest, V.XENVER_pagesize, 0)).to.equal(4096);
    expect(xenVersion(t.guest, V.XENVER_pagesize, t.guest.buf)).to.equal(-EINVAL);
    expect(xenVersion(t.dom0, V.XENVER_pagesize, t.dom0.buf)).to.equal(-EINVAL);
  });

  it("XENVER_guest_handle copies the domain's 16-byte handle", () => {
    const g = t.guest;
    fill(g, g.buf, 32);
    expect(xenVersion(g, V.XENVER_guest_handle, g.buf)).to.equal(0);
    const b = bytes(g, g.buf, 17);
    expect([...b.subarray(0, 16)]).to.deep.equal([...t.m.domain(g.domid)!.handle]);
    expect(b[16]).to.equal(FILL);
  });

  it('XENVER_commandline for a domU gives "<denied>" and returns 0', () => {
    const g = t.guest;
    fill(g, g.buf, 1100);
    expect(xenVersion(g, V.XENVER_commandline, g.buf)).to.equal(0);
    const b = bytes(g, g.buf, 9);
    expect(cstr(b)).to.equal('<denied>');
    expect(b[8]).to.equal(0);
  });

  it('XENVER_commandline for a domU copies only "<denied>" and its NUL: the rest of the buffer is untouched', () => {
    const g = t.guest;
    fill(g, g.buf, 1100);
    expect(xenVersion(g, V.XENVER_commandline, g.buf)).to.equal(0);
    expect([...bytes(g, g.buf + 9, 1015)].every((b) => b === FILL)).to.equal(true);
    // Nine writable bytes at the very end of memory are enough.
    const end = pfnToVa(g.si.nrPages);
    expect(xenVersion(g, V.XENVER_commandline, end - 9)).to.equal(0);
  });

  it('XENVER_commandline for the control domain gives Xen\'s command line', () => {
    const d0 = t.dom0;
    fill(d0, d0.buf, 1100);
    expect(xenVersion(d0, V.XENVER_commandline, d0.buf)).to.equal(0);
    const b = bytes(d0, d0.buf, 1024);
    expect(cstr(b)).to.not.equal('<denied>');
    expect(b.indexOf(0)).to.be.at.least(0);
  });

  it('XENVER_build_id for a domU returns -EPERM', () => {
    const g = t.guest;
    g.v.store32(g.buf, 64);
    expect(xenVersion(g, V.XENVER_build_id, g.buf)).to.equal(-EPERM);
    expect(xenVersion(g, V.XENVER_build_id, 0)).to.equal(-EPERM);
    expect(g.v.load32(g.buf)).to.equal(64);
  });

  it('XENVER_build_id for the control domain: NULL gives the length, a short buffer -ENOBUFS, else the copy', () => {
    const d0 = t.dom0;
    const len = xenVersion(d0, V.XENVER_build_id, 0);
    expect(len).to.be.above(0);
    d0.v.store32(d0.buf, len - 1);
    expect(xenVersion(d0, V.XENVER_build_id, d0.buf)).to.equal(-ENOBUFS);
    fill(d0, d0.buf + 4, len + 4);
    d0.v.store32(d0.buf, len + 4);
    expect(xenVersion(d0, V.XENVER_build_id, d0.buf)).to.equal(len);
    expect(d0.v.load8(d0.buf + 4 + len)).to.equal(FILL);
  });

  it('an unmapped or Xen-range argument returns -EFAULT', () => {
    const g = t.guest;
    const end = pfnToVa(g.si.nrPages);
    for (const cmd of [V.XENVER_extraversion, V.XENVER_capabilities, V.XENVER_changeset, V.XENVER_compile_info,
      V.XENVER_platform_parameters, V.XENVER_get_features, V.XENVER_guest_handle, V.XENVER_commandline]) {
      expect(xenVersion(g, cmd, end), `cmd ${cmd}`).to.equal(-EFAULT);
      expect(xenVersion(g, cmd, RO_M2P), `cmd ${cmd}`).to.equal(-EFAULT);
    }
    // A buffer that runs off the end of memory faults too.
    expect(xenVersion(g, V.XENVER_capabilities, end - 512)).to.equal(-EFAULT);
  });

  it('an unknown cmd returns -ENOSYS', () => {
    expect(xenVersion(t.guest, 100, t.guest.buf)).to.equal(-ENOSYS);
    expect(xenVersion(t.guest, 0x12345, 0)).to.equal(-ENOSYS);
    expect(xenVersion(t.dom0, 100, t.dom0.buf)).to.equal(-ENOSYS);
  });
});
