// A raw xs_wire client for tests: frames requests as xsd_sockmsg header + payload over
// any byte stream (a net.Socket to a xenstored socket, or a child process's stdio),
// matches replies to requests by req_id, and keeps watch events apart in arrival order.
// Test support only: imported by test suites, never by simulator code.

import { connect } from 'node:net';
import type { Readable, Writable } from 'node:stream';
import { XS_GET_DOMAIN_PATH, XS_WATCH_EVENT, XSD_SOCKMSG } from '../../rings/xenstore.ts';

const HEADER = XSD_SOCKMSG.size;

/** One message from the server: a reply or a watch event. */
export interface XsMessage {
  readonly type: number;
  readonly reqId: number;
  readonly txId: number;
  readonly payload: Buffer;
}

/** Raised for requests outstanding when the server closes the connection, or sent after. */
export class XsConnectionClosed extends Error {
  constructor(what: string) {
    super(`xenstore connection closed (${what})`);
    this.name = 'XsConnectionClosed';
  }
}

/**
 * A payload: bytes as they are, or strings joined with NULs — `['path', '']` is
 * "path\0", `['path', 'value']` is "path\0value" (XS_WRITE's form, no trailing NUL).
 */
export type XsPayload = Uint8Array | readonly string[];

/** The bytes of a payload. */
export function xsPayload(p: XsPayload): Buffer {
  return p instanceof Uint8Array ? Buffer.from(p) : Buffer.from(p.join('\0'), 'utf8');
}

/** A whole message: header {type, req_id, tx_id, len} as little-endian u32s, then the payload. */
export function xsFrame(type: number, reqId: number, txId: number, payload: Uint8Array, len = payload.length): Buffer {
  const out = Buffer.alloc(HEADER + payload.length);
  out.writeUInt32LE(type >>> 0, XSD_SOCKMSG.fields.type.offset);
  out.writeUInt32LE(reqId >>> 0, XSD_SOCKMSG.fields.req_id.offset);
  out.writeUInt32LE(txId >>> 0, XSD_SOCKMSG.fields.tx_id.offset);
  out.writeUInt32LE(len >>> 0, XSD_SOCKMSG.fields.len.offset);
  out.set(payload, HEADER);
  return out;
}

interface Waiter {
  resolve(m: XsMessage): void;
  reject(e: Error): void;
}

/** Default failure guard for every wait: a server that never answers fails the test, slowly. */
export const XS_WAIT_MS = 10_000;

export class XsWireClient {
  /** Watch events, in arrival order. Tests may read and splice this array. */
  readonly events: XsMessage[] = [];
  /** Replies whose req_id no request of this client is waiting for (e.g. answers to raw bytes). */
  readonly unsolicited: XsMessage[] = [];
  private readonly waiting = new Map<number, Waiter>();
  private eventWaiters: { n: number; resolve(): void; reject(e: Error): void }[] = [];
  private closeWaiters: (() => void)[] = [];
  private inbox: Buffer = Buffer.alloc(0);
  private nextReqId = 1;
  private closedBy: string | null = null;

  /**
   * `input` carries the server's bytes, `output` takes ours; for a socket both are the
   * socket. `label` names the connection in error messages.
   */
  constructor(
    private readonly input: Readable,
    private readonly output: Writable,
    readonly label: string,
  ) {
    input.on('data', (chunk: Buffer) => this.receive(chunk));
    input.on('end', () => this.markClosed('end of stream'));
    input.on('close', () => this.markClosed('stream closed'));
    input.on('error', (e: Error) => this.markClosed(e.message));
    // Writing to a peer that has gone raises EPIPE here; the read side reports the close.
    if (output !== (input as unknown)) output.on('error', () => {});
  }

  /** Whether the server has closed the connection (or it failed). */
  get closed(): boolean {
    return this.closedBy !== null;
  }

  /** Resolves once the connection is closed, whoever closed it. */
  whenClosed(): Promise<void> {
    if (this.closed) return Promise.resolve();
    return new Promise((resolve) => this.closeWaiters.push(resolve));
  }

  /**
   * Sends a request with a fresh req_id and resolves with the reply carrying that req_id.
   * Rejects with XsConnectionClosed if the connection closes first, or after `ms`.
   */
  send(type: number, txId: number, payload: XsPayload, ms = XS_WAIT_MS): Promise<XsMessage> {
    const reqId = this.nextReqId++;
    const reply = this.replyTo(reqId, ms);
    this.sendRaw(xsFrame(type, reqId, txId, xsPayload(payload)));
    return reply;
  }

  /** Writes bytes as they are: for malformed messages. Ignored once closed. */
  sendRaw(bytes: Uint8Array): void {
    if (!this.closed) this.output.write(bytes);
  }

  /** A req_id that `send` will never use, for raw messages that want a reply. */
  reserveReqId(): number {
    return this.nextReqId++;
  }

