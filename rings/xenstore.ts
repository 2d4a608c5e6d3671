// The XenStore page a guest shares with xenstored (io/xs_wire.h, struct
// xenstore_domain_interface): a request ring to the daemon and a response ring back,
// byte rings of XENSTORE_RING_SIZE with indices masked by MASK_XENSTORE_IDX, plus the
// server_features, connection and error words; and the xsd_sockmsg header that frames
// every message on them. rings/ layer: imports only hypervisor/public/.
//
// As Xen 4.17's header (the one installed): no evtchn_port word after `error`, and
// message types up to XS_DIRECTORY_PART.

import { struct } from '../hypervisor/public/layout.ts';
import type { ByteRing } from './byte-ring.ts';

export const XENSTORE_RING_SIZE = 1024;
/** Larger payloads are a protocol violation (the connection is dropped). */
export const XENSTORE_PAYLOAD_MAX = 4096;
/** Longer paths get an error back. */
export const XENSTORE_ABS_PATH_MAX = 3072;
export const XENSTORE_REL_PATH_MAX = 2048;

// server_features bits.
export const XENSTORE_SERVER_FEATURE_RECONNECTION = 1;
export const XENSTORE_SERVER_FEATURE_ERROR = 2;

// connection values.
export const XENSTORE_CONNECTED = 0;
export const XENSTORE_RECONNECT = 1;

// error values.
export const XENSTORE_ERROR_NONE = 0;
export const XENSTORE_ERROR_COMM = 1;
export const XENSTORE_ERROR_RINGIDX = 2;
export const XENSTORE_ERROR_PROTO = 3;

// enum xsd_sockmsg_type.
export const XS_CONTROL = 0;
export const XS_DEBUG = XS_CONTROL;
export const XS_DIRECTORY = 1;
export const XS_READ = 2;
export const XS_GET_PERMS = 3;
export const XS_WATCH = 4;
export const XS_UNWATCH = 5;
export const XS_TRANSACTION_START = 6;
export const XS_TRANSACTION_END = 7;
export const XS_INTRODUCE = 8;
export const XS_RELEASE = 9;
export const XS_GET_DOMAIN_PATH = 10;
export const XS_WRITE = 11;
export const XS_MKDIR = 12;
export const XS_RM = 13;
export const XS_SET_PERMS = 14;
export const XS_WATCH_EVENT = 15;
export const XS_ERROR = 16;
export const XS_IS_DOMAIN_INTRODUCED = 17;
export const XS_RESUME = 18;
export const XS_SET_TARGET = 19;
/** 20 was XS_RESTRICT, removed. */
export const XS_RESET_WATCHES = 21;
export const XS_DIRECTORY_PART = 22;
export const XS_TYPE_COUNT = 23;
export const XS_INVALID = 0xffff;

// enum xs_watch_type: the fields of an XS_WATCH_EVENT payload.
export const XS_WATCH_PATH = 0;
export const XS_WATCH_TOKEN = 1;

export const XENSTORE_DOMAIN_INTERFACE = struct('struct xenstore_domain_interface', 2076, {
  req: [0, 1024],
  rsp: [1024, 1024],
  req_cons: [2048, 4],
  req_prod: [2052, 4],
  rsp_cons: [2056, 4],
  rsp_prod: [2060, 4],
  server_features: [2064, 4],
  connection: [2068, 4],
  error: [2072, 4],
});

/** The header before every message's payload: XS_* type, request and transaction ids, payload length. */
export const XSD_SOCKMSG = struct('struct xsd_sockmsg', 16, {
  type: [0, 4],
  req_id: [4, 4],
  tx_id: [8, 4],
  len: [12, 4],
});

const F = XENSTORE_DOMAIN_INTERFACE.fields;

/** Guest to xenstored. */
export const XENSTORE_REQ: ByteRing = Object.freeze({
  name: 'req', data: F.req.offset, size: F.req.size, cons: F.req_cons.offset, prod: F.req_prod.offset,
});

/** xenstored to guest: replies and watch events. */
export const XENSTORE_RSP: ByteRing = Object.freeze({
  name: 'rsp', data: F.rsp.offset, size: F.rsp.size, cons: F.rsp_cons.offset, prod: F.rsp_prod.offset,
});

/** MASK_XENSTORE_IDX. */
export function maskXenstoreIdx(idx: number): number {
  return (idx & (XENSTORE_RING_SIZE - 1)) >>> 0;
}
