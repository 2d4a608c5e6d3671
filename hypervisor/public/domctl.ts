// The control domain's domain-management hypercall (public/domctl.h, interface 0x15):
// command numbers, flags, and struct xen_domctl with the sub-ops the simulator implements.
// Part of the public ABI (hypervisor/public/): imported by the hypervisor and by Dom0's toolstack.

import { nest, struct } from './layout.ts';
import { XEN_ARCH_DOMAINCONFIG } from './arch-x86.ts';

/** Xen rejects a domctl whose interface_version differs (-EACCES). */
export const XEN_DOMCTL_INTERFACE_VERSION = 0x00000015;

// public/domctl.h: domctl commands. Gaps are removed or obsolete commands.
export const XEN_DOMCTL_createdomain = 1;
export const XEN_DOMCTL_destroydomain = 2;
export const XEN_DOMCTL_pausedomain = 3;
export const XEN_DOMCTL_unpausedomain = 4;
export const XEN_DOMCTL_getdomaininfo = 5;
export const XEN_DOMCTL_setvcpuaffinity = 9;
export const XEN_DOMCTL_shadow_op = 10;
export const XEN_DOMCTL_max_mem = 11;
export const XEN_DOMCTL_setvcpucontext = 12;
export const XEN_DOMCTL_getvcpucontext = 13;
export const XEN_DOMCTL_getvcpuinfo = 14;
export const XEN_DOMCTL_max_vcpus = 15;
export const XEN_DOMCTL_scheduler_op = 16;
export const XEN_DOMCTL_setdomainhandle = 17;
export const XEN_DOMCTL_setdebugging = 18;
export const XEN_DOMCTL_irq_permission = 19;
export const XEN_DOMCTL_iomem_permission = 20;
export const XEN_DOMCTL_ioport_permission = 21;
export const XEN_DOMCTL_hypercall_init = 22;
export const XEN_DOMCTL_settimeoffset = 24;
export const XEN_DOMCTL_getvcpuaffinity = 25;
export const XEN_DOMCTL_real_mode_area = 26;
export const XEN_DOMCTL_resumedomain = 27;
export const XEN_DOMCTL_sendtrigger = 28;
export const XEN_DOMCTL_subscribe = 29;
export const XEN_DOMCTL_gethvmcontext = 33;
export const XEN_DOMCTL_sethvmcontext = 34;
export const XEN_DOMCTL_set_address_size = 35;
export const XEN_DOMCTL_get_address_size = 36;
export const XEN_DOMCTL_assign_device = 37;
export const XEN_DOMCTL_bind_pt_irq = 38;
export const XEN_DOMCTL_memory_mapping = 39;
export const XEN_DOMCTL_ioport_mapping = 40;
export const XEN_DOMCTL_set_ext_vcpucontext = 42;
export const XEN_DOMCTL_get_ext_vcpucontext = 43;
export const XEN_DOMCTL_set_opt_feature = 44;
export const XEN_DOMCTL_test_assign_device = 45;
export const XEN_DOMCTL_set_target = 46;
export const XEN_DOMCTL_deassign_device = 47;
export const XEN_DOMCTL_unbind_pt_irq = 48;
export const XEN_DOMCTL_get_device_group = 50;
export const XEN_DOMCTL_debug_op = 54;
export const XEN_DOMCTL_gethvmcontext_partial = 55;
export const XEN_DOMCTL_vm_event_op = 56;
export const XEN_DOMCTL_mem_sharing_op = 57;
export const XEN_DOMCTL_gettscinfo = 59;
export const XEN_DOMCTL_settscinfo = 60;
export const XEN_DOMCTL_getpageframeinfo3 = 61;
export const XEN_DOMCTL_setvcpuextstate = 62;
export const XEN_DOMCTL_getvcpuextstate = 63;
export const XEN_DOMCTL_set_access_required = 64;
export const XEN_DOMCTL_audit_p2m = 65;
export const XEN_DOMCTL_set_virq_handler = 66;
export const XEN_DOMCTL_set_broken_page_p2m = 67;
export const XEN_DOMCTL_setnodeaffinity = 68;
export const XEN_DOMCTL_getnodeaffinity = 69;
export const XEN_DOMCTL_cacheflush = 71;
export const XEN_DOMCTL_get_vcpu_msrs = 72;
export const XEN_DOMCTL_set_vcpu_msrs = 73;
export const XEN_DOMCTL_setvnumainfo = 74;
export const XEN_DOMCTL_psr_cmt_op = 75;
export const XEN_DOMCTL_monitor_op = 77;
export const XEN_DOMCTL_psr_alloc = 78;
export const XEN_DOMCTL_soft_reset = 79;
export const XEN_DOMCTL_vuart_op = 81;
export const XEN_DOMCTL_get_cpu_policy = 82;
export const XEN_DOMCTL_set_cpu_policy = 83;
export const XEN_DOMCTL_vmtrace_op = 84;
export const XEN_DOMCTL_get_paging_mempool_size = 85;
export const XEN_DOMCTL_set_paging_mempool_size = 86;
export const XEN_DOMCTL_gdbsx_guestmemio = 1000;
export const XEN_DOMCTL_gdbsx_pausevcpu = 1001;
export const XEN_DOMCTL_gdbsx_unpausevcpu = 1002;
export const XEN_DOMCTL_gdbsx_domstatus = 1003;

