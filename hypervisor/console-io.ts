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
  if (cmd === CONSOLEIO_write) return consoleWrite(hv, v, count, bufLo, bufHi);
  if (cmd === CONSOLEIO_read) {
    // No serial input is simulated: there is never anything to read.
    return count > 0x7fffffff ? -E2BIG : 0;
  }
  return -ENOSYS;
}

/** Xen's PBUF: a guest's partial line is held up to this size. */
export const DOMAIN_PBUF_SIZE = 200;

/** Xen's isprint (xen/lib/ctype.c): 0x20-0x7e and 0xa0-0xff. */
function isPrint(c: number): boolean {
  return (c >= 0x20 && c <= 0x7e) || c >= 0xa0;
}

/**
 * guest_console_write: in chunks of 127 bytes. The hardware domain's output goes out as
 * written; another domain's loses its non-printables (but tab) and is held until a
 * newline or a full buffer, then printed as one "(dN) " line.
 */
function consoleWrite(hv: Hypervisor, v: Vcpu, count: number, bufLo: number, bufHi: number): number {
  const d = v.domain;
  let lo = bufLo;
  let hi = bufHi;
  while (count > 0) {
    const kcount = Math.min(CHUNK, count);
    if (!hv.ga.copyFrom(v, lo, hi, chunkBuf, kcount)) return -EFAULT;
    let consumed = kcount;
    if (d.hasIomem) {
      let text = '';
      for (let i = 0; i < kcount; i++) text += String.fromCharCode(chunkBuf[i]);
      emitRaw(hv, d.domid, text);
    } else {
      let out = '';
      let newline = false;
      let i = 0;
      while (i < kcount) {
        const c = chunkBuf[i++];
        if (c === 0x0a) {
          newline = true;
          break;
        }
        if (isPrint(c) || c === 0x09) out += String.fromCharCode(c);
      }
      consumed = i;
      if (!newline && d.consoleBuf.length + out.length < DOMAIN_PBUF_SIZE - 1) {
        d.consoleBuf += out;
      } else {
        emitLine(hv, d.domid, `(d${d.domid}) ${d.consoleBuf}${out}`);
        d.consoleBuf = '';
      }
    }
    count -= consumed;
    const sum = lo + consumed;
    if (sum > 0xffffffff) hi = (hi + 1) >>> 0;
    lo = sum >>> 0;
  }
  return 0;
}

/** Raw output, split into log lines at newlines (a partial line waits for the rest). */
function emitRaw(hv: Hypervisor, domid: number, text: string): void {
  const d = hv.domainById(domid)!;
  const parts = (d.consoleBuf + text).split('\n');
  d.consoleBuf = parts.pop() ?? '';
  for (const line of parts) emitLine(hv, domid, line);
}

/** One line of a domain's console output, into the console log and the pino log. */
export function emitConsoleLine(hv: Hypervisor, domid: number, line: string): void {
  emitLine(hv, domid, line);
}

function emitLine(hv: Hypervisor, domid: number, line: string): void {
  hv.consoleLog.push(line);
  hv.log.info({ dom: domid, sub: 'console' }, line);
}
