// Checks hypervisor/public/ against Xen's own headers (Debian libxen-dev): generates a C
// program from the TypeScript layouts and constants, compiles it with gcc, runs it, and
// compares every size, offset and value. Pending when gcc or the headers are missing.

import { expect } from 'chai';
import { execFileSync } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { StructLayout } from '../../hypervisor/public/layout.ts';
import * as archX86 from '../../hypervisor/public/arch-x86.ts';
import * as callback from '../../hypervisor/public/callback.ts';
import * as domctl from '../../hypervisor/public/domctl.ts';
import * as sched from '../../hypervisor/public/sched.ts';
import * as vcpuOp from '../../hypervisor/public/vcpu-op.ts';
import * as errno from '../../hypervisor/public/errno.ts';
import * as eventChannel from '../../hypervisor/public/event-channel.ts';
import * as grantTable from '../../hypervisor/public/grant-table.ts';
import * as memory from '../../hypervisor/public/memory.ts';
import * as version from '../../hypervisor/public/version.ts';
import * as xen from '../../hypervisor/public/xen.ts';
import { hasCommand, hasFile, itNeeds, missingPackages } from '../support/needs.ts';

const MODULES: Record<string, object> = {
  'xen.ts': xen,
  'arch-x86.ts': archX86,
  'callback.ts': callback,
  'memory.ts': memory,
  'version.ts': version,
  'domctl.ts': domctl,
  'sched.ts': sched,
  'vcpu-op.ts': vcpuOp,
  'event-channel.ts': eventChannel,
  'grant-table.ts': grantTable,
};

// Ours under another name in the headers.
const RENAMED: Record<string, string> = {
  XEN_LATEST_INTERFACE_VERSION: '__XEN_LATEST_INTERFACE_VERSION__',
  NR_EVENT_CHANNELS: 'EVTCHN_2L_NR_CHANNELS',
  MAX_VIRT_CPUS: 'XEN_LEGACY_MAX_VCPUS',
};

// Ours but not in the public headers: Xen-internal values the simulator needs.
const NOT_PUBLIC: Record<string, string> = {
  MMU_UPDATE_PREEMPTED: "Xen's asm/hypercall.h",
  MEMOP_EXTENT_SHIFT: "Xen's xen/hypercall.h",
  MEMOP_CMD_MASK: "Xen's xen/hypercall.h",
  XEN_L4_SLOT_FIRST: "Xen's asm/config.h",
  XEN_L4_SLOT_LAST: "Xen's asm/config.h",
  L4_SLOT_RO_MPT: "Xen's asm/config.h",
  L4_SLOT_PCI_MCFG: "Xen's asm/config.h",
  L4_SLOT_LINEAR_PT: "Xen's asm/config.h",
  L4_SLOT_SH_LINEAR_PT: "Xen's asm/config.h",
  L4_SLOT_PERDOMAIN: "Xen's asm/config.h",
  L4_SLOT_XEN: "Xen's asm/config.h",
  L4_SLOT_DIRECTMAP: "Xen's asm/config.h",
  RO_MPT_VIRT_START: "Xen's asm/config.h",
  TI_DPL_MASK: 'the bits TI_GET_DPL reads (arch-x86/xen.h)',
  TI_IF: 'the bit TI_GET_IF reads (arch-x86/xen.h)',
  GRANT_ENTRIES_PER_FRAME_V1: "Xen's common/grant_table.c (GRANT_PER_PAGE)",
};

// Header macro families we mirror completely: [names, exceptions].
const COMPLETE_FAMILIES: readonly (readonly [RegExp, RegExp?])[] = [
  [/^__HYPERVISOR_[a-z]/],
  [/^VIRQ_/],
  [/^MMU_/],
  [/^MMUEXT_/],
  [/^UVMF_/],
  [/^CONSOLEIO_/],
  [/^VMASST_/],
  [/^DOMID_/],
  [/^SIF_/],
  [/^FLAT_/],
  [/^SEGBASE_/],
  [/^CALLBACK/],
  [/^XENVER_/],
  [/^XENFEAT_/],
  [/^XENMEM_[a-z]/, /^XENMEM_(access_op|paging_op|sharing_op|resource)_/],
  [/^XENMEMF_/],
  [/^XENMAPSPACE_/],
  [/^XEN_DOMCTL_[a-z]/, /^XEN_DOMCTL_vmtrace_(?!op$)/],
  [/^XEN_DOMCTL_CDF_/],
  [/^XEN_DOMINF_/],
  [/^GNTTABOP_[a-z]/, /^GNTTABOP_error_msgs$/],
  [/^_?GTF_/],
  [/^_?GNTMAP_/],
  [/^_?GNTCOPY_/],
  [/^GNTST_/],
  [/^GNTTAB_(NR_RESERVED|RESERVED|CACHE)_/],
];

