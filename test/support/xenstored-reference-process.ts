// Starts the reference xenstored — Debian's C xenstored 4.17 run without a hypervisor by
// shared/tools/xenstored-peer/start.sh — in a fresh temporary directory, with the same
// face as ours (xenstored-process.ts): a dom0 socket, and for each domain asked for a
// socket whose clients act as that unprivileged domain, through a bridge onto the
// domain's ring (test/interop/c/xs_socket_bridge.c). Tests run against both servers to
// show that what they check is the behaviour of real clients against real xenstored.
// Host side only: imported by tests and the bench, never by simulator code.

import { execFile } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { promisify } from 'node:util';
import { hasCommand, hasFile, joinReasons, missingReason, type Need } from './needs.ts';
import { findShared, sharedMissingReason } from './shared-tools.ts';
import { spawnListening, terminate, type ListeningProcess, type RunningXenstored, type XenstoredOptions } from './xenstored-process.ts';

const run = promisify(execFile);
const START_SH = 'tools/xenstored-peer/start.sh';
const BRIDGE_SOURCE = join(dirname(fileURLToPath(import.meta.url)), '..', 'interop', 'c', 'xs_socket_bridge.c');

/** The C xenstored, a compiler for its shim and the bridge, and libxenstore's headers. */
export const REFERENCE_XENSTORED_NEEDS: readonly Need[] = [
  { test: hasFile('/usr/lib/xen-4.17/bin/xenstored'), pkg: 'xen-utils-4.17' },
  { test: hasCommand('gcc'), pkg: 'gcc' },
  { test: hasFile('/usr/include/xenstore.h'), pkg: 'libxen-dev' },
];

/** "" when the shared tools that start the reference are here, else where they were looked for. */
export function referenceMissingTools(): string {
  return sharedMissingReason(START_SH);
}

/** "" when the reference can run here, else what is missing. */
export function referenceMissingReason(): string {
  return joinReasons(missingReason(REFERENCE_XENSTORED_NEEDS), referenceMissingTools());
}

/**
 * Starts the reference on DIR/xs.sock (its shim's files in DIR/xs.sock.run) and one
 * bridge per domain on DIR/domN.sock. stop() kills them (by pid) and removes DIR.
 * Rejects with start.sh's or a bridge's stderr when one fails. `trace` is not offered:
 * the reference traces in its own format (start.sh passes -T FILE through).
 */
export async function startReferenceXenstored(opts: Omit<XenstoredOptions, 'trace'> = {}): Promise<RunningXenstored> {
  const startSh = findShared(START_SH);
  if (startSh === null) throw new Error(sharedMissingReason(START_SH));
  const dir = mkdtempSync(join(tmpdir(), 'xsref-'));
  const socket = join(dir, 'xs.sock');
  const rundir = `${socket}.run`;
  let pid = 0;
  const bridges: ListeningProcess[] = [];
  const domainSockets = new Map<number, string>();
  const stop = async (): Promise<void> => {
    try {
      for (const b of bridges) await terminate('xs_socket_bridge', b);
      if (pid !== 0) process.kill(pid, 'SIGTERM');
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  };
  try {
    const env = { ...process.env, XSSHIM_SO: join(dir, 'xsshim.so') };
    const started = await run(startSh, [socket], { env }).catch((e: { stderr?: string; message: string }) => {
      throw new Error(`${startSh} failed: ${e.stderr || e.message}`);
    });
    pid = Number(started.stdout.trim());
    if (opts.domains && opts.domains.length > 0) {
      const bridge = join(dir, 'xs_socket_bridge');
      await run('gcc', ['-O2', '-Wall', '-o', bridge, BRIDGE_SOURCE, '-lxenstore']).catch((e: { stderr?: string; message: string }) => {
        throw new Error(`building xs_socket_bridge failed: ${e.stderr || e.message}`);
      });
      for (const d of opts.domains) {
        const path = join(dir, `dom${d}.sock`);
        bridges.push(await spawnListening(`xs_socket_bridge for domain ${d}`, bridge, [rundir, String(d), path],
          `xs_socket_bridge: listening on ${path}`, { ...process.env, XENSTORED_PATH: socket }));
        domainSockets.set(d, path);
      }
    }
  } catch (e) {
    await stop();
    throw e;
  }
  return {
    name: 'reference C xenstored 4.17',
    socket,
    domainSocket(domid) {
      const path = domainSockets.get(domid);
      if (path === undefined) throw new Error(`the reference xenstored was started without a socket for domain ${domid}`);
      return path;
    },
    stop,
  };
}
