// Conformance: what happens after a delivery or an iret goes wrong, and the rules that
// depend on guest mode and VM assists: a crashed domain's code never runs again, a
// fault at an iret target reaches the guest (XSA-7), the #UD for a user-mode hypercall
// points at the instruction, VMASST_TYPE_architectural_iopl, and privileged
// instructions in guest user mode. Handlers are those of test/support/trap-kernel.ts.

import { expect } from 'chai';
import { type GuestKernel, type TestMachine } from '../support/fixture.ts';
import {
  TrapKernel, trapSetup, USER_CODE, VEC_DPL3, kernelRsp, makeUserSpace, pushRawIret, runUser,
} from '../support/trap-kernel.ts';
import { pfnToVa } from '../../guests/lib/xen-calls.ts';
import { iretFromFrame } from '../../guests/lib/xen-traps.ts';
import { FLAT_KERNEL_SS, FLAT_USER_CS, FLAT_USER_SS } from '../../hypervisor/public/arch-x86.ts';
import {
  REG_RSP, TRAP_gp_fault, TRAP_invalid_op, TRAP_page_fault, X86_EFLAGS_IOPL, type GuestVcpu,
} from '../../hypervisor/public/vcpu.ts';
import * as X from '../../hypervisor/public/xen.ts';

/** Enters USER_CODE by HYPERVISOR_iret with IOPL 3 in the frame's RFLAGS. */
function iretToUserWithIopl3(g: GuestKernel): void {
  const ksp = kernelRsp(g);
  g.exec(function* (cpu) {
    cpu.setReg(REG_RSP, ksp);
    pushRawIret(cpu, {
      rax: 0, r11: 0, rcx: 0, flags: 0, rip: USER_CODE, cs: FLAT_USER_CS, rflags: 0x202 | X86_EFLAGS_IOPL,
      rsp: 0x5000, ss: FLAT_USER_SS,
    });
    cpu.hypercall(X.HYPERVISOR_iret);
  });
}

