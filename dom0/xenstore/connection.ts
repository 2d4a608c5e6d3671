// One client of xenstored over a byte stream (a Unix socket, or a guest's XenStore
// ring): reassembles xs_wire messages from whatever pieces the stream delivers, hands
// each whole one to the daemon, and writes replies and watch events back. The stream
// itself is behind XsTransport, so the same connection serves any carrier. An
// unprivileged connection takes its next message only while the daemon allows it (the
// outstanding and memory quotas); what arrives meanwhile waits here, in order.
// dom0/xenstore layer.

import type { Transaction } from './transaction.ts';
import { XENSTORE_PAYLOAD_MAX, XS_HEADER_BYTES, type XsHeader, readHeader } from './wire.ts';

/** The carrier under a connection. */
export interface XsTransport {
  /**
   * Queues one whole message (header and payload) for the peer. Returns true when the
   * peer has it already; false when the carrier will call the connection's delivered()
   * once the peer has it (once per message, in the order sent), and never from within
   * send() itself: the daemon records the message only once send() returns. Nor may send()
   * feed the connection new input (receive()). Until delivered the message counts against
   * the domain's memory quota, and a reply against its outstanding quota.
   */
  send(message: Uint8Array): boolean;
  /**
   * The peer broke the protocol (a payload over XENSTORE_PAYLOAD_MAX): stop serving it.
   * A socket is closed; a guest's ring is marked broken.
   */
  fail(reason: string): void;
  /** The connection takes no input for now (a quota holds it): the carrier may stop reading. */
  pauseInput?(): void;
  /** The connection takes input again. */
  resumeInput?(): void;
}

/** A watch: a path (absolute, or special) and the client's token. */
export interface XsWatch {
  readonly name: string;
  readonly token: string;
  /** Set for a watch given as a relative path: the domain path its events are relative to. */
  readonly relativeTo: string | null;
}

/** Memory a watch takes from its domain's quota: its path (absolute, as stored) and token. */
export function watchMemory(name: string, token: string): number {
  return name.length + token.length;
}

/**
 * An unprivileged request some of whose output is not delivered: it stays outstanding for
 * its connection until its reply and every watch event it caused (on any connection) are.
 */
export interface PendingRequest {
  readonly conn: XsConnection;
  /** Its watch events not delivered yet. */
  events: number;
  /** Whether its reply is not delivered yet. */
  reply: boolean;
}

/**
 * What an undelivered message is: a reply counted as outstanding (unprivileged
 * connections), a watch event, or anything else (a privileged connection's reply).
 */
export type OutKind = 'reply' | 'event' | 'other';

/** A message sent but not yet delivered. */
export interface Undelivered {
  readonly kind: OutKind;
  /** Bytes charged to the domain's memory: payload and header. */
  readonly bytes: number;
  /** The request it belongs to (a reply's, once it caused events; an event's), or null. */
  readonly request: PendingRequest | null;
  /** A watch event's whole message (an identical one is not queued twice); else null. */
  readonly message: Uint8Array | null;
}

/** A first-in first-out queue that does not shift its array on every take. */
export class Fifo<T> {
  private items: (T | undefined)[] = [];
  private head = 0;

  get length(): number {
    return this.items.length - this.head;
  }

  push(x: T): void {
    this.items.push(x);
  }

  shift(): T | undefined {
    if (this.head === this.items.length) return undefined;
    const x = this.items[this.head];
    this.items[this.head++] = undefined;
    if (this.head === this.items.length) {
      this.items.length = 0;
      this.head = 0;
    } else if (this.head >= 1024 && this.head * 2 >= this.items.length) {
      this.items.splice(0, this.head);
      this.head = 0;
    }
    return x;
  }

  /** Whether any item satisfies `f`, oldest first. */
  some(f: (x: T) => boolean): boolean {
    for (let i = this.head; i < this.items.length; i++) if (f(this.items[i] as T)) return true;
    return false;
  }
}

/** What the daemon does with a whole message, and the quotas it keeps. */
export interface XsMessageSink {
  handleMessage(conn: XsConnection, hdr: XsHeader, payload: Uint8Array): void;
  protocolError(conn: XsConnection, reason: string): void;
  /**
   * Whether an unprivileged connection may take its next message now. When not, the sink
   * calls the connection's resume() once it may.
   */
  mayRead(conn: XsConnection): boolean;
  /** The carrier delivered the connection's oldest undelivered message. */
  delivered(conn: XsConnection): void;
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
  /** Requests outstanding (unprivileged connections only): see PendingRequest. */
  outstanding = 0;
  /** Messages sent and not yet delivered, oldest first. */
  readonly undelivered = new Fifo<Undelivered>();
  /** Set while a quota holds the input back. */
  held = false;
  private buf = new Uint8Array(XS_HEADER_BYTES + XENSTORE_PAYLOAD_MAX);
  private used = 0;
  private readonly hdr: XsHeader = { type: 0, reqId: 0, txId: 0, len: 0 };
  /** Bytes received but not yet taken (while held), from backlogStart to backlogEnd. */
  private backlog = new Uint8Array(0);
  private backlogStart = 0;
  private backlogEnd = 0;

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