// Function-like macros, compared at sample arguments.
const HELPERS: readonly (readonly [string, (x: number) => number, number])[] = [
  ['XENMEMF_address_bits', memory.XENMEMF_address_bits, 32],
  ['XENMEMF_get_address_bits', memory.XENMEMF_get_address_bits, 0x12345],
  ['XENMEMF_node', memory.XENMEMF_node, 3],
  ['XENMEMF_get_node', memory.XENMEMF_get_node, memory.XENMEMF_node(3)],
  ['XENMEMF_get_node', memory.XENMEMF_get_node, 0],
  ['XENMEMF_exact_node', memory.XENMEMF_exact_node, 2],
];

function cMacro(tsName: string): string {
  if (/^HYPERVISOR_[a-z]/.test(tsName)) return `__${tsName}`;
  return RENAMED[tsName] ?? tsName;
}

function tsNameOf(macro: string): string {
  if (macro.startsWith('__HYPERVISOR_')) return macro.slice(2);
  return macro;
}

function isLayout(v: unknown): v is StructLayout {
  return typeof v === 'object' && v !== null && 'cName' in v && 'size' in v && 'fields' in v;
}

function numbersOf(mod: object): [string, number][] {
  return Object.entries(mod).filter((e): e is [string, number] => typeof e[1] === 'number');
}

const layouts = [...new Set(Object.values(MODULES).flatMap((m) => Object.values(m).filter(isLayout)))];

/** Every TS constant (errno aside) and the module that exports it. */
const constants = new Map<string, { value: number; file: string }>();
for (const [file, mod] of Object.entries(MODULES)) {
  for (const [name, value] of numbersOf(mod)) if (!constants.has(name)) constants.set(name, { value, file });
}

// A signed or unsigned C integer printed exactly, whatever its type.
const C_PRELUDE = `#define __XEN_TOOLS__ 1 /* domctl.h is for the toolstack only */
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <xen/xen.h>
#include <xen/event_channel.h>
#include <xen/grant_table.h>
#include <xen/memory.h>
#include <xen/version.h>
#include <xen/features.h>
#include <xen/callback.h>
#include <xen/domctl.h>
#include <xen/sched.h>
#include <xen/vcpu.h>

#define NEG(x) ((x) < 0)
#define ABS(x) (NEG(x) ? (unsigned long long)-(long long)(x) : (unsigned long long)(x))
#define VALUE(tag, name, x) printf("%s\\t%s\\t%s%llu\\n", tag, name, NEG(x) ? "-" : "", ABS(x))
`;

function cProgram(): string {
  const body: string[] = [];
  for (const l of layouts) {
    body.push(`  printf("size\\t%s\\t%zu\\n", "${l.cName}", sizeof(${l.cName}));`);
    for (const [path, f] of Object.entries(l.fields)) {
      const size = f.size === 0 ? '(size_t)0' : `sizeof(((${l.cName} *)0)->${path})`;
      body.push(
        `  printf("field\\t%s\\t%s\\t%zu\\t%zu\\n", "${l.cName}", "${path}", offsetof(${l.cName}, ${path}), ${size});`,
      );
    }
  }
  for (const name of constants.keys()) {
    const macro = cMacro(name);
    body.push(`#ifdef ${macro}`, `  VALUE("const", "${name}", ${macro});`, '#endif');
  }
  for (const [macro, , arg] of HELPERS) body.push(`  VALUE("helper", "${macro}(${arg})", ${macro}(${arg}));`);
  // errno.h enumerates itself through a caller-supplied XEN_ERRNO(); __XEN__ adds the internal ones.
  const errnos = [
    '#define __XEN__ 1',
    '#define XEN_ERRNO(name, value) VALUE("errno", #name, value);',
    '#include <xen/errno.h>',
    '#undef __XEN__',
  ];
  return `${C_PRELUDE}\nint main(void)\n{\n${body.join('\n')}\n${errnos.join('\n')}\n  return 0;\n}\n`;
}

interface Probe {
  sizes: Map<string, number>;
  fields: Map<string, { offset: number; size: number }>;
  values: Map<string, Map<string, bigint>>;
  macros: Set<string>;
}

const GCC_FLAGS = ['-std=gnu11', '-D__XEN_INTERFACE_VERSION__=__XEN_LATEST_INTERFACE_VERSION__', '-Wall'];

function run(cmd: string, args: string[]): string {
  try {
    return execFileSync(cmd, args, { encoding: 'utf8', stdio: ['ignore', 'pipe', 'pipe'] });
  } catch (e) {
    const err = e as { stderr?: string; message: string };
    throw new Error(`${cmd} failed: ${err.stderr || err.message}`);
  }
}

