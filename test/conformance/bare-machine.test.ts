// The bare machine: a native kernel at CPL 0 with no hypervisor. Privileged
// instructions execute; the TSC-deadline timer interrupts through the kernel's own IDT;
// iretq returns; the serial port prints; and a timer edge arriving while an interrupt is
// already pending is lost, as on real hardware.

import { expect } from 'chai';
import { BareMachine } from '../../hypervisor/index.ts';
import type { GuestCode, GuestVcpu } from '../../hypervisor/public/vcpu.ts';
import { pfnToVa } from '../../guests/lib/xen-calls.ts';
import { LVT_MODE_PERIODIC, LVT_MODE_TSC_DEADLINE } from '../../hypervisor/arch/lapic.ts';
import { GuestTrap } from '../../hypervisor/public/vcpu.ts';

const ENTRY = pfnToVa(0) + 0xe00;
const TIMER_HANDLER = pfnToVa(0) + 0xe40;
const TIMER_VECTOR = 0x20;

function print(cpu: GuestVcpu, s: string): void {
  for (const ch of s + '\n') cpu.out(0x3f8, 1, ch.charCodeAt(0));
}

/** Writes an IDT with one interrupt gate (DPL 0) at page `idtVa` and loads it. */
function loadIdt(cpu: GuestVcpu, idtVa: number, vector: number, handler: number): void {
  const at = idtVa + vector * 16;
  const lo = handler >>> 0;
  const hi = Math.floor(handler / 4294967296) >>> 0;
  cpu.store32(at, (lo & 0xffff) | (0x10 << 16));
  cpu.store32(at + 4, (lo & 0xffff0000) | (0x8e << 8)); // present, DPL 0, interrupt gate
  cpu.store32(at + 8, hi);
  cpu.store32(at + 12, 0);
  const desc = idtVa + 4096 - 16;
  cpu.store16(desc, 256 * 16 - 1);
  cpu.store64(desc + 2, idtVa >>> 0, Math.floor(idtVa / 4294967296) >>> 0);
  cpu.lidt(desc);
}

function boot(main: GuestCode, onTimer: () => void): BareMachine {
  const bm = new BareMachine({ memoryMb: 4 });
  const handler: GuestCode = function* (cpu) {
    onTimer();
    cpu.wrmsr(0x80b, 0); // EOI
    cpu.iretq();
  };
  bm.boot({ text: new Map([[ENTRY, main], [TIMER_HANDLER, handler]]), entry: ENTRY });
  return bm;
}

