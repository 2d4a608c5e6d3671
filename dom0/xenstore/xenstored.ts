// xenstored: the store, the domains it knows, and its connections; each whole message a
// connection receives is checked (type, privilege, transaction) and dispatched to its
// handler, and the reply — the handler's payload, or ERROR with an errno name — goes back
// with the request's type, req_id and tx_id. Watch events are delivered from here. Output
// the carrier has not delivered yet is kept account of here: it is memory charged to the
// receiving domain, and keeps the request it answers (or whose watch event it is)
// outstanding; an unprivileged connection over its outstanding or memory quota is not
// read from until it is back under (xenstored_core.c's domain_can_read()).
// dom0/xenstore layer: no host I/O; carriers plug in through XsTransport.

import { type Caller, accessTo } from './access.ts';
import {
  type OutKind, type PendingRequest, type Undelivered, XsConnection, type XsMessageSink, type XsTransport, watchMemory,
} from './connection.ts';
import { DEFAULT_QUOTAS, XsDomains, type XsQuotas } from './domains.ts';
import { HANDLERS, XS_FLAG_NOTID, XS_FLAG_PRIV, type XsRequest } from './handlers.ts';
import { KnownDomains } from './known-domains.ts';
import { childPath, isChildOrSelf, isSpecial, parentOf, INTRODUCE_DOMAIN, RELEASE_DOMAIN } from './paths.ts';
import { removeSubtree } from './ops-nodes.ts';
import { type NodePerms, XS_PERM_READ, permForCaller, withoutDomain } from './perms.ts';
import { type ChargeMemory, XsStore, type XsNode } from './store.ts';
import { DirectDb, type NodeDb, type PendingEvent, type Transaction } from './transaction.ts';
import {
  XENSTORE_PAYLOAD_MAX, XS_ERROR, XS_HEADER_BYTES, XS_TYPE_LIMIT, XS_WATCH_EVENT, type XsErrno, type XsHeader,
  encodeMessage, latin1, nulTerminated,
} from './wire.ts';

/** Which way a traced message went. */
export type TraceDirection = 'in' | 'out';

export interface XenStoredOptions {
  /** Limits for unprivileged domains (defaults: xenstored 4.17's). */
  quotas?: Partial<XsQuotas>;
  /**
   * Whether a domain exists (xc_domain_getinfo). Without a hypervisor to ask, dom0 and
   * the introduced domains exist, and whatever this adds.
   */
  domainExists?: (domid: number) => boolean;
  /** Called for every message received and sent (the --trace log). */
  trace?: (conn: XsConnection, dir: TraceDirection, hdr: XsHeader, payload: Uint8Array) => void;
  /** What CONTROL's log, logfile, print and memreport do where the daemon runs. */
  controlHooks?: ControlHooks;
  /**
   * Told when a domain's memory crosses the soft quota (either way) or first meets the
   * hard one, with the text 4.17 sends to syslog.
   */
  memoryReport?: (domid: number, text: string) => void;
}

export interface ControlHooks {
  log?(on: boolean): void;
  logfile?(path: string): void;
  print?(text: string): void;
}

const ROOT_PERMS: NodePerms = Object.freeze({ ids: [0], perms: [0] });

/**
 * DEFAULT_BUFFER_SIZE: a reply of at most this many payload bytes fits the request's own
 * buffer in 4.17 and is sent without a memory quota check (so that an error can always go out).
 */
const UNCHECKED_REPLY_BYTES = 16;

