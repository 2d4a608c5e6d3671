// Test helpers for suites that need host tools (a C compiler, Xen's headers).
// A missing tool makes its tests pending, never failed, with the Debian package to install.
// Test support only: imported by test suites, never by simulator code.

import { accessSync, constants, statSync } from 'node:fs';
import { delimiter, join } from 'node:path';

/** One requirement: whether it is met, and the Debian package that provides it. */
export interface Need {
  readonly test: boolean;
  readonly pkg: string;
}

/** Whether an executable `name` is on PATH (searched directly, no shell). */
export function hasCommand(name: string): boolean {
  for (const dir of (process.env.PATH ?? '').split(delimiter)) {
    if (dir === '') continue;
    try {
      const file = join(dir, name);
      if (statSync(file).isFile()) {
        accessSync(file, constants.X_OK);
        return true;
      }
    } catch {
      // not in this directory
    }
  }
  return false;
}

/** Whether `path` exists. */
export function hasFile(path: string): boolean {
  try {
    statSync(path);
    return true;
  } catch {
    return false;
  }
}

/** The non-empty reasons joined with "; ": "" when nothing is missing. */
export function joinReasons(...reasons: readonly string[]): string {
  return reasons.filter((r) => r !== '').join('; ');
}

/** The packages of the needs that are not met, in order, without repeats. */
export function missingPackages(needs: readonly Need[]): string[] {
  return [...new Set(needs.filter((n) => !n.test).map((n) => n.pkg))];
}

/** "needs Debian package X — apt-get install X", or "" when nothing is missing. */
export function missingReason(needs: readonly Need[]): string {
  const pkgs = missingPackages(needs);
  if (pkgs.length === 0) return '';
  const noun = pkgs.length === 1 ? 'package' : 'packages';
  return `needs Debian ${noun} ${pkgs.join(', ')} — apt-get install ${pkgs.join(' ')}`;
}

type TestBody = Mocha.Func | Mocha.AsyncFunc;
const announced = new Set<string>();

/**
 * Mocha's `it` when every need is met. Otherwise a stand-in that registers each test
 * as pending (a title and no body) whose title ends with " (skipped: <reason>)", and
 * prints the reason once per run.
 */
export function itNeeds(needs: readonly Need[]): (title: string, body: TestBody) => Mocha.Test {
  return itOrSkip(missingReason(needs));
}

/** As itNeeds, for any reason to skip: mocha's `it` when `reason` is "", else pending tests. */
export function itOrSkip(reason: string): (title: string, body: TestBody) => Mocha.Test {
  if (reason === '') return (title, body) => it(title, body);
  return (title) => {
    if (!announced.has(reason)) {
      announced.add(reason);
      console.log(`skipped: ${reason}`);
    }
    return it(`${title} (skipped: ${reason})`);
  };
}
