// Guest entry points Xen bounces to: callback_op types, flags and argument layouts
// (public/callback.h). Part of the public ABI (hypervisor/public/): imported by the
// hypervisor and by guest code alike.

import { struct } from './layout.ts';

// public/callback.h: callback types.
export const CALLBACKTYPE_event = 0;
export const CALLBACKTYPE_failsafe = 1;
export const CALLBACKTYPE_syscall = 2;
/** Pre-0x00030207 number of sysenter; x86-64 Xen rejects it. */
export const CALLBACKTYPE_sysenter_deprecated = 3;
export const CALLBACKTYPE_nmi = 4;
export const CALLBACKTYPE_sysenter = 5;
export const CALLBACKTYPE_syscall32 = 7;

// public/callback.h: callback_register.flags.
export const CALLBACKF_mask_events = 1 << 0;

// public/callback.h: callback_op commands.
export const CALLBACKOP_register = 0;
export const CALLBACKOP_unregister = 1;

export const CALLBACK_REGISTER = struct('struct callback_register', 16, {
  type: [0, 2],
  flags: [2, 2],
  address: [8, 8],
});

export const CALLBACK_UNREGISTER = struct('struct callback_unregister', 4, {
  type: [0, 2],
  _unused: [2, 2],
});
