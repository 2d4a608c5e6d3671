// Two xenstoreds behind one interface for the differential test: Debian's C xenstored
// 4.17 (the reference, already running under ../shared/tools/xenstored-peer, found
// through XENSIM_REFERENCE_XENSTORED) and ours (`xensim xenstored`, started here as a
// child process). Each hands out privileged (dom0) connections and connections that act
// as an unprivileged domain N, whose home /local/domain/N it first prepares as a
// toolstack would. Test support only: imported by test suites, never by simulator code.

import { spawn, type ChildProcess } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { connect } from 'node:net';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { createInterface } from 'node:readline';
import { fileURLToPath } from 'node:url';
import { XS_INTRODUCE, XS_MKDIR, XS_RELEASE, XS_RM, XS_SET_PERMS } from '../../rings/xenstore.ts';
import { hasCommand, type Need } from './needs.ts';
import { runHost } from './xen-c.ts';
import { XS_WAIT_MS, XsWireClient, type XsPayload } from './xs-wire-client.ts';

const REPO = join(dirname(fileURLToPath(import.meta.url)), '..', '..');
const BRIDGE_SOURCE = join(REPO, 'test', 'interop', 'c', 'xs_ring_bridge.c');

/** The environment variable naming the reference's socket. */
export const REFERENCE_ENV = 'XENSIM_REFERENCE_XENSTORED';
/** Overrides the reference's run directory (default: `<socket>.run`, as start.sh makes it). */
export const REFERENCE_RUN_ENV = 'XENSIM_REFERENCE_XENSTORED_RUN';

/** A C compiler, for the ring bridge. */
export const RING_BRIDGE_NEEDS: readonly Need[] = [{ test: hasCommand('gcc'), pkg: 'gcc' }];

/** The reference's socket and run directory from the environment, or null when unset. */
export function referenceFromEnv(env: NodeJS.ProcessEnv = process.env): { socket: string; runDir: string } | null {
  const socket = env[REFERENCE_ENV];
  if (!socket) return null;
  return { socket, runDir: env[REFERENCE_RUN_ENV] || `${socket}.run` };
}

/** A xenstored the differential test talks to. */
export interface XenstoredUnderTest {
  readonly name: string;
  /** A new privileged connection. */
  dom0(label: string): Promise<XsWireClient>;
  /**
   * A new connection acting as domain `domid`, after making /local/domain/<domid> afresh,
   * empty and owned by the domain (permissions `n<domid>`), as libxl does.
   */
  domU(domid: number, label: string): Promise<XsWireClient>;
  /**
   * Removes `paths` and the homes of `domids`, and releases those domains that were
   * introduced over xs_wire (by domU() on the reference, or by a script), so that the
   * next user starts clean. Replies are ignored: most of it is usually not there.
   */
  cleanUp(paths: readonly string[], domids: readonly number[]): Promise<void>;
  /** Closes every connection (and stops the server if this started it). */
  stop(): Promise<void>;
}

/** Sends a request on the admin connection and insists on "OK". */
async function mustSucceed(c: XsWireClient, type: number, payload: XsPayload, what: string): Promise<void> {
  const r = await c.send(type, 0, payload);
  const text = r.payload.toString('latin1');
  if (text !== 'OK\0') throw new Error(`${c.label}: ${what} answered ${JSON.stringify(text)}`);
}

/** Makes /local/domain/<domid> afresh, owned by the domain. */
async function prepareHome(admin: XsWireClient, domid: number, introduce: boolean): Promise<void> {
  const home = `/local/domain/${domid}`;
  await admin.send(XS_RM, 0, [home, '']);
  await mustSucceed(admin, XS_MKDIR, [home, ''], `MKDIR ${home}`);
  // Introducing first maps the ring, so the domain exists before it is named as an owner.
  if (introduce) await mustSucceed(admin, XS_INTRODUCE, [String(domid), '0', '7', ''], `INTRODUCE ${domid}`);
  await mustSucceed(admin, XS_SET_PERMS, [home, `n${domid}`, ''], `SET_PERMS ${home}`);
}

