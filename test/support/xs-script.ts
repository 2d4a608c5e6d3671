// Replaying an xs_wire script against a xenstored and recording, step by step, the reply
// and the watch events each connection received, in a normalised text form that two
// implementations can be compared in. Used by the differential test
// (test/interop/xenstored-differential.test.ts). Test support only.
//
// A step is a line `<conn>[@<tx>] <TYPE> <payload>[ => <name>][ !<divergence>]`:
//   conn        a connection named in the script
//   @tx         the transaction: a name bound by an earlier `=> name`, or a decimal id
//   TYPE        an XS_* name without the prefix (READ, WRITE, ...) or a decimal type
//   payload     the bytes, `|` standing for NUL as in the spec ("path|value", "path|")
//   => name     binds the id a TRANSACTION_START answers
//   !id         the step is covered by an allowed divergence (see the test's table)
// or an object: a raw step, bytes written as they are, for messages the line form cannot
// frame; or a close step, the client closing its connection (a domain that goes away).

import * as XS from '../../rings/xenstore.ts';
import { XS_DIRECTORY_PART, XS_TRANSACTION_START } from '../../rings/xenstore.ts';
import { XsConnectionClosed, type XsMessage, type XsWireClient } from './xs-wire-client.ts';

/** Bytes sent as they are on `conn`; the outcome is what arrives before a drain, or "closed". */
export interface RawStep {
  readonly conn: string;
  readonly raw: Uint8Array;
  readonly note: string;
}

/** The client closes `conn`; later steps on it are "closed". */
export interface CloseStep {
  readonly conn: string;
  readonly close: true;
}

export type Step = string | RawStep | CloseStep;

/** A step as a mismatch report names it. */
export function describeStep(step: Step): string {
  if (typeof step === 'string') return step.length > 100 ? `${step.slice(0, 100)}...(${step.length} chars)` : step;
  return 'raw' in step ? `${step.conn} raw (${step.note})` : `${step.conn} closes its connection`;
}

export interface Script {
  readonly title: string;
  /** Connection name -> 'dom0' (privileged) or the domid it acts as. */
  readonly conns: Readonly<Record<string, 'dom0' | number>>;
  /** Absolute paths removed before and after the script (domain homes are handled apart). */
  readonly paths: readonly string[];
  /** Domains the script introduces itself, released before and after it. */
  readonly introduces?: readonly number[];
  readonly steps: readonly Step[];
}

/** A parsed request line. */
export interface Request {
  readonly conn: string;
  readonly tx: string | null;
  readonly type: number;
  readonly payload: Buffer;
  readonly bind: string | null;
  readonly divergence: string | null;
}

const TYPE_NAMES = new Map<number, string>();
const TYPE_NUMBERS = new Map<string, number>();
for (const [k, v] of Object.entries(XS)) {
  if (!k.startsWith('XS_') || typeof v !== 'number' || k === 'XS_DEBUG' || k === 'XS_TYPE_COUNT' || k === 'XS_INVALID') continue;
  if (k === 'XS_WATCH_PATH' || k === 'XS_WATCH_TOKEN') continue;
  TYPE_NAMES.set(v, k.slice(3));
  TYPE_NUMBERS.set(k.slice(3), v);
}

/** A type's name as a step writes it (the XS_ prefix dropped), or its number. */
export function typeName(type: number): string {
  return TYPE_NAMES.get(type) ?? String(type);
}

const HEAD = /^(\w+)(?:@(\w+))? (\w+)(?: |$)/;

export function parseStep(line: string): Request {
  let rest = line;
  const div = / !([\w-]+)$/.exec(rest);
  if (div) rest = rest.slice(0, div.index);
  const bind = /(?:^| )=> (\w+)$/.exec(rest);
  if (bind) rest = rest.slice(0, bind.index);
  const m = HEAD.exec(rest);
  if (!m) throw new Error(`bad script step: ${line}`);
  const [head, conn, tx, type] = m;
  const num = /^\d+$/.test(type!) ? Number(type) : TYPE_NUMBERS.get(type!);
  if (num === undefined) throw new Error(`bad script step (no type ${type}): ${line}`);
  return {
    conn: conn!, tx: tx ?? null, type: num, payload: Buffer.from(rest.slice(head.length).replaceAll('|', '\0'), 'latin1'),
    bind: bind ? bind[1]! : null, divergence: div ? div[1]! : null,
  };
}

/** Payload bytes as a step writes them: NUL as |, other unprintable bytes (and \\) as \\xNN. */
export function showBytes(b: Buffer): string {
  let s = '';
  for (const x of b) {
    s += x === 0 ? '|' : x >= 0x20 && x < 0x7f && x !== 0x5c ? String.fromCharCode(x) : `\\x${x.toString(16).padStart(2, '0')}`;
  }
  return s;
}

/**
 * Two texts for a mismatch report: whole when short, else around the first difference
 * (outcomes are compared whole; only the report is cut).
 */
export function showPair(a: string, b: string, max = 160): [string, string] {
  if (a.length <= max && b.length <= max) return [a, b];
  let i = 0;
  while (i < a.length && i < b.length && a[i] === b[i]) i++;
  const from = Math.max(0, i - 40);
  const cut = (s: string): string =>
    `${from > 0 ? `(${from} chars)...` : ''}${s.slice(from, from + max)}${s.length > from + max ? '...' : ''} [${s.length} chars]`;
  return [cut(a), cut(b)];
}

