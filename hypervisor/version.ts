// HYPERVISOR_xen_version (Xen's do_xen_version): the version, build strings, platform
// parameters and feature bits a guest asks for. Layer: hypervisor. Under the dummy XSM
// policy only the control domain may read the command line and the build id.

import type { Hypervisor } from './hypervisor.ts';
import { EFAULT, EINVAL, ENOBUFS, ENOSYS, EPERM } from './public/errno.ts';
import * as V from './public/version.ts';
import type { Vcpu } from './vcpu.ts';

export const XEN_MAJOR = 4;
export const XEN_MINOR = 17;
export const XEN_EXTRAVERSION = '-xensim';
const CAPABILITIES = 'xen-3.0-x86_64 ';
const CHANGESET = 'xensim';
const COMMANDLINE = 'console=com1 dom0_mem=512M';
const DENIED = '<denied>';
/** A fixed 20-byte build id (a simulated SHA-1). */
const BUILD_ID = new Uint8Array(20).map((_, i) => (i * 37 + 11) & 0xff);
/** HYPERVISOR_VIRT_START, 0xFFFF800000000000, as halves. */
const VIRT_START_HI = 0xffff8000;

const scratch = new Uint8Array(1024);

function putString(s: string, size: number): Uint8Array {
  scratch.fill(0, 0, size);
  for (let i = 0; i < s.length && i < size - 1; i++) scratch[i] = s.charCodeAt(i);
  return scratch;
}

function copyTo(hv: Hypervisor, v: Vcpu, lo: number, hi: number, buf: Uint8Array, len: number): number {
  return hv.ga.copyTo(v, lo, hi, buf, len) ? 0 : -EFAULT;
}

/** xen_version(cmd, arg). Unknown commands -ENOSYS; copy faults -EFAULT. */
export function doXenVersion(hv: Hypervisor, v: Vcpu, cmd: number, argLo: number, argHi: number): number {
  if (cmd === V.XENVER_version) return (XEN_MAJOR << 16) | XEN_MINOR;
  const d = v.domain;
  const copyOut = (buf: Uint8Array, len: number): number => copyTo(hv, v, argLo, argHi, buf, len);
  switch (cmd) {
    case V.XENVER_version:
      return (XEN_MAJOR << 16) | XEN_MINOR;
    case V.XENVER_extraversion:
      return copyOut(putString(XEN_EXTRAVERSION, V.XEN_EXTRAVERSION_LEN), V.XEN_EXTRAVERSION_LEN);
    case V.XENVER_compile_info: {
      const L = V.XEN_COMPILE_INFO.fields;
      const buf = new Uint8Array(V.XEN_COMPILE_INFO.size);
      buf.set(putString('xensim tsc', L.compiler.size).subarray(0, L.compiler.size), L.compiler.offset);
      buf.set(putString('xensim', L.compile_by.size).subarray(0, L.compile_by.size), L.compile_by.offset);
      buf.set(putString('localdomain', L.compile_domain.size).subarray(0, L.compile_domain.size), L.compile_domain.offset);
      buf.set(putString('simulated', L.compile_date.size).subarray(0, L.compile_date.size), L.compile_date.offset);
      return copyOut(buf, buf.length);
    }
    case V.XENVER_capabilities:
      return copyOut(putString(CAPABILITIES, V.XEN_CAPABILITIES_INFO_LEN), V.XEN_CAPABILITIES_INFO_LEN);
    case V.XENVER_changeset:
      return copyOut(putString(CHANGESET, V.XEN_CHANGESET_INFO_LEN), V.XEN_CHANGESET_INFO_LEN);
    case V.XENVER_platform_parameters:
      return hv.ga.write64(v, argLo, argHi, 0, VIRT_START_HI) ? 0 : -EFAULT;
    case V.XENVER_get_features: {
      if (!hv.ga.copyWords(v, argLo, argHi, 2)) return -EFAULT;
      if (hv.ga.words[0] !== 0) return -EINVAL;
      let submap = (1 << V.XENFEAT_mmu_pt_update_preserve_ad) | (1 << V.XENFEAT_highmem_assist) |
        (1 << V.XENFEAT_gnttab_map_avail_bits) | (1 << V.XENFEAT_memory_op_vnode_supported);
      if (d.vmAssistEnabled(3)) submap |= 1 << V.XENFEAT_pae_pgdir_above_4gb;
      if (d.hasIomem) submap |= 1 << V.XENFEAT_dom0;
      const off = V.XEN_FEATURE_INFO.fields.submap.offset;
      const [lo, hi] = [argLo + off, argHi];
      return hv.ga.write32(v, lo >>> 0, lo > 0xffffffff ? (hi + 1) >>> 0 : hi, submap) ? 0 : -EFAULT;
    }
    case V.XENVER_pagesize:
      return argLo !== 0 || argHi !== 0 ? -EINVAL : 4096;
    case V.XENVER_guest_handle:
      return copyOut(d.handle, 16);
    case V.XENVER_commandline:
      // Denied: only "<denied>" and its NUL are copied; the rest of the buffer is untouched.
      return d.isPrivileged ? copyOut(putString(COMMANDLINE, 1024), 1024) : copyOut(putString(DENIED, 9), 9);
    case V.XENVER_build_id: {
      if (!d.isPrivileged) return -EPERM;
      if (argLo === 0 && argHi === 0) return BUILD_ID.length;
      if (!hv.ga.copyWords(v, argLo, argHi, 1)) return -EFAULT;
      if (hv.ga.words[0] === 0) return -EINVAL;
      if (hv.ga.words[0] < BUILD_ID.length) return -ENOBUFS;
      const bufOff = V.XEN_BUILD_ID.fields.buf.offset;
      const lo = argLo + bufOff;
      return hv.ga.copyTo(v, lo >>> 0, lo > 0xffffffff ? (argHi + 1) >>> 0 : argHi, BUILD_ID, BUILD_ID.length)
        ? BUILD_ID.length : -EFAULT;
    }
    default:
      return -ENOSYS;
  }
}
