// `npm run bench`: throughput figures from one run, reported beside a baseline measured
// in the same run, as ratios. Host side; the host clock is read here only, never inside
// the simulation. Never part of `npm test`.

import { execFileSync } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { performance } from 'node:perf_hooks';
import { fileURLToPath } from 'node:url';
import { Machine } from '../hypervisor/index.ts';
import { FrameTable } from '../hypervisor/arch/frame-table.ts';
import { bootKernel, makeTable } from '../test/support/fixture.ts';
import { PTE_A, PTE_D, PTE_P, PTE_RW, pte, ptePtr, store64, pfnToVa, updateVaMapping } from '../guests/lib/xen-calls.ts';
import * as X from '../hypervisor/public/xen.ts';
import type { GuestCode } from '../hypervisor/public/vcpu.ts';
import { SCHEDOP_block, SCHEDOP_yield } from '../hypervisor/public/sched.ts';
import { CALLBACKTYPE_event } from '../hypervisor/public/callback.ts';
import { evtchnAllocUnbound, evtchnBindInterdomain, evtchnClearPending, evtchnSend, setUpcallPending } from '../guests/lib/evtchn-calls.ts';
import { iretFromFrame, registerCallback } from '../guests/lib/xen-traps.ts';
import { KERNEL_MODES, runKernel, type KernelMode } from '../dom0/toolstack/kernel-runs.ts';
import { makeKernelImage } from '../guests/kernel/index.ts';
import { LMBENCH_ROWS, lmbench } from '../guests/kernel/user/lmbench.ts';
import { DEFAULT_COSTS } from '../hypervisor/arch/costs.ts';
import { grantAccess, mapGrantRefs, setupTable, unmapGrantRefs } from '../guests/lib/grant-calls.ts';
import { GNTMAP_host_map, GNTTABOP_map_grant_ref, GNTTABOP_unmap_grant_ref } from '../hypervisor/public/grant-table.ts';
import { hasCommand, hasFile, joinReasons, missingReason } from '../test/support/needs.ts';
import { XEN_C_NEEDS, buildXenC } from '../test/support/xen-c.ts';
import { findShared, sharedMissingReason } from '../test/support/shared-tools.ts';
import { startXensimXenstored, type RunningXenstored } from '../test/support/xenstored-process.ts';
import { referenceMissingReason, startReferenceXenstored } from '../test/support/xenstored-reference-process.ts';
import { XenStored } from '../dom0/xenstore/xenstored.ts';
import { XS_HEADER_BYTES, XS_READ, XS_WRITE, encodeMessage, latin1, readHeader, type XsHeader } from '../dom0/xenstore/wire.ts';

/** Runs fn repeatedly for about `ms` milliseconds; returns calls per second. */
function rate(fn: () => void, ms = 1000): number {
  for (let i = 0; i < 50; i++) fn(); // warm up
  let n = 0;
  const start = performance.now();
  let now = start;
  while (now - start < ms) {
    for (let i = 0; i < 20; i++) fn();
    n += 20;
    now = performance.now();
  }
  return (n * 1000) / (now - start);
}

const fmt = (x: number): string => (x >= 1e6 ? `${(x / 1e6).toFixed(2)} M` : x >= 1e3 ? `${(x / 1e3).toFixed(1)} k` : x.toFixed(1));

function benchPteUpdates(): void {
  const m = new Machine({ memoryMb: 256 });
  m.bootDom0({ memoryMb: 16 });
  const g = bootKernel(m, false, { memoryMb: 32 });
  const l1 = makeTable(g, 1);
  const a = g.allocPage();
  const b = g.allocPage();
  // Two request arrays of 512 (four pages each): all entries to frame A, then all to B,
  // so every update takes new references and drops old ones (no fast path).
  const arrays = [a, b].map((target) => {
    const base = pfnToVa(g.allocPfn());
    for (let k = 1; k < 4; k++) g.allocPfn();
    for (let i = 0; i < 512; i++) {
      store64(g.v, base + i * 16, ptePtr(l1.mfn, i));
      store64(g.v, base + i * 16 + 8, pte(target.mfn, PTE_P | PTE_RW));
    }
    return base;
  });
  let which = 0;
  const batch = (): void => {
    const rc = g.v.hypercall(X.HYPERVISOR_mmu_update, arrays[which], 512, 0, X.DOMID_SELF);
    if (rc !== 0) throw new Error(`mmu_update failed: ${rc}`);
    which ^= 1;
  };
  const validated = rate(batch) * 512;
  if (m.checkInvariants().length > 0) throw new Error('invariants broken by the benchmark');
  // Baseline: what a native kernel does, plain 64-bit stores into the same frame.
  const mem = m.hv.mem;
  let flip = 0;
  const plainBatch = (): void => {
    const mfn = flip ? a.mfn : b.mfn;
    flip ^= 1;
    const lo = ((mfn << 12) | PTE_P | PTE_RW) >>> 0;
    for (let i = 0; i < 512; i++) {
      mem.write32(l1.mfn, i * 8, lo);
      mem.write32(l1.mfn, i * 8 + 4, 0);
    }
  };
  const plain = rate(plainBatch) * 512;
  console.log(`validated PTE updates (mmu_update, batches of 512): ${fmt(validated)}/s`);
  console.log(`plain 64-bit PTE stores into the same frame:        ${fmt(plain)}/s`);
  console.log(`  ratio validated/plain: 1 : ${(plain / validated).toFixed(1)}`);
}

