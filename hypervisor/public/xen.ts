// The core PV interface (public/xen.h): hypercall numbers, domain ids, mmu_update and
// mmuext_op commands, and the layouts of start_info, shared_info and vcpu_info.
// Part of the public ABI (hypervisor/public/): imported by the hypervisor and by guest code alike.

import { nest, struct } from './layout.ts';
import { ARCH_SHARED_INFO, ARCH_VCPU_INFO, XEN_LEGACY_MAX_VCPUS } from './arch-x86.ts';

export { XEN_LEGACY_MAX_VCPUS } from './arch-x86.ts';

/** The interface version these numbers follow (xen-compat.h __XEN_LATEST_INTERFACE_VERSION__, Xen 4.14+). */
export const XEN_LATEST_INTERFACE_VERSION = 0x00040e00;

// public/xen.h: hypercall numbers (current interface: no compat remapping).
export const HYPERVISOR_set_trap_table = 0;
export const HYPERVISOR_mmu_update = 1;
export const HYPERVISOR_set_gdt = 2;
export const HYPERVISOR_stack_switch = 3;
export const HYPERVISOR_set_callbacks = 4;
export const HYPERVISOR_fpu_taskswitch = 5;
export const HYPERVISOR_sched_op_compat = 6;
export const HYPERVISOR_platform_op = 7;
export const HYPERVISOR_set_debugreg = 8;
export const HYPERVISOR_get_debugreg = 9;
export const HYPERVISOR_update_descriptor = 10;
export const HYPERVISOR_memory_op = 12;
export const HYPERVISOR_multicall = 13;
export const HYPERVISOR_update_va_mapping = 14;
export const HYPERVISOR_set_timer_op = 15;
export const HYPERVISOR_event_channel_op_compat = 16;
export const HYPERVISOR_xen_version = 17;
export const HYPERVISOR_console_io = 18;
export const HYPERVISOR_physdev_op_compat = 19;
export const HYPERVISOR_grant_table_op = 20;
export const HYPERVISOR_vm_assist = 21;
export const HYPERVISOR_update_va_mapping_otherdomain = 22;
export const HYPERVISOR_iret = 23;
export const HYPERVISOR_vcpu_op = 24;
export const HYPERVISOR_set_segment_base = 25;
export const HYPERVISOR_mmuext_op = 26;
export const HYPERVISOR_xsm_op = 27;
export const HYPERVISOR_nmi_op = 28;
export const HYPERVISOR_sched_op = 29;
export const HYPERVISOR_callback_op = 30;
export const HYPERVISOR_xenoprof_op = 31;
export const HYPERVISOR_event_channel_op = 32;
export const HYPERVISOR_physdev_op = 33;
export const HYPERVISOR_hvm_op = 34;
export const HYPERVISOR_sysctl = 35;
export const HYPERVISOR_domctl = 36;
export const HYPERVISOR_kexec_op = 37;
export const HYPERVISOR_tmem_op = 38;
export const HYPERVISOR_argo_op = 39;
export const HYPERVISOR_xenpmu_op = 40;
export const HYPERVISOR_dm_op = 41;
export const HYPERVISOR_hypfs_op = 42;
export const HYPERVISOR_arch_0 = 48;
export const HYPERVISOR_arch_1 = 49;
export const HYPERVISOR_arch_2 = 50;
export const HYPERVISOR_arch_3 = 51;
export const HYPERVISOR_arch_4 = 52;
export const HYPERVISOR_arch_5 = 53;
export const HYPERVISOR_arch_6 = 54;
export const HYPERVISOR_arch_7 = 55;

