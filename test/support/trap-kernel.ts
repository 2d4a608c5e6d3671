// Test support for the trap conformance suites: a guest kernel with its own trap table
// and callbacks whose handlers record exactly what Xen delivered (the bounce frame as
// raw quadwords, RSP, the event mask on entry) and then do what the test asks; a user
// address space to enter with HYPERVISOR_iret; writers for raw trap_info lists and
// iret_context frames, so tests can hand Xen malformed ones. Guest side only: every
// access goes through the vCPU, as a PV kernel's entry code would.

import { expect } from 'chai';
import { TABLE, bootTestMachine, roPage, type GuestKernel, type Page, type TestMachine } from './fixture.ts';
import { PTE_A, PTE_P, PTE_US, mmuextOp, pfnToVa, pte, type U64 } from '../../guests/lib/xen-calls.ts';
import {
  iretFromFrame, readBounceFrame, registerCallback, xenIret, type BounceFrame,
} from '../../guests/lib/xen-traps.ts';
import { CALLBACKTYPE_event, CALLBACKTYPE_syscall } from '../../hypervisor/public/callback.ts';
import {
  GuestTrap, REG_RSP, TRAP_gp_fault, TRAP_int3, TRAP_invalid_op, TRAP_page_fault, type GuestCode, type GuestVcpu,
} from '../../hypervisor/public/vcpu.ts';
import * as X from '../../hypervisor/public/xen.ts';

/** Which entry point a delivery came through: a trap-table vector or a callback. */
export type Entry = number | 'event' | 'syscall';

/** What one handler invocation saw on entry. */
export interface Delivery {
  readonly entry: Entry;
  readonly hasEc: boolean;
  /** RSP on entry: the address of the bounce frame. */
  readonly rsp: number;
  /** Eight quadwords from RSP upward, as halves (the frame is 7 or 8 of them). */
  readonly words: readonly U64[];
  readonly frame: BounceFrame;
  /** evtchn_upcall_mask in vcpu_info when the handler started. */
  readonly maskOnEntry: number;
  readonly cpl: number;
  /** RFLAGS (pushf) when the handler started. */
  readonly rflags: number;
  /** vcpu_info.arch.cr2. */
  readonly cr2: number;
}

/**
 * What a handler does after recording: 'stop' returns (kernel code that returns stops
 * the vCPU), 'iret' returns to the interrupted context with HYPERVISOR_iret, 'unwind'
 * throws a GuestTrap into the interrupted kernel code (an exception-table fixup); a
 * function runs instead (it may iret itself; if it returns, the vCPU stops).
 */
export type Action = 'stop' | 'iret' | 'unwind' | ((cpu: GuestVcpu, d: Delivery) => void);

/** Soft-interrupt vectors of the default table, by DPL; VEC_MASKED also has TI_IF. */
export const VEC_DPL3 = 0x40;
export const VEC_DPL1 = 0x41;
export const VEC_DPL0 = 0x42;
export const VEC_MASKED = 0x43;
export const VEC_DPL2 = 0x44;

/** A user RSP the tests enter user mode with (user code never touches its stack). */
export const USER_RSP = 0x5008;
/** User code addresses: inside the page the user page tables map at VA 0. */
export const USER_CODE = 0x800;

const VCPU_INFO_SIZE = 64;
const UPCALL_PENDING = 0;
const UPCALL_MASK = 1;
const ARCH_CR2 = 16;

export function put64(v: GuestVcpu, va: number, value: number | U64): void {
  if (typeof value === 'number') v.store64(va, value >>> 0, Math.floor(value / 4294967296) >>> 0);
  else v.store64(va, value.lo, value.hi);
}

export function get64(v: GuestVcpu, va: number): U64 {
  return { lo: v.load32(va), hi: v.load32(va + 4) };
}

/** A 64-bit value given as a JS number, as halves. */
export function halves(value: number): U64 {
  return { lo: value >>> 0, hi: Math.floor(value / 4294967296) >>> 0 };
}

/** One trap_info entry with every field chosen by the test. */
export interface RawTrapInfo {
  vector: number;
  flags: number;
  cs: number;
  address: number | U64;
}

/** Writes trap_info entries at `at`, exactly as given (the caller adds a terminator). */
export function writeTrapInfo(v: GuestVcpu, at: number, entries: readonly RawTrapInfo[]): void {
  entries.forEach((e, i) => {
    const p = at + i * 16;
    v.store32(p, (e.vector & 0xff) | ((e.flags & 0xff) << 8) | ((e.cs & 0xffff) << 16));
    v.store32(p + 4, 0);
    put64(v, p + 8, e.address);
  });
}

