// The block-device ring (io/blkif.h): request and response layouts at Xen's x86-64
// offsets, operation and status codes, encoders and decoders into a page or a private
// buffer, and the checks a back end makes on a request it has copied out.
// rings/ layer: imports only hypervisor/public/.
//
// Decoding fills caller-owned objects (no allocation per message). 64-bit fields (id,
// sector numbers) are kept as exact 32-bit halves: id is the front end's own value and
// must be echoed bit for bit.

import { nest, struct } from '../hypervisor/public/layout.ts';
import type { ByteAccess } from './page.ts';
import { defineRingTypes } from './sring.ts';

// io/blkif.h: request codes.
export const BLKIF_OP_READ = 0;
export const BLKIF_OP_WRITE = 1;
export const BLKIF_OP_WRITE_BARRIER = 2;
export const BLKIF_OP_FLUSH_DISKCACHE = 3;
export const BLKIF_OP_RESERVED_1 = 4;
export const BLKIF_OP_DISCARD = 5;
export const BLKIF_OP_INDIRECT = 6;

export const BLKIF_MAX_SEGMENTS_PER_REQUEST = 11;
export const BLKIF_MAX_INDIRECT_PAGES_PER_REQUEST = 8;
/** blkif_request_discard.flag: the discarded sectors must become unrecoverable. */
export const BLKIF_DISCARD_SECURE = 1 << 0;

// io/blkif.h: blkif_response.status.
export const BLKIF_RSP_EOPNOTSUPP = -2;
export const BLKIF_RSP_ERROR = -1;
export const BLKIF_RSP_OKAY = 0;

// io/blkif.h: bits of the back end's "info" node.
export const VDISK_CDROM = 0x1;
export const VDISK_REMOVABLE = 0x2;
export const VDISK_READONLY = 0x4;

/** One page of a request: sectors first_sect..last_sect (inclusive, 512 bytes each) of frame gref. */
export const BLKIF_REQUEST_SEGMENT = struct('struct blkif_request_segment', 8, {
  gref: [0, 4],
  first_sect: [4, 1],
  last_sect: [5, 1],
});

export const BLKIF_REQUEST = struct('struct blkif_request', 112, {
  operation: [0, 1],
  nr_segments: [1, 1],
  handle: [2, 2],
  id: [8, 8],
  sector_number: [16, 8],
  seg: [24, 88],
  ...nest('seg[0]', 24, BLKIF_REQUEST_SEGMENT),
  ...nest('seg[10]', 104, BLKIF_REQUEST_SEGMENT),
});

export const BLKIF_REQUEST_DISCARD = struct('struct blkif_request_discard', 32, {
  operation: [0, 1],
  flag: [1, 1],
  handle: [2, 2],
  id: [8, 8],
  sector_number: [16, 8],
  nr_sectors: [24, 8],
});

export const BLKIF_REQUEST_INDIRECT = struct('struct blkif_request_indirect', 64, {
  operation: [0, 1],
  indirect_op: [1, 1],
  nr_segments: [2, 2],
  id: [8, 8],
  sector_number: [16, 8],
  handle: [24, 2],
  indirect_grefs: [28, 32],
});

export const BLKIF_RESPONSE = struct('struct blkif_response', 16, {
  id: [0, 8],
  operation: [8, 1],
  status: [10, 2],
});

const BLKIF_TYPES = defineRingTypes('blkif', BLKIF_REQUEST, BLKIF_RESPONSE, 8);
/** The blkif ring: 112-byte slots, 32 to a page. */
export const BLKIF_RING = BLKIF_TYPES.format;
export const BLKIF_SRING_ENTRY = BLKIF_TYPES.entry;
export const BLKIF_SRING = BLKIF_TYPES.sring;

/** Segments one indirect page holds: PAGE_SIZE / sizeof(struct blkif_request_segment). */
export const BLKIF_SEGS_PER_INDIRECT_FRAME = 4096 / BLKIF_REQUEST_SEGMENT.size;
/** The last 512-byte sector of a 4 KiB frame. */
const LAST_SECT_IN_PAGE = (4096 >> 9) - 1;

