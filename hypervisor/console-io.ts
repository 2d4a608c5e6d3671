// HYPERVISOR_console_io (Xen's do_console_io): a domain writes to, or reads from, the
// hypervisor's console. Layer: hypervisor. Release builds allow it to the control
// domain only; a debug build (CONFIG_VERBOSE_DEBUG) lets any domain write.

import type { Hypervisor } from './hypervisor.ts';
import { EFAULT, ENOSYS, EPERM, E2BIG } from './public/errno.ts';
import { CONSOLEIO_read, CONSOLEIO_write } from './public/xen.ts';
import type { Vcpu } from './vcpu.ts';

const CHUNK = 127;
const chunkBuf = new Uint8Array(CHUNK);

/** console_io(cmd, count, buffer): write returns 0 (not a count); read returns bytes read. */
export function doConsoleIo(hv: Hypervisor, v: Vcpu, cmd: number, count: number, bufLo: number, bufHi: number): number {
  const d = v.domain;
  const allowed = d.isPrivileged || (hv.debugBuild && cmd === CONSOLEIO_write);
  if (!allowed) return -EPERM;
  if (cmd === CONSOLEIO_write) {
    let text = '';
    let lo = bufLo;
    let hi = bufHi;
    for (let done = 0; done < count;) {
      const n = Math.min(CHUNK, count - done);
      if (!hv.ga.copyFrom(v, lo, hi, chunkBuf, n)) {
        consoleWrite(hv, v, text);
        return -EFAULT;
      }
      for (let i = 0; i < n; i++) text += String.fromCharCode(chunkBuf[i]);
      done += n;
      const sum = lo + n;
      if (sum > 0xffffffff) hi = (hi + 1) >>> 0;
      lo = sum >>> 0;
    }
    consoleWrite(hv, v, text);
    return 0;
  }
  if (cmd === CONSOLEIO_read) {
    // No serial input is simulated: there is never anything to read.
    return count > 0x7fffffff ? -E2BIG : 0;
  }
  return -ENOSYS;
}

/** Guest output loses its non-printables (but tab) and is prefixed "(dN) ", as in Xen. */
function consoleWrite(hv: Hypervisor, v: Vcpu, text: string): void {
  if (text.length === 0) return;
  const d = v.domain;
  const clean = d.domid === 0 ? text : text.replace(/[^\t\n\x20-\x7e]/g, '');
  for (const line of clean.split('\n')) {
    if (line.length === 0) continue;
    const out = d.domid === 0 ? line : `(d${d.domid}) ${line}`;
    hv.consoleLog.push(out);
    hv.log.info({ dom: d.domid, sub: 'console' }, out);
  }
}