const HYPERCALL_NAMES: readonly string[] = (() => {
  const all = {
    HYPERVISOR_set_trap_table, HYPERVISOR_mmu_update, HYPERVISOR_set_gdt,
    HYPERVISOR_stack_switch, HYPERVISOR_set_callbacks, HYPERVISOR_fpu_taskswitch,
    HYPERVISOR_sched_op_compat, HYPERVISOR_platform_op, HYPERVISOR_set_debugreg,
    HYPERVISOR_get_debugreg, HYPERVISOR_update_descriptor, HYPERVISOR_memory_op,
    HYPERVISOR_multicall, HYPERVISOR_update_va_mapping, HYPERVISOR_set_timer_op,
    HYPERVISOR_event_channel_op_compat, HYPERVISOR_xen_version, HYPERVISOR_console_io,
    HYPERVISOR_physdev_op_compat, HYPERVISOR_grant_table_op, HYPERVISOR_vm_assist,
    HYPERVISOR_update_va_mapping_otherdomain, HYPERVISOR_iret, HYPERVISOR_vcpu_op,
    HYPERVISOR_set_segment_base, HYPERVISOR_mmuext_op, HYPERVISOR_xsm_op,
    HYPERVISOR_nmi_op, HYPERVISOR_sched_op, HYPERVISOR_callback_op,
    HYPERVISOR_xenoprof_op, HYPERVISOR_event_channel_op, HYPERVISOR_physdev_op,
    HYPERVISOR_hvm_op, HYPERVISOR_sysctl, HYPERVISOR_domctl, HYPERVISOR_kexec_op,
    HYPERVISOR_tmem_op, HYPERVISOR_argo_op, HYPERVISOR_xenpmu_op, HYPERVISOR_dm_op,
    HYPERVISOR_hypfs_op, HYPERVISOR_arch_0, HYPERVISOR_arch_1, HYPERVISOR_arch_2,
    HYPERVISOR_arch_3, HYPERVISOR_arch_4, HYPERVISOR_arch_5, HYPERVISOR_arch_6,
    HYPERVISOR_arch_7,
  };
  const names: string[] = [];
  for (const [name, nr] of Object.entries(all)) names[nr] = name.slice('HYPERVISOR_'.length);
  return names;
})();

/** The hypercall's name for logs ("mmu_update"); an undefined number gives "hypercall <nr>". */
export function hypercallName(nr: number): string {
  return HYPERCALL_NAMES[nr] ?? `hypercall ${nr}`;
}

// public/xen.h: virtual interrupts (bound with EVTCHNOP_bind_virq).
export const VIRQ_TIMER = 0;
export const VIRQ_DEBUG = 1;
export const VIRQ_CONSOLE = 2;
export const VIRQ_DOM_EXC = 3;
export const VIRQ_TBUF = 4;
export const VIRQ_DEBUGGER = 6;
export const VIRQ_XENOPROF = 7;
export const VIRQ_CON_RING = 8;
export const VIRQ_PCPU_STATE = 9;
export const VIRQ_MEM_EVENT = 10;
export const VIRQ_ARGO = 11;
export const VIRQ_ENOMEM = 12;
export const VIRQ_XENPMU = 13;
export const VIRQ_ARCH_0 = 16;
export const VIRQ_ARCH_1 = 17;
export const VIRQ_ARCH_2 = 18;
export const VIRQ_ARCH_3 = 19;
export const VIRQ_ARCH_4 = 20;
export const VIRQ_ARCH_5 = 21;
export const VIRQ_ARCH_6 = 22;
export const VIRQ_ARCH_7 = 23;
export const NR_VIRQS = 24;

// public/xen.h: mmu_update commands, in the low bits of mmu_update.ptr.
export const MMU_NORMAL_PT_UPDATE = 0;
export const MMU_MACHPHYS_UPDATE = 1;
export const MMU_PT_UPDATE_PRESERVE_AD = 2;
export const MMU_PT_UPDATE_NO_TRANSLATE = 3;
/** Not public (Xen's asm/hypercall.h): set in `count` when mmu_update/mmuext_op resume. */
export const MMU_UPDATE_PREEMPTED = 0x80000000;

