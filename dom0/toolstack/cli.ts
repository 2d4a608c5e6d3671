// The `xensim` command line (host side). Layer: dom0/toolstack; it may use the
// hypervisor's host-facing index.ts. Subcommands grow with the project; today: demo.

import { parseArgs } from 'node:util';
import { runDemo } from './demo.ts';

const USAGE = `usage: xensim <command> [options]

commands:
  demo [--memory MB] [--log-level LEVEL]
      boot a machine, build Dom0 and two guests, build and validate page tables,
      try hostile updates, destroy a guest, and print a summary; then boot the
      guest kernel natively, patched and unpatched and compare the three
`;

function main(argv: string[]): number {
  const [cmd, ...rest] = argv;
  if (cmd === undefined || cmd === 'help' || cmd === '--help' || cmd === '-h') {
    process.stdout.write(USAGE);
    return cmd === undefined ? 2 : 0;
  }
  if (cmd === 'demo') {
    let values;
    try {
      ({ values } = parseArgs({
        args: rest,
        options: { memory: { type: 'string', default: '256' }, 'log-level': { type: 'string', default: 'silent' } },
      }));
    } catch (e) {
      process.stderr.write(`xensim demo: ${(e as Error).message}\n`);
      return 2;
    }
    const memoryMb = Number(values.memory);
    if (!Number.isInteger(memoryMb) || memoryMb < 64 || memoryMb > 65536) {
      process.stderr.write(`xensim demo: --memory must be an integer number of MiB in 64..65536, not "${values.memory}"\n`);
      return 2;
    }
    return runDemo({ memoryMb, logLevel: values['log-level'] as string, out: (s) => process.stdout.write(s) });
  }
  process.stderr.write(`xensim: unknown command "${cmd}"\n\n${USAGE}`);
  return 2;
}

process.exitCode = main(process.argv.slice(2));
