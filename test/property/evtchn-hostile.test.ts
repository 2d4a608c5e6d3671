// Property: random hostile sequences of EVTCHNOPs from Dom0 and two guests — garbage
// ports, domains, vCPUs and VIRQs, unreadable or read-only argument structs, unknown
// commands — mixed with what guests and Xen legitimately do around them (masking,
// handling events, VIRQs raised, pauses, crashes, destruction) never raise an exception
// out of the hypervisor, never return anything but 0 or a Xen errno, and never break an
// event-channel invariant. Destroying every domain afterwards returns every frame.
// Seeded: XENSIM_SEED=<n> reproduces a run; the seed is printed on failure.

import { expect } from 'chai';
import fc from 'fast-check';
import { Machine } from '../../hypervisor/index.ts';
import { checkEvtchnInvariants } from '../../hypervisor/evtchn-invariants.ts';
import { ECS_NAMES } from '../../hypervisor/evtchn-ports.ts';
import { GuestKernel, bootKernel, roPage } from '../support/fixture.ts';
import {
  clearPendingSel, evtchnAllocUnbound, evtchnBindInterdomain, evtchnBindVcpu, evtchnClearPending, evtchnSetMask,
  setUpcallPending,
} from '../../guests/lib/evtchn-calls.ts';
import * as C from '../../hypervisor/public/domctl.ts';
import * as Err from '../../hypervisor/public/errno.ts';
import * as X from '../../hypervisor/public/xen.ts';
import { VcpuHalted } from '../../hypervisor/public/vcpu.ts';

const SEED = Number(process.env.XENSIM_SEED ?? 20261203);
const RUNS = Number(process.env.XENSIM_RUNS ?? 60);

/** Every result an EVTCHNOP may return. */
const RESULTS = new Set([0, -Err.EFAULT, -Err.EINVAL, -Err.ESRCH, -Err.EPERM, -Err.ENOSPC, -Err.ENOENT, -Err.EEXIST,
  -Err.EBUSY, -Err.ENOSYS, -Err.EOPNOTSUPP, -Err.EAGAIN]);

type Op =
  /** cmd < 0: raw command -1 - cmd with raw words. */
  | { kind: 'call'; dom: number; cmd: number; args: number[]; ptr: number }
  | { kind: 'connect'; dom: number; peer: number; vcpu: number }
  | { kind: 'flood'; dom: number; n: number }
  | { kind: 'mask'; dom: number; port: number; on: boolean }
  | { kind: 'handle'; dom: number }
  | { kind: 'virq'; dom: number; vcpu: number; virq: number }
  | { kind: 'globalVirq'; virq: number }
  | { kind: 'pause'; dom: number }
  | { kind: 'crash'; dom: number }
  | { kind: 'destroy'; dom: number };

// Domain ids as a guest might name them: the three domains by index (mapped at run
// time), SELF, and ids of nothing or of Xen's pseudo-domains.
const DOM_INDEX = 0x10000;
const domArb = fc.oneof(
  fc.constantFrom(DOM_INDEX, DOM_INDEX + 1, DOM_INDEX + 2, X.DOMID_SELF),
  fc.constantFrom(77, X.DOMID_XEN, X.DOMID_IO, X.DOMID_INVALID, 0xffff),
);
/** Port arguments from LIVE up name the i-th port the guest has been given (it knows its own ports). */
const LIVE = 2 ** 33;
const portArb = fc.oneof(
  { weight: 4, arbitrary: fc.nat(15).map((i) => LIVE + i) },
  { weight: 2, arbitrary: fc.integer({ min: 1, max: 8 }) },
  { weight: 1, arbitrary: fc.nat(70) },
  { weight: 1, arbitrary: fc.constantFrom(0, 63, 64, 127, 1023, 1024, 4095, 4096, 0x80000000, 0xffffffff) },
  { weight: 1, arbitrary: fc.nat(0xffffffff) },
);
const vcpuArb = fc.oneof(
  { weight: 3, arbitrary: fc.constant(0) },
  { weight: 2, arbitrary: fc.constant(1) },
  { weight: 1, arbitrary: fc.constantFrom(2, 3, 128, 0x80000000, 0xffffffff) },
);
const virqArb = fc.oneof(
  { weight: 3, arbitrary: fc.constantFrom(X.VIRQ_TIMER, X.VIRQ_DOM_EXC) },
  { weight: 1, arbitrary: fc.nat(X.NR_VIRQS - 1) },
  { weight: 1, arbitrary: fc.constantFrom(X.NR_VIRQS, 0x80000000, 0xffffffff) },
);
const whoArb = fc.nat(2);
/** Where the struct is: 0 the scratch buffer, then unmapped, Xen's range, a read-only page, page-crossing, shared_info. */
const ptrArb = fc.oneof(fc.constant(0), fc.constant(0), fc.constant(0), fc.nat(5));

