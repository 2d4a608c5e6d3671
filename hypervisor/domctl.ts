// HYPERVISOR_domctl (Xen's do_domctl), the control domain's domain management:
// createdomain, max_mem, destroydomain, pausedomain, unpausedomain, getdomaininfo,
// scheduler_op (credit).
// Layer: hypervisor. Only the control domain may call it (-EPERM otherwise).

import { DomainState, type Domain } from './domain.ts';
import { createDomain, killDomain } from './domain-lifecycle.ts';
import type { Hypervisor } from './hypervisor.ts';
import { EACCES, EFAULT, EINVAL, ENOSYS, EOVERFLOW, EPERM, ESRCH } from './public/errno.ts';
import * as C from './public/domctl.ts';
import { DOMID_FIRST_RESERVED } from './public/xen.ts';
import type { Vcpu } from './vcpu.ts';

const F = C.XEN_DOMCTL.fields;
/** Flags a PV domain may be created with: no HVM, HAP, IOMMU or nested virtualisation. */
const PV_CDF_FLAGS = C.XEN_DOMCTL_CDF_s3_integrity | C.XEN_DOMCTL_CDF_oos_off | C.XEN_DOMCTL_CDF_xs_domain |
  C.XEN_DOMCTL_CDF_vpmu;
const MAX_PV_VCPUS = 128;
const MAX_PAUSE_COUNT = 255;

export class Domctl {
  private readonly buf = new Uint8Array(C.XEN_DOMCTL.size);
  private readonly dv = new DataView(this.buf.buffer);

  constructor(private readonly hv: Hypervisor) {}

  call(v: Vcpu, argLo: number, argHi: number): number {
    const hv = this.hv;
    if (!hv.ga.copyFrom(v, argLo, argHi, this.buf, this.buf.length)) return -EFAULT;
    const dv = this.dv;
    const cmd = dv.getUint32(F.cmd.offset, true);
    if (dv.getUint32(F.interface_version.offset, true) !== C.XEN_DOMCTL_INTERFACE_VERSION) return -EACCES;
    const domid = dv.getUint16(F.domain.offset, true);
    let d: Domain | undefined;
    if (cmd !== C.XEN_DOMCTL_createdomain) {
      d = domid < DOMID_FIRST_RESERVED ? hv.domainById(domid) : undefined;
      if (!d && cmd !== C.XEN_DOMCTL_getdomaininfo) return -ESRCH;
    }
    if (!v.domain.isPrivileged) return -EPERM;
    let rc: number;
    let copyback = false;
    switch (cmd) {
      case C.XEN_DOMCTL_createdomain:
        rc = this.create(domid);
        copyback = rc === 0;
        break;
      case C.XEN_DOMCTL_max_mem: {
        const kb = dv.getUint32(F['u.max_mem.max_memkb'].offset, true) +
          dv.getUint32(F['u.max_mem.max_memkb'].offset + 4, true) * 4294967296;
        d!.maxPages = Math.min(Math.floor(kb / 4), 0xffffffff);
        rc = 0;
        break;
      }
      case C.XEN_DOMCTL_destroydomain:
        rc = killDomain(hv, d!, v.domain);
        break;
      case C.XEN_DOMCTL_pausedomain:
        rc = this.pause(d!, v.domain);
        break;
      case C.XEN_DOMCTL_unpausedomain:
        rc = this.unpause(d!);
        break;
      case C.XEN_DOMCTL_getdomaininfo:
        rc = this.getDomainInfo(d, domid);
        copyback = rc === 0;
        break;
      case C.XEN_DOMCTL_scheduler_op:
        rc = this.schedulerOp(d!);
        copyback = rc === 0;
        break;
      case C.XEN_DOMCTL_set_virq_handler:
        // set_global_virq_handler: -EINVAL for a VIRQ that is not global.
        rc = hv.evtchn.setGlobalVirqHandler(d!, dv.getUint32(F['u.set_virq_handler.virq'].offset, true));
        break;
      default:
        rc = -ENOSYS;
    }
    if (copyback && !hv.ga.copyTo(v, argLo, argHi, this.buf, this.buf.length)) return -EFAULT;
    return rc;
  }

  /**
   * XEN_DOMCTL_scheduler_op for the credit scheduler: -EINVAL for another scheduler's
   * id or a command other than getinfo/putinfo. putinfo takes weight 0 and cap 0xffff
   * to mean "unchanged" and accepts any other value (the range checks are xl's).
   */
  private schedulerOp(d: Domain): number {
    const dv = this.dv;
    const at = (name: string): number => F[`u.scheduler_op.${name}` as keyof typeof F].offset;
    if (dv.getUint32(at('sched_id'), true) !== C.XEN_SCHEDULER_CREDIT) return -EINVAL;
    const cmd = dv.getUint32(at('cmd'), true);
    if (cmd === C.XEN_DOMCTL_SCHEDOP_getinfo) {
      dv.setUint16(at('u.credit.weight'), d.sched.weight, true);
      dv.setUint16(at('u.credit.cap'), d.sched.cap, true);
      return 0;
    }
    if (cmd !== C.XEN_DOMCTL_SCHEDOP_putinfo) return -EINVAL;
    const weight = dv.getUint16(at('u.credit.weight'), true);
    const cap = dv.getUint16(at('u.credit.cap'), true);
    if (weight !== 0) d.sched.weight = weight;
    if (cap !== 0xffff) d.sched.cap = cap;
    return 0;
  }

