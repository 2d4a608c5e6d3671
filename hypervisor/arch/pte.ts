// x86-64 page-table entries as two 32-bit halves (lo = bits 0-31, hi = bits 32-63).
// Layer: hypervisor/arch. Flag bits, address extraction and the index of a virtual
// address at each level; no policy (the disallow masks live in hypervisor/mm/).

// Flags in the low half.
export const _PAGE_PRESENT = 0x001;
export const _PAGE_RW = 0x002;
export const _PAGE_USER = 0x004;
export const _PAGE_PWT = 0x008;
export const _PAGE_PCD = 0x010;
export const _PAGE_ACCESSED = 0x020;
export const _PAGE_DIRTY = 0x040;
/** PSE in L2/L3 entries; PAT in L1 entries. */
export const _PAGE_PSE = 0x080;
export const _PAGE_PAT = 0x080;
export const _PAGE_GLOBAL = 0x100;
export const _PAGE_AVAIL = 0xe00;
export const PTE_FLAGS_LO = 0xfff;
export const PTE_ADDR_LO = 0xfffff000;

// Flags in the high half: NX is bit 63, bits 52-62 are available to software.
export const _PAGE_NX_HI = 0x80000000;
export const _PAGE_AVAIL_HIGH_HI = 0x7ff00000;
/** Frame-address bits 32-51 of the entry. */
export const PTE_ADDR_HI = 0x000fffff;

/** Physical address width of the simulated CPU; address bits above it are reserved. */
export const PADDR_BITS = 46;
/** Reserved address bits 46-51 in the high half. */
export const PTE_RSVD_HI = PTE_ADDR_HI & ~((1 << (PADDR_BITS - 32)) - 1);

export const ENTRIES_PER_TABLE = 512;

/** The frame number an entry points at. */
export function pteMfn(lo: number, hi: number): number {
  return (lo >>> 12) + (hi & PTE_ADDR_HI) * 0x100000;
}

/** The low half of an entry for frame `mfn` with flags `flags`. */
export function pteLo(mfn: number, flags: number): number {
  return ((mfn << 12) | (flags & PTE_FLAGS_LO)) >>> 0;
}

/** The high half of an entry for frame `mfn` (address bits 32-51), without NX. */
export function pteHiAddr(mfn: number): number {
  return Math.floor(mfn / 0x100000) & PTE_ADDR_HI;
}

// Index of a virtual address (given as halves) into the table at each level.
export function l4Index(hi: number): number {
  return (hi >>> 7) & 511;
}
export function l3Index(lo: number, hi: number): number {
  return ((hi & 0x7f) << 2) | (lo >>> 30);
}
export function l2Index(lo: number): number {
  return (lo >>> 21) & 511;
}
export function l1Index(lo: number): number {
  return (lo >>> 12) & 511;
}

/** Bits 63:47 all equal: the address is canonical. */
export function isCanonical(hi: number): boolean {
  const top = hi >> 15;
  return top === 0 || top === -1;
}

// 64-bit values as JS numbers: any integer a double holds exactly. Negative numbers are
// two's complement (so an upper-half address may be written -0x800000000000 + off).
const TWO32 = 4294967296;

export function lo32(value: number): number {
  return value >>> 0;
}

export function hi32(value: number): number {
  return Math.floor(value / TWO32) >>> 0;
}

/** Unsigned value of a 64-bit quantity, exact below 2^53 (and for 2^53-aligned values). */
export function u64(lo: number, hi: number): number {
  return hi * TWO32 + lo;
}

/** Signed value of a 64-bit quantity: an upper-half address comes back negative. */
export function s64(lo: number, hi: number): number {
  return (hi | 0) * TWO32 + lo;
}
