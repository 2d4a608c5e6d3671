// What xenstored knows about each domain (xenstored_domain.c): whether it has been
// introduced, its target (SET_TARGET), its features, and the counts its quotas limit —
// nodes it owns, watches it holds. Quotas bind unprivileged domains only.
// dom0/xenstore layer.

/** The per-domain limits, with xenstored 4.17's defaults. */
export interface XsQuotas {
  /** Nodes a domain may own (quota-nodes, -E). */
  nodes: number;
  /** Watches a domain may hold; the check is `count > limit` before adding (-W). */
  watches: number;
  /** Transactions a connection may have open; the check is `count > limit` (-t). */
  transactions: number;
  /** Requests a domain may have waiting for their replies to be read (-Q outstanding). */
  outstanding: number;
  /** Bytes of a node's record (-S): header, permissions, value and child names. */
  nodeSize: number;
  /** Entries in a node's permission list (-A). */
  perms: number;
  /** Nodes one transaction may touch (-T). */
  transactionNodes: number;
  /** Bytes of store a domain may use (reported, not enforced here). */
  memory: number;
  /** Path bytes past a /local/domain/<id>/ prefix; binds every caller (EINVAL). */
  pathMax: number;
  /** The memory warning level (quota-soft; reported only). */
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
      d = { domid, introduced: false, target: -1, nodes: 0, watches: 0, features: 0, quotas: null, shutdown: false, ringGfn: '' };
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
