// DESIGN §3: guests/, dom0/ and rings/ import from hypervisor/ only public/ (the host
// entry points in dom0/toolstack may also use hypervisor/index.ts); hypervisor/ and
// rings/ never import dom0/ or guests/; rings/ imports no domain code; no import cycles.

import { expect } from 'chai';
import { readFileSync, readdirSync, statSync } from 'node:fs';
import { dirname, join, relative, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';

const root = resolve(dirname(fileURLToPath(import.meta.url)), '../..');
const TREES = ['hypervisor', 'dom0', 'guests', 'rings'];

function sources(dir: string): string[] {
  const abs = join(root, dir);
  let out: string[] = [];
  let entries: string[];
  try {
    entries = readdirSync(abs);
  } catch {
    return out;
  }
  for (const e of entries) {
    const p = join(abs, e);
    if (statSync(p).isDirectory()) out = out.concat(sources(relative(root, p)));
    else if (e.endsWith('.ts')) out.push(relative(root, p));
  }
  return out;
}

/**
 * Relative imports of a file, resolved to repository paths. With runtimeOnly, `import
 * type` statements (erased before running) are left out.
 */
function importsOf(file: string, runtimeOnly: boolean): string[] {
  const text = readFileSync(join(root, file), 'utf8');
  const out: string[] = [];
  for (const m of text.matchAll(/(import\s+type\s[^;]*?from|from|import)\s*\(?\s*['"](\.[^'"]+)['"]/g)) {
    if (runtimeOnly && /^import\s+type/.test(m[1])) continue;
    out.push(relative(root, resolve(dirname(join(root, file)), m[2])));
  }
  return out;
}

const files = TREES.flatMap(sources);
const graph = new Map(files.map((f) => [f, importsOf(f, false)]));
const runtimeGraph = new Map(files.map((f) => [f, importsOf(f, true)]));

describe('layer boundaries (DESIGN §3)', () => {
  it('code inside the simulation imports only hypervisor/public/ from the hypervisor', () => {
    const bad: string[] = [];
    for (const [f, deps] of graph) {
      if (f.startsWith('hypervisor/')) continue;
      for (const d of deps) {
        if (!d.startsWith('hypervisor/') || d.startsWith('hypervisor/public/')) continue;
        const hostEntry = f.startsWith('dom0/toolstack/') && d === 'hypervisor/index.ts';
        if (!hostEntry) bad.push(`${f} -> ${d}`);
      }
    }
    expect(bad).to.deep.equal([]);
  });

  it('hypervisor/ and rings/ never import dom0/ or guests/; rings/ imports no domain code', () => {
    const bad: string[] = [];
    for (const [f, deps] of graph) {
      if (!f.startsWith('hypervisor/') && !f.startsWith('rings/')) continue;
      for (const d of deps) if (d.startsWith('dom0/') || d.startsWith('guests/')) bad.push(`${f} -> ${d}`);
    }
    expect(bad).to.deep.equal([]);
  });

  it('hypervisor/public/ imports nothing outside itself', () => {
    const bad = [...graph].flatMap(([f, deps]) =>
      f.startsWith('hypervisor/public/') ? deps.filter((d) => !d.startsWith('hypervisor/public/')).map((d) => `${f} -> ${d}`) : []);
    expect(bad).to.deep.equal([]);
  });

  it('there are no import cycles at run time', () => {
    const state = new Map<string, number>();
    const cycles: string[] = [];
    const visit = (f: string, path: string[]): void => {
      state.set(f, 1);
      for (const d of runtimeGraph.get(f) ?? []) {
        if (!runtimeGraph.has(d)) continue;
        if (state.get(d) === 1) cycles.push([...path, f, d].slice(path.indexOf(d) >= 0 ? path.indexOf(d) : 0).join(' -> '));
        else if (!state.has(d)) visit(d, [...path, f]);
      }
      state.set(f, 2);
    };
    for (const f of runtimeGraph.keys()) if (!state.has(f)) visit(f, []);
    expect(cycles).to.deep.equal([]);
  });
});
