// Guest-side grant tables, as a PV kernel's grant layer writes them: each GNTTABOP's
// array of structs goes into the guest's own memory at a scratch address and the
// hypercall gets a pointer; grant entries are written in the guest's mapping of its
// own grant-table frames, in the order Linux uses (domid and frame, a write barrier,
// then the flags). Layer: guests (imports only hypervisor/public/).

import * as G from '../../hypervisor/public/grant-table.ts';
import type { GuestVcpu } from '../../hypervisor/public/vcpu.ts';
import { DOMID_SELF, HYPERVISOR_grant_table_op } from '../../hypervisor/public/xen.ts';

/** A 64-bit guest value (an address, possibly sign-extended negative) as two stores. */
function put64(v: GuestVcpu, va: number, x: number): void {
  v.store64(va, x >>> 0, Math.floor(x / 4294967296) >>> 0);
}

function get64(v: GuestVcpu, va: number): number {
  return v.load32(va + 4) * 4294967296 + v.load32(va);
}

function zero(v: GuestVcpu, va: number, bytes: number): void {
  v.write(va, new Uint8Array(bytes));
}

function status(v: GuestVcpu, va: number): number {
  return (v.load16(va) << 16) >> 16;
}

export function gnttabOp(v: GuestVcpu, cmd: number, buf: number, count: number): number {
  return v.hypercall(HYPERVISOR_grant_table_op, cmd, buf, count);
}

// ---- grant entries (the granter's side) ----------------------------------------------

/** The address of entry `ref` in a mapping of the grant-table frames at `tableVa`. */
export function entryVa(tableVa: number, ref: number): number {
  return tableVa + ref * G.GRANT_ENTRY_V1.size;
}

/**
 * gnttab_grant_foreign_access: lets `domid` map or copy `frame`. The flags are written
 * last, so the grantee never sees a usable entry with a stale domid or frame.
 */
export function grantAccess(v: GuestVcpu, tableVa: number, ref: number, domid: number, frame: number,
  readonly = false, extraFlags = 0): void {
  const at = entryVa(tableVa, ref);
  v.store16(at + G.GRANT_ENTRY_V1.fields.domid.offset, domid);
  v.store32(at + G.GRANT_ENTRY_V1.fields.frame.offset, frame);
  // wmb(): domid and frame before flags.
  v.store16(at + G.GRANT_ENTRY_V1.fields.flags.offset, G.GTF_permit_access | (readonly ? G.GTF_readonly : 0) | extraFlags);
}

export function grantFlags(v: GuestVcpu, tableVa: number, ref: number): number {
  return v.load16(entryVa(tableVa, ref) + G.GRANT_ENTRY_V1.fields.flags.offset);
}

/**
 * gnttab_end_foreign_access_ref (v1): the entry is revoked only while Xen has neither
 * GTF_reading nor GTF_writing set on it (nothing maps or copies it); then its flags
 * become 0. False while it is in use: the page must not be reused yet.
 */
export function endForeignAccess(v: GuestVcpu, tableVa: number, ref: number): boolean {
  const at = entryVa(tableVa, ref) + G.GRANT_ENTRY_V1.fields.flags.offset;
  const flags = v.load16(at);
  if ((flags & (G.GTF_reading | G.GTF_writing)) !== 0) return false;
  v.store16(at, 0);
  return true;
}

// ---- table-wide operations -------------------------------------------------------------

export interface SetupResult {
  rc: number;
  status: number;
  frames: number[];
}

/** GNTTABOP_setup_table for `dom`: the table grows to nrFrames; their MFNs come back. */
export function setupTable(v: GuestVcpu, buf: number, nrFrames: number, dom = DOMID_SELF, count = 1): SetupResult {
  const F = G.GNTTAB_SETUP_TABLE.fields;
  const list = buf + 64;
  zero(v, buf, G.GNTTAB_SETUP_TABLE.size);
  v.store16(buf + F.dom.offset, dom);
  v.store32(buf + F.nr_frames.offset, nrFrames);
  put64(v, buf + F.frame_list.offset, list);
  const rc = gnttabOp(v, G.GNTTABOP_setup_table, buf, count);
  const st = status(v, buf + F.status.offset);
  const frames: number[] = [];
  if (rc === 0 && st === G.GNTST_okay) for (let i = 0; i < nrFrames; i++) frames.push(get64(v, list + i * 8));
  return { rc, status: st, frames };
}

