// What the memory-management code needs from the hypervisor around it. Layer:
// hypervisor/mm. Kept as an interface so mm/ never imports the Hypervisor class.

import type { MachineMemory } from '../arch/memory.ts';
import type { FrameTable } from '../arch/frame-table.ts';
import type { Domain } from '../domain.ts';
import type { PageAllocator } from '../page-alloc.ts';
import type { Logger } from '../log.ts';

export interface MmHost {
  readonly mem: MachineMemory;
  readonly frames: FrameTable;
  readonly alloc: PageAllocator;
  readonly log: Logger;
  /** The domain with this id, including Xen's pseudo-domains DOMID_XEN and DOMID_IO. */
  domainById(domid: number): Domain | undefined;
  /** Flushes the TLBs of every vCPU of `d` (its dirty CPUs). */
  flushDomainTlbs(d: Domain): void;
  /**
   * A frame of `ownerId` changes type to or from writable: flush every TLB that may
   * hold a stale writable translation of it (Xen flushes the owner's dirty CPUs; a
   * privileged domain mapping it foreign is flushed too, rather than trusted to).
   */
  flushTypeChange(ownerId: number): void;
  /** pv-linear-pt (on by default): whether same-level linear page tables are allowed. */
  readonly linearPageTables: boolean;
}
