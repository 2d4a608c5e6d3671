// Trap-and-emulate mode: an unpatched native kernel in real ring 1 that believes it is
// in ring 0 on a bare PC. Its privileged instructions trap and are emulated against
// virtual state (IF, CR3, the APIC timer, COM1); popf silently loses IF changes; its
// page tables are guest-physical and shadowed (stores to them trap); interrupts and
// exceptions come through its own IDT with the frames it expects, and its iretq to
// ring 0 is caught and emulated. Each test is a small generator kernel, as in
// bare-machine.test.ts.

import { expect } from 'chai';
import { Machine } from '../../hypervisor/index.ts';
import { bootMapLayout, type BootMapLayout } from '../../hypervisor/arch/boot-map.ts';
import { DEFAULT_COSTS } from '../../hypervisor/arch/costs.ts';
import { PRIV_CLI, PRIV_HLT, PRIV_STI } from '../../hypervisor/arch/cpu.ts';
import { LVT_MODE_PERIODIC, LVT_MODE_TSC_DEADLINE } from '../../hypervisor/arch/lapic.ts';
import { SHUTDOWN_poweroff } from '../../hypervisor/public/sched.ts';
import { RUNSTATE_blocked } from '../../hypervisor/public/vcpu-op.ts';
import {
  GuestTrap, REG_RSP, X86_EFLAGS_IF, type GuestCode, type GuestVcpu,
} from '../../hypervisor/public/vcpu.ts';
import * as X from '../../hypervisor/public/xen.ts';
import type { Vcpu } from '../../hypervisor/vcpu.ts';
import { pfnToVa } from '../../guests/lib/xen-calls.ts';

const PAGES = 512;
const LAYOUT = bootMapLayout(PAGES) as BootMapLayout;
/** The boot map's only L1 table (512 pages need one), and the boot stack after it. */
const L1_PFN = LAYOUT.ptPfn + 1 + LAYOUT.nrL3 + LAYOUT.nrL2;

const ENTRY = pfnToVa(8);
/** Handlers and other code, 0x40 apart in page 9. */
const code = (i: number): number => pfnToVa(9) + i * 0x40;
const IDT = pfnToVa(10);
const IDT_DESC = pfnToVa(11);
const TSS = pfnToVa(11) + 0x100;
/** The kernel stack for entries from user mode: TSS.RSP0 (the top of page 13). */
const RSP0 = pfnToVa(14);
const USER_PFN = 20;
const USER_CODE = pfnToVa(USER_PFN) + 0x100;
const USER_RSP = pfnToVa(USER_PFN) + 0xf00;
const TIMER_VECTOR = 0x20;
const GATE_INT = 0xe;
const GATE_TRAP = 0xf;
const KERNEL_CS = 0x10;
const KERNEL_SS = 0x18;
const USER_CS = 0x33;
const USER_SS = 0x2b;
const { trap: TRAP, emulate: EMULATE, tlbFlush: TLB_FLUSH, iret: IRET } = DEFAULT_COSTS;

interface Emu {
  m: Machine;
  domid: number;
  v: Vcpu;
  text: Map<number, GuestCode>;
}

/** An emulated guest of PAGES pages; `entry` (if given) runs under the scheduler on m.run. */
function emulated(entry?: GuestCode): Emu {
  const m = new Machine({ memoryMb: 64 });
  const text = new Map<number, GuestCode>();
  if (entry) text.set(ENTRY, entry);
  const h = m.createGuest({ mode: 'emulate', pages: PAGES, image: { text, entry: entry ? ENTRY : undefined } });
  return { m, domid: h.domid, v: m.domain(h.domid)!.vcpus[0], text };
}

function stats(e: Emu) {
  return e.m.domainStats(e.domid)!;
}

function put64(cpu: GuestVcpu, va: number, value: number): void {
  cpu.store64(va, value >>> 0, Math.floor(value / 4294967296) >>> 0);
}

/** A quadword as a signed number (upper-half addresses come back negative). */
function get64(cpu: GuestVcpu, va: number): number {
  return (cpu.load32(va + 4) | 0) * 4294967296 + cpu.load32(va);
}

