// Interop with Debian's xenstore-utils (xenstore-write, -read, -list, -ls, -rm, -exists,
// -chmod, -watch), which find the daemon through XENSTORED_PATH: run against xensim's
// xenstored and against the reference C xenstored 4.17 (test/support/xenstored-targets.ts),
// as dom0 on the privileged socket and as unprivileged domain 3 on a domain socket.
// Outputs are compared exactly, because scripts parse them. Every server starts empty
// for each suite; each test works in its own subtree. Pending when xenstore-utils is
// missing (and, for the reference, what it needs).

import { expect } from 'chai';
import { spawn, spawnSync, type ChildProcessWithoutNullStreams } from 'node:child_process';
import { createInterface } from 'node:readline';
import { hasCommand, itOrSkip, joinReasons, missingReason, type Need } from '../support/needs.ts';
import type { RunningXenstored } from '../support/xenstored-process.ts';
import { xenstoredTargets } from '../support/xenstored-targets.ts';

const UTILS_NEEDS: readonly Need[] = [{ test: hasCommand('xenstore-ls') && hasCommand('xenstore-watch'), pkg: 'xenstore-utils' }];
const DOMID = 3;
const HOME = `/local/domain/${DOMID}`;
/** A domain that owns nothing but its home until the quota test. */
const QUOTA_DOMID = 4;
/** How long a watch may take to print its next event before the test fails. */
const EVENT_PATIENCE_MS = 10_000;

interface Result {
  code: number | null;
  stdout: string;
  stderr: string;
}

/** Runs one xenstore-* tool against `socket` and waits for it. */
function tool(socket: string, name: string, ...args: string[]): Result {
  const r = spawnSync(name, args, { env: { ...process.env, XENSTORED_PATH: socket }, encoding: 'utf8', timeout: 30_000 });
  if (r.error) throw r.error;
  return { code: r.status, stdout: r.stdout, stderr: r.stderr };
}

/** The command line, shortened for messages (some carry 2000-byte values). */
function cmdline(name: string, args: readonly string[]): string {
  const line = `${name} ${args.join(' ')}`;
  return line.length > 160 ? `${line.slice(0, 160)}… (${line.length} characters)` : line;
}

/** Runs a tool that must succeed silently on stderr; returns its stdout. */
function ok(socket: string, name: string, ...args: string[]): string {
  const r = tool(socket, name, ...args);
  expect(r, cmdline(name, args)).to.include({ code: 0, stderr: '' });
  return r.stdout;
}

/** Runs a tool that must fail with exit code 1 and print nothing on stdout; returns its stderr. */
function fails(socket: string, name: string, ...args: string[]): string {
  const r = tool(socket, name, ...args);
  expect(r, cmdline(name, args)).to.include({ code: 1, stdout: '' });
  return r.stderr;
}

/**
 * A line of `xenstore-ls -p` (no -f, output not a terminal, so 80 columns): the node's
 * text, a space, then ". " dots from there to column 60, then two spaces and the
 * permissions in brackets.
 */
function lsp(text: string, perms: string): string {
  let line = `${text} `;
  for (let col = line.length; col < 60; col++) line += col & 1 ? '.' : ' ';
  return `${line}  (${perms})`;
}

/** xenstore-watch running as a child: its event lines, one at a time. */
class Watch {
  private readonly proc: ChildProcessWithoutNullStreams;
  private readonly lines: string[] = [];
  private waiting: ((line: string | null) => void) | null = null;
  private stderr = '';
  private readonly exited: Promise<number | null>;
  private closed = false;

  constructor(socket: string, args: string[]) {
    this.proc = spawn('xenstore-watch', args, { env: { ...process.env, XENSTORED_PATH: socket } });
    this.proc.stderr.on('data', (d: Buffer) => (this.stderr += d.toString()));
    createInterface({ input: this.proc.stdout }).on('line', (line) => this.deliver(line)).on('close', () => {
      this.closed = true;
      this.deliver(null);
    });
    this.exited = new Promise((resolve) => this.proc.on('close', (code) => resolve(code)));
  }

  private deliver(line: string | null): void {
    const w = this.waiting;
    this.waiting = null;
    if (w) w(line);
    else if (line !== null) this.lines.push(line);
  }

