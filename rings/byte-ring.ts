// Byte-stream rings in a shared page (the console's in/out, XenStore's req/rsp): a
// power-of-two array of bytes with free-running u32 consumer and producer indices,
// masked to the array. The producer writes bytes, then (write barrier) prod; the
// consumer reads bytes, then (full barrier) cons. rings/ layer: imports only
// hypervisor/public/.
//
// Indices come from the peer and are checked once per call: prod - cons above the ring
// size is impossible (the XenStore wire protocol's XENSTORE_ERROR_RINGIDX); the call then
// returns -1 and touches nothing.

import type { PageView } from './page.ts';

/** Where one byte ring lives in its page. */
export interface ByteRing {
  /** For messages: "out", "req", ... */
  readonly name: string;
  /** Offset of the byte array and its size (a power of two). */
  readonly data: number;
  readonly size: number;
  /** Offsets of the u32 consumer and producer indices. */
  readonly cons: number;
  readonly prod: number;
}

/** Bytes waiting to be consumed (prod - cons), or -1 if the indices are impossible. */
export function byteRingQueued(page: PageView, ring: ByteRing): number {
  const queued = (page.read32(ring.prod) - page.read32(ring.cons)) >>> 0;
  return queued > ring.size ? -1 : queued;
}

/**
 * The producer's step: copies up to `len` bytes of `src` from `srcOff` into the ring
 * (as many as there is room for), then publishes them by advancing prod. Returns the
 * bytes written (0 when full), or -1 if the indices are impossible. The caller notifies
 * the consumer when it wrote anything.
 */
export function byteRingWrite(page: PageView, ring: ByteRing, src: Uint8Array, srcOff: number, len: number): number {
  const cons = page.read32(ring.cons);
  let prod = page.read32(ring.prod);
  if (((prod - cons) >>> 0) > ring.size) return -1;
  page.mb(); // write the data only after reading cons: the consumer may still be reading it
  const mask = ring.size - 1;
  let n = 0;
  while (n < len && ((prod - cons) >>> 0) < ring.size) {
    page.write8(ring.data + (prod & mask), src[srcOff + n]);
    prod = (prod + 1) >>> 0;
    n++;
  }
  page.wmb(); // the consumer sees the data before the index that covers it
  page.write32(ring.prod, prod);
  return n;
}

/**
 * The consumer's step: copies up to `len` waiting bytes into `dst` from `dstOff`, then
 * frees their space by advancing cons. Returns the bytes read (0 when empty), or -1 if
 * the indices are impossible. The caller notifies the producer when it read anything.
 */
export function byteRingRead(page: PageView, ring: ByteRing, dst: Uint8Array, dstOff: number, len: number): number {
  let cons = page.read32(ring.cons);
  const prod = page.read32(ring.prod);
  if (((prod - cons) >>> 0) > ring.size) return -1;
  page.rmb(); // read the data only after reading prod
  const mask = ring.size - 1;
  let n = 0;
  while (n < len && cons !== prod) {
    dst[dstOff + n] = page.read8(ring.data + (cons & mask));
    cons = (cons + 1) >>> 0;
    n++;
  }
  page.mb(); // the producer may reuse the space only after the data has been read
  page.write32(ring.cons, cons);
  return n;
}
