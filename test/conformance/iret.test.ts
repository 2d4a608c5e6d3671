// Conformance: HYPERVISOR_iret for a 64-bit PV guest (pv/iret.c do_iret), with
// iret_context frames written field by field on the guest's kernel stack. Each test
// names the rule (notes xen-rules-3-traps §4) and its outcome.

import { expect } from 'chai';
import { type GuestKernel, type TestMachine } from '../support/fixture.ts';
import {
  TrapKernel, trapSetup, USER_CODE, kernelRsp, makeUserSpace, pushRawIret, runUser, setUpcallMask, setUpcallPending,
  upcallMask, type IretContext,
} from '../support/trap-kernel.ts';
import { mmuUpdate, mmuextOp, pfnToVa, ptePtr } from '../../guests/lib/xen-calls.ts';
import { iretFromFrame } from '../../guests/lib/xen-traps.ts';
import { FLAT_KERNEL_SS, VGCF_in_syscall } from '../../hypervisor/public/arch-x86.ts';
import {
  REG_R11, REG_RAX, REG_RCX, REG_RSP, TRAP_page_fault, X86_EFLAGS_IF, X86_EFLAGS_IOPL, type GuestVcpu,
} from '../../hypervisor/public/vcpu.ts';
import * as X from '../../hypervisor/public/xen.ts';

const MBS = 1 << 1;
const CF = 1 << 0;
/** Where the tests' iret targets live in the guest kernel. */
const CONT = pfnToVa(0) + 0xf00;

/** What the kernel code at CONT found when it started. */
interface Arrival {
  cpl: number;
  rax: number;
  rcx: number;
  r11: number;
  rsp: number;
  rflags: number;
  mask: number;
}

