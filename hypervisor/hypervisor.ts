// The hypervisor: one simulated machine and the ring-0 software on it. Layer: hypervisor.
// Owns machine memory, the frame table, the allocator, the domains and the hypercall
// table, and wires the hypercall families (one file each) into the table. Host-side
// code reaches it through hypervisor/index.ts; guests only through their VcpuPort.

import { FrameTable, OWNER_XEN_PRIVATE } from './arch/frame-table.ts';
import { MachineMemory, PAGE_SIZE } from './arch/memory.ts';
import { PageWalker } from './arch/paging.ts';
import { TlbClock } from './arch/tlb.ts';
import { Domain, DomainState } from './domain.ts';
import { GuestAccess } from './guest-access.ts';
import { HypercallTable } from './hypercall.ts';
import { createLogger, silentLogger, type Logger } from './log.ts';
import type { MmHost } from './mm/mm-host.ts';
import { Mm } from './mm/mm.ts';
import { PageAllocator, type PageOwner } from './page-alloc.ts';
import { WritablePagetables } from './mm/ptwr.ts';
import { DOMID_IO, DOMID_XEN, VCPU_INFO } from './public/xen.ts';
import { MmuextOp, type TlbControl } from './mm/mmuext-op.ts';
import { USER_CPL, type Vcpu, type VcpuHost } from './vcpu.ts';
import { registerHypercalls } from './hypercalls.ts';
import type { Cpu } from './arch/cpu.ts';
import { makeCosts, type CostTable } from './arch/costs.ts';
import { PvTraps } from './traps.ts';
import { PvPrivOps } from './priv-op.ts';
import { EventChannels } from './event-channel.ts';
import { GrantTables } from './grant-table.ts';
import { Scheduler } from './sched/core.ts';
import { GuestTime } from './time.ts';
import { VIRQ_DOM_EXC, VIRQ_TIMER } from './public/xen.ts';
import { SHUTDOWN_crash } from './public/sched.ts';
import { TRAP_invalid_op, type GuestCode } from './public/vcpu.ts';
import { TrapAndEmulate } from './emulate/trap-and-emulate.ts';

export interface MachineConfig {
  /** Machine RAM in MiB (default 1024). */
  memoryMb?: number;
  /** pv-linear-pt: allow same-level linear page tables (default true, as Xen). */
  linearPageTables?: boolean;
  /**
   * A debug build of Xen (CONFIG_VERBOSE_DEBUG): any domain may write to the console.
   * Release builds (the default) allow console_io to the control domain only.
   */
  debugBuild?: boolean;
  /** Cycle costs and clock rate (defaults: DEFAULT_COSTS). */
  costs?: Partial<CostTable>;
  /** Physical CPUs the scheduler runs vCPUs on (default 1). */
  pcpus?: number;
  /** Wall-clock seconds at boot (default 2026-01-01T00:00:00Z). */
  wallclockSec?: number;
  /** Log level for the machine's pino logger (default 'silent'). */
  logLevel?: string;
  /** Where log records go (default stdout when a level is set). */
  logDestination?: import('pino').DestinationStream;
}

export class Hypervisor implements MmHost, VcpuHost, TlbControl {
  readonly mem: MachineMemory;
  readonly frames: FrameTable;
  readonly walker: PageWalker;
  readonly tlbClock = new TlbClock();
  readonly alloc: PageAllocator;
  readonly mm: Mm;
  readonly ga: GuestAccess;
  readonly ptwr: WritablePagetables;
  readonly mmuext: MmuextOp;
  readonly traps: PvTraps;
  readonly privOps: PvPrivOps;
  /** Trap-and-emulate mode, for domains built with it (hypervisor/emulate/). */
  readonly emulator: TrapAndEmulate;
  readonly evtchn: EventChannels;
  readonly gnttab: GrantTables;
  readonly sched: Scheduler;
  readonly time: GuestTime;
  readonly costs: CostTable;
  readonly table: HypercallTable;
  readonly log: Logger;
  readonly linearPageTables: boolean;
  readonly debugBuild: boolean;
  /** Virtual time in nanoseconds (advanced by the scheduler in later issues). */
  readonly clock = { now: 0 };
  /** Lines written with console_io, as "(dN) text" for guests. */
  readonly consoleLog: string[] = [];
  /** Domains by id, while they exist (dying ones included). */
  private readonly domains = new Map<number, Domain>();
  /** The privileged ones among them (foreign mappers whose TLBs a type change flushes). */
  private readonly privileged: Domain[] = [];
  /** Xen's pseudo-domains: owners for Xen-shared pages and for MMIO. */
  readonly domXen: Domain;
  readonly domIo: Domain;
  /** Next domid the automatic choice tries (Xen's rover). */
  domidRover = 0;
  pageFaults = 0;
  /** First MFN of each 2 MiB chunk of the M2P table (XENMEM_machphys_mfn_list). */
  readonly m2pChunks: number[] = [];

