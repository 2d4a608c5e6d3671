// Transactions (xenstored_transaction.c): TRANSACTION_START hands out an id; requests
// carrying it work on the transaction's view; TRANSACTION_END `T|` commits — EAGAIN when a
// node it touched changed meanwhile — and `F|` abandons it. dom0/xenstore layer.

import type { XsRequest } from './handlers.ts';
import { Transaction } from './transaction.ts';
import { type XsErrno, latin1, nulTerminated, oneArg } from './wire.ts';

const OK = nulTerminated('OK');

/** TRANSACTION_START (payload ignored): a new transaction; EBUSY inside one; past the quota ENOSPC. */
export function doTransactionStart(req: XsRequest): Uint8Array | XsErrno {
  const { d, conn } = req;
  if (req.db.tx !== null) return 'EBUSY';
  if (!conn.privileged && conn.transactions.size > d.quotasOf(conn.domid).transactions) return 'ENOSPC';
  let id = conn.nextTransactionId;
  while (id === 0 || conn.transactions.has(id)) id = (id + 1) >>> 0;
  conn.nextTransactionId = (id + 1) >>> 0;
  const limit = conn.privileged ? Infinity : d.quotasOf(conn.domid).transactionNodes;
  conn.transactions.set(id, new Transaction(id, d.store, d.known, limit, conn.domid, d.chargeMemory));
  return latin1(`${id}\0`);
}

/** TRANSACTION_END `T|` or `F|`, with the transaction's id in the header. */
export function doTransactionEnd(req: XsRequest): Uint8Array | XsErrno {
  const { d, conn } = req;
  const arg = oneArg(req.payload);
  if (arg !== 'T' && arg !== 'F') return 'EINVAL';
  const tx = req.db.tx;
  if (tx === null) return 'ENOENT';
  conn.transactions.delete(tx.id);
  // Its copies go whatever the outcome; the commit writes the nodes themselves, unchecked.
  tx.release();
  if (arg === 'F') return OK;
  if (tx.failed) return 'ENOMEM';
  if (tx.conflicts()) return 'EAGAIN';
  // The node quota of an unprivileged domain binds at commit for what it created inside.
  const gained = tx.ownerDelta.get(conn.domid) ?? 0;
  if (!conn.privileged && gained > 0 && d.domains.get(conn.domid).nodes + gained > d.quotasOf(conn.domid).nodes) return 'ENOSPC';
  tx.apply();
  for (const [domid, n] of tx.ownerDelta) d.domains.addNodes(domid, n);
  d.fireHeld(tx.heldEvents());
  return OK;
}
