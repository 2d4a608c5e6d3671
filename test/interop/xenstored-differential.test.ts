// Differential test of our xenstored against Debian's C xenstored 4.17: every script
// (xenstored-scripts.ts) is replayed on both, over privileged connections and connections
// acting as unprivileged domains, and each step's reply and the watch events each
// connection received after it must be the same, up to transaction ids and the allowed
// divergences below. The reference is a long-lived daemon named by
// XENSIM_REFERENCE_XENSTORED (.ci/run starts one); its domains speak over an emulated
// ring through test/interop/c/xs_socket_bridge.c. Pending without that variable, gcc or
// Xen's headers.
//
// XENSIM_XENSTORED_UNDER_TEST=<socket of a second reference> replaces ours by a second
// reference daemon: a check of the harness itself (every script must then agree).

import { expect } from 'chai';
import { itOrSkip, missingReason } from '../support/needs.ts';
import { XenstoredClients } from '../support/xenstored-clients.ts';
import { startXensimXenstored } from '../support/xenstored-process.ts';
import {
  DOMAIN_BRIDGE_NEEDS, REFERENCE_ENV, attachReferenceXenstored, referenceFromEnv,
} from '../support/xenstored-reference-process.ts';
import { describeStep, parseStep, replay, showPair, type Outcome, type Request, type Script } from '../support/xs-script.ts';
import type { XsWireClient } from '../support/xs-wire-client.ts';
import { SCRIPTS } from './xenstored-scripts.ts';

/**
 * Where ours may answer differently from 4.17, and why. `reference` is what 4.17 answers
 * (checked, so that a different reference is noticed), or null when the step is not sent
 * to a reference at all. Ours passes the step by answering as the reference did, or as
 * `upstream` says (null: anything); in the second case the step's watch events are
 * compared only if `events` is true.
 */
interface Divergence {
  readonly reason: string;
  readonly reference: string | null;
  readonly upstream: string | null;
  readonly events: boolean;
}

export const DIVERGENCES: Readonly<Record<string, Divergence>> = {
  'new-types': {
    reason: 'message types 23-26 (GET/SET_FEATURE, GET/SET_QUOTA) came after 4.17, which answers ENOSYS; ' +
      'spec 4a has ours implement them as upstream documents',
    reference: 'ERROR ENOSYS|', upstream: null, events: true,
  },
  'depth-watch': {
    reason: '4.17 refuses the depth field of WATCH with EINVAL; upstream accepts it (and the watch fires ' +
      'its initial event), which spec 4a allows ours to do',
    reference: 'ERROR EINVAL|', upstream: 'WATCH OK|', events: false,
  },
  'depth-unwatch': {
    reason: 'a watch that only upstream accepted (depth-watch) exists only there',
    reference: 'ERROR ENOENT|', upstream: 'UNWATCH OK|', events: true,
  },
  'leftover-errno': {
    reason: '4.17 answers a path request without its NUL with whatever errno an earlier call left ' +
      '(spec 4a: a bug not to copy), and with errno 0 it fails an assertion and exits, taking the ' +
      'shared reference down; so the step is not sent to a reference, and ours must say EINVAL',
    reference: null, upstream: 'ERROR EINVAL|', events: true,
  },
};

/** Values that legitimately differ and are normalised, not compared (see xs-script.ts). */
export const NORMALISED = [
  'transaction ids (replies to TRANSACTION_START and tx_id in headers) become the names the script binds',
  "DIRECTORY_PART's generation becomes <gen>: each implementation counts its own",
];

type Side = { readonly server: XenstoredClients; readonly isReference: boolean };

/** Opens the script's connections, replays it, and cleans up before and after. */
async function run(side: Side, script: Script): Promise<Outcome[]> {
  const domids = Object.values(script.conns).filter((c): c is number => c !== 'dom0');
  const released = [...domids, ...(script.introduces ?? [])];
  await side.server.cleanUp(script.paths, released);
  const conns = new Map<string, XsWireClient>();
  try {
    for (const [name, who] of Object.entries(script.conns)) {
      conns.set(name, who === 'dom0' ? await side.server.dom0(name) : await side.server.domU(who, name));
    }
    return await replay(script, conns, (req) => !(side.isReference && divergence(req)?.reference === null));
  } finally {
    for (const c of conns.values()) c.close();
    await side.server.cleanUp(script.paths, released);
  }
}