describe('trap outcomes', () => {
  let t: TestMachine;
  let g: GuestKernel;
  let tk: TrapKernel;
  beforeEach(() => {
    ({ t, g, tk } = trapSetup());
  });
  afterEach(() => t.check());

  it('a trap whose bounce frame cannot be written crashes the domain; the interrupted code never runs again', () => {
    makeUserSpace(g);
    expect(g.v.hypercall(X.HYPERVISOR_stack_switch, FLAT_KERNEL_SS, pfnToVa(g.si.nrPages) + 0x800)).to.equal(0);
    let resumed = false;
    runUser(g, USER_CODE, function* () {
      yield VEC_DPL3;
      resumed = true;
    });
    expect(t.m.domain(g.domid)?.state).to.equal('crashed');
    expect(resumed).to.equal(false);
  });

  it('iret with an unreadable frame crashes the domain; the code that made the call never runs again', () => {
    const bad = pfnToVa(g.si.nrPages) + 0x100;
    let returned = false;
    expect(g.exec(function* (cpu) {
      cpu.setReg(REG_RSP, bad);
      cpu.hypercall(X.HYPERVISOR_iret);
      returned = true;
    })).to.equal('halted');
    expect(t.m.domain(g.domid)?.state).to.equal('crashed');
    expect(returned).to.equal(false);
  });

  it('XSA-7: iret to a non-canonical RIP gives the guest #GP(0); the domain keeps running', () => {
    const ksp = kernelRsp(g);
    g.exec(function* (cpu) {
      cpu.setReg(REG_RSP, ksp);
      pushRawIret(cpu, { rax: 0, r11: 0, rcx: 0, flags: 0, rip: 2 ** 47, cs: 0xe030, rflags: 0x202, rsp: ksp, ss: 0xe02b });
      cpu.hypercall(X.HYPERVISOR_iret);
    });
    expect(tk.seen.map((d) => [d.entry, d.frame.errorCode])).to.deep.equal([[TRAP_gp_fault, 0]]);
    expect(t.m.domain(g.domid)?.state).to.equal('running');
  });

  it('iret to an unmapped kernel RIP gives the guest #PF with CR2 = that RIP', () => {
    const ksp = kernelRsp(g);
    const bad = pfnToVa(g.si.nrPages) + 0x40;
    g.exec(function* (cpu) {
      cpu.setReg(REG_RSP, ksp);
      pushRawIret(cpu, { rax: 0, r11: 0, rcx: 0, flags: 0, rip: bad, cs: 0xe030, rflags: 0x202, rsp: ksp, ss: 0xe02b });
      cpu.hypercall(X.HYPERVISOR_iret);
    });
    expect(tk.seen.map((d) => [d.entry, d.cr2, d.frame.fromUser])).to.deep.equal([[TRAP_page_fault, bad, false]]);
  });

  it('user code that returns (jumps to address 0) faults into its kernel', () => {
    makeUserSpace(g);
    runUser(g, USER_CODE, function* () { /* returns */ });
    expect(tk.seen).to.have.length(1);
    expect(tk.seen[0].frame.fromUser).to.equal(true);
  });

  it('the #UD for a user-mode hypercall with no syscall callback points at the instruction: an iret back gets #UD again', () => {
    makeUserSpace(g);
    let uds = 0;
    tk.on(TRAP_invalid_op, (cpu) => {
      if (++uds === 1) iretFromFrame(cpu, false);
    });
    let returned = false;
    expect(runUser(g, USER_CODE, function* (u) {
      u.hypercall(X.HYPERVISOR_xen_version, 0, 0);
      returned = true;
      yield 0x80;
    })).to.equal('idle');
    expect(tk.seen.map((d) => d.entry)).to.deep.equal([TRAP_invalid_op, TRAP_invalid_op]);
    expect(returned).to.equal(false);
  });

  it('with VMASST_TYPE_architectural_iopl the guest kernel counts as ring 0 for I/O privilege: cli/sti/in do not fault', () => {
    tk.on(TRAP_gp_fault, 'unwind');
    g.v.setReg(REG_RSP, kernelRsp(g));
    expect(g.v.hypercall(X.HYPERVISOR_vm_assist, X.VMASST_CMD_enable, X.VMASST_TYPE_architectural_iopl)).to.equal(0);
    g.v.cli();
    g.v.sti();
    expect(g.v.in(0x1234, 1)).to.equal(0xff);
    expect(tk.seen).to.have.length(0);
  });

  it('with VMASST_TYPE_architectural_iopl, iret takes the virtual IOPL from the frame: IOPL 3 lets user code cli', () => {
    makeUserSpace(g);
    expect(g.v.hypercall(X.HYPERVISOR_vm_assist, X.VMASST_CMD_enable, X.VMASST_TYPE_architectural_iopl)).to.equal(0);
    let done = false;
    g.define(USER_CODE, function* (u) {
      u.cli();
      done = true;
      yield 0x80;
    });
    iretToUserWithIopl3(g);
    expect(done).to.equal(true);
    expect(tk.seen.map((d) => d.entry)).to.deep.equal([0x80]);
  });

  it('with VMASST_TYPE_architectural_iopl the bounce frame RFLAGS carries the virtual IOPL', () => {
    makeUserSpace(g);
    expect(g.v.hypercall(X.HYPERVISOR_vm_assist, X.VMASST_CMD_enable, X.VMASST_TYPE_architectural_iopl)).to.equal(0);
    g.define(USER_CODE, function* () {
      yield VEC_DPL3;
    });
    iretToUserWithIopl3(g);
    expect(tk.only().words[4].lo & X86_EFLAGS_IOPL).to.equal(X86_EFLAGS_IOPL);
  });

  it('mov from CR3, rdmsr, wrmsr and wbinvd in guest user mode inject #GP(0)', () => {
    makeUserSpace(g);
    const ops: ((u: GuestVcpu) => unknown)[] = [
      (u) => u.readCr3(), (u) => u.rdmsr(0xc0000080), (u) => u.wrmsr(0xc0000100, 0x1000), (u) => u.wbinvd(),
    ];
    ops.forEach((op, i) => runUser(g, USER_CODE + i * 16, function* (u) {
      op(u);
      yield 0x80;
    }));
    expect(tk.seen.map((d) => [d.entry, d.frame.errorCode, d.frame.fromUser]))
      .to.deep.equal(ops.map(() => [TRAP_gp_fault, 0, true]));
  });
});
