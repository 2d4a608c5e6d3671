// Conformance: HYPERVISOR_domctl, the control domain's domain management. Dom0 (the
// privileged domain of the fixture) writes struct xen_domctl (144 bytes, interface
// version 0x15) into its own memory and passes a pointer, as its toolstack would.

import { expect } from 'chai';
import { bootTestMachine, type GuestKernel, type TestMachine } from '../support/fixture.ts';
import { PTE_A, PTE_P, PTE_RW, mmuUpdate, mmuextOp, pfnToVa, pinTable, pte, ptePtr } from '../../guests/lib/xen-calls.ts';
import { EACCES, EEXIST, EFAULT, EINVAL, ENOSPC, ENOSYS, EOVERFLOW, EPERM, ESRCH } from '../../hypervisor/public/errno.ts';
import * as C from '../../hypervisor/public/domctl.ts';
import * as M from '../../hypervisor/public/memory.ts';
import * as X from '../../hypervisor/public/xen.ts';
import { evtchnAllocUnbound, evtchnBindVirq, evtchnIsPending } from '../../guests/lib/evtchn-calls.ts';

const F = C.XEN_DOMCTL.fields;
type Field = keyof typeof F;

// ---- struct-writing helpers: what Dom0's toolstack would do ------------------------------

function writeU64(k: GuestKernel, va: number, x: number): void {
  k.v.store64(va, x >>> 0, Math.floor(x / 4294967296) >>> 0);
}

function readU64(k: GuestKernel, va: number): number {
  return k.v.load32(va + 4) * 4294967296 + k.v.load32(va);
}

/** Writes a zeroed struct xen_domctl at `at` with cmd, interface_version and domain. */
function writeDomctl(k: GuestKernel, at: number, cmd: number, domain: number,
  version = C.XEN_DOMCTL_INTERFACE_VERSION): void {
  k.v.write(at, new Uint8Array(C.XEN_DOMCTL.size));
  k.v.store32(at + F.cmd.offset, cmd);
  k.v.store32(at + F.interface_version.offset, version);
  k.v.store16(at + F.domain.offset, domain);
}

/** A domctl from `k` with the struct at k.buf; `fill` writes the union. */
function domctl(k: GuestKernel, cmd: number, domain: number, fill?: (at: number) => void,
  version = C.XEN_DOMCTL_INTERFACE_VERSION): number {
  writeDomctl(k, k.buf, cmd, domain, version);
  fill?.(k.buf);
  return k.v.hypercall(X.HYPERVISOR_domctl, k.buf);
}

const off = (name: Field): number => F[name].offset;

interface CreateOpts {
  domid?: number;
  maxVcpus?: number;
  flags?: number;
  handle?: Uint8Array;
  maxEvtchnPort?: number;
  maxGrantFrames?: number;
  maxMaptrackFrames?: number;
}

/** createdomain; returns [rc, domain field written back]. */
function createDomain(k: GuestKernel, o: CreateOpts = {}): [number, number] {
  const rc = domctl(k, C.XEN_DOMCTL_createdomain, o.domid ?? 0, (at) => {
    k.v.store32(at + off('u.createdomain.max_vcpus'), o.maxVcpus ?? 1);
    k.v.store32(at + off('u.createdomain.flags'), o.flags ?? 0);
    k.v.store32(at + off('u.createdomain.max_evtchn_port'), o.maxEvtchnPort ?? 1023);
    // xl's defaults.
    k.v.store32(at + off('u.createdomain.max_grant_frames'), o.maxGrantFrames ?? 64);
    k.v.store32(at + off('u.createdomain.max_maptrack_frames'), o.maxMaptrackFrames ?? 1024);
    if (o.handle) k.v.write(at + off('u.createdomain.handle'), o.handle);
  });
  return [rc, k.v.load16(k.buf + F.domain.offset)];
}

function maxMem(k: GuestKernel, domid: number, kb: number): number {
  return domctl(k, C.XEN_DOMCTL_max_mem, domid, (at) => writeU64(k, at + off('u.max_mem.max_memkb'), kb));
}

interface DomainInfo {
  domain: number;
  infoDomain: number;
  flags: number;
  totPages: number;
  maxPages: number;
  sharedInfoFrame: number;
  nrOnlineVcpus: number;
  maxVcpuId: number;
  handle: Uint8Array;
}

