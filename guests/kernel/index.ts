// The guest kernel as a bootable image: its boot entry, its entry points in kernel text,
// and the user programs' text. Layer: guests. Each call makes a fresh image (one kernel
// instance per boot); the same image boots natively, under Xen (patched) or under
// trap-and-emulate (unpatched).

import type { GuestCode, GuestImage } from '../../hypervisor/public/vcpu.ts';
import { Kernel } from './kernel.ts';
import {
  BOOT_ENTRY, ENTRY_GP_FAULT, ENTRY_IDLE, ENTRY_INVALID_OP, ENTRY_PAGE_FAULT, ENTRY_SYSCALL, ENTRY_TIMER,
} from './layout.ts';

export interface KernelImageOptions {
  /** User program text by virtual address (see user/libc.ts UserText). */
  programs: ReadonlyMap<number, GuestCode>;
  /** Where init (pid 1) starts. */
  init: number;
}

export function makeKernelImage(opts: KernelImageOptions): GuestImage {
  let k: Kernel | null = null;
  const kernel = (): Kernel => {
    if (!k) throw new Error('kernel entry before boot');
    return k;
  };
  const text = new Map<number, GuestCode>([
    [BOOT_ENTRY, function* (cpu) {
      k = new Kernel(cpu, opts.init);
      yield* k.boot();
    }],
    [ENTRY_PAGE_FAULT, () => kernel().pageFault()],
    [ENTRY_GP_FAULT, () => kernel().gpFault()],
    [ENTRY_INVALID_OP, () => kernel().invalidOp()],
    [ENTRY_SYSCALL, () => kernel().syscall()],
    [ENTRY_TIMER, () => kernel().timer()],
    [ENTRY_IDLE, () => kernel().idle()],
  ]);
  for (const [va, code] of opts.programs) text.set(va, code);
  return { text, entry: BOOT_ENTRY };
}

export { TICK_NS, USER_TEXT } from './layout.ts';