export class XenStored implements XsMessageSink {
  readonly domains = new XsDomains();
  /** Charges memory to a domain (negative: frees it); no check. */
  readonly chargeMemory: ChargeMemory = (domid, bytes) => {
    this.domains.get(domid).memory += bytes;
  };
  readonly store = new XsStore(ROOT_PERMS, this.chargeMemory);
  /** The domains xenstored holds a record of, and since which generation. */
  readonly known = new KnownDomains();
  /** Live connections, oldest first: watch events go to them in this order. */
  readonly connections: XsConnection[] = [];
  readonly quotas: XsQuotas;
  /** Permissions of the special watch nodes, settable by SET_PERMS. */
  readonly specialPerms = new Map<string, NodePerms>([[INTRODUCE_DOMAIN, ROOT_PERMS], [RELEASE_DOMAIN, ROOT_PERMS]]);
  private readonly direct: DirectDb;
  private nextConnectionId = 0;
  private readonly extraExists: ((domid: number) => boolean) | undefined;
  /** The trace of every message in and out; set or cleared at any time (CONTROL log). */
  trace: XenStoredOptions['trace'];
  readonly controlHooks: ControlHooks;
  private readonly memoryReport: XenStoredOptions['memoryReport'];
  /**
   * While an unprivileged request is handled: its connection, and (made when its first
   * watch event stays undelivered) what keeps it outstanding.
   */
  private requester: XsConnection | null = null;
  private pending: PendingRequest | null = null;
  /** Connections a quota holds; each is resumed once the quota allows. */
  private readonly held = new Set<XsConnection>();
  /** Messages being handled (held connections resume only between messages). */
  private handling = 0;
  private resuming = false;

  constructor(opts: XenStoredOptions = {}) {
    this.quotas = { ...DEFAULT_QUOTAS, ...opts.quotas };
    this.extraExists = opts.domainExists;
    this.trace = opts.trace;
    this.controlHooks = opts.controlHooks ?? {};
    this.memoryReport = opts.memoryReport;
    this.direct = new DirectDb(this.store, this.known);
    this.domains.addNodes(0, 1); // the root
    const dom0 = this.domains.get(0);
    dom0.introduced = true;
    // setup_structure(): /tool/xenstored, as the C daemon makes at start.
    for (const name of ['/tool', '/tool/xenstored']) this.createNode(this.direct, name, new Uint8Array(0), ROOT_PERMS);
  }

  /** A new client acting as `domid`; privileged for dom0's tools. */
  connect(domid: number, privileged: boolean, transport: XsTransport): XsConnection {
    const conn = new XsConnection(this, this.nextConnectionId++, domid, privileged, transport);
    this.connections.push(conn);
    return conn;
  }

  /**
   * The client went away (or was dropped): its watches, transactions, waiting input and
   * undelivered output go with it (the requests of others whose events these were are
   * outstanding no more).
   */
  disconnect(conn: XsConnection): void {
    if (conn.closed) return;
    conn.closed = true;
    this.dropWatches(conn);
    this.endTransactions(conn);
    conn.dropInput();
    this.held.delete(conn);
    for (let out = conn.undelivered.shift(); out !== undefined; out = conn.undelivered.shift()) this.settle(conn, out);
    this.domains.get(conn.domid).outstanding -= conn.outstanding;
    conn.outstanding = 0;
    const i = this.connections.indexOf(conn);
    if (i >= 0) this.connections.splice(i, 1);
    if (this.handling === 0 && this.held.size > 0) this.resumeHeld();
  }

  /** Ends every transaction of the connection, freeing their copies. */
  endTransactions(conn: XsConnection): void {
    for (const tx of conn.transactions.values()) tx.release();
    conn.transactions.clear();
  }

  protocolError(conn: XsConnection, reason: string): void {
    this.disconnect(conn);
    conn.transport.fail(reason);
  }

  /** Whether domain `domid` exists (for permission owners and SET_TARGET). */
  domainExists(domid: number): boolean {
    return domid === 0 || this.domains.isIntroduced(domid) || (this.extraExists?.(domid) ?? false);
  }

  /** The caller a connection acts as. */
  callerOf(conn: XsConnection): Caller {
    return { domid: conn.domid, privileged: conn.privileged, target: this.domains.find(conn.domid)?.target ?? -1, known: this.known };
  }

