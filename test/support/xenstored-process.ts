// Starts xensim's own xenstored, `node bin/xensim.js xenstored`, as a child process on
// Unix sockets in a fresh temporary directory, for tests and the bench that talk to it
// as real clients do; stops it and checks that it shut down as its contract says.
// Host side only: imported by tests and the bench, never by simulator code.

import { spawn, type ChildProcess } from 'node:child_process';
import { existsSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';

const XENSIM_BIN = join(dirname(fileURLToPath(import.meta.url)), '..', '..', 'bin', 'xensim.js');

/** How long a server may take to listen, or to exit once told to, before it is a failure. */
const PATIENCE_MS = 30_000;

/** A xenstored serving xs_wire on Unix sockets: ours, or the reference one. */
export interface RunningXenstored {
  /** Who it is, for test titles and messages. */
  readonly name: string;
  /** The privileged (dom0) socket. */
  readonly socket: string;
  /** The domains asked for at start: each introduced, with a socket of its own. */
  readonly domains: readonly number[];
  /** The socket whose clients act as unprivileged domain `domid` (one of `domains`). */
  domainSocket(domid: number): string;
  /** Shuts it down; rejects if it did not shut down cleanly. */
  stop(): Promise<void>;
}

export interface XenstoredOptions {
  /** Domains to serve a --domain-socket for, each introduced from startup. */
  readonly domains?: readonly number[];
  /** Write the pino trace (--trace) to this file. */
  readonly trace?: string;
}

/** A child process that printed the line it was expected to print. */
export interface ListeningProcess {
  readonly child: ChildProcess;
  /** Everything it wrote on stdout and stderr so far. */
  output(): { stdout: string; stderr: string };
  /** Resolves with its exit code (null when a signal ended it) and that signal. */
  readonly exited: Promise<{ code: number | null; signal: NodeJS.Signals | null }>;
}

/**
 * Spawns `cmd args` and resolves once its first stdout line is `line`. Rejects, after
 * killing it, when it exits first, prints something else first, or takes longer than
 * PATIENCE_MS; the message carries its stderr.
 */
export function spawnListening(
  what: string, cmd: string, args: readonly string[], line: string, env: NodeJS.ProcessEnv = process.env,
): Promise<ListeningProcess> {
  const child = spawn(cmd, args, { env, stdio: ['ignore', 'pipe', 'pipe'] });
  let stdout = '';
  let stderr = '';
  child.stderr!.on('data', (d: Buffer) => (stderr += d.toString()));
  const exited = new Promise<{ code: number | null; signal: NodeJS.Signals | null }>((resolve) => {
    child.on('exit', (code, signal) => resolve({ code, signal }));
  });
  const proc: ListeningProcess = { child, output: () => ({ stdout, stderr }), exited };
  return new Promise((resolve, reject) => {
    let settled = false;
    const fail = (why: string): void => {
      if (settled) return;
      settled = true;
      clearTimeout(timer);
      child.kill('SIGKILL');
      reject(new Error(`${what} ${why}; its stderr:\n${stderr}`));
    };
    const timer = setTimeout(() => fail(`printed no line in ${PATIENCE_MS} ms`), PATIENCE_MS);
    child.stdout!.on('data', (d: Buffer) => {
      stdout += d.toString();
      const end = stdout.indexOf('\n');
      if (settled || end < 0) return;
      const first = stdout.slice(0, end);
      if (first !== line) return fail(`printed "${first}" instead of "${line}"`);
      settled = true;
      clearTimeout(timer);
      resolve(proc);
    });
    // 'close' comes after the last of stdout and stderr, so the message has all of stderr.
    child.on('close', (code, signal) => fail(`exited (code ${code}, signal ${signal}) before listening`));
  });
}

/** Sends SIGTERM and waits for the exit, at most PATIENCE_MS (then SIGKILL and a failure). */
export async function terminate(what: string, p: ListeningProcess): Promise<{ code: number | null; signal: NodeJS.Signals | null }> {
  if (p.child.exitCode === null && p.child.signalCode === null) p.child.kill('SIGTERM');
  let timer: NodeJS.Timeout | undefined;
  const late = new Promise<never>((_, reject) => {
    timer = setTimeout(() => {
      p.child.kill('SIGKILL');
      reject(new Error(`${what} did not exit within ${PATIENCE_MS} ms of SIGTERM; its stderr:\n${p.output().stderr}`));
    }, PATIENCE_MS);
  });
  try {
    return await Promise.race([p.exited, late]);
  } finally {
    clearTimeout(timer);
  }
}

/**
 * Starts `node bin/xensim.js xenstored --socket DIR/xs.sock [--trace FILE]
 * [--domain-socket N:DIR/domN.sock]...` in a fresh temporary directory and resolves
 * once it printed `xensim xenstored: listening on DIR/xs.sock`. stop() sends SIGTERM
 * and rejects unless it exited 0, printed nothing more on stdout, and removed its sockets.
 */
export async function startXensimXenstored(opts: XenstoredOptions = {}): Promise<RunningXenstored> {
  const dir = mkdtempSync(join(tmpdir(), 'xensim-xenstored-'));
  const socket = join(dir, 'xs.sock');
  const domainSockets = new Map((opts.domains ?? []).map((d) => [d, join(dir, `dom${d}.sock`)]));
  const args = [XENSIM_BIN, 'xenstored', '--socket', socket];
  if (opts.trace !== undefined) args.push('--trace', opts.trace);
  for (const [d, path] of domainSockets) args.push('--domain-socket', `${d}:${path}`);
  const listening = `xensim xenstored: listening on ${socket}`;
  let p: ListeningProcess;
  try {
    p = await spawnListening('xensim xenstored', process.execPath, args, listening);
  } catch (e) {
    rmSync(dir, { recursive: true, force: true });
    throw e;
  }
  return {
    name: 'xensim xenstored',
    socket,
    domains: [...domainSockets.keys()],
    domainSocket(domid) {
      const path = domainSockets.get(domid);
      if (path === undefined) throw new Error(`xensim xenstored was started without a socket for domain ${domid}`);
      return path;
    },
    async stop() {
      try {
        const { code, signal } = await terminate('xensim xenstored', p);
        const { stdout, stderr } = p.output();
        const wrong: string[] = [];
        if (code !== 0) wrong.push(`exited with code ${code}, signal ${signal}`);
        if (stdout !== `${listening}\n`) wrong.push(`printed more than the listening line on stdout: ${JSON.stringify(stdout)}`);
        for (const path of [socket, ...domainSockets.values()]) {
          if (existsSync(path)) wrong.push(`left its socket ${path} behind`);
        }
        if (wrong.length > 0) throw new Error(`xensim xenstored, on SIGTERM: ${wrong.join('; ')}; its stderr:\n${stderr}`);
      } finally {
        rmSync(dir, { recursive: true, force: true });
      }
    },
  };
}
