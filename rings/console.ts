// The PV console page (io/console.h, struct xencons_interface): an input ring from the
// back end (xenconsoled) to the guest and an output ring from the guest, each a byte
// ring with free-running indices masked by MASK_XENCONS_IDX. rings/ layer: imports
// only hypervisor/public/.
//
// Xen 4.17's header (the one installed) has no `connection` field: that byte came later.

import { struct } from '../hypervisor/public/layout.ts';
import type { ByteRing } from './byte-ring.ts';

export const XENCONS_INTERFACE = struct('struct xencons_interface', 3088, {
  in: [0, 1024],
  out: [1024, 2048],
  in_cons: [3072, 4],
  in_prod: [3076, 4],
  out_cons: [3080, 4],
  out_prod: [3084, 4],
});

const F = XENCONS_INTERFACE.fields;

/** Back end to guest: keyboard input. */
export const XENCONS_IN: ByteRing = Object.freeze({
  name: 'in', data: F.in.offset, size: F.in.size, cons: F.in_cons.offset, prod: F.in_prod.offset,
});

/** Guest to back end: console output. */
export const XENCONS_OUT: ByteRing = Object.freeze({
  name: 'out', data: F.out.offset, size: F.out.size, cons: F.out_cons.offset, prod: F.out_prod.offset,
});

/** MASK_XENCONS_IDX(idx, ring): the index within a ring of `size` bytes. */
export function maskXenconsIdx(idx: number, size: number): number {
  return (idx & (size - 1)) >>> 0;
}