function divergence(req: Request): Divergence | null {
  if (req.divergence === null) return null;
  const d = DIVERGENCES[req.divergence];
  if (!d) throw new Error(`no allowed divergence ${req.divergence}`);
  return d;
}

/** Every difference between the two runs of `script`, one line each. */
function differences(script: Script, ref: Outcome[], ours: Outcome[]): string[] {
  const out: string[] = [];
  script.steps.forEach((step, i) => {
    const where = `step ${i + 1} \`${describeStep(step)}\``;
    const r = ref[i]!;
    const o = ours[i]!;
    const d = typeof step === 'string' ? divergence(parseStep(step)) : null;
    let compareEvents = true;
    if (d && d.reference !== null && r.reply !== d.reference) {
      out.push(`${where}: xenstored 4.17 answered ${r.reply}, not ${d.reference} as the allowed divergence says`);
    }
    if (r.reply === o.reply) {
      // Same answer: nothing to allow.
    } else if (d && (d.upstream === null || o.reply === d.upstream)) {
      compareEvents = d.events;
    } else {
      const alt = d?.upstream ? ` (or ${d.upstream}, the allowed divergence)` : '';
      const [os, rs] = showPair(o.reply, r.reply);
      out.push(`${where}: ours answered ${os}; xenstored 4.17 ${rs}${alt}`);
    }
    if (!compareEvents) return;
    for (const conn of new Set([...Object.keys(r.events), ...Object.keys(o.events)])) {
      const re = (r.events[conn] ?? []).join(', ');
      const oe = (o.events[conn] ?? []).join(', ');
      if (re !== oe) {
        const [os, rs] = showPair(oe, re, 400);
        out.push(`${where}: watch events on ${conn}: ours [${os}]; xenstored 4.17 [${rs}]`);
      }
    }
  });
  return out;
}

const reference = referenceFromEnv();
const skipReason = reference === null
  ? `set ${REFERENCE_ENV} to the socket of a reference xenstored (../shared/tools/xenstored-peer/start.sh SOCKET)`
  : missingReason(DOMAIN_BRIDGE_NEEDS);
const itDiff = itOrSkip(skipReason);

describe('interop: our xenstored answers every script as xenstored 4.17 does', function () {
  let ref: Side | null = null;
  let ours: Side | null = null;

  before(async function () {
    if (skipReason !== '') return;
    // The domains the scripts connect as, each with a domain socket on both servers.
    const domains = [...new Set(SCRIPTS.flatMap((s) => Object.values(s.conns).filter((c) => c !== 'dom0')))] as number[];
    ref = { server: new XenstoredClients(await attachReferenceXenstored(reference!, { domains }, 'xenstored 4.17')), isReference: true };
    const second = process.env.XENSIM_XENSTORED_UNDER_TEST;
    const server = second
      ? await attachReferenceXenstored(referenceFromEnv({ [REFERENCE_ENV]: second })!, { domains }, 'second reference')
      : await startXensimXenstored({ domains });
    ours = { server: new XenstoredClients(server), isReference: Boolean(second) };
  });

  after(async function () {
    await ref?.server.stop();
    await ours?.server.stop();
  });

  for (const script of SCRIPTS) {
    itDiff(script.title, async function () {
      const want = await run(ref!, script);
      const got = await run(ours!, script);
      const diffs = differences(script, want, got);
      const shown = diffs.length > 60 ? [...diffs.slice(0, 60), `... and ${diffs.length - 60} more`] : diffs;
      if (diffs.length > 0) expect.fail(`${diffs.length} differences from xenstored 4.17:\n  ${shown.join('\n  ')}`);
    });
  }
});
