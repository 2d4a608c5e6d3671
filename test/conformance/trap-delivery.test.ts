// Conformance: how Xen delivers exceptions, software interrupts and events to a 64-bit
// PV kernel — the bounce frame it builds (create_bounce_frame), page faults (CR2 in
// vcpu_info, the U/S bit, retry after a fix), `int n` and its DPL check, the int 0x80
// fast path, and a user-mode hypercall. Handlers are the recording ones of
// test/support/trap-kernel.ts. Each test names the rule (notes xen-rules-3-traps §5-6).

import { expect } from 'chai';
import { bootTestMachine, hookWindow, type GuestKernel, type TestMachine } from '../support/fixture.ts';
import {
  TrapKernel, trapSetup, USER_CODE, USER_RSP, VEC_DPL0, VEC_DPL1, VEC_DPL2, VEC_DPL3, VEC_MASKED, halves, kernelRsp,
  makeUserSpace, runUser, setUpcallMask, setUpcallPending, upcallMask, type UserSpace,
} from '../support/trap-kernel.ts';
import { PTE_A, PTE_P, PTE_US, mmuUpdate, pfnToVa, pte, ptePtr, updateVaMapping } from '../../guests/lib/xen-calls.ts';
import { iretFromFrame } from '../../guests/lib/xen-traps.ts';
import { FLAT_USER_CS, FLAT_USER_SS } from '../../hypervisor/public/arch-x86.ts';
import {
  REG_R11, REG_RCX, REG_RSP, TRAP_gp_fault, TRAP_int3, TRAP_invalid_op, TRAP_page_fault, X86_EFLAGS_IF,
} from '../../hypervisor/public/vcpu.ts';
import * as X from '../../hypervisor/public/xen.ts';

/** RFLAGS bits used below. */
const CF = 1 << 0;
const ZF = 1 << 6;
const TF = 1 << 8;
const NT = 1 << 14;
const AC = 1 << 18;
const MBS = 1 << 1;

/** The CS a 64-bit PV kernel context is saved with: FLAT_KERNEL_CS with RPL 0. */
const KERNEL_CS_RPL0 = 0xe030;
const KERNEL_SS = 0xe02b;

/** Past the guest's last page: not mapped in its page tables. */
function unmappedVa(k: GuestKernel): number {
  return pfnToVa(k.si.nrPages) + 0x120;
}