export interface QueryResult {
  rc: number;
  status: number;
  nrFrames: number;
  maxNrFrames: number;
}

export function querySize(v: GuestVcpu, buf: number, dom = DOMID_SELF, count = 1): QueryResult {
  const F = G.GNTTAB_QUERY_SIZE.fields;
  zero(v, buf, G.GNTTAB_QUERY_SIZE.size);
  v.store16(buf + F.dom.offset, dom);
  const rc = gnttabOp(v, G.GNTTABOP_query_size, buf, count);
  return {
    rc, status: status(v, buf + F.status.offset), nrFrames: v.load32(buf + F.nr_frames.offset),
    maxNrFrames: v.load32(buf + F.max_nr_frames.offset),
  };
}

/** GNTTABOP_set_version: the rc, and the version Xen wrote back. */
export function setVersion(v: GuestVcpu, buf: number, version: number): { rc: number; version: number } {
  v.store32(buf, version);
  const rc = gnttabOp(v, G.GNTTABOP_set_version, buf, 1);
  return { rc, version: v.load32(buf) };
}

export function getVersion(v: GuestVcpu, buf: number, dom = DOMID_SELF): { rc: number; version: number } {
  zero(v, buf, G.GNTTAB_GET_VERSION.size);
  v.store16(buf, dom);
  const rc = gnttabOp(v, G.GNTTABOP_get_version, buf, 1);
  return { rc, version: v.load32(buf + G.GNTTAB_GET_VERSION.fields.version.offset) };
}

// ---- map and unmap ---------------------------------------------------------------------

export interface MapOp {
  /** A linear address, or with GNTMAP_contains_pte the machine address of the PTE. */
  hostAddr: number;
  flags: number;
  ref: number;
  dom: number;
}

export interface MapResult {
  status: number;
  handle: number;
  devBusAddr: number;
}

/** GNTTABOP_map_grant_ref on an array of ops; each element's status, handle and bus address. */
export function mapGrantRefs(v: GuestVcpu, buf: number, ops: readonly MapOp[]): { rc: number; results: MapResult[] } {
  const F = G.GNTTAB_MAP_GRANT_REF.fields;
  const size = G.GNTTAB_MAP_GRANT_REF.size;
  ops.forEach((op, i) => {
    const at = buf + i * size;
    zero(v, at, size);
    put64(v, at + F.host_addr.offset, op.hostAddr);
    v.store32(at + F.flags.offset, op.flags);
    v.store32(at + F.ref.offset, op.ref);
    v.store16(at + F.dom.offset, op.dom);
    v.store32(at + F.handle.offset, 0xffffffff);
  });
  const rc = gnttabOp(v, G.GNTTABOP_map_grant_ref, buf, ops.length);
  const results = ops.map((_, i) => {
    const at = buf + i * size;
    return { status: status(v, at + F.status.offset), handle: v.load32(at + F.handle.offset), devBusAddr: get64(v, at + F.dev_bus_addr.offset) };
  });
  return { rc, results };
}

export function mapGrantRef(v: GuestVcpu, buf: number, op: MapOp): MapResult & { rc: number } {
  const { rc, results } = mapGrantRefs(v, buf, [op]);
  return { rc, ...results[0] };
}

export interface UnmapOp {
  hostAddr: number;
  devBusAddr: number;
  handle: number;
}

