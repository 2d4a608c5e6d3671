// Creating and destroying domains (Xen's domain_create, domain_kill and
// domain_relinquish_resources). Layer: hypervisor. Destruction drops the vCPUs'
// page-table bases, the Xen-heap pages, then makes three passes over the domain's pages
// for L4, L3 and L2: unpin, drop the allocation reference, and force-devalidate tables
// of that level still validated (breaking circular linear references). Frames go back
// to the pool as their counts reach 0; the domain is gone when its last frame is.

import { PGC_allocated, PGC_xen_heap, PGT_l2_page_table, PGT_l4_page_table, PGT_pinned, PGT_validated, PGT_writable_page } from './arch/frame-table.ts';
import { Domain, DomainState } from './domain.ts';
import type { Hypervisor } from './hypervisor.ts';
import { EEXIST, EINVAL, ENOMEM } from './public/errno.ts';
import { DOMID_FIRST_RESERVED, VIRQ_DOM_EXC } from './public/xen.ts';
import { Vcpu } from './vcpu.ts';
import { DEFAULT_MAX_GRANT_FRAMES, DEFAULT_MAX_MAPTRACK_FRAMES, grantLimitsOk } from './grant-table.ts';
import { VcpuTimers } from './sched/core.ts';

export interface DomainParams {
  /** Requested id; undefined, 0 or a reserved id lets Xen choose (Dom0 is created as 0). */
  domid?: number;
  privileged?: boolean;
  hasIomem?: boolean;
  maxVcpus?: number;
  maxPages?: number;
  handle?: Uint8Array;
  flags?: number;
  /** createdomain's max_evtchn_port (default: event-channel.ts's per-domain default). */
  maxEvtchnPort?: number;
  /** createdomain's max_grant_frames and max_maptrack_frames (default: Xen's 64 and 1024). */
  maxGrantFrames?: number;
  maxMaptrackFrames?: number;
}

/** Picks a free domid like Xen 4.17's rover: never 0, wrapping at DOMID_FIRST_RESERVED. */
function pickDomid(hv: Hypervisor): number {
  for (let n = 0; n < DOMID_FIRST_RESERVED; n++) {
    let id = hv.domidRover + 1 + n;
    id = ((id - 1) % (DOMID_FIRST_RESERVED - 1)) + 1;
    if (!hv.domainById(id)) {
      hv.domidRover = id;
      return id;
    }
  }
  return -1;
}

/**
 * domain_create: a new, paused domain with its vCPUs (down) and shared_info page, and
 * no memory (max_pages 0 unless given). Returns the domain or -EEXIST / -ENOMEM.
 */
export function createDomain(hv: Hypervisor, p: DomainParams, explicitZero = false): Domain | number {
  let domid: number;
  if (explicitZero) domid = 0;
  else if (p.domid !== undefined && p.domid > 0 && p.domid < DOMID_FIRST_RESERVED) domid = p.domid;
  else domid = pickDomid(hv);
  if (domid < 0) return -ENOMEM;
  if (hv.domainById(domid)) return -EEXIST;
  const maxGrantFrames = p.maxGrantFrames ?? DEFAULT_MAX_GRANT_FRAMES;
  const maxMaptrackFrames = p.maxMaptrackFrames ?? DEFAULT_MAX_MAPTRACK_FRAMES;
  if (!grantLimitsOk(maxGrantFrames, maxMaptrackFrames)) return -EINVAL;
  const log = hv.log.child({ dom: domid });
  const d = new Domain(domid, p.privileged ?? false, p.hasIomem ?? false, p.maxPages ?? 0, p.maxVcpus ?? 1, log);
  if (p.handle) d.handle.set(p.handle.subarray(0, 16));
  d.createFlags = p.flags ?? 0;
  const si = hv.alloc.allocXenheapFor(d);
  if (si < 0) return -ENOMEM;
  // share_xen_page_with_guest: writable for good (one type reference Xen keeps).
  hv.frames.type[si] = PGT_writable_page;
  hv.frames.typeCount[si] = 1;
  hv.frames.typeFlags[si] = PGT_validated;
  d.sharedInfoMfn = si;
  hv.evtchn.initDomain(d, p.maxEvtchnPort);
  for (let i = 0; i < d.maxVcpus; i++) {
    const v = new Vcpu(d, i, hv, d.contexts);
    v.timers = new VcpuTimers(v, hv.sched);
    v.isUp = false;
    d.vcpus.push(v);
  }
  hv.addDomain(d);
  if (hv.gnttab.initDomain(d, maxGrantFrames, maxMaptrackFrames) !== 0) {
    killDomain(hv, d, undefined);
    return -ENOMEM;
  }
  log.info({ privileged: d.isPrivileged }, 'domain created');
  return d;
}

