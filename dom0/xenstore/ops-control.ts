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

const CONTROL_HELP: [string, string][] = [
  ['check', 'check the store\'s consistency'],
  ['help', 'this list'],
  ['quota', '[set <name> <val>|<domid>] show or set quotas'],
  ['print', '<string> write the string to the trace'],
];

/** CONTROL `cmd|arg|…`: check, help, quota, print. Others: EINVAL, as unknown commands are. */
export function doControl(req: XsRequest): Uint8Array | XsErrno {
  const { strings } = splitStrings(req.payload);
  if (strings.length === 0) return 'EINVAL';
  const [cmd, ...args] = strings;
  switch (cmd) {
    case 'check':
      return req.d.store.check().length === 0 ? OK : 'EIO';
    case 'help':
      return text(CONTROL_HELP.map(([c, h]) => `${c.padEnd(10)} ${h}`).join('\n') + '\n');
    case 'print':
      return args.length === 1 ? OK : 'EINVAL';
    case 'quota':
      return controlQuota(req, args);
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
  if (args.length === 0) return text(QUOTA_NAMES.map(([n, f]) => `${n.padEnd(18)}: ${q[f]}`).join('\n') + '\n');
  if (args[0] === 'set') {
    if (args.length !== 3) return 'EINVAL';
    const field = quotaField(args[1]);
    const v = Number(args[2]);
    if (field === null || !Number.isInteger(v) || v < 0) return 'EINVAL';
    q[field] = v;
    return OK;
  }
  if (args.length !== 1) return 'EINVAL';
  const dom = req.d.domains.find(atoi(args[0]) >>> 0);
  if (dom === undefined || !dom.introduced) return 'ENOENT';
  return text(`nodes: ${dom.nodes}\nwatches: ${dom.watches}\n`);
}

function quotaField(name: string): keyof XsQuotas | null {
  return QUOTA_NAMES.find(([n]) => n === name)?.[1] ?? null;
}

/** GET_FEATURE `[domid|]`: the features of a domain, or with no domid those xenstored offers. */
export function doGetFeature(req: XsRequest): Uint8Array | XsErrno {
  const { strings, rest } = splitStrings(req.payload);
  if (rest.length !== 0 || strings.length > 1) return 'EINVAL';
  if (strings.length === 0 || strings[0] === '') return latin1(`${SERVER_FEATURES}\0`);
  if (!req.caller.privileged) return 'EACCES';
  const dom = req.d.domains.find(atoi(strings[0]) >>> 0);
  if (dom === undefined || !dom.introduced) return 'ENOENT';
  return latin1(`${dom.features}\0`);
}

/** SET_FEATURE `domid|value|`: sets a domain's features (a subset of those offered). */
export function doSetFeature(req: XsRequest): Uint8Array | XsErrno {
  const { strings, rest } = splitStrings(req.payload);
  if (rest.length !== 0 || strings.length !== 2) return 'EINVAL';
  const dom = req.d.domains.find(atoi(strings[0]) >>> 0);
  if (dom === undefined || !dom.introduced) return 'ENOENT';
  const v = atoi(strings[1]) >>> 0;
  if ((v & ~SERVER_FEATURES) !== 0) return 'EINVAL';
  dom.features = v;
  return OK;
}

/**
 * GET_QUOTA `[domid|]quota|`: one quota's value, global or for a domain; with no quota
 * name, the names of all quotas.
 */
export function doGetQuota(req: XsRequest): Uint8Array | XsErrno {
  const { strings, rest } = splitStrings(req.payload);
  if (rest.length !== 0) return 'EINVAL';
  if (strings.length === 0) return nulTerminated(...QUOTA_NAMES.map(([n]) => n));
  if (strings.length > 2) return 'EINVAL';
  const field = quotaField(strings[strings.length - 1]);
  if (field === null) return 'EINVAL';
  if (strings.length === 1) return latin1(`${req.d.quotas[field]}\0`);
  const dom = req.d.domains.find(atoi(strings[0]) >>> 0);
  if (dom === undefined || !dom.introduced) return 'ENOENT';
  return latin1(`${(dom.quotas ?? req.d.quotas)[field]}\0`);
}

/** SET_QUOTA `[domid|]quota|value|`: sets one quota, global or for a domain. */
export function doSetQuota(req: XsRequest): Uint8Array | XsErrno {
  const { strings, rest } = splitStrings(req.payload);
  if (rest.length !== 0 || strings.length < 2 || strings.length > 3) return 'EINVAL';
  const field = quotaField(strings[strings.length - 2]);
  const v = Number(strings[strings.length - 1]);
  if (field === null || !Number.isInteger(v) || v < 0) return 'EINVAL';
  if (strings.length === 2) {
    req.d.quotas[field] = v;
    return OK;
  }
  const dom = req.d.domains.find(atoi(strings[0]) >>> 0);
  if (dom === undefined || !dom.introduced) return 'ENOENT';
  dom.quotas ??= { ...req.d.quotas };
  dom.quotas[field] = v;
  return OK;
}
