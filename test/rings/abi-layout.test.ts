// Checks rings/ against Xen's own io/ headers (Debian libxen-dev) with gcc: every layout's
// size and field offsets, every exported constant against its macro (or enum, or the
// expression it is derived from), each ring's slot count against __CONST_RING_SIZE, and
// the index-masking helpers against the header macros. Pending when gcc or the headers
// are missing.

import { expect } from 'chai';
import type { StructLayout } from '../../hypervisor/public/layout.ts';
import * as blkif from '../../rings/blkif.ts';
import * as consoleRing from '../../rings/console.ts';
import * as netif from '../../rings/netif.ts';
import * as page from '../../rings/page.ts';
import * as sring from '../../rings/sring.ts';
import * as xenstore from '../../rings/xenstore.ts';
import { itNeeds, missingPackages } from '../support/needs.ts';
import { XEN_C_NEEDS, layoutMismatches, probeXenC, type Probe } from '../support/xen-c.ts';

const MODULES: Record<string, object> = {
  'page.ts': page,
  'sring.ts': sring,
  'blkif.ts': blkif,
  'netif.ts': netif,
  'console.ts': consoleRing,
  'xenstore.ts': xenstore,
};

const INCLUDES = ['xen/io/ring.h', 'xen/io/blkif.h', 'xen/io/netif.h', 'xen/io/console.h', 'xen/io/xs_wire.h'];

// Ours but not a header macro: what each is in terms of the headers.
const DERIVED: Record<string, string> = {
  RING_PAGE_BYTES: '(1 << XEN_PAGE_SHIFT)',
  REQ_PROD: 'offsetof(struct blkif_sring, req_prod)',
  REQ_EVENT: 'offsetof(struct blkif_sring, req_event)',
  RSP_PROD: 'offsetof(struct blkif_sring, rsp_prod)',
  RSP_EVENT: 'offsetof(struct blkif_sring, rsp_event)',
  SRING_RING_OFFSET: 'offsetof(struct blkif_sring, ring)',
  BLKIF_SEGS_PER_INDIRECT_FRAME: '(4096 / sizeof(struct blkif_request_segment))',
};

/** Names that are enumerators in the headers (no #ifdef possible). */
const ENUMERATORS = /^XS_/;

// Header macro families mirrored completely: [names, exceptions].
const COMPLETE_FAMILIES: readonly (readonly [RegExp, RegExp?])[] = [
  [/^BLKIF_OP_/],
  [/^BLKIF_RSP_/],
  [/^BLKIF_MAX_/],
  [/^BLKIF_DISCARD_/],
  [/^VDISK_/],
  [/^NETTXF_/],
  [/^NETRXF_/],
  [/^NETIF_RSP_/],
  [/^XEN_NETIF_EXTRA_/],
  [/^XEN_NETIF_GSO_TYPE_/],
  [/^XEN_NETIF_(NR_SLOTS_MIN|MAX_TX_SIZE)$/],
  [/^XENSTORE_/],
];

const RD32_SAMPLES = [0, 1, 2, 3, 5, 31, 32, 33, 36, 63, 336, 504, 4032, 0x7fffffff, 0x80000000, 0x80000001, 0xffffffff];
const MASK_SAMPLES = [0, 1, 1023, 1024, 2047, 2048, 5000, 0x7fffffff, 0xfffffc00, 0xffffffff];

function isLayout(v: unknown): v is StructLayout {
  return typeof v === 'object' && v !== null && 'cName' in v && 'fields' in v;
}

function isRingFormat(v: unknown): v is sring.RingFormat {
  return typeof v === 'object' && v !== null && 'nrEnts' in v && 'slotSize' in v;
}

const layouts = [...new Set(Object.values(MODULES).flatMap((m) => Object.values(m).filter(isLayout)))];
const formats = [...new Set(Object.values(MODULES).flatMap((m) => Object.values(m).filter(isRingFormat)))];

const constants = new Map<string, { value: number; file: string }>();
for (const [file, mod] of Object.entries(MODULES)) {
  for (const [name, value] of Object.entries(mod)) {
    if (typeof value === 'number' && !constants.has(name)) constants.set(name, { value, file });
  }
}

function expressions(): { name: string; expr: string; guard?: string }[] {
  const out: { name: string; expr: string; guard?: string }[] = [];
  for (const name of constants.keys()) {
    if (name in DERIVED) out.push({ name, expr: DERIVED[name]! });
    else if (ENUMERATORS.test(name)) out.push({ name, expr: name });
    else out.push({ name, expr: name, guard: name });
  }
  for (const f of formats) {
    const entry = `union ${f.name}_sring_entry`;
    out.push({ name: `${f.name}.nrEnts`, expr: `__CONST_RING_SIZE(${f.name}, 4096)` });
    out.push({ name: `${f.name}.requestSize`, expr: `sizeof(((${entry} *)0)->req)` });
    out.push({ name: `${f.name}.responseSize`, expr: `sizeof(((${entry} *)0)->rsp)` });
    out.push({ name: `${f.name}.slotSize`, expr: `sizeof(${entry})` });
  }
  for (const x of RD32_SAMPLES) out.push({ name: `__RD32(${x})`, expr: `__RD32(${x}u)` });
  for (const x of MASK_SAMPLES) {
    out.push({ name: `MASK_XENCONS_IDX(${x}, in)`, expr: `MASK_XENCONS_IDX(${x}u, ((struct xencons_interface *)0)->in)` });
    out.push({ name: `MASK_XENCONS_IDX(${x}, out)`, expr: `MASK_XENCONS_IDX(${x}u, ((struct xencons_interface *)0)->out)` });
    out.push({ name: `MASK_XENSTORE_IDX(${x})`, expr: `MASK_XENSTORE_IDX(${x}u)` });
  }
  return out;
}

