// Grant tables: HYPERVISOR_grant_table_op sub-commands, the version-1 grant entry a
// granting domain writes in its own table frames, the GTF_/GNTMAP_/GNTCOPY_ flags, the
// GNTST_ per-item statuses and the argument layouts (public/grant_table.h). Part of the
// public ABI (hypervisor/public/): imported by the hypervisor and by guest code alike.

import { struct } from './layout.ts';

// public/grant_table.h: grant_table_op commands.
export const GNTTABOP_map_grant_ref = 0;
export const GNTTABOP_unmap_grant_ref = 1;
export const GNTTABOP_setup_table = 2;
export const GNTTABOP_dump_table = 3;
export const GNTTABOP_transfer = 4;
export const GNTTABOP_copy = 5;
export const GNTTABOP_query_size = 6;
export const GNTTABOP_unmap_and_replace = 7;
export const GNTTABOP_set_version = 8;
export const GNTTABOP_get_status_frames = 9;
export const GNTTABOP_get_version = 10;
export const GNTTABOP_swap_grant_ref = 11;
export const GNTTABOP_cache_flush = 12;

/** Entries 0-7 belong to the toolstack and survive version changes. */
export const GNTTAB_NR_RESERVED_ENTRIES = 8;
/** The console ring's page, granted to the console back end by the builder. */
export const GNTTAB_RESERVED_CONSOLE = 0;
/** The XenStore ring's page, granted to xenstored by the builder. */
export const GNTTAB_RESERVED_XENSTORE = 1;

// grant_entry_v1.flags: the type in bits 0-1.
export const GTF_invalid = 0;
export const GTF_permit_access = 1;
export const GTF_accept_transfer = 2;
/** Version 2 only. */
export const GTF_transitive = 3;
export const GTF_type_mask = 3;
// permit_access subflags: readonly is the granter's; reading and writing are Xen's.
export const _GTF_readonly = 2;
export const GTF_readonly = 1 << _GTF_readonly;
export const _GTF_reading = 3;
export const GTF_reading = 1 << _GTF_reading;
export const _GTF_writing = 4;
export const GTF_writing = 1 << _GTF_writing;
export const _GTF_PWT = 5;
export const GTF_PWT = 1 << _GTF_PWT;
export const _GTF_PCD = 6;
export const GTF_PCD = 1 << _GTF_PCD;
export const _GTF_PAT = 7;
export const GTF_PAT = 1 << _GTF_PAT;
export const _GTF_sub_page = 8;
export const GTF_sub_page = 1 << _GTF_sub_page;
// accept_transfer subflags.
export const _GTF_transfer_committed = 2;
export const GTF_transfer_committed = 1 << _GTF_transfer_committed;
export const _GTF_transfer_completed = 3;
export const GTF_transfer_completed = 1 << _GTF_transfer_completed;

// gnttab_map_grant_ref.flags.
export const _GNTMAP_device_map = 0;
export const GNTMAP_device_map = 1 << _GNTMAP_device_map;
export const _GNTMAP_host_map = 1;
export const GNTMAP_host_map = 1 << _GNTMAP_host_map;
export const _GNTMAP_readonly = 2;
export const GNTMAP_readonly = 1 << _GNTMAP_readonly;
export const _GNTMAP_application_map = 3;
export const GNTMAP_application_map = 1 << _GNTMAP_application_map;
export const _GNTMAP_contains_pte = 4;
export const GNTMAP_contains_pte = 1 << _GNTMAP_contains_pte;
/** Bits 16-31 are the guest's own, ignored by Xen. */
export const _GNTMAP_guest_avail0 = 16;
export const GNTMAP_guest_avail_mask = 0xffff0000;

// gnttab_copy.flags.
export const _GNTCOPY_source_gref = 0;
export const GNTCOPY_source_gref = 1 << _GNTCOPY_source_gref;
export const _GNTCOPY_dest_gref = 1;
export const GNTCOPY_dest_gref = 1 << _GNTCOPY_dest_gref;

// gnttab_cache_flush.op.
export const GNTTAB_CACHE_CLEAN = 1;
export const GNTTAB_CACHE_INVAL = 2;
export const GNTTAB_CACHE_SOURCE_GREF = 0x80000000;

