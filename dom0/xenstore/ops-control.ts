// XS_CONTROL (xenstored_control.c) as far as it means anything without Xen, and the
// feature and quota messages that came after 4.17 (GET_FEATURE, SET_FEATURE, GET_QUOTA,
// SET_QUOTA, as upstream's docs/misc/xenstore.txt describes them). dom0/xenstore layer.

import { QUOTA_NAMES, type XsQuotas } from './domains.ts';
import type { XsRequest } from './handlers.ts';
import { atoi } from './ops-domains.ts';
import { type XsErrno, latin1, nulTerminated, splitStrings, utf8 } from './wire.ts';

const OK = nulTerminated('OK');

/** XENSTORE_SERVER_FEATURE_RECONNECTION | XENSTORE_SERVER_FEATURE_ERROR: what this xenstored offers. */
export const SERVER_FEATURES = 3;

/** `help`, byte for byte as xenstored 4.17 prints it. */
const CONTROL_HELP = 'check\t\nlog\ton|off\nlive-update\t[-c <cmdline>] [-F] [-t <timeout>] <file>\n' +
  '    Default timeout is 60 seconds.\nlogfile\t<file>\nmemreport\t[<file>]\nprint\t<string>\n' +
  'quota\t[set <name> <val>|<domid>]\nquota-soft\t[set <name> <val>]\nhelp\t\n';

/**
 * CONTROL `cmd|arg|…|` (xenstored_control.c): check, log, logfile, memreport, print,
 * quota, quota-soft, live-update (status and abort only: there is nothing to update to),
 * help. Unknown commands and wrong argument counts are EINVAL.
 */
export function doControl(req: XsRequest): Uint8Array | XsErrno {
  const { strings } = splitStrings(req.payload);
  if (strings.length === 0) return 'EINVAL';
  const [cmd, ...args] = strings;
  const hooks = req.d.controlHooks;
  switch (cmd) {
    case 'check':
      return args.length === 0 && req.d.store.check().length === 0 ? OK : 'EINVAL';
    case 'help':
      return args.length === 0 ? text(CONTROL_HELP) : 'EINVAL';
    case 'log':
      if (args.length !== 1 || (args[0] !== 'on' && args[0] !== 'off')) return 'EINVAL';
      hooks.log?.(args[0] === 'on');
      return OK;
    case 'logfile':
      if (args.length !== 1) return 'EINVAL';
      hooks.logfile?.(args[0]);
      return OK;
    case 'memreport':
      if (args.length > 1) return 'EINVAL';
      hooks.print?.(`memreport: ${req.d.store.size} nodes`);
      return OK;
    case 'print':
      if (args.length !== 1) return 'EINVAL';
      hooks.print?.(args[0]);
      return OK;
    case 'quota':
      return controlQuota(req, args);
    case 'quota-soft':
      if (args.length === 0) return text(`Quota settings:\n${'memory'.padEnd(17)}: ${String(req.d.quotas.softMemory).padStart(8)} Total Xenstore memory per domain (warning level)\n`);
      if (args.length === 3 && args[0] === 'set' && args[1] === 'memory' && /^[0-9]+$/.test(args[2])) {
        req.d.quotas.softMemory = Number(args[2]);
        return OK;
      }
      return 'EINVAL';
    case 'live-update':
      if (args.length === 1 && args[0] === '-s') return text('Not in live-update session.');
      if (args.length === 1 && args[0] === '-a') return text('No live-update session active.');
      return 'EINVAL';
    default:
      return 'EINVAL';
  }
}

function text(s: string): Uint8Array {
  const b = utf8(s);
  const out = new Uint8Array(b.length + 1);
  out.set(b);
  return out;
}

