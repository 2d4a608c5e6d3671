// The guest-facing vCPU: the only thing guest code (guest kernels, their user programs,
// Dom0's software) holds. Part of the public ABI. Through it a guest loads and stores at
// virtual addresses, through its own page tables, and makes hypercalls whose structured
// arguments live in its own memory (DESIGN §1). It exposes no hypervisor state.

/** x86 exception vectors a guest can see. */
export const TRAP_gp_fault = 13;
export const TRAP_page_fault = 14;

/**
 * A fault the hypervisor did not fix, raised in the guest's code. (Until trap tables
 * exist this is how a guest sees #PF and #GP: `address` is CR2 for a page fault.)
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
 * A vCPU as its guest sees it. Virtual addresses are JS numbers: integers, with
 * upper-half addresses given either as their unsigned value (when a double holds it
 * exactly) or sign-extended (negative). Loads and stores fault with GuestTrap.
 */
export interface GuestVcpu {
  /** This vCPU's index in its domain. */
  readonly vcpuId: number;
  /** Current privilege level: 1 for the guest kernel, 3 for its user programs. */
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

  /**
   * Makes hypercall `nr` with up to five register arguments (rdi, rsi, rdx, r10, r8);
   * returns rax: a negative Xen errno, or the call's result.
   */
  hypercall(nr: number, a1?: HypercallArg, a2?: HypercallArg, a3?: HypercallArg, a4?: HypercallArg,
    a5?: HypercallArg): number;

  /**
   * Returns to guest user mode (ring 3) on the user page tables (NEW_USER_BASEPTR), as
   * the iret hypercall does; with none installed the domain is crashed, as in Xen.
   * Only traps and system calls come back to kernel mode.
   */
  enterUserMode(): void;
}

/** Raised in guest code whose vCPU can no longer run: its domain crashed or was destroyed. */
export class VcpuHalted extends Error {
  constructor(reason: string) {
    super(reason);
    this.name = 'VcpuHalted';
  }
}