  /** The next event line; fails if the watch ends first or prints nothing for EVENT_PATIENCE_MS. */
  async next(): Promise<string> {
    const queued = this.lines.shift();
    if (queued !== undefined) return queued;
    let timer: NodeJS.Timeout | undefined;
    const line = this.closed
      ? null
      : await new Promise<string | null | 'late'>((resolve) => {
        this.waiting = resolve;
        timer = setTimeout(() => resolve('late'), EVENT_PATIENCE_MS);
      });
    clearTimeout(timer);
    if (line === 'late') throw new Error(`xenstore-watch printed no event within ${EVENT_PATIENCE_MS} ms; stderr: ${this.stderr}`);
    if (line === null) throw new Error(`xenstore-watch ended (code ${await this.exited}) instead of printing an event; stderr: ${this.stderr}`);
    return line;
  }

  /** Its exit code, once it has printed all it will print. */
  async exitCode(): Promise<number | null> {
    const code = await this.exited;
    expect(this.stderr, 'xenstore-watch stderr').to.equal('');
    expect(this.lines, 'events after the last one expected').to.deep.equal([]);
    return code;
  }

  kill(): void {
    if (this.proc.exitCode === null && this.proc.signalCode === null) this.proc.kill();
  }
}

/** Starts xenstore-watch, runs `steps` with it, and always stops it. */
async function withWatch(socket: string, args: string[], steps: (w: Watch) => Promise<void>): Promise<void> {
  const w = new Watch(socket, args);
  try {
    await steps(w);
  } finally {
    w.kill();
  }
}

