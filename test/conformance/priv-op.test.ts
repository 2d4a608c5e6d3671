// Conformance: privileged instructions executed by a 64-bit PV guest (pv/emul-priv-op.c
// and the x86 rules for popf/pushf). The guest kernel is deprivileged, so each one
// faults into Xen, which emulates a few and injects #GP(0) for the rest. The #GP
// handler here records the frame and unwinds into the faulting code (an exception-table
// fixup), so a refused instruction surfaces in the test as a GuestTrap. Each test names
// the rule (notes xen-rules-3-traps §7) and its outcome.

import { expect } from 'chai';
import { type GuestKernel, type TestMachine } from '../support/fixture.ts';
import {
  TrapKernel, trapSetup, USER_CODE, kernelRsp, makeUserSpace, runUser, setUpcallMask, upcallMask,
} from '../support/trap-kernel.ts';
import { pfnToVa } from '../../guests/lib/xen-calls.ts';
import {
  PRIV_CLI, PRIV_HLT, PRIV_IN, PRIV_INVLPG, PRIV_LGDT, PRIV_LIDT, PRIV_LTR, PRIV_NAMES, PRIV_OUT, PRIV_RDMSR,
  PRIV_READ_CR3, PRIV_STI, PRIV_WBINVD, PRIV_WRITE_CR3, PRIV_WRMSR,
} from '../../hypervisor/arch/cpu.ts';
import {
  GuestTrap, REG_RSP, TRAP_gp_fault, X86_EFLAGS_IF, X86_EFLAGS_IOPL, type GuestVcpu,
} from '../../hypervisor/public/vcpu.ts';
import * as X from '../../hypervisor/public/xen.ts';

const MSR_EFER = 0xc0000080;
const MSR_FS_BASE = 0xc0000100;
const MSR_GS_BASE = 0xc0000101;
const MSR_SHADOW_GS_BASE = 0xc0000102;
const EFER_SCE = 1 << 0;
const EFER_LME = 1 << 8;
const EFER_LMA = 1 << 10;
const EFER_SVME = 1 << 12;
const MBS = 1 << 1;
const CF = 1 << 0;

