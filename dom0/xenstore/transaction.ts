// Transactions (xenstored_transaction.c): a transaction sees the tree as it finds it,
// except for the nodes it has touched, of which it keeps the version it first saw (or
// its own changes). Every node it touches, read or written, present or missing, is
// recorded with the generation it had then; the commit fails with EAGAIN when any of
// them has changed meanwhile, and otherwise applies the changes in one step and fires the
// watch events held back until then. As in 4.17, the transaction's copy of each node it
// holds is charged to the memory of the domain whose transaction it is, until it ends.
// dom0/xenstore layer.

import type { KnownDomains } from './known-domains.ts';
import type { NodePerms } from './perms.ts';
import { type ChargeMemory, NO_GENERATION, type XsNode, type XsStore, nodeRecordBytes } from './store.ts';

/** A watch event a change made; fired at once outside a transaction, at commit inside one. */
export interface PendingEvent {
  readonly name: string;
  /** Only watches set exactly on `name` (a descendant removed with its ancestor). */
  readonly exact: boolean;
  /** The node as it was (removed nodes) or is, for the watchers' read check. */
  readonly node: XsNode;
  /** The permissions before the change, which also let a watcher see it; else null. */
  readonly oldPerms: NodePerms | null;
  /** Whether a watcher that can read the node's parent sees the change too. */
  readonly parentFallback: boolean;
}

/**
 * Where an operation reads and writes nodes: the committed tree itself, or a
 * transaction's view of it.
 */
export interface NodeDb {
  readonly tx: Transaction | null;
  /** The node, or undefined; inside a transaction the read is recorded. */
  read(name: string): XsNode | undefined;
  /**
   * Stores a new version of a node (the caller made it; it is not changed afterwards).
   * `node.generation` is that of the version it was made from, whose permission entries
   * that count for nobody are then marked so for good, as 4.17 writes back the list its
   * read adjusted; or NO_GENERATION for a node, or a list, made afresh: taken as given.
   */
  write(node: XsNode): XsNode;
  remove(name: string): void;
}

/** Outside any transaction: straight to the committed tree. */
export class DirectDb implements NodeDb {
  readonly tx = null;
  constructor(
    private readonly store: XsStore,
    private readonly known: KnownDomains,
  ) {}

  read(name: string): XsNode | undefined {
    return this.store.get(name);
  }

  write(node: XsNode): XsNode {
    return this.store.put(node, node.generation === NO_GENERATION ? node.perms : this.known.permsOf(node));
  }

  /** delete_node_single(): the removal takes a generation (access_node). */
  remove(name: string): void {
    this.store.nextGeneration();
    this.store.delete(name);
  }
}

export class Transaction implements NodeDb {
  readonly tx = this;
  /**
   * Every node touched, in the order first touched, as it was then (null: missing). Its
   * generation then is what the commit compares.
   */
  private readonly seen = new Map<string, XsNode | null>();
  /** The transaction's version of every node it touched: as first seen, or as it changed it (null: missing). */
  private readonly view = new Map<string, XsNode | null>();
  /** The nodes it wrote or removed, to apply at commit. */
  private readonly changed = new Set<string>();
  /** Nodes whose change fires watches at commit, and whether only exact watches. */
  private readonly fires = new Map<string, boolean>();
  /** Nodes gained (or lost, negative) per owning domain, applied at commit. */
  readonly ownerDelta = new Map<number, number>();
  /** Set when a request would touch more nodes than the limit allows (it gets ENOSPC). */
  exceeded = false;
  /**
   * Failed by the transaction node quota, or by a node it could not write (node size,
   * memory): its commit fails (ENOMEM), as 4.17's does.
   */
  failed = false;
  /** Bytes its node copies take, charged to `domid` until release(). */
  private memory = 0;
  /** Bytes of a copy's key besides the node's path: 4.17 keys it "<generation>/<path>". */
  private readonly keyPrefix: number;

  constructor(
    readonly id: number,
    private readonly store: XsStore,
    private readonly known: KnownDomains,
    /** Nodes it may touch (the transaction-nodes quota; Infinity for the privileged). */
    private readonly nodeLimit: number,
    /** The domain whose transaction it is: its copies are charged to it. */
    readonly domid: number,
    private readonly charge: ChargeMemory,
  ) {
    // Starting takes a generation, as 4.17's does: a domain recorded after the start is
    // younger than every node written before it. Copies are keyed by it ("<gen>/<path>");
    // the count is our own, not 4.17's, so only its number of digits matters here.
    this.keyPrefix = String(store.nextGeneration()).length + 1;
  }