  handleMessage(conn: XsConnection, hdr: XsHeader, payload: Uint8Array): void {
    this.handling++;
    if (!conn.privileged) this.requester = conn;
    this.dispatch(conn, hdr, payload);
    this.requester = null;
    this.pending = null;
    if (--this.handling === 0 && this.held.size > 0) this.resumeHeld();
  }

  private dispatch(conn: XsConnection, hdr: XsHeader, payload: Uint8Array): void {
    this.trace?.(conn, 'in', hdr, payload);
    const type = hdr.type;
    const reqId = hdr.reqId;
    const txId = hdr.txId;
    const h = type < XS_TYPE_LIMIT ? HANDLERS[type] : undefined;
    if (h === undefined) return this.replyError(conn, reqId, txId, 'ENOSYS');
    if ((h.flags & XS_FLAG_PRIV) !== 0 && !conn.privileged) return this.replyError(conn, reqId, txId, 'EACCES');
    let db: NodeDb = this.direct;
    let tx: Transaction | undefined;
    if ((h.flags & XS_FLAG_NOTID) === 0 && txId !== 0) {
      tx = conn.transactions.get(txId);
      if (tx === undefined) return this.replyError(conn, reqId, txId, 'ENOENT');
      db = tx;
    }
    const req: XsRequest = { d: this, conn, caller: this.callerOf(conn), db, txId, payload };
    let result = h.fn(req);
    if (conn.closed) return;
    if (tx?.exceeded === true) {
      // The request touched more nodes than the transaction may: it fails, and so will the commit.
      tx.exceeded = false;
      tx.failed = true;
      result = 'ENOSPC';
    }
    if (typeof result === 'string') return this.replyError(conn, reqId, txId, result);
    this.reply(conn, type, reqId, txId, result);
    if (h.after !== undefined) h.after(req);
  }

  /**
   * send_reply(): the reply to the request being handled. Over XENSTORE_PAYLOAD_MAX it is
   * E2BIG; over 16 bytes to an unprivileged domain it needs room in its memory quota, else
   * it is ENOMEM.
   */
  private reply(conn: XsConnection, type: number, reqId: number, txId: number, payload: Uint8Array): void {
    if (payload.length > XENSTORE_PAYLOAD_MAX) return this.replyError(conn, reqId, txId, 'E2BIG');
    if (!conn.privileged && payload.length > UNCHECKED_REPLY_BYTES &&
        !this.memoryAllows(conn.domid, payload.length + XS_HEADER_BYTES)) {
      return this.replyError(conn, reqId, txId, 'ENOMEM');
    }
    this.send(conn, type, reqId, txId, payload, conn.privileged ? 'other' : 'reply');
  }

  private replyError(conn: XsConnection, reqId: number, txId: number, err: XsErrno): void {
    this.send(conn, XS_ERROR, reqId, txId, nulTerminated(err), conn.privileged ? 'other' : 'reply');
  }

  /**
   * Hands a message to the carrier. One it does not deliver at once is charged to the
   * receiving domain's memory until it is; a reply to an unprivileged request is
   * outstanding until then (and until the watch events the request caused are
   * delivered); a watch event a request caused (`caused`) keeps that request outstanding.
   */
  private send(conn: XsConnection, type: number, reqId: number, txId: number, payload: Uint8Array, kind: OutKind, caused = false): void {
    if (conn.closed) return;
    if (this.trace !== undefined) this.trace(conn, 'out', { type, reqId, txId, len: payload.length }, payload);
    const delivered = conn.transport.send(encodeMessage(type, reqId, txId, payload));
    if (conn.closed) return; // the carrier gave up on the client
    let request: PendingRequest | null = null;
    if (kind === 'reply') {
      const p = this.pending;
      if (p !== null && p.events > 0) request = p;
      if (delivered && request === null) return;
      this.outstandingAdd(conn, 1);
      if (request !== null) request.reply = !delivered;
      if (delivered) return;
    } else if (delivered) {
      return;
    } else if (caused && this.requester !== null) {
      request = this.pending ??= { conn: this.requester, events: 0, reply: false };
      request.events++;
    }
    const bytes = payload.length + XS_HEADER_BYTES;
    conn.undelivered.push({ kind, bytes, request, message: kind === 'event' ? payload : null });
    this.domains.get(conn.domid).memory += bytes;
  }