describe('privileged instructions (PV)', () => {
  let t: TestMachine;
  let g: GuestKernel;
  let tk: TrapKernel;
  beforeEach(() => {
    ({ t, g, tk } = trapSetup());
    tk.on(TRAP_gp_fault, 'unwind');
    g.v.setReg(REG_RSP, kernelRsp(g));
  });
  afterEach(() => t.check());

  const priv = (): { emulated: Float64Array; refused: Float64Array } => t.m.hv.privOps;
  const vcpu = () => t.m.hv.domainById(g.domid)!.vcpus[0];

  /** Runs `op` in kernel mode (CPL 1); the #GP it raised (error code as the handler saw it), or null. */
  function gp(op: (v: GuestVcpu) => unknown): number | null {
    const before = tk.seen.length;
    try {
      op(g.v);
    } catch (e) {
      if (!(e instanceof GuestTrap)) throw e;
      expect(e.vector).to.equal(TRAP_gp_fault);
      const d = tk.seen[tk.seen.length - 1];
      expect(tk.seen.length).to.equal(before + 1);
      expect(d.entry).to.equal(TRAP_gp_fault);
      expect(d.frame.fromUser).to.equal(false);
      return d.frame.errorCode;
    }
    expect(tk.seen.length, 'no delivery without a fault').to.equal(before);
    return null;
  }

  const refusedCases: [string, number, (v: GuestVcpu) => void][] = [
    ['hlt', PRIV_HLT, (v) => v.hlt()],
    ['invlpg', PRIV_INVLPG, (v) => v.invlpg(g.buf)],
    ['lgdt', PRIV_LGDT, (v) => v.lgdt(g.buf)],
    ['lidt', PRIV_LIDT, (v) => v.lidt(g.buf)],
    ['ltr', PRIV_LTR, (v) => v.ltr(g.buf)],
  ];
  for (const [name, op, run] of refusedCases) {
    it(`${name} at CPL 1 injects #GP(0): the handler sees error code 0`, () => {
      const refused = priv().refused[op];
      expect(gp(run)).to.equal(0);
      expect(priv().refused[op]).to.equal(refused + 1);
      expect(priv().emulated[op]).to.equal(0);
      expect(PRIV_NAMES[op]).to.equal(name);
    });
  }

  it('hlt is refused, not executed: the vCPU is not blocked', () => {
    expect(gp((v) => v.hlt())).to.equal(0);
    expect(vcpu().blocked).to.equal(false);
  });

  it('cli and sti with virtual IOPL 0 inject #GP(0) and leave evtchn_upcall_mask alone', () => {
    setUpcallMask(g, 0);
    expect(gp((v) => v.cli())).to.equal(0);
    expect(upcallMask(g)).to.equal(0);
    setUpcallMask(g, 1);
    expect(gp((v) => v.sti())).to.equal(0);
    expect(upcallMask(g)).to.equal(1);
    expect([priv().refused[PRIV_CLI], priv().refused[PRIV_STI]]).to.deep.equal([1, 1]);
  });

  it('in and out with virtual IOPL 0 inject #GP(0)', () => {
    expect(gp((v) => v.in(0x60, 1))).to.equal(0);
    expect(gp((v) => v.out(0x80, 1, 0))).to.equal(0);
    expect([priv().refused[PRIV_IN], priv().refused[PRIV_OUT]]).to.deep.equal([1, 1]);
  });

  describe('with virtual IOPL 1 (no guest interface sets it yet: set on the vCPU)', () => {
    beforeEach(() => {
      vcpu().viopl = 1;
    });

    it('cli and sti are skipped as no-ops: no #GP, evtchn_upcall_mask unchanged', () => {
      setUpcallMask(g, 0);
      expect(gp((v) => v.cli())).to.equal(null);
      expect(upcallMask(g)).to.equal(0);
      setUpcallMask(g, 1);
      expect(gp((v) => v.sti())).to.equal(null);
      expect(upcallMask(g)).to.equal(1);
      expect([priv().emulated[PRIV_CLI], priv().emulated[PRIV_STI]]).to.deep.equal([1, 1]);
    });

    it('in from a port with no device reads all ones; out is dropped; neither faults', () => {
      let got: number[] = [];
      expect(gp((v) => {
        got = [v.in(0x1234, 1), v.in(0x1234, 2), v.in(0x1234, 4)];
      })).to.equal(null);
      expect(got).to.deep.equal([0xff, 0xffff, 0xffffffff]);
      expect(gp((v) => v.out(0x1234, 4, 0x5a5a5a5a))).to.equal(null);
    });
  });

  it('rdmsr of an unknown MSR injects #GP(0); so does wrmsr', () => {
    expect(gp((v) => v.rdmsr(0x1234))).to.equal(0);
    expect(gp((v) => v.wrmsr(0x1234, 1))).to.equal(0);
    expect([priv().refused[PRIV_RDMSR], priv().refused[PRIV_WRMSR]]).to.deep.equal([1, 1]);
  });

  it('rdmsr of MSR_EFER is emulated: long mode active, SVME hidden, no #GP', () => {
    let efer = -1;
    expect(gp((v) => {
      efer = v.rdmsr(MSR_EFER);
    })).to.equal(null);
    expect(efer & (EFER_SCE | EFER_LME | EFER_LMA)).to.equal(EFER_SCE | EFER_LME | EFER_LMA);
    expect(efer & EFER_SVME).to.equal(0);
    expect(priv().emulated[PRIV_RDMSR]).to.equal(1);
  });

  it('rdmsr of MSR_IA32_TSC is emulated and reads the TSC rdtsc reads', () => {
    let before = -1;
    let tsc = -1;
    let after = -1;
    vcpu().timeBase += 5_000_000; // 5 ms spent descheduled: the TSC moved on, its own cycles did not
    expect(gp((v) => {
      v.compute(1_000_000);
      before = v.rdtsc();
      tsc = v.rdmsr(0x10);
      after = v.rdtsc();
    })).to.equal(null);
    expect(tsc).to.be.within(before, after);
    expect(before).to.be.greaterThan(12_000_000);
  });

  it('mov from CR2 is emulated: it reads the address of the last #PF Xen injected', () => {
    tk.on(14, 'unwind');
    expect(() => g.v.load32(0x123000)).to.throw(GuestTrap);
    let cr2 = -1;
    expect(gp((v) => {
      cr2 = v.readCr2();
    })).to.equal(null);
    expect(cr2).to.equal(0x123000);
  });

  it('wrmsr of FS_BASE, GS_BASE and SHADOW_GS_BASE is emulated and reads back', () => {
    const base = pfnToVa(0) + 0x3000;
    for (const msr of [MSR_FS_BASE, MSR_GS_BASE, MSR_SHADOW_GS_BASE]) {
      let back = 0;
      expect(gp((v) => {
        v.wrmsr(msr, base);
        back = v.rdmsr(msr);
      }), `msr 0x${msr.toString(16)}`).to.equal(null);
      expect(back).to.equal(base);
    }
  });

  it('wrmsr of a non-canonical FS_BASE, GS_BASE or SHADOW_GS_BASE injects #GP(0) and keeps the old base', () => {
    for (const msr of [MSR_FS_BASE, MSR_GS_BASE, MSR_SHADOW_GS_BASE]) {
      expect(gp((v) => v.wrmsr(msr, 0x7000))).to.equal(null);
      expect(gp((v) => v.wrmsr(msr, 2 ** 47))).to.equal(0);
      let back = 0;
      gp((v) => {
        back = v.rdmsr(msr);
      });
      expect(back).to.equal(0x7000);
    }
  });

  it('mov from CR3 is emulated: it returns guest_table << 12', () => {
    let cr3 = -1;
    expect(gp((v) => {
      cr3 = v.readCr3();
    })).to.equal(null);
    expect(cr3).to.equal(g.l4 * 4096);
    expect(priv().emulated[PRIV_READ_CR3]).to.equal(1);
  });

  it('mov to CR3 of the current L4 is emulated (a reload); of a frame that is not an L4 it injects #GP(0)', () => {
    expect(gp((v) => v.writeCr3(g.l4 * 4096))).to.equal(null);
    expect(priv().emulated[PRIV_WRITE_CR3]).to.equal(1);
    const data = g.allocPage();
    expect(gp((v) => v.writeCr3(data.mfn * 4096))).to.equal(0);
    // Another domain's L4 is not this guest's to load either.
    expect(gp((v) => v.writeCr3(t.other.l4 * 4096))).to.equal(0);
    expect(priv().refused[PRIV_WRITE_CR3]).to.equal(2);
    expect(vcpu().guestTable).to.equal(g.l4);
    let cr3 = -1;
    gp((v) => {
      cr3 = v.readCr3();
    });
    expect(cr3).to.equal(g.l4 * 4096);
  });

  it('wbinvd is ignored: no #GP, counted as emulated', () => {
    expect(gp((v) => v.wbinvd())).to.equal(null);
    expect(priv().emulated[PRIV_WBINVD]).to.equal(1);
  });

  it('popf at CPL 1 does not change IF (nor IOPL) and does not trap; other flags change', () => {
    const faults = vcpu().faults;
    setUpcallMask(g, 0);
    let after = 0;
    expect(gp((v) => {
      v.popf(MBS | CF | X86_EFLAGS_IOPL);
      after = v.pushf();
    })).to.equal(null);
    expect(after & X86_EFLAGS_IF).to.equal(X86_EFLAGS_IF);
    expect(after & X86_EFLAGS_IOPL).to.equal(0);
    expect(after & CF).to.equal(CF);
    expect(vcpu().faults).to.equal(faults);
    // The virtual IF is untouched: popf cannot disable events for a PV kernel.
    expect(upcallMask(g)).to.equal(0);
  });

  it('pushf does not trap; it shows the real RFLAGS (IF set)', () => {
    const faults = vcpu().faults;
    let flags = 0;
    expect(gp((v) => {
      flags = v.pushf();
    })).to.equal(null);
    expect(flags & (MBS | X86_EFLAGS_IF)).to.equal(MBS | X86_EFLAGS_IF);
    expect(vcpu().faults).to.equal(faults);
  });

  it('a privileged instruction in user mode injects #GP(0) from user mode', () => {
    makeUserSpace(g);
    tk.on(TRAP_gp_fault, 'stop');
    expect(runUser(g, USER_CODE, function* (u) {
      u.hlt();
    })).to.equal('idle');
    const d = tk.only();
    expect([d.entry, d.frame.errorCode, d.frame.fromUser]).to.deep.equal([TRAP_gp_fault, 0, true]);
  });

  it('a #GP handler that keeps returning to the same privileged instruction gets the domain crashed (bounded retries)', () => {
    tk.on(TRAP_gp_fault, 'iret');
    const ksp = kernelRsp(g);
    let passed = false;
    expect(g.exec(function* (cpu) {
      cpu.setReg(REG_RSP, ksp);
      cpu.hlt();
      passed = true;
    })).to.equal('halted');
    expect(t.m.domain(g.domid)?.state).to.equal('crashed');
    expect(passed).to.equal(false);
    expect(tk.seen.length).to.be.greaterThan(1);
    expect(tk.seen.every((d) => d.entry === TRAP_gp_fault && d.frame.errorCode === 0)).to.equal(true);
  });

  it('a privileged instruction with no #GP handler crashes the domain', () => {
    expect(g.v.hypercall(X.HYPERVISOR_set_trap_table, 0)).to.equal(0);
    const ksp = kernelRsp(g);
    expect(g.exec(function* (cpu) {
      cpu.setReg(REG_RSP, ksp);
      cpu.lidt(g.buf);
    })).to.equal('halted');
    expect(t.m.domain(g.domid)?.state).to.equal('crashed');
    expect(tk.seen).to.have.length(0);
  });
});
