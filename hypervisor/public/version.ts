// xen_version sub-commands and their buffers (public/version.h), and the feature bits
// XENVER_get_features reports (public/features.h).
// Part of the public ABI (hypervisor/public/): imported by the hypervisor and by guest code alike.

import { struct } from './layout.ts';

// public/version.h: xen_version commands. All return 0 on success except version
// ((major << 16) | minor) and pagesize.
export const XENVER_version = 0;
export const XENVER_extraversion = 1;
export const XENVER_compile_info = 2;
export const XENVER_capabilities = 3;
export const XENVER_changeset = 4;
export const XENVER_platform_parameters = 5;
export const XENVER_get_features = 6;
export const XENVER_pagesize = 7;
export const XENVER_guest_handle = 8;
export const XENVER_commandline = 9;
export const XENVER_build_id = 10;

// public/version.h: string buffer sizes.
export const XEN_EXTRAVERSION_LEN = 16;
export const XEN_CAPABILITIES_INFO_LEN = 1024;
export const XEN_CHANGESET_INFO_LEN = 64;

// public/features.h: bit numbers in the submaps XENVER_get_features returns
// (12, grant_map_identity, is deprecated and commented out there).
export const XENFEAT_writable_page_tables = 0;
export const XENFEAT_writable_descriptor_tables = 1;
export const XENFEAT_auto_translated_physmap = 2;
export const XENFEAT_supervisor_mode_kernel = 3;
export const XENFEAT_pae_pgdir_above_4gb = 4;
export const XENFEAT_mmu_pt_update_preserve_ad = 5;
export const XENFEAT_highmem_assist = 6;
export const XENFEAT_gnttab_map_avail_bits = 7;
export const XENFEAT_hvm_callback_vector = 8;
export const XENFEAT_hvm_safe_pvclock = 9;
export const XENFEAT_hvm_pirqs = 10;
export const XENFEAT_dom0 = 11;
export const XENFEAT_memory_op_vnode_supported = 13;
export const XENFEAT_ARM_SMCCC_supported = 14;
export const XENFEAT_linux_rsdp_unrestricted = 15;
export const XENFEAT_not_direct_mapped = 16;
export const XENFEAT_direct_mapped = 17;
/** Number of 32-bit submaps (submap_idx 0 only). */
export const XENFEAT_NR_SUBMAPS = 1;

/** XENVER_extraversion: a NUL-padded string ("-unstable"). */
export const XEN_EXTRAVERSION = struct('xen_extraversion_t', XEN_EXTRAVERSION_LEN, {});

export const XEN_COMPILE_INFO = struct('struct xen_compile_info', 144, {
  compiler: [0, 64],
  compile_by: [64, 16],
  compile_domain: [80, 32],
  compile_date: [112, 32],
});

/** XENVER_capabilities: space-separated ABIs ("xen-3.0-x86_64 ..."). */
export const XEN_CAPABILITIES_INFO = struct('xen_capabilities_info_t', XEN_CAPABILITIES_INFO_LEN, {});

export const XEN_CHANGESET_INFO = struct('xen_changeset_info_t', XEN_CHANGESET_INFO_LEN, {});

/** XENVER_platform_parameters: the lowest address Xen reserves (HYPERVISOR_VIRT_START). */
export const XEN_PLATFORM_PARAMETERS = struct('struct xen_platform_parameters', 8, {
  virt_start: [0, 8],
});

/** XENVER_get_features: the guest fills submap_idx, Xen fills submap. */
export const XEN_FEATURE_INFO = struct('struct xen_feature_info', 8, {
  submap_idx: [0, 4],
  submap: [4, 4],
});

/** XENVER_commandline: Xen's own command line. */
export const XEN_COMMANDLINE = struct('xen_commandline_t', 1024, {});

/** XENVER_build_id: len in, then len bytes of build id out from buf (a flexible array). */
export const XEN_BUILD_ID = struct('struct xen_build_id', 4, {
  len: [0, 4],
  buf: [4, 0],
});