for (const target of xenstoredTargets()) {
  describe(`interop: Debian's xenstore-utils against ${target.name}`, () => {
    const skip = joinReasons(missingReason([...UTILS_NEEDS, ...target.needs]), target.missingTools);
    const itX = itOrSkip(skip);
    let xs: RunningXenstored | null = null;
    let dom0 = '';
    let domU = '';

    before(async () => {
      if (skip !== '') return;
      xs = await target.start({ domains: [DOMID, QUOTA_DOMID] });
      dom0 = xs.socket;
      domU = xs.domainSocket(DOMID);
      // What a toolstack does for a new domain: its home, owned by it.
      for (const d of [DOMID, QUOTA_DOMID]) {
        ok(dom0, 'xenstore-write', `/local/domain/${d}`, '');
        ok(dom0, 'xenstore-chmod', `/local/domain/${d}`, `n${d}`);
      }
    });
    after(async () => {
      if (xs) await xs.stop();
    });

    describe('as dom0, on the privileged socket', () => {
      itX('xenstore-write writes several pairs (one transaction) and creates parents; xenstore-read reads them, -p prefixing the path', () => {
        expect(ok(dom0, 'xenstore-write', '/xsi/rw/a', '1', '/xsi/rw/b', 'two words')).to.equal('');
        expect(ok(dom0, 'xenstore-read', '/xsi/rw/a', '/xsi/rw/b')).to.equal('1\ntwo words\n');
        expect(ok(dom0, 'xenstore-read', '-p', '/xsi/rw/b')).to.equal('/xsi/rw/b: two words\n');
        expect(ok(dom0, 'xenstore-read', '/xsi/rw'), 'a parent created by the write').to.equal('\n');
        expect(ok(dom0, 'xenstore-write', '/xsi/rw/a', 'again')).to.equal('');
        expect(ok(dom0, 'xenstore-read', '/xsi/rw/a')).to.equal('again\n');
      });

      itX('values are bytes: escapes written by xenstore-write come back escaped, and raw with -R', () => {
        ok(dom0, 'xenstore-write', '/xsi/esc/v', 'tab\\there\\nnew line \\x41\\101 back\\\\slash');
        expect(ok(dom0, 'xenstore-read', '/xsi/esc/v')).to.equal('tab\\there\\nnew line AA back\\\\slash\n');
        expect(ok(dom0, 'xenstore-read', '-R', '/xsi/esc/v')).to.equal('tab\there\nnew line AA back\\slash');
        ok(dom0, 'xenstore-write', '-R', '/xsi/esc/raw', 'a\\tb');
        expect(ok(dom0, 'xenstore-read', '/xsi/esc/raw')).to.equal('a\\\\tb\n');
        ok(dom0, 'xenstore-write', '/xsi/esc/empty', '');
        expect(ok(dom0, 'xenstore-read', '-R', '/xsi/esc/empty')).to.equal('');
      });

      itX('xenstore-read of a missing node fails with its path; xenstore-exists answers by exit code', () => {
        ok(dom0, 'xenstore-write', '/xsi/ex/here', 'x');
        expect(fails(dom0, 'xenstore-read', '/xsi/ex/none')).to.equal('xenstore-read: couldn\'t read path /xsi/ex/none\n');
        expect(tool(dom0, 'xenstore-read', '/xsi/ex/here', '/xsi/ex/none'), 'what was read before the missing path is printed')
          .to.deep.equal({ code: 1, stdout: 'x\n', stderr: 'xenstore-read: couldn\'t read path /xsi/ex/none\n' });
        expect(ok(dom0, 'xenstore-exists', '/xsi/ex/here')).to.equal('');
        expect(ok(dom0, 'xenstore-exists', '/xsi/ex')).to.equal('');
        expect(fails(dom0, 'xenstore-exists', '/xsi/ex/none')).to.equal('');
        expect(fails(dom0, 'xenstore-exists', '/xsi/none/none')).to.equal('');
      });

      itX('xenstore-list lists children in the order they were created; -p prefixes the parent', () => {
        ok(dom0, 'xenstore-write', '/xsi/list/zeta', '1', '/xsi/list/alpha', '2', '/xsi/list/mid/deep', '3');
        ok(dom0, 'xenstore-write', '/xsi/list/beta', '4');
        expect(ok(dom0, 'xenstore-list', '/xsi/list')).to.equal('zeta\nalpha\nmid\nbeta\n');
        expect(ok(dom0, 'xenstore-list', '-p', '/xsi/list')).to.equal('/xsi/list/zeta\n/xsi/list/alpha\n/xsi/list/mid\n/xsi/list/beta\n');
        expect(ok(dom0, 'xenstore-list', '/xsi/list/zeta'), 'a leaf').to.equal('');
        expect(fails(dom0, 'xenstore-list', '/xsi/list/none')).to.equal('xenstore-list: could not list path /xsi/list/none\n');
        // A removed child that comes back goes to the end.
        ok(dom0, 'xenstore-rm', '/xsi/list/zeta');
        ok(dom0, 'xenstore-write', '/xsi/list/zeta', '5');
        expect(ok(dom0, 'xenstore-list', '/xsi/list')).to.equal('alpha\nmid\nbeta\nzeta\n');
      });

      itX('xenstore-ls prints the tree indented by depth, values quoted and escaped, long ones cut at 80 columns', () => {
        ok(dom0, 'xenstore-write', '/xsi/ls/a/b/c', 'deep', '/xsi/ls/a/v', 'two words', '/xsi/ls/esc', 'x\\ty\\nz',
          '/xsi/ls/long', 'y'.repeat(100));
        expect(ok(dom0, 'xenstore-ls', '/xsi/ls')).to.equal([
          'a = ""',
          ' b = ""',
          '  c = "deep"',
          ' v = "two words"',
          'esc = "x\\ty\\nz"',
          `long = "${'y'.repeat(68)}\\..."`,
          '',
        ].join('\n'));
        expect(ok(dom0, 'xenstore-ls', '/xsi/ls/a/b')).to.equal('c = "deep"\n');
        expect(ok(dom0, 'xenstore-ls', '/xsi/ls/a/b/c'), 'a leaf').to.equal('');
        expect(fails(dom0, 'xenstore-ls', '/xsi/ls/none')).to.equal('xenstore-ls: xs_directory (/xsi/ls/none): No such file or directory\n');
      });

      itX('xenstore-ls -p pads to column 60 and shows permissions; -f prints full paths', () => {
        ok(dom0, 'xenstore-write', '/xsi/lsp/a/b', 'hello', '/xsi/lsp/c', '');
        ok(dom0, 'xenstore-chmod', '/xsi/lsp/a/b', 'r0', 'w5', 'b7');
        expect(ok(dom0, 'xenstore-ls', '-p', '/xsi/lsp')).to.equal([
          lsp('a = ""', 'n0'),
          lsp(' b = "hello"', 'r0,w5,b7'),
          lsp('c = ""', 'n0'),
          '',
        ].join('\n'));
        expect(ok(dom0, 'xenstore-ls', '-f', '/xsi/lsp')).to.equal('/xsi/lsp/a = ""\n/xsi/lsp/a/b = "hello"\n/xsi/lsp/c = ""\n');
        expect(ok(dom0, 'xenstore-ls', '-f', '-p', '/xsi/lsp')).to.equal(
          '/xsi/lsp/a = ""   (n0)\n/xsi/lsp/a/b = "hello"   (r0,w5,b7)\n/xsi/lsp/c = ""   (n0)\n');
      });

      itX('xenstore-rm removes a whole subtree; a missing node is fine only if its parent exists; -t tidies empty parents', () => {
        ok(dom0, 'xenstore-write', '/xsi/rm/a/b/c', '1', '/xsi/rm/a/d', '2', '/xsi/rm/keep', '3');
        expect(ok(dom0, 'xenstore-rm', '/xsi/rm/a')).to.equal('');
        expect(ok(dom0, 'xenstore-ls', '-f', '/xsi/rm')).to.equal('/xsi/rm/keep = "3"\n');
        expect(fails(dom0, 'xenstore-read', '/xsi/rm/a/b/c')).to.equal('xenstore-read: couldn\'t read path /xsi/rm/a/b/c\n');
        expect(ok(dom0, 'xenstore-rm', '/xsi/rm/none'), 'missing, parent exists').to.equal('');
        expect(fails(dom0, 'xenstore-rm', '/xsi/rm/none/x')).to.equal('xenstore-rm: could not remove path /xsi/rm/none/x\n');
        // -t: /xsi/tidy/p/q goes, then p (empty value, no children) too, but not /xsi/tidy,
        // which has a value.
        ok(dom0, 'xenstore-write', '/xsi/tidy', 'v', '/xsi/tidy/p/q', '1');
        ok(dom0, 'xenstore-rm', '-t', '/xsi/tidy/p/q');
        expect(ok(dom0, 'xenstore-ls', '-f', '/xsi/tidy')).to.equal('');
        expect(ok(dom0, 'xenstore-read', '/xsi/tidy')).to.equal('v\n');
      });

      itX('xenstore-chmod sets a permission list, -r on the subtree too and -u on every ancestor; bad owners and letters fail', () => {
        ok(dom0, 'xenstore-write', '/xsi/ch/a/b/c', '1', '/xsi/ch/x', '2');
        expect(ok(dom0, 'xenstore-chmod', '-r', '/xsi/ch/a', 'n0', 'r5')).to.equal('');
        expect(ok(dom0, 'xenstore-ls', '-f', '-p', '/xsi/ch')).to.equal([
          '/xsi/ch/a = ""   (n0,r5)',
          '/xsi/ch/a/b = ""   (n0,r5)',
          '/xsi/ch/a/b/c = "1"   (n0,r5)',
          '/xsi/ch/x = "2"   (n0)',
          '',
        ].join('\n'));
        ok(dom0, 'xenstore-write', '/xsi-up/a/b', '1', '/xsi-up/z', '2');
        expect(fails(domU, 'xenstore-read', '/xsi-up'), 'dom0\'s until -u').to.equal('xenstore-read: couldn\'t read path /xsi-up\n');
        ok(dom0, 'xenstore-chmod', '-u', '/xsi-up/a/b', 'r0');
        expect(ok(dom0, 'xenstore-ls', '-f', '-p', '/xsi-up')).to.equal('/xsi-up/a = ""   (r0)\n/xsi-up/a/b = "1"   (r0)\n/xsi-up/z = "2"   (n0)\n');
        expect(ok(domU, 'xenstore-read', '/xsi-up'), 'the top ancestor, now readable by all').to.equal('\n');
        expect(fails(dom0, 'xenstore-chmod', '/xsi/ch/x', 'r999'), 'an owner that is no domain')
          .to.equal('xenstore-chmod: Error occurred setting permissions on \'/xsi/ch/x\': No such file or directory\n');
        expect(fails(dom0, 'xenstore-chmod', '/xsi/ch/x', 'x1')).to.equal('xenstore-chmod: Invalid permission specification: \'x\'\n');
        expect(fails(dom0, 'xenstore-chmod', '/xsi/ch/none', 'n0'))
          .to.equal('xenstore-chmod: Error occurred setting permissions on \'/xsi/ch/none\': No such file or directory\n');
        expect(ok(dom0, 'xenstore-ls', '-f', '-p', '/xsi/ch').split('\n')[3], 'unchanged by the failures').to.equal('/xsi/ch/x = "2"   (n0)');
      });

      itX('xenstore-watch -n prints the initial event, then one line per change at or below the path', async () => {
        ok(dom0, 'xenstore-write', '/xsi/w/old', '0', '/xsi/w-not', '0');
        await withWatch(dom0, ['-n', '5', '/xsi/w'], async (w) => {
          expect(await w.next(), 'initial event').to.equal('/xsi/w');
          ok(dom0, 'xenstore-write', '/xsi/w-not/x', '1'); // a sibling sharing the prefix: no event
          ok(dom0, 'xenstore-write', '/xsi/w/new/deep', '1');
          expect(await w.next()).to.equal('/xsi/w/new/deep');
          ok(dom0, 'xenstore-write', '/xsi/w', '2');
          expect(await w.next()).to.equal('/xsi/w');
          ok(dom0, 'xenstore-chmod', '/xsi/w/old', 'n0', 'r1');
          expect(await w.next(), 'a permission change').to.equal('/xsi/w/old');
          ok(dom0, 'xenstore-rm', '/xsi/w/new');
          expect(await w.next()).to.equal('/xsi/w/new');
          expect(await w.exitCode()).to.equal(0);
        });
      });

      itX('xenstore-write\'s transaction fires each node it changed once, at the commit', async () => {
        ok(dom0, 'xenstore-write', '/xsi/txw', '');
        await withWatch(dom0, ['-n', '4', '/xsi/txw'], async (w) => {
          expect(await w.next(), 'initial event').to.equal('/xsi/txw');
          ok(dom0, 'xenstore-write', '/xsi/txw/a', '1', '/xsi/txw/b', '2', '/xsi/txw/a', '3');
          expect(await w.next()).to.equal('/xsi/txw/a');
          expect(await w.next()).to.equal('/xsi/txw/b');
          ok(dom0, 'xenstore-write', '/xsi/txw/end', '1');
          expect(await w.next(), 'a, written twice, fired once').to.equal('/xsi/txw/end');
          expect(await w.exitCode()).to.equal(0);
        });
      });

      itX('removing an ancestor fires watches set on nodes below it', async () => {
        ok(dom0, 'xenstore-write', '/xsi/wr/a/b', '1');
        await withWatch(dom0, ['-n', '2', '/xsi/wr/a/b'], async (w) => {
          expect(await w.next(), 'initial event').to.equal('/xsi/wr/a/b');
          ok(dom0, 'xenstore-rm', '/xsi/wr');
          expect(await w.next()).to.equal('/xsi/wr/a/b');
          expect(await w.exitCode()).to.equal(0);
        });
      });

      itX('relative paths resolve under /local/domain/0, and a relative watch gets relative paths', async () => {
        ok(dom0, 'xenstore-write', 'xsi-rel/a', '1');
        expect(ok(dom0, 'xenstore-read', '/local/domain/0/xsi-rel/a')).to.equal('1\n');
        await withWatch(dom0, ['-n', '3', 'xsi-rel'], async (w) => {
          expect(await w.next(), 'initial event').to.equal('xsi-rel');
          ok(dom0, 'xenstore-write', '/local/domain/0/xsi-rel/b', '2');
          expect(await w.next()).to.equal('xsi-rel/b');
          ok(dom0, 'xenstore-rm', 'xsi-rel/a');
          expect(await w.next()).to.equal('xsi-rel/a');
          expect(await w.exitCode()).to.equal(0);
        });
      });
    });

    describe(`as domain ${DOMID}, on its domain socket`, () => {
      itX(`relative paths resolve under ${HOME}, and nodes the domain creates are its own`, () => {
        ok(domU, 'xenstore-write', 'name', 'guest', 'data/x', '1');
        expect(ok(domU, 'xenstore-read', 'name', `${HOME}/data/x`)).to.equal('guest\n1\n');
        expect(ok(dom0, 'xenstore-read', `${HOME}/name`)).to.equal('guest\n');
        expect(ok(domU, 'xenstore-list', HOME)).to.equal('name\ndata\n');
        expect(ok(domU, 'xenstore-ls', '-f', '-p', HOME)).to.equal(
          `${HOME}/name = "guest"   (n${DOMID})\n${HOME}/data = ""   (n${DOMID})\n${HOME}/data/x = "1"   (n${DOMID})\n`);
        ok(domU, 'xenstore-rm', 'data');
        expect(ok(dom0, 'xenstore-list', HOME)).to.equal('name\n');
      });

      itX('writing, listing, removing or changing permissions outside what it may touch is denied', () => {
        expect(fails(domU, 'xenstore-write', '/tool/xsi', '1')).to.equal('xenstore-write: could not write path /tool/xsi\n');
        expect(fails(domU, 'xenstore-ls', '/tool')).to.equal('xenstore-ls: xs_directory (/tool): Permission denied\n');
        expect(fails(domU, 'xenstore-chmod', '/tool', `b${DOMID}`))
          .to.equal('xenstore-chmod: Error occurred setting permissions on \'/tool\': Permission denied\n');
        ok(dom0, 'xenstore-write', '/xsi/dom0only', 'secret');
        expect(fails(domU, 'xenstore-read', '/xsi/dom0only')).to.equal('xenstore-read: couldn\'t read path /xsi/dom0only\n');
        expect(fails(domU, 'xenstore-rm', '/xsi/dom0only')).to.equal('xenstore-rm: could not remove path /xsi/dom0only\n');
        expect(ok(dom0, 'xenstore-read', '/xsi/dom0only', '/tool')).to.equal('secret\n\n');
        expect(fails(dom0, 'xenstore-exists', '/tool/xsi'), 'the denied write left nothing').to.equal('');
      });

      itX('a missing node reads as missing only where the domain could read its parent', () => {
        expect(fails(domU, 'xenstore-ls', `${HOME}/none`)).to.equal(`xenstore-ls: xs_directory (${HOME}/none): No such file or directory\n`);
        expect(fails(domU, 'xenstore-ls', 'none')).to.equal('xenstore-ls: xs_directory (none): No such file or directory\n');
        expect(fails(domU, 'xenstore-ls', '/tool/none')).to.equal('xenstore-ls: xs_directory (/tool/none): Permission denied\n');
      });

      itX('permissions set by dom0 decide what the domain may read and write, the owner\'s letter applying to others', () => {
        ok(dom0, 'xenstore-write', '/xsi/shared', 'v');
        ok(dom0, 'xenstore-chmod', '/xsi/shared', 'n0', `r${DOMID}`);
        expect(ok(domU, 'xenstore-read', '/xsi/shared')).to.equal('v\n');
        expect(fails(domU, 'xenstore-write', '/xsi/shared', 'w')).to.equal('xenstore-write: could not write path /xsi/shared\n');
        ok(dom0, 'xenstore-chmod', '/xsi/shared', 'n0', `w${DOMID}`);
        expect(ok(domU, 'xenstore-write', '/xsi/shared', 'w')).to.equal('');
        expect(fails(domU, 'xenstore-read', '/xsi/shared'), 'write-only').to.equal('xenstore-read: couldn\'t read path /xsi/shared\n');
        ok(dom0, 'xenstore-chmod', '/xsi/shared', 'r0');
        expect(ok(domU, 'xenstore-read', '/xsi/shared'), 'readable by all').to.equal('w\n');
        ok(dom0, 'xenstore-chmod', '/xsi/shared', 'b0', `n${DOMID}`);
        expect(fails(domU, 'xenstore-read', '/xsi/shared'), 'all but this domain').to.equal('xenstore-read: couldn\'t read path /xsi/shared\n');
        expect(ok(dom0, 'xenstore-read', '/xsi/shared')).to.equal('w\n');
      });

      itX('the domain may change the permissions of its own node but not give it away', () => {
        ok(domU, 'xenstore-write', 'own', '1');
        expect(ok(domU, 'xenstore-chmod', 'own', `n${DOMID}`, 'r0', 'b7')).to.equal('');
        expect(ok(dom0, 'xenstore-ls', '-p', HOME).split('\n').find((l) => l.startsWith('own')))
          .to.equal(lsp('own = "1"', `n${DOMID},r0,b7`));
        expect(fails(domU, 'xenstore-chmod', 'own', 'n0'))
          .to.equal('xenstore-chmod: Error occurred setting permissions on \'own\': Operation not permitted\n');
      });

      itX('a node record of the domain\'s (24-byte header, 8 per permission, value, child names) stays under 2048 bytes', () => {
        ok(domU, 'xenstore-write', 'size/v', 'v'.repeat(2015));
        expect(fails(domU, 'xenstore-write', 'size/w', 'v'.repeat(2016))).to.equal('xenstore-write: could not write path size/w\n');
        // Children n0..n424 take 2015 bytes of size/kids's record (each name and its NUL).
        const pairs: string[] = [];
        for (let i = 0; i < 425; i++) pairs.push(`size/kids/n${i}`, '');
        ok(domU, 'xenstore-write', ...pairs);
        expect(fails(domU, 'xenstore-write', 'size/kids/n425', '')).to.equal('xenstore-write: could not write path size/kids/n425\n');
        expect(ok(dom0, 'xenstore-read', '-R', `${HOME}/size/v`)).to.have.length(2015);
        expect(fails(dom0, 'xenstore-exists', `${HOME}/size/w`, `${HOME}/size/kids/n425`)).to.equal('');
      });

      itX('a transaction may pass the domain\'s quota of 1000 nodes; its commit then fails and keeps nothing', () => {
        const sock = xs!.domainSocket(QUOTA_DOMID);
        // 33 directories of up to 30 nodes: with its home the domain would own 1014.
        const pairs: string[] = [];
        for (let i = 0; i < 980; i++) pairs.push(`t${Math.floor(i / 30)}/${i % 30}`, '');
        expect(fails(sock, 'xenstore-write', ...pairs)).to.equal('xenstore-write: couldn\'t end transaction\n');
        expect(ok(dom0, 'xenstore-list', `/local/domain/${QUOTA_DOMID}`)).to.equal('');
        ok(sock, 'xenstore-write', ...pairs.slice(0, 2 * 900));
        expect(ok(dom0, 'xenstore-list', `/local/domain/${QUOTA_DOMID}/t29`)).to.equal(`${[...Array(30).keys()].join('\n')}\n`);
      });

      itX('the domain\'s relative watch gets relative paths, and events only for nodes it or whose parent it may read', async () => {
        ok(dom0, 'xenstore-write', `${HOME}/watched`, '');
        ok(dom0, 'xenstore-chmod', `${HOME}/watched`, `n${DOMID}`);
        await withWatch(domU, ['-n', '5', 'watched'], async (w) => {
          expect(await w.next(), 'initial event').to.equal('watched');
          ok(dom0, 'xenstore-write', `${HOME}/watched/a`, '1');
          expect(await w.next()).to.equal('watched/a');
          ok(dom0, 'xenstore-write', `${HOME}/watched/private`, '');
          expect(await w.next(), 'created with its parent\'s permissions').to.equal('watched/private');
          ok(dom0, 'xenstore-chmod', `${HOME}/watched/private`, 'n0');
          expect(await w.next(), 'readable before the change').to.equal('watched/private');
          // Neither private/x nor its parent is readable by the domain: no event. Then
          // private is not readable, but its parent is: an event.
          ok(dom0, 'xenstore-write', `${HOME}/watched/private/x`, '1');
          ok(dom0, 'xenstore-write', `${HOME}/watched/private`, 'v');
          expect(await w.next()).to.equal('watched/private');
          expect(await w.exitCode()).to.equal(0);
        });
      });

      itX('the removal of a node the domain may not read fires no event for it, even under a parent it may read', async () => {
        ok(dom0, 'xenstore-write', `${HOME}/rmw`, '');
        ok(dom0, 'xenstore-chmod', `${HOME}/rmw`, `n${DOMID}`);
        await withWatch(domU, ['-n', '4', 'rmw'], async (w) => {
          expect(await w.next(), 'initial event').to.equal('rmw');
          ok(dom0, 'xenstore-write', `${HOME}/rmw/hidden`, '1');
          expect(await w.next(), 'created readable').to.equal('rmw/hidden');
          ok(dom0, 'xenstore-chmod', `${HOME}/rmw/hidden`, 'n0');
          expect(await w.next(), 'readable before the change').to.equal('rmw/hidden');
          ok(dom0, 'xenstore-rm', `${HOME}/rmw/hidden`);
          ok(dom0, 'xenstore-write', `${HOME}/rmw/end`, '1');
          expect(await w.next(), 'no event for the removal').to.equal('rmw/end');
          expect(await w.exitCode()).to.equal(0);
        });
      });
    });
  });
}
