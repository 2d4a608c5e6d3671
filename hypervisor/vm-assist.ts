// HYPERVISOR_vm_assist (Xen's do_vm_assist): enable or disable an optional hypervisor
// behaviour for the calling domain. Layer: hypervisor.

import { EINVAL, ENOSYS } from './public/errno.ts';
import { VMASST_CMD_disable, VMASST_CMD_enable, VMASST_TYPE_m2p_strict } from './public/xen.ts';
import type { Vcpu } from './vcpu.ts';

/** Types a 64-bit PV domain may name (Xen's VM_ASSIST_VALID for PV): 0-5 and 32. */
function validType(lo: number, hi: number): boolean {
  return (hi === 0 && lo <= 5) || (hi === 0 && lo === VMASST_TYPE_m2p_strict);
}

/** vm_assist(cmd, type): the type is checked first (-EINVAL), then the command (-ENOSYS). */
export function doVmAssist(v: Vcpu, cmd: number, typeLo: number, typeHi: number): number {
  if (!validType(typeLo, typeHi)) return -EINVAL;
  const d = v.domain;
  const on = cmd === VMASST_CMD_enable;
  if (!on && cmd !== VMASST_CMD_disable) return -ENOSYS;
  if (typeLo === VMASST_TYPE_m2p_strict) d.m2pStrict = on;
  else if (on) d.vmAssist |= 1 << typeLo;
  else d.vmAssist &= ~(1 << typeLo);
  return 0;
}
