// The reference xenstored — Debian's C xenstored 4.17 run without a hypervisor by
// shared/tools/xenstored-peer — with the same face as ours (xenstored-process.ts): a dom0
// socket, and for each domain asked for a socket whose clients act as that unprivileged
// domain, through a bridge onto the domain's emulated ring (test/interop/c/
// xs_socket_bridge.c). Either started here by start.sh in a fresh temporary directory,
// or a long-lived one already running, named by XENSIM_REFERENCE_XENSTORED (.ci/run
// starts one for the differential test). Tests run against both servers to show that
// what they check is the behaviour of real clients against real xenstored.
// Host side only: imported by tests and the bench, never by simulator code.

import { execFile } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { promisify } from 'node:util';
import { XS_INTRODUCE, XS_RELEASE } from '../../rings/xenstore.ts';
import { hasFile, joinReasons, missingReason, type Need } from './needs.ts';
import { findShared, sharedMissingReason } from './shared-tools.ts';
import { XEN_C_NEEDS, buildXenC } from './xen-c.ts';
import { spawnListening, terminate, type ListeningProcess, type RunningXenstored, type XenstoredOptions } from './xenstored-process.ts';
import { connectXs, sendExpectingOk } from './xs-wire-client.ts';

const run = promisify(execFile);
const START_SH = 'tools/xenstored-peer/start.sh';
const BRIDGE_SOURCE = join(dirname(fileURLToPath(import.meta.url)), '..', 'interop', 'c', 'xs_socket_bridge.c');

/** The environment variable naming a running reference's socket. */
export const REFERENCE_ENV = 'XENSIM_REFERENCE_XENSTORED';
/** Overrides that reference's run directory (default: `<socket>.run`, as start.sh makes it). */
export const REFERENCE_RUN_ENV = 'XENSIM_REFERENCE_XENSTORED_RUN';

/** Where a running reference is: its dom0 socket and its shim's run directory. */
export interface ReferenceAddress {
  readonly socket: string;
  readonly runDir: string;
}

/** A compiler and Xen's headers, for the domain bridge. */
export const DOMAIN_BRIDGE_NEEDS: readonly Need[] = XEN_C_NEEDS;

/** The C xenstored, and a compiler and Xen's headers for its shim and the domain bridge. */
export const REFERENCE_XENSTORED_NEEDS: readonly Need[] = [
  { test: hasFile('/usr/lib/xen-4.17/bin/xenstored'), pkg: 'xen-utils-4.17' },
  ...XEN_C_NEEDS,
];

/** The running reference named by the environment, or null when REFERENCE_ENV is unset. */
export function referenceFromEnv(env: NodeJS.ProcessEnv = process.env): ReferenceAddress | null {
  const socket = env[REFERENCE_ENV];
  if (!socket) return null;
  return { socket, runDir: env[REFERENCE_RUN_ENV] || `${socket}.run` };
}

/** "" when the shared tools that start the reference are here, else where they were looked for. */
export function referenceMissingTools(): string {
  return sharedMissingReason(START_SH);
}

/** "" when the reference can be started here, else what is missing. */
export function referenceMissingReason(): string {
  return joinReasons(missingReason(REFERENCE_XENSTORED_NEEDS), referenceMissingTools());
}

/**
 * Starts the reference on DIR/xs.sock (its shim's files in DIR/xs.sock.run) and one
 * bridge per domain on DIR/domN.sock. stop() ends them (by pid) and removes DIR.
 * Rejects with start.sh's or a bridge's stderr when one fails. `trace` is not offered:
 * the reference traces in its own format (start.sh passes -T FILE through).
 */