// Field offsets of the messages on the hot path, read once from the checked layouts.
const R = BLKIF_REQUEST.fields;
const REQ_OPERATION = R.operation.offset;
const REQ_NR_SEGMENTS = R.nr_segments.offset;
const REQ_HANDLE = R.handle.offset;
const REQ_ID = R.id.offset;
const REQ_SECTOR = R.sector_number.offset;
const REQ_SEG = R.seg.offset;
const SEG_GREF = BLKIF_REQUEST_SEGMENT.fields.gref.offset;
const SEG_FIRST = BLKIF_REQUEST_SEGMENT.fields.first_sect.offset;
const SEG_LAST = BLKIF_REQUEST_SEGMENT.fields.last_sect.offset;
const SEG_SIZE = BLKIF_REQUEST_SEGMENT.size;
const RSP_ID = BLKIF_RESPONSE.fields.id.offset;
const RSP_OPERATION = BLKIF_RESPONSE.fields.operation.offset;
const RSP_STATUS = BLKIF_RESPONSE.fields.status.offset;
const D = BLKIF_REQUEST_DISCARD.fields;
const I = BLKIF_REQUEST_INDIRECT.fields;

/** A blkif_request (read, write, write barrier, flush) as a back end acts on it. */
export class BlkifRequest {
  operation = 0;
  nrSegments = 0;
  handle = 0;
  idLo = 0;
  idHi = 0;
  sectorLo = 0;
  sectorHi = 0;
  /** seg[i].gref, first_sect, last_sect for i < nrSegments (at most 11 are decoded). */
  readonly gref = new Uint32Array(BLKIF_MAX_SEGMENTS_PER_REQUEST);
  readonly firstSect = new Uint8Array(BLKIF_MAX_SEGMENTS_PER_REQUEST);
  readonly lastSect = new Uint8Array(BLKIF_MAX_SEGMENTS_PER_REQUEST);
}

/** Fills `out` from the struct blkif_request at `off`; segments past 11 are not read. */
export function decodeBlkifRequest(src: ByteAccess, off: number, out: BlkifRequest): BlkifRequest {
  out.operation = src.read8(off + REQ_OPERATION);
  out.nrSegments = src.read8(off + REQ_NR_SEGMENTS);
  out.handle = src.read16(off + REQ_HANDLE);
  out.idLo = src.read32(off + REQ_ID);
  out.idHi = src.read32(off + REQ_ID + 4);
  out.sectorLo = src.read32(off + REQ_SECTOR);
  out.sectorHi = src.read32(off + REQ_SECTOR + 4);
  const n = out.nrSegments < BLKIF_MAX_SEGMENTS_PER_REQUEST ? out.nrSegments : BLKIF_MAX_SEGMENTS_PER_REQUEST;
  for (let i = 0, s = off + REQ_SEG; i < n; i++, s += SEG_SIZE) {
    out.gref[i] = src.read32(s + SEG_GREF);
    out.firstSect[i] = src.read8(s + SEG_FIRST);
    out.lastSect[i] = src.read8(s + SEG_LAST);
  }
  return out;
}

/** Writes `req`'s fields and its first nrSegments segments (at most 11); padding is left as it was. */
export function encodeBlkifRequest(dst: ByteAccess, off: number, req: BlkifRequest): void {
  dst.write8(off + REQ_OPERATION, req.operation);
  dst.write8(off + REQ_NR_SEGMENTS, req.nrSegments);
  dst.write16(off + REQ_HANDLE, req.handle);
  dst.write32(off + REQ_ID, req.idLo);
  dst.write32(off + REQ_ID + 4, req.idHi);
  dst.write32(off + REQ_SECTOR, req.sectorLo);
  dst.write32(off + REQ_SECTOR + 4, req.sectorHi);
  const n = Math.min(req.nrSegments, BLKIF_MAX_SEGMENTS_PER_REQUEST);
  for (let i = 0, s = off + REQ_SEG; i < n; i++, s += SEG_SIZE) {
    dst.write32(s + SEG_GREF, req.gref[i]);
    dst.write8(s + SEG_FIRST, req.firstSect[i]);
    dst.write8(s + SEG_LAST, req.lastSect[i]);
  }
}