const u16pair = (a: number, b: number): number => ((a & 0xffff) | ((b & 0xffff) << 16)) >>> 0;

const call = (cmd: number, args: fc.Arbitrary<number>[]): fc.Arbitrary<Op> =>
  fc.record({ dom: whoArb, args: fc.tuple(...args), ptr: ptrArb })
    .map(({ dom, args: a, ptr }) => ({ kind: 'call' as const, dom, cmd, args: a, ptr }));

/** A sub-op with plausible-to-garbage arguments (see words() for their meaning per command). */
const callArb: fc.Arbitrary<Op> = fc.oneof(
  call(6, [domArb, domArb]),
  call(0, [domArb, portArb]),
  call(1, [virqArb, vcpuArb]),
  call(1, [virqArb, vcpuArb]),
  call(2, [fc.oneof(fc.nat(60), fc.nat(0xffffffff)), fc.nat(1)]),
  call(3, [portArb]),
  call(3, [portArb]),
  call(4, [portArb]),
  call(4, [portArb]),
  call(9, [portArb]),
  call(5, [domArb, portArb]),
  call(7, [vcpuArb]),
  call(8, [portArb, vcpuArb]),
  call(8, [portArb, vcpuArb]),
  call(10, [domArb]),
  call(14, [domArb]),
  fc.record({
    dom: whoArb, cmd: fc.oneof(fc.nat(20), fc.nat(0xffffffff)),
    args: fc.array(fc.nat(0xffffffff), { minLength: 7, maxLength: 7 }), ptr: ptrArb,
  }).map(({ dom, cmd, args, ptr }) => ({ kind: 'call' as const, dom, cmd: -1 - cmd, args, ptr })),
);

const rec = <T>(weight: number, arbitrary: fc.Arbitrary<T>): fc.WeightedArbitrary<T> => ({ weight, arbitrary });
// Crashes and destruction are rare: a dead domain makes no more calls.
const opArb: fc.Arbitrary<Op> = fc.oneof(
  rec(100, callArb),
  rec(20, fc.record({ kind: fc.constant('connect' as const), dom: whoArb, peer: whoArb, vcpu: fc.nat(1) })),
  rec(2, fc.record({ kind: fc.constant('flood' as const), dom: whoArb, n: fc.oneof(fc.nat(70), fc.constant(1100)) })),
  rec(8, fc.record({ kind: fc.constant('mask' as const), dom: whoArb, port: fc.nat(70), on: fc.boolean() })),
  rec(8, fc.record({ kind: fc.constant('handle' as const), dom: whoArb })),
  rec(4, fc.record({
    kind: fc.constant('virq' as const), dom: whoArb, vcpu: fc.nat(1),
    virq: fc.constantFrom(X.VIRQ_TIMER, X.VIRQ_DEBUG, X.VIRQ_XENPMU),
  })),
  rec(4, fc.record({ kind: fc.constant('globalVirq' as const), virq: fc.constantFrom(X.VIRQ_CONSOLE, X.VIRQ_DOM_EXC, X.VIRQ_ARGO, 5) })),
  rec(2, fc.record({ kind: fc.constant('pause' as const), dom: fc.integer({ min: 1, max: 2 }) })),
  rec(1, fc.record({ kind: fc.constant('crash' as const), dom: fc.integer({ min: 1, max: 2 }) })),
  rec(1, fc.record({ kind: fc.constant('destroy' as const), dom: fc.oneof(fc.constant(0), fc.integer({ min: 1, max: 2 }), fc.integer({ min: 1, max: 2 })) })),
);

interface World {
  m: Machine;
  ks: GuestKernel[];
  /** A read-only page of each kernel. */
  ro: number[];
  /** Ports each guest was given by a bind (some closed since: a guest may reuse a stale one). */
  known: number[][];
}

function structAt(w: World, who: number, ptr: number): number {
  const k = w.ks[who];
  switch (ptr) {
    case 1: return 0; // unmapped
    case 2: return -0x800000000000; // Xen's range
    case 3: return w.ro[who];
    case 4: return k.buf + 4096 - 6; // misaligned, crossing into the next page (vcpu_info[0])
    case 5: return k.sharedInfoVa; // vcpu_info[0]: harmless to scribble on
    default: return k.buf + 2048;
  }
}

