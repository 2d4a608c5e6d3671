// The node operations of xenstored (xenstored_core.c): READ, WRITE, MKDIR, RM, DIRECTORY,
// DIRECTORY_PART, GET_PERMS, SET_PERMS. Each checks its arguments, then the path, then the
// caller's access, then quotas, and only then changes the tree and fires watches. A node
// that cannot be written (node size, memory) fails the transaction it was written in, as
// 4.17's write_node() does. dom0/xenstore layer.

import { accessTo, getNode } from './access.ts';
import type { XsRequest } from './handlers.ts';
import { baseName, canonicalize, childPath, isSpecial, isValidNodeName, parentOf } from './paths.ts';
import {
  XS_PERM_OWNER, XS_PERM_READ, XS_PERM_WRITE, type NodePerms, parsePerms, permStrings, withOwner,
} from './perms.ts';
import { recordPermDomains } from './known-domains.ts';
import { NO_GENERATION, type XsNode, nodeRecordBytes } from './store.ts';
import type { NodeDb } from './transaction.ts';
import { XENSTORE_PAYLOAD_MAX, type XsErrno, fromLatin1, latin1, nulTerminated, oneArg, splitStrings } from './wire.ts';
import { atoi } from './ops-domains.ts';
import type { XenStored } from './xenstored.ts';

const OK = nulTerminated('OK');
const EMPTY = new Uint8Array(0);

/** canonicalize + is_valid_nodename for a node (not a special name): the absolute path or null. */
export function nodeName(req: XsRequest, raw: string | null): string | null {
  if (raw === null) return null;
  const name = canonicalize(req.caller.domid, raw);
  return isValidNodeName(name, false, req.d.quotas.pathMax) ? name : null;
}

/** The node for `raw` with `perm`, or the errno (EINVAL for a bad path). */
function lookup(req: XsRequest, raw: string | null, perm: number): XsNode | XsErrno {
  const name = nodeName(req, raw);
  if (name === null) return 'EINVAL';
  return getNode(req.db, req.caller, name, perm);
}

export function doRead(req: XsRequest): Uint8Array | XsErrno {
  const node = lookup(req, oneArg(req.payload), XS_PERM_READ);
  return typeof node === 'string' ? node : node.value;
}

export function doDirectory(req: XsRequest): Uint8Array | XsErrno {
  const node = lookup(req, oneArg(req.payload), XS_PERM_READ);
  return typeof node === 'string' ? node : childList(node);
}

function childList(node: XsNode): Uint8Array {
  return node.children.length === 0 ? new Uint8Array(0) : nulTerminated(...node.children);
}

/**
 * DIRECTORY_PART `path|offset|`: the node's generation, then the child list's bytes from
 * byte `offset` (atoi, taken as unsigned; no realignment to a name) as far as whole names
 * fit, and one more NUL once the list's end is reached.
 */
export function doDirectoryPart(req: XsRequest): Uint8Array | XsErrno {
  const { strings } = splitStrings(req.payload);
  if (strings.length !== 2) return 'EINVAL';
  const node = lookup(req, strings[0], XS_PERM_READ);
  if (typeof node === 'string') return node;
  const all = childList(node);
  const offset = Math.min(atoi(strings[1]) >>> 0, all.length);
  const gen = latin1(`${node.generation}\0`);
  const room = XENSTORE_PAYLOAD_MAX - gen.length - 1;
  let end = offset;
  while (end < all.length) {
    const nul = all.indexOf(0, end);
    if (nul - offset >= room) break;
    end = nul + 1;
  }
  const complete = end === all.length;
  const out = new Uint8Array(gen.length + (end - offset) + (complete ? 1 : 0));
  out.set(gen, 0);
  out.set(all.subarray(offset, end), gen.length);
  return out;
}

/** GET_PERMS `path|`: the entries, owner first. Special names are not nodes (EINVAL in 4.17). */
export function doGetPerms(req: XsRequest): Uint8Array | XsErrno {
  const node = lookup(req, oneArg(req.payload), XS_PERM_READ);
  return typeof node === 'string' ? node : nulTerminated(...permStrings(node.perms));
}

/** WRITE `path|value`: creates the node (and missing parents) or replaces its value. */
export function doWrite(req: XsRequest): Uint8Array | XsErrno {
  const p = req.payload;
  const nul = p.indexOf(0);
  if (nul < 0) return 'EINVAL';
  const name = nodeName(req, fromLatin1(p.subarray(0, nul)));
  if (name === null) return 'EINVAL';
  const value = p.slice(nul + 1);
  const found = getNode(req.db, req.caller, name, XS_PERM_WRITE);
  if (found === 'ENOENT') {
    const made = createPath(req, name, value);
    if (typeof made === 'string') return made;
    req.d.fireWatches(req.db, name, false, made);
    return OK;
  }
  if (typeof found === 'string') return found;
  const next: XsNode = { ...found, value };
  const refused = writeRefused(req, next, found);
  if (refused !== null) return refused;
  const stored = req.db.write(next);
  req.d.fireWatches(req.db, name, false, stored);
  return OK;
}