/** getdomaininfo; returns rc and, on success, the fields read back from the struct. */
function getDomainInfo(k: GuestKernel, domid: number): { rc: number; info: DomainInfo } {
  const rc = domctl(k, C.XEN_DOMCTL_getdomaininfo, domid);
  const at = k.buf;
  const handle = new Uint8Array(16);
  k.v.read(at + off('u.getdomaininfo.handle'), handle);
  return {
    rc,
    info: {
      domain: k.v.load16(at + off('domain')),
      infoDomain: k.v.load16(at + off('u.getdomaininfo.domain')),
      flags: k.v.load32(at + off('u.getdomaininfo.flags')),
      totPages: readU64(k, at + off('u.getdomaininfo.tot_pages')),
      maxPages: readU64(k, at + off('u.getdomaininfo.max_pages')),
      sharedInfoFrame: readU64(k, at + off('u.getdomaininfo.shared_info_frame')),
      nrOnlineVcpus: k.v.load32(at + off('u.getdomaininfo.nr_online_vcpus')),
      maxVcpuId: k.v.load32(at + off('u.getdomaininfo.max_vcpu_id')),
      handle,
    },
  };
}

/** increase_reservation with a NULL extent list, from `k` for `domid`. */
function increase(k: GuestKernel, domid: number, nr: number): number {
  const R = M.XEN_MEMORY_RESERVATION.fields;
  const at = k.buf + 2048;
  k.v.write(at, new Uint8Array(M.XEN_MEMORY_RESERVATION.size));
  writeU64(k, at + R.nr_extents.offset, nr);
  k.v.store16(at + R.domid.offset, domid);
  return k.v.hypercall(X.HYPERVISOR_memory_op, M.XENMEM_increase_reservation, at);
}

/**
 * Dom0 maps `mfn` of domain `domid` through a fresh pinned L1 of its own (a foreign
 * mapping); returns a function that clears the mapping again.
 */
function mapForeign(d0: GuestKernel, domid: number, mfn: number): () => void {
  const scratch = d0.buf + 3072;
  const l1 = d0.allocPage();
  expect(mmuUpdate(d0.v, scratch, [[ptePtr(d0.bootL1For(l1.pfn), l1.pfn % 512), pte(l1.mfn, PTE_P | PTE_A)]]).rc)
    .to.equal(0);
  expect(pinTable(d0.v, scratch, 1, l1.mfn)).to.equal(0);
  expect(mmuUpdate(d0.v, scratch, [[ptePtr(l1.mfn, 0), pte(mfn, PTE_P | PTE_RW)]], domid).rc).to.equal(0);
  return () => expect(mmuUpdate(d0.v, scratch, [[ptePtr(l1.mfn, 0), { lo: 0, hi: 0 }]]).rc).to.equal(0);
}