function socketClient(path: string, label: string): Promise<XsWireClient> {
  return new Promise((resolve, reject) => {
    const s = connect(path);
    s.once('error', reject);
    s.once('connect', () => {
      s.off('error', reject);
      resolve(new XsWireClient(s, s, label));
    });
  });
}

/** Resolves with the first line of `stream` matching `ready`; rejects if the process exits first. */
function waitForLine(proc: ChildProcess, stream: NodeJS.ReadableStream, ready: RegExp, what: string): Promise<void> {
  return new Promise((resolve, reject) => {
    const seen: string[] = [];
    const lines = createInterface({ input: stream });
    const timer = setTimeout(() => fail(`not ready within ${XS_WAIT_MS} ms`), XS_WAIT_MS);
    const onExit = (code: number | null, sig: string | null): void => fail(`exited (${code ?? sig})`);
    function fail(why: string): void {
      clearTimeout(timer);
      lines.close();
      proc.off('exit', onExit);
      reject(new Error(`${what} ${why}; it printed: ${seen.join('\n') || '(nothing)'}`));
    }
    lines.on('line', (line) => {
      seen.push(line);
      if (!ready.test(line)) return;
      clearTimeout(timer);
      lines.close();
      proc.off('exit', onExit);
      resolve();
    });
    proc.on('exit', onExit);
  });
}

function stopProcess(p: ChildProcess): Promise<number | null> {
  if (p.exitCode !== null || p.signalCode !== null) return Promise.resolve(p.exitCode);
  return new Promise((resolve) => {
    p.once('exit', (code) => resolve(code));
    p.kill('SIGTERM');
  });
}

/** Builds xs_ring_bridge into a new temporary directory; returns [executable, directory]. */
export function buildRingBridge(): { exe: string; dir: string } {
  const dir = mkdtempSync(join(tmpdir(), 'xensim-bridge-'));
  const exe = join(dir, 'xs_ring_bridge');
  runHost('gcc', ['-std=gnu11', '-O2', '-Wall', '-Wextra', '-Werror', '-o', exe, BRIDGE_SOURCE]);
  return { exe, dir };
}

/**
 * Debian's C xenstored under the xenstored-peer shim, already running: dom0 connections
 * on its socket, domain connections over an emulated ring page through xs_ring_bridge.
 */
export class ReferenceXenstored implements XenstoredUnderTest {
  private readonly clients: XsWireClient[] = [];
  private readonly bridges: ChildProcess[] = [];
  private admin: XsWireClient | null = null;

  constructor(
    readonly name: string,
    private readonly socket: string,
    private readonly runDir: string,
    private readonly bridgeExe: string,
  ) {}

  async dom0(label: string): Promise<XsWireClient> {
    const c = await socketClient(this.socket, label);
    this.clients.push(c);
    return c;
  }

  async domU(domid: number, label: string): Promise<XsWireClient> {
    const admin = await this.adminConnection();
    // A domain left introduced by an earlier run would keep its old ring page.
    await admin.send(XS_RELEASE, 0, [String(domid), '']);
    const bridge = spawn(this.bridgeExe, [this.runDir, String(domid)], { stdio: ['pipe', 'pipe', 'pipe'] });
    this.bridges.push(bridge);
    await waitForLine(bridge, bridge.stderr!, /^xs_ring_bridge: ready$/, `xs_ring_bridge for domain ${domid}`);
    await prepareHome(admin, domid, true);
    const c = new XsWireClient(bridge.stdout!, bridge.stdin!, label);
    this.clients.push(c);
    return c;
  }

  cleanUp(paths: readonly string[], domids: readonly number[]): Promise<void> {
    return removeAll(this.adminConnection(), paths, domids, () => true);
  }