/** A segment's sector range within its 4 KiB frame: null if sound, else what is wrong. */
export function blkifSegmentError(firstSect: number, lastSect: number): string | null {
  if (lastSect > LAST_SECT_IN_PAGE) return 'last_sect is past the end of the page';
  if (firstSect > lastSect) return 'first_sect is after last_sect';
  return null;
}

/**
 * The checks a back end makes on a copied-out blkif_request before acting on it: a read
 * or write has 1..11 segments, a barrier or flush 0..11, and every segment satisfies
 * first_sect <= last_sect <= 7. Null if sound, else what is wrong (the request is then
 * answered with BLKIF_RSP_ERROR). Whether the back end supports the operation at all is
 * its own business (BLKIF_RSP_EOPNOTSUPP).
 */
export function blkifRequestError(req: BlkifRequest): string | null {
  const op = req.operation;
  if (op !== BLKIF_OP_READ && op !== BLKIF_OP_WRITE && op !== BLKIF_OP_WRITE_BARRIER && op !== BLKIF_OP_FLUSH_DISKCACHE) {
    return 'not a read, write, barrier or flush';
  }
  if (req.nrSegments > BLKIF_MAX_SEGMENTS_PER_REQUEST) return 'more than 11 segments';
  if (req.nrSegments === 0 && (op === BLKIF_OP_READ || op === BLKIF_OP_WRITE)) return 'a read or write with no segment';
  for (let i = 0; i < req.nrSegments; i++) {
    const err = blkifSegmentError(req.firstSect[i], req.lastSect[i]);
    if (err !== null) return err;
  }
  return null;
}

/** The bytes a sound request transfers: 512 per sector over its segments. */
export function blkifRequestBytes(req: BlkifRequest): number {
  let sectors = 0;
  for (let i = 0; i < req.nrSegments; i++) sectors += req.lastSect[i] - req.firstSect[i] + 1;
  return sectors * 512;
}

/** A blkif_request_discard: nr_sectors from sector_number may be thrown away. */
export class BlkifRequestDiscard {
  operation = BLKIF_OP_DISCARD;
  flag = 0;
  handle = 0;
  idLo = 0;
  idHi = 0;
  sectorLo = 0;
  sectorHi = 0;
  nrSectorsLo = 0;
  nrSectorsHi = 0;
}

export function decodeBlkifDiscard(src: ByteAccess, off: number, out: BlkifRequestDiscard): BlkifRequestDiscard {
  out.operation = src.read8(off + D.operation.offset);
  out.flag = src.read8(off + D.flag.offset);
  out.handle = src.read16(off + D.handle.offset);
  out.idLo = src.read32(off + D.id.offset);
  out.idHi = src.read32(off + D.id.offset + 4);
  out.sectorLo = src.read32(off + D.sector_number.offset);
  out.sectorHi = src.read32(off + D.sector_number.offset + 4);
  out.nrSectorsLo = src.read32(off + D.nr_sectors.offset);
  out.nrSectorsHi = src.read32(off + D.nr_sectors.offset + 4);
  return out;
}

export function encodeBlkifDiscard(dst: ByteAccess, off: number, req: BlkifRequestDiscard): void {
  dst.write8(off + D.operation.offset, req.operation);
  dst.write8(off + D.flag.offset, req.flag);
  dst.write16(off + D.handle.offset, req.handle);
  dst.write32(off + D.id.offset, req.idLo);
  dst.write32(off + D.id.offset + 4, req.idHi);
  dst.write32(off + D.sector_number.offset, req.sectorLo);
  dst.write32(off + D.sector_number.offset + 4, req.sectorHi);
  dst.write32(off + D.nr_sectors.offset, req.nrSectorsLo);
  dst.write32(off + D.nr_sectors.offset + 4, req.nrSectorsHi);
}

/** A blkif_request_indirect: its segments live in up to 8 granted pages of blkif_request_segment. */
export class BlkifRequestIndirect {
  operation = BLKIF_OP_INDIRECT;
  indirectOp = 0;
  nrSegments = 0;
  idLo = 0;
  idHi = 0;
  sectorLo = 0;
  sectorHi = 0;
  handle = 0;
  readonly indirectGrefs = new Uint32Array(BLKIF_MAX_INDIRECT_PAGES_PER_REQUEST);
}

