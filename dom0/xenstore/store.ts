// The XenStore tree: nodes by absolute path, each with a value (any bytes), a
// permission list and its children's names in the order they were created, plus a
// generation number that changes whenever the node does (xenstored's tdb records and
// their generation counts). The generations come from one counter, which every stored,
// removed (outside a commit) or transaction-written node and every transaction start
// advances, as 4.17's does: domain records are dated by it too (known-domains.ts). Nodes
// are replaced, never changed in place, so that a transaction can keep the node it saw.
// Each stored node's bytes are charged to its owner as it is stored and freed as it goes
// (the memory quota). dom0/xenstore layer.

import type { NodePerms } from './perms.ts';
import { parentOf } from './paths.ts';

export interface XsNode {
  readonly name: string;
  readonly value: Uint8Array;
  readonly perms: NodePerms;
  /** Child names in creation order (DIRECTORY's order). */
  readonly children: readonly string[];
  /** Changes with every change to the node; -1 on a node not yet stored. */
  readonly generation: number;
}

/** Generation recorded for a node that does not exist (NO_GENERATION). */
export const NO_GENERATION = -1;

export function makeNode(name: string, value: Uint8Array, perms: NodePerms, children: readonly string[]): XsNode {
  return { name, value, perms, children, generation: NO_GENERATION };
}

/**
 * The bytes xenstored's record for a node takes: struct xs_tdb_record_hdr (a u64 and three
 * u32s, padded to 24), 8 per permission entry, the value, and each child's name and NUL.
 */
export function nodeRecordBytes(node: XsNode, extraChild = 0): number {
  let children = extraChild === 0 ? 0 : extraChild + 1;
  for (const c of node.children) children += c.length + 1;
  return 24 + 8 * node.perms.ids.length + node.value.length + children;
}

/** The memory a stored node takes from its owner's quota: its record and its path (the tdb key). */
export function nodeMemory(node: XsNode): number {
  return nodeRecordBytes(node) + node.name.length;
}

/** Charges (or, negative, frees) bytes of memory to a domain. */
export type ChargeMemory = (domid: number, bytes: number) => void;

/** The committed tree. */
export class XsStore {
  private readonly nodes = new Map<string, XsNode>();
  private counter = 0;

  /** The root, owned by dom0 with no access for others, and nothing else. */
  constructor(
    rootPerms: NodePerms,
    /** Told of every stored node's memory, charged to its owner, and of its freeing. */
    private readonly charge: ChargeMemory = () => {},
  ) {
    this.put(makeNode('/', new Uint8Array(0), rootPerms, []));
  }

  get(name: string): XsNode | undefined {
    return this.nodes.get(name);
  }

  has(name: string): boolean {
    return this.nodes.has(name);
  }

  /** The last generation handed out (a transaction's copies are keyed by the next). */
  get generation(): number {
    return this.counter;
  }

  /** A new generation, for a change that is not a node stored here (yet). */
  nextGeneration(): number {
    return ++this.counter;
  }

  /** Stores `node` (with `perms` for its list) under its name with a fresh generation; returns the stored node. */
  put(node: XsNode, perms = node.perms): XsNode {
    const stored: XsNode = { name: node.name, value: node.value, perms, children: node.children, generation: ++this.counter };
    const old = this.nodes.get(node.name);
    const owner = stored.perms.ids[0];
    if (old === undefined) {
      this.charge(owner, nodeMemory(stored));
    } else if (old.perms.ids[0] === owner) {
      this.charge(owner, nodeMemory(stored) - nodeMemory(old));
    } else {
      this.charge(old.perms.ids[0], -nodeMemory(old));
      this.charge(owner, nodeMemory(stored));
    }
    this.nodes.set(node.name, stored);
    return stored;
  }

  /** Removes `name` (if stored); takes no generation: the caller does when 4.17 would. */
  delete(name: string): void {
    const old = this.nodes.get(name);
    if (old === undefined) return;
    this.charge(old.perms.ids[0], -nodeMemory(old));
    this.nodes.delete(name);
  }

  /** The number of nodes, the root included. */
  get size(): number {
    return this.nodes.size;
  }

  /** Every node, parents before children (for dumps and checks). */
  *walk(from = '/'): Generator<XsNode> {
    const node = this.nodes.get(from);
    if (node === undefined) return;
    yield node;
    for (const c of node.children) yield* this.walk(from === '/' ? `/${c}` : `${from}/${c}`);
  }

  /**
   * Consistency: every node but the root is listed by its parent, and every listed child
   * exists. Returns the problems found (empty when sound).
   */
  check(): string[] {
    const problems: string[] = [];
    for (const [name, node] of this.nodes) {
      for (const c of node.children) {
        const child = name === '/' ? `/${c}` : `${name}/${c}`;
        if (!this.nodes.has(child)) problems.push(`${name} lists missing child ${c}`);
      }
      if (name === '/') continue;
      const parent = this.nodes.get(parentOf(name));
      if (parent === undefined) problems.push(`${name} has no parent`);
      else if (!parent.children.includes(name.slice(name.lastIndexOf('/') + 1))) problems.push(`${name} is not listed by its parent`);
    }
    return problems;
  }
}