// public/xen.h: mmuext_op commands.
export const MMUEXT_PIN_L1_TABLE = 0;
export const MMUEXT_PIN_L2_TABLE = 1;
export const MMUEXT_PIN_L3_TABLE = 2;
export const MMUEXT_PIN_L4_TABLE = 3;
export const MMUEXT_UNPIN_TABLE = 4;
export const MMUEXT_NEW_BASEPTR = 5;
export const MMUEXT_TLB_FLUSH_LOCAL = 6;
export const MMUEXT_INVLPG_LOCAL = 7;
export const MMUEXT_TLB_FLUSH_MULTI = 8;
export const MMUEXT_INVLPG_MULTI = 9;
export const MMUEXT_TLB_FLUSH_ALL = 10;
export const MMUEXT_INVLPG_ALL = 11;
export const MMUEXT_FLUSH_CACHE = 12;
export const MMUEXT_SET_LDT = 13;
export const MMUEXT_NEW_USER_BASEPTR = 15;
export const MMUEXT_CLEAR_PAGE = 16;
export const MMUEXT_COPY_PAGE = 17;
export const MMUEXT_FLUSH_CACHE_GLOBAL = 18;
export const MMUEXT_MARK_SUPER = 19;
export const MMUEXT_UNMARK_SUPER = 20;

// public/xen.h: update_va_mapping flags. Bits 1:0 are the flush type; the rest is
// UVMF_LOCAL (0), UVMF_ALL, or a guest pointer to a vCPU bitmap (UVMF_MULTI).
export const UVMF_NONE = 0;
export const UVMF_TLB_FLUSH = 1;
export const UVMF_INVLPG = 2;
export const UVMF_FLUSHTYPE_MASK = 3;
export const UVMF_MULTI = 0;
export const UVMF_LOCAL = 0;
export const UVMF_ALL = 4;

// public/xen.h: console_io commands.
export const CONSOLEIO_write = 0;
export const CONSOLEIO_read = 1;

// public/xen.h: vm_assist commands and types.
export const VMASST_CMD_enable = 0;
export const VMASST_CMD_disable = 1;
export const VMASST_TYPE_4gb_segments = 0;
export const VMASST_TYPE_4gb_segments_notify = 1;
export const VMASST_TYPE_writable_pagetables = 2;
export const VMASST_TYPE_pae_extended_cr3 = 3;
export const VMASST_TYPE_architectural_iopl = 4;
export const VMASST_TYPE_runstate_update_flag = 5;
export const VMASST_TYPE_m2p_strict = 32;

// public/xen.h: reserved domain ids (domid_t is 16 bits).
export const DOMID_FIRST_RESERVED = 0x7ff0;
export const DOMID_SELF = 0x7ff0;
export const DOMID_IO = 0x7ff1;
export const DOMID_XEN = 0x7ff2;
export const DOMID_COW = 0x7ff3;
export const DOMID_INVALID = 0x7ff4;
export const DOMID_IDLE = 0x7fff;
export const DOMID_MASK = 0x7fff;

// public/xen.h: start_info.flags.
export const SIF_PRIVILEGED = 1 << 0;
export const SIF_INITDOMAIN = 1 << 1;
export const SIF_MULTIBOOT_MOD = 1 << 2;
export const SIF_MOD_START_PFN = 1 << 3;
export const SIF_VIRT_P2M_4TOOLS = 1 << 4;
export const SIF_PM_MASK = 0xff << 8;
export const MAX_GUEST_CMDLINE = 1024;

// public/xen.h: vcpu_time_info.flags.
export const XEN_PVCLOCK_TSC_STABLE_BIT = 1 << 0;
export const XEN_PVCLOCK_GUEST_STOPPED = 1 << 1;