function benchNullHypercall(): void {
  const m = new Machine({ memoryMb: 64 });
  const g = m.createGuest({ memoryMb: 8 });
  const v = g.vcpus[0];
  const call = (): void => {
    if (v.hypercall(X.HYPERVISOR_xen_version, 0, 0) !== 0x40011) throw new Error('xen_version');
  };
  const hc = rate(call);
  // Baseline: a plain function call copying the same arguments into registers.
  const regs = new Uint32Array(10);
  let sink = 0;
  const plainFn = (nr: number, a1: number, a2: number): number => {
    regs[0] = a1 >>> 0;
    regs[1] = Math.floor(a1 / 4294967296) >>> 0;
    regs[2] = a2 >>> 0;
    regs[3] = Math.floor(a2 / 4294967296) >>> 0;
    return nr === 17 ? 0x40011 : -38;
  };
  const plain = rate(() => {
    sink += plainFn(17, 0, 0);
  });
  console.log(`null hypercall (xen_version) round trips:          ${fmt(hc)}/s`);
  console.log(`plain function call copying the same arguments:    ${fmt(plain)}/s${sink === 0 ? '' : ''}`);
  console.log(`  ratio hypercall/plain: 1 : ${(plain / hc).toFixed(1)}`);
}

function benchHostBytes(): void {
  const m = new Machine({ memoryMb: 2048 });
  const abBefore = process.memoryUsage().arrayBuffers;
  const backedBefore = m.hv.mem.backedFrames;
  const g = m.createGuest({ memoryMb: 1024 });
  const v = g.vcpus[0];
  const frames = g.nrPages;
  // Touch 10% of the domain's memory: one store in every tenth page.
  for (let pfn = g.firstFreePfn; pfn < frames; pfn += 10) v.store32(pfnToVa(pfn), pfn);
  const backed = m.hv.mem.backedFrames - backedBefore;
  const perFrameMeta = FrameTable.BYTES_PER_FRAME + 4 /* frame slot */ + 8 /* freed-at tick */ + 1 / 8 /* free bitmap */;
  const backing = (backed * 4096) / frames;
  const measured = (process.memoryUsage().arrayBuffers - abBefore) / frames;
  console.log(`1 GiB domain, 10% touched: ${backed} of ${frames} frames backed (${((100 * backed) / frames).toFixed(1)}%, page tables included)`);
  console.log(`  host bytes per simulated frame: ${(perFrameMeta + backing).toFixed(0)} ` +
    `(${perFrameMeta.toFixed(0)} metadata + ${backing.toFixed(0)} backing); a flat array would use 4096`);
  console.log(`  arrayBuffers grew by ${measured.toFixed(0)} bytes per domain frame while building and touching it`);
}

/** Guest loads through the MMU with the translation in the TLB, against a typed-array read. */
function benchWarmTlb(): void {
  const m = new Machine({ memoryMb: 64 });
  const g = m.createGuest({ memoryMb: 8 });
  const v = g.vcpus[0];
  const va = pfnToVa(g.firstFreePfn);
  v.store32(va, 7);
  let sink = 0;
  const guest = rate(() => {
    for (let i = 0; i < 64; i++) sink += v.load32(va + i * 4);
  }) * 64;
  const arr = new Uint32Array(1024);
  const plain = rate(() => {
    for (let i = 0; i < 64; i++) sink += arr[i];
  }) * 64;
  console.log(`guest loads through the MMU, warm TLB:              ${fmt(guest)}/s`);
  console.log(`typed-array reads:                                 ${fmt(plain)}/s${sink < 0 ? '!' : ''}`);
  console.log(`  ratio guest/plain: 1 : ${(plain / guest).toFixed(1)}`);
}

