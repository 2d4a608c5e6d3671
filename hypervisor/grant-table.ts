// Grant tables (common/grant_table.c, Xen 4.17, version 1 only): HYPERVISOR_grant_table_op
// and the per-domain state behind it. Layer: hypervisor. A granting domain writes
// version-1 entries {flags, domid, frame} in its own grant-table frames (Xen-heap pages
// shared with it); Xen keeps, per entry, an active record (pin counts, the one domain
// that has it pinned, the frame) and, per grantee, the maptrack table of its mappings,
// whose index is the handle it unmaps with. Each operation checks in Xen's order and
// reports a GNTST_ status per element; only malformed calls return an errno.
//
// References, exactly as Xen takes them: a map holds one general reference per part
// (host, device) and a writable type reference per writable part. A device map's are
// the grant's to drop; a host map's are held by the PTE Xen writes, so unmapping drops
// them, and so does devalidating the grantee's L1 (how a dying PV grantee lets go).

import { PGT_validated, PGT_writable_page } from './arch/frame-table.ts';
import type { MachineMemory } from './arch/memory.ts';
import type { Domain } from './domain.ts';
import { addrOk, type GuestAccess } from './guest-access.ts';
import type { Logger } from './log.ts';
import { GrantMappings } from './mm/grant-map.ts';
import type { Mm } from './mm/mm.ts';
import type { PageAllocator } from './page-alloc.ts';
import { EFAULT, EILSEQ, EINVAL, ENOMEM, ENOSYS, EOPNOTSUPP, EPERM, ESRCH, errnoName } from './public/errno.ts';
import * as G from './public/grant-table.ts';
import { DOMID_FIRST_RESERVED, DOMID_SELF } from './public/xen.ts';
import { addOffset, type Vcpu } from './vcpu.ts';

// Pin counts: four 8-bit counters in one word (GNTPIN_*).
export const GNTPIN_hstw_inc = 1 << 0;
export const GNTPIN_hstr_inc = 1 << 8;
export const GNTPIN_devw_inc = 1 << 16;
export const GNTPIN_devr_inc = 1 << 24;
const GNTPIN_hstw_mask = 0xff << 0;
const GNTPIN_devw_mask = 0xff << 16;
/** The counters an increment touches, at 0x80 or more, refuse it (risk of overflow). */
function pinWouldOverflow(pin: number, incr: number): boolean {
  return (pin & (incr << 7)) !== 0;
}

/** Grant-table frames a domain starts with and may grow to (opt_max_grant_frames). */
export const INITIAL_NR_GRANT_FRAMES = 1;
export const DEFAULT_MAX_GRANT_FRAMES = 64;
/** Maptrack frames a domain may use (opt_max_maptrack_frames), 256 handles each. */
export const DEFAULT_MAX_MAPTRACK_FRAMES = 1024;
export const MAPTRACK_PER_FRAME = 256;
const PER_FRAME = G.GRANT_ENTRIES_PER_FRAME_V1;

/** The command is in the low 12 bits; the rest is a continuation's (cache_flush only). */
const GNTTABOP_CMD_MASK = 0xfff;
/** unmap_grant_ref works in batches of this many before flushing the TLBs. */
const GNTTAB_UNMAP_BATCH_SIZE = 32;

const PAGE = 4096;

/** A copy of `a` with room for `n` elements (the new ones zero). */
function resized<T extends Uint32Array | Uint16Array | Int32Array>(a: T, n: number): T {
  const b = new (a.constructor as new (k: number) => T)(n);
  b.set(a);
  return b;
}

/** One domain's grant table: its frames, active entries and maptrack. */
export class DomainGrants {
  version = 1;
  nrFrames = 0;
  /** The owner is dying and its frames were relinquished: the shared entries are gone. */
  released = false;
  /** MFNs of the shared frames, in order. */
  readonly frames: Int32Array;
  /** Per entry: pin counts, the domain that pinned it, the frame it pinned. */
  pin = new Uint32Array(0);
  actDomid = new Uint16Array(0);
  actFrame = new Int32Array(0);
  /** Per handle: the granter, its ref, and the GNTMAP_ flags still mapped (0 = free). */
  mtDomid = new Uint16Array(0);
  mtRef = new Uint32Array(0);
  mtFlags = new Uint32Array(0);
  mtNext = new Int32Array(0);
  maptrackLimit = 0;
  /** The free handles, a FIFO: a freed handle is reused last (put_maptrack_handle). */
  private freeHead = -1;
  private freeTail = -1;

  constructor(readonly maxFrames: number, readonly maxMaptrackFrames: number) {
    this.frames = new Int32Array(maxFrames).fill(-1);
  }

  get nrEntries(): number {
    return this.nrFrames * PER_FRAME;
  }

  /** Makes room for `n` entries' active records. */
  growActive(n: number): void {
    this.pin = resized(this.pin, n);
    this.actDomid = resized(this.actDomid, n);
    this.actFrame = resized(this.actFrame, n);
  }

  /**
   * get_maptrack_handle: the head of the free list, which always keeps its tail as a
   * sentinel; when only that is left, a new maptrack frame is added (its first handle
   * returned, the rest queued before the sentinel). -1 when no frame may be added.
   */
  getHandle(): number {
    const head = this.freeHead;
    if (head >= 0 && head !== this.freeTail) {
      this.freeHead = this.mtNext[head];
      this.mtNext[head] = -1;
      return head;
    }
    if (this.maptrackLimit >= this.maxMaptrackFrames * MAPTRACK_PER_FRAME) return -1;
    const old = this.maptrackLimit;
    const n = old + MAPTRACK_PER_FRAME;
    this.mtDomid = resized(this.mtDomid, n);
    this.mtRef = resized(this.mtRef, n);
    this.mtFlags = resized(this.mtFlags, n);
    this.mtNext = resized(this.mtNext, n);
    this.maptrackLimit = n;
    for (let h = old + 1; h < n - 1; h++) this.mtNext[h] = h + 1;
    if (this.freeTail < 0) {
      this.mtNext[n - 1] = -1;
      this.freeTail = n - 1;
    } else {
      this.mtNext[n - 1] = this.freeTail;
    }
    this.freeHead = old + 1;
    this.mtNext[old] = -1;
    return old;
  }

