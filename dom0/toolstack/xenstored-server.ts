// `xensim xenstored`: xensim's xenstored serving Unix sockets on the host, without any
// simulated machine — for clients such as Debian's xenstore-utils and Xen's
// test-xenstore. The main socket's clients are dom0's tools (privileged, as in Xen);
// each domain socket's clients act as that unprivileged domain. A message counts as
// delivered once the socket has handed it to the kernel, as 4.17 counts a write to the
// client's fd. Host side (dom0/toolstack): this is where host sockets meet the store,
// which itself does no I/O.

import { lstatSync, unlinkSync } from 'node:fs';
import { createServer, type Server, type Socket } from 'node:net';
import pino, { type Logger } from 'pino';
import type { XsConnection } from '../xenstore/connection.ts';
import { XS_TYPE_NAMES, XS_WATCH_EVENT, showPayload, type XsHeader } from '../xenstore/wire.ts';
import { XenStored, type TraceDirection } from '../xenstore/xenstored.ts';

/** A client whose unread output passes this stops being read until it catches up. */
const PAUSE_OUTPUT_BYTES = 1 << 20;
/** A client that lets this much output pile up (watch events it never reads) is dropped. */
const DROP_OUTPUT_BYTES = 64 << 20;
/** DOMID_FIRST_RESERVED: real domains are numbered below it. */
const DOMID_FIRST_RESERVED = 0x7ff0;

export interface DomainSocket {
  readonly domid: number;
  readonly path: string;
}

export interface XenstoredServerOptions {
  readonly socket: string;
  readonly domainSockets: readonly DomainSocket[];
  /** A file for the pino trace of every request and reply. */
  readonly trace?: string;
}

export interface XenstoredServer {
  readonly daemon: XenStored;
  /** Stops listening, drops the clients, removes the sockets. */
  close(): Promise<void>;
}

/** Parses a --domain-socket value "DOMID:PATH"; throws with the reason. */
export function parseDomainSocket(value: string): DomainSocket {
  const colon = value.indexOf(':');
  if (colon <= 0 || colon === value.length - 1) throw new Error(`--domain-socket "${value}": expected DOMID:PATH`);
  const idText = value.slice(0, colon);
  const domid = Number(idText);
  if (!/^[0-9]+$/.test(idText) || domid < 1 || domid >= DOMID_FIRST_RESERVED) {
    throw new Error(`--domain-socket "${value}": the domid must be an integer from 1 to ${DOMID_FIRST_RESERVED - 1}`);
  }
  return { domid, path: value.slice(colon + 1) };
}

/** Removes a stale socket at `path`; refuses to touch anything that is not a socket. */
function clearSocketPath(path: string): void {
  let st;
  try {
    st = lstatSync(path);
  } catch {
    return;
  }
  if (!st.isSocket()) throw new Error(`${path} exists and is not a socket; not replacing it`);
  unlinkSync(path);
}

function tracer(file: string): { log: Logger; trace: (c: XsConnection, dir: TraceDirection, h: XsHeader, p: Uint8Array) => void } {
  const log = pino({ base: null }, pino.destination({ dest: file, sync: true }));
  return {
    log,
    trace(c, dir, h, p) {
      log.info({
        conn: c.id, dom: c.domid, dir, type: XS_TYPE_NAMES[h.type] ?? h.type, req_id: h.reqId, tx_id: h.txId,
        len: h.len, payload: showPayload(p),
      }, dir === 'in' ? 'request' : h.type === XS_WATCH_EVENT ? 'event' : 'reply');
    },
  };
}

/** Starts serving; resolves once every socket listens. */
export async function startXenstoredServer(opts: XenstoredServerOptions): Promise<XenstoredServer> {
  // The trace: --trace FILE, or CONTROL logfile; CONTROL log on|off switches it. When it
  // is off the daemon has no trace hook at all, so untraced messages cost nothing extra.
  let t = opts.trace === undefined ? undefined : tracer(opts.trace);
  let tracing = true;
  const domainIds = new Set(opts.domainSockets.map((s) => s.domid));
  const daemon = new XenStored({
    trace: t?.trace,
    domainExists: (id) => domainIds.has(id),
    memoryReport: (dom, text) => t?.log.warn({ dom }, text),
    controlHooks: {
      log: (on) => {
        tracing = on;
        daemon.trace = tracing ? t?.trace : undefined;
      },
      logfile: (path) => {
        t?.log.flush();
        t = tracer(path);
        daemon.trace = tracing ? t.trace : undefined;
      },
      print: (text) => t?.log.info({ text }, 'control print'),
    },
  });
  for (const id of [...domainIds].sort((a, b) => a - b)) {
    const dom = daemon.domains.get(id);
    dom.introduced = true;
    dom.ringGfn = 'socket';
    daemon.known.add(id, daemon.store.generation);
  }
  const sockets = new Set<Socket>();
  const serve = (domid: number, privileged: boolean) => (sock: Socket): void => {
    sockets.add(sock);
    // The socket is not read while its unread output piles up, nor while a quota holds
    // its connection (the daemon keeps what was read meanwhile).
    let quotaHeld = false;
    const reading = (): void => {
      if (quotaHeld || sock.writableLength > PAUSE_OUTPUT_BYTES) sock.pause();
      else sock.resume();
    };
    const written = (err?: Error | null): void => {
      if (!err) conn.delivered();
    };
    const conn = daemon.connect(domid, privileged, {
      send(message) {
        if (sock.destroyed) return true;
        sock.write(message, written);
        if (sock.writableLength > DROP_OUTPUT_BYTES) {
          daemon.disconnect(conn);
          sock.destroy();
        } else if (sock.writableLength > PAUSE_OUTPUT_BYTES) {
          sock.pause();
        }
        return false;
      },
      fail(reason) {
        t?.log.warn({ conn: conn.id, dom: domid, reason }, 'connection dropped');
        sock.destroy();
      },
      pauseInput() {
        quotaHeld = true;
        sock.pause();
      },
      resumeInput() {
        quotaHeld = false;
        reading();
      },
    });
    sock.on('data', (b: Buffer) => conn.receive(b));
    sock.on('drain', reading);
    sock.on('error', () => {}); // a vanished client; 'close' follows
    sock.on('close', () => {
      sockets.delete(sock);
      daemon.disconnect(conn);
    });
  };
  const servers: Server[] = [];
  const paths: string[] = [];
  const listen = (path: string, domid: number, privileged: boolean): Promise<void> => {
    clearSocketPath(path);
    const server = createServer(serve(domid, privileged));
    servers.push(server);
    return new Promise((resolve, reject) => {
      server.once('error', reject);
      server.listen(path, () => {
        server.off('error', reject);
        paths.push(path);
        resolve();
      });
    });
  };
  const close = async (): Promise<void> => {
    for (const s of sockets) s.destroy();
    await Promise.all(servers.map((s) => new Promise<void>((r) => s.close(() => r()))));
    for (const p of paths) {
      try {
        unlinkSync(p);
      } catch {
        // already gone
      }
    }
    t?.log.flush();
  };
  try {
    await listen(opts.socket, 0, true);
    for (const d of opts.domainSockets) await listen(d.path, d.domid, false);
  } catch (e) {
    await close();
    throw e;
  }
  return { daemon, close };
}
