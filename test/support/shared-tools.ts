// Where the team's shared tools live (the reference xenstored's launcher, its bench
// client): $XENSIM_SHARED, else /work/shared, else ../shared beside the repository.
// Host side only: imported by tests and the bench, never by simulator code.

import { existsSync } from 'node:fs';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';

const REPO = resolve(dirname(fileURLToPath(import.meta.url)), '..', '..');

/** The candidates, in the order they are tried. */
export function sharedCandidates(): string[] {
  const env = process.env.XENSIM_SHARED;
  return [...(env ? [env] : []), '/work/shared', join(REPO, '..', 'shared')];
}

/** The first candidate that holds `file` (a path inside shared/), or null. */
export function findShared(file: string): string | null {
  for (const dir of sharedCandidates()) {
    const path = join(dir, file);
    if (existsSync(path)) return path;
  }
  return null;
}

/** "" when `file` is found, else why not: the places looked in. */
export function sharedMissingReason(file: string): string {
  if (findShared(file) !== null) return '';
  return `needs shared/${file} (looked in ${sharedCandidates().join(', ')}; set XENSIM_SHARED)`;
}