  /** put_maptrack_handle: back on the tail of the free list. */
  putHandle(h: number): void {
    this.mtFlags[h] = 0;
    this.mtNext[h] = -1;
    if (this.freeTail < 0) this.freeHead = h;
    else this.mtNext[this.freeTail] = h;
    this.freeTail = h;
  }
}

/** What grant tables need from the hypervisor. */
export interface GrantHost {
  readonly mem: MachineMemory;
  readonly mm: Mm;
  readonly ga: GuestAccess;
  readonly alloc: PageAllocator;
  readonly log: Logger;
  domainById(domid: number): Domain | undefined;
  flushDomainTlbs(d: Domain): void;
  domainCrash(d: Domain, why: string): void;
}

/** grant_table_init's bounds on createdomain's max_grant_frames and max_maptrack_frames. */
export function grantLimitsOk(maxFrames: number, maxMaptrackFrames: number): boolean {
  return maxFrames >= INITIAL_NR_GRANT_FRAMES && maxFrames <= DEFAULT_MAX_GRANT_FRAMES &&
    maxMaptrackFrames >= 0 && maxMaptrackFrames <= DEFAULT_MAX_MAPTRACK_FRAMES;
}

/** A domain's table; every domain a worker is given has one (a missing table is a bug). */
export function grantsOf(d: Domain): DomainGrants {
  const g = d.grants;
  if (g === null) throw new Error(`d${d.domid} has no grant table`);
  return g;
}

/** One end of a copy, claimed: its frame, whether a grant and a type reference are held. */
interface CopyBuf {
  domain: Domain | null;
  mfn: number;
  haveGrant: boolean;
  haveType: boolean;
  ref: number;
  readOnly: boolean;
}

export class GrantTables {
  private readonly pv: GrantMappings;
  /** The current element's struct (the largest is 40 bytes). */
  private readonly buf = new Uint8Array(40);
  private readonly dv = new DataView(this.buf.buffer);
  private readonly page = new Uint8Array(PAGE);
  /** Unmaps whose references wait for the batch's TLB flush: granter, ref, frame, parts done. */
  private readonly pendingRd: (Domain | null)[] = new Array<Domain | null>(GNTTAB_UNMAP_BATCH_SIZE).fill(null);
  private readonly pendingRef = new Uint32Array(GNTTAB_UNMAP_BATCH_SIZE);
  private readonly pendingFrame = new Int32Array(GNTTAB_UNMAP_BATCH_SIZE);
  private readonly pendingDone = new Uint32Array(GNTTAB_UNMAP_BATCH_SIZE);
  private nrPending = 0;
  private readonly src: CopyBuf = { domain: null, mfn: -1, haveGrant: false, haveType: false, ref: 0, readOnly: true };
  private readonly dst: CopyBuf = { domain: null, mfn: -1, haveGrant: false, haveType: false, ref: 0, readOnly: false };

  constructor(private readonly host: GrantHost) {
    this.pv = new GrantMappings(host.mm);
  }

  // ---- domain set-up and tear-down -----------------------------------------------------

  /**
   * grant_table_init, at domain creation: -EINVAL for limits outside
   * [INITIAL_NR_GRANT_FRAMES, DEFAULT_MAX_GRANT_FRAMES] and [0, DEFAULT_MAX_MAPTRACK_FRAMES];
   * then the first frame (-ENOMEM without one).
   */
  initDomain(d: Domain, maxFrames = DEFAULT_MAX_GRANT_FRAMES, maxMaptrackFrames = DEFAULT_MAX_MAPTRACK_FRAMES): number {
    if (!grantLimitsOk(maxFrames, maxMaptrackFrames)) return -EINVAL;
    d.grants = new DomainGrants(maxFrames, maxMaptrackFrames);
    return this.grow(d, INITIAL_NR_GRANT_FRAMES) ? 0 : -ENOMEM;
  }

  /**
   * gnttab_grow_table: adds zeroed frames up to `n`, each a Xen-heap page shared
   * writable with the domain (share_xen_page_with_guest). False if memory runs out
   * (the frames added so far stay).
   */
  private grow(d: Domain, n: number): boolean {
    const g = grantsOf(d);
    const f = this.host.mm.host.frames;
    while (g.nrFrames < n) {
      const mfn = this.host.alloc.allocXenheapFor(d);
      if (mfn < 0) return false;
      this.host.mem.clearFrame(mfn);
      f.type[mfn] = PGT_writable_page;
      f.typeCount[mfn] = 1;
      f.typeFlags[mfn] = PGT_validated;
      g.frames[g.nrFrames++] = mfn;
    }
    g.growActive(g.nrEntries);
    return true;
  }

  /**
   * gnttab_release_mappings, when `d` (as grantee) is dying: every handle still in use
   * drops its pins and GTF_ flags on the granter's entry and its device map's
   * references; a PV host map's references stay with the PTE, which the L1's
   * devalidation drops later.
   */
  releaseMappings(d: Domain): void {
    const lg = d.grants;
    if (lg === null) return;
    lg.released = true;
    for (let h = lg.maptrackLimit - 1; h >= 0; h--) {
      const flags = lg.mtFlags[h];
      if ((flags & (G.GNTMAP_device_map | G.GNTMAP_host_map)) === 0) continue;
      const rd = this.lockById(lg.mtDomid[h]);
      if (rd === undefined) {
        lg.putHandle(h);
        continue;
      }
      const rg = grantsOf(rd);
      const ref = lg.mtRef[h];
      const ro = (flags & G.GNTMAP_readonly) !== 0;
      const frame = rg.actFrame[ref];
      if ((flags & G.GNTMAP_device_map) !== 0) {
        rg.pin[ref] -= ro ? GNTPIN_devr_inc : GNTPIN_devw_inc;
        this.putFrame(frame, !ro);
      }
      if ((flags & G.GNTMAP_host_map) !== 0) rg.pin[ref] -= ro ? GNTPIN_hstr_inc : GNTPIN_hstw_inc;
      this.reduceStatusForPin(rd, ref, ro);
      lg.putHandle(h);
    }
  }

  // ---- the hypercall -----------------------------------------------------------------