/** What one step produced on one server, in normalised text. */
export interface Outcome {
  /** "TYPE[@tx] payload", "closed", "not sent", or "no reply" (a failure guard ran out). */
  readonly reply: string;
  /** The watch events each connection received during the step (after it, before the next). */
  readonly events: Readonly<Record<string, readonly string[]>>;
}

/** How long a reply may take before the step counts as "no reply": a failure guard only. */
const STEP_GUARD_MS = 5_000;

/**
 * Replays `script` on open connections. Transaction ids become the names bound to them
 * (`<t1>`, or `<tx>` for an unbound one); DIRECTORY_PART's generation becomes `<gen>`.
 * `sendStep(req)` says whether a request step is sent at all (else "not sent").
 */
export async function replay(
  script: Script,
  conns: ReadonlyMap<string, XsWireClient>,
  sendStep: (req: Request) => boolean,
): Promise<Outcome[]> {
  const txIds = new Map<string, number>();
  // Per connection: an implementation may number transactions per connection or globally.
  const txNames = new Map<string, string>();
  const txName = (conn: string, id: number): string | undefined => txNames.get(`${conn} ${id}`);
  const givenUp = new Set<string>();
  const out: Outcome[] = [];

  // A reply echoing the request's tx_id shows it as the step wrote it.
  const show = (conn: string, m: XsMessage, sent?: { id: number; ref: string | null }): string => {
    const ref = sent && sent.ref !== null && m.txId === sent.id ? sent.ref : txName(conn, m.txId);
    const tx = m.txId === 0 ? '' : `@${ref ?? m.txId}`;
    let payload = showBytes(m.payload);
    if (m.type === XS_TRANSACTION_START && /^\d+\|$/.test(payload)) {
      payload = `<${txName(conn, Number(payload.slice(0, -1))) ?? 'tx'}>|`;
    }
    if (m.type === XS_DIRECTORY_PART) payload = payload.replace(/^\d+\|/, '<gen>|');
    return `${typeName(m.type)}${tx} ${payload}`;
  };

  for (const step of script.steps) {
    let reply: string;
    if (typeof step === 'string') {
      const req = parseStep(step);
      const c = connection(conns, req.conn);
      if (!sendStep(req)) reply = 'not sent';
      else if (c.closed) reply = 'closed';
      else if (givenUp.has(req.conn)) reply = 'no reply (given up after an earlier step)';
      else {
        const txId = req.tx === null ? 0 : /^\d+$/.test(req.tx) ? Number(req.tx) : txIds.get(req.tx);
        if (txId === undefined) throw new Error(`step "${step}": no transaction bound to ${req.tx}`);
        try {
          const m = await c.send(req.type, txId, req.payload, STEP_GUARD_MS);
          if (req.bind !== null && m.type === XS_TRANSACTION_START) {
            const id = Number(m.payload.toString('latin1').replace(/\0$/, ''));
            txIds.set(req.bind, id);
            txNames.set(`${req.conn} ${id}`, req.bind);
          }
          reply = show(req.conn, m, { id: txId, ref: req.tx });
        } catch (e) {
          reply = outcomeOfFailure(e, req.conn, givenUp);
        }
      }
    } else if ('close' in step) {
      connection(conns, step.conn).close();
      reply = 'closed by the client';
    } else {
      const c = connection(conns, step.conn);
      if (c.closed) reply = 'closed';
      else {
        c.sendRaw(step.raw);
        try {
          await c.drain(STEP_GUARD_MS);
          const got = c.unsolicited.splice(0);
          reply = got.length === 0 ? '(nothing)' : got.map((m) => show(step.conn, m)).join(' + ');
        } catch (e) {
          reply = outcomeOfFailure(e, step.conn, givenUp);
        }
      }
    }
    const events: Record<string, string[]> = {};
    for (const [name, c] of conns) {
      const got: string[] = [];
      if (!c.closed && !givenUp.has(name)) {
        try {
          await c.drain(STEP_GUARD_MS);
        } catch (e) {
          const why = outcomeOfFailure(e, name, givenUp);
          if (why !== 'closed') got.push(`(drain: ${why})`);
        }
      }
      got.unshift(...c.events.splice(0).map(showEvent));
      if (got.length > 0) events[name] = got;
    }
    out.push({ reply, events });
  }
  return out;
}

function showEvent(m: XsMessage): string {
  const ids = m.reqId === 0 && m.txId === 0 ? '' : ` (req_id ${m.reqId}, tx_id ${m.txId})`;
  return `${showBytes(m.payload)}${ids}`;
}

function connection(conns: ReadonlyMap<string, XsWireClient>, name: string): XsWireClient {
  const c = conns.get(name);
  if (!c) throw new Error(`script names no connection ${name}`);
  return c;
}

function outcomeOfFailure(e: unknown, conn: string, givenUp: Set<string>): string {
  if (e instanceof XsConnectionClosed) return 'closed';
  givenUp.add(conn);
  return `no reply (${(e as Error).message})`;
}
