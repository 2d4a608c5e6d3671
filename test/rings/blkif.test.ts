// blkif messages: encoded at io/blkif.h's x86-64 offsets (padding left alone), decoded
// exactly (64-bit ids and sectors as halves), and a copied-out request checked as a back
// end must: 1..11 segments for a read or write, 0..11 for a barrier or flush, and
// first_sect <= last_sect <= 7 in every segment.

import { expect } from 'chai';
import {
  BLKIF_DISCARD_SECURE, BLKIF_OP_DISCARD, BLKIF_OP_FLUSH_DISKCACHE, BLKIF_OP_INDIRECT, BLKIF_OP_READ,
  BLKIF_OP_RESERVED_1, BLKIF_OP_WRITE, BLKIF_OP_WRITE_BARRIER, BLKIF_RSP_EOPNOTSUPP, BlkifRequest, BlkifRequestDiscard,
  BlkifRequestIndirect, BlkifResponse, blkifIndirectError, blkifIndirectPages, blkifRequestBytes, blkifRequestError,
  blkifSegmentError, decodeBlkifDiscard, decodeBlkifIndirect, decodeBlkifRequest, decodeBlkifResponse,
  encodeBlkifDiscard, encodeBlkifIndirect, encodeBlkifRequest, encodeBlkifResponse,
} from '../../rings/blkif.ts';
import { ByteView } from '../../rings/page.ts';

function request(op: number, segs: readonly (readonly [number, number])[]): BlkifRequest {
  const r = new BlkifRequest();
  r.operation = op;
  r.nrSegments = segs.length;
  segs.forEach(([first, last], i) => {
    r.gref[i] = 100 + i;
    r.firstSect[i] = first;
    r.lastSect[i] = last;
  });
  return r;
}

const full = (n: number): [number, number][] => Array.from({ length: n }, () => [0, 7] as [number, number]);

