// The xenstored servers that the interop suites run against: ours, and the reference
// C xenstored 4.17, so that a test proven against the reference checks what real
// clients rely on. XENSIM_XENSTORED=xensim or =reference narrows the run to one.
// Host side only: imported by tests, never by simulator code.

import type { Need } from './needs.ts';
import { REFERENCE_XENSTORED_NEEDS, referenceMissingTools, startReferenceXenstored } from './xenstored-reference-process.ts';
import { startXensimXenstored, type RunningXenstored, type XenstoredOptions } from './xenstored-process.ts';

export interface XenstoredTarget {
  readonly name: string;
  /** The Debian packages it needs (a suite adds its own and skips with missingReason). */
  readonly needs: readonly Need[];
  /** "" when the tools that no package provides are here, else what is missing. */
  readonly missingTools: string;
  start(opts: Omit<XenstoredOptions, 'trace'>): Promise<RunningXenstored>;
}

const ALL: Record<string, () => XenstoredTarget> = {
  xensim: () => ({ name: 'xensim xenstored', needs: [], missingTools: '', start: startXensimXenstored }),
  reference: () => ({
    name: 'reference C xenstored 4.17', needs: REFERENCE_XENSTORED_NEEDS, missingTools: referenceMissingTools(), start: startReferenceXenstored,
  }),
};

/** The servers to test, from $XENSIM_XENSTORED (a comma-separated list; default both). */
export function xenstoredTargets(): XenstoredTarget[] {
  const names = (process.env.XENSIM_XENSTORED ?? 'xensim,reference').split(',').map((s) => s.trim()).filter((s) => s);
  return names.map((n) => {
    const make = ALL[n];
    if (!make) throw new Error(`XENSIM_XENSTORED: no server "${n}" (known: ${Object.keys(ALL).join(', ')})`);
    return make();
  });
}