/** An iret_context with every field chosen by the test. */
export interface IretContext {
  rax: number;
  r11: number;
  rcx: number;
  flags: number;
  rip: number;
  cs: number;
  rflags: number;
  rsp: number;
  ss: number;
}

/** Writes `c` 16-byte aligned below RSP and points RSP at it (then make HYPERVISOR_iret). */
export function pushRawIret(v: GuestVcpu, c: IretContext): number {
  const sp = Math.floor((v.reg(REG_RSP) - 72) / 16) * 16;
  const fields = [c.rax, c.r11, c.rcx, c.flags, c.rip, c.cs, c.rflags, c.rsp, c.ss];
  fields.forEach((x, i) => put64(v, sp + i * 8, x));
  v.setReg(REG_RSP, sp);
  return sp;
}

/**
 * A test kernel's own trap table and callbacks. Handlers live at spare 16-byte slots of
 * the start_info page (pfn 0, from offset 0xd00); the fixture's own handlers at 0xc00
 * are left alone but no longer installed.
 */
export class TrapKernel {
  readonly seen: Delivery[] = [];
  private readonly actions = new Map<Entry, Action>();
  private readonly addresses = new Map<string, number>();
  private nextSlot = 0;

  constructor(readonly k: GuestKernel) {}

  /** The handler address for an entry point, defined on first use. */
  address(entry: Entry, hasEc: boolean): number {
    const key = `${entry}/${hasEc}`;
    const known = this.addresses.get(key);
    if (known !== undefined) return known;
    if (this.nextSlot >= 48) throw new Error('out of handler slots');
    const va = pfnToVa(0) + 0xd00 + this.nextSlot++ * 16;
    this.addresses.set(key, va);
    this.k.define(va, this.handler(entry, hasEc));
    return va;
  }

  /** What the handler for `entry` does from now on (default 'stop'). */
  on(entry: Entry, action: Action): void {
    this.actions.set(entry, action);
  }

  /**
   * Installs the default table: #UD, #GP and #PF (DPL 0), int3 (DPL 0), int 0x80
   * (DPL 3), and the soft-interrupt vectors VEC_* with their DPLs. Returns the rc.
   */
  installDefault(): number {
    return this.install([
      { vector: TRAP_invalid_op, dpl: 0 },
      { vector: TRAP_gp_fault, dpl: 0, hasEc: true },
      { vector: TRAP_page_fault, dpl: 0, hasEc: true },
      { vector: TRAP_int3, dpl: 0 },
      { vector: 0x80, dpl: 3 },
      { vector: VEC_DPL3, dpl: 3 },
      { vector: VEC_DPL1, dpl: 1 },
      { vector: VEC_DPL0, dpl: 0 },
      { vector: VEC_MASKED, dpl: 1, maskEvents: true },
      { vector: VEC_DPL2, dpl: 2 },
    ]);
  }

  /** HYPERVISOR_set_trap_table with these entries (handlers recording), terminated. */
  install(entries: readonly { vector: number; dpl: number; maskEvents?: boolean; hasEc?: boolean }[]): number {
    const raw: RawTrapInfo[] = entries.map((e) => ({
      vector: e.vector,
      flags: (e.dpl & 3) | (e.maskEvents === true ? 4 : 0),
      cs: 0xe033,
      address: this.address(e.vector, e.hasEc === true),
    }));
    raw.push({ vector: 0, flags: 0, cs: 0, address: 0 });
    writeTrapInfo(this.k.v, this.k.buf, raw);
    return this.k.v.hypercall(X.HYPERVISOR_set_trap_table, this.k.buf);
  }

  /** callback_op register of the event callback (which always masks events). */
  registerEvent(): number {
    return registerCallback(this.k.v, this.k.buf, CALLBACKTYPE_event, this.address('event', false));
  }

  /** callback_op register of the syscall callback, optionally with CALLBACKF_mask_events. */
  registerSyscall(maskEvents = false): number {
    return registerCallback(this.k.v, this.k.buf, CALLBACKTYPE_syscall, this.address('syscall', false), maskEvents);
  }

  /** The deliveries through one entry point. */
  through(entry: Entry): Delivery[] {
    return this.seen.filter((d) => d.entry === entry);
  }

  /** The only delivery so far (fails unless there was exactly one). */
  only(): Delivery {
    expect(this.seen.map((d) => d.entry), 'deliveries').to.have.length(1);
    return this.seen[0];
  }

  /** Called first thing in every handler (before it reads anything): for cost measurements. */
  onEntry: (() => void) | null = null;

