// Conformance: HYPERVISOR_event_channel_op and the 2-level event ABI, as Xen 4.17 has
// them. Guests write each EVTCHNOP's struct into their own memory and read the pending,
// mask, selector and upcall bits back from their own mapping of shared_info. Each test
// is named after the rule and the errno; tests where two checks fail at once prove
// Xen's order of checks.

import { expect } from 'chai';
import { Machine, type Hypervisor } from '../../hypervisor/index.ts';
import { checkEvtchnInvariants } from '../../hypervisor/evtchn-invariants.ts';
import type { Vcpu } from '../../hypervisor/vcpu.ts';
import { bootKernel, roPage, type GuestKernel } from '../support/fixture.ts';
import { PTE_A, PTE_P, PTE_RW, mmuUpdate, pinTable, pte, ptePtr } from '../../guests/lib/xen-calls.ts';
import {
  clearPendingSel, evtchnAllocUnbound, evtchnBindInterdomain, evtchnBindIpi, evtchnBindPirq, evtchnBindVcpu,
  evtchnBindVirq, evtchnClearPending, evtchnClose, evtchnIsMasked, evtchnIsPending, evtchnReset, evtchnSend,
  evtchnSetMask, evtchnStatus, evtchnUnmask, pendingSelBit, setUpcallMask, setUpcallPending, upcallPending,
} from '../../guests/lib/evtchn-calls.ts';
import {
  EBUSY, EEXIST, EFAULT, EINVAL, ENOENT, ENOSPC, ENOSYS, EOPNOTSUPP, EPERM, ESRCH,
} from '../../hypervisor/public/errno.ts';
import * as E from '../../hypervisor/public/event-channel.ts';
import * as C from '../../hypervisor/public/domctl.ts';
import * as X from '../../hypervisor/public/xen.ts';

// ---- the machine: Dom0 and a guest with two vCPUs, and another guest with one -------

interface Rig {
  m: Machine;
  hv: Hypervisor;
  dom0: GuestKernel;
  g: GuestKernel;
  o: GuestKernel;
  /** vcpu_kick calls, as "dNvM". */
  kicks: string[];
  /** Ports whose pollers were woken, as "dN:port". */
  polls: string[];
}

function boot(): Rig {
  const m = new Machine({ memoryMb: 64 });
  const dom0 = bootKernel(m, true, { memoryMb: 8, maxVcpus: 2 });
  const g = bootKernel(m, false, { memoryMb: 4, maxVcpus: 2 });
  const o = bootKernel(m, false, { memoryMb: 4 });
  const hv = m.hv;
  const kicks: string[] = [];
  const polls: string[] = [];
  const kick = hv.vcpuKick.bind(hv);
  const wake = hv.wakePollers.bind(hv);
  hv.vcpuKick = (v) => {
    kicks.push(`d${v.domain.domid}v${v.vcpuId}`);
    kick(v);
  };
  hv.wakePollers = (d, port) => {
    polls.push(`d${d.domid}:${port}`);
    wake(d, port);
  };
  return { m, hv, dom0, g, o, kicks, polls };
}

// ---- what the guest sees ------------------------------------------------------------

const pending = (k: GuestKernel, port: number): boolean => evtchnIsPending(k.v, k.sharedInfoVa, port);
const masked = (k: GuestKernel, port: number): boolean => evtchnIsMasked(k.v, k.sharedInfoVa, port);
const mask = (k: GuestKernel, port: number, on = true): void => evtchnSetMask(k.v, k.sharedInfoVa, port, on);
const sel = (k: GuestKernel, vcpu: number, port: number): boolean => pendingSelBit(k.v, k.sharedInfoVa, vcpu, port >>> 6);
const upcall = (k: GuestKernel, vcpu: number): number => upcallPending(k.v, k.sharedInfoVa, vcpu);
const status = (k: GuestKernel, port: number, dom = X.DOMID_SELF): ReturnType<typeof evtchnStatus> =>
  evtchnStatus(k.v, k.buf, port, dom);
const send = (k: GuestKernel, port: number): number => evtchnSend(k.v, k.buf, port);
const close = (k: GuestKernel, port: number): number => evtchnClose(k.v, k.buf, port);

/** The guest has handled everything: no pending bits, selectors or upcall flags. */
function quiesce(k: GuestKernel, vcpus = 2): void {
  k.v.write(k.sharedInfoVa + X.SHARED_INFO.fields.evtchn_pending.offset, new Uint8Array(512));
  for (let i = 0; i < vcpus; i++) {
    clearPendingSel(k.v, k.sharedInfoVa, i);
    setUpcallPending(k.v, k.sharedInfoVa, i, 0);
  }
}

function ok<T extends { rc: number; port: number }>(r: T): number {
  expect(r.rc, 'rc').to.equal(0);
  return r.port;
}

/** b offers an unbound port to a, a binds it: [a's port, b's port], all bits quiet. */
function connect(a: GuestKernel, b: GuestKernel): [number, number] {
  const bp = ok(evtchnAllocUnbound(b.v, b.buf, a.domid));
  const ap = ok(evtchnBindInterdomain(a.v, a.buf, b.domid, bp));
  quiesce(a, a === b ? 2 : a.handle.vcpus.length);
  return [ap, bp];
}

/** Binds IPIs on vCPU 0 until the table is full; returns how many were bound. */
function fill(k: GuestKernel): number {
  let n = 0;
  while (evtchnBindIpi(k.v, k.buf, 0).rc === 0) n++;
  return n;
}

function vcpuOf(r: Rig, k: GuestKernel, i: number): Vcpu {
  return r.hv.domainById(k.domid)!.vcpus[i];
}

/** XEN_DOMCTL_pausedomain from Dom0, as its toolstack does it. */
function pauseDomain(dom0: GuestKernel, domid: number): number {
  const F = C.XEN_DOMCTL.fields;
  dom0.v.write(dom0.buf, new Uint8Array(C.XEN_DOMCTL.size));
  dom0.v.store32(dom0.buf + F.cmd.offset, C.XEN_DOMCTL_pausedomain);
  dom0.v.store32(dom0.buf + F.interface_version.offset, C.XEN_DOMCTL_INTERFACE_VERSION);
  dom0.v.store16(dom0.buf + F.domain.offset, domid);
  return dom0.v.hypercall(X.HYPERVISOR_domctl, dom0.buf);
}

