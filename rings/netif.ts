// The network rings (io/netif.h): the transmit ring (the front end's packets out, in
// slots of one granted fragment each) and the receive ring (the front end posts empty
// granted pages, the back end fills them), the extra-info slot that follows a packet's
// first slot, flags and status codes; encoders and decoders into a page or a private
// buffer. rings/ layer: imports only hypervisor/public/.

import { struct } from '../hypervisor/public/layout.ts';
import type { ByteAccess } from './page.ts';
import { defineRingTypes } from './sring.ts';

/** Slots a back end must accept for one packet (io/netif.h). */
export const XEN_NETIF_NR_SLOTS_MIN = 18;
/** The largest packet on the transmit ring. */
export const XEN_NETIF_MAX_TX_SIZE = 0xffff;

// io/netif.h: netif_tx_request.flags.
export const NETTXF_csum_blank = 1 << 0;
export const NETTXF_data_validated = 1 << 1;
/** The packet continues in the next slot. */
export const NETTXF_more_data = 1 << 2;
/** The next slot is a netif_extra_info. */
export const NETTXF_extra_info = 1 << 3;

// io/netif.h: netif_rx_response.flags.
export const NETRXF_data_validated = 1 << 0;
export const NETRXF_csum_blank = 1 << 1;
export const NETRXF_more_data = 1 << 2;
export const NETRXF_extra_info = 1 << 3;
export const NETRXF_gso_prefix = 1 << 4;

// io/netif.h: netif_extra_info.type and .flags.
export const XEN_NETIF_EXTRA_TYPE_NONE = 0;
export const XEN_NETIF_EXTRA_TYPE_GSO = 1;
export const XEN_NETIF_EXTRA_TYPE_MCAST_ADD = 2;
export const XEN_NETIF_EXTRA_TYPE_MCAST_DEL = 3;
export const XEN_NETIF_EXTRA_TYPE_HASH = 4;
export const XEN_NETIF_EXTRA_TYPE_MAX = 5;
/** Another extra-info slot follows. */
export const XEN_NETIF_EXTRA_FLAG_MORE = 1 << 0;

// io/netif.h: netif_extra_info.u.gso.type.
export const XEN_NETIF_GSO_TYPE_NONE = 0;
export const XEN_NETIF_GSO_TYPE_TCPV4 = 1;
export const XEN_NETIF_GSO_TYPE_TCPV6 = 2;

// io/netif.h: response status (rx: > 0 is the byte count).
export const NETIF_RSP_DROPPED = -2;
export const NETIF_RSP_ERROR = -1;
export const NETIF_RSP_OKAY = 0;
/** The response to an extra-info slot. */
export const NETIF_RSP_NULL = 1;

/** One slot of a packet to send: `size` bytes at `offset` of frame `gref` (the first slot: the whole packet's size). */
export const NETIF_TX_REQUEST = struct('struct netif_tx_request', 12, {
  gref: [0, 4],
  offset: [4, 2],
  flags: [6, 2],
  id: [8, 2],
  size: [10, 2],
});

export const NETIF_TX_RESPONSE = struct('struct netif_tx_response', 4, {
  id: [0, 2],
  status: [2, 2],
});

/** An empty granted page posted for the back end to receive into. */
export const NETIF_RX_REQUEST = struct('struct netif_rx_request', 8, {
  id: [0, 2],
  pad: [2, 2],
  gref: [4, 4],
});

export const NETIF_RX_RESPONSE = struct('struct netif_rx_response', 8, {
  id: [0, 2],
  offset: [2, 2],
  flags: [4, 2],
  status: [6, 2],
});

/** Occupies a tx request slot (or an rx response slot) after a slot flagged extra_info. */
export const NETIF_EXTRA_INFO = struct('struct netif_extra_info', 8, {
  type: [0, 1],
  flags: [1, 1],
  u: [2, 6],
  'u.gso.size': [2, 2],
  'u.gso.type': [4, 1],
  'u.gso.pad': [5, 1],
  'u.gso.features': [6, 2],
  'u.mcast.addr': [2, 6],
  'u.hash.type': [2, 1],
  'u.hash.algorithm': [3, 1],
  'u.hash.value': [4, 4],
  'u.pad': [2, 6],
});

const TX_TYPES = defineRingTypes('netif_tx', NETIF_TX_REQUEST, NETIF_TX_RESPONSE, 4);
/** The transmit ring: 12-byte slots, 256 to a page. */
export const NETIF_TX_RING = TX_TYPES.format;
export const NETIF_TX_SRING_ENTRY = TX_TYPES.entry;
export const NETIF_TX_SRING = TX_TYPES.sring;

const RX_TYPES = defineRingTypes('netif_rx', NETIF_RX_REQUEST, NETIF_RX_RESPONSE, 4);
/** The receive ring: 8-byte slots, 256 to a page. */
export const NETIF_RX_RING = RX_TYPES.format;
export const NETIF_RX_SRING_ENTRY = RX_TYPES.entry;
export const NETIF_RX_SRING = RX_TYPES.sring;

const TQ = NETIF_TX_REQUEST.fields;
const TP = NETIF_TX_RESPONSE.fields;
const RQ = NETIF_RX_REQUEST.fields;
const RP = NETIF_RX_RESPONSE.fields;
const X = NETIF_EXTRA_INFO.fields;

const s16 = (x: number): number => (x << 16) >> 16;

export class NetifTxRequest {
  gref = 0;
  offset = 0;
  flags = 0;
  id = 0;
  size = 0;
}

