// Logging for the simulated machine: pino records stamped with virtual time, never the
// host clock. Layer: hypervisor. Children carry dom, vcpu and sub (subsystem).

import { pino, type Logger, type DestinationStream } from 'pino';

export type { Logger };

/** Source of virtual time in nanoseconds. */
export interface VirtualClock {
  readonly now: number;
}

/** A logger whose records carry `vt` (virtual ns) instead of a wall-clock time. */
export function createLogger(clock: VirtualClock, level = 'info', dest?: DestinationStream): Logger {
  const opts = {
    level,
    base: null,
    timestamp: () => `,"vt":${clock.now}`,
  };
  return dest ? pino(opts, dest) : pino(opts);
}

/** A logger that writes nothing (the default for tests and embedding). */
export function silentLogger(): Logger {
  return pino({ level: 'silent' });
}
