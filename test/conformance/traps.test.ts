// Conformance: registering a PV kernel's entry points — HYPERVISOR_set_trap_table,
// stack_switch, callback_op and set_callbacks — driven through a guest vCPU with the
// argument structs in the guest's own memory. Each test names the rule (notes
// xen-rules-3-traps §1-3) and Xen's result.

import { expect } from 'chai';
import { bootTestMachine, type GuestKernel, type TestMachine } from '../support/fixture.ts';
import {
  TrapKernel, trapSetup, USER_CODE, VEC_DPL1, VEC_DPL3, halves, kernelRsp, makeUserSpace, runUser, writeTrapInfo,
  type RawTrapInfo,
} from '../support/trap-kernel.ts';
import { pfnToVa } from '../../guests/lib/xen-calls.ts';
import { iretFromFrame } from '../../guests/lib/xen-traps.ts';
import {
  CALLBACKF_mask_events, CALLBACKOP_register, CALLBACKOP_unregister, CALLBACKTYPE_event, CALLBACKTYPE_failsafe,
  CALLBACKTYPE_nmi, CALLBACKTYPE_syscall, CALLBACKTYPE_syscall32, CALLBACKTYPE_sysenter,
  CALLBACKTYPE_sysenter_deprecated,
} from '../../hypervisor/public/callback.ts';
import { EFAULT, EINVAL, ENOSYS } from '../../hypervisor/public/errno.ts';
import { FLAT_KERNEL_CS, FLAT_KERNEL_SS, HYPERVISOR_VIRT_END, TI_IF } from '../../hypervisor/public/arch-x86.ts';
import { REG_RSP, TRAP_page_fault } from '../../hypervisor/public/vcpu.ts';
import * as X from '../../hypervisor/public/xen.ts';
import { DEFAULT_COSTS } from '../../hypervisor/arch/costs.ts';
import type { U64 } from '../../guests/lib/xen-calls.ts';

/** 0x0000_8000_0000_0000: the first non-canonical address above the lower half. */
const NON_CANONICAL: U64 = { lo: 0, hi: 0x8000 };
/** 0xffff_7fff_ffff_f000: non-canonical, just below the upper half. */
const NON_CANONICAL_HIGH: U64 = { lo: 0xfffff000, hi: 0xffff7fff };

/** The vCPU as Xen keeps it (to read back what a registration installed). */
function vcpuOf(t: TestMachine, k: GuestKernel) {
  return t.m.hv.domainById(k.domid)!.vcpus[0];
}

/** trap_ctxt[vector] as installed: address (signed), flags, cs. */
function trapEntry(t: TestMachine, k: GuestKernel, vector: number): { address: number; flags: number; cs: number } {
  const v = vcpuOf(t, k);
  return { address: (v.trapHi[vector] | 0) * 4294967296 + v.trapLo[vector], flags: v.trapFlags[vector],
    cs: v.trapCs[vector] };
}

/** Past the guest's last page: not mapped in its page tables. */
function unmappedVa(k: GuestKernel): number {
  return pfnToVa(k.si.nrPages) + 0x800;
}

function setTrapTableRaw(k: GuestKernel, entries: readonly RawTrapInfo[], at = k.buf): number {
  writeTrapInfo(k.v, at, entries);
  return k.v.hypercall(X.HYPERVISOR_set_trap_table, at);
}

/** Three handler addresses in the guest kernel. */
const A = pfnToVa(0) + 0xe00;
const B = pfnToVa(0) + 0xe10;
const C = pfnToVa(0) + 0xe20;

const END: RawTrapInfo = { vector: 0, flags: 0, cs: 0, address: 0 };