  /** The carrier delivered the connection's oldest undelivered message. */
  delivered(conn: XsConnection): void {
    const out = conn.undelivered.shift();
    if (out === undefined) throw new Error(`xenstored: connection ${conn.id} reported a delivery with nothing undelivered`);
    this.settle(conn, out);
    if (this.handling === 0 && this.held.size > 0) this.resumeHeld();
  }

  /** A message is delivered or discarded: its memory is freed, and what it kept outstanding released. */
  private settle(conn: XsConnection, out: Undelivered): void {
    this.domains.get(conn.domid).memory -= out.bytes;
    const r = out.request;
    if (out.kind === 'reply') {
      if (r === null) {
        this.outstandingAdd(conn, -1);
      } else {
        r.reply = false;
        if (r.events === 0) this.outstandingAdd(r.conn, -1);
      }
    } else if (r !== null && --r.events === 0 && !r.reply) {
      this.outstandingAdd(r.conn, -1);
    }
  }

  private outstandingAdd(conn: XsConnection, n: number): void {
    if (conn.closed) return;
    conn.outstanding += n;
    this.domains.get(conn.domid).outstanding += n;
  }

  // ---- quotas ----

  /**
   * domain_chk_quota(): whether `bytes` more for domain `domid` keep it below its memory
   * quota (its own if SET_QUOTA gave it one; 0: none). Dom0 is never limited. Crossing the soft quota is reported either
   * way, meeting the hard one once until a later check finds room again.
   */
  memoryAllows(domid: number, bytes: number): boolean {
    if (domid === 0) return true;
    const dom = this.domains.get(domid);
    const q = dom.quotas ?? this.quotas;
    const after = dom.memory + bytes;
    const overSoft = q.softMemory !== 0 && after >= q.softMemory;
    if (overSoft !== dom.overSoftMemory) {
      dom.overSoftMemory = overSoft;
      this.memoryReport?.(domid, `Domain ${domid} ${overSoft ? 'exceeds' : 'below'} soft memory quota${overSoft ? '' : ' again'}`);
    }
    const overHard = q.memory !== 0 && after >= q.memory;
    if (overHard !== dom.overHardMemory) {
      dom.overHardMemory = overHard;
      this.memoryReport?.(domid, overHard
        ? `Domain ${domid} exceeds hard memory quota, Xenstore interface to domain stalled`
        : `Domain ${domid} below hard memory quota again`);
    }
    return !overHard;
  }

  /** The quotas that bind domain `domid`: its own (SET_QUOTA with its domid), else the global ones. */
  quotasOf(domid: number): XsQuotas {
    return this.domains.get(domid).quotas ?? this.quotas;
  }

  /** domain_can_read(): whether an unprivileged connection is under its outstanding and memory quotas. */
  private readable(conn: XsConnection): boolean {
    const dom = this.domains.get(conn.domid);
    const q = dom.quotas ?? this.quotas;
    return conn.outstanding < q.outstanding && (q.memory === 0 || dom.memory < q.memory);
  }

  /** Whether an unprivileged connection may take its next message; if not, it is resumed once it may. */
  mayRead(conn: XsConnection): boolean {
    if (this.readable(conn)) return true;
    this.held.add(conn);
    return false;
  }

  /** Resumes the held connections the quotas allow again (between messages only). */
  private resumeHeld(): void {
    if (this.resuming) return;
    this.resuming = true;
    for (let progress = true; progress;) {
      progress = false;
      for (const c of [...this.held]) {
        if (!c.closed && !this.readable(c)) continue;
        this.held.delete(c);
        progress = true;
        c.resume();
      }
    }
    this.resuming = false;
  }