/** Writes IDT gates and a TSS with RSP0, and loads both (lidt reads the pseudo-descriptor). */
function installIdt(cpu: GuestVcpu, gates: [vector: number, handler: number, type: number, dpl: number][]): void {
  for (const [vector, handler, type, dpl] of gates) {
    const at = IDT + vector * 16;
    const lo = handler >>> 0;
    cpu.store32(at, (lo & 0xffff) | (KERNEL_CS << 16));
    cpu.store32(at + 4, ((lo & 0xffff0000) | ((0x80 | (dpl << 5) | type) << 8)) >>> 0);
    cpu.store32(at + 8, Math.floor(handler / 4294967296) >>> 0);
    cpu.store32(at + 12, 0);
  }
  cpu.store16(IDT_DESC, 256 * 16 - 1);
  put64(cpu, IDT_DESC + 2, IDT);
  cpu.lidt(IDT_DESC);
  cpu.store32(TSS + 4, RSP0 >>> 0); // RSP0, at offset 4
  cpu.store32(TSS + 8, Math.floor(RSP0 / 4294967296) >>> 0);
  cpu.ltr(TSS);
}

/** Makes the boot map's page `pfn` user-accessible (its PTE is guest-physical: PFN-based). */
function userPage(cpu: GuestVcpu, pfn: number): void {
  const pte = pfnToVa(L1_PFN) + pfn * 8;
  cpu.store32(pte, cpu.load32(pte) | 4);
  cpu.invlpg(pfnToVa(pfn));
}

/** iretq to user code at `rip`, as a native kernel enters ring 3. */
function enterUser(cpu: GuestVcpu, rip: number, rflags = 0x202): never {
  const sp = Math.floor((cpu.reg(REG_RSP) - 64) / 16) * 16;
  put64(cpu, sp, rip);
  put64(cpu, sp + 8, USER_CS);
  put64(cpu, sp + 16, rflags);
  put64(cpu, sp + 24, USER_RSP);
  put64(cpu, sp + 32, USER_SS);
  cpu.setReg(REG_RSP, sp);
  return cpu.iretq();
}

/** The frame a handler finds at RSP: [error code], RIP, CS, RFLAGS, RSP, SS. */
interface Frame {
  rsp: number;
  ec: number;
  rip: number;
  cs: number;
  rflags: number;
  oldRsp: number;
  ss: number;
  cpl: number;
}

function readFrame(cpu: GuestVcpu, hasEc: boolean): Frame {
  const rsp = cpu.reg(REG_RSP);
  const at = hasEc ? rsp + 8 : rsp;
  return {
    rsp, ec: hasEc ? cpu.load32(rsp) : -1, rip: get64(cpu, at), cs: cpu.load32(at + 8), rflags: cpu.load32(at + 16),
    oldRsp: get64(cpu, at + 24), ss: cpu.load32(at + 32), cpl: cpu.cpl,
  };
}

/** A handler that records its frame and stops the vCPU (kernel code that returns). */
function recorder(into: Frame[], hasEc: boolean): GuestCode {
  return function* (cpu) {
    into.push(readFrame(cpu, hasEc));
  };
}

/** A handler that records its frame and returns to the interrupted code with iretq. */
function recordAndIret(into: Frame[], hasEc: boolean): GuestCode {
  return function* (cpu) {
    into.push(readFrame(cpu, hasEc));
    if (hasEc) cpu.setReg(REG_RSP, cpu.reg(REG_RSP) + 8);
    cpu.iretq();
  };
}

/** A timer handler: counts, EOI, iretq. */
function timerHandler(onTick: () => void): GuestCode {
  return function* (cpu) {
    onTick();
    cpu.wrmsr(0x80b, 0); // EOI
    cpu.iretq();
  };
}

