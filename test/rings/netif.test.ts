// netif messages: transmit and receive requests and responses, and the extra-info slot,
// encoded at io/netif.h's x86-64 offsets and decoded exactly (signed statuses included).

import { expect } from 'chai';
import {
  NETIF_RSP_DROPPED, NETIF_RSP_ERROR, NETRXF_data_validated, NETRXF_more_data, NETTXF_extra_info, NETTXF_more_data,
  NetifExtraInfo, NetifRxRequest, NetifRxResponse, NetifTxRequest, NetifTxResponse, XEN_NETIF_EXTRA_FLAG_MORE,
  XEN_NETIF_EXTRA_TYPE_GSO, XEN_NETIF_EXTRA_TYPE_HASH, XEN_NETIF_EXTRA_TYPE_MCAST_ADD, XEN_NETIF_EXTRA_TYPE_NONE,
  XEN_NETIF_GSO_TYPE_TCPV4, decodeNetifExtraInfo, decodeNetifRxRequest, decodeNetifRxResponse, decodeNetifTxRequest,
  decodeNetifTxResponse, encodeNetifExtraInfo, encodeNetifRxRequest, encodeNetifRxResponse, encodeNetifTxRequest,
  encodeNetifTxResponse,
} from '../../rings/netif.ts';
import { ByteView } from '../../rings/page.ts';

const bytes = (buf: ByteView, n: number): number[] => [...buf.bytes.subarray(0, n)];

describe('netif messages', () => {
  it('a tx request is gref, offset, flags, id, size in 12 bytes', () => {
    const r = Object.assign(new NetifTxRequest(), {
      gref: 0x01020304, offset: 0x0506, flags: NETTXF_more_data | NETTXF_extra_info, id: 0x0708, size: 1514,
    });
    const buf = ByteView.ofSize(12);
    encodeNetifTxRequest(buf, 0, r);
    expect(bytes(buf, 12)).to.deep.equal([4, 3, 2, 1, 6, 5, 12, 0, 8, 7, 0xea, 0x05]);
    expect(decodeNetifTxRequest(buf, 0, new NetifTxRequest())).to.deep.equal(r);
  });

  it('a tx response is id and a signed status in 4 bytes', () => {
    const buf = ByteView.ofSize(4);
    encodeNetifTxResponse(buf, 0, 0x1234, NETIF_RSP_DROPPED);
    expect(bytes(buf, 4)).to.deep.equal([0x34, 0x12, 0xfe, 0xff]);
    expect(decodeNetifTxResponse(buf, 0, new NetifTxResponse())).to.deep.equal({ id: 0x1234, status: -2 });
  });

  it('an rx request is id, padding, gref in 8 bytes; the padding is left alone', () => {
    const buf = new ByteView(new Uint8Array(8).fill(0xaa));
    encodeNetifRxRequest(buf, 0, 3, 0x0a0b0c0d);
    expect(bytes(buf, 8)).to.deep.equal([3, 0, 0xaa, 0xaa, 0x0d, 0x0c, 0x0b, 0x0a]);
    expect(decodeNetifRxRequest(buf, 0, new NetifRxRequest())).to.deep.equal({ id: 3, gref: 0x0a0b0c0d });
  });

  it('an rx response carries a byte count or a negative NETIF_RSP_* in its status', () => {
    const buf = ByteView.ofSize(16);
    const ok = Object.assign(new NetifRxResponse(), { id: 9, offset: 14, flags: NETRXF_data_validated | NETRXF_more_data, status: 1500 });
    const err = Object.assign(new NetifRxResponse(), { id: 10, offset: 0, flags: 0, status: NETIF_RSP_ERROR });
    encodeNetifRxResponse(buf, 0, ok);
    encodeNetifRxResponse(buf, 8, err);
    expect(bytes(buf, 8)).to.deep.equal([9, 0, 14, 0, 5, 0, 0xdc, 0x05]);
    expect(decodeNetifRxResponse(buf, 0, new NetifRxResponse())).to.deep.equal(ok);
    expect(decodeNetifRxResponse(buf, 8, new NetifRxResponse())).to.deep.equal(err);
  });

  it('an extra-info slot holds GSO, multicast or hash data after type and flags', () => {
    const buf = new ByteView(new Uint8Array(8).fill(0xaa));
    const gso = Object.assign(new NetifExtraInfo(), {
      type: XEN_NETIF_EXTRA_TYPE_GSO, flags: XEN_NETIF_EXTRA_FLAG_MORE, gsoSize: 1448, gsoType: XEN_NETIF_GSO_TYPE_TCPV4, gsoFeatures: 0,
    });
    encodeNetifExtraInfo(buf, 0, gso);
    expect(bytes(buf, 8)).to.deep.equal([1, 1, 0xa8, 0x05, 1, 0, 0, 0]);
    const d = decodeNetifExtraInfo(buf, 0, new NetifExtraInfo());
    expect([d.type, d.flags, d.gsoSize, d.gsoType, d.gsoFeatures]).to.deep.equal([1, 1, 1448, 1, 0]);

    const mcast = Object.assign(new NetifExtraInfo(), { type: XEN_NETIF_EXTRA_TYPE_MCAST_ADD });
    mcast.mcastAddr.set([0x01, 0x00, 0x5e, 0x00, 0x00, 0xfb]);
    encodeNetifExtraInfo(buf, 0, mcast);
    expect(bytes(buf, 8)).to.deep.equal([2, 0, 0x01, 0x00, 0x5e, 0x00, 0x00, 0xfb]);
    expect([...decodeNetifExtraInfo(buf, 0, new NetifExtraInfo()).mcastAddr]).to.deep.equal([1, 0, 0x5e, 0, 0, 0xfb]);

    // The header's picture: type, flags, htype, alg, then the value LSB first.
    const hash = Object.assign(new NetifExtraInfo(), { type: XEN_NETIF_EXTRA_TYPE_HASH, hashType: 1, hashAlgorithm: 1, hashValue: 0xdeadbeef });
    encodeNetifExtraInfo(buf, 0, hash);
    expect(bytes(buf, 8)).to.deep.equal([4, 0, 1, 1, 0xef, 0xbe, 0xad, 0xde]);
    expect(decodeNetifExtraInfo(buf, 0, new NetifExtraInfo()).hashValue).to.equal(0xdeadbeef);

    encodeNetifExtraInfo(buf, 0, Object.assign(new NetifExtraInfo(), { type: XEN_NETIF_EXTRA_TYPE_NONE }));
    expect(bytes(buf, 8)).to.deep.equal([0, 0, 0, 0, 0, 0, 0, 0]);
  });
});
