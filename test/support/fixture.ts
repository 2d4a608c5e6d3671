// A booted machine for tests: Dom0 and guests built by the hypervisor's builder, each
// with a "kernel" context that drives its vCPU exactly as guest code would.

import { expect } from 'chai';
import { Machine, type GuestHandle, type MachineConfig } from '../../hypervisor/index.ts';
import type { GuestVcpu } from '../../hypervisor/public/vcpu.ts';
import {
  PTE_A, PTE_P, PTE_RW, PTE_US, mmuUpdate, pfnToMfn, pfnToVa, pinTable, pte, ptePtr, readStartInfo, type StartInfo,
  type U64,
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
  const p = roPage(k, []);
  expect(pinTable(k.v, k.buf, level, p.mfn)).to.equal(0);
  return p;
}

/** A fresh page of `k` holding `entries`, then mapped read-only (untyped, count 0). */
export function roPage(k: GuestKernel, entries: readonly (readonly [number, U64])[]): Page {
  const p = k.allocPage();
  for (const [i, e] of entries) k.v.store64(p.va + i * 8, e.lo, e.hi);
  expect(mmuUpdate(k.v, k.buf, [[ptePtr(k.bootL1For(p.pfn), p.pfn % 512), pte(p.mfn, PTE_P | PTE_A)]]).rc)
    .to.equal(0);
  return p;
}

/** An L1 index whose TLB slot no page the test touches afterwards shares (buf, P2M, start_info). */
export function quietIndex(k: GuestKernel): number {
  const bufSlot = Math.round((k.buf - pfnToVa(0)) / 4096) % 64;
  let idx = 32;
  while (idx % 64 === bufSlot || idx % 64 < 8) idx++;
  return idx;
}

/** A pinned L1 hooked into the boot L2 whose entry idx maps page A at va; B is spare. */
export interface Window {
  l1: Page;
  idx: number;
  va: number;
  a: Page;
  b: Page;
}

/**
 * Builds a Window: page A holds 0xaaaa, page B 0xbbbb. With `load`, va is read once so
 * the TLB holds the A translation.
 */
export function hookWindow(k: GuestKernel, load = true): Window {
  const a = k.allocPage();
  const b = k.allocPage();
  k.v.store32(a.va, 0xaaaa);
  k.v.store32(b.va, 0xbbbb);
  const l1 = makeTable(k, 1);
  const idx = quietIndex(k);
  expect(mmuUpdate(k.v, k.buf, [
    [ptePtr(l1.mfn, idx), pte(a.mfn, PTE_P)],
    [ptePtr(k.bootL2, HOOK_SLOT), pte(l1.mfn, TABLE)],
  ]).rc).to.equal(0);
  const va = pfnToVa(0) + HOOK_SLOT * MB2 + idx * 4096;
  if (load) expect(k.v.load32(va)).to.equal(0xaaaa);
  return { l1, idx, va, a, b };
}
