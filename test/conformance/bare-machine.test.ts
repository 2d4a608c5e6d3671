// The bare machine: a native kernel at CPL 0 with no hypervisor. Privileged
// instructions execute; the TSC-deadline timer interrupts through the kernel's own IDT;
// iretq returns; the serial port prints; and a timer edge arriving while an interrupt is
// already pending is lost, as on real hardware.

import { expect } from 'chai';
import { BareMachine } from '../../hypervisor/index.ts';
import type { GuestCode, GuestVcpu } from '../../hypervisor/public/vcpu.ts';
import { pfnToVa } from '../../guests/lib/xen-calls.ts';

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
      cpu.wrmsr(0x832, TIMER_VECTOR);
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
      cpu.wrmsr(0x832, TIMER_VECTOR);
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
});
