// x86-64 specifics of the PV ABI (public/arch-x86/xen.h and arch-x86/xen-x86_64.h):
// segment selectors, Xen's reserved virtual range, and the arch parts of the shared structs.
// Part of the public ABI (hypervisor/public/): imported by the hypervisor and by guest code alike.

import { struct } from './layout.ts';

// arch-x86/xen-x86_64.h: flat selectors in Xen's reserved GDT entries. A 64-bit PV
// kernel runs in ring 3 on real hardware, so kernel and user share the ring-3 ones.
export const FLAT_RING3_CS32 = 0xe023;
export const FLAT_RING3_CS64 = 0xe033;
export const FLAT_RING3_DS32 = 0xe02b;
export const FLAT_RING3_DS64 = 0x0000;
export const FLAT_RING3_SS32 = 0xe02b;
export const FLAT_RING3_SS64 = 0xe02b;
export const FLAT_KERNEL_CS64 = FLAT_RING3_CS64;
export const FLAT_KERNEL_CS32 = FLAT_RING3_CS32;
export const FLAT_KERNEL_CS = FLAT_KERNEL_CS64;
export const FLAT_KERNEL_DS64 = FLAT_RING3_DS64;
export const FLAT_KERNEL_DS32 = FLAT_RING3_DS32;
export const FLAT_KERNEL_DS = FLAT_KERNEL_DS64;
export const FLAT_KERNEL_SS64 = FLAT_RING3_SS64;
export const FLAT_KERNEL_SS32 = FLAT_RING3_SS32;
export const FLAT_KERNEL_SS = FLAT_KERNEL_SS64;
export const FLAT_USER_CS64 = FLAT_RING3_CS64;
export const FLAT_USER_CS32 = FLAT_RING3_CS32;
export const FLAT_USER_CS = FLAT_USER_CS64;
export const FLAT_USER_DS64 = FLAT_RING3_DS64;
export const FLAT_USER_DS32 = FLAT_RING3_DS32;
export const FLAT_USER_DS = FLAT_USER_DS64;
export const FLAT_USER_SS64 = FLAT_RING3_SS64;
export const FLAT_USER_SS32 = FLAT_RING3_SS32;
export const FLAT_USER_SS = FLAT_USER_SS64;

// arch-x86/xen-x86_64.h: Xen's virtual range. These are exact doubles (multiples of 2^43).
export const HYPERVISOR_VIRT_START = 0xffff800000000000;
export const HYPERVISOR_VIRT_END = 0xffff880000000000;
export const MACH2PHYS_VIRT_START = 0xffff800000000000;
export const MACH2PHYS_VIRT_END = 0xffff804000000000;
/** Entries of the read-only M2P window (8 bytes each): 2^35. */
export const MACH2PHYS_NR_ENTRIES = (MACH2PHYS_VIRT_END - MACH2PHYS_VIRT_START) / 8;

// Not public: the L4 slots of Xen's range as Xen's asm/config.h lays them out.
// Slots 256..271 belong to Xen; guests own 0..255 and 272..511.
export const XEN_L4_SLOT_FIRST = 256;
export const XEN_L4_SLOT_LAST = 271;
/** Read-only M2P, the one Xen slot a PV guest may read (RO_MPT_VIRT_START). */
export const L4_SLOT_RO_MPT = 256;
export const L4_SLOT_PCI_MCFG = 257;
/** Xen's linear (self-map) page table of the current guest. */
export const L4_SLOT_LINEAR_PT = 258;
export const L4_SLOT_SH_LINEAR_PT = 259;
/** Per-domain mappings: GDT and LDT shadows. */
export const L4_SLOT_PERDOMAIN = 260;
/** Read-write M2P, Xen's text, data and bss, the frame table. */
export const L4_SLOT_XEN = 261;
/** First slot of the 1:1 map of all machine memory (262..271). */
export const L4_SLOT_DIRECTMAP = 262;
export const RO_MPT_VIRT_START = MACH2PHYS_VIRT_START;

// arch-x86/xen-x86_64.h: set_segment_base selectors.
export const SEGBASE_FS = 0;
export const SEGBASE_GS_USER = 1;
export const SEGBASE_GS_KERNEL = 2;
export const SEGBASE_GS_USER_SEL = 3;

// arch-x86/xen.h: limits and GDT reservation.
/** vcpu_info slots in shared_info. */
export const XEN_LEGACY_MAX_VCPUS = 32;
/** GDT frames from this one on (entries from FIRST_RESERVED_GDT_ENTRY) are Xen's. */
export const FIRST_RESERVED_GDT_PAGE = 14;
export const FIRST_RESERVED_GDT_BYTE = FIRST_RESERVED_GDT_PAGE * 4096;
export const FIRST_RESERVED_GDT_ENTRY = FIRST_RESERVED_GDT_BYTE / 8;