/** A hypercall or a store from a guest; the guest's own faults are its business. */
function run(w: World, op: Op): void {
  const { m, ks } = w;
  switch (op.kind) {
    case 'call': {
      const k = ks[op.dom];
      const at = structAt(w, op.dom, op.ptr);
      const cmd = op.cmd < 0 ? -1 - op.cmd : op.cmd;
      const scratch = op.ptr === 0 || op.ptr === 4;
      if (scratch) words(w, op.dom, op.cmd, op.args).forEach((x, i) => k.v.store32(at + i * 4, x));
      const rc = k.v.hypercall(X.HYPERVISOR_event_channel_op, cmd, at);
      if (!RESULTS.has(rc)) throw new Error(`EVTCHNOP ${cmd} returned ${rc}`);
      if (rc === 0 && scratch && OUT_WORD[op.cmd] !== undefined) {
        const target = op.cmd === 6 ? w.ks.findIndex((x) => x.domid === (k.v.load32(at) & 0xffff)) : op.dom;
        learn(w, target < 0 ? op.dom : target, k.v.load32(at + OUT_WORD[op.cmd] * 4));
      }
      break;
    }
    case 'connect': {
      // The front/back-end handshake: the peer offers a port, this domain binds it
      // (possibly a loopback), then moves its end to a vCPU.
      const k = ks[op.dom];
      const peer = ks[op.peer];
      const offered = evtchnAllocUnbound(peer.v, peer.buf + 2048, k.domid);
      if (offered.rc !== 0) break;
      learn(w, op.peer, offered.port);
      const bound = evtchnBindInterdomain(k.v, k.buf + 2048, peer.domid, offered.port);
      if (bound.rc !== 0) break;
      learn(w, op.dom, bound.port);
      evtchnBindVcpu(k.v, k.buf + 2048, bound.port, op.vcpu);
      break;
    }
    case 'flood':
      for (let i = 0; i < op.n; i++) ks[op.dom].v.hypercall(X.HYPERVISOR_event_channel_op, 7, storeIpi(ks[op.dom]));
      break;
    case 'mask':
      evtchnSetMask(ks[op.dom].v, ks[op.dom].sharedInfoVa, op.port, op.on);
      break;
    case 'handle': {
      // Linux's upcall handler: clear upcall_pending and the selectors, then each pending bit.
      const k = ks[op.dom];
      for (let i = 0; i < k.handle.vcpus.length; i++) {
        setUpcallPending(k.v, k.sharedInfoVa, i, 0);
        clearPendingSel(k.v, k.sharedInfoVa, i);
      }
      for (let p = 0; p < 128; p++) evtchnClearPending(k.v, k.sharedInfoVa, p);
      break;
    }
    case 'virq': {
      const d = m.domain(ks[op.dom].domid);
      const v = d?.vcpus[op.vcpu];
      if (v) m.hv.evtchn.sendVcpuVirq(v, op.virq);
      break;
    }
    case 'globalVirq':
      m.hv.evtchn.sendGlobalVirq(op.virq);
      break;
    case 'pause': {
      const dom0 = ks[0];
      const F = C.XEN_DOMCTL.fields;
      dom0.v.write(dom0.buf, new Uint8Array(C.XEN_DOMCTL.size));
      dom0.v.store32(dom0.buf + F.cmd.offset, C.XEN_DOMCTL_pausedomain);
      dom0.v.store32(dom0.buf + F.interface_version.offset, C.XEN_DOMCTL_INTERFACE_VERSION);
      dom0.v.store16(dom0.buf + F.domain.offset, ks[op.dom].domid);
      dom0.v.hypercall(X.HYPERVISOR_domctl, dom0.buf);
      break;
    }
    case 'crash': {
      const d = m.domain(ks[op.dom].domid);
      if (d) m.hv.domainCrash(d, 'property test');
      break;
    }
    case 'destroy':
      m.destroy(ks[op.dom].domid);
      break;
  }
}