/** Starts `code` on vCPU 0 of a fixture kernel's domain under the scheduler. */
function startOn(m: Machine, domid: number, code: GuestCode): void {
  const v = m.hv.domainById(domid)!.vcpus[0];
  v.start(code);
  m.hv.sched.wake(v, m.now);
}

/** Two guests on one pCPU that yield to each other: world switches per host second. */
function benchContextSwitch(): void {
  const m = new Machine({ memoryMb: 64, pcpus: 1 });
  const a = bootKernel(m, false, { memoryMb: 4 });
  const b = bootKernel(m, false, { memoryMb: 4 });
  const yielder: GuestCode = function* (cpu) {
    for (;;) {
      cpu.hypercall(X.HYPERVISOR_sched_op, SCHEDOP_yield, 0);
      yield;
    }
  };
  startOn(m, a.domid, yielder);
  startOn(m, b.domid, yielder);
  const t0 = performance.now();
  m.run(200_000_000);
  const secs = (performance.now() - t0) / 1000;
  const n = m.hv.sched.contextSwitches;
  console.log(`context switches between two guests (sched_op yield): ${fmt(n / secs)}/s host ` +
    `(${n} in ${(m.now / 1e6).toFixed(0)} ms virtual)`);
}

/** Guest A sends on an interdomain channel; guest B takes each as an upcall and irets. */
function benchUpcalls(): void {
  const m = new Machine({ memoryMb: 64, pcpus: 2 });
  const a = bootKernel(m, false, { memoryMb: 4 });
  const b = bootKernel(m, false, { memoryMb: 4 });
  const bPort = evtchnAllocUnbound(b.v, b.buf, a.domid).port;
  const aPort = evtchnBindInterdomain(a.v, a.buf, b.domid, bPort).port;
  const CALLBACK = pfnToVa(0) + 0xd00;
  const si = b.sharedInfoVa;
  b.define(CALLBACK, function* (cpu) {
    setUpcallPending(cpu, si, 0, 0);
    cpu.store64(si + 8, 0, 0); // pending_sel
    evtchnClearPending(cpu, si, bPort);
    iretFromFrame(cpu, false);
  });
  expect0(registerCallback(b.v, b.buf, CALLBACKTYPE_event, CALLBACK));
  startOn(m, b.domid, function* (cpu) {
    for (;;) {
      cpu.hypercall(X.HYPERVISOR_sched_op, SCHEDOP_block, 0);
      yield;
    }
  });
  startOn(m, a.domid, function* (cpu) {
    for (;;) {
      evtchnSend(cpu, a.buf, aPort);
      cpu.compute(2400);
      yield;
    }
  });
  const t0 = performance.now();
  m.run(100_000_000);
  const secs = (performance.now() - t0) / 1000;
  const upcalls = m.hv.domainById(b.domid)!.vcpus[0].interrupts;
  console.log(`event-channel sends delivered as upcalls:          ${fmt(upcalls / secs)}/s host ` +
    `(${upcalls} in ${(m.now / 1e6).toFixed(0)} ms virtual)`);
}

/**
 * The lmbench-style table in virtual time: the guest kernel's user programs timed with
 * rdtsc natively (bare machine), patched (Xen pv-ops) and unpatched (trap-and-emulate).
 */
function benchLmbench(): void {
  const us = new Map<KernelMode, Map<string, number>>();
  const t0 = performance.now();
  for (const mode of KERNEL_MODES) {
    const r = runKernel(mode, makeKernelImage(lmbench()), { memoryMb: 32 });
    if (r.failure) throw new Error(`lmbench ${mode}: ${r.failure}`);
    const row = new Map<string, number>();
    for (const line of r.console) {
      const [tag, name, cycles] = line.split(' ');
      if (tag === 'lmbench') row.set(name, Number(cycles) / DEFAULT_COSTS.clockMhz);
    }
    us.set(mode, row);
  }
  const secs = (performance.now() - t0) / 1000;
  const pad = (x: string, n: number): string => x.padStart(n);
  console.log(`lmbench-style microbenchmarks in virtual time (us at ${DEFAULT_COSTS.clockMhz} MHz; ` +
    `ratio to native in brackets):`);
  console.log(`  ${'row'.padEnd(15)}${pad('native', 10)}${pad('patched', 18)}${pad('unpatched', 18)}`);
  for (const name of LMBENCH_ROWS) {
    const n = us.get('native')!.get(name)!;
    const cell = (mode: KernelMode): string => {
      const v = us.get(mode)!.get(name)!;
      return pad(`${v.toFixed(2)} (${(v / n).toFixed(2)}x)`, 18);
    };
    console.log(`  ${name.padEnd(15)}${pad(n.toFixed(2), 10)}${cell('patched')}${cell('unpatched')}`);
  }
  console.log(`  (three kernel boots in ${secs.toFixed(1)} s host)`);
}