  constructor(cfg: MachineConfig = {}) {
    const memoryMb = cfg.memoryMb ?? 1024;
    this.costs = makeCosts(cfg.costs);
    const nrFrames = Math.floor((memoryMb * 1024 * 1024) / PAGE_SIZE);
    this.log = cfg.logLevel && cfg.logLevel !== 'silent'
      ? createLogger(this.clock, cfg.logLevel, cfg.logDestination)
      : silentLogger();
    this.mem = new MachineMemory(nrFrames);
    this.frames = new FrameTable(nrFrames);
    this.walker = new PageWalker(this.mem, this.frames, true);
    this.linearPageTables = cfg.linearPageTables ?? true;
    this.debugBuild = cfg.debugBuild ?? false;
    this.alloc = new PageAllocator(this.mem, this.frames, this.tlbClock,
      (owner) => this.lastPageFreed(owner), (tick) => this.flushTlbsOlderThan(tick));
    const sub = this.log.child({ sub: 'xen' });
    this.domXen = new Domain(DOMID_XEN, false, false, 0, 0, sub);
    this.domIo = new Domain(DOMID_IO, false, false, 0, 0, sub);
    // Xen's own L3 tables behind L4 slots 256-271: Xen-private, never mappable by guests.
    const xenSlots = new Int32Array(16);
    for (let i = 0; i < 16; i++) xenSlots[i] = this.alloc.allocXenFrames(0, OWNER_XEN_PRIVATE);
    // The M2P table occupies real machine memory in 2 MiB chunks (8 bytes a frame),
    // though its entries are kept in the frame table.
    const chunks = Math.ceil(nrFrames / 262144);
    for (let i = 0; i < chunks; i++) this.m2pChunks.push(this.alloc.allocXenFrames(9, OWNER_XEN_PRIVATE));
    this.mm = new Mm(this, xenSlots);
    this.ga = new GuestAccess(this.mem, this.walker);
    this.ptwr = new WritablePagetables(this.mm);
    this.mmuext = new MmuextOp(this.mm, this.ga, this);
    this.traps = new PvTraps(this.mem, this.ga, (v, why) => this.domainCrash(v.domain, why));
    this.privOps = new PvPrivOps(this.mmuext, this.costs, this.log.child({ sub: 'traps' }));
    this.emulator = new TrapAndEmulate(this);
    this.evtchn = new EventChannels(this);
    this.gnttab = new GrantTables(this);
    this.time = new GuestTime(this.mem, this.costs, cfg.wallclockSec ?? 1767225600);
    this.sched = new Scheduler(this, cfg.pcpus ?? 1);
    this.table = new HypercallTable(this.log.child({ sub: 'hypercall' }));
    registerHypercalls(this);
  }

  // ---- domains -------------------------------------------------------------------

  domainById(domid: number): Domain | undefined {
    if (domid === DOMID_XEN) return this.domXen;
    if (domid === DOMID_IO) return this.domIo;
    return this.domains.get(domid);
  }

  /** Live and dying domains, by id. */
  listDomains(): Domain[] {
    return [...this.domains.values()].sort((a, b) => a.domid - b.domid);
  }

  addDomain(d: Domain): void {
    this.domains.set(d.domid, d);
    if (d.isPrivileged) this.privileged.push(d);
  }

  private lastPageFreed(owner: PageOwner): void {
    const d = owner as Domain;
    if (d.state === DomainState.Dying) {
      d.transition(DomainState.Dead);
      this.domains.delete(d.domid);
      if (d.isPrivileged) this.privileged.splice(this.privileged.indexOf(d), 1);
      d.log.info('domain destroyed');
    }
  }

  /** domain_crash: the domain never runs again; the toolstack must destroy it. */
  domainCrash(d: Domain, reason: string): void {
    if (!d.isAlive) return;
    d.crashReason = reason;
    if (d.shutdownCode < 0) d.shutdownCode = SHUTDOWN_crash;
    d.transition(DomainState.Crashed);
    d.log.warn({ reason }, 'domain crashed');
    this.evtchn.sendGlobalVirq(VIRQ_DOM_EXC);
  }

  /**
   * domain_shutdown: the domain stops running with `reason` (the first reason given
   * wins) and Dom0 hears of it through VIRQ_DOM_EXC. A domain already shut down, crashed
   * or dying is left as it is.
   */
  domainShutdown(d: Domain, reason: number): void {
    if (!d.isAlive) return;
    if (d.shutdownCode < 0) d.shutdownCode = reason & 0xff;
    d.transition(DomainState.Shutdown);
    d.log.info({ reason: d.shutdownCode }, 'domain shut down');
    this.evtchn.sendGlobalVirq(VIRQ_DOM_EXC);
  }

  // ---- events -------------------------------------------------------------------

  /** vcpu_kick: an upcall is pending for v; a blocked vCPU becomes runnable. */
  vcpuKick(v: Vcpu): void {
    if (v.blocked) this.sched.wake(v, this.eventTime(v));
  }

  /** A port of d became pending: SCHEDOP_poll waiters on it wake. */
  wakePollers(d: Domain, port: number): void {
    for (const v of d.vcpus) {
      const t = v.timers;
      if (t.polling && (t.pollPorts.length === 0 || t.pollPorts.includes(port))) this.sched.wake(v, this.eventTime(v));
    }
  }