  // ---- watch events ----

  /**
   * fire_watches(): a change at `name`. Inside a transaction it is held until commit;
   * otherwise every connection allowed to see it (it can read the node, or its parent)
   * gets an event for each of its watches
   * on `name` or an ancestor (only those exactly on `name` when `exact`). `oldPerms` are
   * the permissions before a SET_PERMS, which also let a watcher see the change.
   */
  fireWatches(db: NodeDb, name: string, exact: boolean, node: XsNode, oldPerms: NodePerms | null = null): void {
    if (db.tx !== null) {
      db.tx.hold(name, exact);
      return;
    }
    this.deliver(name, exact, node, oldPerms, true);
  }


  /** Fires events held by a committed transaction, in order. */
  fireHeld(events: readonly PendingEvent[]): void {
    for (const e of events) this.deliver(e.name, e.exact, e.node, e.oldPerms, e.parentFallback);
  }


  /** A special event (@introduceDomain, @releaseDomain) to every watcher allowed to see it. */
  fireSpecial(name: string): void {
    const perms = this.specialPerms.get(name) ?? ROOT_PERMS;
    for (const c of [...this.connections]) {
      if (!c.privileged && (permForCaller(perms, c.domid, false, this.domains.find(c.domid)?.target ?? -1) & XS_PERM_READ) === 0) continue;
      for (const w of c.watches) if (w.name === name) this.sendEvent(c, name, w.token, w.relativeTo);
    }
  }

  private deliver(name: string, exact: boolean, node: XsNode, oldPerms: NodePerms | null, parentFallback: boolean): void {
    for (const c of [...this.connections]) {
      if (c.watches.length === 0) continue;
      let permitted: boolean | undefined;
      for (const w of c.watches) {
        const hit = exact ? w.name === name : isChildOrSelf(name, w.name);
        if (!hit) continue;
        if (permitted === undefined) permitted = this.watchPermitted(c, name, node, oldPerms, parentFallback);
        if (!permitted) break;
        this.sendEvent(c, name, w.token, w.relativeTo, true);
      }
    }
  }

  /**
   * watch_permitted(): a watcher sees a change if it could read the node before (old
   * permissions) or now, or can read its parent.
   */
  private watchPermitted(c: XsConnection, name: string, node: XsNode, oldPerms: NodePerms | null, parentFallback: boolean): boolean {
    if (c.privileged) return true;
    const caller = this.callerOf(c);
    if (oldPerms !== null && (permForCaller(oldPerms, caller.domid, false, caller.target) & XS_PERM_READ) !== 0) return true;
    if ((accessTo(caller, node) & XS_PERM_READ) !== 0) return true;
    if (!parentFallback) return false;
    const parent = this.store.get(parentOf(name));
    return parent !== undefined && (accessTo(caller, parent) & XS_PERM_READ) !== 0;
  }

  /**
   * send_event(): one WATCH_EVENT, `name` (relative to the watch's domain path if it was
   * set relative) and the token. Not sent: one over XENSTORE_PAYLOAD_MAX; one identical to
   * an event still undelivered on the connection (unless special); one an unprivileged
   * domain has no memory quota left for. `caused`: the change was the handled request's
   * (4.17 links it to the request, which stays outstanding until it is delivered).
   */
  sendEvent(c: XsConnection, name: string, token: string, relativeTo: string | null, caused = false): void {
    let path = name;
    if (relativeTo !== null && !isSpecial(name) && name.startsWith(relativeTo)) {
      path = name.slice(relativeTo.length);
      if (path.charCodeAt(0) === 0x2f) path = path.slice(1);
    }
    const payload = latin1(`${path}\0${token}\0`);
    if (payload.length > XENSTORE_PAYLOAD_MAX) return;
    if (c.undelivered.length > 0 && path.charCodeAt(0) !== 0x40 && c.undelivered.some((o) => sameBytes(o.message, payload))) return;
    if (!c.privileged && !this.memoryAllows(c.domid, payload.length + XS_HEADER_BYTES)) return;
    this.send(c, XS_WATCH_EVENT, 0, 0, payload, 'event', caused);
  }

