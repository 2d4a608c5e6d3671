// The kernel's fixed numbers: its virtual-address layout, the user address-space
// layout, the system-call numbers (shared with user programs' libc) and the clock.
// Layer: guests.

/** The direct map of all memory (where the boot loader or Xen's builder put it). */
export const DIRECT_MAP = -0x780000000000;
export const DIRECT_MAP_L4_SLOT = 272;
/** Kernel text, mapped by the kernel itself at boot (Linux's __START_KERNEL_map). */
export const KERNEL_TEXT = -0x80000000;
export const KERNEL_TEXT_L4_SLOT = 511;
export const KERNEL_TEXT_L3_SLOT = 510;
/** Boot entry: inside the start_info page, which the loader maps (past the struct). */
export const BOOT_ENTRY = DIRECT_MAP + 0xf00;

/** Entry points in kernel text, 16 bytes apart. */
export const ENTRY_PAGE_FAULT = KERNEL_TEXT + 0x000;
export const ENTRY_GP_FAULT = KERNEL_TEXT + 0x010;
export const ENTRY_INVALID_OP = KERNEL_TEXT + 0x020;
export const ENTRY_SYSCALL = KERNEL_TEXT + 0x030;
export const ENTRY_TIMER = KERNEL_TEXT + 0x040;
export const ENTRY_IDLE = KERNEL_TEXT + 0x050;

// A process's address space: user space is the first GiB (L4 slot 0, L3 slot 0).
export const USER_TEXT = 0x400000;
export const BRK_BASE = 0x800000;
export const MMAP_BASE = 0x10000000;
export const USER_STACK_TOP = 0x40000000;
export const USER_LIMIT = 0x40000000;

// System calls: number in RAX, arguments in RDI, RSI, RDX; result in RAX (-errno on error).
export const SYS_write = 0;
export const SYS_getpid = 1;
export const SYS_yield = 2;
export const SYS_sleep = 3;
export const SYS_exit = 4;
export const SYS_brk = 5;
export const SYS_mmap = 6;
export const SYS_fork = 7;

export const EFAULT = 14;
export const EINVAL = 22;
export const ENOMEM = 12;
export const ENOSYS = 38;

/** The tick: HZ 250 (Linux's default), so 4 ms. */
export const TICK_NS = 4_000_000;
/** A process runs for at most this many ticks before the tick handler preempts it. */
export const TIMESLICE_TICKS = 3;