  /** VIRQ_TIMER for v (its single-shot or periodic timer fired). */
  sendTimerVirq(v: Vcpu): void {
    this.evtchn.sendVcpuVirq(v, VIRQ_TIMER);
  }

  /** When an event for v happens: the time of whoever is running now, else global time. */
  private eventTime(_v: Vcpu): number {
    const r = this.sched.running;
    return r ? r.nowNs() : this.clock.now;
  }

  // ---- TLBs --------------------------------------------------------------------

  flushDomainTlbs(d: Domain): void {
    for (const v of d.vcpus) v.tlb.flushAll();
  }

  flushTypeChange(ownerId: number): void {
    const owner = this.domains.get(ownerId);
    if (owner) this.flushDomainTlbs(owner);
    for (const d of this.privileged) if (d !== owner) this.flushDomainTlbs(d);
  }

  flushVcpuTlb(v: Vcpu): void {
    v.tlb.flushAll();
  }

  invlpgVcpu(v: Vcpu, lo: number, hi: number): void {
    v.tlb.flushOne(lo, hi);
  }

  /** Before a freed frame is reused: flush every TLB not flushed since it was freed. */
  private flushTlbsOlderThan(tick: number): void {
    for (const d of this.domains.values()) {
      for (const v of d.vcpus) if (v.tlb.flushedAt < tick) v.tlb.flushAll();
    }
  }

  // ---- the vCPU's view -------------------------------------------------------------

  // An emulated domain's vCPUs (v.emu set) go to the trap-and-emulate VMM throughout.

  emulateStore(v: Vcpu, lo: number, hi: number, size: number, vlo: number, vhi: number): boolean {
    if (v.emu !== null) return false; // no writable-pagetable emulation: the fault is the guest's
    return this.ptwr.emulateStore(v, lo, hi, size, vlo, vhi);
  }

  hypercall(cpu: Cpu, nr: number): number {
    const v = cpu as Vcpu;
    if (v.emu !== null) return this.emulator.hypercall(v);
    if (v.cpl === USER_CPL) {
      // From user mode the instruction is a system call for the guest kernel: its
      // syscall callback, or #UD when it has none.
      for (let tries = 0; ; tries++) {
        if (v.syscallLo !== 0 || v.syscallHi !== 0) return v.syscall();
        if (tries >= 1000) v.crash(`a user-mode hypercall faulted ${tries} times`);
        v.fault(TRAP_invalid_op, -1); // its iret back executes the instruction again
      }
    }
    v.domain.hypercalls++;
    return this.table.dispatch(v, nr, v.args);
  }

  privOp(cpu: Cpu, op: number, a: number, b: number, c: number): number {
    const v = cpu as Vcpu;
    if (v.emu !== null) return this.emulator.privOp(v, op, a, b, c);
    return this.privOps.execute(v, op, a, b, c);
  }

  deliver(cpu: Cpu, kind: number, vector: number, errorCode: number, retLo: number, retHi: number): boolean {
    const v = cpu as Vcpu;
    if (v.emu !== null) return this.emulator.deliver(v, kind, vector, errorCode, retLo, retHi);
    return this.traps.deliver(v, kind, vector, errorCode, retLo, retHi);
  }

  pendingInterrupt(cpu: Cpu): number {
    const v = cpu as Vcpu;
    if (v.emu !== null) return this.emulator.pendingInterrupt(v);
    return this.traps.pendingInterrupt(v);
  }

  /** A PV kernel's iretq to ring 0 is a #GP it gets; an emulated kernel's is emulated. */
  emulateIret(cpu: Cpu, cs: number, rflags: number, rsp: number): boolean {
    const v = cpu as Vcpu;
    return v.emu !== null && this.emulator.iret(v, cs, rflags, rsp);
  }

  pageTableWrite(cpu: Cpu): void {
    this.emulator.pageTableWrite(cpu as Vcpu);
  }

  shadowFill(cpu: Cpu, n: number): void {
    this.emulator.shadowFill(cpu as Vcpu, n);
  }

  codeAt(cpu: Cpu, key: number): GuestCode | undefined {
    return (cpu as Vcpu).domain.image?.text.get(key);
  }

  crash(cpu: Cpu, reason: string): void {
    this.domainCrash((cpu as Vcpu).domain, reason);
  }

  /** Xen sets the guest's CR2 and vcpu_info.arch.cr2 for a page fault it injects. */
  notePageFault(cpu: Cpu, lo: number, hi: number): void {
    const v = cpu as Vcpu;
    this.pageFaults++;
    const si = v.domain.sharedInfoMfn;
    // A native kernel reads CR2 (which the CPU set) and knows nothing of vcpu_info.
    if (si >= 0 && v.vcpuId < 32 && v.emu === null) {
      const off = v.vcpuId * VCPU_INFO.size + VCPU_INFO.fields['arch.cr2'].offset;
      this.mem.write32(si, off, lo);
      this.mem.write32(si, off + 4, hi);
    }
  }
}
