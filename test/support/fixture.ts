// A booted machine for tests: Dom0 and guests built by the hypervisor's builder, each
// with a "kernel" context that drives its vCPU exactly as guest code would.

import { expect } from 'chai';
import { Machine, type GuestHandle, type MachineConfig } from '../../hypervisor/index.ts';
import type { GuestVcpu } from '../../hypervisor/public/vcpu.ts';
import {
  PTE_A, PTE_P, PTE_RW, PTE_US, mmuUpdate, pfnToMfn, pfnToVa, pinTable, pte, ptePtr, readStartInfo, type StartInfo,
} from '../../guests/lib/xen-calls.ts';

/** A guest as its kernel sees itself: vCPU, start_info, and free pages to use. */
export class GuestKernel {
  readonly v: GuestVcpu;
  readonly si: StartInfo;
  private nextFree: number;
  /** A page for hypercall argument structs. */
  readonly buf: number;

  constructor(readonly handle: GuestHandle) {
    this.v = handle.vcpus[0];
    this.si = readStartInfo(this.v, handle.startInfoVa);
    this.nextFree = handle.firstFreePfn;
    this.buf = pfnToVa(this.allocPfn());
  }

  get domid(): number {
    return this.handle.domid;
  }

  /** Takes a free page of this guest's memory; returns its PFN. */
  allocPfn(): number {
    if (this.nextFree >= this.si.nrPages) throw new Error('guest out of free pages');
    return this.nextFree++;
  }

  /** A fresh page: { pfn, mfn, va } (mapped RW by the builder). */
  allocPage(): { pfn: number; mfn: number; va: number } {
    const pfn = this.allocPfn();
    return { pfn, mfn: pfnToMfn(this.v, this.si, pfn), va: pfnToVa(pfn) };
  }

  mfnOf(pfn: number): number {
    return pfnToMfn(this.v, this.si, pfn);
  }

  /** MFN of the bootstrap L4 (start_info.pt_base). */
  get l4(): number {
    return this.mfnOfVa(this.si.ptBase);
  }

  /** The L1 table mapping the bootstrap region: the first L1 after L4, L3 and the L2s. */
  mfnOfVa(va: number): number {
    return this.mfnOf(Math.round((va - pfnToVa(0)) / 4096));
  }

  /** The MFN of the bootstrap L1 covering PFN `pfn` (builder layout: L4, L3, L2s, L1s). */
  bootL1For(pfn: number): number {
    const ptPfn = Math.round((this.si.ptBase - pfnToVa(0)) / 4096);
    const nrL1 = Math.ceil(this.si.nrPages / 512);
    const nrL2 = Math.ceil(nrL1 / 512);
    return this.mfnOf(ptPfn + 2 + nrL2 + Math.floor(pfn / 512));
  }

  /** The bootstrap L2 (single for guests under 1 GiB). */
  get bootL2(): number {
    const ptPfn = Math.round((this.si.ptBase - pfnToVa(0)) / 4096);
    return this.mfnOf(ptPfn + 2);
  }

  get bootL3(): number {
    const ptPfn = Math.round((this.si.ptBase - pfnToVa(0)) / 4096);
    return this.mfnOf(ptPfn + 1);
  }
}

export interface TestMachine {
  m: Machine;
  dom0: GuestKernel;
  guest: GuestKernel;
  other: GuestKernel;
  /** Asserts the invariant checker finds nothing. */
  check(): void;
}

/** A 64 MiB machine with Dom0 (8 MiB) and two 4 MiB guests. */
export function bootTestMachine(cfg: MachineConfig = {}): TestMachine {
  const m = new Machine({ memoryMb: 64, ...cfg });
  const dom0 = new GuestKernel(m.bootDom0({ memoryMb: 8 }));
  const guest = new GuestKernel(m.createGuest({ memoryMb: 4 }));
  const other = new GuestKernel(m.createGuest({ memoryMb: 4 }));
  return {
    m, dom0, guest, other,
    check: () => expect(m.checkInvariants()).to.deep.equal([]),
  };
}

/** A page of a guest's memory: its PFN, MFN and direct-map VA. */
export interface Page {
  pfn: number;
  mfn: number;
  va: number;
}

/** Flags of an upper-level entry a kernel installs for its own tables. */
export const TABLE = PTE_P | PTE_RW | PTE_US | PTE_A;
/** Bytes mapped by one L2 entry. */
export const MB2 = 512 * 4096;
/** The boot L2 slot where tests hook their own L1s (free in every test guest). */
export const HOOK_SLOT = 300;

/**
 * Turns a fresh page of `k` into a pinned page table of `level`: its direct-map entry
 * becomes read-only (so its va is a read-only mapping of the table), then it is
 * pinned, which validates it.
 */
export function makeTable(k: GuestKernel, level: number): Page {
  const p = k.allocPage();
  const r = mmuUpdate(k.v, k.buf, [[ptePtr(k.bootL1For(p.pfn), p.pfn % 512), pte(p.mfn, PTE_P | PTE_A)]]);
  expect(r.rc).to.equal(0);
  expect(pinTable(k.v, k.buf, level, p.mfn)).to.equal(0);
  return p;
}
