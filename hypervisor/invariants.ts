// The invariant checker (DESIGN §4): recomputes every frame's general and type reference
// counts from first principles (allocations, pins, CR3s, entries of validated tables)
// and compares them with the frame table; checks ownership, that no validated page
// table is writable through any PTE or TLB entry, and the domains' page lists. Layer:
// hypervisor. Tests and fuzzers call it after every step; it returns problems as text.

import {
  M2P_INVALID, OWNER_NONE, OWNER_XEN_PRIVATE, PGC_allocated, PGC_xen_heap, PGT_NAMES, PGT_l1_page_table, PGT_l4_page_table,
  PGT_pinned, PGT_seg_desc_page, PGT_validated, PGT_writable_page,
} from './arch/frame-table.ts';
import { _PAGE_PRESENT, _PAGE_RW, pteMfn } from './arch/pte.ts';
import { TLB_ENTRIES, TLB_RW } from './arch/tlb.ts';
import type { Domain } from './domain.ts';
import { checkEvtchnInvariants } from './evtchn-invariants.ts';
import { checkGrantInvariants, type GrantedFrames } from './grant-invariants.ts';
import { checkEmulatedDomain } from './emulate/invariants.ts';
import type { Hypervisor } from './hypervisor.ts';
import { isGuestL4Slot } from './mm/page-table.ts';
import { DOMID_FIRST_RESERVED } from './public/xen.ts';

const MAX_REPORTS = 20;