  /**
   * HYPERVISOR_grant_table_op(cmd, uop, count). -EINVAL for a negative count or
   * continuation bits on a command other than cache_flush; -EFAULT when the array lies
   * outside guest space; -ENOSYS for an unknown command; otherwise the op's result.
   * cache_flush takes cmd's bits 12-31 as its continuation argument.
   */
  call(v: Vcpu, cmd: number, lo: number, hi: number, count: number): number {
    if ((count | 0) < 0) return -EINVAL;
    const op = cmd & GNTTABOP_CMD_MASK;
    if (op !== G.GNTTABOP_cache_flush && (cmd >>> 12) !== 0) return -EINVAL;
    switch (op) {
      case G.GNTTABOP_map_grant_ref:
        if (!this.handleOk(lo, hi, count, G.GNTTAB_MAP_GRANT_REF.size)) return -EFAULT;
        return this.mapBatch(v, lo, hi, count);
      case G.GNTTABOP_unmap_grant_ref:
        if (!this.handleOk(lo, hi, count, G.GNTTAB_UNMAP_GRANT_REF.size)) return -EFAULT;
        return this.unmapBatch(v, lo, hi, count, false);
      case G.GNTTABOP_unmap_and_replace:
        if (!this.handleOk(lo, hi, count, G.GNTTAB_UNMAP_AND_REPLACE.size)) return -EFAULT;
        return this.unmapBatch(v, lo, hi, count, true);
      case G.GNTTABOP_transfer:
        // A host booted with gnttab=transfer=0: page flipping is not offered.
        return -EOPNOTSUPP;
      case G.GNTTABOP_setup_table:
        return this.setupTable(v, lo, hi, count);
      case G.GNTTABOP_copy:
        if (!this.handleOk(lo, hi, count, G.GNTTAB_COPY.size)) return -EFAULT;
        return this.copyBatch(v, lo, hi, count);
      case G.GNTTABOP_query_size:
        return this.querySize(v, lo, hi, count);
      case G.GNTTABOP_set_version:
        return this.setVersion(v, lo, hi);
      case G.GNTTABOP_get_status_frames:
        return this.getStatusFrames(v, lo, hi, count);
      case G.GNTTABOP_get_version:
        return this.getVersion(v, lo, hi);
      case G.GNTTABOP_swap_grant_ref:
        if (!this.handleOk(lo, hi, count, G.GNTTAB_SWAP_GRANT_REF.size)) return -EFAULT;
        return this.swapBatch(v, lo, hi, count);
      case G.GNTTABOP_cache_flush:
        if (!this.handleOk(lo, hi, count, G.GNTTAB_CACHE_FLUSH.size)) return -EFAULT;
        return this.cacheFlushBatch(v, lo, hi, count, (cmd & ~GNTTABOP_CMD_MASK) >>> 0);
      default:
        return -ENOSYS;
    }
  }

  /** guest_handle_okay: `count` elements of `size` bytes lie in guest address space. */
  private handleOk(lo: number, hi: number, count: number, size: number): boolean {
    if (!addrOk(hi)) return false;
    const end = hi * 4294967296 + lo + (count >>> 0) * size;
    return hi < 0x8000 ? end <= 2 ** 47 : end <= 2 ** 64;
  }

  /** Copies element i (`size` bytes) of the guest's array into this.buf. */
  private readElem(v: Vcpu, lo: number, hi: number, i: number, size: number): boolean {
    const [l, h] = addOffset(lo, hi, i * size);
    return this.host.ga.copyFrom(v, l, h, this.buf, size);
  }

  /** Copies bytes [off, off + len) of this.buf back into element i. */
  private writeField(v: Vcpu, lo: number, hi: number, i: number, size: number, off: number, len: number): boolean {
    const [l, h] = addOffset(lo, hi, i * size + off);
    return this.host.ga.copyTo(v, l, h, this.buf, len, off);
  }

  /** rcu_lock_domain_by_id: a domain by number, dying ones too; never DOMID_SELF. */
  private lockById(domid: number): Domain | undefined {
    if (domid >= DOMID_FIRST_RESERVED) return undefined;
    const d = this.host.domainById(domid);
    return d !== undefined && d.grants !== null ? d : undefined;
  }

  /** rcu_lock_domain_by_any_id: DOMID_SELF is the caller. */
  private lockByAnyId(caller: Domain, domid: number): Domain | undefined {
    return domid === DOMID_SELF ? caller : this.lockById(domid);
  }

  // ---- shared entries (guest memory) -------------------------------------------------

  // A dying granter's frames have gone back to Xen (they may be reused): its entries
  // read as zero and Xen's writes to them are dropped; only the active records remain,
  // for grantees still unmapping.
  private entryFlags(g: DomainGrants, ref: number): number {
    if (g.released) return 0;
    return this.host.mem.read32(g.frames[Math.floor(ref / PER_FRAME)], (ref % PER_FRAME) * 8) & 0xffff;
  }

  private entryDomid(g: DomainGrants, ref: number): number {
    if (g.released) return 0;
    return this.host.mem.read32(g.frames[Math.floor(ref / PER_FRAME)], (ref % PER_FRAME) * 8) >>> 16;
  }

  private entryFrame(g: DomainGrants, ref: number): number {
    if (g.released) return 0;
    return this.host.mem.read32(g.frames[Math.floor(ref / PER_FRAME)], (ref % PER_FRAME) * 8 + 4);
  }

  /** Replaces the flags of an entry, leaving its domid (the 16-bit cmpxchg Xen does). */
  private setEntryFlags(g: DomainGrants, ref: number, flags: number): void {
    if (g.released) return;
    const mfn = g.frames[Math.floor(ref / PER_FRAME)];
    const off = (ref % PER_FRAME) * 8;
    const w = this.host.mem.read32(mfn, off);
    this.host.mem.write32(mfn, off, ((w & 0xffff0000) | (flags & 0xffff)) >>> 0);
  }

  /**
   * _set_status_v1: before the first pin the entry must be permit_access (and, for a
   * map, not sub_page) for `ldomid`; a writable pin needs an entry without GTF_readonly.
   * Then GTF_reading, and GTF_writing for a writable pin, are set. GNTST_okay or
   * GNTST_general_error.
   */
  private setStatus(rd: Domain, ref: number, readonly: boolean, mapflag: boolean, ldomid: number): number {
    const g = grantsOf(rd);
    const flags = this.entryFlags(g, ref);
    const mask = G.GTF_type_mask | (mapflag ? G.GTF_sub_page : 0);
    if (g.pin[ref] === 0 && ((flags & mask) !== G.GTF_permit_access || this.entryDomid(g, ref) !== ldomid)) {
      return G.GNTST_general_error;
    }
    let nflags = flags | G.GTF_reading;
    if (!readonly) {
      nflags |= G.GTF_writing;
      if ((flags & G.GTF_readonly) !== 0) return G.GNTST_general_error;
    }
    this.setEntryFlags(g, ref, nflags);
    return G.GNTST_okay;
  }