export function decodeNetifTxRequest(src: ByteAccess, off: number, out: NetifTxRequest): NetifTxRequest {
  out.gref = src.read32(off + TQ.gref.offset);
  out.offset = src.read16(off + TQ.offset.offset);
  out.flags = src.read16(off + TQ.flags.offset);
  out.id = src.read16(off + TQ.id.offset);
  out.size = src.read16(off + TQ.size.offset);
  return out;
}

export function encodeNetifTxRequest(dst: ByteAccess, off: number, req: NetifTxRequest): void {
  dst.write32(off + TQ.gref.offset, req.gref);
  dst.write16(off + TQ.offset.offset, req.offset);
  dst.write16(off + TQ.flags.offset, req.flags);
  dst.write16(off + TQ.id.offset, req.id);
  dst.write16(off + TQ.size.offset, req.size);
}

export class NetifTxResponse {
  id = 0;
  status = 0;
}

export function encodeNetifTxResponse(dst: ByteAccess, off: number, id: number, status: number): void {
  dst.write16(off + TP.id.offset, id);
  dst.write16(off + TP.status.offset, status & 0xffff);
}

export function decodeNetifTxResponse(src: ByteAccess, off: number, out: NetifTxResponse): NetifTxResponse {
  out.id = src.read16(off + TP.id.offset);
  out.status = s16(src.read16(off + TP.status.offset));
  return out;
}

export class NetifRxRequest {
  id = 0;
  gref = 0;
}

export function encodeNetifRxRequest(dst: ByteAccess, off: number, id: number, gref: number): void {
  dst.write16(off + RQ.id.offset, id);
  dst.write32(off + RQ.gref.offset, gref);
}

export function decodeNetifRxRequest(src: ByteAccess, off: number, out: NetifRxRequest): NetifRxRequest {
  out.id = src.read16(off + RQ.id.offset);
  out.gref = src.read32(off + RQ.gref.offset);
  return out;
}

/** status > 0 is the bytes received at `offset` of the posted page; < 0 a NETIF_RSP_* error. */
export class NetifRxResponse {
  id = 0;
  offset = 0;
  flags = 0;
  status = 0;
}

export function encodeNetifRxResponse(dst: ByteAccess, off: number, rsp: NetifRxResponse): void {
  dst.write16(off + RP.id.offset, rsp.id);
  dst.write16(off + RP.offset.offset, rsp.offset);
  dst.write16(off + RP.flags.offset, rsp.flags);
  dst.write16(off + RP.status.offset, rsp.status & 0xffff);
}

export function decodeNetifRxResponse(src: ByteAccess, off: number, out: NetifRxResponse): NetifRxResponse {
  out.id = src.read16(off + RP.id.offset);
  out.offset = src.read16(off + RP.offset.offset);
  out.flags = src.read16(off + RP.flags.offset);
  out.status = s16(src.read16(off + RP.status.offset));
  return out;
}

/** A netif_extra_info; which union member is meaningful depends on `type`. */
export class NetifExtraInfo {
  type = 0;
  flags = 0;
  /** GSO: the segment size, XEN_NETIF_GSO_TYPE_*, and the features word. */
  gsoSize = 0;
  gsoType = 0;
  gsoFeatures = 0;
  /** MCAST_ADD / MCAST_DEL: the Ethernet address. */
  readonly mcastAddr = new Uint8Array(6);
  /** HASH: the hash type, the algorithm, and the 32-bit value (little-endian). */
  hashType = 0;
  hashAlgorithm = 0;
  hashValue = 0;
}

export function decodeNetifExtraInfo(src: ByteAccess, off: number, out: NetifExtraInfo): NetifExtraInfo {
  out.type = src.read8(off + X.type.offset);
  out.flags = src.read8(off + X.flags.offset);
  out.gsoSize = src.read16(off + X['u.gso.size'].offset);
  out.gsoType = src.read8(off + X['u.gso.type'].offset);
  out.gsoFeatures = src.read16(off + X['u.gso.features'].offset);
  for (let i = 0; i < 6; i++) out.mcastAddr[i] = src.read8(off + X['u.mcast.addr'].offset + i);
  out.hashType = src.read8(off + X['u.hash.type'].offset);
  out.hashAlgorithm = src.read8(off + X['u.hash.algorithm'].offset);
  out.hashValue = src.read32(off + X['u.hash.value'].offset);
  return out;
}

/** Writes type, flags and the union member that `type` selects (NONE or unknown: six zero bytes). */
export function encodeNetifExtraInfo(dst: ByteAccess, off: number, info: NetifExtraInfo): void {
  dst.write8(off + X.type.offset, info.type);
  dst.write8(off + X.flags.offset, info.flags);
  const u = off + X.u.offset;
  switch (info.type) {
    case XEN_NETIF_EXTRA_TYPE_GSO:
      dst.write16(off + X['u.gso.size'].offset, info.gsoSize);
      dst.write8(off + X['u.gso.type'].offset, info.gsoType);
      dst.write8(off + X['u.gso.pad'].offset, 0);
      dst.write16(off + X['u.gso.features'].offset, info.gsoFeatures);
      break;
    case XEN_NETIF_EXTRA_TYPE_MCAST_ADD:
    case XEN_NETIF_EXTRA_TYPE_MCAST_DEL:
      for (let i = 0; i < 6; i++) dst.write8(off + X['u.mcast.addr'].offset + i, info.mcastAddr[i]);
      break;
    case XEN_NETIF_EXTRA_TYPE_HASH:
      dst.write8(off + X['u.hash.type'].offset, info.hashType);
      dst.write8(off + X['u.hash.algorithm'].offset, info.hashAlgorithm);
      dst.write32(off + X['u.hash.value'].offset, info.hashValue);
      break;
    default:
      for (let i = 0; i < 6; i++) dst.write8(u + i, 0);
  }
}
