// Watches (xenstored_watch.c): WATCH `path|token|` sets one and fires it once at once;
// UNWATCH removes it; RESET_WATCHES drops every watch and transaction of the connection.
// dom0/xenstore layer.

import { watchMemory } from './connection.ts';
import type { XsRequest } from './handlers.ts';
import { canonicalize, domainPath, isSpecial, isValidNodeName } from './paths.ts';
import { type XsErrno, nulTerminated, splitStrings } from './wire.ts';

const OK = nulTerminated('OK');

/**
 * The watch path as stored and whether it was given relative: "@" names as they are (any
 * characters, within path-max), anything else made absolute and validated (null when invalid).
 */
function watchPath(domid: number, raw: string, validate: boolean, pathMax: number): { name: string; relative: boolean } | null {
  if (isSpecial(raw)) return validate && raw.length > pathMax ? null : { name: raw, relative: false };
  const name = canonicalize(domid, raw);
  if (validate && !isValidNodeName(name, false, pathMax)) return null;
  return { name, relative: name !== raw };
}

/**
 * WATCH `path|token|` (4.17 takes no depth). Duplicates EEXIST; past the quota E2BIG;
 * without room in the domain's memory quota for its path and token, ENOMEM.
 */
export function doWatch(req: XsRequest): Uint8Array | XsErrno {
  const { d, conn } = req;
  const { strings, rest } = splitStrings(req.payload);
  if (strings.length !== 2 || rest.length !== 0) return 'EINVAL';
  const w = watchPath(conn.domid, strings[0], true, d.quotas.pathMax);
  if (w === null) return 'EINVAL';
  const token = strings[1];
  for (const x of conn.watches) if (x.name === w.name && x.token === token) return 'EEXIST';
  const dom = d.domains.get(conn.domid);
  if (!conn.privileged && dom.watches > d.quotasOf(conn.domid).watches) return 'E2BIG';
  const bytes = watchMemory(w.name, token);
  if (!conn.privileged && !d.memoryAllows(conn.domid, bytes)) return 'ENOMEM';
  conn.watches.push({ name: w.name, token, relativeTo: w.relative ? domainPath(conn.domid) : null });
  dom.watches++;
  dom.memory += bytes;
  return OK;
}

/** After WATCH's reply: the initial event, with the path as the client gave it. */
export function afterWatch(req: XsRequest): void {
  const { strings } = splitStrings(req.payload);
  const w = req.conn.watches[req.conn.watches.length - 1];
  if (w === undefined || w.token !== strings[1]) return;
  req.d.sendEvent(req.conn, w.name, w.token, w.relativeTo);
}

export function doUnwatch(req: XsRequest): Uint8Array | XsErrno {
  const { d, conn } = req;
  const { strings, rest } = splitStrings(req.payload);
  if (strings.length !== 2 || rest.length !== 0) return 'EINVAL';
  // Not validated: an invalid path matches no watch (ENOENT).
  const w = watchPath(conn.domid, strings[0], false, d.quotas.pathMax);
  if (w === null) return 'ENOENT';
  const i = conn.watches.findIndex((x) => x.name === w.name && x.token === strings[1]);
  if (i < 0) return 'ENOENT';
  conn.watches.splice(i, 1);
  const dom = d.domains.get(conn.domid);
  dom.watches--;
  dom.memory -= watchMemory(w.name, strings[1]);
  return OK;
}

export function doResetWatches(req: XsRequest): Uint8Array | XsErrno {
  req.d.dropWatches(req.conn);
  req.d.endTransactions(req.conn);
  return OK;
}