  /** reduce_status_for_pin: GTF_reading goes with the last pin, GTF_writing with the last writable one. */
  private reduceStatusForPin(rd: Domain, ref: number, readonly: boolean): void {
    const g = grantsOf(rd);
    const pin = g.pin[ref];
    let clear = pin === 0 ? G.GTF_reading : 0;
    if (!readonly && (pin & (GNTPIN_hstw_mask | GNTPIN_devw_mask)) === 0) clear |= G.GTF_writing;
    if (clear !== 0) this.setEntryFlags(g, ref, this.entryFlags(g, ref) & ~clear);
  }

  /**
   * get_paged_frame for a PV granter: the frame number is an MFN, which must be RAM the
   * granter owns; a general reference is taken. GNTST_okay or GNTST_bad_page.
   */
  private getPagedFrame(mfn: number, rd: Domain): number {
    return this.host.mm.refs.getPage(mfn, rd) ? G.GNTST_okay : G.GNTST_bad_page;
  }

  /** Drops a general reference, and a writable type reference with it when `typed`. */
  private putFrame(mfn: number, typed: boolean): void {
    if (typed) this.host.mm.types.putPageType(mfn);
    this.host.mm.refs.putPage(mfn);
  }

  // ---- map_grant_ref ------------------------------------------------------------------

  /** gnttab_map_grant_ref: each element in turn; -EFAULT when one cannot be read or written back. */
  private mapBatch(v: Vcpu, lo: number, hi: number, count: number): number {
    const size = G.GNTTAB_MAP_GRANT_REF.size;
    const dv = this.dv;
    for (let i = 0; i < count; i++) {
      if (!this.readElem(v, lo, hi, i, size)) return -EFAULT;
      this.mapOne(v, dv.getUint32(0, true), dv.getUint32(4, true), dv.getUint32(8, true), dv.getUint32(12, true),
        dv.getUint16(16, true));
      if (!this.writeField(v, lo, hi, i, size, 0, size)) return -EFAULT;
    }
    return 0;
  }

  /**
   * map_grant_ref: maps entry `ref` of domain `dom` for the caller. Writes status, and
   * on success handle and dev_bus_addr, into this.buf. Checks in Xen's order: flags
   * (bad_gntref), domain (bad_domain), a handle (no_space), the ref (bad_gntref), the
   * active entry (general_error), the shared entry (general_error), the frame
   * (bad_page), references and the host mapping (general_error). A failure undoes
   * everything the map did.
   */
  private mapOne(v: Vcpu, hostLo: number, hostHi: number, flags: number, ref: number, dom: number): void {
    const dv = this.dv;
    const ld = v.domain;
    if ((flags & (G.GNTMAP_device_map | G.GNTMAP_host_map)) === 0) return this.mapStatus(G.GNTST_bad_gntref);
    const rd = this.lockById(dom);
    if (rd === undefined) return this.mapStatus(G.GNTST_bad_domain);
    const lg = grantsOf(ld);
    const handle = lg.getHandle();
    if (handle < 0) return this.mapStatus(G.GNTST_no_space);
    const rg = grantsOf(rd);
    const ro = (flags & G.GNTMAP_readonly) !== 0;
    if (ref >= rg.nrEntries) return this.mapFail(lg, handle, G.GNTST_bad_gntref);
    const inc = ((flags & G.GNTMAP_device_map) !== 0 ? (ro ? GNTPIN_devr_inc : GNTPIN_devw_inc) : 0) +
      ((flags & G.GNTMAP_host_map) !== 0 ? (ro ? GNTPIN_hstr_inc : GNTPIN_hstw_inc) : 0);
    const pin = rg.pin[ref];
    if (pin !== 0 && (rg.actDomid[ref] !== ld.domid || pinWouldOverflow(pin, inc))) return this.mapFail(lg, handle, G.GNTST_general_error);

    const refs = this.host.mm.refs;
    let refcnt = 0;
    if (pin === 0 || (!ro && (pin & (GNTPIN_hstw_mask | GNTPIN_devw_mask)) === 0)) {
      const st = this.setStatus(rd, ref, ro, true, ld.domid);
      if (st !== G.GNTST_okay) return this.mapFail(lg, handle, st);
      if (pin === 0) {
        const frame = this.entryFrame(rg, ref);
        const pst = this.getPagedFrame(frame, rd);
        if (pst !== G.GNTST_okay) {
          this.reduceStatusForPin(rd, ref, ro);
          return this.mapFail(lg, handle, pst);
        }
        refcnt = 1;
        rg.actDomid[ref] = ld.domid;
        rg.actFrame[ref] = frame;
      }
    }
    rg.pin[ref] += inc;
    const mfn = rg.actFrame[ref];
    const cacheFlags = this.entryFlags(rg, ref) & (G.GTF_PAT | G.GTF_PWT | G.GTF_PCD);

    // A reference for the first part mapped (the pinned one's, or a fresh one).
    let typecnt = 0;
    let st = G.GNTST_okay;
    if (refcnt === 0) {
      if (refs.getPageAnyOwner(mfn) !== undefined) refcnt = 1;
    }
    const owner = this.host.domainById(this.host.mm.host.frames.owner[mfn]);
    if (refcnt === 0 || owner !== rd || rd.isDying) {
      st = G.GNTST_general_error;
    } else {
      const types = this.host.mm.types;
      if ((flags & G.GNTMAP_device_map) !== 0 && !ro) {
        if (types.getPageType(mfn, PGT_writable_page) !== 0) st = G.GNTST_general_error;
        else typecnt++;
      }
      if (st === G.GNTST_okay && (flags & G.GNTMAP_host_map) !== 0) {
        if ((flags & G.GNTMAP_device_map) !== 0) {
          if (refs.getPage(mfn, rd)) refcnt++;
          else st = G.GNTST_general_error;
        }
        if (st === G.GNTST_okay && !ro) {
          if (types.getPageType(mfn, PGT_writable_page) !== 0) st = G.GNTST_general_error;
          else typecnt++;
        }
        if (st === G.GNTST_okay) st = this.pv.create(v, hostLo, hostHi, mfn, flags, cacheFlags);
      }
    }
    if (st !== G.GNTST_okay) {
      // undo_out: references, pins, then the status flags the first pin set.
      for (; typecnt > 0; typecnt--) this.host.mm.types.putPageType(mfn);
      for (; refcnt > 0; refcnt--) refs.putPage(mfn);
      rg.pin[ref] -= inc;
      this.reduceStatusForPin(rd, ref, ro);
      return this.mapFail(lg, handle, st);
    }
    lg.mtDomid[handle] = dom;
    lg.mtRef[handle] = ref;
    lg.mtFlags[handle] = flags & 0xffff;
    this.mapStatus(G.GNTST_okay);
    dv.setUint32(20, handle, true);
    dv.setUint32(24, (mfn % 1048576) * 4096, true);
    dv.setUint32(28, Math.floor(mfn / 1048576), true);
  }