/** Dom0 maps frame `mfn` of `domid` through a fresh L1 of its own: the frame outlives a destroy. */
function mapForeign(d0: GuestKernel, domid: number, mfn: number): void {
  const scratch = d0.buf + 3072;
  const l1 = d0.allocPage();
  expect(mmuUpdate(d0.v, scratch, [[ptePtr(d0.bootL1For(l1.pfn), l1.pfn % 512), pte(l1.mfn, PTE_P | PTE_A)]]).rc)
    .to.equal(0);
  expect(pinTable(d0.v, scratch, 1, l1.mfn)).to.equal(0);
  expect(mmuUpdate(d0.v, scratch, [[ptePtr(l1.mfn, 0), pte(mfn, PTE_P | PTE_RW)]], domid).rc).to.equal(0);
}

const UNMAPPED = 0;
const XEN_RANGE = -0x800000000000; // 0xffff800000000000

describe('event channels (EVTCHNOP_*, 2-level ABI)', () => {
  let r: Rig;
  let g: GuestKernel;
  let o: GuestKernel;
  let dom0: GuestKernel;

  beforeEach(() => {
    r = boot();
    ({ g, o, dom0 } = r);
  });
  afterEach(() => {
    expect(r.m.checkInvariants()).to.deep.equal([]);
    expect(checkEvtchnInvariants(r.hv, true)).to.deep.equal([]);
  });

  describe('the dispatcher', () => {
    it('an unknown command returns -ENOSYS', () => {
      for (const cmd of [15, 16, 99, 0xffffffff]) {
        expect(g.v.hypercall(X.HYPERVISOR_event_channel_op, cmd, g.buf), `cmd ${cmd}`).to.equal(-ENOSYS);
      }
    });

    it('an argument that cannot be read returns -EFAULT for every command, changing nothing', () => {
      for (let cmd = 0; cmd <= 13; cmd++) {
        for (const at of [UNMAPPED, XEN_RANGE]) {
          expect(g.v.hypercall(X.HYPERVISOR_event_channel_op, cmd, at), `cmd ${cmd}`).to.equal(-EFAULT);
        }
      }
      expect(status(g, 1).status).to.equal(E.EVTCHNSTAT_closed);
      expect(ok(evtchnBindIpi(g.v, g.buf))).to.equal(1);
    });

    it('a bind whose result cannot be written back returns -EFAULT, and the port stays bound', () => {
      const p = roPage(g, []); // struct evtchn_bind_ipi {vcpu 0}, on a read-only page
      expect(g.v.hypercall(X.HYPERVISOR_event_channel_op, E.EVTCHNOP_bind_ipi, p.va)).to.equal(-EFAULT);
      expect(status(g, 1)).to.include({ rc: 0, status: E.EVTCHNSTAT_ipi });
    });

    it('the whole struct is written back: IN fields as the guest wrote them (DOMID_SELF stays SELF)', () => {
      const F = E.EVTCHN_ALLOC_UNBOUND.fields;
      expect(ok(evtchnAllocUnbound(g.v, g.buf, X.DOMID_SELF))).to.equal(1);
      expect(g.v.load16(g.buf + F.dom.offset)).to.equal(X.DOMID_SELF);
      expect(g.v.load16(g.buf + F.remote_dom.offset)).to.equal(X.DOMID_SELF);
    });

    it('status writes only the union fields of the port state; the rest keep the guest bytes', () => {
      const F = E.EVTCHN_STATUS.fields;
      const raw = (port: number): number[] => {
        g.v.write(g.buf, new Uint8Array(24).fill(0xa5));
        g.v.store16(g.buf + F.dom.offset, X.DOMID_SELF);
        g.v.store32(g.buf + F.port.offset, port);
        expect(g.v.hypercall(X.HYPERVISOR_event_channel_op, E.EVTCHNOP_status, g.buf)).to.equal(0);
        return [g.v.load32(g.buf + 16), g.v.load32(g.buf + 20)];
      };
      const ipi = ok(evtchnBindIpi(g.v, g.buf));
      expect(raw(ipi)).to.deep.equal([0xa5a5a5a5, 0xa5a5a5a5]);
      const unbound = ok(evtchnAllocUnbound(g.v, g.buf, o.domid));
      expect(raw(unbound)).to.deep.equal([(0xa5a50000 | o.domid) >>> 0, 0xa5a5a5a5]);
      expect(g.v.load16(g.buf + 2)).to.equal(0xa5a5); // padding after dom
      expect(raw(0)).to.deep.equal([0xa5a5a5a5, 0xa5a5a5a5]);
    });

    it('EVTCHNOP_reset_cont (14) with no reset in progress returns -EBUSY', () => {
      g.v.store16(g.buf, X.DOMID_SELF);
      expect(g.v.hypercall(X.HYPERVISOR_event_channel_op, 14, g.buf)).to.equal(-EBUSY);
    });

    it('FIFO init_control and expand_array return -EOPNOTSUPP, as a Xen without FIFO support (the guest stays on 2-level)', () => {
      g.v.write(g.buf, new Uint8Array(24));
      expect(g.v.hypercall(X.HYPERVISOR_event_channel_op, E.EVTCHNOP_init_control, g.buf)).to.equal(-EOPNOTSUPP);
      expect(g.v.hypercall(X.HYPERVISOR_event_channel_op, E.EVTCHNOP_expand_array, g.buf)).to.equal(-EOPNOTSUPP);
    });

    it('set_priority returns -EINVAL for an invalid port, else -ENOSYS (2-level has no priorities)', () => {
      g.v.store32(g.buf, 5000);
      g.v.store32(g.buf + 4, 7);
      expect(g.v.hypercall(X.HYPERVISOR_event_channel_op, E.EVTCHNOP_set_priority, g.buf)).to.equal(-EINVAL);
      g.v.store32(g.buf, 1);
      expect(g.v.hypercall(X.HYPERVISOR_event_channel_op, E.EVTCHNOP_set_priority, g.buf)).to.equal(-ENOSYS);
    });

    it('event_channel_op_compat (hypercall 16) runs commands 0-9 on the argument after the command; others are -ENOSYS', () => {
      g.v.write(g.buf, new Uint8Array(E.EVTCHN_OP.size));
      g.v.store32(g.buf, E.EVTCHNOP_bind_ipi);
      g.v.store32(g.buf + 4, 1); // vcpu 1
      expect(g.v.hypercall(X.HYPERVISOR_event_channel_op_compat, g.buf)).to.equal(0);
      expect(g.v.load32(g.buf + 8)).to.equal(1);
      expect(status(g, 1)).to.include({ status: E.EVTCHNSTAT_ipi, vcpu: 1 });
      g.v.store32(g.buf, E.EVTCHNOP_reset);
      expect(g.v.hypercall(X.HYPERVISOR_event_channel_op_compat, g.buf)).to.equal(-ENOSYS);
      expect(g.v.hypercall(X.HYPERVISOR_event_channel_op_compat, 0)).to.equal(-EFAULT);
    });
  });

  describe('ports and their allocation', () => {
    it('port 0 is reserved: status closed on vCPU 0; close, send and bind_vcpu return -EINVAL', () => {
      expect(status(g, 0)).to.include({ rc: 0, status: E.EVTCHNSTAT_closed, vcpu: 0 });
      expect(close(g, 0)).to.equal(-EINVAL);
      expect(send(g, 0)).to.equal(-EINVAL);
      expect(evtchnBindVcpu(g.v, g.buf, 0, 1)).to.equal(-EINVAL);
      expect(evtchnUnmask(g.v, g.buf, 0)).to.equal(0);
    });

    it('allocation hands out the lowest free port from 1, reusing a freed one first', () => {
      expect([1, 2, 3].map(() => ok(evtchnBindIpi(g.v, g.buf)))).to.deep.equal([1, 2, 3]);
      expect(close(g, 2)).to.equal(0);
      expect(ok(evtchnAllocUnbound(g.v, g.buf, o.domid))).to.equal(2);
      expect(ok(evtchnBindVirq(g.v, g.buf, X.VIRQ_TIMER, 0))).to.equal(4);
    });

    it('ports of the first bucket (0-63) are valid though never bound: status closed, unmask 0; port 64 is -EINVAL', () => {
      expect(status(g, 63)).to.include({ rc: 0, status: E.EVTCHNSTAT_closed });
      mask(g, 63);
      expect(evtchnUnmask(g.v, g.buf, 63)).to.equal(0);
      expect(masked(g, 63), 'an unusable port keeps its mask').to.equal(true);
      expect(status(g, 64).rc).to.equal(-EINVAL);
      expect(evtchnUnmask(g.v, g.buf, 64)).to.equal(-EINVAL);
      expect(close(g, 63)).to.equal(-EINVAL);
    });

    it('reaching port 64 makes the next bucket valid, and it stays valid after the port is closed', () => {
      for (let i = 1; i <= 64; i++) ok(evtchnBindIpi(g.v, g.buf));
      expect(status(g, 127)).to.include({ rc: 0, status: E.EVTCHNSTAT_closed });
      expect(status(g, 128).rc).to.equal(-EINVAL);
      expect(close(g, 64)).to.equal(0);
      expect(status(g, 100).rc).to.equal(0);
    });

    it("a guest's ports are 1..1023 (xl's max_evtchn_port); the next bind returns -ENOSPC", () => {
      expect(fill(g)).to.equal(1023);
      expect(status(g, 1023)).to.include({ status: E.EVTCHNSTAT_ipi });
      expect(status(g, 1024).rc).to.equal(-EINVAL);
      expect(evtchnAllocUnbound(g.v, g.buf, o.domid).rc).to.equal(-ENOSPC);
      expect(evtchnBindVirq(g.v, g.buf, X.VIRQ_TIMER, 0).rc).to.equal(-ENOSPC);
      expect(evtchnBindIpi(g.v, g.buf, 1).rc).to.equal(-ENOSPC);
      const op = ok(evtchnAllocUnbound(o.v, o.buf, g.domid));
      expect(evtchnBindInterdomain(g.v, g.buf, o.domid, op).rc).to.equal(-ENOSPC);
      expect(close(g, 500)).to.equal(0);
      expect(ok(evtchnBindIpi(g.v, g.buf))).to.equal(500);
    });

    it("Dom0's ports are limited only by the 2-level ABI: 1..4095, then -ENOSPC", () => {
      expect(fill(dom0)).to.equal(4095);
      expect(evtchnAllocUnbound(dom0.v, dom0.buf, g.domid).rc).to.equal(-ENOSPC);
    });

    it('a freed port goes back to vCPU 0: its next binding starts there', () => {
      const p = ok(evtchnAllocUnbound(g.v, g.buf, o.domid));
      expect(evtchnBindVcpu(g.v, g.buf, p, 1)).to.equal(0);
      expect(close(g, p)).to.equal(0);
      expect(ok(evtchnAllocUnbound(g.v, g.buf, o.domid))).to.equal(p);
      expect(status(g, p).vcpu).to.equal(0);
    });
  });

  describe('alloc_unbound', () => {
    it('allocates an UNBOUND port offered to remote_dom, on vCPU 0', () => {
      const p = ok(evtchnAllocUnbound(g.v, g.buf, o.domid));
      expect(status(g, p)).to.include({ status: E.EVTCHNSTAT_unbound, dom: o.domid, vcpu: 0 });
    });

    it('an unknown domain, or a reserved id, returns -ESRCH', () => {
      for (const dom of [77, X.DOMID_XEN, X.DOMID_IO, X.DOMID_INVALID, 0xffff]) {
        expect(evtchnAllocUnbound(g.v, g.buf, 0, dom).rc, `dom ${dom}`).to.equal(-ESRCH);
      }
    });

    it("another domain's port, from a domain that does not control it, returns -EPERM and allocates nothing", () => {
      expect(evtchnAllocUnbound(g.v, g.buf, g.domid, o.domid).rc).to.equal(-EPERM);
      expect(status(o, 1).status).to.equal(E.EVTCHNSTAT_closed);
      expect(ok(evtchnAllocUnbound(o.v, o.buf, g.domid))).to.equal(1);
    });

    it('-ENOSPC comes before -EPERM: a full domain refuses a stranger with -ENOSPC', () => {
      fill(o);
      expect(evtchnAllocUnbound(g.v, g.buf, g.domid, o.domid).rc).to.equal(-ENOSPC);
    });

    it("the control domain may allocate in a guest; DOMID_SELF as remote_dom means the caller, not dom", () => {
      const p = ok(evtchnAllocUnbound(dom0.v, dom0.buf, X.DOMID_SELF, g.domid));
      expect(status(g, p)).to.include({ status: E.EVTCHNSTAT_unbound, dom: 0 });
      expect(status(dom0, p, g.domid)).to.include({ rc: 0, status: E.EVTCHNSTAT_unbound, dom: 0 });
    });

    it('remote_dom is not checked: a domain that does not exist is recorded as given', () => {
      const p = ok(evtchnAllocUnbound(g.v, g.buf, 0x1234));
      expect(status(g, p).dom).to.equal(0x1234);
    });
  });

  describe('bind_interdomain', () => {
    it('links both ends INTERDOMAIN and marks the new local port pending (not the remote one)', () => {
      const op = ok(evtchnAllocUnbound(o.v, o.buf, g.domid));
      const gp = ok(evtchnBindInterdomain(g.v, g.buf, o.domid, op));
      expect(status(g, gp)).to.include({ status: E.EVTCHNSTAT_interdomain, dom: o.domid, port: op });
      expect(status(o, op)).to.include({ status: E.EVTCHNSTAT_interdomain, dom: g.domid, port: gp });
      expect(pending(g, gp)).to.equal(true);
      expect(sel(g, 0, gp)).to.equal(true);
      expect(upcall(g, 0)).to.equal(1);
      expect(r.kicks).to.deep.equal([`d${g.domid}v0`]);
      expect(pending(o, op)).to.equal(false);
    });

    it('events sent before the bind are dropped (send on UNBOUND returns 0); the bind raises one', () => {
      const op = ok(evtchnAllocUnbound(o.v, o.buf, g.domid));
      expect(send(o, op)).to.equal(0);
      expect(pending(o, op)).to.equal(false);
      const gp = ok(evtchnBindInterdomain(g.v, g.buf, o.domid, op));
      expect(pending(g, gp)).to.equal(true);
    });

    it('an unknown remote domain returns -ESRCH', () => {
      expect(evtchnBindInterdomain(g.v, g.buf, 77, 1).rc).to.equal(-ESRCH);
      expect(evtchnBindInterdomain(g.v, g.buf, X.DOMID_XEN, 1).rc).to.equal(-ESRCH);
    });

    it('a remote port that is not valid, FREE, offered to another domain, bound, or a VIRQ returns -EINVAL', () => {
      const toOther = ok(evtchnAllocUnbound(o.v, o.buf, dom0.domid));
      const virq = ok(evtchnBindVirq(o.v, o.buf, X.VIRQ_TIMER, 0));
      const [, bound] = connect(dom0, o);
      for (const rport of [4096, 64, 0xffffffff, 40, 0, toOther, virq, bound]) {
        expect(evtchnBindInterdomain(g.v, g.buf, o.domid, rport).rc, `port ${rport}`).to.equal(-EINVAL);
      }
    });

    it('a failed bind leaves the local port FREE: the next allocation gets it', () => {
      expect(evtchnBindInterdomain(g.v, g.buf, o.domid, 9).rc).to.equal(-EINVAL);
      expect(status(g, 1).status).to.equal(E.EVTCHNSTAT_closed);
      expect(ok(evtchnBindIpi(g.v, g.buf))).to.equal(1);
    });

    it('the local port is allocated first: a full table gives -ENOSPC even for a bad remote port', () => {
      fill(g);
      expect(evtchnBindInterdomain(g.v, g.buf, o.domid, 9999).rc).to.equal(-ENOSPC);
    });

    it('-ESRCH comes before -ENOSPC', () => {
      fill(g);
      expect(evtchnBindInterdomain(g.v, g.buf, 77, 1).rc).to.equal(-ESRCH);
    });

    it('DOMID_SELF binds a loopback to another own UNBOUND port offered to oneself', () => {
      const a = ok(evtchnAllocUnbound(g.v, g.buf, X.DOMID_SELF));
      const b = ok(evtchnBindInterdomain(g.v, g.buf, X.DOMID_SELF, a));
      expect(status(g, a)).to.include({ status: E.EVTCHNSTAT_interdomain, dom: g.domid, port: b });
      quiesce(g);
      expect(send(g, a)).to.equal(0);
      expect([pending(g, a), pending(g, b)]).to.deep.equal([false, true]);
    });

    it('a loopback to the port the bind itself would get returns -EINVAL (it is still FREE)', () => {
      ok(evtchnAllocUnbound(g.v, g.buf, X.DOMID_SELF));
      expect(evtchnBindInterdomain(g.v, g.buf, X.DOMID_SELF, 2).rc).to.equal(-EINVAL);
    });

    it('the remote port keeps the notify vCPU it was moved to while UNBOUND', () => {
      const gp = ok(evtchnAllocUnbound(g.v, g.buf, o.domid));
      expect(evtchnBindVcpu(g.v, g.buf, gp, 1)).to.equal(0);
      const op = ok(evtchnBindInterdomain(o.v, o.buf, g.domid, gp));
      expect(status(g, gp).vcpu).to.equal(1);
      expect(send(o, op)).to.equal(0);
      expect([sel(g, 0, gp), sel(g, 1, gp), upcall(g, 1)]).to.deep.equal([false, true, 1]);
    });
  });

  describe('bind_virq', () => {
    it('a VIRQ number of 24 or more returns -EINVAL', () => {
      for (const virq of [X.NR_VIRQS, 31, 0x80000000, 0xffffffff]) {
        expect(evtchnBindVirq(g.v, g.buf, virq, 0).rc, `virq ${virq}`).to.equal(-EINVAL);
      }
    });

    it('a global VIRQ on a vCPU other than 0 returns -EINVAL, even a vCPU that does not exist', () => {
      expect(evtchnBindVirq(g.v, g.buf, X.VIRQ_DOM_EXC, 1).rc).to.equal(-EINVAL);
      expect(evtchnBindVirq(g.v, g.buf, X.VIRQ_CONSOLE, 999).rc).to.equal(-EINVAL);
    });

    it('4.17: ARGO, the arch VIRQs and the unassigned 5, 14, 15 are global (vCPU 0 only)', () => {
      for (const virq of [X.VIRQ_ARGO, X.VIRQ_ARCH_0, X.VIRQ_ARCH_7, 5, 14, 15]) {
        expect(evtchnBindVirq(g.v, g.buf, virq, 1).rc, `virq ${virq} on vCPU 1`).to.equal(-EINVAL);
        expect(evtchnBindVirq(g.v, g.buf, virq, 0).rc, `virq ${virq} on vCPU 0`).to.equal(0);
      }
    });

    it('a per-vCPU VIRQ on a vCPU that does not exist returns -ENOENT', () => {
      expect(evtchnBindVirq(g.v, g.buf, X.VIRQ_TIMER, 2).rc).to.equal(-ENOENT);
      expect(evtchnBindVirq(o.v, o.buf, X.VIRQ_XENPMU, 1).rc).to.equal(-ENOENT);
    });

    it('a per-vCPU VIRQ already bound on that vCPU returns -EEXIST; on another vCPU it binds', () => {
      const p0 = ok(evtchnBindVirq(g.v, g.buf, X.VIRQ_TIMER, 0));
      expect(evtchnBindVirq(g.v, g.buf, X.VIRQ_TIMER, 0).rc).to.equal(-EEXIST);
      const p1 = ok(evtchnBindVirq(g.v, g.buf, X.VIRQ_TIMER, 1));
      expect(status(g, p1)).to.include({ status: E.EVTCHNSTAT_virq, virq: X.VIRQ_TIMER, vcpu: 1 });
      expect(status(g, p0)).to.include({ status: E.EVTCHNSTAT_virq, virq: X.VIRQ_TIMER, vcpu: 0 });
    });

    it('a global VIRQ already bound returns -EEXIST', () => {
      ok(evtchnBindVirq(dom0.v, dom0.buf, X.VIRQ_DOM_EXC, 0));
      expect(evtchnBindVirq(dom0.v, dom0.buf, X.VIRQ_DOM_EXC, 0).rc).to.equal(-EEXIST);
    });

    it('the argument checks come before allocation: with a full table, -EINVAL and -ENOENT still', () => {
      fill(g);
      expect(evtchnBindVirq(g.v, g.buf, X.NR_VIRQS, 0).rc).to.equal(-EINVAL);
      expect(evtchnBindVirq(g.v, g.buf, X.VIRQ_TIMER, 2).rc).to.equal(-ENOENT);
      expect(evtchnBindIpi(g.v, g.buf, 2).rc).to.equal(-ENOENT);
      expect(evtchnBindPirq(g.v, g.buf, 99).rc).to.equal(-EINVAL);
      expect(evtchnBindPirq(g.v, g.buf, 1).rc).to.equal(-EPERM);
    });

    it('-EEXIST comes before -ENOSPC', () => {
      ok(evtchnBindVirq(g.v, g.buf, X.VIRQ_TIMER, 0));
      fill(g);
      expect(evtchnBindVirq(g.v, g.buf, X.VIRQ_TIMER, 0).rc).to.equal(-EEXIST);
      expect(evtchnBindVirq(g.v, g.buf, X.VIRQ_TIMER, 1).rc).to.equal(-ENOSPC);
    });

    it("closing a global VIRQ port that bind_vcpu moved clears vCPU 0's table: it can be bound again", () => {
      const p = ok(evtchnBindVirq(g.v, g.buf, X.VIRQ_DOM_EXC, 0));
      expect(evtchnBindVcpu(g.v, g.buf, p, 1)).to.equal(0);
      expect(close(g, p)).to.equal(0);
      expect(ok(evtchnBindVirq(g.v, g.buf, X.VIRQ_DOM_EXC, 0))).to.equal(p);
    });

    it('closing a VIRQ port unbinds the VIRQ: it can be bound again', () => {
      const p = ok(evtchnBindVirq(g.v, g.buf, X.VIRQ_DEBUG, 1));
      expect(close(g, p)).to.equal(0);
      expect(ok(evtchnBindVirq(g.v, g.buf, X.VIRQ_DEBUG, 1))).to.equal(p);
    });

    it('4.17: a guest may bind a global VIRQ it does not handle; it never fires there', () => {
      const p = ok(evtchnBindVirq(g.v, g.buf, X.VIRQ_DOM_EXC, 0));
      quiesce(g);
      r.hv.evtchn.sendGlobalVirq(X.VIRQ_DOM_EXC);
      expect(pending(g, p)).to.equal(false);
    });
  });

  describe('VIRQ delivery', () => {
    it('VIRQ_TIMER is per vCPU: it is raised on the port that vCPU bound, in its own vcpu_info', () => {
      const p1 = ok(evtchnBindVirq(g.v, g.buf, X.VIRQ_TIMER, 1));
      r.hv.evtchn.sendVcpuVirq(vcpuOf(r, g, 0), X.VIRQ_TIMER);
      expect(pending(g, p1), 'vCPU 0 has no timer port').to.equal(false);
      r.hv.evtchn.sendVcpuVirq(vcpuOf(r, g, 1), X.VIRQ_TIMER);
      expect([pending(g, p1), sel(g, 0, p1), sel(g, 1, p1), upcall(g, 0), upcall(g, 1)])
        .to.deep.equal([true, false, true, 0, 1]);
      expect(r.kicks).to.deep.equal([`d${g.domid}v1`]);
      const p0 = ok(evtchnBindVirq(g.v, g.buf, X.VIRQ_TIMER, 0));
      r.hv.evtchn.sendVcpuVirq(vcpuOf(r, g, 0), X.VIRQ_TIMER);
      expect([pending(g, p0), upcall(g, 0)]).to.deep.equal([true, 1]);
    });

    it('VIRQ_CONSOLE is global: it goes to Dom0 if Dom0 bound it, and is dropped otherwise', () => {
      r.hv.evtchn.sendGlobalVirq(X.VIRQ_CONSOLE);
      const p = ok(evtchnBindVirq(dom0.v, dom0.buf, X.VIRQ_CONSOLE, 0));
      expect(pending(dom0, p)).to.equal(false);
      r.hv.evtchn.sendGlobalVirq(X.VIRQ_CONSOLE);
      expect([pending(dom0, p), upcall(dom0, 0)]).to.deep.equal([true, 1]);
    });

    it('VIRQ_DOM_EXC is global: delivered on the notify vCPU after bind_vcpu moved it', () => {
      const p = ok(evtchnBindVirq(dom0.v, dom0.buf, X.VIRQ_DOM_EXC, 0));
      expect(evtchnBindVcpu(dom0.v, dom0.buf, p, 1)).to.equal(0);
      expect(status(dom0, p)).to.include({ status: E.EVTCHNSTAT_virq, vcpu: 1 });
      r.hv.evtchn.sendGlobalVirq(X.VIRQ_DOM_EXC);
      expect([pending(dom0, p), sel(dom0, 0, p), sel(dom0, 1, p), upcall(dom0, 1)]).to.deep.equal([true, false, true, 1]);
    });

    it('a crashed guest raises VIRQ_DOM_EXC in Dom0', () => {
      const p = ok(evtchnBindVirq(dom0.v, dom0.buf, X.VIRQ_DOM_EXC, 0));
      r.hv.domainCrash(r.hv.domainById(o.domid)!, 'test');
      expect(pending(dom0, p)).to.equal(true);
    });

    it('a global VIRQ handed to another domain goes there, and back to Dom0 when that domain dies', () => {
      const gp = ok(evtchnBindVirq(g.v, g.buf, X.VIRQ_CON_RING, 0));
      const dp = ok(evtchnBindVirq(dom0.v, dom0.buf, X.VIRQ_CON_RING, 0));
      expect(r.hv.evtchn.setGlobalVirqHandler(r.hv.domainById(g.domid)!, X.VIRQ_CON_RING)).to.equal(0);
      expect(r.hv.evtchn.setGlobalVirqHandler(r.hv.domainById(g.domid)!, X.VIRQ_TIMER)).to.equal(-EINVAL);
      r.hv.evtchn.sendGlobalVirq(X.VIRQ_CON_RING);
      expect([pending(g, gp), pending(dom0, dp)]).to.deep.equal([true, false]);
      r.m.destroy(g.domid);
      r.hv.evtchn.sendGlobalVirq(X.VIRQ_CON_RING);
      expect(pending(dom0, dp)).to.equal(true);
    });
  });

  describe('bind_ipi', () => {
    it('a vCPU that does not exist returns -ENOENT', () => {
      expect(evtchnBindIpi(g.v, g.buf, 2).rc).to.equal(-ENOENT);
      expect(evtchnBindIpi(g.v, g.buf, 0xffffffff).rc).to.equal(-ENOENT);
    });

    it('binds an IPI on the vCPU; send raises the port itself on that vCPU', () => {
      const p = ok(evtchnBindIpi(g.v, g.buf, 1));
      expect(status(g, p)).to.include({ status: E.EVTCHNSTAT_ipi, vcpu: 1 });
      expect(send(g, p)).to.equal(0);
      expect([pending(g, p), sel(g, 1, p), upcall(g, 1), upcall(g, 0)]).to.deep.equal([true, true, 1, 0]);
    });

    it('bind_vcpu of an IPI port returns -EINVAL', () => {
      const p = ok(evtchnBindIpi(g.v, g.buf, 1));
      expect(evtchnBindVcpu(g.v, g.buf, p, 0)).to.equal(-EINVAL);
    });
  });

  describe('bind_pirq (a PV domain with no PIRQ mapped)', () => {
    it('a PIRQ at or above nr_pirqs (56 for a guest) returns -EINVAL', () => {
      for (const pirq of [56, 1000, 0x80000000, 0xffffffff]) {
        expect(evtchnBindPirq(g.v, g.buf, pirq).rc, `pirq ${pirq}`).to.equal(-EINVAL);
      }
    });

    it('a PIRQ in range returns -EPERM (no access to it) and allocates nothing', () => {
      for (const pirq of [0, 9, 55]) expect(evtchnBindPirq(g.v, g.buf, pirq, E.BIND_PIRQ__WILL_SHARE).rc).to.equal(-EPERM);
      expect(evtchnBindPirq(dom0.v, dom0.buf, 9).rc, 'Dom0 has no PIRQ mapped either').to.equal(-EPERM);
      expect(ok(evtchnBindIpi(g.v, g.buf))).to.equal(1);
    });
  });

  describe('close', () => {
    it('a port that is not valid, FREE, or already closed returns -EINVAL', () => {
      const p = ok(evtchnBindIpi(g.v, g.buf));
      expect(close(g, p)).to.equal(0);
      for (const port of [p, 5, 64, 4096, 0xffffffff]) expect(close(g, port), `port ${port}`).to.equal(-EINVAL);
    });

    it('closing one end returns the peer to UNBOUND naming the closer, with no event and its bits untouched', () => {
      const [gp, op] = connect(g, o);
      mask(o, op);
      expect(send(g, gp)).to.equal(0);
      r.kicks.length = 0;
      r.polls.length = 0;
      expect(close(g, gp)).to.equal(0);
      expect(status(o, op)).to.include({ status: E.EVTCHNSTAT_unbound, dom: g.domid, vcpu: 0 });
      expect([pending(o, op), masked(o, op), upcall(o, 0)]).to.deep.equal([true, true, 0]);
      expect(r.kicks).to.deep.equal([]);
      expect(r.polls).to.deep.equal([]);
      expect(status(g, gp).status).to.equal(E.EVTCHNSTAT_closed);
    });

    it('the closer can bind again to the peer port left UNBOUND for it', () => {
      const [gp, op] = connect(g, o);
      expect(close(g, gp)).to.equal(0);
      expect(ok(evtchnBindInterdomain(g.v, g.buf, o.domid, op))).to.equal(gp);
      expect(status(o, op)).to.include({ status: E.EVTCHNSTAT_interdomain, dom: g.domid, port: gp });
    });

    it('close clears the pending bit but not the mask bit; the reused port inherits the mask', () => {
      const p = ok(evtchnBindIpi(g.v, g.buf));
      mask(g, p);
      expect(send(g, p)).to.equal(0);
      expect(pending(g, p)).to.equal(true);
      expect(close(g, p)).to.equal(0);
      expect([pending(g, p), masked(g, p)]).to.deep.equal([false, true]);
      expect(ok(evtchnBindIpi(g.v, g.buf))).to.equal(p);
      expect(masked(g, p)).to.equal(true);
    });

    it('closing one end of a loopback leaves the other UNBOUND naming the domain itself', () => {
      const a = ok(evtchnAllocUnbound(g.v, g.buf, X.DOMID_SELF));
      const b = ok(evtchnBindInterdomain(g.v, g.buf, X.DOMID_SELF, a));
      expect(close(g, b)).to.equal(0);
      expect(status(g, a)).to.include({ status: E.EVTCHNSTAT_unbound, dom: g.domid });
    });
  });

  describe('send', () => {
    it('INTERDOMAIN sets the peer port pending on its notify vCPU and returns 0', () => {
      const [gp, op] = connect(g, o);
      const [op2, gp2] = connect(o, g);
      expect(evtchnBindVcpu(g.v, g.buf, gp2, 1)).to.equal(0);
      quiesce(g);
      r.kicks.length = 0;
      expect(send(g, gp)).to.equal(0);
      expect([pending(o, op), upcall(o, 0)]).to.deep.equal([true, 1]);
      expect(send(o, op2)).to.equal(0);
      expect([pending(g, gp2), sel(g, 1, gp2), upcall(g, 1), upcall(g, 0)]).to.deep.equal([true, true, 1, 0]);
      expect(r.kicks).to.deep.equal([`d${o.domid}v0`, `d${g.domid}v1`]);
    });

    it('UNBOUND drops the event and returns 0', () => {
      const p = ok(evtchnAllocUnbound(g.v, g.buf, o.domid));
      expect(send(g, p)).to.equal(0);
      expect([pending(g, p), upcall(g, 0)]).to.deep.equal([false, 0]);
      expect(r.kicks).to.deep.equal([]);
    });

    it('a VIRQ port, a FREE or reserved port, or an invalid one returns -EINVAL', () => {
      const virq = ok(evtchnBindVirq(g.v, g.buf, X.VIRQ_TIMER, 0));
      for (const port of [virq, 0, 7, 64, 4096, 0xffffffff]) expect(send(g, port), `port ${port}`).to.equal(-EINVAL);
      expect(pending(g, virq)).to.equal(false);
    });
  });

  describe('2-level set pending', () => {
    it('an unmasked port: pending bit, selector bit, upcall_pending, one kick, pollers woken', () => {
      const p = ok(evtchnBindIpi(g.v, g.buf));
      expect(send(g, p)).to.equal(0);
      expect([pending(g, p), sel(g, 0, p), upcall(g, 0)]).to.deep.equal([true, true, 1]);
      expect(r.kicks).to.deep.equal([`d${g.domid}v0`]);
      expect(r.polls).to.deep.equal([`d${g.domid}:${p}`]);
    });

    it('a pending bit already set: nothing else happens (no selector, upcall, kick or poller wake)', () => {
      const p = ok(evtchnBindIpi(g.v, g.buf));
      expect(send(g, p)).to.equal(0);
      clearPendingSel(g.v, g.sharedInfoVa, 0);
      setUpcallPending(g.v, g.sharedInfoVa, 0, 0);
      r.kicks.length = 0;
      r.polls.length = 0;
      expect(send(g, p)).to.equal(0);
      expect([pending(g, p), sel(g, 0, p), upcall(g, 0)]).to.deep.equal([true, false, 0]);
      expect(r.kicks).to.deep.equal([]);
      expect(r.polls).to.deep.equal([]);
    });

    it('a masked port: the pending bit only — no selector bit, no upcall, no kick; pollers still wake', () => {
      const p = ok(evtchnBindIpi(g.v, g.buf));
      mask(g, p);
      expect(send(g, p)).to.equal(0);
      expect([pending(g, p), sel(g, 0, p), upcall(g, 0)]).to.deep.equal([true, false, 0]);
      expect(r.kicks).to.deep.equal([]);
      expect(r.polls).to.deep.equal([`d${g.domid}:${p}`]);
    });

    it('a selector bit already set: no upcall_pending change and no kick', () => {
      const a = ok(evtchnBindIpi(g.v, g.buf));
      const b = ok(evtchnBindIpi(g.v, g.buf)); // same selector word as a
      expect(send(g, a)).to.equal(0);
      setUpcallPending(g.v, g.sharedInfoVa, 0, 0);
      r.kicks.length = 0;
      expect(send(g, b)).to.equal(0);
      expect([pending(g, b), sel(g, 0, b), upcall(g, 0)]).to.deep.equal([true, true, 0]);
      expect(r.kicks).to.deep.equal([]);
    });

    it('upcall_pending already set: a new selector bit is set but the vCPU is not kicked again', () => {
      for (let i = 1; i < 64; i++) ok(evtchnBindIpi(g.v, g.buf));
      const hi = ok(evtchnBindIpi(g.v, g.buf)); // port 64: selector word 1
      expect(send(g, 1)).to.equal(0);
      r.kicks.length = 0;
      expect(send(g, hi)).to.equal(0);
      expect([sel(g, 0, 1), sel(g, 0, hi), upcall(g, 0)]).to.deep.equal([true, true, 1]);
      expect(r.kicks).to.deep.equal([]);
    });

    it("the vCPU's evtchn_upcall_mask does not stop upcall_pending or the kick (it only defers delivery)", () => {
      const p = ok(evtchnBindIpi(g.v, g.buf));
      setUpcallMask(g.v, g.sharedInfoVa, 0, 1);
      expect(send(g, p)).to.equal(0);
      expect(upcall(g, 0)).to.equal(1);
      expect(r.kicks).to.deep.equal([`d${g.domid}v0`]);
    });
  });

  describe('unmask', () => {
    it('a port that is not valid returns -EINVAL', () => {
      expect(evtchnUnmask(g.v, g.buf, 64)).to.equal(-EINVAL);
      expect(evtchnUnmask(g.v, g.buf, 0xffffffff)).to.equal(-EINVAL);
    });

    it('a masked pending port: clears the mask, sets the selector bit and upcall_pending, kicks', () => {
      const p = ok(evtchnBindIpi(g.v, g.buf, 1));
      mask(g, p);
      expect(send(g, p)).to.equal(0);
      expect(r.kicks).to.deep.equal([]);
      expect(evtchnUnmask(g.v, g.buf, p)).to.equal(0);
      expect([masked(g, p), pending(g, p), sel(g, 1, p), upcall(g, 1)]).to.deep.equal([false, true, true, 1]);
      expect(r.kicks).to.deep.equal([`d${g.domid}v1`]);
    });

    it('a masked port that is not pending: clears the mask only', () => {
      const p = ok(evtchnBindIpi(g.v, g.buf));
      mask(g, p);
      expect(evtchnUnmask(g.v, g.buf, p)).to.equal(0);
      expect([masked(g, p), sel(g, 0, p), upcall(g, 0)]).to.deep.equal([false, false, 0]);
    });

    it('a port the guest unmasked itself: unmask does nothing, even though it is pending', () => {
      const p = ok(evtchnBindIpi(g.v, g.buf));
      mask(g, p);
      expect(send(g, p)).to.equal(0);
      mask(g, p, false);
      expect(evtchnUnmask(g.v, g.buf, p)).to.equal(0);
      expect([pending(g, p), sel(g, 0, p), upcall(g, 0)]).to.deep.equal([true, false, 0]);
      expect(r.kicks).to.deep.equal([]);
    });

    it('a selector bit already set: the mask is cleared, no upcall', () => {
      const a = ok(evtchnBindIpi(g.v, g.buf));
      const b = ok(evtchnBindIpi(g.v, g.buf));
      mask(g, b);
      expect(send(g, b)).to.equal(0);
      expect(send(g, a)).to.equal(0);
      setUpcallPending(g.v, g.sharedInfoVa, 0, 0);
      r.kicks.length = 0;
      expect(evtchnUnmask(g.v, g.buf, b)).to.equal(0);
      expect([masked(g, b), upcall(g, 0)]).to.deep.equal([false, 0]);
      expect(r.kicks).to.deep.equal([]);
    });
  });

  describe('bind_vcpu', () => {
    it('a vCPU that does not exist returns -ENOENT, before the port is looked at', () => {
      const p = ok(evtchnAllocUnbound(g.v, g.buf, o.domid));
      expect(evtchnBindVcpu(g.v, g.buf, p, 2)).to.equal(-ENOENT);
      expect(evtchnBindVcpu(g.v, g.buf, 9999, 2)).to.equal(-ENOENT);
    });

    it('a port that is not valid, FREE, an IPI or a per-vCPU VIRQ returns -EINVAL', () => {
      const ipi = ok(evtchnBindIpi(g.v, g.buf));
      const timer = ok(evtchnBindVirq(g.v, g.buf, X.VIRQ_TIMER, 0));
      for (const port of [9999, 64, 30, ipi, timer]) expect(evtchnBindVcpu(g.v, g.buf, port, 1), `port ${port}`).to.equal(-EINVAL);
    });

    it('UNBOUND, INTERDOMAIN and global VIRQ ports move to the vCPU; bits already set stay where they are', () => {
      const unbound = ok(evtchnAllocUnbound(g.v, g.buf, o.domid));
      const [inter] = connect(g, o);
      const dom = ok(evtchnBindVirq(g.v, g.buf, X.VIRQ_ARGO, 0));
      for (const p of [unbound, inter, dom]) {
        expect(evtchnBindVcpu(g.v, g.buf, p, 1)).to.equal(0);
        expect(status(g, p).vcpu).to.equal(1);
      }
      const [gp, op] = connect(g, o);
      expect(send(o, op)).to.equal(0);
      expect(evtchnBindVcpu(g.v, g.buf, gp, 1)).to.equal(0);
      expect([sel(g, 0, gp), upcall(g, 0), sel(g, 1, gp), upcall(g, 1)]).to.deep.equal([true, 1, false, 0]);
    });
  });

  describe('status', () => {
    it('an unknown domain returns -ESRCH, before the port is looked at', () => {
      expect(status(g, 9999, 77).rc).to.equal(-ESRCH);
    });

    it("-EINVAL for a port that is not valid comes before -EPERM for another domain's port", () => {
      expect(status(g, 9999, o.domid).rc).to.equal(-EINVAL);
      expect(status(g, 1, o.domid).rc).to.equal(-EPERM);
      expect(status(g, 1, g.domid).rc, 'naming oneself by id').to.equal(0);
    });

    it("the control domain may read any domain's ports", () => {
      const [gp, op] = connect(g, o);
      expect(status(dom0, gp, g.domid)).to.include({ rc: 0, status: E.EVTCHNSTAT_interdomain, dom: o.domid, port: op });
    });
  });

  describe('reset', () => {
    it("closes every port of the caller: peers go UNBOUND naming it, pending bits clear, masks stay, port 0 stays reserved", () => {
      const [gp, op] = connect(g, o);
      const ipi = ok(evtchnBindIpi(g.v, g.buf));
      const timer = ok(evtchnBindVirq(g.v, g.buf, X.VIRQ_TIMER, 1));
      mask(g, ipi);
      expect(send(g, ipi)).to.equal(0);
      expect(evtchnReset(g.v, g.buf)).to.equal(0);
      for (const p of [gp, ipi, timer]) expect(status(g, p).status, `port ${p}`).to.equal(E.EVTCHNSTAT_closed);
      expect([pending(g, ipi), masked(g, ipi)]).to.deep.equal([false, true]);
      expect(status(o, op)).to.include({ status: E.EVTCHNSTAT_unbound, dom: g.domid });
      expect(status(g, 0).status).to.equal(E.EVTCHNSTAT_closed);
      expect(close(g, 0)).to.equal(-EINVAL);
      expect(ok(evtchnBindVirq(g.v, g.buf, X.VIRQ_TIMER, 1))).to.equal(1);
    });

    it('an unknown domain returns -ESRCH', () => {
      expect(evtchnReset(dom0.v, dom0.buf, 77)).to.equal(-ESRCH);
    });

    it('another domain, for a domain that does not control it, returns -EPERM (before the pause check)', () => {
      ok(evtchnBindIpi(o.v, o.buf));
      expect(evtchnReset(g.v, g.buf, o.domid)).to.equal(-EPERM);
      expect(status(o, 1).status).to.equal(E.EVTCHNSTAT_ipi);
    });

    it('another domain that the toolstack has not paused returns -EINVAL; once paused it is reset', () => {
      ok(evtchnBindIpi(o.v, o.buf));
      expect(evtchnReset(dom0.v, dom0.buf, o.domid)).to.equal(-EINVAL);
      expect(pauseDomain(dom0, o.domid)).to.equal(0);
      expect(evtchnReset(dom0.v, dom0.buf, o.domid)).to.equal(0);
      expect(status(dom0, 1, o.domid).status).to.equal(E.EVTCHNSTAT_closed);
    });
  });

  describe('domain destruction', () => {
    it("destroying a peer turns the survivor's port UNBOUND naming the dead domain; send drops, close frees", () => {
      const [gp] = connect(g, o);
      mask(g, gp);
      r.kicks.length = 0;
      r.m.destroy(o.domid);
      expect(r.hv.domainById(o.domid)).to.equal(undefined);
      expect(status(g, gp)).to.include({ status: E.EVTCHNSTAT_unbound, dom: o.domid, vcpu: 0 });
      expect([pending(g, gp), masked(g, gp)]).to.deep.equal([false, true]);
      expect(r.kicks).to.deep.equal([]);
      expect(send(g, gp)).to.equal(0);
      expect(pending(g, gp)).to.equal(false);
      expect(close(g, gp)).to.equal(0);
    });

    it('a crashed peer that is not yet destroyed stays INTERDOMAIN; send still sets its pending bit', () => {
      const [gp, op] = connect(g, o);
      const od = r.hv.domainById(o.domid)!;
      r.hv.domainCrash(od, 'test');
      expect(status(g, gp)).to.include({ status: E.EVTCHNSTAT_interdomain, dom: o.domid, port: op });
      expect(send(g, gp)).to.equal(0);
      expect(r.hv.evtchn.isPending(od, op)).to.equal(true);
    });

    it('a dying domain (destroyed, a page still mapped by Dom0) is found, but has no ports and allocates none', () => {
      const [, op] = connect(g, o);
      mapForeign(dom0, o.domid, o.allocPage().mfn);
      r.m.destroy(o.domid);
      expect(r.hv.domainById(o.domid)!.isDying).to.equal(true);
      expect(status(dom0, op, o.domid)).to.include({ rc: 0, status: E.EVTCHNSTAT_closed });
      expect(evtchnAllocUnbound(dom0.v, dom0.buf, 0, o.domid).rc).to.equal(-EINVAL);
      expect(evtchnBindInterdomain(g.v, g.buf, o.domid, op).rc).to.equal(-EINVAL);
      expect(evtchnReset(dom0.v, dom0.buf, o.domid), 'killing pauses, but not as the toolstack').to.equal(-EINVAL);
    });

    it("destroying a domain closes its loopbacks and VIRQs, and frees every port", () => {
      connect(g, g);
      connect(g, o);
      ok(evtchnBindVirq(g.v, g.buf, X.VIRQ_TIMER, 1));
      const gd = r.hv.domainById(g.domid)!;
      r.m.destroy(g.domid);
      expect(gd.evtchn!.active).to.equal(0);
      expect(status(o, 1)).to.include({ status: E.EVTCHNSTAT_unbound, dom: g.domid });
    });
  });

  it('isPending and portValid (for SCHEDOP_poll) follow usability and bucket validity', () => {
    const gd = r.hv.domainById(g.domid)!;
    const p = ok(evtchnBindIpi(g.v, g.buf));
    evtchnClearPending(g.v, g.sharedInfoVa, p);
    expect(r.hv.evtchn.isPending(gd, p)).to.equal(false);
    expect(send(g, p)).to.equal(0);
    expect(r.hv.evtchn.isPending(gd, p)).to.equal(true);
    expect([r.hv.evtchn.portValid(gd, 63), r.hv.evtchn.portValid(gd, 64)]).to.deep.equal([true, false]);
    expect(r.hv.evtchn.isPending(gd, 40)).to.equal(false);
  });
});

