// The kernel's memory management: a physical page allocator over the PFNs the boot
// image left free, and process address spaces — a four-level table per process whose
// kernel half is shared with the boot tables and whose user half (the first GiB) maps
// the process's pages. Layer: guests. Every page-table write goes through the pv-ops,
// so the same code writes memory natively and makes validated updates under Xen.

import type { PvOps } from './pvops.ts';
import { copyPage, zeroPage } from './mem.ts';
import { DIRECT_MAP, DIRECT_MAP_L4_SLOT, KERNEL_TEXT_L4_SLOT, USER_LIMIT } from './layout.ts';

export const PTE_P = 0x1;
export const PTE_RW = 0x2;
export const PTE_US = 0x4;
export const PTE_A = 0x20;
export const PTE_D = 0x40;
/** Flags of an upper-level entry: user pages below it are reachable. */
export const TABLE_FLAGS = PTE_P | PTE_RW | PTE_US | PTE_A;
export const USER_DATA = PTE_P | PTE_RW | PTE_US | PTE_A | PTE_D;
export const USER_TEXT_FLAGS = PTE_P | PTE_US | PTE_A;

export function pfnVa(pfn: number): number {
  return DIRECT_MAP + pfn * 4096;
}

/** Physical pages: a stack of free PFNs (lowest handed out first). */
export class PageAllocator {
  private readonly free: number[] = [];

  constructor(first: number, end: number) {
    for (let pfn = end - 1; pfn >= first; pfn--) this.free.push(pfn);
  }

  get available(): number {
    return this.free.length;
  }

  /** A PFN, or -1 when memory is exhausted. */
  alloc(): number {
    return this.free.pop() ?? -1;
  }

  release(pfn: number): void {
    this.free.push(pfn);
  }
}

/** A user page mapped in an address space. */
export interface UserPage {
  va: number;
  pfn: number;
  flags: number;
  /** Shared with other address spaces (the program text): not copied or freed. */
  shared: boolean;
}

export class AddressSpace {
  readonly l4: number;
  private readonly l3: number;
  private readonly l2: number;
  /** L1 tables by L2 index. */
  private readonly l1s = new Map<number, number>();
  readonly pages: UserPage[] = [];
  private readonly mapped = new Set<number>();
  /** True once the tables are in use (pinned under Xen): later writes are live updates. */
  live = false;

  private constructor(private readonly ops: PvOps, private readonly mem: PageAllocator,
    private readonly masterL4: number, l4: number, l3: number, l2: number) {
    this.l4 = l4;
    this.l3 = l3;
    this.l2 = l2;
    const cpu = ops.cpu;
    // The kernel half: the direct map and the kernel text, shared with the boot tables.
    for (const slot of [DIRECT_MAP_L4_SLOT, KERNEL_TEXT_L4_SLOT]) {
      const at = pfnVa(masterL4) + slot * 8;
      ops.writePte(l4, pfnVa(l4), slot, cpu.load32(at), cpu.load32(at + 4), false);
    }
    this.writeTable(l4, 0, l3);
    this.writeTable(l3, 0, l2);
  }

  /** A new, empty address space (tables not yet in use), or null without memory. */
  static create(ops: PvOps, mem: PageAllocator, masterL4: number): AddressSpace | null {
    const l4 = allocZeroed(ops, mem);
    const l3 = allocZeroed(ops, mem);
    const l2 = allocZeroed(ops, mem);
    if (l4 < 0 || l3 < 0 || l2 < 0) {
      for (const p of [l4, l3, l2]) if (p >= 0) mem.release(p);
      return null;
    }
    return new AddressSpace(ops, mem, masterL4, l4, l3, l2);
  }

  private writeTable(table: number, idx: number, child: number): void {
    const f = this.ops.frameOf(child);
    this.ops.writePte(table, pfnVa(table), idx, ((f * 4096) | TABLE_FLAGS) >>> 0, Math.floor(f / 0x100000), this.live);
  }

  /** The page-table pages, L4 first. */
  tables(): number[] {
    return [this.l4, this.l3, this.l2, ...this.l1s.values()];
  }

  isMapped(va: number): boolean {
    return this.mapped.has(Math.floor(va / 4096));
  }

  /** Maps `pfn` at user address `va`; false without memory for a table. */
  map(va: number, pfn: number, flags: number, shared = false): boolean {
    if (va < 0 || va >= USER_LIMIT) return false;
    const l2i = Math.floor(va / 0x200000);
    let l1 = this.l1s.get(l2i);
    if (l1 === undefined) {
      l1 = allocZeroed(this.ops, this.mem);
      if (l1 < 0) return false;
      // A new table joins a tree in use: it must be made a table before it is hooked in.
      if (this.live) this.ops.activateTables([l1], -1);
      this.l1s.set(l2i, l1);
      this.writeTable(this.l2, l2i, l1);
    }
    const f = this.ops.frameOf(pfn);
    this.ops.writePte(l1, pfnVa(l1), Math.floor(va / 4096) % 512, ((f * 4096) | flags) >>> 0,
      Math.floor(f / 0x100000), this.live);
    this.pages.push({ va, pfn, flags, shared });
    this.mapped.add(Math.floor(va / 4096));
    return true;
  }

  /** Puts the tables in use (pinned under Xen). */
  activate(): void {
    this.ops.activateTables(this.tables(), this.l4);
    this.live = true;
  }

  /**
   * A copy for fork: every private page copied into a new frame, shared pages mapped
   * again. Null if memory runs out (nothing is leaked).
   */
  fork(): AddressSpace | null {
    const child = AddressSpace.create(this.ops, this.mem, this.masterL4);
    if (!child) return null;
    for (const p of this.pages) {
      let pfn = p.pfn;
      if (!p.shared) {
        pfn = this.mem.alloc();
        if (pfn < 0) {
          child.destroy();
          return null;
        }
        copyPage(this.ops.cpu, pfnVa(pfn), pfnVa(p.pfn));
      }
      if (!child.map(p.va, pfn, p.flags, p.shared)) {
        if (!p.shared) this.mem.release(pfn);
        child.destroy();
        return null;
      }
    }
    child.activate();
    return child;
  }

  /** Frees everything: the caller has switched to another address space first. */
  destroy(): void {
    const tables = this.tables();
    if (this.live) this.ops.retireTables(tables, this.l4);
    for (const p of this.pages) if (!p.shared) this.mem.release(p.pfn);
    for (const t of tables) this.mem.release(t);
    this.pages.length = 0;
    this.mapped.clear();
    this.l1s.clear();
    this.live = false;
  }
}

/** A zeroed page (written through the direct map while it is still an ordinary page). */
export function allocZeroed(ops: PvOps, mem: PageAllocator): number {
  const pfn = mem.alloc();
  if (pfn >= 0) zeroPage(ops.cpu, pfnVa(pfn));
  return pfn;
}