  /** Resolves with the reply carrying `reqId` (taken from `unsolicited` if it came already). */
  replyTo(reqId: number, ms = XS_WAIT_MS): Promise<XsMessage> {
    const i = this.unsolicited.findIndex((m) => m.reqId === reqId);
    if (i >= 0) return Promise.resolve(this.unsolicited.splice(i, 1)[0]!);
    if (this.closed) return Promise.reject(new XsConnectionClosed(`${this.label}: ${this.closedBy}`));
    return new Promise<XsMessage>((resolve, reject) => {
      const timer = setTimeout(() => {
        this.waiting.delete(reqId);
        reject(new Error(`${this.label}: no reply to req_id ${reqId} within ${ms} ms`));
      }, ms);
      this.waiting.set(reqId, {
        resolve: (m) => (clearTimeout(timer), resolve(m)),
        reject: (e) => (clearTimeout(timer), reject(e)),
      });
    });
  }

  /** Resolves once at least `n` events are in `events`. */
  waitForEvents(n: number, ms = XS_WAIT_MS): Promise<void> {
    if (this.events.length >= n) return Promise.resolve();
    if (this.closed) return Promise.reject(new XsConnectionClosed(`${this.label}: ${this.closedBy}`));
    return new Promise<void>((resolve, reject) => {
      const timer = setTimeout(() => {
        this.eventWaiters = this.eventWaiters.filter((w) => w.resolve !== done);
        reject(new Error(`${this.label}: ${this.events.length} watch events, not ${n}, within ${ms} ms`));
      }, ms);
      const done = (): void => (clearTimeout(timer), resolve());
      this.eventWaiters.push({ n, resolve: done, reject: (e) => (clearTimeout(timer), reject(e)) });
    });
  }

  /**
   * Resolves once every message the server sent before now has arrived: the server
   * answers in order on one connection, so the reply to a cheap request (GET_DOMAIN_PATH
   * of dom0, which succeeds for anyone and changes nothing) comes after them all.
   */
  async drain(ms = XS_WAIT_MS): Promise<void> {
    await this.send(XS_GET_DOMAIN_PATH, 0, ['0', ''], ms);
  }

  /** Ends our side of the stream and stops reading; outstanding requests are rejected. */
  close(): void {
    if (this.closed) return;
    this.output.end();
    this.markClosed('closed by the client');
  }

  private receive(chunk: Buffer): void {
    this.inbox = this.inbox.length === 0 ? chunk : Buffer.concat([this.inbox, chunk]);
    while (this.inbox.length >= HEADER) {
      const len = this.inbox.readUInt32LE(XSD_SOCKMSG.fields.len.offset);
      if (this.inbox.length < HEADER + len) break;
      const m: XsMessage = {
        type: this.inbox.readUInt32LE(XSD_SOCKMSG.fields.type.offset),
        reqId: this.inbox.readUInt32LE(XSD_SOCKMSG.fields.req_id.offset),
        txId: this.inbox.readUInt32LE(XSD_SOCKMSG.fields.tx_id.offset),
        payload: Buffer.from(this.inbox.subarray(HEADER, HEADER + len)),
      };
      this.inbox = this.inbox.subarray(HEADER + len);
      this.dispatch(m);
    }
  }

  private dispatch(m: XsMessage): void {
    if (m.type === XS_WATCH_EVENT) {
      this.events.push(m);
      const ready = this.eventWaiters.filter((w) => this.events.length >= w.n);
      this.eventWaiters = this.eventWaiters.filter((w) => this.events.length < w.n);
      for (const w of ready) w.resolve();
      return;
    }
    const w = this.waiting.get(m.reqId);
    if (w) {
      this.waiting.delete(m.reqId);
      w.resolve(m);
    } else {
      this.unsolicited.push(m);
    }
  }

  private markClosed(why: string): void {
    if (this.closedBy !== null) return;
    this.closedBy = why;
    const err = new XsConnectionClosed(`${this.label}: ${why}`);
    for (const w of this.waiting.values()) w.reject(err);
    this.waiting.clear();
    for (const w of this.eventWaiters) w.reject(err);
    this.eventWaiters = [];
    for (const r of this.closeWaiters) r();
    this.closeWaiters = [];
    this.input.destroy();
    if (this.output !== (this.input as unknown)) this.output.destroy();
  }
}

/** A client on the xenstored socket at `path`; rejects if nobody listens there. */
export function connectXs(path: string, label: string): Promise<XsWireClient> {
  return new Promise((resolve, reject) => {
    const s = connect(path);
    s.once('error', reject);
    s.once('connect', () => {
      s.off('error', reject);
      resolve(new XsWireClient(s, s, label));
    });
  });
}

/** Sends a request that must be answered "OK" (a toolstack's step); rejects otherwise. */
export async function sendExpectingOk(c: XsWireClient, type: number, payload: XsPayload, what: string): Promise<void> {
  const r = await c.send(type, 0, payload);
  const text = r.payload.toString('latin1');
  if (text !== 'OK\0') throw new Error(`${c.label}: ${what} answered ${JSON.stringify(text)}`);
}
