// Domain operations (xenstored_domain.c): INTRODUCE, RELEASE, RESUME, SET_TARGET,
// GET_DOMAIN_PATH, IS_DOMAIN_INTRODUCED. Domids are read as C's atoi reads them.
// dom0/xenstore layer.

import type { XsRequest } from './handlers.ts';
import { INTRODUCE_DOMAIN, domainPath } from './paths.ts';
import { type XsErrno, latin1, nulTerminated, oneArg, splitStrings } from './wire.ts';

const OK = nulTerminated('OK');
/** DOMID_SELF (xen.h). */
const DOMID_SELF = 0x7ff0;

/** atoi(): leading spaces, a sign and digits, stopping at the first other character; 0 if none. */
export function atoi(s: string): number {
  const m = /^[ \t\n\v\f\r]*([+-]?)([0-9]*)/.exec(s);
  const digits = m?.[2] ?? '';
  if (digits === '') return 0;
  const v = Number.parseInt(digits, 10) % 2 ** 32;
  return m?.[1] === '-' ? -v : v;
}

/** The value as C's unsigned int. */
function u32(v: number): number {
  return v >>> 0;
}

/**
 * The introduced domain named by a one-argument payload `domid|` (find_connected_domain):
 * EINVAL for a malformed payload or domid 0 (atoi of anything not a number included),
 * ENOENT for a domain not introduced.
 */
function introducedArg(req: XsRequest): number | XsErrno {
  const arg = oneArg(req.payload);
  if (arg === null) return 'EINVAL';
  const domid = u32(atoi(arg));
  if (domid === 0) return 'EINVAL';
  return req.d.domains.isIntroduced(domid) ? domid : 'ENOENT';
}

/** INTRODUCE `domid|gfn|evtchn|`: the toolstack tells xenstored about a new domain's store ring. */
export function doIntroduce(req: XsRequest): Uint8Array | XsErrno {
  const { d } = req;
  const { strings } = splitStrings(req.payload);
  if (strings.length < 3) return 'EINVAL';
  const domid = u32(atoi(strings[0]));
  const gfn = strings[1];
  const port = atoi(strings[2]);
  if (port <= 0) return 'EINVAL';
  const dom = d.domains.get(domid);
  d.known.add(domid, d.store.generation);
  if (dom.introduced) {
    // Again: the domain's connection starts afresh (no watches, no transactions), and no
    // second @introduceDomain.
    for (const c of d.connections) {
      if (c.domid !== domid || c.privileged) continue;
      d.dropWatches(c);
      d.endTransactions(c);
    }
    return OK;
  }
  dom.introduced = true;
  dom.ringGfn = gfn;
  dom.shutdown = false;
  d.fireSpecial(INTRODUCE_DOMAIN);
  return OK;
}

/** RELEASE `domid|`: the domain is gone; its connections, watches, transactions and nodes go too. */
export function doRelease(req: XsRequest): Uint8Array | XsErrno {
  const domid = introducedArg(req);
  if (typeof domid === 'string') return domid;
  req.d.releaseDomain(domid);
  return OK;
}

/** RESUME `domid|`: clears the domain's shutdown state. */
export function doResume(req: XsRequest): Uint8Array | XsErrno {
  const domid = introducedArg(req);
  if (typeof domid === 'string') return domid;
  req.d.domains.get(domid).shutdown = false;
  return OK;
}

/** SET_TARGET `domid|target|`: `domid` gets `target`'s rights (a device model's stub domain). */
export function doSetTarget(req: XsRequest): Uint8Array | XsErrno {
  const { d } = req;
  const { strings } = splitStrings(req.payload);
  if (strings.length < 2) return 'EINVAL';
  const domid = u32(atoi(strings[0]));
  const target = u32(atoi(strings[1]));
  if (!d.domains.isIntroduced(domid) || !d.domains.isIntroduced(target)) return 'ENOENT';
  d.domains.get(domid).target = target;
  return OK;
}

export function doGetDomainPath(req: XsRequest): Uint8Array | XsErrno {
  const arg = oneArg(req.payload);
  if (arg === null) return 'EINVAL';
  return latin1(`${domainPath(u32(atoi(arg)))}\0`);
}

export function doIsDomainIntroduced(req: XsRequest): Uint8Array | XsErrno {
  const arg = oneArg(req.payload);
  if (arg === null) return 'EINVAL';
  let domid = u32(atoi(arg));
  if (domid === DOMID_SELF) domid = req.conn.domid;
  return nulTerminated(req.d.domains.isIntroduced(domid) ? 'T' : 'F');
}