describe('HYPERVISOR_iret', () => {
  let t: TestMachine;
  let g: GuestKernel;
  let tk: TrapKernel;
  let arrivals: Arrival[];
  beforeEach(() => {
    ({ t, g, tk } = trapSetup());
    arrivals = [];
    g.define(CONT, function* (cpu) {
      arrivals.push({
        cpl: cpu.cpl, rax: cpu.reg(REG_RAX), rcx: cpu.reg(REG_RCX), r11: cpu.reg(REG_R11), rsp: cpu.reg(REG_RSP),
        rflags: cpu.pushf(), mask: upcallMask(g, cpu),
      });
    });
  });
  afterEach(() => t.check());

  /** A frame returning to CONT in kernel mode (CS RPL 0: 0xe033 would mean user mode), events on. */
  function frame(over: Partial<IretContext> = {}): IretContext {
    return {
      rax: 0x1234, r11: 0x1111, rcx: 0x2222, flags: 0, rip: CONT, cs: 0xe030, rflags: MBS | X86_EFLAGS_IF,
      rsp: kernelRsp(g) - 0x100, ss: FLAT_KERNEL_SS, ...over,
    };
  }

  /** Runs kernel code that sets RCX/R11, pushes `c` and makes HYPERVISOR_iret; whether the call returned. */
  function iret(c: IretContext, before?: (cpu: GuestVcpu) => void): boolean {
    const ksp = kernelRsp(g);
    let returned = false;
    g.exec(function* (cpu) {
      cpu.setReg(REG_RSP, ksp);
      cpu.setReg(REG_RCX, 0xaaaa);
      cpu.setReg(REG_R11, 0xbbbb);
      before?.(cpu);
      pushRawIret(cpu, c);
      cpu.hypercall(X.HYPERVISOR_iret);
      returned = true;
    });
    return returned;
  }

  it('iret restores RIP and RSP, returns the frame\'s rax, and restores RCX and R11 from the frame', () => {
    const c = frame();
    expect(iret(c)).to.equal(false);
    expect(arrivals).to.have.length(1);
    const a = arrivals[0];
    expect([a.cpl, a.rax, a.rcx, a.r11, a.rsp]).to.deep.equal([1, 0x1234, 0x2222, 0x1111, c.rsp]);
  });

  it('iret with VGCF_in_syscall in flags leaves RCX and R11 as they were', () => {
    expect(iret(frame({ flags: VGCF_in_syscall }))).to.equal(false);
    const a = arrivals[0];
    expect([a.rax, a.rcx, a.r11]).to.deep.equal([0x1234, 0xaaaa, 0xbbbb]);
  });

  it('iret with CS RPL 0, 1 or 2 stays in kernel mode', () => {
    for (const cs of [0xe030, 0xe031, 0xe032]) {
      expect(iret(frame({ cs }))).to.equal(false);
    }
    expect(arrivals.map((a) => a.cpl)).to.deep.equal([1, 1, 1]);
  });

  it('iret sets evtchn_upcall_mask to !RFLAGS.IF and forces the real IF on', () => {
    expect(iret(frame({ rflags: MBS | CF }), (cpu) => setUpcallMask(g, 0, cpu))).to.equal(false);
    expect(iret(frame({ rflags: MBS | CF | X86_EFLAGS_IF }), (cpu) => setUpcallMask(g, 1, cpu))).to.equal(false);
    expect(arrivals.map((a) => [a.mask, a.rflags & (X86_EFLAGS_IF | CF)])).to.deep.equal([
      [1, X86_EFLAGS_IF | CF],
      [0, X86_EFLAGS_IF | CF],
    ]);
  });

  it('iret drops IOPL from the frame\'s RFLAGS', () => {
    expect(iret(frame({ rflags: MBS | X86_EFLAGS_IF | X86_EFLAGS_IOPL }))).to.equal(false);
    expect(arrivals[0].rflags & X86_EFLAGS_IOPL).to.equal(0);
  });

  it('iret that unmasks events with an upcall pending delivers the event before the target runs', () => {
    expect(tk.registerEvent()).to.equal(0);
    let seenAtCont = -1;
    g.define(CONT + 0x10, function* () {
      seenAtCont = tk.seen.length;
    });
    tk.on('event', (cpu) => {
      setUpcallPending(g, 0, cpu);
      iretFromFrame(cpu, false);
    });
    expect(iret(frame({ rip: CONT + 0x10 }), (cpu) => {
      setUpcallMask(g, 1, cpu);
      setUpcallPending(g, 1, cpu);
    })).to.equal(false);
    expect(tk.seen.map((d) => [d.entry, d.frame.savedMask])).to.deep.equal([['event', 0]]);
    expect(seenAtCont).to.equal(1);
  });

  it('iret with an unreadable frame crashes the domain', () => {
    const bad = pfnToVa(g.si.nrPages) + 0x100;
    g.exec(function* (cpu) {
      cpu.setReg(REG_RSP, bad);
      cpu.hypercall(X.HYPERVISOR_iret);
    });
    expect(t.m.domain(g.domid)?.state).to.equal('crashed');
    expect(arrivals).to.have.length(0);
  });

  describe('to user mode', () => {
    it('iret to CS RPL 3 switches to the user page tables: user code reads what only they map', () => {
      const us = makeUserSpace(g);
      g.v.store32(us.data.va + 0x10, 0x7777);
      let got: number[] = [];
      expect(runUser(g, USER_CODE, function* (u) {
        got = [u.cpl, u.load32(0x10)];
        yield 0x80;
      })).to.equal('idle');
      expect(got).to.deep.equal([3, 0x7777]);
      // The kernel page tables do not map VA 0x10.
      tk.seen.length = 0;
      const ksp = kernelRsp(g);
      g.exec(function* (cpu) {
        cpu.setReg(REG_RSP, ksp);
        cpu.load32(0x10);
      });
      expect(tk.seen.map((d) => [d.entry, d.cr2, d.frame.fromUser])).to.deep.equal([[TRAP_page_fault, 0x10, false]]);
    });

    it('iret to user mode restores the frame\'s RSP, RCX, R11 and rax for the user code', () => {
      makeUserSpace(g);
      let got: number[] = [];
      g.define(USER_CODE, function* (u) {
        got = [u.cpl, u.reg(REG_RAX), u.reg(REG_RCX), u.reg(REG_R11), u.reg(REG_RSP)];
        yield 0x80;
      });
      const c = frame({ rip: USER_CODE, cs: 0xe033, rsp: 0x6010, ss: 0xe02b, rax: 0x99 });
      expect(iret(c)).to.equal(false);
      expect(got).to.deep.equal([3, 0x99, 0x2222, 0x1111, 0x6010]);
    });

    it('iret to user mode with no user page tables crashes the domain', () => {
      let ran = false;
      runUser(g, USER_CODE, function* () {
        ran = true;
      });
      expect(t.m.domain(g.domid)?.state).to.equal('crashed');
      expect(ran).to.equal(false);
    });
  });

});

