// One client of xenstored over a byte stream (a Unix socket, or a guest's XenStore
// ring): reassembles xs_wire messages from whatever pieces the stream delivers, hands
// each whole one to the daemon, and writes replies and watch events back. The stream
// itself is behind XsTransport, so the same connection serves any carrier.
// dom0/xenstore layer.

import type { Transaction } from './transaction.ts';
import { XENSTORE_PAYLOAD_MAX, XS_HEADER_BYTES, type XsHeader, readHeader } from './wire.ts';

/** The carrier under a connection. */
export interface XsTransport {
  /** Queues one whole message (header and payload) for the peer. */
  send(message: Uint8Array): void;
  /**
   * The peer broke the protocol (a payload over XENSTORE_PAYLOAD_MAX): stop serving it.
   * A socket is closed; a guest's ring is marked broken.
   */
  fail(reason: string): void;
}

/** A watch: a path (absolute, or special) and the client's token. */
export interface XsWatch {
  readonly name: string;
  readonly token: string;
  /** Set for a watch given as a relative path: the domain path its events are relative to. */
  readonly relativeTo: string | null;
}

/** What the daemon does with a whole message. */
export interface XsMessageSink {
  handleMessage(conn: XsConnection, hdr: XsHeader, payload: Uint8Array): void;
  protocolError(conn: XsConnection, reason: string): void;
}

export class XsConnection {
  /** The watches, in the order they were set (events go out in this order). */
  readonly watches: XsWatch[] = [];
  /** Open transactions by id. */
  readonly transactions = new Map<number, Transaction>();
  /** Transaction ids are handed out per connection, counting up from 1. */
  nextTransactionId = 1;
  /** Set once the connection is gone; nothing more is read or sent. */
  closed = false;
  private buf = new Uint8Array(XS_HEADER_BYTES + XENSTORE_PAYLOAD_MAX);
  private used = 0;
  private readonly hdr: XsHeader = { type: 0, reqId: 0, txId: 0, len: 0 };

  constructor(
    private readonly sink: XsMessageSink,
    /** A small number naming the connection in traces. */
    readonly id: number,
    /** The domain the client acts as. */
    readonly domid: number,
    /** Dom0's tools (the socket) and dom0 itself: no permission checks or quotas. */
    readonly privileged: boolean,
    readonly transport: XsTransport,
  ) {}

  /** Bytes from the peer, in any pieces: every message they complete is handled, in order. */
  receive(bytes: Uint8Array): void {
    let off = 0;
    while (off < bytes.length && !this.closed) {
      if (this.used === 0) {
        // Fast path: whole messages straight from the caller's bytes.
        const left = bytes.length - off;
        if (left >= XS_HEADER_BYTES) {
          readHeader(bytes, off, this.hdr);
          if (this.hdr.len > XENSTORE_PAYLOAD_MAX) return this.violation();
          const total = XS_HEADER_BYTES + this.hdr.len;
          if (left >= total) {
            this.sink.handleMessage(this, this.hdr, bytes.subarray(off + XS_HEADER_BYTES, off + total));
            off += total;
            continue;
          }
        }
      }
      // Partial message: gather it.
      const need = this.used < XS_HEADER_BYTES ? XS_HEADER_BYTES - this.used : XS_HEADER_BYTES + this.hdr.len - this.used;
      const take = Math.min(need, bytes.length - off);
      this.buf.set(bytes.subarray(off, off + take), this.used);
      this.used += take;
      off += take;
      if (this.used === XS_HEADER_BYTES) {
        readHeader(this.buf, 0, this.hdr);
        if (this.hdr.len > XENSTORE_PAYLOAD_MAX) return this.violation();
      }
      if (this.used >= XS_HEADER_BYTES && this.used === XS_HEADER_BYTES + this.hdr.len) {
        this.used = 0;
        this.sink.handleMessage(this, this.hdr, this.buf.subarray(XS_HEADER_BYTES, XS_HEADER_BYTES + this.hdr.len));
      }
    }
  }

  private violation(): void {
    this.sink.protocolError(this, `payload of ${this.hdr.len} bytes is over ${XENSTORE_PAYLOAD_MAX}`);
  }
}