export function checkInvariants(hv: Hypervisor): string[] {
  const f = hv.frames;
  const mem = hv.mem;
  const n = f.nrFrames;
  const problems: string[] = [];
  const report = (s: string): void => {
    if (problems.length < MAX_REPORTS) problems.push(s);
  };
  const count = new Float64Array(n);
  const typeCount = new Float64Array(n);
  const linearOut = new Int32Array(n);
  const linearIn = new Int32Array(n);
  const domains = hv.listDomains();
  const byId = new Map<number, Domain>(domains.map((d) => [d.domid, d]));

  // Allocation, pins and Xen's share of Xen-heap pages; the page lists themselves.
  for (const d of domains) {
    let tot = 0;
    let xenheap = 0;
    for (let mfn = d.pageHead, steps = 0; mfn >= 0; mfn = f.next[mfn], steps++) {
      if (steps > n) {
        report(`d${d.domid}: page list loops`);
        break;
      }
      if (f.owner[mfn] !== d.domid) report(`mfn ${mfn} on d${d.domid}'s list but owned by ${f.owner[mfn]}`);
      if ((f.pgc[mfn] & PGC_xen_heap) !== 0) xenheap++;
      else tot++;
      if ((f.pgc[mfn] & PGC_allocated) !== 0) {
        count[mfn]++;
        if ((f.pgc[mfn] & PGC_xen_heap) !== 0) typeCount[mfn]++;
      }
      if ((f.typeFlags[mfn] & PGT_pinned) !== 0) {
        count[mfn]++;
        typeCount[mfn]++;
        if (d.isDying) report(`dying d${d.domid} still has mfn ${mfn} pinned`);
      }
    }
    if (tot !== d.totPages) report(`d${d.domid}: tot_pages ${d.totPages} but ${tot} pages listed`);
    if (xenheap !== d.xenheapPages) report(`d${d.domid}: ${d.xenheapPages} Xen-heap pages but ${xenheap} listed`);
    for (const v of d.vcpus) {
      for (const base of [v.guestTable, v.guestTableUser]) {
        if (base === 0) continue;
        count[base]++;
        typeCount[base]++;
        if (f.type[base] !== PGT_l4_page_table || !f.isValidated(base)) report(`d${d.domid}v${v.vcpuId}: base ${base} is not a validated L4`);
        if (f.owner[base] !== d.domid) report(`d${d.domid}v${v.vcpuId}: base ${base} owned by ${f.owner[base]}`);
        if (d.isDying) report(`dying d${d.domid}v${v.vcpuId} still holds base ${base}`);
      }
      // An emulated domain's CR3 is its own guest-physical one (checked below). In user
      // mode a PV vCPU runs on its user base — or on its kernel base, when its ring-1
      // kernel returned there with a native iretq, which no hypervisor sees (classic Xen).
      const ok = v.cpl === 3 ? v.cr3 === v.guestTableUser || v.cr3 === v.guestTable : v.cr3 === v.guestTable;
      if (d.emu === null && !ok) report(`d${d.domid}v${v.vcpuId}: cr3 ${v.cr3} is not a base for CPL ${v.cpl}`);
    }
    checkEmulatedDomain(hv, d, report);
  }

  // Device maps' references; what each grantee may reach of others' frames.
  const granted = checkGrantInvariants(hv, domains, count, typeCount, report);
  // Foreign frames seen in each domain's L1 entries so far, to compare with `granted`.
  const seen = new Map<number, Map<number, number>>();

  // References held by the entries of validated tables.
  for (let t = 0; t < n; t++) {
    const type = f.type[t];
    if (type < PGT_l1_page_table || type > PGT_l4_page_table || !f.isValidated(t)) continue;
    if (f.typeCount[t] === 0) report(`mfn ${t}: validated ${PGT_NAMES[type]} with type count 0`);
    const owner = byId.get(f.owner[t]);
    if (!owner) {
      report(`mfn ${t}: validated ${PGT_NAMES[type]} owned by no live domain (${f.owner[t]})`);
      continue;
    }
    for (let i = 0; i < 512; i++) {
      if (type === PGT_l4_page_table && !isGuestL4Slot(i)) {
        if (!hv.mm.tables.isXenL4Entry(t, i, mem.read32(t, i << 3), mem.read32(t, (i << 3) + 4))) {
          report(`mfn ${t}[${i}]: Xen's L4 slot does not hold Xen's entry`);
        }
        continue;
      }
      const lo = mem.read32(t, i << 3);
      if ((lo & _PAGE_PRESENT) === 0) continue;
      const target = pteMfn(lo, mem.read32(t, (i << 3) + 4));
      if (type === PGT_l1_page_table) {
        checkL1Entry(hv, owner, t, i, lo, target, count, typeCount, granted, seen, report);
      } else if (target === t) {
        if ((lo & _PAGE_RW) !== 0) report(`mfn ${t}[${i}]: writable self-map of a ${PGT_NAMES[type]}`);
      } else {
        count[target]++;
        typeCount[target]++;
        const childType = f.type[target];
        if (childType === type) {
          linearOut[t]++;
          linearIn[target]++;
          if ((lo & _PAGE_RW) !== 0) report(`mfn ${t}[${i}]: writable linear ${PGT_NAMES[type]} entry`);
        } else if (childType !== type - 1) {
          report(`mfn ${t}[${i}]: ${PGT_NAMES[type]} entry to a ${PGT_NAMES[childType]} frame ${target}`);
        }
        if (!f.isValidated(target)) report(`mfn ${t}[${i}]: entry to unvalidated frame ${target}`);
        if (f.owner[target] !== owner.domid) report(`mfn ${t}[${i}]: entry to d${f.owner[target]}'s frame ${target}`);
      }
    }
  }

  // Every frame's counts, owner and pool membership.
  for (let mfn = 0; mfn < n; mfn++) {
    const owner = f.owner[mfn];
    const free = hv.alloc.isFree(mfn);
    if (free !== (owner === OWNER_NONE)) report(`mfn ${mfn}: free=${free} but owner ${owner}`);
    if (free) {
      if (f.count[mfn] !== 0 || f.typeCount[mfn] !== 0) report(`free mfn ${mfn} has counts ${f.count[mfn]}/${f.typeCount[mfn]}`);
      if (count[mfn] !== 0) report(`free mfn ${mfn} is still referenced ${count[mfn]} times`);
      if (f.m2pLo[mfn] !== M2P_INVALID || f.m2pHi[mfn] !== M2P_INVALID) report(`free mfn ${mfn} has an M2P entry`);
      continue;
    }
    if (owner === OWNER_XEN_PRIVATE) count[mfn]++;
    if (owner < DOMID_FIRST_RESERVED && !byId.has(owner)) report(`mfn ${mfn} owned by vanished d${owner}`);
    if (f.count[mfn] !== count[mfn]) report(`mfn ${mfn}: general count ${f.count[mfn]}, expected ${count[mfn]}`);
    if (f.typeCount[mfn] !== typeCount[mfn]) {
      report(`mfn ${mfn}: ${PGT_NAMES[f.type[mfn]]} type count ${f.typeCount[mfn]}, expected ${typeCount[mfn]}`);
    }
    if (linearOut[mfn] > 0 && linearIn[mfn] > 0) report(`mfn ${mfn}: both holds and is the target of linear links (XSA-240)`);
    const linear = linearOut[mfn] - linearIn[mfn];
    if (f.linearPtCount[mfn] !== linear) report(`mfn ${mfn}: linear_pt_count ${f.linearPtCount[mfn]}, expected ${linear}`);
    const type = f.type[mfn];
    if (type >= PGT_l1_page_table && type <= PGT_l4_page_table && f.typeCount[mfn] > 0 && !f.isValidated(mfn)) {
      report(`mfn ${mfn}: ${PGT_NAMES[type]} with type references but not validated`);
    }
    if (f.isPinned(mfn) && f.typeCount[mfn] === 0) report(`mfn ${mfn}: pinned with type count 0`);
  }

  checkTlbs(hv, domains, granted, report);
  for (const p of checkEvtchnInvariants(hv)) report(p);
  return problems;
}