describe('a ring-1 kernel returning to ring 3 with iretq (classic Xen fast return)', () => {
  let t: TestMachine;
  let g: GuestKernel;
  let tk: TrapKernel;
  beforeEach(() => {
    ({ t, g, tk } = trapSetup());
  });
  afterEach(() => t.check());

  const vcpu = () => t.m.hv.domainById(g.domid)!.vcpus[0];

  /** Hooks a user space into the kernel's own L4 and makes that L4 the user base too. */
  function oneL4(): number {
    const us = makeUserSpace(g);
    const bootL4 = vcpu().guestTable;
    const e = { lo: g.v.load32(us.l4.va), hi: g.v.load32(us.l4.va + 4) };
    expect(mmuUpdate(g.v, g.buf, [[ptePtr(bootL4, 0), e]]).rc).to.equal(0);
    expect(mmuextOp(g.v, g.buf, [{ cmd: X.MMUEXT_NEW_USER_BASEPTR, arg1: bootL4 }]).rc).to.equal(0);
    return us.l4.mfn;
  }

  it('runs natively (no hypercall, no Xen entry); user mode keeps the kernel tables, which the invariants allow', () => {
    // The user base is a separate L4, but the kernel's own L4 maps the user code too.
    const userL4 = oneL4();
    expect(mmuextOp(g.v, g.buf, [{ cmd: X.MMUEXT_NEW_USER_BASEPTR, arg1: userL4 }]).rc).to.equal(0);
    let ranAt = -1;
    let problems: string[] = ['not run'];
    g.define(USER_CODE, function* (cpu) {
      ranAt = cpu.cpl;
      problems = t.m.checkInvariants();
      yield 0x80;
    });
    const calls = t.m.domainStats(g.domid)!.hypercalls;
    const ksp = kernelRsp(g);
    g.exec(function* (cpu) {
      cpu.setReg(REG_RSP, ksp);
      const sp = ksp - 64;
      for (const [i, w] of [USER_CODE, 0xe033, MBS | X86_EFLAGS_IF, 0x5008, 0xe02b].entries()) {
        cpu.store64(sp + i * 8, w >>> 0, Math.floor(w / 4294967296) >>> 0);
      }
      cpu.setReg(REG_RSP, sp);
      cpu.iretq();
    });
    expect(ranAt).to.equal(3);
    expect(problems).to.deep.equal([]);
    expect(t.m.domainStats(g.domid)!.hypercalls).to.equal(calls);
    expect(tk.only().entry).to.equal(0x80);
    expect(tk.only().frame.fromUser).to.equal(true);
  });

  it('with one L4 for kernel and user, entries from user mode reload no CR3; with two they flush the TLB', () => {
    const flushesFor = (): number => {
      const v = vcpu();
      const before = v.tlb.flushes;
      runUser(g, USER_CODE, function* () {
        yield 0x80;
      });
      return v.tlb.flushes - before;
    };
    makeUserSpace(g);
    expect(flushesFor()).to.be.at.least(2); // to the user L4 and back to the kernel's
    tk.seen.length = 0;
    oneL4();
    expect(flushesFor()).to.equal(0);
  });
});
