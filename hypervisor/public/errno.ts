// Xen's error numbers (public/errno.h); hypercalls return them negated (-EINVAL).
// Part of the public ABI (hypervisor/public/): imported by the hypervisor and by guest code alike.

// public/errno.h: the values come from x86 Linux.
export const EPERM = 1;
export const ENOENT = 2;
export const ESRCH = 3;
/** Xen-internal (public/errno.h guards it with __XEN__): becomes a continuation, never reaches a guest. */
export const EINTR = 4;
export const EIO = 5;
export const ENXIO = 6;
export const E2BIG = 7;
export const ENOEXEC = 8;
export const EBADF = 9;
export const ECHILD = 10;
export const EAGAIN = 11;
export const EWOULDBLOCK = 11;
export const ENOMEM = 12;
export const EACCES = 13;
export const EFAULT = 14;
export const EBUSY = 16;
export const EEXIST = 17;
export const EXDEV = 18;
export const ENODEV = 19;
export const ENOTDIR = 20;
export const EISDIR = 21;
export const EINVAL = 22;
export const ENFILE = 23;
export const EMFILE = 24;
export const ENOSPC = 28;
export const EROFS = 30;
export const EMLINK = 31;
export const EDOM = 33;
export const ERANGE = 34;
export const EDEADLK = 35;
export const EDEADLOCK = 35;
export const ENAMETOOLONG = 36;
export const ENOLCK = 37;
export const ENOSYS = 38;
export const ENOTEMPTY = 39;
export const ENODATA = 61;
export const ETIME = 62;
export const EBADMSG = 74;
export const EOVERFLOW = 75;
export const EILSEQ = 84;
/** Xen-internal (guarded by __XEN__): a preempted operation to be restarted as a continuation. */
export const ERESTART = 85;
export const ENOTSOCK = 88;
export const EMSGSIZE = 90;
export const EOPNOTSUPP = 95;
export const EADDRINUSE = 98;
export const EADDRNOTAVAIL = 99;
export const ENOBUFS = 105;
export const EISCONN = 106;
export const ENOTCONN = 107;
export const ETIMEDOUT = 110;
export const ECONNREFUSED = 111;

// One name per value; the aliases EWOULDBLOCK and EDEADLOCK are left out so the
// canonical name (EAGAIN, EDEADLK) is the one logged.
const NAMES: readonly string[] = (() => {
  const canonical = {
    EPERM, ENOENT, ESRCH, EINTR, EIO, ENXIO, E2BIG, ENOEXEC, EBADF, ECHILD, EAGAIN,
    ENOMEM, EACCES, EFAULT, EBUSY, EEXIST, EXDEV, ENODEV, ENOTDIR, EISDIR, EINVAL,
    ENFILE, EMFILE, ENOSPC, EROFS, EMLINK, EDOM, ERANGE, EDEADLK, ENAMETOOLONG, ENOLCK,
    ENOSYS, ENOTEMPTY, ENODATA, ETIME, EBADMSG, EOVERFLOW, EILSEQ, ERESTART, ENOTSOCK,
    EMSGSIZE, EOPNOTSUPP, EADDRINUSE, EADDRNOTAVAIL, ENOBUFS, EISCONN, ENOTCONN,
    ETIMEDOUT, ECONNREFUSED,
  };
  const names: string[] = [];
  for (const [name, value] of Object.entries(canonical)) names[value] = name;
  return names;
})();

/**
 * The name of an error number for logs: errnoName(-22) and errnoName(22) are both
 * "EINVAL". A value Xen does not define gives "errno <n>".
 */
export function errnoName(n: number): string {
  return NAMES[Math.abs(n)] ?? `errno ${n}`;
}
