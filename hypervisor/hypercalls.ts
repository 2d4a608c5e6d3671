// Wires each hypercall family into the dispatch table: argument registers decoded
// here, the work done by the family's file. Layer: hypervisor.

import type { Hypervisor } from './hypervisor.ts';
import { MmuUpdate } from './mm/mmu-update.ts';
import { doCallbackOp, doSetCallbacks, doSetTrapTable, doStackSwitch } from './callback.ts';
import { doIret } from './iret.ts';
import { SchedOp } from './sched-op.ts';
import { VcpuOp } from './vcpu-op.ts';
import { UpdateVaMapping } from './mm/update-va-mapping.ts';
import { doXenVersion } from './version.ts';
import { doConsoleIo } from './console-io.ts';
import { doVmAssist } from './vm-assist.ts';
import { Multicall } from './multicall.ts';
import { MemoryOp } from './memory-op.ts';
import { Domctl } from './domctl.ts';
import * as X from './public/xen.ts';
import type { Vcpu } from './vcpu.ts';

export function registerHypercalls(hv: Hypervisor): void {
  const t = hv.table;
  const mmu = new MmuUpdate(hv.mm, hv.ga);
  const ext = hv.mmuext;
  const uva = new UpdateVaMapping(hv.mm, hv.ga, hv);
  const mem = new MemoryOp(hv);
  const domctl = new Domctl(hv);
  // Register arguments: a[2i] = low half, a[2i+1] = high half of argument i.
  t.register(X.HYPERVISOR_mmu_update, (v, a) => mmu.call(v, a[0], a[1], a[2], a[4], a[5], a[6]));
  t.register(X.HYPERVISOR_mmuext_op, (v, a) => ext.call(v, a[0], a[1], a[2], a[4], a[5], a[6]));
  t.register(X.HYPERVISOR_update_va_mapping, (v, a) => uva.call(v, a[0], a[1], a[2], a[3], a[4], a[5]));
  t.register(X.HYPERVISOR_update_va_mapping_otherdomain,
    (v, a) => uva.callOther(v, a[0], a[1], a[2], a[3], a[4], a[5], a[6]));
  t.register(X.HYPERVISOR_memory_op, (v, a) => mem.call(v, a[0], a[1], a[2], a[3]));
  t.register(X.HYPERVISOR_domctl, (v, a) => domctl.call(v, a[0], a[1]));
  t.register(X.HYPERVISOR_xen_version, (v, a) => doXenVersion(hv, v, a[0], a[2], a[3]));
  t.register(X.HYPERVISOR_console_io, (v, a) => doConsoleIo(hv, v, a[0], a[2], a[4], a[5]));
  t.register(X.HYPERVISOR_vm_assist, (v, a) => doVmAssist(v, a[0], a[2], a[3]));
  t.register(X.HYPERVISOR_set_trap_table, (v, a) => doSetTrapTable(hv.ga, v, a[0], a[1]));
  t.register(X.HYPERVISOR_stack_switch, (v, a) => doStackSwitch(v, a[0], a[2], a[3]));
  t.register(X.HYPERVISOR_set_callbacks, (v, a) => doSetCallbacks(v, a));
  t.register(X.HYPERVISOR_callback_op, (v, a) => doCallbackOp(hv.ga, v, a[0], a[2], a[3]));
  const crash = (v: Vcpu, why: string): void => hv.domainCrash(v.domain, why);
  t.register(X.HYPERVISOR_iret, (v) => doIret(hv.mem, hv.ga, v, crash));
  t.register(X.HYPERVISOR_event_channel_op, (v, a) => hv.evtchn.call(v, a[0], a[2], a[3]));
  t.register(X.HYPERVISOR_grant_table_op, (v, a) => hv.gnttab.call(v, a[0], a[2], a[3], a[4]));
  t.register(X.HYPERVISOR_event_channel_op_compat, (v, a) => hv.evtchn.callCompat(v, a[0], a[1]));
  const sched = new SchedOp(hv);
  t.register(X.HYPERVISOR_sched_op, (v, a) => sched.call(v, a[0], a[2], a[3]));
  t.register(X.HYPERVISOR_set_timer_op, (v, a) => sched.setTimerOp(v, a[0], a[1]));
  const vcpuOp = new VcpuOp(hv);
  t.register(X.HYPERVISOR_vcpu_op, (v, a) => vcpuOp.call(v, a[0], a[2], a[4], a[5]));
  const mc = new Multicall(hv);
  t.register(X.HYPERVISOR_multicall, (v, a) => mc.call(v, a[0], a[1], a[2]));
}
