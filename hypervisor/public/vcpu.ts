// The guest-facing vCPU: the only thing guest code (guest kernels, their user programs,
// Dom0's software) holds. Part of the public ABI. Through it a guest loads and stores at
// virtual addresses through its own page tables, executes privileged instructions (which
// fault at CPL > 0), and makes hypercalls whose structured arguments live in its own
// memory (DESIGN §1). It exposes no hypervisor state.
//
// Guest code is written as generators (GuestCode). A generator runs until it yields:
// `yield` is a boundary (where interrupts and event upcalls are taken and the scheduler
// may switch), `yield n` executes the software interrupt `int n` and evaluates to RAX
// when the interrupted code is resumed. Faults raised by loads, stores and privileged
// instructions are delivered synchronously: the handler runs, and when it returns (iret)
// to the faulting code the instruction is retried.

/** x86 exception vectors. */
export const TRAP_divide_error = 0;
export const TRAP_debug = 1;
export const TRAP_nmi = 2;
export const TRAP_int3 = 3;
export const TRAP_invalid_op = 6;
export const TRAP_double_fault = 8;
export const TRAP_gp_fault = 13;
export const TRAP_page_fault = 14;

/** General registers, as numbered in x86 instruction encodings. */
export const REG_RAX = 0;
export const REG_RCX = 1;
export const REG_RDX = 2;
export const REG_RBX = 3;
export const REG_RSP = 4;
export const REG_RBP = 5;
export const REG_RSI = 6;
export const REG_RDI = 7;
export const REG_R8 = 8;
export const REG_R9 = 9;
export const REG_R10 = 10;
export const REG_R11 = 11;
export const REG_R12 = 12;
export const REG_R13 = 13;
export const REG_R14 = 14;
export const REG_R15 = 15;

/** RFLAGS bits. */
export const X86_EFLAGS_IF = 1 << 9;
export const X86_EFLAGS_IOPL = 3 << 12;
/** Bit 1 of RFLAGS always reads as 1. */
export const X86_EFLAGS_MBS = 1 << 1;

/**
 * A fault guest code chose to surface as an exception: guest trap handlers may throw it
 * (the CPU then unwinds to the faulting code, as a kernel's exception-table fixup
 * would). The hypervisor never throws it.
 */
export class GuestTrap extends Error {
  constructor(
    readonly vector: number,
    readonly errorCode: number,
    readonly address: number,
  ) {
    super(vector === TRAP_page_fault
      ? `#PF at 0x${BigInt.asUintN(64, BigInt(address)).toString(16)} (error code ${errorCode})`
      : `trap ${vector} (error code ${errorCode})`);
    this.name = 'GuestTrap';
  }
}

/** A 64-bit register value given exactly, as halves (for values a double cannot hold). */
export interface Reg64 {
  readonly lo: number;
  readonly hi: number;
}

/** A hypercall argument: a JS integer (negative = two's complement) or exact halves. */
export type HypercallArg = number | Reg64;

/**
 * Guest code at a virtual address: a generator over the vCPU. It yields `undefined` at
 * boundaries, or a vector n to execute `int n`; the value sent back in is RAX.
 */
export type GuestCode = (cpu: GuestVcpu) => Generator<number | undefined, unknown, number>;

/**
 * What a boot loader hands over with a kernel: the code at each virtual address (the
 * kernel's text and the user programs linked into it) and where vCPU 0 starts.
 */
export interface GuestImage {
  readonly text: ReadonlyMap<number, GuestCode>;
  /** Virtual address of the entry point (Xen: RSI = start_info at entry); none: vCPU 0 waits. */
  readonly entry?: number;
}

/**
 * A vCPU as its guest sees it. Virtual addresses are JS numbers: integers, with
 * upper-half addresses given either as their unsigned value (when a double holds it
 * exactly) or sign-extended (negative).
 */
export interface GuestVcpu {
  /** This vCPU's index in its domain. */
  readonly vcpuId: number;
  /** Current privilege level: 0 native kernel, 1 guest kernel, 3 user programs. */
  readonly cpl: number;

  load8(va: number): number;
  load16(va: number): number;
  load32(va: number): number;
  /** A 64-bit load; exact below 2^53 (read a PTE as two 32-bit halves). */
  load64(va: number): number;
  store8(va: number, value: number): void;
  store16(va: number, value: number): void;
  store32(va: number, value: number): void;
  /** One 64-bit store given as halves: a PTE write is a single store. */
  store64(va: number, lo: number, hi: number): void;
  /** Copies guest memory at va into dst (like rep movsb). */
  read(va: number, dst: Uint8Array): void;
  /** Copies src into guest memory at va (like rep movsb). */
  write(va: number, src: Uint8Array): void;

  /** A general register (REG_*); 64-bit values as JS numbers (upper half sign-extended). */
  reg(r: number): number;
  setReg(r: number, value: number): void;
  /** Spends `cycles` on computation that touches no memory. */
  compute(cycles: number): void;
  /** The time-stamp counter (cycles this CPU has run); not privileged. */
  rdtsc(): number;

  /**
   * Makes hypercall `nr` with up to five register arguments (rdi, rsi, rdx, r10, r8);
   * returns rax: a negative Xen errno, or the call's result. HYPERVISOR_iret does not
   * return: control goes to the frame it pops.
   */
  hypercall(nr: number, a1?: HypercallArg, a2?: HypercallArg, a3?: HypercallArg, a4?: HypercallArg,
    a5?: HypercallArg): number;

  // Privileged instructions: #GP at CPL > 0 unless the hypervisor emulates them.
  cli(): void;
  sti(): void;
  /** Pushes RFLAGS; returns it. */
  pushf(): number;
  /** Pops RFLAGS. At CPL > IOPL the IF bit is silently left as it was (x86). */
  popf(flags: number): void;
  /** Halts until an interrupt; takes effect at the next boundary. */
  hlt(): void;
  /** mov from cr2: the address of the last page fault. */
  readCr2(): number;
  readCr3(): number;
  writeCr3(value: number): void;
  invlpg(va: number): void;
  lgdt(va: number): void;
  /** Loads the IDT register from the 10-byte pseudo-descriptor at va (limit, base). */
  lidt(va: number): void;
  /** Loads the task register: `va` is the 64-bit TSS (xensim takes its address, not a selector). */
  ltr(va: number): void;
  in(port: number, size: number): number;
  out(port: number, size: number, value: number): void;
  rdmsr(msr: number): number;
  wrmsr(msr: number, value: number): void;
  wbinvd(): void;
  /** iretq: pops RIP, CS, RFLAGS, RSP, SS from the stack and returns there. Never returns. */
  iretq(): never;
}

/** Raised in guest code whose vCPU can no longer run: its domain crashed or was destroyed. */
export class VcpuHalted extends Error {
  constructor(reason: string) {
    super(reason);
    this.name = 'VcpuHalted';
  }
}