describe('trap delivery', () => {
  let t: TestMachine;
  let g: GuestKernel;
  let tk: TrapKernel;
  beforeEach(() => {
    ({ t, g, tk } = trapSetup());
    setUpcallMask(g, 0); // the kernel is ready for events
  });
  afterEach(() => t.check());

  it('a freshly built domain starts with upcalls masked, as Xen\'s domain builders leave it', () => {
    const fresh = bootTestMachine().other;
    expect(upcallMask(fresh)).to.equal(1);
  });

  describe('bounce frame', () => {
    it('a kernel fault with an error code pushes RCX, R11, EC, RIP, CS, RFLAGS, RSP, SS below RSP aligned to 16', () => {
      const rsp0 = kernelRsp(g) + 8; // misaligned on purpose
      const bad = unmappedVa(g);
      const bounces = t.m.hv.traps.bounces;
      expect(g.exec(function* (cpu) {
        cpu.setReg(REG_RSP, rsp0);
        cpu.setReg(REG_RCX, 0x1111);
        cpu.setReg(REG_R11, 0x2222);
        cpu.popf(MBS | X86_EFLAGS_IF | CF | ZF);
        cpu.load32(bad);
      })).to.equal('idle');
      const d = tk.only();
      expect(d.entry).to.equal(TRAP_page_fault);
      expect(d.rsp).to.equal(kernelRsp(g) - 64);
      const w = d.words;
      expect(w[0]).to.deep.equal({ lo: 0x1111, hi: 0 });
      expect(w[1]).to.deep.equal({ lo: 0x2222, hi: 0 });
      expect(w[2]).to.deep.equal({ lo: 0, hi: 0 }); // #PF: kernel, read, not present
      expect(w[4], 'CS: RPL 0, saved mask 0').to.deep.equal({ lo: KERNEL_CS_RPL0, hi: 0 });
      expect(w[5], 'RFLAGS: IF = !mask').to.deep.equal({ lo: MBS | X86_EFLAGS_IF | CF | ZF, hi: 0 });
      expect(w[6], 'RSP as interrupted, unaligned').to.deep.equal(halves(rsp0));
      expect(w[7]).to.deep.equal({ lo: KERNEL_SS, hi: 0 });
      expect(t.m.hv.traps.bounces).to.equal(bounces + 1);
    });

    it('the CS slot carries the saved evtchn_upcall_mask in bits 32-39 and RFLAGS.IF is its inverse', () => {
      const ksp = kernelRsp(g);
      const bad = unmappedVa(g);
      expect(g.exec(function* (cpu) {
        cpu.setReg(REG_RSP, ksp);
        setUpcallMask(g, 1, cpu);
        cpu.load32(bad);
      })).to.equal('idle');
      const d = tk.only();
      expect(d.words[4]).to.deep.equal({ lo: KERNEL_CS_RPL0, hi: 1 });
      expect(d.words[5].lo & X86_EFLAGS_IF).to.equal(0);
      expect(d.frame.savedMask).to.equal(1);
    });

    it('a software interrupt has no error code: seven quadwords RCX, R11, RIP, CS, RFLAGS, RSP, SS', () => {
      const rsp0 = kernelRsp(g) - 0x24;
      expect(g.exec(function* (cpu) {
        cpu.setReg(REG_RSP, rsp0);
        cpu.setReg(REG_RCX, 0x3333);
        cpu.setReg(REG_R11, 0x4444);
        yield VEC_DPL1;
      })).to.equal('idle');
      const d = tk.only();
      expect(d.entry).to.equal(VEC_DPL1);
      expect(d.rsp).to.equal(kernelRsp(g) - 0x30 - 56);
      const w = d.words;
      expect(w[0]).to.deep.equal({ lo: 0x3333, hi: 0 });
      expect(w[1]).to.deep.equal({ lo: 0x4444, hi: 0 });
      expect(w[3]).to.deep.equal({ lo: KERNEL_CS_RPL0, hi: 0 });
      expect(w[4]).to.deep.equal({ lo: MBS | X86_EFLAGS_IF, hi: 0 });
      expect(w[5]).to.deep.equal(halves(rsp0));
      expect(w[6]).to.deep.equal({ lo: KERNEL_SS, hi: 0 });
    });

    it('an entry from user mode saves FLAT_USER_CS (RPL 3), FLAT_USER_SS and the user RSP, and runs the handler in kernel mode', () => {
      makeUserSpace(g);
      let kernelLoad = -1;
      tk.on(VEC_DPL3, (cpu) => {
        kernelLoad = cpu.load32(g.sharedInfoVa + 0x800); // the kernel's direct map: kernel page tables
      });
      expect(runUser(g, USER_CODE, function* (u) {
        u.setReg(REG_RCX, 0x5555);
        u.setReg(REG_R11, 0x6666);
        yield VEC_DPL3;
      })).to.equal('idle');
      const d = tk.only();
      expect(d.cpl).to.equal(1);
      expect(d.frame.fromUser).to.equal(true);
      const w = d.words;
      expect(w[0]).to.deep.equal({ lo: 0x5555, hi: 0 });
      expect(w[1]).to.deep.equal({ lo: 0x6666, hi: 0 });
      expect(w[3]).to.deep.equal({ lo: FLAT_USER_CS, hi: 0 });
      expect(w[4]).to.deep.equal({ lo: MBS | X86_EFLAGS_IF, hi: 0 });
      expect(w[5]).to.deep.equal({ lo: USER_RSP, hi: 0 });
      expect(w[6]).to.deep.equal({ lo: FLAT_USER_SS, hi: 0 });
      expect(kernelLoad).to.equal(0);
    });

    it('a trap-table entry with TI_IF (flags bit 2) masks events on entry; one without leaves the mask clear', () => {
      const ksp = kernelRsp(g);
      tk.on(VEC_MASKED, 'iret');
      tk.on(VEC_DPL1, 'iret');
      let maskAfter = -1;
      expect(g.exec(function* (cpu) {
        cpu.setReg(REG_RSP, ksp);
        setUpcallMask(g, 0, cpu);
        yield VEC_MASKED;
        yield VEC_DPL1;
        maskAfter = upcallMask(g, cpu);
      })).to.equal('idle');
      expect(tk.seen.map((d) => [d.entry, d.maskOnEntry, d.frame.savedMask])).to.deep.equal([
        [VEC_MASKED, 1, 0],
        [VEC_DPL1, 0, 0],
      ]);
      // The iret back restored the mask from the saved RFLAGS.IF.
      expect(maskAfter).to.equal(0);
    });

    it('a fault through a TI_IF entry masks events on entry too', () => {
      expect(tk.install([{ vector: TRAP_page_fault, dpl: 0, maskEvents: true, hasEc: true }])).to.equal(0);
      const ksp = kernelRsp(g);
      const bad = unmappedVa(g);
      expect(g.exec(function* (cpu) {
        cpu.setReg(REG_RSP, ksp);
        setUpcallMask(g, 0, cpu);
        cpu.load32(bad);
      })).to.equal('idle');
      expect(tk.only().maskOnEntry).to.equal(1);
      expect(tk.only().frame.savedMask).to.equal(0);
    });

    it('the handler starts with TF, NT and AC cleared in RFLAGS; the frame keeps the interrupted RFLAGS', () => {
      const ksp = kernelRsp(g);
      expect(g.exec(function* (cpu) {
        cpu.setReg(REG_RSP, ksp);
        cpu.popf(MBS | X86_EFLAGS_IF | TF | NT | AC | CF);
        yield VEC_DPL1;
      })).to.equal('idle');
      const d = tk.only();
      expect(d.words[4].lo).to.equal(MBS | X86_EFLAGS_IF | TF | NT | AC | CF);
      expect(d.rflags & (TF | NT | AC)).to.equal(0);
      expect(d.rflags & CF).to.equal(CF);
    });

    it('an event upcall with no event callback registered crashes the domain', () => {
      const ksp = kernelRsp(g);
      g.exec(function* (cpu) {
        cpu.setReg(REG_RSP, ksp);
        setUpcallMask(g, 0, cpu);
        setUpcallPending(g, 1, cpu);
        yield;
      });
      expect(t.m.domain(g.domid)?.state).to.equal('crashed');
      expect(tk.seen).to.have.length(0);
    });

    it('a fault whose trap-table entry is null crashes the domain', () => {
      expect(g.v.hypercall(X.HYPERVISOR_set_trap_table, 0)).to.equal(0);
      expect(tk.install([{ vector: TRAP_gp_fault, dpl: 0, hasEc: true }])).to.equal(0);
      const ksp = kernelRsp(g);
      const bad = unmappedVa(g);
      expect(g.exec(function* (cpu) {
        cpu.setReg(REG_RSP, ksp);
        cpu.load32(bad);
      })).to.equal('halted');
      expect(t.m.domain(g.domid)?.state).to.equal('crashed');
      expect(tk.seen).to.have.length(0);
    });
  });

  describe('event upcall', () => {
    beforeEach(() => {
      expect(tk.registerEvent()).to.equal(0);
      tk.on('event', (cpu) => {
        setUpcallPending(g, 0, cpu);
        iretFromFrame(cpu, false);
      });
    });

    it('the event callback always masks events on entry (registered without CALLBACKF_mask_events); no error code', () => {
      const rsp0 = kernelRsp(g) - 8;
      let resumed = false;
      let maskAfter = -1;
      expect(g.exec(function* (cpu) {
        cpu.setReg(REG_RSP, rsp0);
        setUpcallMask(g, 0, cpu);
        setUpcallPending(g, 1, cpu);
        yield;
        resumed = true;
        maskAfter = upcallMask(g, cpu);
      })).to.equal('idle');
      const d = tk.only();
      expect(d.entry).to.equal('event');
      expect(d.maskOnEntry).to.equal(1);
      expect(d.rsp).to.equal(kernelRsp(g) - 16 - 56);
      expect(d.words[3]).to.deep.equal({ lo: KERNEL_CS_RPL0, hi: 0 });
      expect(d.words[4].lo & X86_EFLAGS_IF).to.equal(X86_EFLAGS_IF);
      expect(d.words[5]).to.deep.equal(halves(rsp0));
      expect(resumed).to.equal(true);
      expect(maskAfter).to.equal(0);
      expect(t.m.hv.domainById(g.domid)!.vcpus[0].interrupts).to.equal(1);
    });

    it('no upcall while evtchn_upcall_mask is set; clearing it delivers the event at the next boundary', () => {
      const ksp = kernelRsp(g);
      let deliveredWhileMasked = -1;
      expect(g.exec(function* (cpu) {
        cpu.setReg(REG_RSP, ksp);
        setUpcallMask(g, 1, cpu);
        setUpcallPending(g, 1, cpu);
        yield;
        yield;
        deliveredWhileMasked = tk.seen.length;
        setUpcallMask(g, 0, cpu);
        yield;
      })).to.equal('idle');
      expect(deliveredWhileMasked).to.equal(0);
      expect(tk.seen.map((d) => d.entry)).to.deep.equal(['event']);
    });

    it('an event pending when iret returns to user mode with events on is delivered at once, from user mode', () => {
      makeUserSpace(g);
      tk.on('event', 'stop');
      setUpcallMask(g, 1);
      setUpcallPending(g, 1);
      let ran = false;
      expect(runUser(g, USER_CODE, function* () {
        ran = true;
        yield 0x80;
      })).to.equal('idle');
      const d = tk.only();
      expect([d.entry, d.frame.fromUser, d.maskOnEntry, d.frame.savedMask]).to.deep.equal(['event', true, 1, 0]);
      expect(d.rsp).to.equal(g.handle.stackTop - 56);
      expect(d.words[3]).to.deep.equal({ lo: FLAT_USER_CS, hi: 0 });
      expect(ran).to.equal(false);
    });
  });

  describe('page fault', () => {
    it('a kernel-mode #PF writes CR2 to vcpu_info.arch.cr2; error code U/S 0 (read 0, write 2)', () => {
      const ksp = kernelRsp(g);
      const bad = unmappedVa(g);
      expect(g.exec(function* (cpu) {
        cpu.setReg(REG_RSP, ksp);
        cpu.load32(bad);
      })).to.equal('idle');
      expect(g.exec(function* (cpu) {
        cpu.setReg(REG_RSP, ksp);
        cpu.store32(bad + 0x1000, 1);
      })).to.equal('idle');
      expect(tk.seen.map((d) => [d.entry, d.frame.errorCode, d.cr2, d.frame.fromUser])).to.deep.equal([
        [TRAP_page_fault, 0, bad, false],
        [TRAP_page_fault, 2, bad + 0x1000, false],
      ]);
    });

    it('a user-mode #PF has the U/S bit set (read 4, write 6, write to a read-only page 7) and CR2 = the user address', () => {
      makeUserSpace(g);
      expect(runUser(g, USER_CODE, function* (u) {
        u.load32(0x400123);
      })).to.equal('idle');
      expect(runUser(g, USER_CODE + 0x10, function* (u) {
        u.store8(0x500010, 1);
      })).to.equal('idle');
      // VA 0 is mapped without RW: a present, protection fault.
      expect(runUser(g, USER_CODE + 0x20, function* (u) {
        u.store32(0x10, 1);
      })).to.equal('idle');
      expect(tk.seen.map((d) => [d.entry, d.frame.errorCode, d.cr2, d.frame.fromUser])).to.deep.equal([
        [TRAP_page_fault, 4, 0x400123, true],
        [TRAP_page_fault, 6, 0x500010, true],
        [TRAP_page_fault, 7, 0x10, true],
      ]);
    });

    it('a kernel access is retried after the #PF handler maps the page and irets back: the load returns the value', () => {
      const w = hookWindow(g);
      const va = w.va + 4096; // the next entry of the hooked L1: not present
      tk.on(TRAP_page_fault, (cpu, d) => {
        expect(updateVaMapping(cpu, d.cr2, pte(w.b.mfn, PTE_P | PTE_A), X.UVMF_INVLPG)).to.equal(0);
        iretFromFrame(cpu, true);
      });
      const ksp = kernelRsp(g);
      let value = -1;
      expect(g.exec(function* (cpu) {
        cpu.setReg(REG_RSP, ksp);
        value = cpu.load32(va);
      })).to.equal('idle');
      expect(value).to.equal(0xbbbb);
      expect(tk.seen.map((d) => d.cr2)).to.deep.equal([va]);
    });

    it('a user access is retried after the #PF handler maps the page in the user page tables', () => {
      const us: UserSpace = makeUserSpace(g);
      const page = g.allocPage();
      g.v.store32(page.va + 4, 0xcafe);
      tk.on(TRAP_page_fault, (cpu) => {
        expect(mmuUpdate(cpu, g.buf, [[ptePtr(us.l1.mfn, 1), pte(page.mfn, PTE_P | PTE_US | PTE_A)]]).rc).to.equal(0);
        iretFromFrame(cpu, true);
      });
      let value = -1;
      let cpl = -1;
      expect(runUser(g, USER_CODE, function* (u) {
        value = u.load32(0x1004);
        cpl = u.cpl;
        yield 0x80;
      })).to.equal('idle');
      expect(value).to.equal(0xcafe);
      expect(cpl).to.equal(3);
      expect(tk.seen.map((d) => [d.entry, d.cr2])).to.deep.equal([[TRAP_page_fault, 0x1004], [0x80, 0x1004]]);
    });
  });

  describe('software interrupts', () => {
    beforeEach(() => {
      makeUserSpace(g);
    });

    it('int n with DPL 3 from user mode is delivered; after the iret RAX is the rax of the iret frame', () => {
      tk.on(VEC_DPL3, (cpu) => iretFromFrame(cpu, false, 0x77));
      let rax = -1;
      expect(runUser(g, USER_CODE, function* () {
        rax = yield VEC_DPL3;
        yield 0x80;
      })).to.equal('idle');
      expect(rax).to.equal(0x77);
      expect(tk.seen.map((d) => [d.entry, d.frame.fromUser])).to.deep.equal([[VEC_DPL3, true], [0x80, true]]);
    });

    it('int n with DPL 1 or 2 from user mode is refused: #GP with error code (n << 3) | 2', () => {
      expect(runUser(g, USER_CODE, function* () {
        yield VEC_DPL1;
      })).to.equal('idle');
      expect(runUser(g, USER_CODE + 0x10, function* () {
        yield VEC_DPL2;
      })).to.equal('idle');
      expect(tk.seen.map((d) => [d.entry, d.frame.errorCode, d.frame.fromUser])).to.deep.equal([
        [TRAP_gp_fault, (VEC_DPL1 << 3) | 2, true],
        [TRAP_gp_fault, (VEC_DPL2 << 3) | 2, true],
      ]);
    });

    it('int n with DPL 0 is refused even from kernel mode: #GP with error code (n << 3) | 2', () => {
      const ksp = kernelRsp(g);
      expect(g.exec(function* (cpu) {
        cpu.setReg(REG_RSP, ksp);
        yield VEC_DPL0;
      })).to.equal('idle');
      const d = tk.only();
      expect([d.entry, d.frame.errorCode, d.frame.fromUser]).to.deep.equal([TRAP_gp_fault, (VEC_DPL0 << 3) | 2, false]);
    });

    it('int n with DPL 1 or 2 from kernel mode is delivered and returns the iret frame\'s rax', () => {
      tk.on(VEC_DPL1, (cpu) => iretFromFrame(cpu, false, 0x11));
      tk.on(VEC_DPL2, (cpu) => iretFromFrame(cpu, false, 0x22));
      const ksp = kernelRsp(g);
      const got: number[] = [];
      expect(g.exec(function* (cpu) {
        cpu.setReg(REG_RSP, ksp);
        got.push(yield VEC_DPL1);
        got.push(yield VEC_DPL2);
      })).to.equal('idle');
      expect(got).to.deep.equal([0x11, 0x22]);
      expect(tk.seen.map((d) => d.entry)).to.deep.equal([VEC_DPL1, VEC_DPL2]);
    });

    it('a refused int n is retried when the #GP handler irets back to it: #GP again', () => {
      let gps = 0;
      tk.on(TRAP_gp_fault, (cpu) => {
        if (++gps === 1) iretFromFrame(cpu, true);
      });
      expect(runUser(g, USER_CODE, function* () {
        yield VEC_DPL1;
      })).to.equal('idle');
      expect(tk.seen.map((d) => [d.entry, d.frame.errorCode])).to.deep.equal([
        [TRAP_gp_fault, (VEC_DPL1 << 3) | 2],
        [TRAP_gp_fault, (VEC_DPL1 << 3) | 2],
      ]);
    });

    it('int 0x80 takes the fast path: delivered from user mode with no DPL check', () => {
      expect(tk.install([{ vector: 0x80, dpl: 0 }])).to.equal(0);
      expect(runUser(g, USER_CODE, function* () {
        yield 0x80;
      })).to.equal('idle');
      const d = tk.only();
      expect([d.entry, d.frame.fromUser]).to.deep.equal([0x80, true]);
    });

    it('the int 0x80 fast path masks events on entry exactly when its entry has TI_IF', () => {
      expect(tk.install([{ vector: 0x80, dpl: 3, maskEvents: true }])).to.equal(0);
      expect(runUser(g, USER_CODE, function* () {
        yield 0x80;
      })).to.equal('idle');
      expect(tk.install([{ vector: 0x80, dpl: 3 }])).to.equal(0);
      expect(runUser(g, USER_CODE + 0x10, function* () {
        yield 0x80;
      })).to.equal('idle');
      expect(tk.seen.map((d) => [d.entry, d.maskOnEntry, d.frame.savedMask])).to.deep.equal([[0x80, 1, 0], [0x80, 0, 0]]);
    });

    it('int 14 through a DPL 3 entry is a software interrupt: the frame has no error code', () => {
      expect(tk.install([{ vector: TRAP_page_fault, dpl: 3 }])).to.equal(0);
      expect(runUser(g, USER_CODE, function* () {
        yield TRAP_page_fault;
      })).to.equal('idle');
      const d = tk.only();
      expect(d.entry).to.equal(TRAP_page_fault);
      expect(d.rsp).to.equal(g.handle.stackTop - 56);
      expect(d.words[3]).to.deep.equal({ lo: FLAT_USER_CS, hi: 0 });
    });

    it('XSA-259: int 0x80 with no handler gives the guest #GP with error code 0x402', () => {
      expect(g.v.hypercall(X.HYPERVISOR_set_trap_table, 0)).to.equal(0);
      expect(tk.install([{ vector: TRAP_gp_fault, dpl: 0, hasEc: true }])).to.equal(0);
      expect(runUser(g, USER_CODE, function* () {
        yield 0x80;
      })).to.equal('idle');
      const d = tk.only();
      expect([d.entry, d.frame.errorCode, d.frame.fromUser]).to.deep.equal([TRAP_gp_fault, 0x402, true]);
      expect(t.m.domain(g.domid)?.state).to.equal('running');
    });

    it('int3 is delivered from user mode whatever the DPL of its entry (Xen ignores it for vectors 3 and 4)', () => {
      expect(runUser(g, USER_CODE, function* () {
        yield TRAP_int3;
      })).to.equal('idle');
      const d = tk.only();
      expect([d.entry, d.frame.fromUser]).to.deep.equal([TRAP_int3, true]);
    });
  });

  describe('hypercall from user mode', () => {
    beforeEach(() => {
      makeUserSpace(g);
    });

    it('a hypercall from user mode with no syscall callback delivers #UD (no error code) to the kernel', () => {
      const calls = t.m.hv.table.calls[X.HYPERVISOR_xen_version];
      expect(runUser(g, USER_CODE, function* (u) {
        u.hypercall(X.HYPERVISOR_xen_version, 0, 0);
      })).to.equal('idle');
      const d = tk.only();
      expect([d.entry, d.frame.fromUser, d.cpl]).to.deep.equal([TRAP_invalid_op, true, 1]);
      expect(d.rsp).to.equal(g.handle.stackTop - 56);
      expect(t.m.hv.table.calls[X.HYPERVISOR_xen_version]).to.equal(calls);
    });

    it('a hypercall from user mode with a syscall callback enters it; the iret frame\'s rax is the result', () => {
      expect(tk.registerSyscall()).to.equal(0);
      tk.on('syscall', (cpu) => iretFromFrame(cpu, false, 0x55));
      const calls = t.m.hv.table.calls[X.HYPERVISOR_xen_version];
      let rc = -1;
      expect(runUser(g, USER_CODE, function* (u) {
        rc = u.hypercall(X.HYPERVISOR_xen_version, 0, 0);
        yield 0x80;
      })).to.equal('idle');
      expect(rc).to.equal(0x55);
      expect(tk.seen.map((d) => [d.entry, d.frame.fromUser])).to.deep.equal([['syscall', true], [0x80, true]]);
      expect(t.m.hv.table.calls[X.HYPERVISOR_xen_version]).to.equal(calls);
    });
  });
});
