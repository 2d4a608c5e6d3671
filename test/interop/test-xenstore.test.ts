// Interop with Xen's own XenStore test program, /usr/lib/xen-4.17/bin/test-xenstore
// (Debian package xen-utils-4.17; source tools/tests/xenstore/test-xenstore.c): reads and
// writes of 1 and 2000 bytes, directories, removal of nodes and subtrees, and empty,
// read-modify-write and conflicting transactions, through libxenstore on XENSTORED_PATH.
// Run against xensim's xenstored and the reference C xenstored 4.17: all its tests
// once, each test 50 times (-i), and its random mode (-r, which runs for a duration the
// tool itself measures; only its exit code is checked), as dom0 and as domain 3.
// Pending when xen-utils-4.17 is missing (and, as domain 3, xenstore-utils, which makes
// the domain's home; and, for the reference, what it needs).

import { expect } from 'chai';
import { spawnSync } from 'node:child_process';
import { hasCommand, hasFile, itOrSkip, joinReasons, missingReason, type Need } from '../support/needs.ts';
import type { RunningXenstored } from '../support/xenstored-process.ts';
import { xenstoredTargets } from '../support/xenstored-targets.ts';

const TEST_XENSTORE = '/usr/lib/xen-4.17/bin/test-xenstore';
const TOOL_NEEDS: readonly Need[] = [{ test: hasFile(TEST_XENSTORE), pkg: 'xen-utils-4.17' }];
const UTILS_NEEDS: readonly Need[] = [{ test: hasCommand('xenstore-chmod'), pkg: 'xenstore-utils' }];
const DOMID = 3;
const ITERATIONS = 50;
const RANDOM_SECONDS = 2;

interface Result {
  code: number | null;
  stdout: string;
  stderr: string;
}

function run(cmd: string, args: readonly string[], socket?: string): Result {
  const env = socket === undefined ? process.env : { ...process.env, XENSTORED_PATH: socket };
  const r = spawnSync(cmd, args, { env, encoding: 'utf8', timeout: 120_000 });
  if (r.error) throw r.error;
  return { code: r.status, stdout: r.stdout, stderr: r.stderr };
}

/** The names of test-xenstore's tests, from `test-xenstore -l` ("%-10s: description"). */
function testNames(): string[] {
  const r = run(TEST_XENSTORE, ['-l']);
  expect(r.code, `test-xenstore -l: ${r.stderr}`).to.equal(0);
  return r.stdout.trimEnd().split('\n').map((line) => line.slice(0, 10).trimEnd());
}

/**
 * Checks a run that passed: exit code 0, nothing on stderr, and one line per test in
 * order, `name: N ns` or, with -i, `name: avg: N ns (MIN ns .. MAX ns)` — a failed test
 * prints `name: failed (ret = errno, stage …)` and stops the run; exhausted transaction
 * retries would add a line.
 */
function expectAllPassed(r: Result, names: readonly string[], iterations: boolean): void {
  const what = `test-xenstore printed:\n${r.stdout}${r.stderr}`;
  expect(r.code, what).to.equal(0);
  expect(r.stderr, what).to.equal('');
  const lines = r.stdout.trimEnd().split('\n');
  const timing = iterations ? / avg: \d+ ns \(\d+ ns \.\. \d+ ns\)$/ : / \d+ ns$/;
  expect(lines.map((l) => l.slice(0, 10).trimEnd()), what).to.deep.equal(names);
  for (const line of lines) expect(line.slice(10), what).to.match(new RegExp(`^:${timing.source}`));
}

for (const target of xenstoredTargets()) {
  describe(`interop: Xen's test-xenstore against ${target.name}`, () => {
    const skip = joinReasons(missingReason([...TOOL_NEEDS, ...target.needs]), target.missingTools);
    const itT = itOrSkip(skip);
    const itDomain = itOrSkip(joinReasons(missingReason([...TOOL_NEEDS, ...target.needs, ...UTILS_NEEDS]), target.missingTools));
    let xs: RunningXenstored | null = null;
    let names: string[] = [];

    before(async () => {
      if (skip !== '') return;
      names = testNames();
      expect(names, 'test-xenstore -l').to.have.length(12);
      xs = await target.start({ domains: [DOMID] });
      if (missingReason(UTILS_NEEDS) === '') {
        // What a toolstack does for a new domain: its home, owned by it.
        for (const args of [['xenstore-write', `/local/domain/${DOMID}`, ''], ['xenstore-chmod', `/local/domain/${DOMID}`, `n${DOMID}`]]) {
          const r = run(args[0], args.slice(1), xs.socket);
          expect(r, args.join(' ')).to.include({ code: 0, stderr: '' });
        }
      }
    });
    after(async () => {
      if (xs) await xs.stop();
    });

    itT('as dom0, all its tests pass', () => {
      expectAllPassed(run(TEST_XENSTORE, [], xs!.socket), names, false);
    });

    itT(`as dom0, all its tests pass ${ITERATIONS} times each (-i ${ITERATIONS})`, () => {
      expectAllPassed(run(TEST_XENSTORE, ['-i', String(ITERATIONS)], xs!.socket), names, true);
    });

    itT(`as dom0, its random mode passes (-r ${RANDOM_SECONDS}: random tests for ${RANDOM_SECONDS} s by its own clock)`, () => {
      // Silent on success; a failed test prints its line and exits 3.
      expect(run(TEST_XENSTORE, ['-r', String(RANDOM_SECONDS)], xs!.socket)).to.deep.equal({ code: 0, stdout: '', stderr: '' });
    });

    itDomain(`as domain ${DOMID} (under /local/domain/${DOMID}, with its quotas), all its tests pass, and ${ITERATIONS} times each`, () => {
      expectAllPassed(run(TEST_XENSTORE, [], xs!.domainSocket(DOMID)), names, false);
      expectAllPassed(run(TEST_XENSTORE, ['-i', String(ITERATIONS)], xs!.domainSocket(DOMID)), names, true);
    });

    itDomain(`as domain ${DOMID}, its random mode passes (-r ${RANDOM_SECONDS})`, () => {
      expect(run(TEST_XENSTORE, ['-r', String(RANDOM_SECONDS)], xs!.domainSocket(DOMID))).to.deep.equal({ code: 0, stdout: '', stderr: '' });
    });
  });
}
