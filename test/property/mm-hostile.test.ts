// Property: random hostile sequences of mmu_update, mmuext_op and update_va_mapping from
// several domains never raise an exception out of the hypervisor and never break an
// invariant; destroying every domain afterwards returns every frame to the pool.
// Seeded: XENSIM_SEED=<n> reproduces a run; the seed is printed on failure.

import { expect } from 'chai';
import fc from 'fast-check';
import { Machine } from '../../hypervisor/index.ts';
import { GuestKernel, bootKernel } from '../support/fixture.ts';
import { mmuUpdate, mmuextOp, pte, ptePtr, updateVaMapping, type U64 } from '../../guests/lib/xen-calls.ts';
import * as X from '../../hypervisor/public/xen.ts';
import { GuestTrap, VcpuHalted } from '../../hypervisor/public/vcpu.ts';

const SEED = Number(process.env.XENSIM_SEED ?? 20261121);
const RUNS = Number(process.env.XENSIM_RUNS ?? 60);

type Op =
  | { kind: 'mmu'; dom: number; reqs: { table: number; idx: number; cmd: number; target: number; flags: number; nx: boolean }[]; fd: number }
  | { kind: 'ext'; dom: number; cmd: number; target: number; arg2: number; fd: number }
  | { kind: 'uva'; dom: number; page: number; target: number; flags: number; uvmf: number }
  | { kind: 'store'; dom: number; page: number; off: number; target: number; flags: number };

// Frames are named by an index into a pool built per run: each domain's boot tables,
// its own pages, other domains' pages, free frames, Xen's frames and absurd numbers.
const frameIdx = fc.nat(63);
const flagsArb = fc.oneof(
  fc.constantFrom(0x1, 0x3, 0x21, 0x63, 0x5, 0x7, 0x0),
  fc.constantFrom(0x81, 0x83, 0x11, 0x9, 0x101, 0x103),
  fc.integer({ min: 0, max: 0xfff }),
);
const domArb = fc.nat(2);
const fdArb = fc.constantFrom(X.DOMID_SELF, 0, 1, 2, 3, X.DOMID_IO, X.DOMID_XEN, 0x7ff4, 77);
// Plausible ops: a domain working on its own frames (pool entries dom*11 .. dom*11+10),
// so that sequences build real tables, pins and linear links for the hostile ones to hit.
const ownIdx = (dom: number): fc.Arbitrary<number> => fc.integer({ min: dom * 11, max: dom * 11 + 10 });
const plausibleArb: fc.Arbitrary<Op> = domArb.chain((dom) => fc.oneof(
  fc.record({
    kind: fc.constant('mmu' as const), dom: fc.constant(dom),
    reqs: fc.array(fc.record({
      table: ownIdx(dom), idx: fc.oneof(fc.integer({ min: 8, max: 15 }), fc.nat(511)), cmd: fc.constant(0),
      target: ownIdx(dom), flags: fc.constantFrom(0x1, 0x3, 0x21, 0x0), nx: fc.constant(false),
    }), { minLength: 1, maxLength: 3 }),
    fd: fc.constant(X.DOMID_SELF),
  }),
  fc.record({
    kind: fc.constant('ext' as const), dom: fc.constant(dom), cmd: fc.constantFrom(0, 1, 2, 3, 4, 5, 15, 16, 17),
    target: ownIdx(dom), arg2: ownIdx(dom), fd: fc.constant(X.DOMID_SELF),
  }),
));

const opArb: fc.Arbitrary<Op> = fc.oneof(
  plausibleArb,
  plausibleArb,
  fc.record({
    kind: fc.constant('mmu' as const),
    dom: domArb,
    reqs: fc.array(fc.record({
      table: frameIdx,
      // Slots 8-15 of the first boot L1 map the pool's own pages: unmapping them lets pins succeed.
      idx: fc.oneof(fc.nat(511), fc.constantFrom(0, 256, 258, 272, 511), fc.integer({ min: 8, max: 15 })), cmd: fc.oneof(fc.constant(0), fc.nat(7)),
      target: frameIdx, flags: flagsArb, nx: fc.boolean(),
    }), { minLength: 1, maxLength: 4 }),
    fd: fc.oneof(fc.constant(X.DOMID_SELF), fdArb),
  }),
  fc.record({
    kind: fc.constant('ext' as const), dom: domArb,
    cmd: fc.oneof(fc.constantFrom(0, 1, 2, 3, 4, 5, 15, 16, 17), fc.nat(22)),
    target: frameIdx, arg2: frameIdx, fd: fc.oneof(fc.constant(X.DOMID_SELF), fdArb),
  }),
  fc.record({
    kind: fc.constant('uva' as const), dom: domArb, page: fc.nat(1100), target: frameIdx, flags: flagsArb,
    uvmf: fc.constantFrom(0, 1, 2, 3, 4, 5, 6),
  }),
  fc.record({
    kind: fc.constant('store' as const), dom: domArb, page: fc.nat(1100), off: fc.nat(511), target: frameIdx, flags: flagsArb,
  }),
);