/** domain_kill: -EINVAL when a domain would destroy itself; 0 otherwise (again 0 once dying). */
export function killDomain(hv: Hypervisor, d: Domain, caller: Domain | undefined): number {
  if (d === caller) return -EINVAL;
  if (d.isDying) return 0;
  d.isDying = true;
  d.transition(DomainState.Dying);
  hv.evtchn.destroyDomain(d);
  hv.gnttab.releaseMappings(d);
  relinquishResources(hv, d);
  hv.evtchn.sendGlobalVirq(VIRQ_DOM_EXC);
  return 0;
}

function relinquishResources(hv: Hypervisor, d: Domain): void {
  const { types } = hv.mm;
  // vcpu_destroy_pagetables: the CR3 references.
  for (const v of d.vcpus) {
    v.reset();
    hv.sched.timers.stop(v.timers.singleshot);
    hv.sched.timers.stop(v.timers.periodic);
    hv.sched.timers.stop(v.timers.poll);
  }
  if (d.emu !== null) hv.emulator.detach(d);
  d.contexts.clear();
  for (const v of d.vcpus) {
    const kernel = v.guestTable;
    const user = v.guestTableUser;
    v.guestTable = 0;
    v.guestTableUser = 0;
    v.cr3 = 0;
    v.tlb.flushAll();
    if (kernel !== 0) types.putPageAndType(kernel);
    if (user !== 0) types.putPageAndType(user);
  }
  const pass = (type: number): void => {
    for (const mfn of pageList(hv, d)) relinquishPage(hv, d, mfn, type);
  };
  pass(-1); // the Xen-heap pages first
  for (let type = PGT_l4_page_table; type >= PGT_l2_page_table; type--) pass(type);
}

function pageList(hv: Hypervisor, d: Domain): number[] {
  const out: number[] = [];
  for (let mfn = d.pageHead; mfn >= 0; mfn = hv.frames.next[mfn]) out.push(mfn);
  return out;
}

/** relinquish_memory for one page, for the pass of `type` (-1: Xen-heap pages). */
function relinquishPage(hv: Hypervisor, d: Domain, mfn: number, type: number): void {
  const f = hv.frames;
  const { refs, types, tables } = hv.mm;
  const xenheap = (f.pgc[mfn] & PGC_xen_heap) !== 0;
  if ((type === -1) !== xenheap) return;
  if (!refs.getPage(mfn, d)) return;
  if ((f.typeFlags[mfn] & PGT_pinned) !== 0) {
    f.typeFlags[mfn] &= ~PGT_pinned;
    types.putPageAndType(mfn);
  }
  if ((f.pgc[mfn] & PGC_allocated) !== 0) {
    // A Xen-heap page also gives back the type reference share_xen_page_with_guest took.
    if (xenheap) types.putPageType(mfn);
    f.pgc[mfn] &= ~PGC_allocated;
    refs.putPage(mfn);
  }
  if (f.type[mfn] === type && (f.typeFlags[mfn] & PGT_validated) !== 0) {
    f.typeFlags[mfn] &= ~PGT_validated;
    tables.devalidate(mfn, type);
  }
  refs.putPage(mfn);
}
