// XenStore node permissions (xs_lib's perm strings and xenstored's perm_for_conn): a list
// of (letter, domid) entries whose first entry names the owner and gives the access of
// every domain not listed. Later entries that name a domain which is gone, or which came
// after the node was last written, count for nobody (XSA-322). dom0/xenstore layer.

export const XS_PERM_NONE = 0;
export const XS_PERM_READ = 1;
export const XS_PERM_WRITE = 2;
/** Not a letter: the access an owner (or a privileged caller) has beyond read and write. */
export const XS_PERM_OWNER = 8;
export const XS_PERM_ALL = XS_PERM_READ | XS_PERM_WRITE | XS_PERM_OWNER;
/**
 * Not a letter either: stored on an entry that counts for nobody, because its domain did
 * not exist when the entry was set, or was gone or newer than the node when the node was
 * last written. GET_PERMS still shows the letter.
 */
export const XS_PERM_IGNORE = 16;

/** A node's permission list: perm[i] is the access letter bits of domain id[i]; entry 0 is the owner. */
export interface NodePerms {
  readonly ids: readonly number[];
  readonly perms: readonly number[];
}

const LETTERS: Record<string, number> = { n: XS_PERM_NONE, r: XS_PERM_READ, w: XS_PERM_WRITE, b: XS_PERM_READ | XS_PERM_WRITE };
const LETTER_OF = ['n', 'r', 'w', 'b'];

/** "n0" etc. for one entry; the domid printed as C's %i prints an unsigned int. */
export function permString(perm: number, id: number): string {
  return `${LETTER_OF[perm & 3]}${id | 0}`;
}

/** The entries as strings, in order (GET_PERMS, xenstore-ls -p). */
export function permStrings(p: NodePerms): string[] {
  return p.ids.map((id, i) => permString(p.perms[i], id));
}

/**
 * xs_strings_to_perms(): entries "<letter><domid>" with letters n, r, w, b; the domid is
 * read as C's strtol(s, &end, 0) reads it (decimal, 0x hex, 0 octal, a sign, leading
 * spaces) and must use up the entry; it is kept as an unsigned 32-bit number. Null for a
 * malformed entry.
 */
export function parsePerms(strings: readonly string[]): NodePerms | null {
  const ids: number[] = [];
  const perms: number[] = [];
  for (const s of strings) {
    const perm = LETTERS[s.charAt(0)];
    if (perm === undefined) return null;
    const id = strtolWhole(s.slice(1));
    if (id === null) return null;
    ids.push(id >= 0 ? id % 2 ** 32 : (2 ** 32 - (-id % 2 ** 32)) % 2 ** 32); // (unsigned int) of a long
    perms.push(perm);
  }
  return { ids, perms };
}

/** strtol(s, &end, 0) when it consumes all of a non-empty `s`; null otherwise. */
export function strtolWhole(s: string): number | null {
  const m = /^[ \t\n\v\f\r]*([+-]?)(0[xX][0-9a-fA-F]+|0[0-7]*|[1-9][0-9]*)$/.exec(s);
  if (m === null) return null;
  const body = m[2];
  let v = body.length > 1 && (body[1] === 'x' || body[1] === 'X') ? parseInt(body.slice(2), 16)
    : body[0] === '0' ? parseInt(body, 8) : parseInt(body, 10);
  // strtol saturates at LONG_MAX / LONG_MIN, whose low 32 bits are all ones / all zeros.
  if (v >= 2 ** 63) return m[1] === '-' ? 0 : 0xffffffff;
  return m[1] === '-' ? -v : v;
}

/**
 * What xenstored remembers of the domains (its struct domain): the store generation at
 * which it made its record of a domain, whose entries count only on nodes written since.
 */
export interface DomainGenerations {
  /** The generation the record of `domid` was made at; negative when there is none. */
  generationOf(domid: number): number;
}

/**
 * Whether entry `i` of a node of generation `generation` counts for nobody: it is marked
 * XS_PERM_IGNORE, or (chk_domain_generation) xenstored has no record of its domain or made
 * the record after the node was last written: the domid may have passed to a new domain.
 */
function ignored(p: NodePerms, i: number, gens: DomainGenerations | null, generation: number): boolean {
  if ((p.perms[i] & XS_PERM_IGNORE) !== 0) return true;
  if (gens === null) return false;
  const recorded = gens.generationOf(p.ids[i]);
  return recorded < 0 || recorded > generation;
}

/**
 * domain_adjust_node_perms(): the list of a node of generation `generation` as reading it
 * shows it, its entries from 1 on that count for nobody marked XS_PERM_IGNORE; a node
 * written back keeps these marks for good. The same object when nothing is marked.
 */
export function markIgnored(p: NodePerms, gens: DomainGenerations, generation: number): NodePerms {
  let perms: number[] | null = null;
  for (let i = 1; i < p.ids.length; i++) {
    if ((p.perms[i] & XS_PERM_IGNORE) !== 0 || !ignored(p, i, gens, generation)) continue;
    perms ??= p.perms.slice();
    perms[i] |= XS_PERM_IGNORE;
  }
  return perms === null ? p : { ids: p.ids, perms };
}

/**
 * remove_domid_from_perm(): the list without the entries (from 1 on) naming `domid`, and
 * with dom0 as owner if `domid` owned it; for the special watch nodes when a domain goes.
 */
export function withoutDomain(p: NodePerms, domid: number): NodePerms {
  if (!p.ids.includes(domid)) return p;
  const ids = [p.ids[0] === domid ? 0 : p.ids[0]];
  const perms = [p.perms[0]];
  for (let i = 1; i < p.ids.length; i++) {
    if (p.ids[i] === domid) continue;
    ids.push(p.ids[i]);
    perms.push(p.perms[i]);
  }
  return { ids, perms };
}

/** The same list with a different owner. */
export function withOwner(p: NodePerms, owner: number): NodePerms {
  const ids = p.ids.slice();
  ids[0] = owner;
  return { ids, perms: p.perms };
}

/**
 * perm_for_conn(): the access a caller acting as `domid` has to a node with these
 * permissions. A privileged caller, the owner, and a caller whose target domain (SET_TARGET)
 * owns the node get everything; otherwise the first later entry naming the caller or its
 * target decides, unless it counts for nobody (with `gens`, judged against the node's
 * `generation`; without, only its mark counts); otherwise the owner's entry gives the default.
 */
export function permForCaller(
  p: NodePerms, domid: number, privileged: boolean, target: number, gens: DomainGenerations | null = null, generation = 0,
): number {
  const owner = p.ids[0];
  if (privileged || owner === domid || (target >= 0 && owner === target)) return XS_PERM_ALL;
  for (let i = 1; i < p.ids.length; i++) {
    const id = p.ids[i];
    if ((id === domid || (target >= 0 && id === target)) && !ignored(p, i, gens, generation)) return p.perms[i];
  }
  return p.perms[0];
}