/** MKDIR `path|`: creates the node (empty) and missing parents; an existing node is fine. */
export function doMkdir(req: XsRequest): Uint8Array | XsErrno {
  const name = nodeName(req, oneArg(req.payload));
  if (name === null) return 'EINVAL';
  const found = getNode(req.db, req.caller, name, XS_PERM_WRITE);
  if (found === 'ENOENT') {
    const made = createPath(req, name, new Uint8Array(0));
    if (typeof made === 'string') return made;
    req.d.fireWatches(req.db, name, false, made);
    return OK;
  }
  return typeof found === 'string' ? found : OK;
}

/**
 * write_node_raw()'s checks for rewriting `old` as `next`: an unprivileged caller's record
 * must stay under the node-size quota (ENOSPC), and the domain charged must have room in
 * its memory quota (EIO). Either fails the transaction. Null: the write may go ahead.
 */
function writeRefused(req: XsRequest, next: XsNode, old: XsNode | undefined): XsErrno | null {
  const { d, db } = req;
  if (!req.caller.privileged && nodeRecordBytes(next) >= d.quotasOf(req.caller.domid).nodeSize) return failWrite(db, 'ENOSPC');
  const to = chargedTo(db, next.perms.ids[0]);
  if (to === 0) return null; // dom0 has no memory quota
  let bytes = nodeBytes(db, nodeRecordBytes(next), next.name);
  // The old record is freed from its owner first.
  if (old !== undefined && chargedTo(db, old.perms.ids[0]) === to) bytes -= nodeBytes(db, nodeRecordBytes(old), old.name);
  return d.memoryAllows(to, bytes) ? null : failWrite(db, 'EIO');
}

/** A node write failed: inside a transaction the transaction fails too. */
function failWrite(db: NodeDb, err: XsErrno): XsErrno {
  if (db.tx !== null) db.tx.failed = true;
  return err;
}

/** The domain whose memory a node owned by `owner` is charged to in `db`: the owner, or the transaction's. */
function chargedTo(db: NodeDb, owner: number): number {
  return db.tx === null ? owner : db.tx.domid;
}

/** The memory a node record of `record` bytes at `name` takes in `db` (the key: its path, or the transaction's). */
function nodeBytes(db: NodeDb, record: number, name: string): number {
  return record + (db.tx === null ? name.length : db.tx.keyBytes(name));
}

/**
 * construct_node()/create_node(): creates `name` with `value`, and every missing ancestor
 * empty, each inheriting its parent's permissions, with an unprivileged creator as owner.
 * Checks every record before changing anything, in the order 4.17 writes them — the new
 * node, each new ancestor upwards, then the existing parent with its new child: for a new
 * node the node quota (ENOSPC), then for each its size (ENOSPC) and memory (EIO).
 */
function createPath(req: XsRequest, name: string, value: Uint8Array): XsNode | XsErrno {
  const { d, db, caller } = req;
  const missing: string[] = [];
  let parent: XsNode | undefined;
  for (let p = name; ; ) {
    missing.push(p);
    p = parentOf(p);
    parent = db.read(p);
    if (parent !== undefined) break;
    if (p === '/') return 'ENOENT';
  }
  // The list as read: entries that count for nobody on the parent stay so on the children.
  const inherited: NodePerms = d.known.permsOf(parent);
  const perms: NodePerms = caller.privileged ? inherited : withOwner(inherited, caller.domid);
  const owned = d.domains.get(caller.domid).nodes;
  const q = d.quotasOf(caller.domid);
  const to = chargedTo(db, perms.ids[0]);
  // What the records checked so far charge `to`.
  let charged = 0;
  for (let i = 0; i < missing.length; i++) {
    // Against the nodes the domain owns now (inside a transaction, again at commit).
    if (!caller.privileged && owned + (db.tx === null ? i : 0) >= q.nodes) return 'ENOSPC';
    const child = i === 0 ? 0 : baseName(missing[i - 1]).length;
    const rec: XsNode = { name: missing[i], value: i === 0 ? value : EMPTY, perms, children: [], generation: -1 };
    const record = nodeRecordBytes(rec, child);
    if (!caller.privileged && record >= q.nodeSize) return failWrite(db, 'ENOSPC');
    charged += nodeBytes(db, record, rec.name);
    if (!d.memoryAllows(to, charged)) return failWrite(db, 'EIO');
  }
  const record = nodeRecordBytes(parent, baseName(missing[missing.length - 1]).length);
  if (!caller.privileged && record >= q.nodeSize) return failWrite(db, 'ENOSPC');
  const parentTo = chargedTo(db, parent.perms.ids[0]);
  const grown = nodeBytes(db, record, parent.name) - nodeBytes(db, nodeRecordBytes(parent), parent.name);
  if (!d.memoryAllows(parentTo, grown + (parentTo === to ? charged : 0))) return failWrite(db, 'EIO');
  let made: XsNode | undefined;
  for (let i = missing.length - 1; i >= 0; i--) made = d.createNode(db, missing[i], i === 0 ? value : EMPTY, perms);
  return made as XsNode;
}