function benchGrantMapUnmap(): void {
  const m = new Machine({ memoryMb: 128 });
  m.bootDom0({ memoryMb: 16 });
  const gr = bootKernel(m, false, { memoryMb: 8 });
  const ge = bootKernel(m, false, { memoryMb: 8 });
  const s = setupTable(gr.v, gr.buf, 1);
  expect0(s.rc);
  const gtVa = gr.allocPage().va;
  expect0(updateVaMapping(gr.v, gtVa, pte(s.frames[0], PTE_P | PTE_RW | PTE_A | PTE_D), 0));
  const page = gr.allocPage();
  grantAccess(gr.v, gtVa, 8, ge.domid, page.mfn);
  // One map struct and one unmap struct in the grantee's memory, reused: each pair maps
  // the page writable at `host`, copies the handle across, and unmaps it.
  const host = ge.allocPage().va;
  const mapOp = ge.buf;
  const unmapOp = ge.buf + 64;
  const r = mapGrantRefs(ge.v, mapOp, [{ hostAddr: host, flags: GNTMAP_host_map, ref: 8, dom: gr.domid }]);
  if (r.results[0].status !== 0) throw new Error(`grant map failed: ${r.results[0].status}`);
  unmapGrantRefs(ge.v, unmapOp, [{ hostAddr: host, devBusAddr: 0, handle: r.results[0].handle }]);
  const pair = (): void => {
    ge.v.hypercall(X.HYPERVISOR_grant_table_op, GNTTABOP_map_grant_ref, mapOp, 1);
    ge.v.store32(unmapOp + 16, ge.v.load32(mapOp + 20));
    ge.v.hypercall(X.HYPERVISOR_grant_table_op, GNTTABOP_unmap_grant_ref, unmapOp, 1);
  };
  pair();
  if (ge.v.load16(mapOp + 18) !== 0 || ge.v.load16(unmapOp + 20) !== 0) throw new Error('grant map/unmap pair failed');
  const pairs = rate(pair);
  const nulls = rate(() => ge.v.hypercall(X.HYPERVISOR_xen_version, 0, 0));
  console.log('Grant map+unmap pairs (host_map, writable, PTE installed and cleared, TLB flushed):');
  console.log(`  ${fmt(pairs)} pairs/s   (two hypercalls each; null hypercall ${fmt(nulls)}/s, ratio 1 : ${(nulls / pairs).toFixed(1)} per pair)`);
  if (m.checkInvariants().length !== 0) throw new Error('invariants broken by the grant bench');
}

/**
 * blkif request/response round trips through rings/ on one page: bench/blkif-loop.ts,
 * beside the same loop in C with Xen's own io/ring.h macros (bench/c/blkif_loop.c, gcc
 * -O2, a real fence for xen_mb). Each side runs in a fresh process and counts only its
 * own CPU time; the sides take turns, TRIALS times each, and the figures are the medians
 * and the ratio is theirs. A third line runs the TS loop again with V8's inlining budget
 * raised, to show how much of the gap is calls the JIT leaves out of line (gcc -O2
 * inlines every ring.h macro by construction).
 */