const itC = itNeeds(XEN_C_NEEDS);

describe("rings/ matches Xen's io/ headers", () => {
  let c: Probe;

  before(() => {
    if (missingPackages(XEN_C_NEEDS).length > 0) return;
    c = probeXenC(INCLUDES, layouts, expressions());
  });

  for (const l of layouts) {
    itC(`${l.cName} matches Xen's x86-64 layout (${l.size} bytes)`, () => {
      expect(layoutMismatches(l, c)).to.deep.equal([]);
    });
  }

  for (const file of Object.keys(MODULES)) {
    itC(`constants in rings/${file} equal the header macros, enumerators or what they derive from`, () => {
      const wrong: string[] = [];
      for (const [name, { value, file: where }] of constants) {
        if (where !== file) continue;
        const got = c.values.get(name);
        if (got === undefined) wrong.push(`${name}: no macro of that name in the headers, and not in DERIVED`);
        else if (got !== BigInt(value)) wrong.push(`${name} is ${got}, not ${value}`);
        else if (name in DERIVED && c.macros.has(name)) wrong.push(`${name} is a header macro: drop it from DERIVED`);
      }
      expect(wrong).to.deep.equal([]);
    });
  }

  itC('every value of the mirrored macro families is exported', () => {
    const missing = [...c.macros]
      .filter((m) => COMPLETE_FAMILIES.some(([take, except]) => take.test(m) && !except?.test(m)))
      .filter((m) => !constants.has(m))
      .sort();
    expect(missing).to.deep.equal([]);
  });

  itC('every XenStore message type below XS_TYPE_COUNT has its name (20, removed, aside)', () => {
    const named = new Set([...constants].filter(([n]) => /^XS_[A-Z_]+$/.test(n) && !/^XS_(WATCH_PATH|WATCH_TOKEN|TYPE_COUNT|INVALID|DEBUG)$/.test(n))
      .map(([, { value }]) => value));
    const expected = [...Array(xenstore.XS_TYPE_COUNT).keys()].filter((t) => t !== 20);
    expect([...named].sort((a, b) => a - b)).to.deep.equal(expected);
    expect(c.values.get('XS_TYPE_COUNT')).to.equal(BigInt(xenstore.XS_TYPE_COUNT));
  });

  itC('each ring holds __CONST_RING_SIZE(name, 4096) slots of sizeof(union <name>_sring_entry)', () => {
    const wrong: string[] = [];
    for (const f of formats) {
      for (const key of ['nrEnts', 'requestSize', 'responseSize', 'slotSize'] as const) {
        const got = c.values.get(`${f.name}.${key}`);
        if (got !== BigInt(f[key])) wrong.push(`${f.name}.${key} is ${got}, not ${f[key]}`);
      }
    }
    expect(wrong).to.deep.equal([]);
    expect(formats.map((f) => f.name).sort()).to.deep.equal(['blkif', 'netif_rx', 'netif_tx']);
  });

  itC('rounddownPow2 computes __RD32 and ringSize __CONST_RING_SIZE', () => {
    for (const x of RD32_SAMPLES) expect(BigInt(sring.rounddownPow2(x)), `__RD32(${x})`).to.equal(c.values.get(`__RD32(${x})`));
    expect(sring.ringSize(blkif.BLKIF_RING.slotSize)).to.equal(Number(c.values.get('blkif.nrEnts')));
  });

  itC('maskXenconsIdx and maskXenstoreIdx compute MASK_XENCONS_IDX and MASK_XENSTORE_IDX', () => {
    const ci = consoleRing.XENCONS_IN.size;
    const co = consoleRing.XENCONS_OUT.size;
    for (const x of MASK_SAMPLES) {
      expect(BigInt(consoleRing.maskXenconsIdx(x, ci)), `in ${x}`).to.equal(c.values.get(`MASK_XENCONS_IDX(${x}, in)`));
      expect(BigInt(consoleRing.maskXenconsIdx(x, co)), `out ${x}`).to.equal(c.values.get(`MASK_XENCONS_IDX(${x}, out)`));
      expect(BigInt(xenstore.maskXenstoreIdx(x)), `${x}`).to.equal(c.values.get(`MASK_XENSTORE_IDX(${x})`));
    }
  });
});
