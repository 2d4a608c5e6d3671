// Grant-table invariants, for the checker in invariants.ts. Layer: hypervisor. Every
// handle in use names a live granter's entry pinned by its holder; each entry's pin
// counts are exactly the sum of the handles that map it (copies pin only inside the
// hypercall); a device map holds a general reference on the frame, and a writable one
// a type reference too. What each grantee may reach through its page tables besides
// its own frames is returned: per grantee, the frames it host-maps and how many times.

import { OWNER_NONE } from './arch/frame-table.ts';
import type { Domain } from './domain.ts';
import { GNTPIN_devr_inc, GNTPIN_devw_inc, GNTPIN_hstr_inc, GNTPIN_hstw_inc } from './grant-table.ts';
import type { Hypervisor } from './hypervisor.ts';
import { GNTMAP_device_map, GNTMAP_host_map, GNTMAP_readonly } from './public/grant-table.ts';

/** Per grantee domid: granted frame → host maps of it. */
export type GrantedFrames = Map<number, Map<number, number>>;

export function checkGrantInvariants(hv: Hypervisor, domains: Domain[], count: Float64Array, typeCount: Float64Array,
  report: (s: string) => void): GrantedFrames {
  const granted: GrantedFrames = new Map();
  const byId = new Map(domains.map((d) => [d.domid, d]));
  const expectedPins = new Map<Domain, Uint32Array>();
  for (const d of domains) {
    const g = d.grants;
    if (g === null) continue;
    expectedPins.set(d, new Uint32Array(g.nrEntries));
    for (let i = 0; i < (g.released ? 0 : g.nrFrames); i++) {
      if (hv.frames.owner[g.frames[i]] !== d.domid) report(`d${d.domid}: grant frame ${g.frames[i]} not its own`);
    }
  }
  for (const ld of domains) {
    const lg = ld.grants;
    if (lg === null) continue;
    const mine = new Map<number, number>();
    granted.set(ld.domid, mine);
    for (let h = 0; h < lg.maptrackLimit; h++) {
      const flags = lg.mtFlags[h];
      if ((flags & (GNTMAP_host_map | GNTMAP_device_map)) === 0) continue;
      const rd = byId.get(lg.mtDomid[h]);
      const ref = lg.mtRef[h];
      if (rd === undefined || rd.grants === null) {
        report(`d${ld.domid} handle ${h}: granter d${lg.mtDomid[h]} is gone`);
        continue;
      }
      const rg = rd.grants;
      if (ref >= rg.nrEntries) {
        report(`d${ld.domid} handle ${h}: ref ${ref} beyond d${rd.domid}'s table`);
        continue;
      }
      if (rg.actDomid[ref] !== ld.domid) report(`d${ld.domid} handle ${h}: d${rd.domid} ref ${ref} pinned by d${rg.actDomid[ref]}`);
      const ro = (flags & GNTMAP_readonly) !== 0;
      const frame = rg.actFrame[ref];
      const pins = expectedPins.get(rd)!;
      if ((flags & GNTMAP_device_map) !== 0) {
        pins[ref] += ro ? GNTPIN_devr_inc : GNTPIN_devw_inc;
        count[frame]++;
        if (!ro) typeCount[frame]++;
      }
      if ((flags & GNTMAP_host_map) !== 0) {
        pins[ref] += ro ? GNTPIN_hstr_inc : GNTPIN_hstw_inc;
        mine.set(frame, (mine.get(frame) ?? 0) + 1);
      }
    }
  }
  for (const [rd, pins] of expectedPins) {
    const rg = rd.grants!;
    for (let ref = 0; ref < rg.nrEntries; ref++) {
      if (rg.pin[ref] !== pins[ref]) {
        report(`d${rd.domid} ref ${ref}: pin ${rg.pin[ref].toString(16)}, expected ${pins[ref].toString(16)}`);
      }
      if (rg.pin[ref] !== 0) {
        const owner = hv.frames.owner[rg.actFrame[ref]];
        if (owner !== rd.domid) report(`d${rd.domid} ref ${ref}: pinned frame ${rg.actFrame[ref]} owned by ${owner === OWNER_NONE ? 'nobody' : owner}`);
      }
    }
  }
  return granted;
}
