// The table of xenstored's message handlers (wire_funcs in xenstored_core.c): per type,
// the handler and its flags — privileged-only (EACCES for others) and "no transaction"
// (WATCH and UNWATCH ignore the header's tx_id; every other type looks it up, ENOENT when
// the connection has no such transaction). Types without an entry get ENOSYS.
// dom0/xenstore layer.

import type { Caller } from './access.ts';
import type { XsConnection } from './connection.ts';
import { doControl, doGetFeature, doGetQuota, doSetFeature, doSetQuota } from './ops-control.ts';
import {
  doGetDomainPath, doIntroduce, doIsDomainIntroduced, doRelease, doResume, doSetTarget,
} from './ops-domains.ts';
import {
  doDirectory, doDirectoryPart, doGetPerms, doMkdir, doRead, doRm, doSetPerms, doWrite,
} from './ops-nodes.ts';
import { doTransactionEnd, doTransactionStart } from './ops-transactions.ts';
import { afterWatch, doResetWatches, doUnwatch, doWatch } from './ops-watches.ts';
import type { NodeDb } from './transaction.ts';
import * as W from './wire.ts';
import type { XenStored } from './xenstored.ts';

/** One request being handled. */
export interface XsRequest {
  readonly d: XenStored;
  readonly conn: XsConnection;
  readonly caller: Caller;
  /** The tree, or the transaction named in the header. */
  readonly db: NodeDb;
  readonly txId: number;
  readonly payload: Uint8Array;
}

export const XS_FLAG_PRIV = 1;
export const XS_FLAG_NOTID = 2;

export interface XsHandler {
  readonly fn: (req: XsRequest) => Uint8Array | W.XsErrno;
  readonly flags: number;
  /** Runs after a successful reply went out (WATCH's initial event). */
  readonly after?: (req: XsRequest) => void;
}

const P = XS_FLAG_PRIV;
const N = XS_FLAG_NOTID;

export const HANDLERS: (XsHandler | undefined)[] = [];
HANDLERS[W.XS_CONTROL] = { fn: doControl, flags: P };
HANDLERS[W.XS_DIRECTORY] = { fn: doDirectory, flags: 0 };
HANDLERS[W.XS_READ] = { fn: doRead, flags: 0 };
HANDLERS[W.XS_GET_PERMS] = { fn: doGetPerms, flags: 0 };
HANDLERS[W.XS_WATCH] = { fn: doWatch, flags: N, after: afterWatch };
HANDLERS[W.XS_UNWATCH] = { fn: doUnwatch, flags: N };
HANDLERS[W.XS_TRANSACTION_START] = { fn: doTransactionStart, flags: 0 };
HANDLERS[W.XS_TRANSACTION_END] = { fn: doTransactionEnd, flags: 0 };
HANDLERS[W.XS_INTRODUCE] = { fn: doIntroduce, flags: P };
HANDLERS[W.XS_RELEASE] = { fn: doRelease, flags: P };
HANDLERS[W.XS_GET_DOMAIN_PATH] = { fn: doGetDomainPath, flags: 0 };
HANDLERS[W.XS_WRITE] = { fn: doWrite, flags: 0 };
HANDLERS[W.XS_MKDIR] = { fn: doMkdir, flags: 0 };
HANDLERS[W.XS_RM] = { fn: doRm, flags: 0 };
HANDLERS[W.XS_SET_PERMS] = { fn: doSetPerms, flags: 0 };
HANDLERS[W.XS_IS_DOMAIN_INTRODUCED] = { fn: doIsDomainIntroduced, flags: P };
HANDLERS[W.XS_RESUME] = { fn: doResume, flags: P };
HANDLERS[W.XS_SET_TARGET] = { fn: doSetTarget, flags: P };
HANDLERS[W.XS_RESET_WATCHES] = { fn: doResetWatches, flags: 0 };
HANDLERS[W.XS_DIRECTORY_PART] = { fn: doDirectoryPart, flags: 0 };
HANDLERS[W.XS_GET_FEATURE] = { fn: doGetFeature, flags: 0 };
HANDLERS[W.XS_SET_FEATURE] = { fn: doSetFeature, flags: P };
HANDLERS[W.XS_GET_QUOTA] = { fn: doGetQuota, flags: P };
HANDLERS[W.XS_SET_QUOTA] = { fn: doSetQuota, flags: P };