/** The struct's 32-bit words: domain arguments become the domains' real ids. */
function words(w: World, who: number, cmd: number, a: number[]): number[] {
  const dom = (x: number): number => (x >= DOM_INDEX ? w.ks[x - DOM_INDEX].domid : x);
  /** A port of domain index `of` (a LIVE reference), or the number itself. */
  const port = (x: number, of: number): number => {
    if (x < LIVE) return x;
    const known = w.known[of];
    return known.length === 0 ? 1 : known[(x - LIVE) % known.length];
  };
  const owner = (x: number): number => (x >= DOM_INDEX && x < DOM_INDEX + 3 ? x - DOM_INDEX : who);
  switch (cmd) {
    case 6: return [u16pair(dom(a[0]), dom(a[1])), 0];
    case 0: return [dom(a[0]), port(a[1], owner(a[0])), 0];
    case 1: case 2: return [a[0], a[1], 0];
    case 3: case 4: case 9: return [port(a[0], who)];
    case 5: return [dom(a[0]), port(a[1], owner(a[0])), 0, 0, 0, 0];
    case 7: return [a[0], 0];
    case 8: return [port(a[0], who), a[1]];
    case 10: case 14: return [dom(a[0])];
    default: return a;
  }
}

/** Where a successful bind left its port in the struct (word index), by command. */
const OUT_WORD: Readonly<Record<number, number>> = { 0: 2, 1: 2, 2: 2, 6: 1, 7: 1 };

/** The guest notes a port it was given (alloc_unbound in another domain gives that domain one). */
function learn(w: World, who: number, port: number): void {
  const known = w.known[who];
  if (!known.includes(port)) known.push(port);
}

function storeIpi(k: GuestKernel): number {
  k.v.store32(k.buf + 2048, 0);
  return k.buf + 2048;
}

function runGuarded(w: World, op: Op): void {
  try {
    run(w, op);
  } catch (e) {
    if (!(e instanceof VcpuHalted)) throw e;
  }
}

/** With XENSIM_STATS: results by errno, and port states seen, over all runs. */
const stats = { results: new Map<string, number>(), states: new Map<string, number>() };

function noteResults(m: Machine): void {
  for (const [name, c] of Object.entries(m.hv.table.summary())) {
    if (name !== 'event_channel_op') continue;
    const failed = Object.values(c.errors).reduce((a, b) => a + b, 0);
    stats.results.set('ok', (stats.results.get('ok') ?? 0) + c.calls - failed);
    for (const [e, n] of Object.entries(c.errors)) stats.results.set(e, (stats.results.get(e) ?? 0) + n);
  }
}

/** Port states present after a step (ports in use, counted once per step). */
function noteStates(m: Machine): void {
  for (const d of m.hv.listDomains()) {
    const e = d.evtchn!;
    for (let p = 1; p < e.validPorts; p++) {
      const name = ECS_NAMES[e.state[p]];
      stats.states.set(name, (stats.states.get(name) ?? 0) + 1);
    }
  }
}

describe('property: hostile event-channel operations from three domains', () => {
  after(() => {
    if (process.env.XENSIM_STATS) console.log(stats);
  });

  it(`keep every event-channel invariant and return every frame on destruction (seed ${SEED}, ${RUNS} runs)`, () => {
    try {
      fc.assert(
        fc.property(fc.array(opArb, { minLength: 1, maxLength: 60, size: 'max' }), (ops) => {
          const m = new Machine({ memoryMb: 32 });
          const freeAtBoot = m.freeFrames;
          const ks = [
            bootKernel(m, true, { pages: 1024, maxVcpus: 2 }),
            bootKernel(m, false, { pages: 1024, maxVcpus: 2 }),
            bootKernel(m, false, { pages: 1024 }),
          ];
          const w: World = { m, ks, ro: ks.map((k) => roPage(k, []).va), known: [[], [], []] };
          for (const op of ops) {
            runGuarded(w, op);
            if (process.env.XENSIM_STATS) noteStates(m);
            const problems = [...m.checkInvariants(), ...checkEvtchnInvariants(m.hv, true)];
            if (problems.length > 0) throw new Error(`after ${JSON.stringify(op)}: ${problems.join('; ')}`);
          }
          if (process.env.XENSIM_STATS) noteResults(m);
          for (const d of m.hv.listDomains()) m.destroy(d.domid);
          expect(m.checkInvariants()).to.deep.equal([]);
          expect(m.hv.listDomains()).to.deep.equal([]);
          expect(m.freeFrames).to.equal(freeAtBoot);
        }),
        { seed: SEED, numRuns: RUNS },
      );
    } catch (e) {
      throw new Error(`property failed with XENSIM_SEED=${SEED}: ${(e as Error).message}`);
    }
  });
});
