// An in-process xenstored for tests: clients whose transport records what the daemon
// sends, and a request helper that returns the reply as a string ("|" for each NUL, as
// xs_wire's docs write payloads) along with the watch events that came before it. A
// client can hold its output back, as a peer that does not read its ring, and let it
// through message by message. Test support only.

import type { XsConnection } from '../../dom0/xenstore/connection.ts';
import {
  XS_ERROR, XS_HEADER_BYTES, XS_WATCH_EVENT, type XsHeader, encodeMessage, fromLatin1, latin1, readHeader,
} from '../../dom0/xenstore/wire.ts';
import { XenStored, type XenStoredOptions } from '../../dom0/xenstore/xenstored.ts';

/** One message the daemon sent, payload shown with "|" for NUL. */
export interface Sent {
  type: number;
  reqId: number;
  txId: number;
  payload: string;
}

export class Client {
  /** Everything received, in order. */
  readonly received: Sent[] = [];
  /** Set when the daemon gave up the connection. */
  failed: string | null = null;
  /** While set, what the daemon sends waits undelivered until deliver(). */
  holding = false;
  /** Whether the daemon asked the carrier to stop reading (a quota holds the connection). */
  inputPaused = false;
  readonly conn: XsConnection;
  private nextReqId = 1;
  private readonly heldBack: Uint8Array[] = [];

  constructor(
    readonly d: XenStored,
    domid: number,
    privileged: boolean,
  ) {
    this.conn = d.connect(domid, privileged, {
      send: (m) => {
        // Behind messages still held back it waits its turn, as on a ring or a socket.
        if (this.holding || this.heldBack.length > 0) {
          this.heldBack.push(m);
          return false;
        }
        this.record(m);
        return true;
      },
      fail: (reason) => {
        this.failed = reason;
      },
      pauseInput: () => {
        this.inputPaused = true;
      },
      resumeInput: () => {
        this.inputPaused = false;
      },
    });
  }

  /** Messages sent and held back, not yet delivered. */
  get undelivered(): number {
    return this.heldBack.length;
  }

  /** Bytes of the messages held back (headers included). */
  get undeliveredBytes(): number {
    let n = 0;
    for (const m of this.heldBack) n += m.length;
    return n;
  }

  /**
   * Delivers the oldest `n` held-back messages (by default until none is left, those the
   * daemon sends meanwhile included), as a peer reading its ring; the daemon hears of each
   * delivery at once.
   */
  deliver(n = Infinity): void {
    for (let i = 0; i < n; i++) {
      const m = this.heldBack.shift();
      if (m === undefined) return;
      this.record(m);
      this.conn.delivered();
    }
  }

  private record(m: Uint8Array): void {
    const h = readHeader(m, 0, { type: 0, reqId: 0, txId: 0, len: 0 } as XsHeader);
    this.received.push({ type: h.type, reqId: h.reqId, txId: h.txId, payload: show(m.subarray(XS_HEADER_BYTES)) });
  }

  /**
   * Sends one request (payload given with "|" for NUL, or as bytes) and returns its
   * reply: the payload string, or "E:<errno>" for an ERROR reply.
   */
  req(type: number, payload: string | Uint8Array, txId = 0): string {
    const r = this.send(type, payload, txId);
    return r.type === XS_ERROR ? `E:${r.payload.replace(/\|$/, '')}` : r.payload;
  }

  /** Sends one request and returns the reply message itself. */
  send(type: number, payload: string | Uint8Array, txId = 0): Sent {
    const reqId = this.nextReqId++;
    const before = this.received.length;
    this.raw(encodeMessage(type, reqId, txId, typeof payload === 'string' ? bytes(payload) : payload));
    const reply = this.received.slice(before).find((m) => m.type !== XS_WATCH_EVENT && m.reqId === reqId);
    if (reply === undefined) throw new Error(`no reply to request ${reqId} (type ${type})`);
    return reply;
  }

  /** Raw bytes into the connection, as a stream would deliver them. */
  raw(b: Uint8Array): void {
    this.conn.receive(b);
  }

  /** Watch events received so far ("path|token|"), and forgets them. */
  events(): string[] {
    const out = this.received.filter((m) => m.type === XS_WATCH_EVENT).map((m) => m.payload);
    this.received.length = 0;
    return out;
  }

  close(): void {
    this.d.disconnect(this.conn);
  }
}

/** A payload string with "|" for NUL as bytes. */
export function bytes(s: string): Uint8Array {
  return latin1(s.replace(/\|/g, '\0'));
}

function show(b: Uint8Array): string {
  return fromLatin1(b).replace(/\0/g, '|');
}

/** A daemon and a dom0 tools client (the socket's view). */
export function xenstored(opts: XenStoredOptions = {}): { d: XenStored; dom0: Client } {
  const d = new XenStored(opts);
  return { d, dom0: new Client(d, 0, true) };
}

/**
 * Introduces domain `domid` (as the toolstack would) and returns a client acting as it.
 * Its home /local/domain/<domid> is made with the given permissions (default: owned by it).
 */
export function guest(d: XenStored, dom0: Client, domid: number, homePerms = `n${domid}`): Client {
  expectOk(dom0.req(8 /* INTRODUCE */, `${domid}|${1000 + domid}|${domid + 10}|`));
  expectOk(dom0.req(12 /* MKDIR */, `/local/domain/${domid}|`));
  expectOk(dom0.req(14 /* SET_PERMS */, `/local/domain/${domid}|${homePerms.split(' ').join('|')}|`));
  return new Client(d, domid, false);
}

function expectOk(r: string): void {
  if (r !== 'OK|') throw new Error(`setup step failed: ${r}`);
}
