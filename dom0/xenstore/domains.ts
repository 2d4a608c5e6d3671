// What xenstored knows about each domain (xenstored_domain.c): whether it has been
// introduced, its target (SET_TARGET), its features, and the counts its quotas limit —
// nodes it owns, watches it holds, requests outstanding, memory used. Quotas bind
// unprivileged domains only.
// dom0/xenstore layer.

/** The per-domain limits, with xenstored 4.17's defaults. */
export interface XsQuotas {
  /** Nodes a domain may own (quota-nodes, -E). */
  nodes: number;
  /** Watches a domain may hold; the check is `count > limit` before adding (-W). */
  watches: number;
  /** Transactions a connection may have open; the check is `count > limit` (-t). */
  transactions: number;
  /**
   * Requests a connection may have outstanding (-Q outstanding): replied to, but the reply
   * or a watch event the request caused not yet delivered. At the limit xenstored stops
   * taking the connection's requests until the peer has caught up; nothing fails.
   */
  outstanding: number;
  /** Bytes of a node's record (-S): header, permissions, value and child names. */
  nodeSize: number;
  /** Entries in a node's permission list (-A). */
  perms: number;
  /** Nodes one transaction may touch (-T). */
  transactionNodes: number;
  /**
   * Bytes of store a domain may use (-Q memory; 0: no limit): its nodes, watches,
   * transaction copies and undelivered output. A change that would reach it fails (EIO
   * for a node, ENOMEM for a watch or a reply over 16 bytes; a watch event is dropped),
   * and a domain at it is not read from until it is back below.
   */
  memory: number;
  /** Path bytes past a /local/domain/<id>/ prefix; binds every caller (EINVAL). */
  pathMax: number;
  /** The memory warning level (quota-soft): crossing it is logged, nothing fails. */
  softMemory: number;
}

export const DEFAULT_QUOTAS: Readonly<XsQuotas> = Object.freeze({
  nodes: 1000, watches: 128, transactions: 10, outstanding: 20, nodeSize: 2048, perms: 5, transactionNodes: 1024,
  memory: 2621440, pathMax: 2048, softMemory: 2097152,
});

/**
 * The quotas as `xenstore-control quota` lists them (and GET_QUOTA / SET_QUOTA name them):
 * name, field, description.
 */
export const QUOTA_NAMES: readonly [string, keyof XsQuotas, string][] = [
  ['nodes', 'nodes', 'Nodes per domain'],
  ['watches', 'watches', 'Watches per domain'],
  ['transactions', 'transactions', 'Transactions per domain'],
  ['outstanding', 'outstanding', 'Outstanding requests per domain'],
  ['transaction-nodes', 'transactionNodes', 'Max. number of accessed nodes per transaction'],
  ['memory', 'memory', 'Total Xenstore memory per domain (error level)'],
  ['node-size', 'nodeSize', 'Max. size of a node'],
  ['path-max', 'pathMax', 'Max. length of a node path'],
  ['permissions', 'perms', 'Max. number of permissions per node'],
];

export interface XsDomain {
  readonly domid: number;
  introduced: boolean;
  /** The domain whose rights this one has too (a stub domain's guest), or -1. */
  target: number;
  /** Nodes owned (entry 0 of their permissions names this domain). */
  nodes: number;
  /** Watches held over all its connections. */
  watches: number;
  /** Requests outstanding over all its unprivileged connections (see XsQuotas.outstanding). */
  outstanding: number;
  /**
   * Bytes charged to it, as 4.17 counts them: each node it owns (record and path), each
   * watch of its connections (path and token), each node copy its transactions hold
   * (record and key), each message to it not yet delivered (payload and header).
   */
  memory: number;
  /** Whether its memory was at the soft quota when last checked (crossing is logged). */
  overSoftMemory: boolean;
  /** Whether a check last found it at the hard quota (logged once until it finds room again). */
  overHardMemory: boolean;
  /** XENSTORE_SERVER_FEATURE_* bits offered to it. */
  features: number;
  /** Its own limits, or null for the global ones. */
  quotas: XsQuotas | null;
  /** Set by a shutdown the store was told about; cleared by RESUME. */
  shutdown: boolean;
  /** The store ring's frame as INTRODUCE gave it (a repeated INTRODUCE must match). */
  ringGfn: string;
}

export class XsDomains {
  private readonly byId = new Map<number, XsDomain>();

  /** The domain's record, made on first use (node counts exist for any owner). */
  get(domid: number): XsDomain {
    let d = this.byId.get(domid);
    if (d === undefined) {
      d = {
        domid, introduced: false, target: -1, nodes: 0, watches: 0, outstanding: 0, memory: 0, overSoftMemory: false, overHardMemory: false,
        features: 0, quotas: null, shutdown: false, ringGfn: '',
      };
      this.byId.set(domid, d);
    }
    return d;
  }

  find(domid: number): XsDomain | undefined {
    return this.byId.get(domid);
  }

  isIntroduced(domid: number): boolean {
    return this.byId.get(domid)?.introduced === true;
  }

  addNodes(domid: number, n: number): void {
    this.get(domid).nodes += n;
  }
}