/** One virtual IDT entry for set_trap_table; flags bits 1:0 = DPL, bit 2 = mask events. */
export const TRAP_INFO = struct('struct trap_info', 16, {
  vector: [0, 1],
  flags: [1, 1],
  cs: [2, 2],
  address: [8, 8],
});

/** The frame HYPERVISOR_iret pops from the guest stack, lowest address first. */
export const IRET_CONTEXT = struct('struct iret_context', 72, {
  rax: [0, 8],
  r11: [8, 8],
  rcx: [16, 8],
  flags: [24, 8],
  rip: [32, 8],
  cs: [40, 8],
  rflags: [48, 8],
  rsp: [56, 8],
  ss: [64, 8],
});

/** vcpu_info.arch: the virtual CR2 Xen writes before injecting a page fault. */
export const ARCH_VCPU_INFO = struct('struct arch_vcpu_info', 16, {
  cr2: [0, 8],
  pad: [8, 8],
});

/** shared_info.arch: where a PV guest publishes its P2M for the tools. */
export const ARCH_SHARED_INFO = struct('struct arch_shared_info', 48, {
  max_pfn: [0, 8],
  pfn_to_mfn_frame_list_list: [8, 8],
  nmi_reason: [16, 8],
  p2m_cr3: [24, 8],
  p2m_vaddr: [32, 8],
  p2m_generation: [40, 8],
});

/** Tools-only (createdomain/getdomaininfo): which devices Xen emulates; 0 for PV. */
export const XEN_ARCH_DOMAINCONFIG = struct('struct xen_arch_domainconfig', 8, {
  emulation_flags: [0, 4],
  misc_flags: [4, 4],
});

// arch-x86/xen.h: trap_info.flags.
/** Bits 1:0: the lowest ring allowed to `int n` this vector (0 = nobody). */
export const TI_DPL_MASK = 3;
/** Bit 2: entering masks events, like an interrupt gate clearing IF. */
export const TI_IF = 4;

// arch-x86/xen.h and xen-x86_64.h: vcpu_guest_context.flags.
export const VGCF_i387_valid = 1 << 0;
export const VGCF_in_kernel = 1 << 2;
export const VGCF_failsafe_disables_events = 1 << 3;
export const VGCF_syscall_disables_events = 1 << 4;
export const VGCF_online = 1 << 5;
/** iret_context.flags: return as from a syscall (RCX and R11 are not restored). */
export const VGCF_in_syscall = 1 << 8;

/** arch-x86/xen-x86_64.h: struct cpu_user_regs (x86-64). */
export const CPU_USER_REGS = struct('struct cpu_user_regs', 200, {
  r15: [0, 8], r14: [8, 8], r13: [16, 8], r12: [24, 8], rbp: [32, 8], rbx: [40, 8], r11: [48, 8], r10: [56, 8],
  r9: [64, 8], r8: [72, 8], rax: [80, 8], rcx: [88, 8], rdx: [96, 8], rsi: [104, 8], rdi: [112, 8],
  error_code: [120, 4], entry_vector: [124, 4], rip: [128, 8], cs: [136, 2], saved_upcall_mask: [140, 1],
  rflags: [144, 8], rsp: [152, 8], ss: [160, 2], es: [168, 2], ds: [176, 2], fs: [184, 2], gs: [192, 2],
});

/** arch-x86/xen.h: struct vcpu_guest_context (x86-64), the argument of VCPUOP_initialise. */
export const VCPU_GUEST_CONTEXT = struct('struct vcpu_guest_context', 5168, {
  fpu_ctxt: [0, 512],
  flags: [512, 8],
  user_regs: [520, 200],
  trap_ctxt: [720, 4096],
  ldt_base: [4816, 8],
  ldt_ents: [4824, 8],
  gdt_frames: [4832, 128],
  gdt_ents: [4960, 8],
  kernel_ss: [4968, 8],
  kernel_sp: [4976, 8],
  ctrlreg: [4984, 64],
  debugreg: [5048, 64],
  event_callback_eip: [5112, 8],
  failsafe_callback_eip: [5120, 8],
  syscall_callback_eip: [5128, 8],
  vm_assist: [5136, 8],
  fs_base: [5144, 8],
  gs_base_kernel: [5152, 8],
  gs_base_user: [5160, 8],
});