/** GNTTABOP_unmap_grant_ref on an array; each element's status. */
export function unmapGrantRefs(v: GuestVcpu, buf: number, ops: readonly UnmapOp[]): { rc: number; statuses: number[] } {
  const F = G.GNTTAB_UNMAP_GRANT_REF.fields;
  const size = G.GNTTAB_UNMAP_GRANT_REF.size;
  ops.forEach((op, i) => {
    const at = buf + i * size;
    zero(v, at, size);
    put64(v, at + F.host_addr.offset, op.hostAddr);
    put64(v, at + F.dev_bus_addr.offset, op.devBusAddr);
    v.store32(at + F.handle.offset, op.handle);
    v.store16(at + F.status.offset, 0x7fff);
  });
  const rc = gnttabOp(v, G.GNTTABOP_unmap_grant_ref, buf, ops.length);
  return { rc, statuses: ops.map((_, i) => status(v, buf + i * size + F.status.offset)) };
}

export function unmapGrantRef(v: GuestVcpu, buf: number, op: UnmapOp): { rc: number; status: number } {
  const { rc, statuses } = unmapGrantRefs(v, buf, [op]);
  return { rc, status: statuses[0] };
}

/** GNTTABOP_unmap_and_replace: the grant PTE at hostAddr is replaced by the one at newAddr. */
export function unmapAndReplace(v: GuestVcpu, buf: number, hostAddr: number, newAddr: number,
  handle: number): { rc: number; status: number } {
  const F = G.GNTTAB_UNMAP_AND_REPLACE.fields;
  zero(v, buf, G.GNTTAB_UNMAP_AND_REPLACE.size);
  put64(v, buf + F.host_addr.offset, hostAddr);
  put64(v, buf + F.new_addr.offset, newAddr);
  v.store32(buf + F.handle.offset, handle);
  v.store16(buf + F.status.offset, 0x7fff);
  const rc = gnttabOp(v, G.GNTTABOP_unmap_and_replace, buf, 1);
  return { rc, status: status(v, buf + F.status.offset) };
}

// ---- copy and swap -----------------------------------------------------------------------

/** One end of a copy: a grant ref (with GNTCOPY_*_gref) or a frame of one's own. */
export interface CopyEnd {
  refOrGmfn: number;
  domid: number;
  offset: number;
}

export interface CopyOp {
  source: CopyEnd;
  dest: CopyEnd;
  len: number;
  flags: number;
}

export function gnttabCopy(v: GuestVcpu, buf: number, ops: readonly CopyOp[]): { rc: number; statuses: number[] } {
  const F = G.GNTTAB_COPY.fields;
  const size = G.GNTTAB_COPY.size;
  ops.forEach((op, i) => {
    const at = buf + i * size;
    zero(v, at, size);
    put64(v, at + F['source.u.gmfn'].offset, op.source.refOrGmfn);
    v.store16(at + F['source.domid'].offset, op.source.domid);
    v.store16(at + F['source.offset'].offset, op.source.offset);
    put64(v, at + F['dest.u.gmfn'].offset, op.dest.refOrGmfn);
    v.store16(at + F['dest.domid'].offset, op.dest.domid);
    v.store16(at + F['dest.offset'].offset, op.dest.offset);
    v.store16(at + F.len.offset, op.len);
    v.store16(at + F.flags.offset, op.flags);
    v.store16(at + F.status.offset, 0x7fff);
  });
  const rc = gnttabOp(v, G.GNTTABOP_copy, buf, ops.length);
  return { rc, statuses: ops.map((_, i) => status(v, buf + i * size + F.status.offset)) };
}

export function swapGrantRef(v: GuestVcpu, buf: number, a: number, b: number): { rc: number; status: number } {
  const F = G.GNTTAB_SWAP_GRANT_REF.fields;
  zero(v, buf, G.GNTTAB_SWAP_GRANT_REF.size);
  v.store32(buf + F.ref_a.offset, a);
  v.store32(buf + F.ref_b.offset, b);
  const rc = gnttabOp(v, G.GNTTABOP_swap_grant_ref, buf, 1);
  return { rc, status: status(v, buf + F.status.offset) };
}
