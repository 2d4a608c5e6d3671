// Event channels: HYPERVISOR_event_channel_op sub-commands, port status codes and the
// argument layouts (public/event_channel.h). Part of the public ABI (hypervisor/public/):
// imported by the hypervisor and by guest code alike. Ports are u32, domain ids u16.

import { struct } from './layout.ts';

// public/event_channel.h: event_channel_op commands.
export const EVTCHNOP_bind_interdomain = 0;
export const EVTCHNOP_bind_virq = 1;
export const EVTCHNOP_bind_pirq = 2;
export const EVTCHNOP_close = 3;
export const EVTCHNOP_send = 4;
export const EVTCHNOP_status = 5;
export const EVTCHNOP_alloc_unbound = 6;
export const EVTCHNOP_bind_ipi = 7;
export const EVTCHNOP_bind_vcpu = 8;
export const EVTCHNOP_unmask = 9;
export const EVTCHNOP_reset = 10;
/** FIFO ABI only (init_control, expand_array, set_priority). */
export const EVTCHNOP_init_control = 11;
export const EVTCHNOP_expand_array = 12;
export const EVTCHNOP_set_priority = 13;

// public/event_channel.h: evtchn_bind_pirq.flags.
export const BIND_PIRQ__WILL_SHARE = 1;

// public/event_channel.h: evtchn_status.status.
export const EVTCHNSTAT_closed = 0;
export const EVTCHNSTAT_unbound = 1;
export const EVTCHNSTAT_interdomain = 2;
export const EVTCHNSTAT_pirq = 3;
export const EVTCHNSTAT_virq = 4;
export const EVTCHNSTAT_ipi = 5;

/** Allocate a port in `dom` for `remote_dom` to bind to later. */
export const EVTCHN_ALLOC_UNBOUND = struct('struct evtchn_alloc_unbound', 8, {
  dom: [0, 2],
  remote_dom: [2, 2],
  port: [4, 4],
});

/** Connect a new local port to remote_dom's unbound remote_port. */
export const EVTCHN_BIND_INTERDOMAIN = struct('struct evtchn_bind_interdomain', 12, {
  remote_dom: [0, 2],
  remote_port: [4, 4],
  local_port: [8, 4],
});

export const EVTCHN_BIND_VIRQ = struct('struct evtchn_bind_virq', 12, {
  virq: [0, 4],
  vcpu: [4, 4],
  port: [8, 4],
});

export const EVTCHN_BIND_PIRQ = struct('struct evtchn_bind_pirq', 12, {
  pirq: [0, 4],
  flags: [4, 4],
  port: [8, 4],
});

export const EVTCHN_BIND_IPI = struct('struct evtchn_bind_ipi', 8, {
  vcpu: [0, 4],
  port: [4, 4],
});

export const EVTCHN_CLOSE = struct('struct evtchn_close', 4, {
  port: [0, 4],
});

export const EVTCHN_SEND = struct('struct evtchn_send', 4, {
  port: [0, 4],
});

/** Port status; the union u is read according to status. */
export const EVTCHN_STATUS = struct('struct evtchn_status', 24, {
  dom: [0, 2],
  port: [4, 4],
  status: [8, 4],
  vcpu: [12, 4],
  u: [16, 8],
  'u.unbound.dom': [16, 2],
  'u.interdomain.dom': [16, 2],
  'u.interdomain.port': [20, 4],
  'u.pirq': [16, 4],
  'u.virq': [16, 4],
});

export const EVTCHN_BIND_VCPU = struct('struct evtchn_bind_vcpu', 8, {
  port: [0, 4],
  vcpu: [4, 4],
});

export const EVTCHN_UNMASK = struct('struct evtchn_unmask', 4, {
  port: [0, 4],
});

export const EVTCHN_RESET = struct('struct evtchn_reset', 2, {
  dom: [0, 2],
});

export const EVTCHN_INIT_CONTROL = struct('struct evtchn_init_control', 24, {
  control_gfn: [0, 8],
  offset: [8, 4],
  vcpu: [12, 4],
  link_bits: [16, 1],
  _pad: [17, 7],
});

export const EVTCHN_EXPAND_ARRAY = struct('struct evtchn_expand_array', 8, {
  array_gfn: [0, 8],
});

export const EVTCHN_SET_PRIORITY = struct('struct evtchn_set_priority', 8, {
  port: [0, 4],
  priority: [4, 4],
});

/** The pre-3.0.2 form (HYPERVISOR_event_channel_op_compat): a command, then the argument. */
export const EVTCHN_OP = struct('struct evtchn_op', 28, {
  cmd: [0, 4],
  u: [4, 24],
});