describe('domctl', () => {
  let t: TestMachine;
  beforeEach(() => {
    t = bootTestMachine();
  });
  afterEach(() => t.check());

  // ---- prologue ----------------------------------------------------------------------

  it('a wrong interface_version returns -EACCES', () => {
    const d0 = t.dom0;
    for (const version of [0x14, 0x16, 0]) {
      expect(domctl(d0, C.XEN_DOMCTL_getdomaininfo, t.guest.domid, undefined, version)).to.equal(-EACCES);
    }
    // A createdomain that would otherwise succeed creates nothing.
    const nr = t.m.hv.listDomains().length;
    expect(domctl(d0, C.XEN_DOMCTL_createdomain, 0, (at) => {
      d0.v.store32(at + off('u.createdomain.max_vcpus'), 1);
      d0.v.store32(at + off('u.createdomain.max_grant_frames'), 1);
    }, 0x14)).to.equal(-EACCES);
    expect(t.m.hv.listDomains().length).to.equal(nr);
    expect(createDomain(d0)[0]).to.equal(0);
    expect(t.m.hv.listDomains().length).to.equal(nr + 1);
  });

  it('a domctl from an unprivileged domU returns -EPERM', () => {
    const g = t.guest;
    const nr = t.m.hv.listDomains().length;
    expect(createDomain(g)[0]).to.equal(-EPERM);
    expect(t.m.hv.listDomains().length).to.equal(nr);
    expect(domctl(g, C.XEN_DOMCTL_pausedomain, t.other.domid)).to.equal(-EPERM);
    expect(getDomainInfo(t.dom0, t.other.domid).info.flags & C.XEN_DOMINF_paused).to.equal(0);
    expect(domctl(g, C.XEN_DOMCTL_getdomaininfo, g.domid)).to.equal(-EPERM);
    expect(domctl(g, C.XEN_DOMCTL_destroydomain, t.other.domid)).to.equal(-EPERM);
    expect(t.m.domain(t.other.domid)?.isAlive).to.equal(true);
    expect(maxMem(g, g.domid, 1 << 20)).to.equal(-EPERM);
    expect(t.m.domain(g.domid)!.maxPages).to.equal(1024);
  });

  it('the prologue checks the interface version, then the target, before privilege', () => {
    const g = t.guest;
    expect(domctl(g, C.XEN_DOMCTL_pausedomain, t.other.domid, undefined, 0x14)).to.equal(-EACCES);
    expect(domctl(g, C.XEN_DOMCTL_pausedomain, 999)).to.equal(-ESRCH);
    expect(domctl(g, C.XEN_DOMCTL_pausedomain, t.other.domid)).to.equal(-EPERM);
  });

  it('a target domain is looked up by number only: DOMID_SELF returns -ESRCH', () => {
    expect(domctl(t.dom0, C.XEN_DOMCTL_pausedomain, X.DOMID_SELF)).to.equal(-ESRCH);
    expect(domctl(t.dom0, C.XEN_DOMCTL_max_mem, X.DOMID_SELF)).to.equal(-ESRCH);
  });

  it('an unknown cmd returns -ENOSYS', () => {
    expect(domctl(t.dom0, 999, t.guest.domid)).to.equal(-ENOSYS);
    expect(domctl(t.dom0, 0, t.guest.domid)).to.equal(-ENOSYS);
  });

  it('a struct pointer that is unmapped or in Xen\'s range returns -EFAULT', () => {
    const d0 = t.dom0;
    expect(d0.v.hypercall(X.HYPERVISOR_domctl, pfnToVa(d0.si.nrPages))).to.equal(-EFAULT);
    expect(d0.v.hypercall(X.HYPERVISOR_domctl, -0x800000000000)).to.equal(-EFAULT);
    // A struct whose last bytes run off the end of memory faults too.
    const at = pfnToVa(d0.si.nrPages) - 64;
    d0.v.store32(at + F.cmd.offset, C.XEN_DOMCTL_getdomaininfo);
    d0.v.store32(at + F.interface_version.offset, C.XEN_DOMCTL_INTERFACE_VERSION);
    expect(d0.v.hypercall(X.HYPERVISOR_domctl, at)).to.equal(-EFAULT);
  });

  it('a struct that cannot be written back gives -EFAULT after the work is done: createdomain still creates', () => {
    const d0 = t.dom0;
    const p = d0.allocPage();
    writeDomctl(d0, p.va, C.XEN_DOMCTL_createdomain, 0);
    d0.v.store32(p.va + off('u.createdomain.max_vcpus'), 1);
    d0.v.store32(p.va + off('u.createdomain.max_grant_frames'), 1);
    // Make the page read-only in Dom0's direct map, then flush the TLB.
    const scratch = d0.buf + 3072;
    expect(mmuUpdate(d0.v, scratch, [[ptePtr(d0.bootL1For(p.pfn), p.pfn % 512), pte(p.mfn, PTE_P | PTE_A)]]).rc)
      .to.equal(0);
    expect(mmuextOp(d0.v, scratch, [{ cmd: X.MMUEXT_TLB_FLUSH_LOCAL }]).rc).to.equal(0);
    const nr = t.m.hv.listDomains().length;
    expect(d0.v.hypercall(X.HYPERVISOR_domctl, p.va)).to.equal(-EFAULT);
    expect(t.m.hv.listDomains().length).to.equal(nr + 1);
    expect(t.m.domain(3)).to.not.equal(undefined);
    expect(d0.v.load16(p.va + off('domain'))).to.equal(0);
  });

  // ---- createdomain ------------------------------------------------------------------

  it('createdomain with domain 0 picks a new id and writes it back into the struct', () => {
    const d0 = t.dom0;
    // The rover has handed out 1 and 2 to the fixture's guests.
    expect(createDomain(d0)).to.deep.equal([0, 3]);
    expect(t.m.domain(3)).to.not.equal(undefined);
    expect(createDomain(d0)).to.deep.equal([0, 4]);
    expect(t.m.domain(4)).to.not.equal(undefined);
  });

  it('createdomain with a reserved id (DOMID_SELF) also picks a new id', () => {
    expect(createDomain(t.dom0, { domid: X.DOMID_SELF })).to.deep.equal([0, 3]);
  });

  it('createdomain with an explicit free id honours it and does not move the automatic choice', () => {
    expect(createDomain(t.dom0, { domid: 42 })).to.deep.equal([0, 42]);
    expect(t.m.domain(42)!.domid).to.equal(42);
    expect(createDomain(t.dom0)).to.deep.equal([0, 3]);
  });

  it('the automatic choice skips ids already taken', () => {
    expect(createDomain(t.dom0, { domid: 3 })).to.deep.equal([0, 3]);
    expect(createDomain(t.dom0, { domid: 4 })).to.deep.equal([0, 4]);
    expect(createDomain(t.dom0)).to.deep.equal([0, 5]);
  });

  it('createdomain with an explicit existing id returns -EEXIST', () => {
    const nr = t.m.hv.listDomains().length;
    expect(createDomain(t.dom0, { domid: t.guest.domid })[0]).to.equal(-EEXIST);
    expect(createDomain(t.dom0, { domid: 42 })[0]).to.equal(0);
    expect(createDomain(t.dom0, { domid: 42 })[0]).to.equal(-EEXIST);
    expect(t.m.hv.listDomains().length).to.equal(nr + 1);
  });

  it('createdomain passes max_evtchn_port to the event channels: ports above it are -ENOSPC', () => {
    const [rc, domid] = createDomain(t.dom0, { maxEvtchnPort: 3 });
    expect(rc).to.equal(0);
    const ports = [1, 2, 3, 4].map(() => evtchnAllocUnbound(t.dom0.v, t.dom0.buf, 0, domid));
    expect(ports.map((p) => p.rc)).to.deep.equal([0, 0, 0, -ENOSPC]);
    expect(ports.slice(0, 3).map((p) => p.port)).to.deep.equal([1, 2, 3]);
  });

  it('createdomain with max_evtchn_port 0 leaves the domain no port to allocate', () => {
    const [rc, domid] = createDomain(t.dom0, { maxEvtchnPort: 0 });
    expect(rc).to.equal(0);
    expect(evtchnAllocUnbound(t.dom0.v, t.dom0.buf, 0, domid).rc).to.equal(-ENOSPC);
  });

  it('createdomain with max_grant_frames 0 (below the one frame a table starts with) returns -EINVAL', () => {
    const nr = t.m.hv.listDomains().length;
    expect(createDomain(t.dom0, { maxGrantFrames: 0 })[0]).to.equal(-EINVAL);
    expect(createDomain(t.dom0, { maxGrantFrames: 65 })[0]).to.equal(-EINVAL);
    expect(createDomain(t.dom0, { maxMaptrackFrames: 1025 })[0]).to.equal(-EINVAL);
    expect(t.m.hv.listDomains().length).to.equal(nr);
  });

  it('createdomain with negative grant limits takes Xen\'s defaults (64 grant frames)', () => {
    const [rc, id] = createDomain(t.dom0, { maxGrantFrames: -1, maxMaptrackFrames: -1 });
    expect(rc).to.equal(0);
    expect(t.m.domain(id)!.grants!.maxFrames).to.equal(64);
    expect(t.m.domain(id)!.grants!.maxMaptrackFrames).to.equal(1024);
  });

  it('createdomain passes max_grant_frames to the grant table', () => {
    const [rc, id] = createDomain(t.dom0, { maxGrantFrames: 4, maxMaptrackFrames: 0 });
    expect(rc).to.equal(0);
    expect(t.m.domain(id)!.grants!.maxFrames).to.equal(4);
    expect(t.m.domain(id)!.grants!.nrFrames).to.equal(1);
  });

  it('createdomain with max_vcpus 0 returns -EINVAL', () => {
    const nr = t.m.hv.listDomains().length;
    const free = t.m.freeFrames;
    expect(createDomain(t.dom0, { maxVcpus: 0 })[0]).to.equal(-EINVAL);
    expect(t.m.hv.listDomains().length).to.equal(nr);
    expect(t.m.freeFrames).to.equal(free);
  });

  it('createdomain with the HVM flag returns -EINVAL (no HVM support)', () => {
    const nr = t.m.hv.listDomains().length;
    expect(createDomain(t.dom0, { flags: C.XEN_DOMCTL_CDF_hvm })[0]).to.equal(-EINVAL);
    expect(createDomain(t.dom0, { flags: 1 << 20 })[0]).to.equal(-EINVAL);
    expect(t.m.hv.listDomains().length).to.equal(nr);
  });

  it('a created domain is paused with max_pages 0 and tot_pages 0', () => {
    const [rc, id] = createDomain(t.dom0);
    expect(rc).to.equal(0);
    const { rc: irc, info } = getDomainInfo(t.dom0, id);
    expect(irc).to.equal(0);
    expect(info.domain).to.equal(id);
    expect(info.flags & C.XEN_DOMINF_paused).to.equal(C.XEN_DOMINF_paused);
    expect(info.flags & C.XEN_DOMINF_dying).to.equal(0);
    expect(info.totPages).to.equal(0);
    expect(info.maxPages).to.equal(0);
    // With max_pages 0 no memory can be given to it yet.
    expect(increase(t.dom0, id, 1)).to.equal(0);
  });

  // ---- max_mem -----------------------------------------------------------------------

  it('max_mem sets max_pages from KiB (truncating to 4 KiB pages); increase_reservation then fills up to it', () => {
    const d0 = t.dom0;
    const [, id] = createDomain(d0);
    expect(maxMem(d0, id, 10 * 4 + 3)).to.equal(0);
    expect(getDomainInfo(d0, id).info.maxPages).to.equal(10);
    expect(increase(d0, id, 12)).to.equal(10);
    const { info } = getDomainInfo(d0, id);
    expect(info.totPages).to.equal(10);
    expect(t.m.domain(id)!.totPages).to.equal(10);
  });

  it('max_mem beyond UINT_MAX pages is capped at UINT_MAX', () => {
    const d0 = t.dom0;
    const [, id] = createDomain(d0);
    expect(maxMem(d0, id, 2 ** 40)).to.equal(0);
    expect(getDomainInfo(d0, id).info.maxPages).to.equal(0xffffffff);
  });

  it('max_mem below tot_pages is accepted and only blocks new allocations', () => {
    const g = t.guest;
    expect(maxMem(t.dom0, g.domid, 512 * 4)).to.equal(0);
    const { info } = getDomainInfo(t.dom0, g.domid);
    expect(info.maxPages).to.equal(512);
    expect(info.totPages).to.equal(1024);
    expect(increase(t.dom0, g.domid, 1)).to.equal(0);
  });

  // ---- pausedomain / unpausedomain ---------------------------------------------------

  it('pausedomain sets XEN_DOMINF_paused and unpausedomain clears it', () => {
    const d0 = t.dom0;
    const g = t.guest;
    expect(getDomainInfo(d0, g.domid).info.flags & C.XEN_DOMINF_paused).to.equal(0);
    expect(domctl(d0, C.XEN_DOMCTL_pausedomain, g.domid)).to.equal(0);
    expect(getDomainInfo(d0, g.domid).info.flags & C.XEN_DOMINF_paused).to.equal(C.XEN_DOMINF_paused);
    expect(domctl(d0, C.XEN_DOMCTL_pausedomain, g.domid)).to.equal(0);
    expect(domctl(d0, C.XEN_DOMCTL_unpausedomain, g.domid)).to.equal(0);
    expect(getDomainInfo(d0, g.domid).info.flags & C.XEN_DOMINF_paused).to.equal(C.XEN_DOMINF_paused);
    expect(domctl(d0, C.XEN_DOMCTL_unpausedomain, g.domid)).to.equal(0);
    expect(getDomainInfo(d0, g.domid).info.flags & C.XEN_DOMINF_paused).to.equal(0);
  });

  it('pausedomain of the calling domain itself returns -EINVAL', () => {
    expect(domctl(t.dom0, C.XEN_DOMCTL_pausedomain, t.dom0.domid)).to.equal(-EINVAL);
    expect(getDomainInfo(t.dom0, 0).info.flags & C.XEN_DOMINF_paused).to.equal(0);
  });

  it('unpausedomain with the pause count at 0 returns -EINVAL', () => {
    const d0 = t.dom0;
    expect(domctl(d0, C.XEN_DOMCTL_unpausedomain, t.guest.domid)).to.equal(-EINVAL);
    // A new domain starts with count 1: one unpause, then -EINVAL.
    const [, id] = createDomain(d0);
    expect(domctl(d0, C.XEN_DOMCTL_unpausedomain, id)).to.equal(0);
    expect(getDomainInfo(d0, id).info.flags & C.XEN_DOMINF_paused).to.equal(0);
    expect(domctl(d0, C.XEN_DOMCTL_unpausedomain, id)).to.equal(-EINVAL);
  });

  it('pausedomain beyond a toolstack pause count of 255 returns -EOVERFLOW', () => {
    const d0 = t.dom0;
    const g = t.guest;
    for (let i = 0; i < 255; i++) expect(domctl(d0, C.XEN_DOMCTL_pausedomain, g.domid)).to.equal(0);
    expect(domctl(d0, C.XEN_DOMCTL_pausedomain, g.domid)).to.equal(-EOVERFLOW);
    for (let i = 0; i < 255; i++) expect(domctl(d0, C.XEN_DOMCTL_unpausedomain, g.domid)).to.equal(0);
    expect(getDomainInfo(d0, g.domid).info.flags & C.XEN_DOMINF_paused).to.equal(0);
    expect(domctl(d0, C.XEN_DOMCTL_unpausedomain, g.domid)).to.equal(-EINVAL);
  });

  it('pausedomain or unpausedomain of an unknown domain returns -ESRCH', () => {
    expect(domctl(t.dom0, C.XEN_DOMCTL_pausedomain, 999)).to.equal(-ESRCH);
    expect(domctl(t.dom0, C.XEN_DOMCTL_unpausedomain, 999)).to.equal(-ESRCH);
  });

  // ---- getdomaininfo -----------------------------------------------------------------

  it('getdomaininfo of an existing id fills tot_pages, max_pages, shared_info_frame (MFN) and max_vcpu_id', () => {
    const g = t.guest;
    const { rc, info } = getDomainInfo(t.dom0, g.domid);
    expect(rc).to.equal(0);
    expect(info.domain).to.equal(g.domid);
    expect(info.infoDomain).to.equal(g.domid);
    expect(info.totPages).to.equal(1024);
    expect(info.maxPages).to.equal(1024);
    // The guest's start_info gives shared_info's machine address.
    expect(info.sharedInfoFrame).to.equal(g.si.sharedInfoMaddr / 4096);
    expect(info.sharedInfoFrame).to.equal(t.m.domain(g.domid)!.sharedInfoMfn);
    expect(info.maxVcpuId).to.equal(0);
    expect(info.nrOnlineVcpus).to.equal(1);
  });

  it('getdomaininfo reports the handle and max_vcpus - 1 given at createdomain', () => {
    const handle = Uint8Array.from({ length: 16 }, (_, i) => 0xa0 + i);
    const [rc, id] = createDomain(t.dom0, { maxVcpus: 3, handle });
    expect(rc).to.equal(0);
    const { info } = getDomainInfo(t.dom0, id);
    expect([...info.handle]).to.deep.equal([...handle]);
    expect(info.maxVcpuId).to.equal(2);
    expect(info.sharedInfoFrame).to.equal(t.m.domain(id)!.sharedInfoMfn);
  });

  it('getdomaininfo of a missing id returns the next higher domain and writes its id back', () => {
    expect(createDomain(t.dom0, { domid: 42 })[0]).to.equal(0);
    const { rc, info } = getDomainInfo(t.dom0, 10);
    expect(rc).to.equal(0);
    expect(info.domain).to.equal(42);
    expect(info.infoDomain).to.equal(42);
  });

  it('getdomaininfo with no domain at or above the id returns -ESRCH', () => {
    expect(getDomainInfo(t.dom0, 3).rc).to.equal(-ESRCH);
    expect(getDomainInfo(t.dom0, 0x7000).rc).to.equal(-ESRCH);
  });

  it('getdomaininfo of a reserved id returns -EINVAL', () => {
    for (const id of [X.DOMID_SELF, X.DOMID_IO, X.DOMID_XEN, X.DOMID_INVALID, X.DOMID_IDLE]) {
      expect(getDomainInfo(t.dom0, id).rc).to.equal(-EINVAL);
    }
  });

  // ---- destroydomain -----------------------------------------------------------------

  it('destroydomain returns every frame of the domain to the pool', () => {
    const d0 = t.dom0;
    const free = t.m.freeFrames;
    const [, id] = createDomain(d0);
    expect(maxMem(d0, id, 64 * 4)).to.equal(0);
    expect(increase(d0, id, 64)).to.equal(64);
    expect(t.m.freeFrames).to.be.below(free - 64);
    expect(domctl(d0, C.XEN_DOMCTL_destroydomain, id)).to.equal(0);
    expect(t.m.freeFrames).to.equal(free);
    expect(t.m.domain(id)).to.equal(undefined);
  });

  it('destroydomain of a booted guest frees all its pages, page tables included', () => {
    const o = t.other;
    const d = t.m.domain(o.domid)!;
    const expected = t.m.freeFrames + d.totPages + d.xenheapPages;
    expect(domctl(t.dom0, C.XEN_DOMCTL_destroydomain, o.domid)).to.equal(0);
    expect(t.m.freeFrames).to.equal(expected);
    expect(t.m.domain(o.domid)).to.equal(undefined);
  });

  it('a destroyed domain whose page Dom0 still maps stays findable, XEN_DOMINF_dying, until the page goes', () => {
    const d0 = t.dom0;
    const o = t.other;
    const page = o.allocPage();
    const unmap = mapForeign(d0, o.domid, page.mfn);
    expect(domctl(d0, C.XEN_DOMCTL_destroydomain, o.domid)).to.equal(0);
    const { rc, info } = getDomainInfo(d0, o.domid);
    expect(rc).to.equal(0);
    expect(info.domain).to.equal(o.domid);
    expect(info.flags & C.XEN_DOMINF_dying).to.equal(C.XEN_DOMINF_dying);
    expect(info.totPages).to.equal(1);
    // Destroying it again is not an error.
    expect(domctl(d0, C.XEN_DOMCTL_destroydomain, o.domid)).to.equal(0);
    const free = t.m.freeFrames;
    unmap();
    expect(t.m.freeFrames).to.equal(free + 1);
    expect(t.m.domain(o.domid)).to.equal(undefined);
    expect(getDomainInfo(d0, o.domid).rc).to.equal(-ESRCH);
  });

  it('destroydomain of the calling domain itself returns -EINVAL', () => {
    const free = t.m.freeFrames;
    expect(domctl(t.dom0, C.XEN_DOMCTL_destroydomain, t.dom0.domid)).to.equal(-EINVAL);
    expect(t.m.domain(0)!.isAlive).to.equal(true);
    expect(t.m.freeFrames).to.equal(free);
  });

  it('destroydomain of an unknown domain returns -ESRCH', () => {
    expect(domctl(t.dom0, C.XEN_DOMCTL_destroydomain, 999)).to.equal(-ESRCH);
  });

  describe('scheduler_op (credit)', () => {
    const S = (name: string): number => F[`u.scheduler_op.${name}` as Field].offset;
    function schedOp(k: GuestKernel, domid: number, cmd: number, weight = 0, cap = 0,
      schedId = C.XEN_SCHEDULER_CREDIT): number {
      return domctl(k, C.XEN_DOMCTL_scheduler_op, domid, (at) => {
        k.v.store32(at + S('sched_id'), schedId);
        k.v.store32(at + S('cmd'), cmd);
        k.v.store16(at + S('u.credit.weight'), weight);
        k.v.store16(at + S('u.credit.cap'), cap);
      });
    }
    const weightCap = (k: GuestKernel): [number, number] =>
      [k.v.load16(k.buf + S('u.credit.weight')), k.v.load16(k.buf + S('u.credit.cap'))];

    it('getinfo returns the default weight 256 and cap 0', () => {
      expect(schedOp(t.dom0, t.guest.domid, C.XEN_DOMCTL_SCHEDOP_getinfo)).to.equal(0);
      expect(weightCap(t.dom0)).to.deep.equal([256, 0]);
    });

    it('putinfo sets weight and cap; getinfo reads them back', () => {
      expect(schedOp(t.dom0, t.guest.domid, C.XEN_DOMCTL_SCHEDOP_putinfo, 512, 50)).to.equal(0);
      expect(schedOp(t.dom0, t.guest.domid, C.XEN_DOMCTL_SCHEDOP_getinfo)).to.equal(0);
      expect(weightCap(t.dom0)).to.deep.equal([512, 50]);
    });

    it('putinfo with weight 0 and cap 0xffff leaves both unchanged', () => {
      expect(schedOp(t.dom0, t.guest.domid, C.XEN_DOMCTL_SCHEDOP_putinfo, 300, 20)).to.equal(0);
      expect(schedOp(t.dom0, t.guest.domid, C.XEN_DOMCTL_SCHEDOP_putinfo, 0, 0xffff)).to.equal(0);
      expect(schedOp(t.dom0, t.guest.domid, C.XEN_DOMCTL_SCHEDOP_getinfo)).to.equal(0);
      expect(weightCap(t.dom0)).to.deep.equal([300, 20]);
    });

    it('another scheduler id returns -EINVAL and changes nothing', () => {
      expect(schedOp(t.dom0, t.guest.domid, C.XEN_DOMCTL_SCHEDOP_putinfo, 512, 0, C.XEN_SCHEDULER_CREDIT2))
        .to.equal(-EINVAL);
      expect(t.m.domain(t.guest.domid)!.sched.weight).to.equal(256);
    });

    it('putvcpuinfo and getvcpuinfo return -EINVAL under credit', () => {
      expect(schedOp(t.dom0, t.guest.domid, C.XEN_DOMCTL_SCHEDOP_putvcpuinfo)).to.equal(-EINVAL);
      expect(schedOp(t.dom0, t.guest.domid, C.XEN_DOMCTL_SCHEDOP_getvcpuinfo)).to.equal(-EINVAL);
    });

    it('scheduler_op from a domU returns -EPERM', () => {
      expect(schedOp(t.guest, t.guest.domid, C.XEN_DOMCTL_SCHEDOP_putinfo, 65535)).to.equal(-EPERM);
      expect(t.m.domain(t.guest.domid)!.sched.weight).to.equal(256);
    });
  });

  describe('set_virq_handler', () => {
    const setHandler = (k: GuestKernel, domid: number, virq: number): number =>
      domctl(k, C.XEN_DOMCTL_set_virq_handler, domid, (at) => k.v.store32(at + off('u.set_virq_handler.virq'), virq));

    it('makes the domain the handler of a global VIRQ: VIRQ_DOM_EXC then fires there, not in Dom0', () => {
      const g = t.guest;
      const gp = evtchnBindVirq(g.v, g.buf, X.VIRQ_DOM_EXC, 0).port;
      const dp = evtchnBindVirq(t.dom0.v, t.dom0.buf, X.VIRQ_DOM_EXC, 0).port;
      expect(setHandler(t.dom0, g.domid, X.VIRQ_DOM_EXC)).to.equal(0);
      t.m.destroy(t.other.domid);
      expect(evtchnIsPending(g.v, g.sharedInfoVa, gp)).to.equal(true);
      expect(evtchnIsPending(t.dom0.v, t.dom0.sharedInfoVa, dp)).to.equal(false);
    });

    it('a VIRQ that is not global (VIRQ_TIMER) or out of range returns -EINVAL', () => {
      expect(setHandler(t.dom0, t.guest.domid, X.VIRQ_TIMER)).to.equal(-EINVAL);
      expect(setHandler(t.dom0, t.guest.domid, 24)).to.equal(-EINVAL);
    });

    it('from a domU it returns -EPERM', () => {
      expect(setHandler(t.guest, t.guest.domid, X.VIRQ_DOM_EXC)).to.equal(-EPERM);
    });
  });
});