describe('trap-and-emulate mode (an unpatched kernel in ring 1)', () => {
  it('cli and sti trap and set only the virtual IF, each charging a trap and an emulation, counted', () => {
    const e = emulated();
    const seen: (number | boolean)[] = [];
    expect(e.m.exec(e.domid, 0, function* (cpu) {
      let c0 = e.v.cycles;
      cpu.cli();
      seen.push(e.v.cycles - c0, e.v.emu!.vif, (e.v.rflags & X86_EFLAGS_IF) !== 0);
      c0 = e.v.cycles;
      cpu.sti();
      seen.push(e.v.cycles - c0, e.v.emu!.vif, (e.v.rflags & X86_EFLAGS_IF) !== 0);
      yield;
    })).to.equal('idle');
    expect(seen).to.deep.equal([TRAP + EMULATE, false, true, TRAP + EMULATE, true, true]);
    const s = stats(e);
    expect(s.privOps[PRIV_CLI]).to.equal(1);
    expect(s.privOps[PRIV_STI]).to.equal(1);
    expect(s.privOpsTotal).to.equal(2);
    expect(s.privOpsByName).to.deep.equal({ cli: 1, sti: 1 });
    expect(e.m.checkInvariants()).to.deep.equal([]);
  });

  it('popf never traps and leaves the virtual IF clear after cli: a pending interrupt stays undelivered (the lost enable)', () => {
    const e = emulated();
    let ticks = 0;
    const seen: (number | boolean)[] = [];
    e.text.set(code(0), timerHandler(() => { ticks++; }));
    expect(e.m.exec(e.domid, 0, function* (cpu) {
      installIdt(cpu, [[TIMER_VECTOR, code(0), GATE_INT, 0]]);
      cpu.wrmsr(0x832, TIMER_VECTOR | LVT_MODE_TSC_DEADLINE);
      cpu.wrmsr(0x6e0, cpu.rdtsc() + 100);
      cpu.cli();
      const flags = cpu.pushf();
      cpu.compute(1000);
      yield; // the edge is pending; IF is clear
      const before = stats(e).privOpsTotal;
      const c0 = e.v.cycles;
      cpu.popf(flags | X86_EFLAGS_IF); // local_irq_restore with popf
      seen.push(e.v.cycles - c0, stats(e).privOpsTotal - before, e.v.emu!.vif);
      yield;
      seen.push(ticks);
      cpu.sti();
      yield;
      seen.push(ticks);
    })).to.equal('idle');
    expect(seen).to.deep.equal([DEFAULT_COSTS.memoryAccess, 0, false, 0, 1]);
  });

  it('pushf in ring 1 shows the real IF (set), not the virtual IF the kernel cleared', () => {
    const e = emulated();
    const seen: (number | boolean)[] = [];
    e.m.exec(e.domid, 0, function* (cpu) {
      cpu.cli();
      seen.push(cpu.pushf() & X86_EFLAGS_IF, e.v.emu!.vif);
      yield;
    });
    expect(seen).to.deep.equal([X86_EFLAGS_IF, false]);
  });

  it('hlt blocks until the virtual APIC timer edge, and the timer is delivered through the guest IDT', () => {
    let ticks = 0;
    let deadline = 0;
    let woke = 0;
    const frames: Frame[] = [];
    const e = emulated(function* (cpu) {
      installIdt(cpu, [[TIMER_VECTOR, code(0), GATE_INT, 0]]);
      cpu.wrmsr(0x832, TIMER_VECTOR | LVT_MODE_TSC_DEADLINE);
      deadline = cpu.rdtsc() + 24_000; // 10 us
      cpu.wrmsr(0x6e0, deadline);
      cpu.sti();
      cpu.hlt();
      yield;
      woke = cpu.rdtsc();
    });
    e.text.set(code(0), function* (cpu) {
      ticks++;
      frames.push(readFrame(cpu, false));
      cpu.wrmsr(0x80b, 0);
      cpu.iretq();
    });
    e.m.run(1_000_000);
    expect(ticks).to.equal(1);
    expect(woke).to.be.at.least(deadline);
    expect(e.v.runstateTime[RUNSTATE_blocked]).to.be.greaterThan(0);
    expect(frames[0].cpl).to.equal(1);
    expect(frames[0].rflags & X86_EFLAGS_IF).to.equal(X86_EFLAGS_IF); // the virtual IF at the hlt
    const s = stats(e);
    expect(s.privOps[PRIV_HLT]).to.equal(1);
    expect(s.interruptsDelivered).to.equal(1);
    expect(s.iretsEmulated).to.equal(1);
    expect(e.m.domain(e.domid)!.state).to.equal('running');
  });

  /** Arms the TSC-deadline timer at deadline(now), sets or clears the virtual IF, and halts. */
  function haltOnDeadline(deadline: (tsc: number) => number, vif: boolean): { e: Emu; after: () => boolean } {
    let after = false;
    const e = emulated(function* (cpu) {
      installIdt(cpu, [[TIMER_VECTOR, code(0), GATE_INT, 0]]);
      cpu.wrmsr(0x832, TIMER_VECTOR | LVT_MODE_TSC_DEADLINE);
      cpu.wrmsr(0x6e0, deadline(cpu.rdtsc()));
      if (vif) cpu.sti();
      else cpu.cli();
      cpu.hlt();
      yield;
      after = true;
    });
    e.text.set(code(0), timerHandler(() => {}));
    e.m.run(1_000_000);
    return { e, after: () => after };
  }

  it('hlt with the virtual IF clear never wakes, though the timer edge comes', () => {
    const { e, after } = haltOnDeadline((tsc) => tsc + 24_000, false);
    expect(after()).to.equal(false);
    expect(e.v.blocked).to.equal(true);
    expect(e.v.emu!.wakeTimer.active).to.equal(false);
    expect(stats(e).interruptsDelivered).to.equal(0);
    expect(e.m.domain(e.domid)!.state).to.equal('running');
  });

  it('hlt waiting on a TSC deadline far past any run (2^61) blocks with no wake timer: nothing loops', () => {
    const { e, after } = haltOnDeadline(() => 2 ** 61 + 12345, true);
    expect(after()).to.equal(false);
    expect(e.v.blocked).to.equal(true);
    expect(e.v.emu!.wakeTimer.active).to.equal(false);
  });

  it('a 2 MiB superpage whose frame has bits below its alignment set is a reserved-bit #PF; the machine stays consistent', () => {
    const e = emulated();
    const codes: number[] = [];
    e.text.set(code(0), function* (cpu) {
      const f = readFrame(cpu, true);
      codes.push(f.ec);
      throw new GuestTrap(14, f.ec, cpu.readCr2());
    });
    let caught = 0;
    expect(e.m.exec(e.domid, 0, function* (cpu) {
      installIdt(cpu, [[14, code(0), GATE_INT, 0]]);
      const l2 = pfnToVa(LAYOUT.ptPfn + 1 + LAYOUT.nrL3);
      // PFN 0x800001 with PS: bit 12 of the address (a frame bit below 2 MiB alignment) is set.
      cpu.store64(l2 + 300 * 8, 0x1000 | 0x80 | 0x23, 0x8);
      try {
        cpu.load32(pfnToVa(0) + 300 * 0x200000);
      } catch {
        caught++;
      }
      yield;
    })).to.equal('idle');
    expect(caught).to.equal(1);
    expect(codes).to.deep.equal([1 | 8]); // present, reserved bit
    expect(e.m.checkInvariants()).to.deep.equal([]);
  });

  it('lidt: delivery through the guest IDT pushes a kernel frame with RPL 0, and entries from ring 3 use the TSS RSP0 stack', () => {
    const e = emulated();
    const kernel: Frame[] = [];
    const user: Frame[] = [];
    let kernelRsp = 0;
    e.text.set(code(0), recordAndIret(kernel, false));
    e.text.set(code(1), recorder(user, false));
    e.text.set(USER_CODE, function* () {
      yield 0x80;
    });
    expect(e.m.exec(e.domid, 0, function* (cpu) {
      installIdt(cpu, [[0x30, code(0), GATE_INT, 0], [0x80, code(1), GATE_TRAP, 3]]);
      kernelRsp = cpu.reg(REG_RSP);
      yield 0x30; // a DPL 0 gate: the kernel believes it is in ring 0
      userPage(cpu, USER_PFN);
      enterUser(cpu, USER_CODE);
    })).to.equal('idle');
    expect(e.v.idtrLimit).to.equal(4095);
    expect(kernel).to.have.length(1);
    expect(kernel[0]).to.include({ cs: KERNEL_CS, ss: KERNEL_SS, oldRsp: kernelRsp, cpl: 1 });
    expect(kernel[0].rflags & X86_EFLAGS_IF).to.equal(0); // the virtual IF, though the real one is set
    expect(kernel[0].rsp).to.equal(Math.floor(kernelRsp / 16) * 16 - 40);
    expect(user).to.have.length(1);
    expect(user[0]).to.include({ cs: USER_CS, ss: USER_SS, oldRsp: USER_RSP, cpl: 1, rsp: RSP0 - 40 });
    expect(e.m.checkInvariants()).to.deep.equal([]);
  });

  it('iretq to a ring-0 frame is caught and emulated (restoring the virtual IF, counted); iretq to ring 3 runs natively', () => {
    const e = emulated();
    const seen: Record<string, number | boolean> = {};
    let c0 = 0;
    const K2 = code(2);
    e.text.set(code(1), recorder([], false));
    e.text.set(K2, function* (cpu) {
      seen.ring0Cycles = e.v.cycles - c0;
      seen.ring0Cpl = cpu.cpl;
      seen.vifAfterRing0 = e.v.emu!.vif;
      seen.irets = stats(e).iretsEmulated;
      userPage(cpu, USER_PFN);
      c0 = e.v.cycles;
      enterUser(cpu, USER_CODE, 0x2); // IF clear in the frame
    });
    e.text.set(USER_CODE, function* (cpu) {
      seen.ring3Cycles = e.v.cycles - c0;
      seen.ring3Cpl = cpu.cpl;
      seen.userRealIf = (cpu.pushf() & X86_EFLAGS_IF) !== 0;
      seen.irets3 = stats(e).iretsEmulated;
      yield 0x80;
    });
    expect(e.m.exec(e.domid, 0, function* (cpu) {
      installIdt(cpu, [[0x80, code(1), GATE_TRAP, 3]]);
      const sp = Math.floor((cpu.reg(REG_RSP) - 64) / 16) * 16;
      put64(cpu, sp, K2);
      put64(cpu, sp + 8, KERNEL_CS);
      put64(cpu, sp + 16, 0x202);
      put64(cpu, sp + 24, sp + 64);
      put64(cpu, sp + 32, KERNEL_SS);
      cpu.setReg(REG_RSP, sp);
      seen.vifBefore = e.v.emu!.vif;
      c0 = e.v.cycles;
      cpu.iretq();
    })).to.equal('idle');
    expect(seen).to.include({ vifBefore: false, ring0Cpl: 1, vifAfterRing0: true, irets: 1 });
    expect(seen.ring0Cycles).to.be.at.least(IRET + TRAP + EMULATE);
    expect(seen).to.include({ ring3Cpl: 3, userRealIf: true, irets3: 1 });
    expect(seen.ring3Cycles).to.be.below(IRET + TRAP);
  });

  it('int 0x80 from user mode goes through a DPL 3 gate; int n at a DPL 0 gate is #GP((n << 3) | 2)', () => {
    const e = emulated();
    const sys: Frame[] = [];
    const gp: Frame[] = [];
    const marks: string[] = [];
    e.text.set(code(0), recordAndIret(sys, false));
    e.text.set(code(1), function* () {
      marks.push('dpl 0 handler ran');
    });
    e.text.set(code(2), recorder(gp, true));
    e.text.set(USER_CODE, function* () {
      yield 0x80;
      marks.push('back from 0x80');
      yield 0x31;
      marks.push('after 0x31');
    });
    expect(e.m.exec(e.domid, 0, function* (cpu) {
      installIdt(cpu, [[0x80, code(0), GATE_TRAP, 3], [0x31, code(1), GATE_INT, 0], [13, code(2), GATE_INT, 0]]);
      userPage(cpu, USER_PFN);
      enterUser(cpu, USER_CODE);
    })).to.equal('idle');
    expect(sys).to.have.length(1);
    expect(sys[0]).to.include({ cs: USER_CS, cpl: 1 });
    expect(marks).to.deep.equal(['back from 0x80']);
    expect(gp).to.have.length(1);
    expect(gp[0]).to.include({ ec: (0x31 << 3) | 2, cs: USER_CS });
  });

  it('#PF puts the address in CR2 (mov from cr2 reads it) and the error code has U/S set for user mode', () => {
    const e = emulated();
    const cr2: number[] = [];
    const codes: number[] = [];
    let caught: GuestTrap | null = null;
    e.text.set(code(0), function* (cpu) {
      const f = readFrame(cpu, true);
      cr2.push(cpu.readCr2());
      codes.push(f.ec);
      if (f.cs === KERNEL_CS) throw new GuestTrap(14, f.ec, cr2[cr2.length - 1]); // a fixup
    });
    const kernelOnly = pfnToVa(30) + 8;
    e.text.set(USER_CODE, function* (cpu) {
      cpu.load32(kernelOnly);
      yield;
    });
    expect(e.m.exec(e.domid, 0, function* (cpu) {
      installIdt(cpu, [[14, code(0), GATE_INT, 0]]);
      try {
        cpu.load64(0x5000);
      } catch (err) {
        caught = err as GuestTrap;
      }
      userPage(cpu, USER_PFN);
      enterUser(cpu, USER_CODE);
    })).to.equal('idle');
    expect(caught).to.be.instanceOf(GuestTrap);
    expect(cr2).to.deep.equal([0x5000, kernelOnly]);
    expect(codes).to.deep.equal([0, 1 | 4]); // not present, supervisor; then present, user
  });

  it('a store to a page-table page traps (counted, charged, TLB flushed) and is performed; a store to an ordinary page does not trap', () => {
    const e = emulated();
    const seen: number[] = [];
    expect(e.m.exec(e.domid, 0, function* (cpu) {
      const v = e.v;
      const pte = pfnToVa(L1_PFN) + 41 * 8;
      cpu.load32(pfnToVa(40));
      let f0 = v.tlb.flushes;
      cpu.store32(pfnToVa(40), 1);
      seen.push(stats(e).ptWriteTraps, v.tlb.flushes - f0);
      const lo = cpu.load32(pte);
      f0 = v.tlb.flushes;
      const c0 = v.cycles;
      cpu.store32(pte, lo | 0x200); // an available bit of the PTE mapping pfn 41
      seen.push(stats(e).ptWriteTraps, v.tlb.flushes - f0, v.cycles - c0 >= TRAP + EMULATE + TLB_FLUSH ? 1 : 0);
      seen.push(cpu.load32(pte) === (lo | 0x200) ? 1 : 0);
      // A store split between the L1 page and the next traps once.
      const at = pfnToVa(L1_PFN + 1) - 4;
      cpu.store64(at, cpu.load32(at), cpu.load32(at + 4));
      seen.push(stats(e).ptWriteTraps);
      yield;
    })).to.equal('idle');
    expect(seen).to.deep.equal([0, 0, 1, 1, 1, 1, 2]);
    expect(e.m.checkInvariants()).to.deep.equal([]);
  });

  it('after a CR3 load the first walk through each table frame is a hidden fault building its shadow (charged, counted); later walks are not', () => {
    const e = emulated();
    const seen: number[] = [];
    expect(e.m.exec(e.domid, 0, function* (cpu) {
      const v = e.v;
      cpu.writeCr3(cpu.readCr3()); // a new epoch: no table is shadowed
      const f0 = stats(e).shadowFills;
      const c0 = v.cycles;
      cpu.load32(pfnToVa(40));
      seen.push(stats(e).shadowFills - f0, v.cycles - c0 >= 4 * (TRAP + EMULATE) ? 1 : 0);
      const c1 = v.cycles;
      cpu.load32(pfnToVa(41)); // a TLB miss through the same four tables
      seen.push(stats(e).shadowFills - f0, v.cycles - c1 < TRAP ? 1 : 0);
      yield;
    })).to.equal('idle');
    expect(seen).to.deep.equal([4, 1, 4, 1]);
  });

  it('mov to cr3 of a guest-physical address loads the machine frame the P2M gives; a PFN outside memory is #GP(0)', () => {
    const e = emulated();
    const d = e.m.domain(e.domid)!;
    const p2m = d.emu!.p2m;
    const seen: (number | boolean)[] = [];
    let gp: GuestTrap | null = null;
    e.text.set(code(0), function* (cpu) {
      throw new GuestTrap(13, readFrame(cpu, true).ec, 0);
    });
    expect(e.m.exec(e.domid, 0, function* (cpu) {
      installIdt(cpu, [[13, code(0), GATE_INT, 0]]);
      seen.push(cpu.readCr3() === LAYOUT.ptPfn * 4096, e.v.cr3 === p2m[LAYOUT.ptPfn]);
      const copy = 30;
      for (let i = 0; i < 1024; i++) cpu.store32(pfnToVa(copy) + i * 4, cpu.load32(pfnToVa(LAYOUT.ptPfn) + i * 4));
      const epoch = e.v.shadowEpoch;
      const flushes = e.v.tlb.flushes;
      cpu.writeCr3(copy * 4096);
      seen.push(cpu.readCr3() === copy * 4096, e.v.cr3 === p2m[copy], e.v.shadowEpoch !== epoch, e.v.tlb.flushes > flushes);
      seen.push(cpu.load32(pfnToVa(0)) === 0x6974616e); // "nati": start_info through the new tables
      try {
        cpu.writeCr3(PAGES * 4096);
      } catch (err) {
        gp = err as GuestTrap;
      }
      seen.push(cpu.readCr3() === copy * 4096);
      yield;
    })).to.equal('idle');
    expect(seen).to.deep.equal([true, true, true, true, true, true, true, true]);
    expect(gp).to.be.instanceOf(GuestTrap);
    expect(gp!.errorCode).to.equal(0);
    expect(e.m.checkInvariants()).to.deep.equal([]);
  });

  it('COM1: a line reaches the console log as (dN), and THRE reads clear for ten bit times after each byte', () => {
    const e = emulated();
    const lsr: number[] = [];
    e.m.exec(e.domid, 0, function* (cpu) {
      for (const ch of 'hello\n') {
        while ((cpu.in(0x3fd, 1) & 0x20) === 0) cpu.compute(1000);
        cpu.out(0x3f8, 1, ch.charCodeAt(0));
      }
      lsr.push(cpu.in(0x3fd, 1) & 0x20);
      cpu.compute(Math.ceil(86.806 * 2400));
      lsr.push(cpu.in(0x3fd, 1) & 0x20);
      lsr.push(cpu.in(0x2f8, 1)); // no device
      yield;
    });
    expect(lsr).to.deep.equal([0, 0x20, 0xff]);
    expect(e.m.hv.consoleLog).to.include(`(d${e.domid}) hello`);
  });

  it('COM1 output follows Xen\'s console rules for guests: control bytes dropped, lines cut at DOMAIN_PBUF_SIZE - 1', () => {
    const e = emulated();
    e.m.exec(e.domid, 0, function* (cpu) {
      for (const b of [0x41, 0, 0x42, 7, 0x43, 10]) cpu.out(0x3f8, 1, b); // no THRE wait: bytes queue
      for (let i = 0; i < 450; i++) cpu.out(0x3f8, 1, 0x78);
      yield;
    });
    const lines = e.m.hv.consoleLog.filter((l) => l.startsWith(`(d${e.domid}) `)).map((l) => l.slice(5));
    expect(lines).to.deep.equal(['ABC', 'x'.repeat(199), 'x'.repeat(199)]);
  });

  it('writing SLP_EN to the ACPI poweroff port shuts the domain down with SHUTDOWN_poweroff', () => {
    const e = emulated();
    let after = false;
    expect(e.m.exec(e.domid, 0, function* (cpu) {
      yield;
      cpu.out(0x604, 2, 0x2000);
      after = true;
    })).to.equal('halted');
    const d = e.m.domain(e.domid)!;
    expect(after).to.equal(false);
    expect(d.state).to.equal('shutdown');
    expect(d.shutdownCode).to.equal(SHUTDOWN_poweroff);
  });

  it('a hypercall instruction is #UD: the kernel is not Xen-aware', () => {
    const e = emulated();
    let caught: GuestTrap | null = null;
    e.text.set(code(0), function* (cpu) {
      throw new GuestTrap(6, 0, readFrame(cpu, false).rip);
    });
    e.m.exec(e.domid, 0, function* (cpu) {
      installIdt(cpu, [[6, code(0), GATE_INT, 0]]);
      try {
        cpu.hypercall(X.HYPERVISOR_xen_version, 0, 0);
      } catch (err) {
        caught = err as GuestTrap;
      }
      yield;
    });
    expect(caught).to.be.instanceOf(GuestTrap);
    expect(caught!.vector).to.equal(6);
    expect(stats(e).hypercalls).to.equal(0);
  });

  it('a privileged instruction from ring 3 is #GP(0) into the guest, not emulated', () => {
    const e = emulated();
    const gp: Frame[] = [];
    e.text.set(code(0), recorder(gp, true));
    e.text.set(USER_CODE, function* (cpu) {
      cpu.cli();
      yield;
    });
    e.m.exec(e.domid, 0, function* (cpu) {
      installIdt(cpu, [[13, code(0), GATE_INT, 0]]);
      cpu.sti();
      userPage(cpu, USER_PFN);
      enterUser(cpu, USER_CODE);
    });
    expect(gp).to.have.length(1);
    expect(gp[0]).to.include({ ec: 0, cs: USER_CS });
    const s = stats(e);
    expect(s.privOps[PRIV_CLI]).to.equal(0);
    expect(s.privOpsRefused[PRIV_CLI]).to.equal(1);
  });

  it('a periodic virtual APIC timer loses an edge when the virtual IF stays clear across two edges', () => {
    let ticks = 0;
    const seen: number[] = [];
    const e = emulated(function* (cpu) {
      installIdt(cpu, [[TIMER_VECTOR, code(0), GATE_INT, 0]]);
      cpu.wrmsr(0x83e, 0xb); // divide by 1
      cpu.wrmsr(0x832, TIMER_VECTOR | LVT_MODE_PERIODIC);
      const armed = cpu.rdtsc();
      cpu.wrmsr(0x838, 24_000); // 10 us: edges at 10, 20, 30, 40 us after `armed` (plus the wrmsr's trap)
      const until = function* (us: number) {
        while (cpu.rdtsc() < armed + us * 2400) {
          cpu.compute(2400);
          yield;
        }
      };
      cpu.sti();
      yield* until(15); // one edge, delivered
      seen.push(ticks);
      cpu.cli();
      yield* until(35); // the edges at 20 and 30 us with the virtual IF clear: the second is lost
      cpu.sti();
      yield;
      seen.push(ticks);
      cpu.wrmsr(0x838, 0);
    });
    e.text.set(code(0), timerHandler(() => { ticks++; }));
    e.m.run(1_000_000);
    expect(seen).to.deep.equal([1, 2]);
    const s = stats(e);
    expect(s.apicRaised).to.equal(3);
    expect(s.apicLost).to.equal(1);
    expect(s.interruptsDelivered).to.equal(2);
  });

  it('checkInvariants is clean with an emulated domain running, and destroying it returns every frame', () => {
    const m = new Machine({ memoryMb: 64 });
    m.bootDom0({ memoryMb: 4 });
    const free0 = m.freeFrames;
    const text = new Map<number, GuestCode>();
    text.set(ENTRY, function* (cpu) {
      for (let i = 0; i < 1024; i++) cpu.store32(pfnToVa(30) + i * 4, cpu.load32(pfnToVa(LAYOUT.ptPfn) + i * 4));
      cpu.writeCr3(30 * 4096);
      cpu.store32(pfnToVa(L1_PFN) + 8 * 50, cpu.load32(pfnToVa(L1_PFN) + 8 * 50));
      for (;;) {
        cpu.compute(10_000);
        yield;
      }
    });
    const h = m.createGuest({ mode: 'emulate', pages: PAGES, image: { text, entry: ENTRY } });
    m.run(100_000);
    expect(m.domainStats(h.domid)!.ptWriteTraps).to.be.at.least(1);
    expect(m.checkInvariants()).to.deep.equal([]);
    m.destroy(h.domid);
    expect(m.domain(h.domid)).to.equal(undefined);
    expect(m.checkInvariants()).to.deep.equal([]);
    expect(m.freeFrames).to.equal(free0);
  });

  it('a PV kernel\'s hypercalls are counted per domain, for comparison with the traps of an unpatched one', () => {
    const m = new Machine({ memoryMb: 64 });
    const h = m.createGuest({ pages: PAGES });
    expect(h.vcpus[0].hypercall(X.HYPERVISOR_xen_version, 0, 0)).to.be.greaterThan(0);
    h.vcpus[0].hypercall(X.HYPERVISOR_xen_version, 0, 0);
    const s = m.domainStats(h.domid)!;
    expect(s).to.include({ mode: 'pv', hypercalls: 2, privOpsTotal: 0, ptWriteTraps: 0 });
  });
});