// public/domctl.h: xen_domctl_createdomain.flags.
export const XEN_DOMCTL_CDF_hvm = 1 << 0;
export const XEN_DOMCTL_CDF_hap = 1 << 1;
export const XEN_DOMCTL_CDF_s3_integrity = 1 << 2;
export const XEN_DOMCTL_CDF_oos_off = 1 << 3;
export const XEN_DOMCTL_CDF_xs_domain = 1 << 4;
export const XEN_DOMCTL_CDF_iommu = 1 << 5;
export const XEN_DOMCTL_CDF_nested_virt = 1 << 6;
export const XEN_DOMCTL_CDF_vpmu = 1 << 7;
/** The highest flag: Xen rejects any bit above it (-EINVAL). */
export const XEN_DOMCTL_CDF_MAX = XEN_DOMCTL_CDF_vpmu;

// public/domctl.h: createdomain's iommu_opts and grant_opts.
export const XEN_DOMCTL_IOMMU_no_sharept = 1 << 0;
export const XEN_DOMCTL_IOMMU_MAX = XEN_DOMCTL_IOMMU_no_sharept;
/** grant_opts bits 3:0: the grant-table version limit. */
export const XEN_DOMCTL_GRANT_version_mask = 0xf;

// public/domctl.h: xen_domctl_getdomaininfo.flags; the shutdown code is in bits 23:16.
export const XEN_DOMINF_dying = 1 << 0;
export const XEN_DOMINF_hvm_guest = 1 << 1;
export const XEN_DOMINF_shutdown = 1 << 2;
export const XEN_DOMINF_paused = 1 << 3;
export const XEN_DOMINF_blocked = 1 << 4;
export const XEN_DOMINF_running = 1 << 5;
export const XEN_DOMINF_debugged = 1 << 6;
export const XEN_DOMINF_xs_domain = 1 << 7;
export const XEN_DOMINF_hap = 1 << 8;
export const XEN_DOMINF_shutdownmask = 255;
export const XEN_DOMINF_shutdownshift = 16;
/** getdomaininfo.max_vcpu_id of a domain without vCPUs. */
export const XEN_INVALID_MAX_VCPU_ID = 0xffffffff;