describe('blkif messages', () => {
  it('a request is encoded at its x86-64 offsets, little-endian, padding untouched', () => {
    const buf = new ByteView(new Uint8Array(112).fill(0xaa));
    const r = request(BLKIF_OP_WRITE, [[1, 6], [0, 7]]);
    r.handle = 0xca00;
    r.idLo = 0x04030201;
    r.idHi = 0x08070605;
    r.sectorLo = 0xfffffff0;
    r.sectorHi = 0x1;
    encodeBlkifRequest(buf, 0, r);
    const b = [...buf.bytes];
    expect(b.slice(0, 8)).to.deep.equal([BLKIF_OP_WRITE, 2, 0x00, 0xca, 0xaa, 0xaa, 0xaa, 0xaa]);
    expect(b.slice(8, 24)).to.deep.equal([1, 2, 3, 4, 5, 6, 7, 8, 0xf0, 0xff, 0xff, 0xff, 1, 0, 0, 0]);
    expect(b.slice(24, 40)).to.deep.equal([100, 0, 0, 0, 1, 6, 0xaa, 0xaa, 101, 0, 0, 0, 0, 7, 0xaa, 0xaa]);
    expect(b.slice(40).every((x) => x === 0xaa)).to.equal(true);
  });

  it('decoding gives back every field exactly, 11 segments included', () => {
    const r = request(BLKIF_OP_READ, Array.from({ length: 11 }, (_, i) => [i % 8, 7] as [number, number]));
    r.idLo = 0xffffffff;
    r.idHi = 0xfffffffe;
    r.sectorLo = 0x80000000;
    r.sectorHi = 0x7fffffff;
    const buf = ByteView.ofSize(200);
    encodeBlkifRequest(buf, 40, r);
    const d = decodeBlkifRequest(buf, 40, new BlkifRequest());
    expect([d.operation, d.nrSegments, d.idLo, d.idHi, d.sectorLo, d.sectorHi])
      .to.deep.equal([BLKIF_OP_READ, 11, 0xffffffff, 0xfffffffe, 0x80000000, 0x7fffffff]);
    expect([...d.gref]).to.deep.equal([...r.gref]);
    expect([...d.firstSect]).to.deep.equal([...r.firstSect]);
  });

  it('decoding a request claiming 255 segments reads no further than the 112-byte request', () => {
    const buf = ByteView.ofSize(112);
    buf.write8(1, 255);
    const d = decodeBlkifRequest(buf, 0, new BlkifRequest());
    expect(d.nrSegments).to.equal(255);
    expect(blkifRequestError(d)).to.equal('more than 11 segments');
  });

  it('a read or write needs 1..11 sound segments; a barrier or flush may have none', () => {
    const cases: [string, BlkifRequest, string | null][] = [
      ['read, 1 segment', request(BLKIF_OP_READ, [[0, 7]]), null],
      ['write, 11 segments', request(BLKIF_OP_WRITE, full(11)), null],
      ['read, no segment', request(BLKIF_OP_READ, []), 'a read or write with no segment'],
      ['write, no segment', request(BLKIF_OP_WRITE, []), 'a read or write with no segment'],
      ['write, 12 segments', Object.assign(request(BLKIF_OP_WRITE, full(11)), { nrSegments: 12 }), 'more than 11 segments'],
      ['barrier, no segment', request(BLKIF_OP_WRITE_BARRIER, []), null],
      ['flush, no segment', request(BLKIF_OP_FLUSH_DISKCACHE, []), null],
      ['flush, a bad segment', request(BLKIF_OP_FLUSH_DISKCACHE, [[3, 8]]), 'last_sect is past the end of the page'],
      ['first = last = 7', request(BLKIF_OP_READ, [[7, 7]]), null],
      ['first after last', request(BLKIF_OP_READ, [[0, 7], [5, 4]]), 'first_sect is after last_sect'],
      ['last_sect 8', request(BLKIF_OP_WRITE, [[0, 8]]), 'last_sect is past the end of the page'],
      ['reserved operation', request(BLKIF_OP_RESERVED_1, [[0, 7]]), 'not a read, write, barrier or flush'],
      ['discard in a blkif_request', request(BLKIF_OP_DISCARD, []), 'not a read, write, barrier or flush'],
      ['indirect in a blkif_request', request(BLKIF_OP_INDIRECT, [[0, 7]]), 'not a read, write, barrier or flush'],
    ];
    for (const [what, req, err] of cases) expect(blkifRequestError(req), what).to.equal(err);
    expect(blkifSegmentError(0, 0)).to.equal(null);
  });

  it('a sound request transfers 512 bytes per sector of its segments', () => {
    expect(blkifRequestBytes(request(BLKIF_OP_READ, [[0, 7], [2, 3]]))).to.equal(10 * 512);
  });

  it('a response is id at 0, operation at 8, signed status at 10, padding untouched', () => {
    const buf = new ByteView(new Uint8Array(16).fill(0xaa));
    encodeBlkifResponse(buf, 0, 0x11223344, 0x55667788, BLKIF_OP_WRITE_BARRIER, BLKIF_RSP_EOPNOTSUPP);
    expect([...buf.bytes]).to.deep.equal([0x44, 0x33, 0x22, 0x11, 0x88, 0x77, 0x66, 0x55, 2, 0xaa, 0xfe, 0xff, 0xaa, 0xaa, 0xaa, 0xaa]);
    const d = decodeBlkifResponse(buf, 0, new BlkifResponse());
    expect([d.idLo, d.idHi, d.operation, d.status]).to.deep.equal([0x11223344, 0x55667788, 2, -2]);
  });

  it('a discard request round-trips, nr_sectors at 24', () => {
    const r = new BlkifRequestDiscard();
    r.flag = BLKIF_DISCARD_SECURE;
    r.handle = 51712;
    r.idLo = 9;
    r.sectorLo = 2048;
    r.nrSectorsLo = 0x100000;
    r.nrSectorsHi = 2;
    const buf = ByteView.ofSize(112);
    encodeBlkifDiscard(buf, 0, r);
    expect([buf.read8(0), buf.read8(1), buf.read32(24), buf.read32(28)]).to.deep.equal([BLKIF_OP_DISCARD, 1, 0x100000, 2]);
    expect(decodeBlkifDiscard(buf, 0, new BlkifRequestDiscard())).to.deep.equal(r);
  });

  it('an indirect request round-trips, handle at 24 and indirect_grefs at 28', () => {
    const r = new BlkifRequestIndirect();
    r.indirectOp = BLKIF_OP_WRITE;
    r.nrSegments = 600;
    r.idLo = 77;
    r.sectorLo = 8;
    r.handle = 0xca10;
    r.indirectGrefs.set([31, 32]);
    const buf = ByteView.ofSize(112);
    encodeBlkifIndirect(buf, 0, r);
    expect([buf.read8(0), buf.read8(1), buf.read16(2), buf.read16(24), buf.read32(28), buf.read32(32)])
      .to.deep.equal([BLKIF_OP_INDIRECT, BLKIF_OP_WRITE, 600, 0xca10, 31, 32]);
    expect(decodeBlkifIndirect(buf, 0, new BlkifRequestIndirect())).to.deep.equal(r);
  });

  it('an indirect request needs a read or write of 1..feature-max-indirect-segments segments in at most 8 pages', () => {
    const r = new BlkifRequestIndirect();
    r.indirectOp = BLKIF_OP_READ;
    r.nrSegments = 256;
    expect(blkifIndirectError(r, 256)).to.equal(null);
    expect(blkifIndirectError(Object.assign(new BlkifRequestIndirect(), r, { nrSegments: 257 }), 256))
      .to.equal('more segments than feature-max-indirect-segments');
    expect(blkifIndirectError(Object.assign(new BlkifRequestIndirect(), r, { nrSegments: 0 }), 256))
      .to.equal('an indirect request with no segment');
    expect(blkifIndirectError(Object.assign(new BlkifRequestIndirect(), r, { indirectOp: BLKIF_OP_FLUSH_DISKCACHE }), 256))
      .to.equal('indirect_op is not a read or write');
    expect(blkifIndirectError(Object.assign(new BlkifRequestIndirect(), r, { nrSegments: 4097 }), 5000))
      .to.equal('more than 8 indirect pages');
    expect([blkifIndirectPages(1), blkifIndirectPages(512), blkifIndirectPages(513), blkifIndirectPages(4096)])
      .to.deep.equal([1, 1, 2, 8]);
  });
});
