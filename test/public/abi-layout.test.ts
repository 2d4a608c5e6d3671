// Checks hypervisor/public/ against Xen's own headers (Debian libxen-dev): generates a C
// probe from the TypeScript layouts and constants, compiles it with gcc, runs it, and
// compares every size, offset and value (the probe is test/support/xen-c.ts's, as for
// rings/). Pending when gcc or the headers are missing.

import { expect } from 'chai';
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
import { itNeeds, missingPackages } from '../support/needs.ts';
import { XEN_C_NEEDS, layoutMismatches, probeXenC, type Probe } from '../support/xen-c.ts';

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

const INCLUDES = [
  'xen/xen.h', 'xen/event_channel.h', 'xen/grant_table.h', 'xen/memory.h', 'xen/version.h', 'xen/features.h',
  'xen/callback.h', 'xen/domctl.h', 'xen/sched.h', 'xen/vcpu.h',
];

/** The probe's values: each constant under its TS name, each helper as `MACRO(arg)`, errnos as `errno NAME`. */
function probe(): Probe {
  const exprs: { name: string; expr: string; guard?: string }[] = [];
  for (const name of constants.keys()) exprs.push({ name, expr: cMacro(name), guard: cMacro(name) });
  for (const [macro, , arg] of HELPERS) exprs.push({ name: `${macro}(${arg})`, expr: `${macro}(${arg})` });
  return probeXenC(INCLUDES, layouts, exprs, {
    prelude: ['#define __XEN_TOOLS__ 1 /* domctl.h is for the toolstack only */'],
    // errno.h enumerates itself through a caller-supplied XEN_ERRNO(); __XEN__ adds the internal ones.
    body: [
      '#define __XEN__ 1',
      '#define XEN_ERRNO(name, value) SHOW("errno " #name, value);',
      '#include <xen/errno.h>',
      '#undef __XEN__',
    ],
  });
}

const itC = itNeeds(XEN_C_NEEDS);

describe("hypervisor/public matches Xen's public headers", () => {
  let c: Probe;

  before(() => {
    if (missingPackages(XEN_C_NEEDS).length > 0) return;
    c = probe();
  });

  for (const l of layouts) {
    itC(`${l.cName} matches Xen's x86-64 layout (${l.size} bytes)`, () => {
      expect(layoutMismatches(l, c)).to.deep.equal([]);
    });
  }

  for (const file of Object.keys(MODULES)) {
    itC(`constants in ${file} equal the header macros`, () => {
      const wrong: string[] = [];
      for (const [name, { value, file: where }] of constants) {
        if (where !== file) continue;
        const got = c.values.get(name);
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
    const theirs = [...c.values].filter(([k]) => k.startsWith('errno ')).map(([k, v]): [string, bigint] => [k.slice(6), v]);
    expect(ours).to.deep.equal(new Map(theirs));
  });

  itC('XENMEMF_* helpers compute what the header macros compute', () => {
    for (const [macro, fn, arg] of HELPERS) {
      expect(BigInt(fn(arg)), `${macro}(${arg})`).to.equal(c.values.get(`${macro}(${arg})`));
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