function framePool(m: Machine, ks: GuestKernel[]): number[] {
  const pool: number[] = [];
  for (const k of ks) {
    pool.push(k.l4, k.bootL3, k.bootL2, k.bootL1For(0), k.bootL1For(600));
    for (let i = 0; i < 6; i++) pool.push(k.mfnOf(k.handle.firstFreePfn + 1 + i));
  }
  let free = 0;
  while (!m.hv.alloc.isFree(free)) free++;
  pool.push(free, 0, 1, m.hv.m2pChunks[0], m.hv.frames.nrFrames - 1, m.hv.frames.nrFrames, 2 ** 33, 0xfffff);
  while (pool.length < 64) pool.push(pool[pool.length % 40]);
  return pool;
}

function run(ks: GuestKernel[], pool: number[], op: Op): void {
  const k = ks[op.dom];
  const v = k.v;
  const scratch = k.buf + 2048;
  switch (op.kind) {
    case 'mmu': {
      const reqs = op.reqs.map((r): [U64, U64] => [
        ptePtr(pool[r.table], r.idx, r.cmd), pte(pool[r.target], r.flags, r.nx ? 0x80000000 : 0),
      ]);
      mmuUpdate(v, scratch, reqs, op.fd);
      break;
    }
    case 'ext':
      mmuextOp(v, scratch, [{ cmd: op.cmd, arg1: pool[op.target], arg2: pool[op.arg2] }], op.fd);
      break;
    case 'uva':
      updateVaMapping(v, -0x780000000000 + op.page * 4096, pte(pool[op.target], op.flags), op.uvmf);
      break;
    case 'store':
      // A direct store of a PTE into (maybe) a page table: faults unless emulated.
      v.store64(-0x780000000000 + op.page * 4096 + op.off * 8, pte(pool[op.target], op.flags).lo, 0);
      break;
  }
}

/** Runs an op; a fault in the guest's own loads and stores is the guest's business. */
function runGuarded(ks: GuestKernel[], pool: number[], op: Op): void {
  try {
    run(ks, pool, op);
  } catch (e) {
    if (!(e instanceof GuestTrap) && !(e instanceof VcpuHalted)) throw e;
  }
}

const stats: ReturnType<Machine['hv']['table']['summary']>[] = [];

describe('property: hostile MM hypercalls from several domains', () => {
  after(() => {
    if (!process.env.XENSIM_STATS) return;
    const total: Record<string, { calls: number; failed: number }> = {};
    for (const s of stats) {
      for (const [name, c] of Object.entries(s)) {
        const t = (total[name] ??= { calls: 0, failed: 0 });
        t.calls += c.calls;
        t.failed += Object.values(c.errors).reduce((a, b) => a + b, 0);
      }
    }
    console.log(total);
  });

  it(`keep every invariant and return every frame on destruction (seed ${SEED}, ${RUNS} runs)`, () => {
    try {
      fc.assert(
        fc.property(fc.array(opArb, { minLength: 1, maxLength: 40 }), fc.boolean(), (ops, wpt) => {
          const m = new Machine({ memoryMb: 32 });
          const freeAtBoot = m.freeFrames;
          const ks = [
            bootKernel(m, true, { pages: 1024 }),
            bootKernel(m, false, { pages: 1024 }),
            bootKernel(m, false, { pages: 1024 }),
          ];
          if (wpt) for (const k of ks) k.v.hypercall(X.HYPERVISOR_vm_assist, X.VMASST_CMD_enable, X.VMASST_TYPE_writable_pagetables);
          const pool = framePool(m, ks);
          for (const op of ops) {
            runGuarded(ks, pool, op);
            const problems = m.checkInvariants();
            if (problems.length > 0) throw new Error(`after ${JSON.stringify(op)}: ${problems.join('; ')}`);
          }
          if (process.env.XENSIM_STATS) stats.push(m.hv.table.summary());
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