  /** The bytes of the key of the transaction's copy of node `name`. */
  keyBytes(name: string): number {
    return this.keyPrefix + name.length;
  }

  /** The memory the transaction's copy of `node` takes (record and key). */
  copyBytes(node: XsNode): number {
    return nodeRecordBytes(node) + this.keyPrefix + node.name.length;
  }

  /** The transaction is over (committed, abandoned, or its connection gone): its copies are freed. */
  release(): void {
    this.account(-this.memory);
  }

  /** The bytes its copies take, counted afresh from the copies it holds (for checks). */
  recountCopies(): number {
    let bytes = 0;
    for (const node of this.view.values()) if (node !== null) bytes += this.copyBytes(node);
    return bytes;
  }

  private account(bytes: number): void {
    if (bytes === 0) return;
    this.memory += bytes;
    this.charge(this.domid, bytes);
  }

  private touch(name: string): XsNode | null {
    const mine = this.view.get(name);
    if (mine !== undefined) return mine;
    const node = this.store.get(name) ?? null;
    if (this.seen.size >= this.nodeLimit) {
      this.exceeded = true;
      return node;
    }
    this.seen.set(name, node);
    this.view.set(name, node);
    // Every existing node a transaction touches is copied into it (4.17's read copy).
    if (node !== null) this.account(this.copyBytes(node));
    return node;
  }

  read(name: string): XsNode | undefined {
    return this.touch(name) ?? undefined;
  }

  /** The transaction's version gets a generation now (a later read judges its entries by it); the commit gives another. */
  write(node: XsNode): XsNode {
    this.touch(node.name);
    const perms = node.generation === NO_GENERATION ? node.perms : this.known.permsOf(node);
    const mine: XsNode = { name: node.name, value: node.value, perms, children: node.children, generation: this.store.nextGeneration() };
    const old = this.view.get(node.name);
    this.account(this.copyBytes(mine) - (old ? this.copyBytes(old) : 0));
    this.view.set(node.name, mine);
    this.changed.add(node.name);
    return mine;
  }

  remove(name: string): void {
    this.touch(name);
    const old = this.view.get(name);
    if (old) this.account(-this.copyBytes(old));
    this.view.set(name, null);
    this.changed.add(name);
    this.store.nextGeneration();
  }

  /** A change to `name` to announce at commit (once per node; exact only if every change was). */
  hold(name: string, exact: boolean): void {
    const before = this.fires.get(name);
    this.fires.set(name, before === undefined ? exact : before && exact);
  }

  addOwnerDelta(domid: number, n: number): void {
    this.ownerDelta.set(domid, (this.ownerDelta.get(domid) ?? 0) + n);
  }

  /** Whether any touched node changed since it was first touched (the commit's EAGAIN). */
  conflicts(): boolean {
    for (const [name, node] of this.seen) {
      const now = this.store.get(name);
      if ((now === undefined ? NO_GENERATION : now.generation) !== (node === null ? NO_GENERATION : node.generation)) return true;
    }
    return false;
  }

  /**
   * Applies the changes to the committed tree. Call only when conflicts() is false. As in
   * 4.17's finalize_transaction(), each node written takes a new generation and a removal
   * takes none (the parent it leaves is written, and takes one).
   */
  apply(): void {
    for (const name of this.changed) {
      const node = this.view.get(name) ?? null;
      if (node === null) this.store.delete(name);
      else this.store.put(node);
    }
  }

  /**
   * After apply(): the events to fire, one per changed node in the order the transaction
   * first touched them. A node made and removed inside the transaction fires nothing; a
   * node that existed is checked against its permissions from before, a removed one
   * against those alone.
   */
  heldEvents(): PendingEvent[] {
    const out: PendingEvent[] = [];
    for (const [name, before] of this.seen) {
      const exact = this.fires.get(name);
      if (exact === undefined) continue;
      const now = this.store.get(name);
      if (now === undefined) {
        if (before !== null) out.push({ name, exact, node: before, oldPerms: null, parentFallback: false });
      } else {
        out.push({ name, exact, node: now, oldPerms: before === null ? null : this.known.permsOf(before), parentFallback: true });
      }
    }
    return out;
  }
}