function probe(dir: string): Probe {
  const src = join(dir, 'abi.c');
  const exe = join(dir, 'abi');
  writeFileSync(src, cProgram());
  run('gcc', [...GCC_FLAGS, '-o', exe, src]);
  const out: Probe = { sizes: new Map(), fields: new Map(), values: new Map(), macros: new Set() };
  for (const line of run(exe, []).split('\n')) {
    const [tag, a, b, c, d] = line.split('\t');
    if (tag === 'size') out.sizes.set(a!, Number(b));
    else if (tag === 'field') out.fields.set(`${a}|${b}`, { offset: Number(c), size: Number(d) });
    else if (tag) {
      if (!out.values.has(tag)) out.values.set(tag, new Map());
      out.values.get(tag)!.set(a!, BigInt(b!));
    }
  }
  for (const line of run('gcc', [...GCC_FLAGS, '-E', '-dM', src]).split('\n')) {
    const m = /^#define ([A-Za-z_]\w*)(\(?)/.exec(line);
    if (m && m[2] === '') out.macros.add(m[1]!);
  }
  return out;
}

const needs = [
  { test: hasCommand('gcc'), pkg: 'gcc' },
  { test: hasFile('/usr/include/xen/xen.h'), pkg: 'libxen-dev' },
];
const itC = itNeeds(needs);

describe("hypervisor/public matches Xen's public headers", () => {
  let dir = '';
  let c: Probe;

  before(() => {
    if (missingPackages(needs).length > 0) return;
    dir = mkdtempSync(join(tmpdir(), 'xensim-abi-'));
    c = probe(dir);
  });
  after(() => {
    if (dir) rmSync(dir, { recursive: true, force: true });
  });

  for (const l of layouts) {
    itC(`${l.cName} matches Xen's x86-64 layout (${l.size} bytes)`, () => {
      const wrong: string[] = [];
      if (c.sizes.get(l.cName) !== l.size) wrong.push(`sizeof is ${c.sizes.get(l.cName)}, not ${l.size}`);
      for (const [path, f] of Object.entries(l.fields)) {
        const got = c.fields.get(`${l.cName}|${path}`)!;
        if (got.offset !== f.offset || got.size !== f.size) {
          wrong.push(`${path} is [${got.offset}, ${got.size}], not [${f.offset}, ${f.size}]`);
        }
      }
      expect(wrong).to.deep.equal([]);
    });
  }

  for (const file of Object.keys(MODULES)) {
    itC(`constants in ${file} equal the header macros`, () => {
      const found = c.values.get('const') ?? new Map<string, bigint>();
      const wrong: string[] = [];
      for (const [name, { value, file: where }] of constants) {
        if (where !== file) continue;
        const got = found.get(name);
        if (got === undefined) {
          if (!(name in NOT_PUBLIC)) wrong.push(`${name}: no macro ${cMacro(name)} in the headers`);
        } else if (got !== BigInt(value)) {
          wrong.push(`${name} is ${got}, not ${value}`);
        } else if (name in NOT_PUBLIC) {
          wrong.push(`${name} is public after all: drop it from NOT_PUBLIC`);
        }
      }
      expect(wrong).to.deep.equal([]);
    });
  }

  itC('every command and flag of the mirrored macro families is exported', () => {
    const missing = [...c.macros]
      .filter((m) => COMPLETE_FAMILIES.some(([take, except]) => take.test(m) && !except?.test(m)))
      .filter((m) => !constants.has(tsNameOf(m)))
      .sort();
    expect(missing).to.deep.equal([]);
  });

  itC('errno.ts holds exactly the values of xen/errno.h', () => {
    const ours = new Map(numbersOf(errno).map(([name, value]) => [name, BigInt(value)]));
    expect(ours).to.deep.equal(c.values.get('errno'));
  });

  itC('XENMEMF_* helpers compute what the header macros compute', () => {
    for (const [macro, fn, arg] of HELPERS) {
      expect(BigInt(fn(arg)), `${macro}(${arg})`).to.equal(c.values.get('helper')?.get(`${macro}(${arg})`));
    }
  });
});

describe('names for logs', () => {
  it('errnoName gives the canonical name for positive and negative values', () => {
    expect(errno.errnoName(-errno.EINVAL)).to.equal('EINVAL');
    expect(errno.errnoName(errno.ESRCH)).to.equal('ESRCH');
    expect(errno.errnoName(-errno.EWOULDBLOCK)).to.equal('EAGAIN');
    expect(errno.errnoName(-12345)).to.equal('errno -12345');
    for (const [name, value] of numbersOf(errno)) {
      const canonical = errno.errnoName(value);
      expect((errno as Record<string, unknown>)[canonical], name).to.equal(value);
    }
  });

  it('hypercallName names every hypercall number', () => {
    for (const [name, nr] of numbersOf(xen).filter(([n]) => /^HYPERVISOR_[a-z]/.test(n))) {
      expect(xen.hypercallName(nr)).to.equal(name.slice('HYPERVISOR_'.length));
    }
    expect(xen.hypercallName(11)).to.equal('hypercall 11');
  });
});