/** createdomain (domain is IN/OUT: 0 or a reserved id asks Xen to pick one). */
export const XEN_DOMCTL_CREATEDOMAIN = struct('struct xen_domctl_createdomain', 64, {
  ssidref: [0, 4],
  handle: [4, 16],
  flags: [20, 4],
  iommu_opts: [24, 4],
  max_vcpus: [28, 4],
  max_evtchn_port: [32, 4],
  max_grant_frames: [36, 4],
  max_maptrack_frames: [40, 4],
  grant_opts: [44, 4],
  vmtrace_size: [48, 4],
  cpupool_id: [52, 4],
  ...nest('arch', 56, XEN_ARCH_DOMAINCONFIG),
});

/** getdomaininfo: one domain's state, as the toolstack polls it. */
export const XEN_DOMCTL_GETDOMAININFO = struct('struct xen_domctl_getdomaininfo', 112, {
  domain: [0, 2],
  pad1: [2, 2],
  flags: [4, 4],
  tot_pages: [8, 8],
  max_pages: [16, 8],
  outstanding_pages: [24, 8],
  shr_pages: [32, 8],
  paged_pages: [40, 8],
  shared_info_frame: [48, 8],
  cpu_time: [56, 8],
  nr_online_vcpus: [64, 4],
  max_vcpu_id: [68, 4],
  ssidref: [72, 4],
  handle: [76, 16],
  cpupool: [92, 4],
  gpaddr_bits: [96, 1],
  pad2: [97, 7],
  ...nest('arch_config', 104, XEN_ARCH_DOMAINCONFIG),
});

export const XEN_DOMCTL_MAX_MEM = struct('struct xen_domctl_max_mem', 8, {
  max_memkb: [0, 8],
});

export const XEN_DOMCTL_MAX_VCPUS = struct('struct xen_domctl_max_vcpus', 4, {
  max: [0, 4],
});

// public/domctl.h: XEN_DOMCTL_scheduler_op.
export const XEN_SCHEDULER_CREDIT = 5;
export const XEN_SCHEDULER_CREDIT2 = 6;
export const XEN_SCHEDULER_ARINC653 = 7;
export const XEN_SCHEDULER_RTDS = 8;
export const XEN_SCHEDULER_NULL = 9;
export const XEN_DOMCTL_SCHEDOP_putinfo = 0;
export const XEN_DOMCTL_SCHEDOP_getinfo = 1;
export const XEN_DOMCTL_SCHEDOP_putvcpuinfo = 2;
export const XEN_DOMCTL_SCHEDOP_getvcpuinfo = 3;

export const XEN_DOMCTL_SCHED_CREDIT = struct('struct xen_domctl_sched_credit', 4, {
  weight: [0, 2],
  cap: [2, 2],
});

export const XEN_DOMCTL_SCHEDULER_OP = struct('struct xen_domctl_scheduler_op', 24, {
  sched_id: [0, 4],
  cmd: [4, 4],
  ...nest('u.credit', 8, XEN_DOMCTL_SCHED_CREDIT),
});

/** XEN_DOMCTL_set_virq_handler: the global VIRQ the domain is to handle. */
export const XEN_DOMCTL_SET_VIRQ_HANDLER = struct('struct xen_domctl_set_virq_handler', 4, {
  virq: [0, 4],
});

/** The domctl argument: a header, then a 128-byte union of per-command structs at u. */
export const XEN_DOMCTL = struct('struct xen_domctl', 144, {
  cmd: [0, 4],
  interface_version: [4, 4],
  domain: [8, 2],
  _pad: [10, 6],
  u: [16, 128],
  ...nest('u.createdomain', 16, XEN_DOMCTL_CREATEDOMAIN),
  ...nest('u.getdomaininfo', 16, XEN_DOMCTL_GETDOMAININFO),
  ...nest('u.max_mem', 16, XEN_DOMCTL_MAX_MEM),
  ...nest('u.max_vcpus', 16, XEN_DOMCTL_MAX_VCPUS),
  ...nest('u.scheduler_op', 16, XEN_DOMCTL_SCHEDULER_OP),
  ...nest('u.set_virq_handler', 16, XEN_DOMCTL_SET_VIRQ_HANDLER),
});
