// The shared ring page of io/ring.h (DEFINE_RING_TYPES): a 64-byte header of producer
// and event indices, then ring[] of slots, each a union of one request and one response.
// What a ring carries is a RingFormat; FrontRing and BackRing run the protocol on it.
// rings/ layer: imports only hypervisor/public/.

import { struct, type StructLayout } from '../hypervisor/public/layout.ts';
import { RING_PAGE_BYTES, type PageView } from './page.ts';

/** The header every `struct <name>_sring` starts with: indices, the private union, padding. */
const SRING_HEADER = {
  req_prod: [0, 4],
  req_event: [4, 4],
  rsp_prod: [8, 4],
  rsp_event: [12, 4],
  pvt: [16, 4],
  __pad: [20, 44],
} as const;

// Header offsets (checked against Xen through every <name>_sring layout).
export const REQ_PROD = SRING_HEADER.req_prod[0];
export const REQ_EVENT = SRING_HEADER.req_event[0];
export const RSP_PROD = SRING_HEADER.rsp_prod[0];
export const RSP_EVENT = SRING_HEADER.rsp_event[0];
/** offsetof(struct <name>_sring, ring): where slot 0 starts. */
export const SRING_RING_OFFSET = 64;

/** What one ring carries: its name in DEFINE_RING_TYPES and the sizes of its messages. */
export interface RingFormat {
  /** The DEFINE_RING_TYPES name ("blkif", "netif_tx"). */
  readonly name: string;
  /** sizeof(union <name>_sring_entry): the larger message, rounded up to its alignment. */
  readonly slotSize: number;
  /** sizeof the request type: the bytes RING_COPY_REQUEST copies. */
  readonly requestSize: number;
  /** sizeof the response type: the bytes RING_COPY_RESPONSE copies. */
  readonly responseSize: number;
  /** Slots in a one-page ring (__CONST_RING_SIZE(name, 4096)). */
  readonly nrEnts: number;
}

/** __RD32: `x` rounded down to a power of two (0 stays 0). */
export function rounddownPow2(x: number): number {
  const v = x >>> 0;
  return v === 0 ? 0 : (0x80000000 >>> Math.clz32(v)) >>> 0;
}

/** __CONST_RING_SIZE: the slots of `slotSize` bytes that fit after the header, rounded down to a power of two. */
export function ringSize(slotSize: number, pageBytes = RING_PAGE_BYTES): number {
  return rounddownPow2(Math.floor((pageBytes - SRING_RING_OFFSET) / slotSize));
}

/** What DEFINE_RING_TYPES(name, req, rsp) gives: the format and the C layouts it declares. */
export interface RingTypes {
  readonly format: RingFormat;
  /** `union <name>_sring_entry`. */
  readonly entry: StructLayout;
  /** `struct <name>_sring`, declared with ring[1]: its sizeof holds one slot. */
  readonly sring: StructLayout;
}

/**
 * DEFINE_RING_TYPES for a ring of `request`s and `response`s. `align` is the stricter
 * alignment of the two types (the union's): it rounds the slot up, and the sring too.
 */
export function defineRingTypes(name: string, request: StructLayout, response: StructLayout, align: number): RingTypes {
  const slotSize = Math.ceil(Math.max(request.size, response.size) / align) * align;
  const format: RingFormat = Object.freeze({
    name,
    slotSize,
    requestSize: request.size,
    responseSize: response.size,
    nrEnts: ringSize(slotSize),
  });
  const entry = struct(`union ${name}_sring_entry`, slotSize, {
    req: [0, request.size],
    rsp: [0, response.size],
  });
  const sring = struct(`struct ${name}_sring`, Math.ceil((SRING_RING_OFFSET + slotSize) / align) * align, {
    ...SRING_HEADER,
    'ring[0]': [SRING_RING_OFFSET, slotSize],
  });
  return Object.freeze({ format, entry, sring });
}

/**
 * SHARED_RING_INIT: the front end's initialisation of a fresh ring page. Both producer
 * indices 0, both event indices 1 (the first message notifies), the private union and
 * the padding zeroed. Slots are left as they are.
 */
export function sharedRingInit(page: PageView): void {
  page.write32(REQ_PROD, 0);
  page.write32(RSP_PROD, 0);
  page.write32(REQ_EVENT, 1);
  page.write32(RSP_EVENT, 1);
  const pvt = SRING_HEADER.pvt[0];
  for (let off = pvt; off < SRING_RING_OFFSET; off += 4) page.write32(off, 0);
}

/** The byte offset of slot `idx & (nrEnts - 1)` (RING_GET_REQUEST / RING_GET_RESPONSE). */
export function slotOffset(format: RingFormat, idx: number): number {
  return SRING_RING_OFFSET + (idx & (format.nrEnts - 1)) * format.slotSize;
}

/**
 * Why a side stopped using a ring: the peer published a producer index no well-behaved
 * peer could (more messages than slots, or an index that went backwards). The side's
 * driver logs it; the ring is dead from then on.
 */
export interface RingFault {
  /** The shared index that was impossible. */
  readonly index: 'req_prod' | 'rsp_prod';
  /** Its value, as read once from the page. */
  readonly value: number;
  /** The lowest and highest values it could have had (mod 2^32, inclusive). */
  readonly low: number;
  readonly high: number;
  readonly message: string;
}

const hex32 = (x: number): string => `0x${(x >>> 0).toString(16).padStart(8, '0')}`;

/** A RingFault for `index` read as `value` when only [low, high] was possible. */
export function ringFault(index: 'req_prod' | 'rsp_prod', value: number, low: number, high: number): RingFault {
  return Object.freeze({
    index, value, low, high,
    message: `${index} ${hex32(value)} is outside ${hex32(low)}..${hex32(high)}`,
  });
}
