// XenStore path rules (xenstored's canonicalize and is_valid_nodename): relative paths
// resolve against the caller's /local/domain/<domid>; a valid node name is absolute, uses
// only letters, digits and "-/_@", has no "//", no trailing "/" except the root, and
// stays within XENSTORE_REL_PATH_MAX bytes past a /local/domain/<id>/ prefix. Names
// starting with "@" are special and only watches may use them.
// dom0/xenstore layer: no imports beyond its own directory.

import { XENSTORE_REL_PATH_MAX } from '../../rings/xenstore.ts';

/** The home of domain `domid`, base of its relative paths. */
export function domainPath(domid: number): string {
  return `/local/domain/${domid}`;
}

/** The special watch paths of xenstored. */
export const INTRODUCE_DOMAIN = '@introduceDomain';
export const RELEASE_DOMAIN = '@releaseDomain';

/** Whether `name` is one of the special "@" paths (check_special_event). */
export function isSpecial(name: string): boolean {
  return name.charCodeAt(0) === 0x40;
}

/**
 * canonicalize(): `name` as given by domain `domid`, made absolute. Special names and
 * absolute paths are unchanged.
 */
export function canonicalize(domid: number, name: string): string {
  if (name.charCodeAt(0) === 0x2f || isSpecial(name)) return name;
  return `${domainPath(domid)}/${name}`;
}

/** Characters allowed in node names (valid_chars). */
function validChar(c: number): boolean {
  return (c >= 0x61 && c <= 0x7a) || (c >= 0x41 && c <= 0x5a) || (c >= 0x30 && c <= 0x39) ||
    c === 0x2d || c === 0x2f || c === 0x5f || c === 0x40;
}

const LOCAL_DOMAIN = '/local/domain/';

/**
 * The bytes of a /local/domain/<id>/ prefix of `name` (sscanf "/local/domain/%5u/%n"):
 * up to five digits and a slash. 0 when there is none.
 */
function localPrefixLength(name: string): number {
  if (!name.startsWith(LOCAL_DOMAIN)) return 0;
  let i = LOCAL_DOMAIN.length;
  const start = i;
  while (i < name.length && i - start < 5 && name.charCodeAt(i) >= 0x30 && name.charCodeAt(i) <= 0x39) i++;
  if (i === start || name.charCodeAt(i) !== 0x2f) return 0;
  return i + 1;
}

/**
 * is_valid_nodename(): whether `name` (already canonical) may name a node; with
 * `allowSpecial`, the "@" names watches use are allowed too. `pathMax` is the path-max
 * quota, which binds every caller.
 */
export function isValidNodeName(name: string, allowSpecial: boolean, pathMax = XENSTORE_REL_PATH_MAX): boolean {
  if (isSpecial(name)) {
    if (!allowSpecial) return false;
  } else if (name.charCodeAt(0) !== 0x2f) {
    return false;
  }
  if (name.length > 1 && name.charCodeAt(name.length - 1) === 0x2f) return false;
  if (name.length - localPrefixLength(name) > pathMax) return false;
  let prevSlash = false;
  for (let i = 0; i < name.length; i++) {
    const c = name.charCodeAt(i);
    if (!validChar(c)) return false;
    const slash = c === 0x2f;
    if (slash && prevSlash) return false;
    prevSlash = slash;
  }
  return true;
}

/** The parent of an absolute path ("/" for a top-level node and for the root itself). */
export function parentOf(name: string): string {
  const slash = name.lastIndexOf('/');
  return slash <= 0 ? '/' : name.slice(0, slash);
}

/** The last component of an absolute path. */
export function baseName(name: string): string {
  return name.slice(name.lastIndexOf('/') + 1);
}

/** is_child(): whether `child` is `parent` or lies below it. */
export function isChildOrSelf(child: string, parent: string): boolean {
  if (parent === '/') return child.charCodeAt(0) === 0x2f;
  if (!child.startsWith(parent)) return false;
  return child.length === parent.length || child.charCodeAt(parent.length) === 0x2f;
}

/** The path joined with a child's name. */
export function childPath(parent: string, name: string): string {
  return parent === '/' ? `/${name}` : `${parent}/${name}`;
}
