// The event-channel invariants (DESIGN §4): walks every domain's ports and VIRQ tables
// and returns what is broken, as text. Layer: hypervisor. checkInvariants() calls it
// after every step of a test; the property test of hostile EVTCHNOPs calls it with the
// shared_info checks too, which hold only while guests leave their pending bits to Xen.

import type { Domain } from './domain.ts';
import {
  ECS_FREE, ECS_INTERDOMAIN, ECS_IPI, ECS_NAMES, ECS_RESERVED, ECS_UNBOUND, ECS_VIRQ, EVTCHNS_PER_BUCKET, MAX_2L_PORTS,
  type DomainEvtchn, virqIsGlobal,
} from './evtchn-ports.ts';
import type { Hypervisor } from './hypervisor.ts';
import { DOMID_FIRST_RESERVED, DOMID_SELF, NR_VIRQS } from './public/xen.ts';

const MAX_REPORTS = 20;

/**
 * Every broken event-channel rule. With `sharedInfoBits`, also that no FREE port (nor
 * any port past the valid ones) is pending: Xen clears the bit when it frees a port and
 * never sets it for an unusable one, but a guest may write its own pending array.
 */
export function checkEvtchnInvariants(hv: Hypervisor, sharedInfoBits = false): string[] {
  const problems: string[] = [];
  const report = (s: string): void => {
    if (problems.length < MAX_REPORTS) problems.push(s);
  };
  for (const d of hv.listDomains()) {
    const e = d.evtchn;
    if (e === null) {
      report(`d${d.domid}: no event-channel table`);
      continue;
    }
    checkTable(hv, d, e, report);
    checkVirqTables(d, e, report);
    if (sharedInfoBits) {
      for (let p = 0; p < MAX_2L_PORTS; p++) {
        if ((p >= e.validPorts || e.state[p] <= ECS_RESERVED) && hv.evtchn.l2.pendingBit(d, p)) {
          report(`d${d.domid} port ${p}: ${p < e.validPorts ? ECS_NAMES[e.state[p]] : 'invalid'} port is pending`);
        }
      }
    }
  }
  return problems;
}

function checkTable(hv: Hypervisor, d: Domain, e: DomainEvtchn, report: (s: string) => void): void {
  const n = e.state.length;
  const at = (p: number): string => `d${d.domid} port ${p}`;
  if (e.state[0] !== ECS_RESERVED) report(`${at(0)}: ${ECS_NAMES[e.state[0]]}, not reserved`);
  if (e.validPorts % EVTCHNS_PER_BUCKET !== 0 || e.validPorts < EVTCHNS_PER_BUCKET || e.validPorts > n) {
    report(`d${d.domid}: ${e.validPorts} valid ports is not a whole number of buckets within ${n}`);
  }
  if (d.vcpus.length * NR_VIRQS > e.virqToEvtchn.length) report(`d${d.domid}: more vCPUs than VIRQ table rows`);
  let active = 0;
  for (let p = 1; p < n; p++) {
    const state = e.state[p];
    if (state === ECS_FREE) {
      if (e.notifyVcpu[p] !== 0 || e.remoteDom[p] !== 0 || e.remotePort[p] !== 0 || e.virq[p] !== 0) {
        report(`${at(p)}: free but still records a binding`);
      }
      continue;
    }
    active++;
    if (p >= e.validPorts) report(`${at(p)}: ${ECS_NAMES[state]} beyond the valid ports`);
    if (p > e.maxPort) report(`${at(p)}: ${ECS_NAMES[state]} above max_evtchn_port ${e.maxPort}`);
    if (d.isDying) report(`${at(p)}: ${ECS_NAMES[state]} in a dying domain`);
    if (e.notifyVcpu[p] >= d.vcpus.length) report(`${at(p)}: notify vCPU ${e.notifyVcpu[p]} does not exist`);
    switch (state) {
      case ECS_UNBOUND:
        if (e.remoteDom[p] === DOMID_SELF) report(`${at(p)}: unbound for DOMID_SELF (not resolved to a domain)`);
        break;
      case ECS_INTERDOMAIN:
        checkPeer(hv, d, e, p, report);
        break;
      case ECS_VIRQ: {
        const virq = e.virq[p];
        if (virq >= NR_VIRQS) {
          report(`${at(p)}: VIRQ ${virq} out of range`);
          break;
        }
        const row = virqIsGlobal(virq) ? 0 : e.notifyVcpu[p];
        if (e.virqToEvtchn[row * NR_VIRQS + virq] !== p) report(`${at(p)}: VIRQ ${virq} not in vCPU ${row}'s table`);
        break;
      }
      case ECS_IPI:
        break;
      default:
        // RESERVED past port 0, PIRQ (no PIRQ is ever mapped here), or garbage.
        report(`${at(p)}: unexpected state ${ECS_NAMES[state] ?? state}`);
    }
  }
  if (active !== e.active) report(`d${d.domid}: ${e.active} active ports recorded, ${active} found`);
}

function checkPeer(hv: Hypervisor, d: Domain, e: DomainEvtchn, p: number, report: (s: string) => void): void {
  const at = `d${d.domid} port ${p}`;
  const rdom = e.remoteDom[p];
  const rport = e.remotePort[p];
  const rd = rdom < DOMID_FIRST_RESERVED ? hv.domainById(rdom) : undefined;
  const re = rd?.evtchn;
  if (rd === undefined || re === undefined || re === null) {
    report(`${at}: interdomain to d${rdom}, which does not exist`);
    return;
  }
  if (rd === d && rport === p) report(`${at}: interdomain to itself`);
  if (!re.isValid(rport)) {
    report(`${at}: interdomain to d${rdom} port ${rport}, which is not valid`);
  } else if (re.state[rport] !== ECS_INTERDOMAIN || re.remoteDom[rport] !== d.domid || re.remotePort[rport] !== p) {
    report(`${at}: peer d${rdom} port ${rport} (${ECS_NAMES[re.state[rport]]}) does not point back`);
  }
}

function checkVirqTables(d: Domain, e: DomainEvtchn, report: (s: string) => void): void {
  const rows = e.virqToEvtchn.length / NR_VIRQS;
  for (let row = 0; row < rows; row++) {
    for (let virq = 0; virq < NR_VIRQS; virq++) {
      const port = e.virqToEvtchn[row * NR_VIRQS + virq];
      if (port === 0) continue;
      const at = `d${d.domid}v${row} VIRQ ${virq} -> port ${port}`;
      if (row >= d.vcpus.length) report(`${at}: no such vCPU`);
      if (!e.isValid(port) || e.state[port] !== ECS_VIRQ || e.virq[port] !== virq) {
        report(`${at}: the port is not bound to that VIRQ`);
      } else if (virqIsGlobal(virq) ? row !== 0 : e.notifyVcpu[port] !== row) {
        report(`${at}: recorded in the wrong vCPU's table`);
      }
    }
  }
}
