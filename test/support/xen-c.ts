// Test and bench support for C programs built against Xen's public headers (Debian
// libxen-dev): what they need installed, the gcc flags, building one, and a probe that
// prints sizes, offsets and values for comparison with the TypeScript layouts.
// Host side only: imported by tests and the bench, never by simulator code.

import { execFileSync } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { StructLayout } from '../../hypervisor/public/layout.ts';
import { hasCommand, hasFile, type Need } from './needs.ts';

/** A C compiler and Xen's io/ headers. */
export const XEN_C_NEEDS: readonly Need[] = [
  { test: hasCommand('gcc'), pkg: 'gcc' },
  { test: hasFile('/usr/include/xen/io/ring.h'), pkg: 'libxen-dev' },
];

/** The interface version as a guest built today would pick it. */
export const XEN_GCC_FLAGS = ['-std=gnu11', '-D__XEN_INTERFACE_VERSION__=__XEN_LATEST_INTERFACE_VERSION__', '-Wall'];

/** Runs a host program; its stderr becomes the error message when it fails. */
export function runHost(cmd: string, args: readonly string[], input?: string): string {
  try {
    return execFileSync(cmd, args, { encoding: 'utf8', input, stdio: ['pipe', 'pipe', 'pipe'] });
  } catch (e) {
    const err = e as { stderr?: string; message: string };
    throw new Error(`${cmd} failed: ${err.stderr || err.message}`);
  }
}

/** Compiles the C file `src` into the executable `exe` with XEN_GCC_FLAGS plus `extra`. */
export function buildXenC(src: string, exe: string, extra: readonly string[] = []): void {
  runHost('gcc', [...XEN_GCC_FLAGS, ...extra, '-o', exe, src]);
}

/** What a probe program printed: sizeof per type, [offset, size] per field, values per name. */
export interface Probe {
  readonly sizes: Map<string, number>;
  readonly fields: Map<string, { offset: number; size: number }>;
  readonly values: Map<string, bigint>;
  /** Object-like macros the headers define. */
  readonly macros: Set<string>;
}

/** C lines a probe adds around what it generates. */
export interface ProbeExtra {
  /** Before the includes, e.g. `#define __XEN_TOOLS__ 1` for the toolstack-only headers. */
  readonly prelude?: readonly string[];
  /** At the end of main(); may print more values with SHOW(name, x). */
  readonly body?: readonly string[];
}

/**
 * Builds and runs a probe: with `includes`, prints the size and every field of each
 * layout, and the value of each [name, C expression]. An expression may be wrapped in
 * `#ifdef` by the caller (through `guard`): absent names are then missing from `values`.
 * Throws with gcc's stderr when the probe does not build.
 */
export function probeXenC(
  includes: readonly string[],
  layouts: readonly StructLayout[],
  exprs: readonly { name: string; expr: string; guard?: string }[],
  extra: ProbeExtra = {},
): Probe {
  const body: string[] = [];
  for (const l of layouts) {
    body.push(`  printf("size\\t%s\\t%zu\\n", "${l.cName}", sizeof(${l.cName}));`);
    for (const [path, f] of Object.entries(l.fields)) {
      const size = f.size === 0 ? '(size_t)0' : `sizeof(((${l.cName} *)0)->${path})`;
      body.push(`  printf("field\\t%s\\t%s\\t%zu\\t%zu\\n", "${l.cName}", "${path}", offsetof(${l.cName}, ${path}), ${size});`);
    }
  }
  for (const { name, expr, guard } of exprs) {
    if (guard) body.push(`#ifdef ${guard}`);
    body.push(`  SHOW("${name}", ${expr});`);
    if (guard) body.push('#endif');
  }
  body.push(...(extra.body ?? []));
  const source = [
    ...(extra.prelude ?? []),
    '#include <stddef.h>',
    '#include <stdint.h>',
    '#include <stdio.h>',
    ...includes.map((h) => `#include <${h}>`),
    '/* Any integer, signed or not, printed exactly. */',
    '#define SHOW(name, x) ((x) < 0 ? printf("value\\t%s\\t-%llu\\n", name, (unsigned long long)-(long long)(x)) \\',
    '                             : printf("value\\t%s\\t%llu\\n", name, (unsigned long long)(x)))',
    'int main(void)',
    '{',
    ...body,
    '  return 0;',
    '}',
    '',
  ].join('\n');

  const dir = mkdtempSync(join(tmpdir(), 'xensim-probe-'));
  try {
    const src = join(dir, 'probe.c');
    const exe = join(dir, 'probe');
    writeFileSync(src, source);
    buildXenC(src, exe, ['-Wno-type-limits', '-Wno-sign-compare']);
    const out: Probe = { sizes: new Map(), fields: new Map(), values: new Map(), macros: new Set() };
    for (const line of runHost(exe, []).split('\n')) {
      const [tag, a, b, c, d] = line.split('\t');
      if (tag === 'size') out.sizes.set(a!, Number(b));
      else if (tag === 'field') out.fields.set(`${a}|${b}`, { offset: Number(c), size: Number(d) });
      else if (tag === 'value') out.values.set(a!, BigInt(b!));
    }
    for (const line of runHost('gcc', [...XEN_GCC_FLAGS, '-E', '-dM', src]).split('\n')) {
      const m = /^#define ([A-Za-z_]\w*)(\(?)/.exec(line);
      if (m && m[2] === '') out.macros.add(m[1]!);
    }
    return out;
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}

/** Layout mismatches against a probe: empty when `l` is Xen's layout. */
export function layoutMismatches(l: StructLayout, probe: Probe): string[] {
  const wrong: string[] = [];
  if (probe.sizes.get(l.cName) !== l.size) wrong.push(`sizeof is ${probe.sizes.get(l.cName)}, not ${l.size}`);
  for (const [path, f] of Object.entries(l.fields)) {
    const got = probe.fields.get(`${l.cName}|${path}`);
    if (!got || got.offset !== f.offset || got.size !== f.size) {
      wrong.push(`${path} is ${got ? `[${got.offset}, ${got.size}]` : 'missing'}, not [${f.offset}, ${f.size}]`);
    }
  }
  return wrong;
}