describe('set_trap_table', () => {
  let t: TestMachine;
  let g: GuestKernel;
  beforeEach(() => {
    t = bootTestMachine();
    g = t.guest;
  });
  afterEach(() => t.check());

  it('set_trap_table(NULL) clears all 256 entries and returns 0; a fault then crashes the domain', () => {
    const tk = new TrapKernel(g);
    expect(tk.installDefault()).to.equal(0);
    expect(trapEntry(t, g, TRAP_page_fault).address).to.not.equal(0);
    expect(g.v.hypercall(X.HYPERVISOR_set_trap_table, 0)).to.equal(0);
    const v = vcpuOf(t, g);
    for (let i = 0; i < 256; i++) {
      expect([v.trapLo[i], v.trapHi[i], v.trapFlags[i], v.trapCs[i]], `vector ${i}`).to.deep.equal([0, 0, 0, 0]);
    }
    const bad = unmappedVa(g);
    expect(g.exec(function* (cpu) {
      cpu.load32(bad);
    })).to.equal('halted');
    expect(t.m.domain(g.domid)?.state).to.equal('crashed');
    expect(tk.seen).to.have.length(0);
  });

  it('the list ends at the first entry with address 0; that entry is not installed, nor any after it', () => {
    expect(setTrapTableRaw(g, [{ vector: 0x41, flags: 1, cs: 0xe033, address: A }, END])).to.equal(0);
    expect(setTrapTableRaw(g, [
      { vector: 0x42, flags: 3, cs: 0xe033, address: B },
      { vector: 0x41, flags: 3, cs: 0xe033, address: 0 },
      { vector: 0x43, flags: 3, cs: 0xe033, address: C },
    ])).to.equal(0);
    expect(trapEntry(t, g, 0x42)).to.deep.equal({ address: B, flags: 3, cs: 0xe033 });
    // The terminator did not clear 0x41: an entry cannot be removed this way.
    expect(trapEntry(t, g, 0x41)).to.deep.equal({ address: A, flags: 1, cs: 0xe033 });
    expect(trapEntry(t, g, 0x43)).to.deep.equal({ address: 0, flags: 0, cs: 0 });
  });

  it('set_trap_table with a non-canonical handler returns -EINVAL and keeps the entries before it', () => {
    expect(setTrapTableRaw(g, [
      { vector: 0x41, flags: 1, cs: 0xe033, address: A },
      { vector: 0x42, flags: 1, cs: 0xe033, address: NON_CANONICAL },
      { vector: 0x43, flags: 1, cs: 0xe033, address: C },
      END,
    ])).to.equal(-EINVAL);
    expect(trapEntry(t, g, 0x41)).to.deep.equal({ address: A, flags: 1, cs: 0xe033 });
    expect(trapEntry(t, g, 0x42).address).to.equal(0);
    expect(trapEntry(t, g, 0x43).address).to.equal(0);
    expect(setTrapTableRaw(g, [{ vector: 0x44, flags: 1, cs: 0xe033, address: NON_CANONICAL_HIGH }, END]))
      .to.equal(-EINVAL);
    expect(trapEntry(t, g, 0x44).address).to.equal(0);
  });

  it('an earlier entry installed before the -EINVAL is really used: int 0x41 reaches it', () => {
    const tk = new TrapKernel(g);
    expect(setTrapTableRaw(g, [
      { vector: VEC_DPL1, flags: 1, cs: 0xe033, address: tk.address(VEC_DPL1, false) },
      { vector: 0x42, flags: 1, cs: 0xe033, address: NON_CANONICAL },
      END,
    ])).to.equal(-EINVAL);
    const ksp = kernelRsp(g);
    expect(g.exec(function* (cpu) {
      cpu.setReg(REG_RSP, ksp);
      yield VEC_DPL1;
    })).to.equal('idle');
    expect(tk.only().entry).to.equal(VEC_DPL1);
  });

  it('set_trap_table with an unreadable list returns -EFAULT and installs nothing', () => {
    expect(g.v.hypercall(X.HYPERVISOR_set_trap_table, unmappedVa(g))).to.equal(-EFAULT);
    // A list in Xen's range is not readable by the guest either.
    expect(g.v.hypercall(X.HYPERVISOR_set_trap_table, { lo: 0x1000, hi: 0xffff8040 })).to.equal(-EFAULT);
  });

  it('set_trap_table whose list runs into unmapped memory returns -EFAULT after installing the readable entries', () => {
    // The first entry fills the last 16 bytes of the guest's memory; the second is unmapped.
    const at = pfnToVa(g.si.nrPages) - 16;
    expect(setTrapTableRaw(g, [{ vector: 0x45, flags: 3, cs: 0xe033, address: A }], at)).to.equal(-EFAULT);
    expect(trapEntry(t, g, 0x45)).to.deep.equal({ address: A, flags: 3, cs: 0xe033 });
  });

  it('set_trap_table raises a handler cs with RPL below 3 to RPL 3 and keeps the flags as given', () => {
    expect(setTrapTableRaw(g, [
      { vector: 0x41, flags: 0, cs: 0xe030, address: A },
      { vector: 0x42, flags: 1 | TI_IF, cs: 0x0011, address: B },
      { vector: 0x43, flags: 2, cs: 0xe02a, address: C },
      { vector: 0x44, flags: 3 | TI_IF, cs: 0xe033, address: A },
      END,
    ])).to.equal(0);
    expect(trapEntry(t, g, 0x41)).to.deep.equal({ address: A, flags: 0, cs: 0xe033 });
    expect(trapEntry(t, g, 0x42)).to.deep.equal({ address: B, flags: 1 | TI_IF, cs: 0x0013 });
    expect(trapEntry(t, g, 0x43)).to.deep.equal({ address: C, flags: 2, cs: 0xe02b });
    expect(trapEntry(t, g, 0x44)).to.deep.equal({ address: A, flags: 3 | TI_IF, cs: 0xe033 });
  });

  it('a later set_trap_table overwrites only the vectors it names', () => {
    expect(setTrapTableRaw(g, [
      { vector: 0x41, flags: 1, cs: 0xe033, address: A },
      { vector: 0x42, flags: 1, cs: 0xe033, address: B },
      END,
    ])).to.equal(0);
    expect(setTrapTableRaw(g, [{ vector: 0x42, flags: 3, cs: 0xe033, address: C }, END])).to.equal(0);
    expect(trapEntry(t, g, 0x41).address).to.equal(A);
    expect(trapEntry(t, g, 0x42)).to.deep.equal({ address: C, flags: 3, cs: 0xe033 });
  });
});

