// A booted machine for tests: Dom0 and guests built by the hypervisor's builder, each
// with a "kernel" context that drives its vCPU exactly as guest code would. Each test
// kernel registers page-fault, #GP, #UD and int 0x80 handlers: a fault in kernel mode
// surfaces as a GuestTrap thrown into the test (a fixup), one in user mode ends the
// user code run by asUser().

import { expect } from 'chai';
import { Machine, type GuestHandle, type GuestOptions, type MachineConfig } from '../../hypervisor/index.ts';
import {
  GuestTrap, REG_RSP, TRAP_gp_fault, TRAP_invalid_op, TRAP_page_fault, type GuestCode, type GuestVcpu,
} from '../../hypervisor/public/vcpu.ts';
import {
  PTE_A, PTE_D, PTE_P, PTE_RW, PTE_US, mmuUpdate, pfnToMfn, pfnToVa, pinTable, pte, ptePtr, readStartInfo,
  updateVaMapping, type StartInfo, type U64,
} from '../../guests/lib/xen-calls.ts';
import { readBounceFrame, setTrapTable, stackSwitch, xenIret } from '../../guests/lib/xen-traps.ts';

/** Where the test kernels' handlers live: spare bytes of the start_info page (pfn 0). */
const HANDLER_PF = pfnToVa(0) + 0xc00;
const HANDLER_GP = pfnToVa(0) + 0xc10;
const HANDLER_UD = pfnToVa(0) + 0xc20;
const HANDLER_INT80 = pfnToVa(0) + 0xc30;

/** A test kernel's image: its handlers, plus user code that asUser() adds. */
function testImage(): { text: Map<number, GuestCode> } {
  return { text: new Map() };
}

/** Builds Dom0 or a guest on `m` and boots a test kernel on it. */
export function bootKernel(m: Machine, dom0: boolean, opts: GuestOptions): GuestKernel {
  const image = testImage();
  const h = dom0 ? m.bootDom0({ ...opts, image }) : m.createGuest({ ...opts, image });
  return new GuestKernel(h, m, image.text);
}

/** A guest as its kernel sees itself: vCPU, start_info, and free pages to use. */
export class GuestKernel {
  readonly v: GuestVcpu;
  readonly si: StartInfo;
  private nextFree: number;
  /** A page for hypercall argument structs. */
  readonly buf: number;
  /** Where shared_info is mapped. */
  readonly sharedInfoVa: number;
  /** The fault that ended the last asUser() run, if one did. */
  userTrap: GuestTrap | null = null;

  constructor(readonly handle: GuestHandle, private readonly m: Machine,
    private readonly text: Map<number, GuestCode>) {
    this.v = handle.vcpus[0];
    this.si = readStartInfo(this.v, handle.startInfoVa);
    this.nextFree = handle.firstFreePfn;
    this.buf = pfnToVa(this.allocPfn());
    this.sharedInfoVa = pfnToVa(this.allocPfn());
    const siMfn = Math.floor(this.si.sharedInfoMaddr / 4096);
    expect(updateVaMapping(this.v, this.sharedInfoVa, pte(siMfn, PTE_P | PTE_RW | PTE_A | PTE_D), 0)).to.equal(0);
    this.installHandlers();
  }

  private installHandlers(): void {
    const fault = (vector: number, hasEc: boolean): GuestCode => {
      const k = this;
      return function* (cpu) {
        const f = readBounceFrame(cpu, hasEc);
        const cr2 = vector === TRAP_page_fault ? k.readCr2(cpu) : 0;
        const trap = new GuestTrap(vector, hasEc ? f.errorCode : 0, cr2);
        if (!f.fromUser) throw trap; // a kernel fault: unwind into the test
        k.userTrap = trap; // a user fault: returning stops the vCPU
      };
    };
    this.text.set(HANDLER_PF, fault(TRAP_page_fault, true));
    this.text.set(HANDLER_GP, fault(TRAP_gp_fault, true));
    this.text.set(HANDLER_UD, fault(TRAP_invalid_op, false));
    this.text.set(HANDLER_INT80, function* () { /* the user code is done: stop */ });
    expect(setTrapTable(this.v, this.buf, [
      { vector: TRAP_page_fault, dpl: 0, address: HANDLER_PF },
      { vector: TRAP_gp_fault, dpl: 0, address: HANDLER_GP },
      { vector: TRAP_invalid_op, dpl: 0, address: HANDLER_UD },
      { vector: 0x80, dpl: 3, address: HANDLER_INT80 },
    ])).to.equal(0);
    expect(stackSwitch(this.v, this.handle.stackTop)).to.equal(0);
  }

  /** Puts code at a virtual address of this kernel's image. */
  define(va: number, code: GuestCode): void {
    this.text.set(va, code);
  }

  /** Runs `code` on vCPU 0 in kernel mode until it stops (see Machine.exec). */
  exec(code: GuestCode): string {
    return this.m.exec(this.domid, 0, code);
  }

  /** vcpu_info.arch.cr2, where Xen puts a page fault's address. */
  private readCr2(cpu: GuestVcpu): number {
    const at = this.sharedInfoVa + cpu.vcpuId * 64 + 16;
    return (cpu.load32(at + 4) | 0) * 4294967296 + cpu.load32(at);
  }

  /**
   * Runs `fn` as user code at user address `va` (which the current user page tables
   * must map executable), entered by HYPERVISOR_iret. Returns fn's result, or undefined
   * when a fault ended it (then userTrap says which).
   */
  asUser<T>(va: number, fn: (v: GuestVcpu) => T): T | undefined {
    let result: T | undefined;
    this.userTrap = null;
    this.text.set(va, function* (cpu) {
      result = fn(cpu);
      yield 0x80;
    });
    const sp = this.handle.stackTop;
    const rc = this.m.exec(this.domid, 0, function* (cpu) {
      cpu.setReg(REG_RSP, sp - 256);
      xenIret(cpu, { rip: va, user: true, rsp: 0, eventsOn: true });
    });
    expect(rc).to.equal('idle');
    return result;
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
  const dom0 = bootKernel(m, true, { memoryMb: 8 });
  const guest = bootKernel(m, false, { memoryMb: 4 });
  const other = bootKernel(m, false, { memoryMb: 4 });
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