  private create(requested: number): number {
    const dv = this.dv;
    const U = (name: string): number => F[`u.createdomain.${name}` as keyof typeof F].offset;
    const flags = dv.getUint32(U('flags'), true);
    const maxVcpus = dv.getUint32(U('max_vcpus'), true);
    if ((flags & ~PV_CDF_FLAGS) !== 0) return -EINVAL;
    if (maxVcpus < 1 || maxVcpus > MAX_PV_VCPUS) return -EINVAL;
    if (dv.getUint32(U('arch.emulation_flags'), true) !== 0) return -EINVAL;
    const handle = this.buf.slice(U('handle'), U('handle') + 16);
    // evtchn_init: min(max_evtchn_port, INT_MAX); 0 leaves the domain no usable port.
    const maxEvtchnPort = Math.min(dv.getUint32(U('max_evtchn_port'), true), 0x7fffffff);
    // grant_table_init: a negative limit means Xen's default (opt_max_grant_frames etc.).
    const gf = dv.getInt32(U('max_grant_frames'), true);
    const mf = dv.getInt32(U('max_maptrack_frames'), true);
    const d = createDomain(this.hv, {
      domid: requested, maxVcpus, handle, flags, maxEvtchnPort,
      maxGrantFrames: gf < 0 ? undefined : gf, maxMaptrackFrames: mf < 0 ? undefined : mf,
    });
    if (typeof d === 'number') return d;
    dv.setUint16(F.domain.offset, d.domid, true);
    return 0;
  }

  private pause(d: Domain, caller: Domain): number {
    if (d === caller) return -EINVAL;
    if (d.pauseCount + 1 > MAX_PAUSE_COUNT) return -EOVERFLOW;
    d.pauseCount++;
    if (d.state === DomainState.Running) d.transition(DomainState.Paused);
    return 0;
  }

  private unpause(d: Domain): number {
    if (d.pauseCount === 0) return -EINVAL;
    d.pauseCount--;
    if (d.pauseCount === 0 && d.state === DomainState.Paused) {
      d.transition(DomainState.Running);
      this.hv.sched.wakeDomain(d, this.hv.clock.now);
    }
    return 0;
  }

  /** Xen 4.17: the domain asked for, or else the first with a higher id. */
  private getDomainInfo(found: Domain | undefined, domid: number): number {
    let d = found;
    if (!d) {
      if (domid >= DOMID_FIRST_RESERVED) return -EINVAL;
      d = this.hv.listDomains().find((x) => x.domid >= domid);
      if (!d) return -ESRCH;
    }
    const dv = this.dv;
    this.buf.fill(0, F.u.offset, F.u.offset + F.u.size);
    const G = (name: string): number => F[`u.getdomaininfo.${name}` as keyof typeof F].offset;
    let flags = 0;
    if (d.isDying) flags |= C.XEN_DOMINF_dying;
    if (d.state === DomainState.Crashed || d.state === DomainState.Shutdown) {
      flags |= C.XEN_DOMINF_shutdown | ((d.shutdownCode & C.XEN_DOMINF_shutdownmask) << C.XEN_DOMINF_shutdownshift);
    }
    if (d.pauseCount > 0) flags |= C.XEN_DOMINF_paused;
    const online = d.vcpus.filter((x) => x.isUp).length;
    if (d.state === DomainState.Running && online > 0) flags |= C.XEN_DOMINF_running;
    dv.setUint16(F.domain.offset, d.domid, true);
    dv.setUint16(G('domain'), d.domid, true);
    dv.setUint32(G('flags'), flags, true);
    dv.setUint32(G('tot_pages'), d.totPages, true);
    dv.setUint32(G('max_pages'), d.maxPages, true);
    dv.setUint32(G('shared_info_frame'), Math.max(d.sharedInfoMfn, 0), true);
    dv.setUint32(G('nr_online_vcpus'), online, true);
    dv.setUint32(G('max_vcpu_id'), d.vcpus.length === 0 ? C.XEN_INVALID_MAX_VCPU_ID : d.vcpus.length - 1, true);
    this.buf.set(d.handle, G('handle'));
    dv.setUint8(G('gpaddr_bits'), 46);
    return 0;
  }
}