  async stop(): Promise<void> {
    for (const c of this.clients) c.close();
    this.clients.length = 0;
    this.admin = null;
    for (const b of this.bridges) await stopProcess(b);
    this.bridges.length = 0;
  }

  private async adminConnection(): Promise<XsWireClient> {
    this.admin ??= await this.dom0(`${this.name} admin`);
    return this.admin;
  }
}

/**
 * Ours: `node bin/xensim.js xenstored` on sockets in a temporary directory, with one
 * domain socket per domid in `domids` (those domains exist and are introduced from the
 * start). `stop()` sends SIGTERM and fails unless it exits with status 0.
 */
export class XensimXenstored implements XenstoredUnderTest {
  private readonly clients: XsWireClient[] = [];
  private admin: XsWireClient | null = null;

  private constructor(
    readonly name: string,
    private readonly socketDomids: ReadonlySet<number>,
    private readonly proc: ChildProcess,
    private readonly dir: string,
    private readonly stderr: () => string,
  ) {}

  static async start(domids: readonly number[], name = 'xensim'): Promise<XensimXenstored> {
    const dir = mkdtempSync(join(tmpdir(), 'xensim-xs-'));
    const socket = join(dir, 'xs.sock');
    const args = [join(REPO, 'bin', 'xensim.js'), 'xenstored', '--socket', socket];
    for (const d of domids) args.push('--domain-socket', `${d}:${join(dir, `dom${d}.sock`)}`);
    const proc = spawn(process.execPath, args, { cwd: REPO, stdio: ['ignore', 'pipe', 'pipe'] });
    let stderr = '';
    proc.stderr!.on('data', (d: Buffer) => (stderr += d.toString()));
    try {
      await waitForLine(proc, proc.stdout!, new RegExp(`^xensim xenstored: listening on ${escape(socket)}$`), 'xensim xenstored');
    } catch (e) {
      await stopProcess(proc);
      rmSync(dir, { recursive: true, force: true });
      throw new Error(`${(e as Error).message}\nstderr: ${stderr}`);
    }
    return new XensimXenstored(name, new Set(domids), proc, dir, () => stderr);
  }

  async dom0(label: string): Promise<XsWireClient> {
    const c = await socketClient(join(this.dir, 'xs.sock'), label);
    this.clients.push(c);
    return c;
  }

  async domU(domid: number, label: string): Promise<XsWireClient> {
    await prepareHome(await this.adminConnection(), domid, false);
    const c = await socketClient(join(this.dir, `dom${domid}.sock`), label);
    this.clients.push(c);
    return c;
  }

  cleanUp(paths: readonly string[], domids: readonly number[]): Promise<void> {
    return removeAll(this.adminConnection(), paths, domids, (d) => !this.socketDomids.has(d));
  }

  async stop(): Promise<void> {
    for (const c of this.clients) c.close();
    this.clients.length = 0;
    this.admin = null;
    const code = await stopProcess(this.proc);
    rmSync(this.dir, { recursive: true, force: true });
    if (code !== 0) throw new Error(`xensim xenstored exited with ${code} on SIGTERM; stderr: ${this.stderr()}`);
  }

  private async adminConnection(): Promise<XsWireClient> {
    this.admin ??= await this.dom0(`${this.name} admin`);
    return this.admin;
  }
}

function escape(s: string): string {
  return s.replace(/[.*+?^${}()|[\]\\]/g, '\\$&');
}

/** Removes a script's paths and its domains' homes, releasing the domains `release` picks. */
async function removeAll(
  adminP: Promise<XsWireClient>, paths: readonly string[], domids: readonly number[], release: (domid: number) => boolean,
): Promise<void> {
  const admin = await adminP;
  for (const p of paths) await admin.send(XS_RM, 0, [p, '']);
  for (const d of domids) {
    await admin.send(XS_RM, 0, [`/local/domain/${d}`, '']);
    if (release(d)) await admin.send(XS_RELEASE, 0, [String(d), '']);
  }
}