export async function startReferenceXenstored(opts: Omit<XenstoredOptions, 'trace'> = {}): Promise<RunningXenstored> {
  const startSh = findShared(START_SH);
  if (startSh === null) throw new Error(sharedMissingReason(START_SH));
  const dir = mkdtempSync(join(tmpdir(), 'xsref-'));
  const socket = join(dir, 'xs.sock');
  let pid = 0;
  const kill = async (): Promise<void> => {
    if (pid !== 0) process.kill(pid, 'SIGTERM');
  };
  try {
    const env = { ...process.env, XSSHIM_SO: join(dir, 'xsshim.so') };
    const started = await run(startSh, [socket], { env }).catch((e: { stderr?: string; message: string }) => {
      throw new Error(`${startSh} failed: ${e.stderr || e.message}`);
    });
    pid = Number(started.stdout.trim());
  } catch (e) {
    rmSync(dir, { recursive: true, force: true });
    throw e;
  }
  return withDomainBridges('reference C xenstored 4.17', { socket, runDir: `${socket}.run` }, dir, opts.domains ?? [], kill);
}

/**
 * The reference already running at `ref`, with a bridge per domain on sockets in a
 * fresh temporary directory. stop() ends the bridges and releases their domains, but
 * leaves the reference running for its next user.
 */
export async function attachReferenceXenstored(
  ref: ReferenceAddress, opts: Omit<XenstoredOptions, 'trace'> = {}, name = 'reference C xenstored 4.17',
): Promise<RunningXenstored> {
  const domains = opts.domains ?? [];
  const release = async (): Promise<void> => {
    if (domains.length === 0) return;
    const toolstack = await connectXs(ref.socket, `${name} toolstack`);
    for (const d of domains) await toolstack.send(XS_RELEASE, 0, [String(d), '']);
    toolstack.close();
  };
  return withDomainBridges(name, ref, mkdtempSync(join(tmpdir(), 'xsref-')), domains, release);
}

/**
 * The reference at `ref` with a bridge per domain of `domains`, its socket and the
 * bridge's executable in `dir`. stop() ends the bridges, then runs `finish` (which
 * stops the reference, or leaves it clean) and removes `dir`.
 */
async function withDomainBridges(
  name: string, ref: ReferenceAddress, dir: string, domains: readonly number[], finish: () => Promise<void>,
): Promise<RunningXenstored> {
  const bridges: ListeningProcess[] = [];
  const sockets = new Map<number, string>();
  const stop = async (): Promise<void> => {
    try {
      for (const b of bridges) await terminate('xs_socket_bridge', b);
      await finish();
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  };
  try {
    if (domains.length > 0) await startBridges(ref, dir, domains, bridges, sockets);
  } catch (e) {
    await stop();
    throw e;
  }
  return {
    name,
    socket: ref.socket,
    domains: [...sockets.keys()],
    domainSocket(domid) {
      const path = sockets.get(domid);
      if (path === undefined) throw new Error(`${name} was started without a socket for domain ${domid}`);
      return path;
    },
    stop,
  };
}

/**
 * Builds the bridge into `dir` and, for each domain, does what a toolstack and the
 * domain's kernel would: releases the domain (one left introduced by an earlier user of
 * a long-lived reference keeps its old ring page), starts its bridge on a new page and
 * DIR/domN.sock, and introduces it, so that xenstored maps that page. Fills `bridges`
 * and `sockets` as it goes, for the caller to stop what did start.
 */
async function startBridges(
  ref: ReferenceAddress, dir: string, domains: readonly number[], bridges: ListeningProcess[], sockets: Map<number, string>,
): Promise<void> {
  const exe = join(dir, 'xs_socket_bridge');
  buildXenC(BRIDGE_SOURCE, exe, ['-O2', '-Wextra', '-Werror']);
  const toolstack = await connectXs(ref.socket, `${ref.socket} toolstack`);
  try {
    for (const d of domains) {
      await toolstack.send(XS_RELEASE, 0, [String(d), '']);
      const path = join(dir, `dom${d}.sock`);
      bridges.push(await spawnListening(`xs_socket_bridge for domain ${d}`, exe, [ref.runDir, String(d), path],
        `xs_socket_bridge: listening on ${path}`));
      await sendExpectingOk(toolstack, XS_INTRODUCE, [String(d), '0', '7', ''], `INTRODUCE ${d}`);
      sockets.set(d, path);
    }
  } finally {
    toolstack.close();
  }
}