  private handler(entry: Entry, hasEc: boolean): GuestCode {
    const tk = this;
    return function* (cpu) {
      tk.onEntry?.();
      const d = tk.record(cpu, entry, hasEc);
      tk.seen.push(d);
      const act = tk.actions.get(entry) ?? 'stop';
      if (act === 'iret') iretFromFrame(cpu, hasEc);
      if (act === 'unwind') {
        throw new GuestTrap(typeof entry === 'number' ? entry : -1, hasEc ? d.frame.errorCode : 0, d.cr2);
      }
      if (typeof act === 'function') act(cpu, d);
    };
  }

  private record(cpu: GuestVcpu, entry: Entry, hasEc: boolean): Delivery {
    const rsp = cpu.reg(REG_RSP);
    const words: U64[] = [];
    for (let i = 0; i < 8; i++) words.push(get64(cpu, rsp + i * 8));
    return {
      entry, hasEc, rsp, words,
      frame: readBounceFrame(cpu, hasEc),
      maskOnEntry: upcallMask(this.k, cpu),
      cpl: cpu.cpl,
      rflags: cpu.pushf(),
      cr2: readCr2(this.k, cpu),
    };
  }
}

// ---- vcpu_info, through the kernel's mapping of shared_info ------------------------

function vcpuInfo(k: GuestKernel, cpu: GuestVcpu): number {
  return k.sharedInfoVa + cpu.vcpuId * VCPU_INFO_SIZE;
}

export function upcallMask(k: GuestKernel, cpu: GuestVcpu = k.v): number {
  return cpu.load8(vcpuInfo(k, cpu) + UPCALL_MASK);
}

export function setUpcallMask(k: GuestKernel, mask: number, cpu: GuestVcpu = k.v): void {
  cpu.store8(vcpuInfo(k, cpu) + UPCALL_MASK, mask);
}

export function upcallPending(k: GuestKernel, cpu: GuestVcpu = k.v): number {
  return cpu.load8(vcpuInfo(k, cpu) + UPCALL_PENDING);
}

export function setUpcallPending(k: GuestKernel, pending: number, cpu: GuestVcpu = k.v): void {
  cpu.store8(vcpuInfo(k, cpu) + UPCALL_PENDING, pending);
}

/** vcpu_info.arch.cr2 as a signed 64-bit number. */
export function readCr2(k: GuestKernel, cpu: GuestVcpu = k.v): number {
  const at = vcpuInfo(k, cpu) + ARCH_CR2;
  return (cpu.load32(at + 4) | 0) * 4294967296 + cpu.load32(at);
}

// ---- user mode ---------------------------------------------------------------------

/** User page tables: `data` mapped at VA 0 (US, executable) by `l1`, under `l4`. */
export interface UserSpace {
  data: Page;
  l1: Page;
  l4: Page;
}

/**
 * Builds user page tables mapping a fresh page at VA 0 (USER_CODE lies in it) and makes
 * them the user base with MMUEXT_NEW_USER_BASEPTR.
 */
export function makeUserSpace(k: GuestKernel): UserSpace {
  const data = k.allocPage();
  const l1 = roPage(k, [[0, pte(data.mfn, PTE_P | PTE_US | PTE_A)]]);
  const l2 = roPage(k, [[0, pte(l1.mfn, TABLE)]]);
  const l3 = roPage(k, [[0, pte(l2.mfn, TABLE)]]);
  const l4 = roPage(k, [[0, pte(l3.mfn, TABLE)]]);
  expect(mmuextOp(k.v, k.buf, [{ cmd: X.MMUEXT_NEW_USER_BASEPTR, arg1: l4.mfn }]).rc).to.equal(0);
  return { data, l1, l4 };
}

/** The kernel stack the tests' kernel code runs on: below the kernel_sp of stack_switch. */
export function kernelRsp(k: GuestKernel): number {
  return k.handle.stackTop - 0x400;
}

/**
 * Runs `code` as user code at `va` (in a UserSpace), entered from kernel code with
 * HYPERVISOR_iret (events on, RSP = rsp). User code should end with `yield 0x80` to a
 * handler that stops. Returns how the run ended.
 */
export function runUser(k: GuestKernel, va: number, code: GuestCode, rsp = USER_RSP): string {
  k.define(va, code);
  const ksp = kernelRsp(k);
  return k.exec(function* (cpu) {
    cpu.setReg(REG_RSP, ksp);
    xenIret(cpu, { rip: va, user: true, rsp, eventsOn: true });
  });
}

/** What most trap tests start from: a test machine whose guest runs the recording kernel. */
export interface TrapSetup {
  t: TestMachine;
  g: GuestKernel;
  tk: TrapKernel;
}

/** Boots a test machine and installs the recording trap kernel in its guest. */
export function trapSetup(): TrapSetup {
  const t = bootTestMachine();
  const g = t.guest;
  const tk = new TrapKernel(g);
  expect(tk.installDefault()).to.equal(0);
  return { t, g, tk };
}