  private mapStatus(st: number): void {
    this.dv.setInt16(18, st, true);
  }

  /** A map that took a handle failed: the handle goes back, the status goes out. */
  private mapFail(lg: DomainGrants, handle: number, st: number): void {
    lg.putHandle(handle);
    this.mapStatus(st);
  }

  // ---- unmap_grant_ref -----------------------------------------------------------------

  /**
   * gnttab_unmap_grant_ref: in batches of 32, each element unmapped and its status
   * written; then the caller's TLBs are flushed, and only then are the references and
   * pins of the batch dropped (so no stale translation outlives them).
   */
  private unmapBatch(v: Vcpu, lo: number, hi: number, count: number, replace: boolean): number {
    // Both structs are 24 bytes with handle at 16 and status at 20; replace has new_addr at 8.
    const size = G.GNTTAB_UNMAP_GRANT_REF.size;
    const dv = this.dv;
    let i = 0;
    let rc = 0;
    while (i < count && rc === 0) {
      const end = Math.min(count, i + GNTTAB_UNMAP_BATCH_SIZE);
      for (; i < end; i++) {
        if (!this.readElem(v, lo, hi, i, size)) {
          rc = -EFAULT;
          break;
        }
        if (replace) {
          this.unmapOne(v, dv.getUint32(0, true), dv.getUint32(4, true), 0, 0, dv.getUint32(8, true),
            dv.getUint32(12, true), dv.getUint32(16, true));
        } else {
          this.unmapOne(v, dv.getUint32(0, true), dv.getUint32(4, true), dv.getUint32(8, true), dv.getUint32(12, true),
            0, 0, dv.getUint32(16, true));
        }
        if (!this.writeField(v, lo, hi, i, size, 20, 2)) {
          rc = -EFAULT;
          break;
        }
      }
      this.host.flushDomainTlbs(v.domain);
      this.completePending();
    }
    return rc;
  }

  /**
   * unmap_common: handle (bad_handle), the granter (a vanished one crashes the caller,
   * as Xen does: the grant was implicitly unmapped), dev_bus_addr (bad_dev_addr), the
   * host mapping (general_error). Each part asked for and present is taken off the
   * handle; the handle is freed when nothing is left. Pins and references drop in
   * completePending.
   */
  private unmapOne(v: Vcpu, hostLo: number, hostHi: number, devLo: number, devHi: number, newLo: number,
    newHi: number, handle: number): void {
    const ld = v.domain;
    const lg = grantsOf(ld);
    if (handle >= lg.maptrackLimit) return this.unmapStatus(G.GNTST_bad_handle);
    const flags = lg.mtFlags[handle];
    if (flags === 0) return this.unmapStatus(G.GNTST_bad_handle);
    const rd = this.lockById(lg.mtDomid[handle]);
    if (rd === undefined) {
      this.host.log.warn({ dom: ld.domid, handle }, 'grant unmap: granter no longer exists');
      this.host.domainCrash(ld, 'grant unmap of a vanished domain');
      return;
    }
    const rg = grantsOf(rd);
    const ref = lg.mtRef[handle];
    const frame = rg.actFrame[ref];
    const devAddr = devHi * 4294967296 + devLo;
    if (devAddr !== 0 && (flags & G.GNTMAP_device_map) !== 0 && devAddr !== frame * 4096) {
      return this.unmapStatus(G.GNTST_bad_dev_addr);
    }
    let done = 0;
    if ((hostLo !== 0 || hostHi !== 0) && (flags & G.GNTMAP_host_map) !== 0) {
      const st = this.pv.replace(v, hostLo, hostHi, frame, flags, newLo, newHi);
      if (st !== G.GNTST_okay) return this.unmapStatus(st);
      lg.mtFlags[handle] &= ~G.GNTMAP_host_map;
      done |= G.GNTMAP_host_map | (flags & G.GNTMAP_readonly);
    }
    if (devAddr !== 0 && (flags & G.GNTMAP_device_map) !== 0) {
      lg.mtFlags[handle] &= ~G.GNTMAP_device_map;
      done |= G.GNTMAP_device_map | (flags & G.GNTMAP_readonly);
    }
    if ((lg.mtFlags[handle] & (G.GNTMAP_device_map | G.GNTMAP_host_map)) === 0) lg.putHandle(handle);
    if (done !== 0) {
      const k = this.nrPending++;
      this.pendingRd[k] = rd;
      this.pendingRef[k] = ref;
      this.pendingFrame[k] = frame;
      this.pendingDone[k] = done;
    }
    this.unmapStatus(G.GNTST_okay);
  }

  private unmapStatus(st: number): void {
    this.dv.setInt16(20, st, true);
  }