export function decodeBlkifIndirect(src: ByteAccess, off: number, out: BlkifRequestIndirect): BlkifRequestIndirect {
  out.operation = src.read8(off + I.operation.offset);
  out.indirectOp = src.read8(off + I.indirect_op.offset);
  out.nrSegments = src.read16(off + I.nr_segments.offset);
  out.idLo = src.read32(off + I.id.offset);
  out.idHi = src.read32(off + I.id.offset + 4);
  out.sectorLo = src.read32(off + I.sector_number.offset);
  out.sectorHi = src.read32(off + I.sector_number.offset + 4);
  out.handle = src.read16(off + I.handle.offset);
  for (let i = 0; i < BLKIF_MAX_INDIRECT_PAGES_PER_REQUEST; i++) {
    out.indirectGrefs[i] = src.read32(off + I.indirect_grefs.offset + 4 * i);
  }
  return out;
}

export function encodeBlkifIndirect(dst: ByteAccess, off: number, req: BlkifRequestIndirect): void {
  dst.write8(off + I.operation.offset, req.operation);
  dst.write8(off + I.indirect_op.offset, req.indirectOp);
  dst.write16(off + I.nr_segments.offset, req.nrSegments);
  dst.write32(off + I.id.offset, req.idLo);
  dst.write32(off + I.id.offset + 4, req.idHi);
  dst.write32(off + I.sector_number.offset, req.sectorLo);
  dst.write32(off + I.sector_number.offset + 4, req.sectorHi);
  dst.write16(off + I.handle.offset, req.handle);
  for (let i = 0; i < BLKIF_MAX_INDIRECT_PAGES_PER_REQUEST; i++) {
    dst.write32(off + I.indirect_grefs.offset + 4 * i, req.indirectGrefs[i]);
  }
}

/** Indirect pages that `nrSegments` segments occupy: ceil(n / 512). */
export function blkifIndirectPages(nrSegments: number): number {
  return Math.ceil(nrSegments / BLKIF_SEGS_PER_INDIRECT_FRAME);
}

/**
 * The header checks on a copied-out indirect request, for a back end that advertised
 * feature-max-indirect-segments = `maxSegments`: the inner operation is a read or a
 * write, with 1..maxSegments segments in at most 8 pages. (Each segment, read from the
 * indirect pages, is then checked with blkifSegmentError.) Null if sound.
 */
export function blkifIndirectError(req: BlkifRequestIndirect, maxSegments: number): string | null {
  if (req.indirectOp !== BLKIF_OP_READ && req.indirectOp !== BLKIF_OP_WRITE) return 'indirect_op is not a read or write';
  if (req.nrSegments === 0) return 'an indirect request with no segment';
  if (req.nrSegments > maxSegments) return 'more segments than feature-max-indirect-segments';
  if (blkifIndirectPages(req.nrSegments) > BLKIF_MAX_INDIRECT_PAGES_PER_REQUEST) return 'more than 8 indirect pages';
  return null;
}

/** A blkif_response: the request's id and operation echoed, and a BLKIF_RSP_* status. */
export class BlkifResponse {
  idLo = 0;
  idHi = 0;
  operation = 0;
  status = 0;
}

/** Writes a blkif_response's fields (padding is left as it was). */
export function encodeBlkifResponse(dst: ByteAccess, off: number, idLo: number, idHi: number, operation: number,
  status: number): void {
  dst.write32(off + RSP_ID, idLo);
  dst.write32(off + RSP_ID + 4, idHi);
  dst.write8(off + RSP_OPERATION, operation);
  dst.write16(off + RSP_STATUS, status & 0xffff);
}

export function decodeBlkifResponse(src: ByteAccess, off: number, out: BlkifResponse): BlkifResponse {
  out.idLo = src.read32(off + RSP_ID);
  out.idHi = src.read32(off + RSP_ID + 4);
  out.operation = src.read8(off + RSP_OPERATION);
  out.status = (src.read16(off + RSP_STATUS) << 16) >> 16;
  return out;
}