/**
 * RM `path|`: removes the node and everything below it. A missing node is fine when its
 * parent exists; a node whose parent is missing (a transaction's copy, its parent removed
 * meanwhile) is EINVAL. Each removed descendant fires the watches set exactly on it,
 * deepest first; the node itself fires last, for its watchers and their ancestors.
 */
export function doRm(req: XsRequest): Uint8Array | XsErrno {
  const { d, db } = req;
  const name = nodeName(req, oneArg(req.payload));
  if (name === null) return 'EINVAL';
  const found = getNode(db, req.caller, name, XS_PERM_WRITE);
  if (found === 'ENOENT') return db.read(parentOf(name)) !== undefined ? OK : 'ENOENT';
  if (typeof found === 'string') return found;
  if (name === '/') return 'EINVAL';
  // rm_node(): a node a transaction still holds may have lost its parent meanwhile.
  if (db.read(parentOf(name)) === undefined) return 'EINVAL';
  removeSubtree(d, db, found);
  return OK;
}

/**
 * rm_node(): removes `node` and everything below it and unlinks it from its parent, firing
 * watches as RM does.
 */
export function removeSubtree(d: XenStored, db: NodeDb, node: XsNode): void {
  const parent = db.read(parentOf(node.name));
  if (parent === undefined) throw new Error(`xenstored: ${node.name} has no parent`);
  removeTree(d, db, node, node.name);
  const base = node.name.slice(node.name.lastIndexOf('/') + 1);
  const now = db.read(parent.name) ?? parent;
  db.write({ ...now, children: now.children.filter((c) => c !== base) });
}

/** Removes `node` and its subtree, children first, firing watches as rm does. */
function removeTree(d: XenStored, db: NodeDb, node: XsNode, top: string): void {
  for (const c of node.children) {
    const child = db.read(childPath(node.name, c));
    if (child !== undefined) removeTree(d, db, child, top);
  }
  db.remove(node.name);
  d.countNodes(db, node.perms.ids[0], -1);
  d.fireWatches(db, node.name, node.name !== top, node);
}

/**
 * SET_PERMS `path|perm|…`: needs write and owner rights on the node; an unprivileged
 * caller may not give the node away, and the new owner must exist (ENOENT); an entry
 * naming a domain that does not exist counts for nobody, whatever domain comes later.
 */
export function doSetPerms(req: XsRequest): Uint8Array | XsErrno {
  const { d, db, caller } = req;
  const { strings } = splitStrings(req.payload);
  if (strings.length < 2) return 'EINVAL';
  if (!caller.privileged && strings.length - 1 > d.quotasOf(caller.domid).perms) return 'ENOSPC';
  const parsed = parsePerms(strings.slice(1));
  if (parsed === null) return 'EINVAL';
  const perms = recordPermDomains(parsed, d.known, d, d.store.generation);
  if (perms === null) return 'ENOENT';
  const newOwner = perms.ids[0];
  const raw = strings[0];
  if (isSpecial(raw)) return setSpecialPerms(req, raw, perms);
  const name = nodeName(req, raw);
  if (name === null) return 'EINVAL';
  const node = getNode(db, caller, name, XS_PERM_WRITE | XS_PERM_OWNER);
  if (typeof node === 'string') return node;
  const oldOwner = node.perms.ids[0];
  if (!caller.privileged && newOwner !== oldOwner) return 'EPERM';
  // A list made afresh: its entries are judged from now on, not by the node's age.
  const next: XsNode = { ...node, perms, generation: NO_GENERATION };
  const refused = writeRefused(req, next, node);
  if (refused !== null) return refused;
  const stored = db.write(next);
  if (newOwner !== oldOwner) {
    d.countNodes(db, oldOwner, -1);
    d.countNodes(db, newOwner, 1);
  }
  d.fireWatches(db, name, false, stored, d.known.permsOf(node));
  return OK;
}

function setSpecialPerms(req: XsRequest, name: string, perms: NodePerms): Uint8Array | XsErrno {
  const cur = req.d.specialPerms.get(name);
  if (cur === undefined) return 'EINVAL';
  const node: XsNode = { name, value: new Uint8Array(0), perms: cur, children: [], generation: -1 };
  if ((accessTo(req.caller, node) & (XS_PERM_WRITE | XS_PERM_OWNER)) !== (XS_PERM_WRITE | XS_PERM_OWNER)) return 'EACCES';
  req.d.specialPerms.set(name, perms);
  return OK;
}