describe('bare machine (native, no hypervisor)', () => {
  it('a native kernel at CPL 0 takes a timer interrupt through its IDT after sti; hlt; iretq returns to it', () => {
    let ticks = 0;
    const bm = boot(function* (cpu) {
      const idt = pfnToVa(40);
      loadIdt(cpu, idt, TIMER_VECTOR, TIMER_HANDLER);
      cpu.wrmsr(0x832, TIMER_VECTOR | LVT_MODE_TSC_DEADLINE);
      cpu.wrmsr(0x6e0, cpu.rdtsc() + 24_000); // 10 us from now
      cpu.sti();
      cpu.hlt();
      yield;
      print(cpu, `woke at cpl ${cpu.cpl} after ${ticks} tick`);
    }, () => { ticks++; });
    bm.run(1_000_000);
    expect(bm.halted).to.equal('');
    expect(ticks).to.equal(1);
    expect(bm.console).to.deep.equal(['woke at cpl 0 after 1 tick']);
  });

  it('with IF clear a second timer edge while one is pending is lost; sti then delivers one interrupt', () => {
    let ticks = 0;
    const bm = boot(function* (cpu) {
      loadIdt(cpu, pfnToVa(40), TIMER_VECTOR, TIMER_HANDLER);
      cpu.wrmsr(0x832, TIMER_VECTOR | LVT_MODE_TSC_DEADLINE);
      cpu.cli();
      for (let i = 0; i < 2; i++) {
        cpu.wrmsr(0x6e0, cpu.rdtsc() + 2400);
        for (let j = 0; j < 4; j++) {
          cpu.compute(2400);
          yield;
        }
      }
      cpu.sti();
      yield;
      print(cpu, `ticks ${ticks}`);
    }, () => { ticks++; });
    bm.run(1_000_000);
    expect(bm.timerInterrupts).to.equal(2);
    expect(bm.timerLost).to.equal(1);
    expect(bm.console).to.deep.equal(['ticks 1']);
  });

  it('a privileged instruction from CPL 3 faults: with no IDT the machine triple-faults', () => {
    const bm = new BareMachine({ memoryMb: 4 });
    bm.boot({ text: new Map(), entry: ENTRY });
    bm.cpu.cpl = 3;
    expect(() => bm.cpu.port.cli()).to.throw();
    expect(bm.halted).to.match(/triple fault/);
  });

  it('a hypercall on the bare machine is an invalid opcode (#UD)', () => {
    const bm = new BareMachine({ memoryMb: 4 });
    bm.boot({ text: new Map(), entry: ENTRY });
    expect(() => bm.cpu.port.hypercall(17, 0, 0)).to.throw();
    expect(bm.halted).to.match(/vector 6/);
  });

  it('periodic APIC timer: an edge every period; with IF clear across two edges the second is lost', () => {
    let ticks = 0;
    const seen: number[] = [];
    const bm = boot(function* (cpu) {
      loadIdt(cpu, pfnToVa(40), TIMER_VECTOR, TIMER_HANDLER);
      cpu.wrmsr(0x83e, 0xb); // divide by 1: the timer counts at the TSC rate
      cpu.wrmsr(0x832, TIMER_VECTOR | LVT_MODE_PERIODIC);
      cpu.wrmsr(0x838, 24_000); // 10 us
      cpu.sti();
      for (let i = 0; i < 5; i++) { // 12.5 us: one tick
        cpu.compute(6000);
        yield;
      }
      seen.push(ticks);
      cpu.cli();
      for (let i = 0; i < 10; i++) { // 25 us with IF clear: edges at 20 and 30 us
        cpu.compute(6000);
        yield;
      }
      cpu.sti();
      yield;
      seen.push(ticks);
      cpu.wrmsr(0x838, 0); // stops the timer
      print(cpu, `ticks ${ticks}`);
    }, () => { ticks++; });
    bm.run(1_000_000);
    expect(seen).to.deep.equal([1, 2]);
    expect(bm.timerInterrupts).to.equal(3);
    expect(bm.timerLost).to.equal(1);
    expect(bm.console).to.deep.equal(['ticks 2']);
  });

  it('serial port: THRE reads clear for ten bit times after each byte (86.8 us at 115200 baud, the divisor sets it)', () => {
    const lsr: number[] = [];
    const bm = boot(function* (cpu) {
      cpu.out(0x3f8, 1, 65);
      lsr.push(cpu.in(0x3fd, 1) & 0x20);
      cpu.compute(Math.ceil(86.806 * 2400));
      lsr.push(cpu.in(0x3fd, 1) & 0x20);
      cpu.out(0x3fb, 1, 0x83); // DLAB
      cpu.out(0x3f8, 1, 12); // divisor 12: 9600 baud
      cpu.out(0x3f9, 1, 0);
      cpu.out(0x3fb, 1, 0x03);
      const t0 = cpu.rdtsc();
      for (const ch of 'BC\n') {
        while ((cpu.in(0x3fd, 1) & 0x20) === 0) cpu.compute(100);
        cpu.out(0x3f8, 1, ch.charCodeAt(0));
      }
      while ((cpu.in(0x3fd, 1) & 0x20) === 0) cpu.compute(100);
      lsr.push(Math.round((cpu.rdtsc() - t0) / 2400)); // us for three bytes
      yield;
    }, () => {});
    bm.run(10_000_000);
    expect(lsr.slice(0, 2)).to.deep.equal([0, 0x20]);
    expect(lsr[2]).to.be.within(3125, 3130);
    expect(bm.console).to.deep.equal(['ABC']);
  });

  it('MSR_PLATFORM_INFO gives the TSC ratio (24 at 2400 MHz); an unknown MSR is #GP', () => {
    const got: number[] = [];
    const bm = boot(function* (cpu) {
      got.push(cpu.rdmsr(0xce));
      yield;
      cpu.rdmsr(0x12345);
    }, () => {});
    bm.run(1_000_000);
    expect(got).to.deep.equal([24 << 8]);
    expect(bm.halted).to.match(/triple fault delivering vector 13/);
  });

  it('mov from cr2 reads the address of the last page fault', () => {
    const PF_HANDLER = pfnToVa(0) + 0xe80;
    let cr2 = 0;
    let caught = '';
    const bm = new BareMachine({ memoryMb: 4 });
    const pf: GuestCode = function* (cpu) {
      cr2 = cpu.readCr2();
      throw new GuestTrap(14, 0, cr2);
    };
    const main: GuestCode = function* (cpu) {
      loadIdt(cpu, pfnToVa(40), 14, PF_HANDLER);
      try {
        cpu.load64(0x5000);
      } catch (e) {
        caught = (e as Error).name;
      }
      yield;
    };
    bm.boot({ text: new Map([[ENTRY, main], [PF_HANDLER, pf]]), entry: ENTRY });
    bm.run(1_000_000);
    expect(cr2).to.equal(0x5000);
    expect(caught).to.equal('GuestTrap');
  });

  it('writing SLP_EN to the ACPI PM1a control port powers the machine off', () => {
    let after = false;
    const bm = boot(function* (cpu) {
      yield;
      cpu.out(0x604, 2, 0x2000);
      after = true;
    }, () => {});
    bm.run(1_000_000);
    expect(bm.poweredOff).to.equal(true);
    expect(bm.halted).to.equal('powered off');
    expect(after).to.equal(false);
  });

  it('an IDT gate is read as 32-bit words: a handler whose offset has high bits 16-31 set is entered exactly', () => {
    // The gate's first quadword, taken as one double, would exceed 2^53 and lose the low bits.
    const handlerVa = pfnToVa(0x1fff) + 0xff8;
    let ran = 0;
    const bm = new BareMachine({ memoryMb: 32 });
    const handler: GuestCode = function* (cpu) {
      ran++;
      cpu.wrmsr(0x80b, 0);
      cpu.iretq();
    };
    const main: GuestCode = function* (cpu) {
      loadIdt(cpu, pfnToVa(40), TIMER_VECTOR, handlerVa);
      cpu.wrmsr(0x832, TIMER_VECTOR | LVT_MODE_TSC_DEADLINE);
      cpu.wrmsr(0x6e0, cpu.rdtsc() + 2400);
      cpu.sti();
      cpu.hlt();
      yield;
      print(cpu, 'back');
    };
    bm.boot({ text: new Map([[ENTRY, main], [handlerVa, handler]]), entry: ENTRY });
    bm.run(1_000_000);
    expect(bm.halted).to.equal('');
    expect(ran).to.equal(1);
    expect(bm.console).to.deep.equal(['back']);
  });

  it('the timer vector is not delivered again until EOI; a masked timer raises nothing, so unmasking delivers nothing', () => {
    let ticks = 0;
    const seen: number[] = [];
    const bm = new BareMachine({ memoryMb: 4 });
    const noEoi: GuestCode = function* (cpu) {
      ticks++;
      cpu.iretq(); // no EOI: the vector stays in service
    };
    const main: GuestCode = function* (cpu) {
      loadIdt(cpu, pfnToVa(40), TIMER_VECTOR, TIMER_HANDLER);
      cpu.wrmsr(0x83e, 0xb);
      cpu.wrmsr(0x832, TIMER_VECTOR | LVT_MODE_PERIODIC);
      cpu.wrmsr(0x838, 24_000); // 10 us
      cpu.sti();
      for (let i = 0; i < 10; i++) { // 50 us
        cpu.compute(12_000);
        yield;
      }
      seen.push(ticks);
      cpu.wrmsr(0x80b, 0); // EOI: the pending edge is delivered
      yield;
      seen.push(ticks);
      cpu.wrmsr(0x80b, 0);
      cpu.wrmsr(0x832, TIMER_VECTOR | LVT_MODE_PERIODIC | 0x10000); // masked
      for (let i = 0; i < 10; i++) {
        cpu.compute(12_000);
        yield;
      }
      cpu.wrmsr(0x832, TIMER_VECTOR | LVT_MODE_PERIODIC); // unmasked: nothing was latched
      yield;
      seen.push(ticks);
      cpu.wrmsr(0x838, 0);
    };
    bm.boot({ text: new Map([[ENTRY, main], [TIMER_HANDLER, noEoi]]), entry: ENTRY });
    bm.run(1_000_000);
    expect(seen).to.deep.equal([1, 2, 2]);
  });

  it('lgdt loads GDTR from the pseudo-descriptor in memory (limit, then base)', () => {
    const bm = boot(function* (cpu) {
      const desc = pfnToVa(41);
      cpu.store16(desc, 0x37);
      cpu.store64(desc + 2, 0x12345000, 0xffff8800);
      cpu.lgdt(desc);
      yield;
    }, () => {});
    bm.run(100_000);
    expect([bm.cpu.gdtrLimit, bm.cpu.gdtrLo, bm.cpu.gdtrHi]).to.deep.equal([0x37, 0x12345000, 0xffff8800]);
  });

  it('#GP from an invalid instruction is a fault: after the handler\'s iretq the instruction runs again', () => {
    const GP_HANDLER = pfnToVa(0) + 0xe80;
    let gps = 0;
    const bm = new BareMachine({ memoryMb: 4 });
    const gp: GuestCode = function* (cpu) {
      gps++;
      cpu.setReg(4, cpu.reg(4) + 8); // pop the error code
      cpu.iretq();
    };
    const main: GuestCode = function* (cpu) {
      loadIdt(cpu, pfnToVa(40), 13, GP_HANDLER);
      cpu.rdmsr(0x1234);
      yield;
    };
    bm.boot({ text: new Map([[ENTRY, main], [GP_HANDLER, gp]]), entry: ENTRY });
    bm.run(100_000_000);
    expect(gps).to.equal(1000);
    expect(bm.halted).to.match(/rdmsr faulted 1000 times/);
  });
});
