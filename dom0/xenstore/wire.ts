// The xs_wire protocol as xenstored speaks it (io/xs_wire.h): the 16-byte header, the
// payload limit, error replies by errno name, and the NUL conventions of the payloads.
// dom0/xenstore layer: imports only rings/ (the header layout and message types).

import { XSD_SOCKMSG } from '../../rings/xenstore.ts';

export {
  XENSTORE_PAYLOAD_MAX, XS_CONTROL, XS_DIRECTORY, XS_DIRECTORY_PART, XS_ERROR, XS_GET_DOMAIN_PATH, XS_GET_PERMS,
  XS_INTRODUCE, XS_IS_DOMAIN_INTRODUCED, XS_MKDIR, XS_READ, XS_RELEASE, XS_RESET_WATCHES, XS_RESUME, XS_RM,
  XS_SET_PERMS, XS_SET_TARGET, XS_TRANSACTION_END, XS_TRANSACTION_START, XS_UNWATCH, XS_WATCH, XS_WATCH_EVENT,
  XS_WRITE,
} from '../../rings/xenstore.ts';

// Message types added after 4.17 (upstream xs_wire.h); the installed 4.17 header stops at 22.
export const XS_GET_FEATURE = 23;
export const XS_SET_FEATURE = 24;
export const XS_GET_QUOTA = 25;
export const XS_SET_QUOTA = 26;
/** One past the highest type this xenstored knows. */
export const XS_TYPE_LIMIT = 27;

/** sizeof(struct xsd_sockmsg). */
export const XS_HEADER_BYTES = XSD_SOCKMSG.size;

/**
 * xsd_errors[]: the errno names an ERROR reply may carry, with Linux's numbers. An error
 * reply's payload is the name and a NUL.
 */
export const XSD_ERRORS = {
  EINVAL: 22, EACCES: 13, EEXIST: 17, EISDIR: 21, ENOENT: 2, ENOMEM: 12, ENOSPC: 28, EIO: 5, ENOTEMPTY: 39,
  ENOSYS: 38, EROFS: 30, EBUSY: 16, EAGAIN: 11, EISCONN: 106, E2BIG: 7, EPERM: 1,
} as const;
export type XsErrno = keyof typeof XSD_ERRORS;

/** A message's header fields (the payload travels beside it). */
export interface XsHeader {
  type: number;
  reqId: number;
  txId: number;
  len: number;
}

/** Reads the header at `off` of `bytes` (little-endian, as on x86). */
export function readHeader(bytes: Uint8Array, off: number, out: XsHeader): XsHeader {
  const dv = new DataView(bytes.buffer, bytes.byteOffset + off, XS_HEADER_BYTES);
  out.type = dv.getUint32(0, true);
  out.reqId = dv.getUint32(4, true);
  out.txId = dv.getUint32(8, true);
  out.len = dv.getUint32(12, true);
  return out;
}

/** Writes a header into `bytes` at `off`. */
export function writeHeader(bytes: Uint8Array, off: number, type: number, reqId: number, txId: number, len: number): void {
  const dv = new DataView(bytes.buffer, bytes.byteOffset + off, XS_HEADER_BYTES);
  dv.setUint32(0, type >>> 0, true);
  dv.setUint32(4, reqId >>> 0, true);
  dv.setUint32(8, txId >>> 0, true);
  dv.setUint32(12, len >>> 0, true);
}

/** A whole message, header and payload, as one buffer. */
export function encodeMessage(type: number, reqId: number, txId: number, payload: Uint8Array): Uint8Array {
  const msg = new Uint8Array(XS_HEADER_BYTES + payload.length);
  writeHeader(msg, 0, type, reqId, txId, payload.length);
  msg.set(payload, XS_HEADER_BYTES);
  return msg;
}

const encoder = new TextEncoder();
const decoder = new TextDecoder('latin1');

/** Bytes of a string of single-byte characters (paths, tokens, decimal numbers). */
export function latin1(s: string): Uint8Array {
  const out = new Uint8Array(s.length);
  for (let i = 0; i < s.length; i++) out[i] = s.charCodeAt(i) & 0xff;
  return out;
}

/** The string of bytes, one character per byte (so any byte survives a round trip). */
export function fromLatin1(bytes: Uint8Array): string {
  return decoder.decode(bytes);
}

/** UTF-8 bytes of text meant for people (CONTROL replies). */
export function utf8(s: string): Uint8Array {
  return encoder.encode(s);
}

/** Strings each followed by a NUL, as in DIRECTORY and GET_PERMS replies and "OK". */
export function nulTerminated(...strings: string[]): Uint8Array {
  return latin1(strings.map((s) => `${s}\0`).join(''));
}

/**
 * Splits a payload into its NUL-terminated strings (xs_count_strings / get_strings): the
 * strings before each NUL, and whatever follows the last NUL as `rest` (empty when the
 * payload ends with a NUL).
 */
export function splitStrings(payload: Uint8Array): { strings: string[]; rest: Uint8Array } {
  const strings: string[] = [];
  let start = 0;
  for (let i = 0; i < payload.length; i++) {
    if (payload[i] === 0) {
      strings.push(fromLatin1(payload.subarray(start, i)));
      start = i + 1;
    }
  }
  return { strings, rest: payload.subarray(start) };
}

/** onearg(): the payload as one NUL-terminated string, or null when it is not exactly that. */
export function oneArg(payload: Uint8Array): string | null {
  if (payload.length === 0 || payload[payload.length - 1] !== 0) return null;
  const nul = payload.indexOf(0);
  if (nul !== payload.length - 1) return null;
  return fromLatin1(payload.subarray(0, nul));
}

/** The name of each message type, for traces (XS_ dropped). */
export const XS_TYPE_NAMES: readonly string[] = [
  'CONTROL', 'DIRECTORY', 'READ', 'GET_PERMS', 'WATCH', 'UNWATCH', 'TRANSACTION_START', 'TRANSACTION_END',
  'INTRODUCE', 'RELEASE', 'GET_DOMAIN_PATH', 'WRITE', 'MKDIR', 'RM', 'SET_PERMS', 'WATCH_EVENT', 'ERROR',
  'IS_DOMAIN_INTRODUCED', 'RESUME', 'SET_TARGET', 'RESTRICT', 'RESET_WATCHES', 'DIRECTORY_PART', 'GET_FEATURE',
  'SET_FEATURE', 'GET_QUOTA', 'SET_QUOTA',
];

/** A payload shown to people: NULs as "|" (as xs_wire's docs write them), other bytes escaped. */
export function showPayload(payload: Uint8Array, max = 256): string {
  let s = '';
  const n = Math.min(payload.length, max);
  for (let i = 0; i < n; i++) {
    const c = payload[i];
    s += c === 0 ? '|' : c >= 0x20 && c < 0x7f && c !== 0x5c && c !== 0x7c ? String.fromCharCode(c) : `\\x${c.toString(16).padStart(2, '0')}`;
  }
  return payload.length > max ? `${s}...` : s;
}
