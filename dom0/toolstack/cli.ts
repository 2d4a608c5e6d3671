// The `xensim` command line (host side). Layer: dom0/toolstack; it may use the
// hypervisor's host-facing index.ts. Subcommands grow with the project; today: demo and
// xenstored.

import { parseArgs } from 'node:util';
import { runDemo } from './demo.ts';
import { type DomainSocket, parseDomainSocket, startXenstoredServer } from './xenstored-server.ts';

const USAGE = `usage: xensim <command> [options]

commands:
  demo [--memory MB] [--log-level LEVEL]
      boot a machine, build Dom0 and two guests, build and validate page tables,
      try hostile updates, destroy a guest, and print a summary; then boot the
      guest kernel natively, patched and unpatched and compare the three
  xenstored --socket PATH [--trace FILE] [--domain-socket DOMID:PATH]...
      serve xensim's XenStore on a Unix socket (clients there are dom0's tools)
      until SIGINT or SIGTERM; each --domain-socket serves clients that act as
      unprivileged domain DOMID. Point Xen's clients at it with XENSTORED_PATH.
`;

/** `xensim xenstored`: serves until SIGINT/SIGTERM; resolves to the exit status. */
async function xenstored(args: string[]): Promise<number> {
  let values;
  try {
    ({ values } = parseArgs({
      args,
      options: {
        socket: { type: 'string' },
        trace: { type: 'string' },
        'domain-socket': { type: 'string', multiple: true, default: [] },
      },
    }));
  } catch (e) {
    process.stderr.write(`xensim xenstored: ${(e as Error).message}\n`);
    return 2;
  }
  if (values.socket === undefined || values.socket === '') {
    process.stderr.write('xensim xenstored: --socket PATH is required\n');
    return 2;
  }
  let domainSockets: DomainSocket[];
  try {
    domainSockets = (values['domain-socket'] ?? []).map(parseDomainSocket);
  } catch (e) {
    process.stderr.write(`xensim xenstored: ${(e as Error).message}\n`);
    return 2;
  }
  const paths = [values.socket, ...domainSockets.map((d) => d.path)];
  if (new Set(paths).size !== paths.length) {
    process.stderr.write('xensim xenstored: every socket needs its own path\n');
    return 2;
  }
  let server;
  try {
    server = await startXenstoredServer({ socket: values.socket, domainSockets, trace: values.trace });
  } catch (e) {
    process.stderr.write(`xensim xenstored: ${(e as Error).message}\n`);
    return 1;
  }
  process.stdout.write(`xensim xenstored: listening on ${values.socket}\n`);
  await new Promise<void>((resolve) => {
    process.once('SIGINT', resolve);
    process.once('SIGTERM', resolve);
  });
  await server.close();
  return 0;
}

function main(argv: string[]): number | Promise<number> {
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
  if (cmd === 'xenstored') return xenstored(rest);
  process.stderr.write(`xensim: unknown command "${cmd}"\n\n${USAGE}`);
  return 2;
}

process.exitCode = await main(process.argv.slice(2));