  /**
   * Bytes from the peer, in any pieces: every message they complete is handled, in order,
   * as far as the quotas allow; the rest waits until resume().
   */
  receive(bytes: Uint8Array): void {
    if (this.closed) return;
    if (this.held || this.backlogEnd > this.backlogStart) {
      this.stash(bytes, 0);
      if (!this.held) this.pump();
      return;
    }
    const off = this.take(bytes, 0);
    if (off < bytes.length && !this.closed) this.stash(bytes, off);
  }

  /** The carrier delivered the oldest undelivered message to the peer. */
  delivered(): void {
    if (!this.closed) this.sink.delivered(this);
  }

  /** The quotas allow input again: takes what waited. Called by the daemon, between messages. */
  resume(): void {
    if (!this.held || this.closed) return;
    this.held = false;
    this.transport.resumeInput?.();
    this.pump();
  }

  /** Drops what waited (the connection is gone). */
  dropInput(): void {
    this.backlog = new Uint8Array(0);
    this.backlogStart = this.backlogEnd = 0;
    this.used = 0;
  }

  /** Takes waiting bytes until they run out or a quota holds the connection again. */
  private pump(): void {
    // A message held back whole in buf goes first.
    if (this.used >= XS_HEADER_BYTES && this.used === XS_HEADER_BYTES + this.hdr.len) {
      if (this.mustWait()) return;
      this.used = 0;
      this.sink.handleMessage(this, this.hdr, this.buf.subarray(XS_HEADER_BYTES, XS_HEADER_BYTES + this.hdr.len));
    }
    if (this.closed || this.backlogEnd === this.backlogStart) return;
    const waiting = this.backlog.subarray(this.backlogStart, this.backlogEnd);
    const off = this.take(waiting, 0);
    this.backlogStart += off;
    if (this.backlogStart === this.backlogEnd) this.backlogStart = this.backlogEnd = 0;
  }

  /**
   * Handles every message `bytes` completes from `off` on, gathering a partial one; stops
   * early when a quota holds the connection. Returns how far it got.
   */
  private take(bytes: Uint8Array, off: number): number {
    while (off < bytes.length && !this.closed) {
      if (this.used === 0) {
        // Fast path: whole messages straight from the caller's bytes.
        const left = bytes.length - off;
        if (left >= XS_HEADER_BYTES) {
          readHeader(bytes, off, this.hdr);
          if (this.hdr.len > XENSTORE_PAYLOAD_MAX) {
            this.violation();
            return bytes.length;
          }
          const total = XS_HEADER_BYTES + this.hdr.len;
          if (left >= total) {
            if (this.mustWait()) return off;
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
        if (this.hdr.len > XENSTORE_PAYLOAD_MAX) {
          this.violation();
          return bytes.length;
        }
      }
      if (this.used >= XS_HEADER_BYTES && this.used === XS_HEADER_BYTES + this.hdr.len) {
        // Complete: it stays whole in buf if the connection must wait.
        if (this.mustWait()) return off;
        this.used = 0;
        this.sink.handleMessage(this, this.hdr, this.buf.subarray(XS_HEADER_BYTES, XS_HEADER_BYTES + this.hdr.len));
      }
    }
    return off;
  }

  /** Whether a quota holds the connection before its next message (unprivileged only). */
  private mustWait(): boolean {
    if (this.privileged || this.sink.mayRead(this)) return false;
    if (!this.held) {
      this.held = true;
      this.transport.pauseInput?.();
    }
    return true;
  }

  /** Keeps `bytes` from `off` on for later, after what already waits. */
  private stash(bytes: Uint8Array, off: number): void {
    const n = bytes.length - off;
    if (n === 0) return;
    if (this.backlogEnd + n > this.backlog.length) {
      const kept = this.backlogEnd - this.backlogStart;
      const grown = new Uint8Array(Math.max(2 * (kept + n), 4096));
      grown.set(this.backlog.subarray(this.backlogStart, this.backlogEnd));
      this.backlog = grown;
      this.backlogStart = 0;
      this.backlogEnd = kept;
    }
    this.backlog.set(bytes.subarray(off), this.backlogEnd);
    this.backlogEnd += n;
  }

  private violation(): void {
    this.sink.protocolError(this, `payload of ${this.hdr.len} bytes is over ${XENSTORE_PAYLOAD_MAX}`);
  }
}