  /**
   * unmap_common_complete for each unmap of the batch: the parts done give back their
   * references (a writable part its type reference too) and pins, then the GTF_ flags.
   */
  private completePending(): void {
    for (let k = 0; k < this.nrPending; k++) {
      const rd = this.pendingRd[k]!;
      const ref = this.pendingRef[k];
      const frame = this.pendingFrame[k];
      const done = this.pendingDone[k];
      const rg = grantsOf(rd);
      const ro = (done & G.GNTMAP_readonly) !== 0;
      if ((done & G.GNTMAP_device_map) !== 0) {
        this.putFrame(frame, !ro);
        rg.pin[ref] -= ro ? GNTPIN_devr_inc : GNTPIN_devw_inc;
      }
      if ((done & G.GNTMAP_host_map) !== 0) {
        this.putFrame(frame, !ro);
        rg.pin[ref] -= ro ? GNTPIN_hstr_inc : GNTPIN_hstw_inc;
      }
      this.reduceStatusForPin(rd, ref, ro);
      this.pendingRd[k] = null;
    }
    this.nrPending = 0;
  }

  // ---- copy -------------------------------------------------------------------------------

  /** gnttab_copy: each element in turn, its status written back. */
  private copyBatch(v: Vcpu, lo: number, hi: number, count: number): number {
    const size = G.GNTTAB_COPY.size;
    const dv = this.dv;
    for (let i = 0; i < count; i++) {
      if (!this.readElem(v, lo, hi, i, size)) return -EFAULT;
      const st = this.copyOne(v.domain);
      this.releaseBuf(this.src);
      this.releaseBuf(this.dst);
      dv.setInt16(36, st, true);
      if (!this.writeField(v, lo, hi, i, size, 36, 2)) return -EFAULT;
    }
    return 0;
  }

  /**
   * gnttab_copy_one on the element in this.buf. Order: each end's domain (a frame
   * number, not a gref, only from DOMID_SELF: permission_denied; unknown: bad_domain),
   * then the source and destination claimed (grant or frame checks), then the bounds
   * (bad_copy_arg beyond the page), then the bytes.
   */
  private copyOne(ld: Domain): number {
    const dv = this.dv;
    const flags = dv.getUint16(34, true);
    const len = dv.getUint16(32, true);
    const srcOff = dv.getUint16(10, true);
    const dstOff = dv.getUint16(26, true);
    const srcGref = (flags & G.GNTCOPY_source_gref) !== 0;
    const dstGref = (flags & G.GNTCOPY_dest_gref) !== 0;
    let st = this.lockCopyDomain(ld, dv.getUint16(8, true), srcGref, this.src);
    if (st !== G.GNTST_okay) return st;
    st = this.lockCopyDomain(ld, dv.getUint16(24, true), dstGref, this.dst);
    if (st !== G.GNTST_okay) return st;
    st = this.claimBuf(ld, this.src, srcGref, dv.getUint32(0, true), dv.getUint32(4, true));
    if (st !== G.GNTST_okay) return st;
    st = this.claimBuf(ld, this.dst, dstGref, dv.getUint32(16, true), dv.getUint32(20, true));
    if (st !== G.GNTST_okay) return st;
    if (srcOff + len > PAGE || dstOff + len > PAGE) return G.GNTST_bad_copy_arg;
    const mem = this.host.mem;
    mem.readBytes(this.src.mfn, srcOff, this.page, 0, len);
    mem.writeBytes(this.dst.mfn, dstOff, this.page, 0, len);
    return G.GNTST_okay;
  }

  private lockCopyDomain(ld: Domain, domid: number, isGref: boolean, b: CopyBuf): number {
    if (domid !== DOMID_SELF && !isGref) return G.GNTST_permission_denied;
    const d = this.lockByAnyId(ld, domid);
    if (d === undefined) return G.GNTST_bad_domain;
    b.domain = d;
    return G.GNTST_okay;
  }

  /**
   * gnttab_copy_claim_buf: a grant (acquire_grant_for_copy) or one of the caller's own
   * frames (bad_page otherwise); a destination also takes a writable type reference
   * (general_error for a page table or other typed frame).
   */
  private claimBuf(ld: Domain, b: CopyBuf, isGref: boolean, lo: number, hi: number): number {
    const rd = b.domain!;
    if (isGref) {
      const st = this.acquireForCopy(rd, lo, ld.domid, b.readOnly, b);
      if (st !== G.GNTST_okay) return st;
      b.haveGrant = true;
      b.ref = lo;
    } else {
      const mfn = hi === 0 ? lo : -1;
      if (mfn < 0 || this.getPagedFrame(mfn, rd) !== G.GNTST_okay) return G.GNTST_bad_page;
      b.mfn = mfn;
    }
    if (!b.readOnly) {
      if (this.host.mm.types.getPageType(b.mfn, PGT_writable_page) !== 0) return G.GNTST_general_error;
      b.haveType = true;
    }
    return G.GNTST_okay;
  }

  /**
   * acquire_grant_for_copy: the ref (bad_gntref), the active entry (general_error when
   * pinned by another domain or near overflow), the shared entry on a first or first
   * writable pin (general_error), the frame (bad_page); for an entry already pinned, a
   * granter that is dying or no longer owns the frame gives bad_domain. Pins as a
   * host mapping would, for the length of the copy.
   */
  private acquireForCopy(rd: Domain, ref: number, ldomid: number, readonly: boolean, b: CopyBuf): number {
    const rg = grantsOf(rd);
    if (ref >= rg.nrEntries) return G.GNTST_bad_gntref;
    const pin = rg.pin[ref];
    const inc = readonly ? GNTPIN_hstr_inc : GNTPIN_hstw_inc;
    if (pin !== 0 && (rg.actDomid[ref] !== ldomid || pinWouldOverflow(pin, inc))) return G.GNTST_general_error;
    if (pin === 0 || (!readonly && (pin & (GNTPIN_devw_mask | GNTPIN_hstw_mask)) === 0)) {
      const st = this.setStatus(rd, ref, readonly, false, ldomid);
      if (st !== G.GNTST_okay) return st;
      const frame = pin === 0 ? this.entryFrame(rg, ref) : rg.actFrame[ref];
      const pst = this.getPagedFrame(frame, rd);
      if (pst !== G.GNTST_okay) {
        this.reduceStatusForPin(rd, ref, readonly);
        return pst;
      }
      if (pin === 0) {
        rg.actDomid[ref] = ldomid;
        rg.actFrame[ref] = frame;
      }
      b.mfn = frame;
    } else {
      const mfn = rg.actFrame[ref];
      const owner = this.host.mm.refs.getPageAnyOwner(mfn);
      if (owner !== rd || rd.isDying) {
        if (owner !== undefined) this.host.mm.refs.putPage(mfn);
        this.reduceStatusForPin(rd, ref, readonly);
        return G.GNTST_bad_domain;
      }
      b.mfn = mfn;
    }
    rg.pin[ref] += inc;
    return G.GNTST_okay;
  }

