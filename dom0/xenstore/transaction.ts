// Transactions (xenstored_transaction.c): a transaction sees the tree as it finds it,
// except for the nodes it has touched, of which it keeps the version it first saw (or
// its own changes). Every node it touches, read or written, present or missing, is
// recorded with the generation it had then; the commit fails with EAGAIN when any of
// them has changed meanwhile, and otherwise applies the changes in one step and fires the
// watch events held back until then. dom0/xenstore layer.

import type { NodePerms } from './perms.ts';
import { NO_GENERATION, type XsNode, type XsStore } from './store.ts';

/** A watch event a change made; fired at once outside a transaction, at commit inside one. */
export interface PendingEvent {
  readonly name: string;
  /** Only watches set exactly on `name` (a descendant removed with its ancestor). */
  readonly exact: boolean;
  /** The node as it was (removed nodes) or is, for the watchers' read check. */
  readonly node: XsNode;
  /** The permissions before a SET_PERMS (they let a watcher see it too), else null. */
  readonly oldPerms: NodePerms | null;
}

/**
 * Where an operation reads and writes nodes: the committed tree itself, or a
 * transaction's view of it.
 */
export interface NodeDb {
  readonly tx: Transaction | null;
  /** The node, or undefined; inside a transaction the read is recorded. */
  read(name: string): XsNode | undefined;
  /** Stores a new version of a node (the caller made it; it is not changed afterwards). */
  write(node: XsNode): XsNode;
  remove(name: string): void;
}

/** Outside any transaction: straight to the committed tree. */
export class DirectDb implements NodeDb {
  readonly tx = null;
  constructor(private readonly store: XsStore) {}

  read(name: string): XsNode | undefined {
    return this.store.get(name);
  }

  write(node: XsNode): XsNode {
    return this.store.put(node);
  }

  remove(name: string): void {
    this.store.delete(name);
  }
}

export class Transaction implements NodeDb {
  readonly tx = this;
  /** Generation of each touched node when first touched (NO_GENERATION: missing). */
  readonly accessed = new Map<string, number>();
  /** The transaction's version of every node it touched: as first seen, or as it changed it (null: missing). */
  private readonly view = new Map<string, XsNode | null>();
  /** The nodes it wrote or removed, to apply at commit. */
  private readonly changed = new Set<string>();
  /** Events held until commit, in the order the changes were made. */
  readonly events: PendingEvent[] = [];
  /** Nodes gained (or lost, negative) per owning domain, applied at commit. */
  readonly ownerDelta = new Map<number, number>();

  constructor(
    readonly id: number,
    private readonly store: XsStore,
  ) {}

  /** How many nodes the transaction has touched (the per-transaction node quota). */
  get touched(): number {
    return this.accessed.size;
  }

  /** Whether the transaction has touched `name` already. */
  isTouched(name: string): boolean {
    return this.accessed.has(name);
  }

  private touch(name: string): XsNode | null {
    const mine = this.view.get(name);
    if (mine !== undefined) return mine;
    const node = this.store.get(name) ?? null;
    this.accessed.set(name, node === null ? NO_GENERATION : node.generation);
    this.view.set(name, node);
    return node;
  }

  read(name: string): XsNode | undefined {
    return this.touch(name) ?? undefined;
  }

  write(node: XsNode): XsNode {
    this.touch(node.name);
    this.view.set(node.name, node);
    this.changed.add(node.name);
    return node;
  }

  remove(name: string): void {
    this.touch(name);
    this.view.set(name, null);
    this.changed.add(name);
  }

  /**
   * The events to fire at commit: one per node changed, in the order of each node's first
   * change; exact (watches on the node itself only) if every change to it was.
   */
  changedNodes(): PendingEvent[] {
    const byName = new Map<string, PendingEvent>();
    for (const e of this.events) {
      const seen = byName.get(e.name);
      if (seen === undefined) byName.set(e.name, e);
      else if (seen.exact && !e.exact) byName.set(e.name, { ...seen, exact: false });
    }
    return [...byName.values()];
  }

  addOwnerDelta(domid: number, n: number): void {
    this.ownerDelta.set(domid, (this.ownerDelta.get(domid) ?? 0) + n);
  }

  /** Whether any touched node changed since it was first touched (the commit's EAGAIN). */
  conflicts(): boolean {
    for (const [name, gen] of this.accessed) {
      const node = this.store.get(name);
      if ((node === undefined ? NO_GENERATION : node.generation) !== gen) return true;
    }
    return false;
  }

  /** Applies the changes to the committed tree. Call only when conflicts() is false. */
  apply(): void {
    for (const name of this.changed) {
      const node = this.view.get(name) ?? null;
      if (node === null) this.store.delete(name);
      else this.store.put(node);
    }
  }
}