  /** Removes all of a connection's watches, and their count and memory from its domain. */
  dropWatches(conn: XsConnection): void {
    const dom = this.domains.get(conn.domid);
    dom.watches -= conn.watches.length;
    for (const w of conn.watches) dom.memory -= watchMemory(w.name, w.token);
    conn.watches.length = 0;
  }

  // ---- domains ----

  /** Transactions open on the domain's connections. */
  openTransactions(domid: number): number {
    let n = 0;
    for (const c of this.connections) if (c.domid === domid) n += c.transactions.size;
    return n;
  }

  /**
   * A domain is gone (RELEASE, or its destruction): its connections close, dropping their
   * watches and transactions; the nodes it owns are removed, as rm removes them, and so
   * are its record and its entries in the special nodes' lists; then @releaseDomain fires.
   */
  releaseDomain(domid: number): void {
    for (const c of [...this.connections]) {
      if (c.domid !== domid) continue;
      this.disconnect(c);
      c.transport.fail(`domain ${domid} released`);
    }
    const dom = this.domains.get(domid);
    dom.introduced = false;
    dom.target = -1;
    dom.ringGfn = '';
    dom.shutdown = false;
    this.removeOwnedNodes(domid);
    // Its record goes: entries naming it count on no node written before a new record.
    this.known.remove(domid);
    for (const [name, p] of this.specialPerms) this.specialPerms.set(name, withoutDomain(p, domid));
    this.fireSpecial(RELEASE_DOMAIN);
  }

  /** Removes every subtree whose top node `domid` owns, walking the tree from the root. */
  private removeOwnedNodes(domid: number): void {
    const visit = (name: string): void => {
      if (this.domains.get(domid).nodes <= 0) return;
      const node = this.store.get(name);
      if (node === undefined) return;
      if (name !== '/' && node.perms.ids[0] === domid) {
        removeSubtree(this, this.direct, node);
        return;
      }
      for (const c of [...node.children]) visit(childPath(name, c));
    };
    visit('/');
  }

  // ---- the tree ----

  /**
   * Stores a new node `name` and links it into its parent (which must exist in `db`),
   * counting it for its owner. No checks: callers check first.
   */
  createNode(db: NodeDb, name: string, value: Uint8Array, perms: NodePerms): XsNode {
    const parentName = parentOf(name);
    const parent = db.read(parentName);
    if (parent === undefined) throw new Error(`xenstored: creating ${name} without its parent`);
    const base = name.slice(name.lastIndexOf('/') + 1);
    db.write({ ...parent, children: [...parent.children, base] });
    const node = db.write({ name, value, perms, children: [], generation: -1 });
    this.countNodes(db, perms.ids[0], 1);
    return node;
  }

  /** Adds `n` nodes to `owner`'s count: now, or at commit for a transaction. */
  countNodes(db: NodeDb, owner: number, n: number): void {
    if (db.tx !== null) db.tx.addOwnerDelta(owner, n);
    else this.domains.addNodes(owner, n);
  }

  /** Nodes `domid` owns, as a transaction sees them. */
  nodesOwned(db: NodeDb, domid: number): number {
    return this.domains.get(domid).nodes + (db.tx?.ownerDelta.get(domid) ?? 0);
  }
}

/** Whether an undelivered message is a watch event with exactly `payload`. */
function sameBytes(a: Uint8Array | null, b: Uint8Array): boolean {
  if (a === null || a.length !== b.length) return false;
  for (let i = 0; i < a.length; i++) if (a[i] !== b[i]) return false;
  return true;
}