function checkL1Entry(hv: Hypervisor, owner: Domain, t: number, i: number, lo: number, target: number,
  count: Float64Array, typeCount: Float64Array, granted: GrantedFrames, seen: Map<number, Map<number, number>>,
  report: (s: string) => void): void {
  const f = hv.frames;
  if (target >= f.nrFrames) {
    if (!owner.hasIomem) report(`mfn ${t}[${i}]: d${owner.domid} maps MMIO frame ${target} without I/O access`);
    return;
  }
  count[target]++;
  const rw = (lo & _PAGE_RW) !== 0;
  if (rw) {
    typeCount[target]++;
    if (f.type[target] !== PGT_writable_page) {
      report(`mfn ${t}[${i}]: writable mapping of ${PGT_NAMES[f.type[target]]} frame ${target}`);
    }
  }
  const tOwner = f.owner[target];
  if (tOwner === OWNER_NONE || tOwner === OWNER_XEN_PRIVATE) {
    report(`mfn ${t}[${i}]: d${owner.domid} maps frame ${target} owned by ${tOwner}`);
  } else if (tOwner !== owner.domid && !owner.isPrivileged) {
    // Another domain's frame: only as often as the grants it holds map it.
    let mine = seen.get(owner.domid);
    if (!mine) seen.set(owner.domid, (mine = new Map()));
    const uses = (mine.get(target) ?? 0) + 1;
    mine.set(target, uses);
    if (uses > (granted.get(owner.domid)?.get(target) ?? 0)) {
      report(`mfn ${t}[${i}]: d${owner.domid} maps frame ${target} owned by ${tOwner} without a grant`);
    }
  }
}

/** No TLB may hold a writable translation of a page table, or reach another domain's frame. */
function checkTlbs(hv: Hypervisor, domains: Domain[], granted: GrantedFrames, report: (s: string) => void): void {
  const f = hv.frames;
  for (const d of domains) {
    for (const v of d.vcpus) {
      const tlb = v.tlb;
      for (let s = 0; s < TLB_ENTRIES; s++) {
        if (tlb.vpn[s] < 0) continue;
        const mfn = tlb.mfn[s];
        if (mfn >= f.nrFrames) continue;
        const type = f.type[mfn];
        const isTable = (type >= PGT_l1_page_table && type <= PGT_l4_page_table) || type === PGT_seg_desc_page;
        if ((tlb.perm[s] & TLB_RW) !== 0 && isTable && (f.typeFlags[mfn] & PGT_validated) !== 0) {
          report(`d${d.domid}v${v.vcpuId}: TLB maps validated ${PGT_NAMES[type]} frame ${mfn} writable`);
        }
        // A stale entry for a freed frame is harmless until the frame is reused, and the
        // allocator flushes before reuse.
        const owner = f.owner[mfn];
        const foreign = owner !== d.domid && owner !== OWNER_NONE && !d.isPrivileged;
        if (owner === OWNER_XEN_PRIVATE || (foreign && !granted.get(d.domid)?.has(mfn))) {
          report(`d${d.domid}v${v.vcpuId}: TLB reaches frame ${mfn} owned by ${owner}`);
        }
      }
    }
  }
}
