// HYPERVISOR_vcpu_op commands, runstates and argument layouts (public/vcpu.h).
// Part of the public ABI (hypervisor/public/).

import { struct } from './layout.ts';

export const VCPUOP_initialise = 0;
export const VCPUOP_up = 1;
export const VCPUOP_down = 2;
export const VCPUOP_is_up = 3;
export const VCPUOP_get_runstate_info = 4;
export const VCPUOP_register_runstate_memory_area = 5;
export const VCPUOP_set_periodic_timer = 6;
export const VCPUOP_stop_periodic_timer = 7;
export const VCPUOP_set_singleshot_timer = 8;
export const VCPUOP_stop_singleshot_timer = 9;
export const VCPUOP_register_vcpu_info = 10;
export const VCPUOP_send_nmi = 11;
export const VCPUOP_get_physid = 12;
export const VCPUOP_register_vcpu_time_memory_area = 13;

export const RUNSTATE_running = 0;
export const RUNSTATE_runnable = 1;
export const RUNSTATE_blocked = 2;
export const RUNSTATE_offline = 3;

export const VCPU_SSHOTTMR_future = 1 << 0;

export const VCPU_RUNSTATE_INFO = struct('struct vcpu_runstate_info', 48, {
  state: [0, 4],
  state_entry_time: [8, 8],
  time: [16, 32],
});

export const VCPU_SET_PERIODIC_TIMER = struct('struct vcpu_set_periodic_timer', 8, {
  period_ns: [0, 8],
});

export const VCPU_SET_SINGLESHOT_TIMER = struct('struct vcpu_set_singleshot_timer', 16, {
  timeout_abs_ns: [0, 8],
  flags: [8, 4],
});