// Limits a PV guest sees.
/** Xen dropped MAX_VIRT_CPUS from the public headers; what remains is XEN_LEGACY_MAX_VCPUS. */
export const MAX_VIRT_CPUS = XEN_LEGACY_MAX_VCPUS;
/** Ports of the 2-level event ABI on x86-64: 64 words of 64 bits (event_channel.h EVTCHN_2L_NR_CHANNELS). */
export const NR_EVENT_CHANNELS = 64 * 64;

/** One mmu_update request: ptr = machine address of the entry | MMU_* command. */
export const MMU_UPDATE = struct('struct mmu_update', 16, {
  ptr: [0, 8],
  val: [8, 8],
});

/** One mmuext_op; arg1 and arg2 are unions whose member depends on cmd. */
export const MMUEXT_OP = struct('struct mmuext_op', 24, {
  cmd: [0, 4],
  arg1: [8, 8],
  'arg1.mfn': [8, 8],
  'arg1.linear_addr': [8, 8],
  arg2: [16, 8],
  'arg2.nr_ents': [16, 4],
  'arg2.vcpumask': [16, 8],
  'arg2.src_mfn': [16, 8],
});

/** One multicall entry; args is 6 unsigned longs (element i at args.offset + 8*i). */
export const MULTICALL_ENTRY = struct('struct multicall_entry', 64, {
  op: [0, 8],
  result: [8, 8],
  args: [16, 48],
});

/** Per-vCPU time: a seqlock on version (odd = Xen is updating). */
export const VCPU_TIME_INFO = struct('struct vcpu_time_info', 32, {
  version: [0, 4],
  pad0: [4, 4],
  tsc_timestamp: [8, 8],
  system_time: [16, 8],
  tsc_to_system_mul: [24, 4],
  tsc_shift: [28, 1],
  flags: [29, 1],
  pad1: [30, 2],
});

/** Per-vCPU shared state; evtchn_upcall_mask is the virtual interrupt flag (1 = masked). */
export const VCPU_INFO = struct('struct vcpu_info', 64, {
  evtchn_upcall_pending: [0, 1],
  evtchn_upcall_mask: [1, 1],
  evtchn_pending_sel: [8, 8],
  ...nest('arch', 16, ARCH_VCPU_INFO),
  ...nest('time', 32, VCPU_TIME_INFO),
});

/** The shared page; vcpu_info[i] is at vcpu_info.offset + i * VCPU_INFO.size. */
export const SHARED_INFO = struct('struct shared_info', 3136, {
  vcpu_info: [0, XEN_LEGACY_MAX_VCPUS * 64],
  evtchn_pending: [2048, 512],
  evtchn_mask: [2560, 512],
  wc_version: [3072, 4],
  wc_sec: [3076, 4],
  wc_nsec: [3080, 4],
  wc_sec_hi: [3084, 4],
  ...nest('arch', 3088, ARCH_SHARED_INFO),
});

/** What the domain builder hands a PV kernel at boot (its address is in rsi). */
export const START_INFO = struct('struct start_info', 1168, {
  magic: [0, 32],
  nr_pages: [32, 8],
  shared_info: [40, 8],
  flags: [48, 4],
  store_mfn: [56, 8],
  store_evtchn: [64, 4],
  console: [72, 16],
  'console.domU': [72, 16],
  'console.domU.mfn': [72, 8],
  'console.domU.evtchn': [80, 4],
  'console.dom0': [72, 8],
  'console.dom0.info_off': [72, 4],
  'console.dom0.info_size': [76, 4],
  pt_base: [88, 8],
  nr_pt_frames: [96, 8],
  mfn_list: [104, 8],
  mod_start: [112, 8],
  mod_len: [120, 8],
  cmd_line: [128, MAX_GUEST_CMDLINE],
  first_p2m_pfn: [1152, 8],
  nr_p2m_frames: [1160, 8],
});

/** A domain's 16-byte handle (UUID), as in createdomain and getdomaininfo. */
export const XEN_DOMAIN_HANDLE = struct('xen_domain_handle_t', 16, {});