describe('stack_switch', () => {
  let t: TestMachine;
  let g: GuestKernel;
  let tk: TrapKernel;
  beforeEach(() => {
    ({ t, g, tk } = trapSetup());
    makeUserSpace(g);
  });
  afterEach(() => t.check());

  it('stack_switch returns 0 whatever ss and sp are: non-canonical, in Xen\'s range, or 0', () => {
    expect(g.v.hypercall(X.HYPERVISOR_stack_switch, FLAT_KERNEL_SS, NON_CANONICAL)).to.equal(0);
    expect(g.v.hypercall(X.HYPERVISOR_stack_switch, 0, { lo: 0x100000, hi: 0xffff8000 })).to.equal(0);
    expect(g.v.hypercall(X.HYPERVISOR_stack_switch, 0x10, 0)).to.equal(0);
    // The ss RPL is raised to 3 like every guest selector.
    expect(vcpuOf(t, g).kernelSs).to.equal(0x13);
  });

  it('an entry from user mode builds its frame at kernel_sp aligned down to 16', () => {
    const sp = g.handle.stackTop - 0x108;
    expect(g.v.hypercall(X.HYPERVISOR_stack_switch, FLAT_KERNEL_SS, sp)).to.equal(0);
    expect(runUser(g, USER_CODE, function* () {
      yield VEC_DPL3;
    })).to.equal('idle');
    const d = tk.only();
    // No error code: seven quadwords below the aligned base.
    expect(d.rsp).to.equal(g.handle.stackTop - 0x110 - 56);
    expect(d.frame.rsp).to.equal(0x5008);
    expect(d.cpl).to.equal(1);
  });

  it('an entry from user mode with an error code builds its frame 64 bytes below the aligned kernel_sp', () => {
    const sp = g.handle.stackTop - 0x204;
    expect(g.v.hypercall(X.HYPERVISOR_stack_switch, FLAT_KERNEL_SS, sp)).to.equal(0);
    expect(runUser(g, USER_CODE, function* (u) {
      u.load32(0x400000); // not mapped in the user page tables
    })).to.equal('idle');
    const d = tk.only();
    expect(d.entry).to.equal(TRAP_page_fault);
    expect(d.rsp).to.equal(g.handle.stackTop - 0x210 - 64);
  });

  it('int 0x80 from user mode is Xen\'s direct trap: it costs the gate transition, no bounce; another vector pays the bounce', () => {
    const { syscall, bounce } = DEFAULT_COSTS;
    const entryCost = (vector: number): number => {
      let before = 0;
      let after = 0;
      const v = vcpuOf(t, g);
      tk.on(vector, 'stop');
      tk.onEntry = () => { after = v.cycles; };
      runUser(g, USER_CODE, function* () {
        before = v.cycles;
        yield vector;
      });
      tk.onEntry = null;
      return after - before;
    };
    const int80 = entryCost(0x80);
    const other = entryCost(VEC_DPL3);
    // Both switch to the kernel's page tables (a TLB flush here: the user L4 is separate).
    expect(int80).to.be.at.least(syscall);
    expect(other - int80).to.equal(bounce);
  });

  /** stack_switch to `sp`, then a trap from user mode: the domain's state after it. */
  function enterFromUserWith(sp: U64 | number): string | undefined {
    expect(g.v.hypercall(X.HYPERVISOR_stack_switch, FLAT_KERNEL_SS, sp)).to.equal(0);
    runUser(g, USER_CODE, function* () {
      yield VEC_DPL3;
    });
    return t.m.domain(g.domid)?.state;
  }

  it('a kernel_sp in Xen\'s range crashes the domain at the next entry from user mode', () => {
    expect(enterFromUserWith({ lo: 0x100000, hi: 0xffff8000 })).to.equal('crashed');
    expect(tk.seen).to.have.length(0);
  });

  it('a kernel_sp less than 64 bytes above HYPERVISOR_VIRT_END crashes the domain (the frame reaches Xen)', () => {
    const sp = halves(HYPERVISOR_VIRT_END);
    expect(enterFromUserWith({ lo: sp.lo + 0x30, hi: sp.hi })).to.equal('crashed');
  });

  it('a kernel_sp exactly 64 bytes above HYPERVISOR_VIRT_END is allowed (the frame stays out of Xen\'s range)', () => {
    const sp = halves(HYPERVISOR_VIRT_END);
    expect(g.v.hypercall(X.HYPERVISOR_stack_switch, FLAT_KERNEL_SS, { lo: sp.lo + 0x40, hi: sp.hi })).to.equal(0);
    expect(runUser(g, USER_CODE, function* () {
      yield VEC_DPL3;
    })).to.equal('idle');
    expect(t.m.domain(g.domid)?.state).to.equal('running');
    expect(tk.only().rsp).to.equal(pfnToVa(0) + 0x40 - 56);
  });

  it('an unmapped kernel stack crashes the domain at the next entry from user mode', () => {
    expect(enterFromUserWith(unmappedVa(g))).to.equal('crashed');
    expect(tk.seen).to.have.length(0);
  });

  it('a trap in kernel mode with an unmapped RSP crashes the domain (no double fault)', () => {
    const bad = unmappedVa(g);
    g.exec(function* (cpu) {
      cpu.setReg(REG_RSP, bad);
      yield VEC_DPL1;
    });
    expect(t.m.domain(g.domid)?.state).to.equal('crashed');
    expect(tk.seen).to.have.length(0);
  });
});