  /** gnttab_copy_release_buf: the type reference, the frame's reference, the grant's pin. */
  private releaseBuf(b: CopyBuf): void {
    if (b.mfn >= 0) {
      if (b.haveType) this.host.mm.types.putPageType(b.mfn);
      this.host.mm.refs.putPage(b.mfn);
      if (b.haveGrant) {
        const rg = grantsOf(b.domain!);
        rg.pin[b.ref] -= b.readOnly ? GNTPIN_hstr_inc : GNTPIN_hstw_inc;
        this.reduceStatusForPin(b.domain!, b.ref, b.readOnly);
      }
    }
    b.domain = null;
    b.mfn = -1;
    b.haveGrant = false;
    b.haveType = false;
  }

  // ---- table-wide operations ---------------------------------------------------------------

  /**
   * gnttab_setup_table: count must be 1 (-EINVAL); the struct and frame_list must be
   * reachable (-EFAULT); then bad_domain, permission_denied (another domain, unless
   * privileged), general_error beyond the domain's maximum or when growing fails; the
   * frames' MFNs go to frame_list (bad_virt_addr if it cannot be written).
   */
  private setupTable(v: Vcpu, lo: number, hi: number, count: number): number {
    if (count !== 1) return -EINVAL;
    const size = G.GNTTAB_SETUP_TABLE.size;
    if (!this.readElem(v, lo, hi, 0, size)) return -EFAULT;
    const dv = this.dv;
    const nr = dv.getUint32(4, true);
    const listLo = dv.getUint32(16, true);
    const listHi = dv.getUint32(20, true);
    if (!this.handleOk(listLo, listHi, nr, 8)) return -EFAULT;
    const st = this.setupTableWork(v, dv.getUint16(0, true), nr, listLo, listHi);
    this.dv.setInt16(8, st, true);
    return this.writeField(v, lo, hi, 0, size, 8, 2) ? 0 : -EFAULT;
  }

  private setupTableWork(v: Vcpu, dom: number, nr: number, listLo: number, listHi: number): number {
    const d = this.lockByAnyId(v.domain, dom);
    if (d === undefined) return G.GNTST_bad_domain;
    if (d !== v.domain && !v.domain.isPrivileged) return G.GNTST_permission_denied;
    const g = grantsOf(d);
    if (nr > g.maxFrames) return G.GNTST_general_error;
    if (nr > g.nrFrames && !this.grow(d, nr)) return G.GNTST_general_error;
    let st = G.GNTST_okay;
    for (let i = 0; i < nr; i++) {
      const [l, h] = addOffset(listLo, listHi, i * 8);
      if (!this.host.ga.write64(v, l, h, g.frames[i], 0)) st = G.GNTST_bad_virt_addr;
    }
    return st;
  }

  /**
   * gnttab_query_size: count must be 1 (-EINVAL); bad_domain; permission_denied for
   * another domain unless privileged; the frames in use and the maximum. The whole
   * struct is written back.
   */
  private querySize(v: Vcpu, lo: number, hi: number, count: number): number {
    if (count !== 1) return -EINVAL;
    const size = G.GNTTAB_QUERY_SIZE.size;
    if (!this.readElem(v, lo, hi, 0, size)) return -EFAULT;
    const dv = this.dv;
    const d = this.lockByAnyId(v.domain, dv.getUint16(0, true));
    if (d === undefined) {
      dv.setInt16(12, G.GNTST_bad_domain, true);
    } else if (d !== v.domain && !v.domain.isPrivileged) {
      dv.setInt16(12, G.GNTST_permission_denied, true);
    } else {
      const g = grantsOf(d);
      dv.setUint32(4, g.nrFrames, true);
      dv.setUint32(8, g.maxFrames, true);
      dv.setInt16(12, G.GNTST_okay, true);
    }
    return this.writeField(v, lo, hi, 0, size, 0, size) ? 0 : -EFAULT;
  }

  /**
   * gnttab_set_version (count ignored): a version other than 1 or 2 is -EINVAL, and 2
   * is -ENOSYS (this Xen offers version 1 only, as QEMU's does). The version in force
   * is written back.
   */
  private setVersion(v: Vcpu, lo: number, hi: number): number {
    if (!this.readElem(v, lo, hi, 0, 4)) return -EFAULT;
    const want = this.dv.getUint32(0, true);
    const rc = want !== 1 && want !== 2 ? -EINVAL : want === 2 ? -ENOSYS : 0;
    this.dv.setUint32(0, grantsOf(v.domain).version, true);
    return this.writeField(v, lo, hi, 0, 4, 0, 4) ? rc : -EFAULT;
  }

  /** gnttab_get_version (count ignored): -ESRCH for an unknown domain, -EPERM for another's unless privileged. */
  private getVersion(v: Vcpu, lo: number, hi: number): number {
    if (!this.readElem(v, lo, hi, 0, 8)) return -EFAULT;
    const d = this.lockByAnyId(v.domain, this.dv.getUint16(0, true));
    if (d === undefined) return -ESRCH;
    if (d !== v.domain && !v.domain.isPrivileged) return -EPERM;
    this.dv.setUint32(4, grantsOf(d).version, true);
    return this.writeField(v, lo, hi, 0, 8, 4, 4) ? 0 : -EFAULT;
  }

  /**
   * gnttab_get_status_frames: version 1 has no status frames, so asking for any is
   * general_error (after the domain and permission checks).
   */
  private getStatusFrames(v: Vcpu, lo: number, hi: number, count: number): number {
    if (count !== 1) return -EINVAL;
    const size = G.GNTTAB_GET_STATUS_FRAMES.size;
    if (!this.readElem(v, lo, hi, 0, size)) return -EFAULT;
    const dv = this.dv;
    const nr = dv.getUint32(0, true);
    if (!this.handleOk(dv.getUint32(8, true), dv.getUint32(12, true), nr, 8)) return -EFAULT;
    const d = this.lockByAnyId(v.domain, dv.getUint16(4, true));
    let st: number = G.GNTST_okay;
    if (d === undefined) st = G.GNTST_bad_domain;
    else if (d !== v.domain && !v.domain.isPrivileged) st = G.GNTST_permission_denied;
    else if (nr > 0) st = G.GNTST_general_error;
    dv.setInt16(6, st, true);
    return this.writeField(v, lo, hi, 0, size, 6, 2) ? 0 : -EFAULT;
  }