function controlQuota(req: XsRequest, args: string[]): Uint8Array | XsErrno {
  const q = req.d.quotas;
  if (args.length === 0) {
    return text(`Quota settings:\n${QUOTA_NAMES.map(([n, f, what]) => `${n.padEnd(17)}: ${String(q[f]).padStart(8)} ${what}\n`).join('')}`);
  }
  if (args[0] === 'set') {
    if (args.length !== 3) return 'EINVAL';
    const field = quotaField(args[1]);
    if (field === null || !/^[0-9]+$/.test(args[2])) return 'EINVAL';
    q[field] = Number(args[2]);
    return OK;
  }
  if (args.length !== 1) return 'EINVAL';
  const domid = atoi(args[0]) >>> 0;
  const dom = req.d.domains.find(domid);
  if (dom === undefined) return 'ENOENT';
  const row = (name: string, v: number) => `${name.padEnd(16)}: ${String(v).padStart(8)}\n`;
  return text(`Domain ${domid}:\n${row('nodes', dom.nodes)}${row('watches', dom.watches)}` +
    `${row('transactions', req.d.openTransactions(domid))}${row('outstanding', dom.outstanding)}${row('memory', dom.memory)}`);
}

function quotaField(name: string): keyof XsQuotas | null {
  return QUOTA_NAMES.find(([n]) => n === name)?.[1] ?? null;
}

/**
 * GET_FEATURE `[domid|]`: with no domid, the features this xenstored offers (any caller);
 * with one, that domain's (privileged callers only, EACCES otherwise; ENOENT when unknown).
 */
export function doGetFeature(req: XsRequest): Uint8Array | XsErrno {
  const { strings } = splitStrings(req.payload);
  if (strings.length > 1) return 'EINVAL';
  if (strings.length === 0) return latin1(`${SERVER_FEATURES}\0`);
  if (!req.caller.privileged) return 'EACCES';
  const dom = req.d.domains.find(atoi(strings[0]) >>> 0);
  if (dom === undefined || (!dom.introduced && dom.features === 0)) return 'ENOENT';
  return latin1(`${dom.features}\0`);
}

/**
 * SET_FEATURE `domid|value|`: the features a domain will be offered when introduced;
 * EBUSY once it is, EINVAL for bits this xenstored does not offer.
 */
export function doSetFeature(req: XsRequest): Uint8Array | XsErrno {
  const { strings } = splitStrings(req.payload);
  if (strings.length !== 2) return 'EINVAL';
  const dom = req.d.domains.get(atoi(strings[0]) >>> 0);
  if (dom.introduced) return 'EBUSY';
  const v = atoi(strings[1]) >>> 0;
  if ((v & ~SERVER_FEATURES) !== 0) return 'EINVAL';
  dom.features = v;
  return OK;
}

/**
 * GET_QUOTA `[[domid|]quota|]`: with no argument the quota names (separated by blanks);
 * with a name its global value; with a domid too, that domain's.
 */
export function doGetQuota(req: XsRequest): Uint8Array | XsErrno {
  const { strings } = splitStrings(req.payload);
  if (strings.length === 0) return latin1(`${QUOTA_NAMES.map(([n]) => n).join(' ')}\0`);
  if (strings.length > 2) return 'EINVAL';
  const field = quotaField(strings[strings.length - 1]);
  if (field === null) return 'EINVAL';
  if (strings.length === 1) return latin1(`${req.d.quotas[field]}\0`);
  const dom = req.d.domains.find(atoi(strings[0]) >>> 0);
  if (dom === undefined || !dom.introduced) return 'ENOENT';
  return latin1(`${(dom.quotas ?? req.d.quotas)[field]}\0`);
}

/** SET_QUOTA `[domid|]quota|value|`: one quota, global (2 arguments) or a domain's (3). */
export function doSetQuota(req: XsRequest): Uint8Array | XsErrno {
  const { strings } = splitStrings(req.payload);
  if (strings.length < 2 || strings.length > 3) return 'EINVAL';
  const field = quotaField(strings[strings.length - 2]);
  const v = strings[strings.length - 1];
  if (field === null || !/^[0-9]+$/.test(v)) return 'EINVAL';
  if (strings.length === 2) {
    req.d.quotas[field] = Number(v);
    return OK;
  }
  const dom = req.d.domains.find(atoi(strings[0]) >>> 0);
  if (dom === undefined || !dom.introduced) return 'ENOENT';
  dom.quotas ??= { ...req.d.quotas };
  dom.quotas[field] = Number(v);
  return OK;
}
