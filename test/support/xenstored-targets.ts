// The xenstored servers that the interop suites run against: ours, and the reference
// C xenstored 4.17, so that a test proven against the reference checks what real
// clients rely on. XENSIM_XENSTORED=xensim or =reference narrows the run to one.
// Host side only: imported by tests, never by simulator code.

import { referenceMissingReason, startReferenceXenstored } from './xenstored-reference-process.ts';
import { startXensimXenstored, type RunningXenstored, type XenstoredOptions } from './xenstored-process.ts';

export interface XenstoredTarget {
  readonly name: string;
  /** "" when it can run here, else what is missing. */
  readonly missing: string;
  start(opts: Omit<XenstoredOptions, 'trace'>): Promise<RunningXenstored>;
}

const ALL: Record<string, () => XenstoredTarget> = {
  xensim: () => ({ name: 'xensim xenstored', missing: '', start: startXensimXenstored }),
  reference: () => ({ name: 'reference C xenstored 4.17', missing: referenceMissingReason(), start: startReferenceXenstored }),
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