  /**
   * gnttab_swap_grant_ref: each pair of the caller's own entries: bad_gntref for a ref
   * out of range, nothing for a ref with itself, eagain while either is pinned.
   */
  private swapBatch(v: Vcpu, lo: number, hi: number, count: number): number {
    const size = G.GNTTAB_SWAP_GRANT_REF.size;
    const g = grantsOf(v.domain);
    const mem = this.host.mem;
    for (let i = 0; i < count; i++) {
      if (!this.readElem(v, lo, hi, i, size)) return -EFAULT;
      const a = this.dv.getUint32(0, true);
      const b = this.dv.getUint32(4, true);
      let st: number = G.GNTST_okay;
      if (a >= g.nrEntries || b >= g.nrEntries) st = G.GNTST_bad_gntref;
      else if (a !== b && (g.pin[a] !== 0 || g.pin[b] !== 0)) st = G.GNTST_eagain;
      else if (a !== b) {
        const am = g.frames[Math.floor(a / PER_FRAME)];
        const bm = g.frames[Math.floor(b / PER_FRAME)];
        const ao = (a % PER_FRAME) * 8;
        const bo = (b % PER_FRAME) * 8;
        for (let w = 0; w < 8; w += 4) {
          const t = mem.read32(am, ao + w);
          mem.write32(am, ao + w, mem.read32(bm, bo + w));
          mem.write32(bm, bo + w, t);
        }
      }
      this.dv.setInt16(8, st, true);
      if (!this.writeField(v, lo, hi, i, size, 8, 2)) return -EFAULT;
    }
    return 0;
  }

  // ---- cache_flush ---------------------------------------------------------------------------

  /**
   * gnttab_cache_flush: each element in turn. The first to fail ends the call with its
   * errno (the ones before it are done; nothing is written back). `curRef`, the
   * continuation argument, is where the first element's search of the owner's active
   * entries starts; every later element searches from 0. Xen may preempt that search
   * every 4096 entries and re-issue the call with the ref reached in cmd's bits 12-31;
   * this simulator never preempts, so it searches on to the end.
   */
  private cacheFlushBatch(v: Vcpu, lo: number, hi: number, count: number, curRef: number): number {
    const size = G.GNTTAB_CACHE_FLUSH.size;
    const dv = this.dv;
    let cur = curRef;
    for (let i = 0; i < count; i++) {
      if (!this.readElem(v, lo, hi, i, size)) return -EFAULT;
      const rc = this.cacheFlushOne(v.domain, dv.getUint32(0, true), dv.getUint32(4, true), dv.getUint16(8, true),
        dv.getUint16(10, true), dv.getUint32(12, true), cur);
      if (rc < 0) return rc;
      cur = 0;
    }
    return 0;
  }

  /**
   * _cache_flush on x86, in 4.17's order: offset or length beyond the page, or op bits
   * other than CLEAN|INVAL, -EINVAL (GNTTAB_CACHE_SOURCE_GREF included: Xen's -EOPNOTSUPP
   * for it comes after this check and is never reached); an empty range (length or op
   * 0) 0, or -EILSEQ inside a continuation; dev_bus_addr >> 12 not RAM, -EINVAL; a free
   * frame or Xen's own, -EPERM; another domain's frame the caller holds no pinned grant
   * of, -EINVAL; then the flush, where x86 cannot invalidate without writing back:
   * INVAL alone -EOPNOTSUPP, CLEAN with or without INVAL 0.
   */
  private cacheFlushOne(ld: Domain, addrLo: number, addrHi: number, offset: number, length: number, op: number,
    curRef: number): number {
    if (offset >= PAGE || length > PAGE || offset + length > PAGE) return this.flushFail(ld, -EINVAL, 'range beyond the page');
    if ((op & ~(G.GNTTAB_CACHE_CLEAN | G.GNTTAB_CACHE_INVAL)) !== 0) return this.flushFail(ld, -EINVAL, 'unknown op bits');
    if (length === 0 || op === 0) return curRef === 0 ? 0 : this.flushFail(ld, -EILSEQ, 'empty element in a continuation');
    const mfn = addrHi * 1048576 + (addrLo >>> 12);
    const refs = this.host.mm.refs;
    if (!refs.isRam(mfn)) return this.flushFail(ld, -EINVAL, 'dev_bus_addr is not RAM');
    const owner = refs.getPageAnyOwner(mfn);
    if (owner === undefined) return this.flushFail(ld, -EPERM, 'frame has no owner with a grant table');
    let rc = 0;
    // Xen keeps the reference it took here (only its system domains lack a table); we drop it.
    if (owner.grants === null) rc = this.flushFail(ld, -EPERM, 'frame has no owner with a grant table');
    else if (owner !== ld && !this.grantMapExists(ld, owner.grants, mfn, curRef)) {
      rc = this.flushFail(ld, -EINVAL, 'foreign frame not pinned by a grant to the caller');
    } else if ((op & G.GNTTAB_CACHE_CLEAN) === 0) rc = this.flushFail(ld, -EOPNOTSUPP, 'invalidate without clean');
    refs.putPage(mfn);
    return rc;
  }

  /**
   * grant_map_exists: an active entry of the owner's, at `from` or above, that the
   * caller has pinned (mapped, host or device) and that holds `mfn`.
   */
  private grantMapExists(ld: Domain, rg: DomainGrants, mfn: number, from: number): boolean {
    const n = rg.nrEntries;
    for (let ref = from; ref < n; ref++) {
      if (rg.pin[ref] !== 0 && rg.actDomid[ref] === ld.domid && rg.actFrame[ref] === mfn) return true;
    }
    return false;
  }

  /** A rejected cache_flush element: logged at debug level with the rule. */
  private flushFail(d: Domain, rc: number, rule: string): number {
    if (d.log.isLevelEnabled('debug')) d.log.debug({ sub: 'gnttab', dom: d.domid, rc: errnoName(rc), rule }, 'cache_flush rejected');
    return rc;
  }
}
