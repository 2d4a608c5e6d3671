// The console and XenStore byte rings: bytes land at their index masked to the ring,
// indices run free across 2^32, a producer writes only into free space and a consumer
// reads only what was published, and impossible indices from the peer (more queued than
// the ring holds) are refused without touching the page.

import { expect } from 'chai';
import { byteRingQueued, byteRingRead, byteRingWrite, type ByteRing } from '../../rings/byte-ring.ts';
import { XENCONS_IN, XENCONS_OUT, maskXenconsIdx } from '../../rings/console.ts';
import { BytesPage, ByteView } from '../../rings/page.ts';
import { XENSTORE_REQ, XENSTORE_RSP, maskXenstoreIdx } from '../../rings/xenstore.ts';

const RINGS: readonly [string, ByteRing][] = [
  ['console in', XENCONS_IN], ['console out', XENCONS_OUT], ['xenstore req', XENSTORE_REQ], ['xenstore rsp', XENSTORE_RSP],
];

function pattern(n: number, seed: number): ByteView {
  const b = ByteView.ofSize(n);
  for (let i = 0; i < n; i++) b.bytes[i] = (i * 31 + seed) & 0xff;
  return b;
}

function at(page: BytesPage, ring: ByteRing, cons: number, prod: number): void {
  page.write32(ring.cons, cons >>> 0);
  page.write32(ring.prod, prod >>> 0);
}

describe('console and XenStore byte rings', () => {
  it('are where the headers put them: console in 1024 at 0, out 2048 at 1024; xenstore req and rsp 1024 each', () => {
    expect([XENCONS_IN.data, XENCONS_IN.size, XENCONS_OUT.data, XENCONS_OUT.size]).to.deep.equal([0, 1024, 1024, 2048]);
    expect([XENSTORE_REQ.data, XENSTORE_RSP.data, XENSTORE_REQ.size, XENSTORE_REQ.prod]).to.deep.equal([0, 1024, 1024, 2052]);
    expect([maskXenconsIdx(0xffffffff, 2048), maskXenstoreIdx(1025)]).to.deep.equal([2047, 1]);
  });

  for (const [name, ring] of RINGS) {
    it(`${name}: bytes written across 2^32 land at their masked index and read back in order`, () => {
      const page = BytesPage.zeroed();
      at(page, ring, 0xfffffff0, 0xfffffff0);
      const src = pattern(40, 3);
      expect(byteRingWrite(page, ring, src.bytes, 0, 40)).to.equal(40);
      expect(page.read32(ring.prod)).to.equal(24);
      expect(byteRingQueued(page, ring)).to.equal(40);
      expect(page.read8(ring.data + ring.size - 16)).to.equal(src.bytes[0]);
      expect(page.read8(ring.data)).to.equal(src.bytes[16]);
      const dst = new Uint8Array(64);
      expect(byteRingRead(page, ring, dst, 4, 64)).to.equal(40);
      expect([...dst.subarray(4, 44)]).to.deep.equal([...src.bytes]);
      expect(page.read32(ring.cons)).to.equal(24);
      expect(byteRingRead(page, ring, dst, 0, 64)).to.equal(0);
    });

    it(`${name}: a producer fills only the free space; the consumer frees it`, () => {
      const page = BytesPage.zeroed();
      at(page, ring, 0xffffff00, 0xffffff00);
      const src = pattern(ring.size + 100, 9);
      expect(byteRingWrite(page, ring, src.bytes, 0, src.bytes.length)).to.equal(ring.size);
      expect(byteRingWrite(page, ring, src.bytes, ring.size, 100)).to.equal(0);
      const dst = new Uint8Array(ring.size + 100);
      expect(byteRingRead(page, ring, dst, 0, 60)).to.equal(60);
      expect(byteRingWrite(page, ring, src.bytes, ring.size, 100)).to.equal(60);
      expect(byteRingRead(page, ring, dst, 60, ring.size + 40)).to.equal(ring.size);
      expect([...dst.subarray(0, ring.size + 60)]).to.deep.equal([...src.bytes.subarray(0, ring.size + 60)]);
    });

    it(`${name}: impossible indices from the peer are refused (-1) and nothing is touched`, () => {
      const page = BytesPage.zeroed();
      at(page, ring, 5, 5 + ring.size + 1);
      const before = Uint8Array.from(page.bytes);
      expect(byteRingQueued(page, ring)).to.equal(-1);
      expect(byteRingWrite(page, ring, pattern(8, 1).bytes, 0, 8)).to.equal(-1);
      expect(byteRingRead(page, ring, new Uint8Array(8), 0, 8)).to.equal(-1);
      at(page, ring, 100, 99);
      before.set(page.bytes);
      expect(byteRingRead(page, ring, new Uint8Array(8), 0, 8)).to.equal(-1);
      expect(page.bytes).to.deep.equal(before);
    });
  }

  it('a ring touches only its own bytes and indices: console out traffic leaves in and its indices alone', () => {
    const page = BytesPage.zeroed();
    const src = pattern(3000, 5);
    byteRingWrite(page, XENCONS_OUT, src.bytes, 0, 3000);
    byteRingRead(page, XENCONS_OUT, new Uint8Array(3000), 0, 3000);
    expect(page.bytes.subarray(0, 1024).every((b) => b === 0)).to.equal(true);
    expect([page.read32(XENCONS_IN.cons), page.read32(XENCONS_IN.prod)]).to.deep.equal([0, 0]);
  });
});
