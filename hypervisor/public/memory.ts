// memory_op sub-commands, their flags and argument layouts (public/memory.h).
// Part of the public ABI (hypervisor/public/): imported by the hypervisor and by guest code alike.

import { nest, struct } from './layout.ts';

// public/memory.h: memory_op commands (8 was translate_gpfn_list, removed).
export const XENMEM_increase_reservation = 0;
export const XENMEM_decrease_reservation = 1;
export const XENMEM_maximum_ram_page = 2;
export const XENMEM_current_reservation = 3;
export const XENMEM_maximum_reservation = 4;
export const XENMEM_machphys_mfn_list = 5;
export const XENMEM_populate_physmap = 6;
export const XENMEM_add_to_physmap = 7;
export const XENMEM_memory_map = 9;
export const XENMEM_machine_memory_map = 10;
export const XENMEM_exchange = 11;
export const XENMEM_machphys_mapping = 12;
export const XENMEM_set_memory_map = 13;
export const XENMEM_maximum_gpfn = 14;
export const XENMEM_remove_from_physmap = 15;
export const XENMEM_set_pod_target = 16;
export const XENMEM_get_pod_target = 17;
export const XENMEM_get_sharing_freed_pages = 18;
export const XENMEM_get_sharing_shared_pages = 19;
export const XENMEM_paging_op = 20;
export const XENMEM_access_op = 21;
export const XENMEM_sharing_op = 22;
export const XENMEM_add_to_physmap_batch = 23;
export const XENMEM_claim_pages = 24;
export const XENMEM_machphys_compat_mfn_list = 25;
export const XENMEM_get_vnumainfo = 26;
export const XENMEM_reserved_device_memory_map = 27;
export const XENMEM_acquire_resource = 28;

// Not public (Xen's xen/hypercall.h): memory_op's cmd carries a continuation's
// start extent above the low 6 bits.
export const MEMOP_EXTENT_SHIFT = 6;
export const MEMOP_CMD_MASK = (1 << MEMOP_EXTENT_SHIFT) - 1;

// public/memory.h: xen_memory_reservation.mem_flags (XENMEMF_*).
export const XENMEMF_populate_on_demand = 1 << 16;
export const XENMEMF_exact_node_request = 1 << 17;
export const XENMEMF_vnode = 1 << 18;
/** Restrict the allocation to machine addresses below 2^bits (bits 7:0). */
export function XENMEMF_address_bits(bits: number): number {
  return bits;
}
export function XENMEMF_get_address_bits(flags: number): number {
  return flags & 0xff;
}
/** Prefer NUMA node `node` (bits 15:8 hold node + 1). */
export function XENMEMF_node(node: number): number {
  return (node + 1) << 8;
}
export function XENMEMF_get_node(flags: number): number {
  return ((flags >> 8) - 1) & 0xff;
}
export function XENMEMF_exact_node(node: number): number {
  return XENMEMF_node(node) | XENMEMF_exact_node_request;
}

// public/memory.h: add_to_physmap spaces.
export const XENMAPSPACE_shared_info = 0;
export const XENMAPSPACE_grant_table = 1;
export const XENMAPSPACE_gmfn = 2;
export const XENMAPSPACE_gmfn_range = 3;
export const XENMAPSPACE_gmfn_foreign = 4;
export const XENMAPSPACE_dev_mmio = 5;
/** In xen_add_to_physmap.idx for XENMAPSPACE_grant_table: map a status frame. */
export const XENMAPIDX_grant_table_status = 0x80000000;

/** increase/decrease_reservation, populate_physmap, claim_pages. */
export const XEN_MEMORY_RESERVATION = struct('struct xen_memory_reservation', 32, {
  extent_start: [0, 8],
  nr_extents: [8, 8],
  extent_order: [16, 4],
  mem_flags: [20, 4],
  domid: [24, 2],
});

/** exchange: `in` extents are swapped for `out` ones; nr_exchanged counts progress. */
export const XEN_MEMORY_EXCHANGE = struct('struct xen_memory_exchange', 72, {
  ...nest('in', 0, XEN_MEMORY_RESERVATION),
  ...nest('out', 32, XEN_MEMORY_RESERVATION),
  nr_exchanged: [64, 8],
});

/** current_reservation, maximum_reservation, maximum_gpfn. */
export const XEN_MEMORY_DOMAIN = struct('struct xen_memory_domain', 2, {
  domid: [0, 2],
});

/** machphys_mfn_list: the MFNs backing the M2P, one per 2 MB extent. */
export const XEN_MACHPHYS_MFN_LIST = struct('struct xen_machphys_mfn_list', 24, {
  max_extents: [0, 4],
  extent_start: [8, 8],
  nr_extents: [16, 4],
});

/** machphys_mapping: where the read-only M2P is mapped for this guest. */
export const XEN_MACHPHYS_MAPPING = struct('struct xen_machphys_mapping', 24, {
  v_start: [0, 8],
  v_end: [8, 8],
  max_mfn: [16, 8],
});

export const XEN_ADD_TO_PHYSMAP = struct('struct xen_add_to_physmap', 24, {
  domid: [0, 2],
  size: [2, 2],
  space: [4, 4],
  idx: [8, 8],
  gpfn: [16, 8],
});

export const XEN_REMOVE_FROM_PHYSMAP = struct('struct xen_remove_from_physmap', 16, {
  domid: [0, 2],
  gpfn: [8, 8],
});

/** memory_map / machine_memory_map: an e820 buffer of nr_entries entries. */
export const XEN_MEMORY_MAP = struct('struct xen_memory_map', 16, {
  nr_entries: [0, 4],
  buffer: [8, 8],
});

export const XEN_FOREIGN_MEMORY_MAP = struct('struct xen_foreign_memory_map', 24, {
  domid: [0, 2],
  ...nest('map', 8, XEN_MEMORY_MAP),
});