function benchBlkifRoundTrips(): void {
  const TRIALS = 5;
  const INLINE_FLAG = '--max-inlined-bytecode-size-cumulative=8000';
  const here = dirname(fileURLToPath(import.meta.url));
  const trial = (cmd: string, args: string[]): [number, number] => {
    const [trips, notifies] = execFileSync(cmd, args, { encoding: 'utf8' }).trim().split(' ').map(Number);
    return [trips, notifies];
  };
  const tsTrial = (flags: string[] = []): [number, number] =>
    trial(process.execPath, [...flags, '--import', 'tsx', join(here, 'blkif-loop.ts'), '400']);
  const median = (xs: number[]): number => [...xs].sort((a, b) => a - b)[xs.length >> 1];

  const missing = missingReason(XEN_C_NEEDS);
  if (missing !== '') {
    const [ts, notifies] = tsTrial();
    console.log(`blkif round trips through rings/ (one page, TS):    ${fmt(ts)}/s (${notifies.toFixed(2)} notifications each)`);
    console.log(`  the C baseline with Xen's ring.h is skipped: ${missing}`);
    return;
  }
  const dir = mkdtempSync(join(tmpdir(), 'xensim-bench-'));
  try {
    const exe = join(dir, 'blkif_loop');
    buildXenC(join(here, 'c', 'blkif_loop.c'), exe, ['-O2']);
    const ts: number[] = [];
    const inl: number[] = [];
    const c: number[] = [];
    let tsNotifies = 0;
    let cNotifies = 0;
    for (let i = 0; i < TRIALS; i++) {
      [ts[i], tsNotifies] = tsTrial();
      [c[i], cNotifies] = trial(exe, ['400']);
      [inl[i]] = tsTrial([INLINE_FLAG]);
    }
    const tsRate = median(ts);
    const cRate = median(c);
    const inlRate = median(inl);
    console.log(`blkif round trips per CPU second, median of ${TRIALS} turns each, every turn a fresh process:`);
    console.log(`  through rings/ (one page, TS):              ${fmt(tsRate)}/s (${tsNotifies.toFixed(2)} notifications each)`);
    console.log(`  the same loop in C with Xen's ring.h (-O2): ${fmt(cRate)}/s (${cNotifies.toFixed(2)} notifications each)`);
    console.log(`  ratio TS/C: 1 : ${(cRate / tsRate).toFixed(1)}   (TS turns ${ts.map(fmt).join(', ')}; C turns ${c.map(fmt).join(', ')})`);
    console.log(`  TS with ${INLINE_FLAG}: ${fmt(inlRate)}/s, 1 : ${(cRate / inlRate).toFixed(1)} of C`);
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}

/**
 * XenStore write+read pairs per second over the Unix socket, xensim's xenstored beside
 * the reference C xenstored 4.17, both driven by the same client: shared/tools/
 * xenstored-peer/bench_libxs.c (libxenstore, gcc -O2; each client its own process and
 * node, every reply checked). Both servers run for the whole section and take turns,
 * TRIALS times each per client count, so that a noisy host slows both alike; the
 * figures are the medians and the ratio is theirs.
 */
async function benchXenstoreSocket(): Promise<number | null> {
  const TRIALS = 5;
  const PAIRS = 4000;
  const BENCH_C = 'tools/xenstored-peer/bench_libxs.c';
  const clientMissing = joinReasons(
    missingReason([{ test: hasCommand('gcc'), pkg: 'gcc' }, { test: hasFile('/usr/include/xenstore.h'), pkg: 'libxen-dev' }]),
    sharedMissingReason(BENCH_C),
  );
  if (clientMissing !== '') {
    console.log(`XenStore pairs over the Unix socket: skipped, the client bench_libxs ${clientMissing}`);
    return null;
  }
  const refMissing = referenceMissingReason();
  const dir = mkdtempSync(join(tmpdir(), 'xensim-bench-'));
  const servers: RunningXenstored[] = [];
  let oneClient: number | null = null;
  try {
    const exe = join(dir, 'bench_libxs');
    execFileSync('gcc', ['-O2', '-o', exe, findShared(BENCH_C)!, '-lxenstore']);
    servers.push(await startXensimXenstored());
    if (refMissing === '') servers.push(await startReferenceXenstored());
    /** bench_libxs prints "mode rw clients N ops N seconds S ops_per_s R"; ops are requests. */
    const pairsPerSecond = (server: RunningXenstored, pairs: number, clients: number): number => {
      const out = execFileSync(exe, [String(pairs), String(clients)], {
        encoding: 'utf8', env: { ...process.env, XENSTORED_PATH: server.socket },
      });
      const m = /ops (\d+) seconds ([\d.]+)/.exec(out);
      if (!m) throw new Error(`bench_libxs against ${server.name} printed: ${out}`);
      return Number(m[1]) / 2 / Number(m[2]);
    };
    const median = (xs: number[]): number => [...xs].sort((a, b) => a - b)[xs.length >> 1];
    for (const s of servers) pairsPerSecond(s, PAIRS / 4, 1); // warm up
    console.log(`XenStore write+read pairs per second over the Unix socket, all clients together (bench_libxs, libxenstore, ${PAIRS} pairs per client; ` +
      `median of ${TRIALS} turns, servers alternating):`);
    for (const clients of [1, 4]) {
      const turns = servers.map(() => [] as number[]);
      for (let t = 0; t < TRIALS; t++) servers.forEach((s, i) => turns[i].push(pairsPerSecond(s, PAIRS, clients)));
      const [ours, ref] = turns.map(median);
      if (clients === 1) oneClient = ours;
      const label = `${clients} client${clients > 1 ? 's' : ''}:`.padEnd(11);
      if (ref === undefined) console.log(`  ${label}xensim ${fmt(ours)} pairs/s`);
      else {
        console.log(`  ${label}xensim ${fmt(ours)} pairs/s   reference C ${fmt(ref)} pairs/s   ratio ours/C ${(ours / ref).toFixed(2)}` +
          `   (xensim turns ${turns[0].map(fmt).join(', ')}; C turns ${turns[1].map(fmt).join(', ')})`);
      }
    }
    if (refMissing !== '') console.log(`  the reference C xenstored is skipped: ${refMissing}`);
    return oneClient;
  } finally {
    for (const s of servers) await s.stop();
    rmSync(dir, { recursive: true, force: true });
  }
}

/**
 * XenStore write+read pairs with no socket: dom0/xenstore/'s daemon handling xs_wire
 * messages handed straight to a connection (as the socket server hands it what it reads),
 * the replies taken from its transport; the same node and values as bench_libxs, each
 * reply checked. Returns pairs per second.
 */
function benchXenstoreStore(): number {
  const xs = new XenStored();
  let reply: Uint8Array = new Uint8Array(0);
  const conn = xs.connect(0, true, {
    send: (m) => {
      reply = m;
      return true;
    },
    fail: (why) => {
      throw new Error(`xenstored dropped the bench connection: ${why}`);
    },
  });
  const VALUES = 1000;
  const path = '/bench/c0/k';
  const writes = Array.from({ length: VALUES }, (_, i) => encodeMessage(XS_WRITE, i, 0, latin1(`${path}\0${i}`)));
  const read = encodeMessage(XS_READ, 0, 0, latin1(`${path}\0`));
  const hdr: XsHeader = { type: 0, reqId: 0, txId: 0, len: 0 };
  let i = 0;
  const pair = (): void => {
    conn.receive(writes[i]);
    if (readHeader(reply, 0, hdr).type !== XS_WRITE) throw new Error(`write ${i}: reply type ${hdr.type}`);
    conn.receive(read);
    readHeader(reply, 0, hdr);
    const want = writes[i].subarray(XS_HEADER_BYTES + path.length + 1);
    if (hdr.type !== XS_READ || hdr.len !== want.length || reply[XS_HEADER_BYTES + hdr.len - 1] !== want[want.length - 1]) {
      throw new Error(`read after write ${i}: reply type ${hdr.type}, ${hdr.len} bytes`);
    }
    i = i + 1 === VALUES ? 0 : i + 1;
  };
  const pairs = rate(pair);
  console.log(`XenStore write+read pairs without a socket (dom0/xenstore/ handed whole messages): ${fmt(pairs)} pairs/s`);
  return pairs;
}

async function benchXenstore(): Promise<void> {
  const direct = benchXenstoreStore();
  console.log('');
  const oneClient = await benchXenstoreSocket();
  if (oneClient !== null) console.log(`  xensim with one client over the socket vs without: 1 : ${(direct / oneClient).toFixed(1)}`);
}

function expect0(rc: number): void {
  if (rc !== 0) throw new Error(`bench setup failed: ${rc}`);
}

// `npm run bench -- NAME...` runs only the sections whose names contain one of the words.
const SECTIONS: [string, () => void | Promise<void>][] = [
  ['pte', benchPteUpdates],
  ['hypercall', benchNullHypercall],
  ['memory', benchHostBytes],
  ['tlb', benchWarmTlb],
  ['switch', benchContextSwitch],
  ['upcall', benchUpcalls],
  ['grant', benchGrantMapUnmap],
  ['lmbench', benchLmbench],
  ['blkif', benchBlkifRoundTrips],
  ['xenstore', benchXenstore],
];
const only = process.argv.slice(2);
console.log(`xensim bench (node ${process.version})\n`);
const chosen = SECTIONS.filter(([name]) => only.length === 0 || only.some((w) => name.includes(w)));
for (const [i, [, fn]] of chosen.entries()) {
  if (i > 0) console.log('');
  await fn();
}