describe('callback_op and set_callbacks', () => {
  let t: TestMachine;
  let g: GuestKernel;
  beforeEach(() => {
    t = bootTestMachine();
    g = t.guest;
  });
  afterEach(() => t.check());

  function register(type: number, address: number | U64, flags = 0): number {
    g.v.store32(g.buf, (type & 0xffff) | ((flags & 0xffff) << 16));
    g.v.store32(g.buf + 4, 0);
    const a = typeof address === 'number' ? halves(address) : address;
    g.v.store64(g.buf + 8, a.lo, a.hi);
    return g.v.hypercall(X.HYPERVISOR_callback_op, CALLBACKOP_register, g.buf);
  }

  function unregister(type: number): number {
    g.v.store32(g.buf, type & 0xffff);
    return g.v.hypercall(X.HYPERVISOR_callback_op, CALLBACKOP_unregister, g.buf);
  }

  function callbacks(): { event: number; failsafe: number; syscall: number } {
    const v = vcpuOf(t, g);
    const s = (lo: number, hi: number): number => (hi | 0) * 4294967296 + lo;
    return { event: s(v.eventLo, v.eventHi), failsafe: s(v.failsafeLo, v.failsafeHi),
      syscall: s(v.syscallLo, v.syscallHi) };
  }

  it('callback_op register returns 0 and installs event, failsafe and syscall callbacks', () => {
    expect(register(CALLBACKTYPE_event, A)).to.equal(0);
    expect(register(CALLBACKTYPE_failsafe, B)).to.equal(0);
    expect(register(CALLBACKTYPE_syscall, C)).to.equal(0);
    expect(callbacks()).to.deep.equal({ event: A, failsafe: B, syscall: C });
  });

  it('callback_op register with a non-canonical address returns -EINVAL and changes nothing', () => {
    expect(register(CALLBACKTYPE_event, A)).to.equal(0);
    expect(register(CALLBACKTYPE_event, NON_CANONICAL)).to.equal(-EINVAL);
    expect(register(CALLBACKTYPE_syscall, NON_CANONICAL_HIGH)).to.equal(-EINVAL);
    expect(callbacks()).to.deep.equal({ event: A, failsafe: 0, syscall: 0 });
  });

  it('callback_op register of an unknown type with a non-canonical address returns -EINVAL, not -ENOSYS', () => {
    expect(register(99, NON_CANONICAL)).to.equal(-EINVAL);
    expect(register(CALLBACKTYPE_sysenter_deprecated, NON_CANONICAL)).to.equal(-EINVAL);
  });

  it('callback_op register of an unknown type returns -ENOSYS (sysenter_deprecated 3 included)', () => {
    expect(register(99, A)).to.equal(-ENOSYS);
    expect(register(CALLBACKTYPE_sysenter_deprecated, A)).to.equal(-ENOSYS);
    expect(register(6, A)).to.equal(-ENOSYS);
    expect(callbacks()).to.deep.equal({ event: 0, failsafe: 0, syscall: 0 });
  });

  it('callback_op register accepts address 0 (no callback) and the compat types syscall32 and sysenter', () => {
    expect(register(CALLBACKTYPE_syscall, C)).to.equal(0);
    expect(register(CALLBACKTYPE_syscall, 0)).to.equal(0);
    expect(callbacks().syscall).to.equal(0);
    expect(register(CALLBACKTYPE_syscall32, A)).to.equal(0);
    expect(register(CALLBACKTYPE_sysenter, A, CALLBACKF_mask_events)).to.equal(0);
  });

  it('callback_op register of the NMI callback installs trap_ctxt[2]: events masked, DPL 0, FLAT_KERNEL_CS', () => {
    expect(register(CALLBACKTYPE_nmi, A)).to.equal(0);
    expect(trapEntry(t, g, 2)).to.deep.equal({ address: A, flags: TI_IF, cs: FLAT_KERNEL_CS });
  });

  it('callback_op unregister of the NMI callback returns 0 and clears trap_ctxt[2]', () => {
    expect(register(CALLBACKTYPE_nmi, A)).to.equal(0);
    expect(unregister(CALLBACKTYPE_nmi)).to.equal(0);
    expect(trapEntry(t, g, 2).address).to.equal(0);
  });

  it('callback_op unregister of event, failsafe, syscall, syscall32 or sysenter returns -EINVAL and keeps them', () => {
    expect(register(CALLBACKTYPE_event, A)).to.equal(0);
    expect(register(CALLBACKTYPE_failsafe, B)).to.equal(0);
    expect(register(CALLBACKTYPE_syscall, C)).to.equal(0);
    for (const type of [CALLBACKTYPE_event, CALLBACKTYPE_failsafe, CALLBACKTYPE_syscall, CALLBACKTYPE_syscall32,
      CALLBACKTYPE_sysenter]) {
      expect(unregister(type), `type ${type}`).to.equal(-EINVAL);
    }
    expect(callbacks()).to.deep.equal({ event: A, failsafe: B, syscall: C });
  });

  it('callback_op unregister of an unknown type returns -ENOSYS', () => {
    expect(unregister(99)).to.equal(-ENOSYS);
    expect(unregister(CALLBACKTYPE_sysenter_deprecated)).to.equal(-ENOSYS);
  });

  it('callback_op with an unknown command returns -ENOSYS', () => {
    g.v.store32(g.buf, CALLBACKTYPE_event);
    g.v.store64(g.buf + 8, A >>> 0, halves(A).hi);
    expect(g.v.hypercall(X.HYPERVISOR_callback_op, 2, g.buf)).to.equal(-ENOSYS);
    expect(g.v.hypercall(X.HYPERVISOR_callback_op, 100, g.buf)).to.equal(-ENOSYS);
    expect(callbacks().event).to.equal(0);
  });

  it('callback_op with an unreadable argument returns -EFAULT (register and unregister)', () => {
    expect(g.v.hypercall(X.HYPERVISOR_callback_op, CALLBACKOP_register, unmappedVa(g))).to.equal(-EFAULT);
    expect(g.v.hypercall(X.HYPERVISOR_callback_op, CALLBACKOP_unregister, unmappedVa(g))).to.equal(-EFAULT);
    expect(g.v.hypercall(X.HYPERVISOR_callback_op, CALLBACKOP_register, 0)).to.equal(-EFAULT);
  });

  it('set_callbacks returns 0 and installs event, failsafe and syscall', () => {
    expect(g.v.hypercall(X.HYPERVISOR_set_callbacks, A, B, C)).to.equal(0);
    expect(callbacks()).to.deep.equal({ event: A, failsafe: B, syscall: C });
  });

  it('set_callbacks with a non-canonical value returns 0 and skips only that one', () => {
    expect(register(CALLBACKTYPE_event, A)).to.equal(0);
    expect(g.v.hypercall(X.HYPERVISOR_set_callbacks, NON_CANONICAL, B, C)).to.equal(0);
    expect(callbacks()).to.deep.equal({ event: A, failsafe: B, syscall: C });
    expect(g.v.hypercall(X.HYPERVISOR_set_callbacks, B, NON_CANONICAL_HIGH, NON_CANONICAL)).to.equal(0);
    expect(callbacks()).to.deep.equal({ event: B, failsafe: B, syscall: C });
  });

  describe('syscall "mask events" flag', () => {
    let tk: TrapKernel;
    beforeEach(() => {
      tk = new TrapKernel(g);
      expect(tk.installDefault()).to.equal(0);
      makeUserSpace(g);
      tk.on('syscall', (cpu) => iretFromFrame(cpu, false));
    });

    /** A user-mode hypercall (a system call for the kernel); the event mask the syscall callback saw. */
    function syscallMask(): number {
      tk.seen.length = 0;
      expect(runUser(g, USER_CODE, function* (u) {
        u.hypercall(X.HYPERVISOR_xen_version, 0, 0);
        yield 0x80;
      })).to.equal('idle');
      const d = tk.through('syscall');
      expect(d).to.have.length(1);
      return d[0].maskOnEntry;
    }

    it('a syscall callback registered with CALLBACKF_mask_events masks events on entry; without it, not', () => {
      expect(tk.registerSyscall(true)).to.equal(0);
      expect(syscallMask()).to.equal(1);
      expect(tk.registerSyscall(false)).to.equal(0);
      expect(syscallMask()).to.equal(0);
    });

    it('set_callbacks registers with flags 0: it clears the syscall callback\'s mask-events setting', () => {
      expect(tk.registerSyscall(true)).to.equal(0);
      expect(syscallMask()).to.equal(1);
      expect(g.v.hypercall(X.HYPERVISOR_set_callbacks, A, B, tk.address('syscall', false))).to.equal(0);
      expect(syscallMask()).to.equal(0);
    });
  });
});