// Per-item statuses (enum grant_status).
export const GNTST_okay = 0;
export const GNTST_general_error = -1;
export const GNTST_bad_domain = -2;
export const GNTST_bad_gntref = -3;
export const GNTST_bad_handle = -4;
export const GNTST_bad_virt_addr = -5;
export const GNTST_bad_dev_addr = -6;
export const GNTST_no_device_space = -7;
export const GNTST_permission_denied = -8;
export const GNTST_bad_page = -9;
export const GNTST_bad_copy_arg = -10;
export const GNTST_address_too_big = -11;
export const GNTST_eagain = -12;
export const GNTST_no_space = -13;

/** A version-1 entry: 8 bytes, 512 to a frame. */
export const GRANT_ENTRY_V1 = struct('struct grant_entry_v1', 8, {
  flags: [0, 2],
  domid: [2, 2],
  frame: [4, 4],
});
/** Version-1 entries in one grant-table frame. */
export const GRANT_ENTRIES_PER_FRAME_V1 = 4096 / GRANT_ENTRY_V1.size;

export const GNTTAB_MAP_GRANT_REF = struct('struct gnttab_map_grant_ref', 32, {
  host_addr: [0, 8],
  flags: [8, 4],
  ref: [12, 4],
  dom: [16, 2],
  status: [18, 2],
  handle: [20, 4],
  dev_bus_addr: [24, 8],
});

export const GNTTAB_UNMAP_GRANT_REF = struct('struct gnttab_unmap_grant_ref', 24, {
  host_addr: [0, 8],
  dev_bus_addr: [8, 8],
  handle: [16, 4],
  status: [20, 2],
});

export const GNTTAB_SETUP_TABLE = struct('struct gnttab_setup_table', 24, {
  dom: [0, 2],
  nr_frames: [4, 4],
  status: [8, 2],
  /** A guest handle: where Xen writes the table's frame numbers (xen_pfn_t each). */
  frame_list: [16, 8],
});

export const GNTTAB_DUMP_TABLE = struct('struct gnttab_dump_table', 4, {
  dom: [0, 2],
  status: [2, 2],
});

export const GNTTAB_TRANSFER = struct('struct gnttab_transfer', 24, {
  mfn: [0, 8],
  domid: [8, 2],
  ref: [12, 4],
  status: [16, 2],
});

/** One end of a copy: a grant reference or a frame of one's own, a domain, an offset. */
export const GNTTAB_COPY = struct('struct gnttab_copy', 40, {
  'source.u.ref': [0, 4],
  'source.u.gmfn': [0, 8],
  'source.domid': [8, 2],
  'source.offset': [10, 2],
  'dest.u.ref': [16, 4],
  'dest.u.gmfn': [16, 8],
  'dest.domid': [24, 2],
  'dest.offset': [26, 2],
  len: [32, 2],
  flags: [34, 2],
  status: [36, 2],
});

export const GNTTAB_QUERY_SIZE = struct('struct gnttab_query_size', 16, {
  dom: [0, 2],
  nr_frames: [4, 4],
  max_nr_frames: [8, 4],
  status: [12, 2],
});

export const GNTTAB_UNMAP_AND_REPLACE = struct('struct gnttab_unmap_and_replace', 24, {
  host_addr: [0, 8],
  new_addr: [8, 8],
  handle: [16, 4],
  status: [20, 2],
});

export const GNTTAB_SET_VERSION = struct('struct gnttab_set_version', 4, {
  version: [0, 4],
});

export const GNTTAB_GET_VERSION = struct('struct gnttab_get_version', 8, {
  dom: [0, 2],
  pad: [2, 2],
  version: [4, 4],
});

export const GNTTAB_GET_STATUS_FRAMES = struct('struct gnttab_get_status_frames', 16, {
  nr_frames: [0, 4],
  dom: [4, 2],
  status: [6, 2],
  frame_list: [8, 8],
});

export const GNTTAB_SWAP_GRANT_REF = struct('struct gnttab_swap_grant_ref', 12, {
  ref_a: [0, 4],
  ref_b: [4, 4],
  status: [8, 2],
});

export const GNTTAB_CACHE_FLUSH = struct('struct gnttab_cache_flush', 16, {
  'a.dev_bus_addr': [0, 8],
  'a.ref': [0, 4],
  offset: [8, 2],
  length: [10, 2],
  op: [12, 4],
});
