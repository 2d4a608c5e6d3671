// xenstored: the store, the domains it knows, and its connections; each whole message a
// connection receives is checked (type, privilege, transaction) and dispatched to its
// handler, and the reply — the handler's payload, or ERROR with an errno name — goes back
// with the request's type, req_id and tx_id. Watch events are delivered from here.
// dom0/xenstore layer: no host I/O; carriers plug in through XsTransport.

import { type Caller, accessTo } from './access.ts';
import { XsConnection, type XsMessageSink, type XsTransport } from './connection.ts';
import { DEFAULT_QUOTAS, XsDomains, type XsQuotas } from './domains.ts';
import { HANDLERS, XS_FLAG_NOTID, XS_FLAG_PRIV, type XsRequest } from './handlers.ts';
import { KnownDomains } from './known-domains.ts';
import { childPath, isChildOrSelf, isSpecial, parentOf, INTRODUCE_DOMAIN, RELEASE_DOMAIN } from './paths.ts';
import { removeSubtree } from './ops-nodes.ts';
import { type NodePerms, XS_PERM_READ, permForCaller, withoutDomain } from './perms.ts';
import { XsStore, type XsNode, nodeRecordBytes } from './store.ts';
import { DirectDb, type NodeDb, type PendingEvent, type Transaction } from './transaction.ts';
import {
  XENSTORE_PAYLOAD_MAX, XS_ERROR, XS_TYPE_LIMIT, XS_WATCH_EVENT, type XsErrno, type XsHeader, encodeMessage, latin1,
  nulTerminated,
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
}

export interface ControlHooks {
  log?(on: boolean): void;
  logfile?(path: string): void;
  print?(text: string): void;
}

const ROOT_PERMS: NodePerms = Object.freeze({ ids: [0], perms: [0] });

export class XenStored implements XsMessageSink {
  readonly store = new XsStore(ROOT_PERMS);
  readonly domains = new XsDomains();
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

  constructor(opts: XenStoredOptions = {}) {
    this.quotas = { ...DEFAULT_QUOTAS, ...opts.quotas };
    this.extraExists = opts.domainExists;
    this.trace = opts.trace;
    this.controlHooks = opts.controlHooks ?? {};
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

  /** The client went away (or was dropped): its watches and transactions go with it. */
  disconnect(conn: XsConnection): void {
    if (conn.closed) return;
    conn.closed = true;
    this.dropWatches(conn);
    conn.transactions.clear();
    const i = this.connections.indexOf(conn);
    if (i >= 0) this.connections.splice(i, 1);
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
    this.trace?.(conn, 'in', hdr, payload);
    const type = hdr.type;
    const reqId = hdr.reqId;
    const txId = hdr.txId;
    const h = type < XS_TYPE_LIMIT ? HANDLERS[type] : undefined;
    if (h === undefined) return this.sendError(conn, reqId, txId, type, 'ENOSYS');
    if ((h.flags & XS_FLAG_PRIV) !== 0 && !conn.privileged) return this.sendError(conn, reqId, txId, type, 'EACCES');
    let db: NodeDb = this.direct;
    let tx: Transaction | undefined;
    if ((h.flags & XS_FLAG_NOTID) === 0 && txId !== 0) {
      tx = conn.transactions.get(txId);
      if (tx === undefined) return this.sendError(conn, reqId, txId, type, 'ENOENT');
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
    if (typeof result === 'string') return this.sendError(conn, reqId, txId, type, result);
    this.sendReply(conn, type, reqId, txId, result);
    if (h.after !== undefined) h.after(req);
  }

  sendReply(conn: XsConnection, type: number, reqId: number, txId: number, payload: Uint8Array): void {
    if (payload.length > XENSTORE_PAYLOAD_MAX) return this.sendError(conn, reqId, txId, type, 'E2BIG');
    this.send(conn, type, reqId, txId, payload);
  }

  sendError(conn: XsConnection, reqId: number, txId: number, _type: number, err: XsErrno): void {
    this.send(conn, XS_ERROR, reqId, txId, nulTerminated(err));
  }

  private send(conn: XsConnection, type: number, reqId: number, txId: number, payload: Uint8Array): void {
    if (conn.closed) return;
    if (this.trace !== undefined) this.trace(conn, 'out', { type, reqId, txId, len: payload.length }, payload);
    conn.transport.send(encodeMessage(type, reqId, txId, payload));
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
        this.sendEvent(c, name, w.token, w.relativeTo);
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

  /** One WATCH_EVENT: `name` (relative to the watch's domain path if it was set relative) and the token. */
  sendEvent(c: XsConnection, name: string, token: string, relativeTo: string | null): void {
    let path = name;
    if (relativeTo !== null && !isSpecial(name) && name.startsWith(relativeTo)) {
      path = name.slice(relativeTo.length);
      if (path.charCodeAt(0) === 0x2f) path = path.slice(1);
    }
    this.send(c, XS_WATCH_EVENT, 0, 0, latin1(`${path}\0${token}\0`));
  }

  /** Removes all of a connection's watches, and their count from its domain. */
  dropWatches(conn: XsConnection): void {
    this.domains.get(conn.domid).watches -= conn.watches.length;
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
   * Store memory a domain uses, as 4.17 counts it: each node it owns (record and path),
   * each watch it holds (path and token).
   */
  memoryUsed(domid: number): number {
    let bytes = 0;
    for (const node of this.store.walk()) if (node.perms.ids[0] === domid) bytes += nodeRecordBytes(node) + node.name.length;
    for (const c of this.connections) if (c.domid === domid) for (const w of c.watches) bytes += w.name.length + w.token.length;
    return bytes;
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
