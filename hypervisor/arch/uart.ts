// A 16550-style serial port without FIFOs, as a polling console driver uses it: the
// transmit holding register, the line status register's THRE/TEMT bits, and the divisor
// latch that sets the baud rate. Layer: hypervisor/arch. Each character takes ten bit
// times to send (start, 8 data, stop); until it is sent THRE reads clear, so a driver
// that waits for THRE before each byte spends real (virtual) time per character.
// Used by the bare machine's COM1 and by the trap-and-emulate hypervisor's.

export const COM1_PORT = 0x3f8;

/** Register offsets from the base port. */
export const UART_THR = 0;
export const UART_DLL = 0;
export const UART_IER = 1;
export const UART_DLM = 1;
export const UART_LCR = 3;
export const UART_LSR = 5;

/** Line status: transmit holding register empty, and transmitter empty. */
export const LSR_THRE = 0x20;
export const LSR_TEMT = 0x40;
/** LCR bit 7: the divisor latch is at offsets 0 and 1. */
export const LCR_DLAB = 0x80;

const BASE_BAUD = 115200;

export class Uart {
  private lcr = 0x03;
  private divisor = 1;
  private ier = 0;
  /** Virtual ns when the character being sent is out. */
  private busyUntil = 0;
  private line = '';
  /** Characters sent. */
  sent = 0;

  constructor(
    readonly base: number,
    /** Called with each complete line (without its newline). */
    private readonly onLine: (text: string) => void,
    /** A line this long is passed on without waiting for its newline (bounded host memory). */
    private readonly maxLine = 4096,
  ) {}

  /** True when `port` is one of this UART's eight registers. */
  claims(port: number): boolean {
    return port >= this.base && port < this.base + 8;
  }

  /** Nanoseconds one character takes at the current baud rate. */
  charTimeNs(): number {
    return (10 * 1e9 * this.divisor) / BASE_BAUD;
  }

  read(port: number, now: number): number {
    switch (port - this.base) {
      case UART_DLL: return (this.lcr & LCR_DLAB) !== 0 ? this.divisor & 0xff : 0; // no input
      case UART_IER: return (this.lcr & LCR_DLAB) !== 0 ? (this.divisor >>> 8) & 0xff : this.ier;
      case UART_LCR: return this.lcr;
      case UART_LSR: return now >= this.busyUntil ? LSR_THRE | LSR_TEMT : 0;
      default: return 0;
    }
  }

  write(port: number, value: number, now: number): void {
    const v = value & 0xff;
    switch (port - this.base) {
      case UART_THR:
        if ((this.lcr & LCR_DLAB) !== 0) this.divisor = (this.divisor & 0xff00) | v || 1;
        else this.transmit(v, now);
        return;
      case UART_IER:
        if ((this.lcr & LCR_DLAB) !== 0) this.divisor = (this.divisor & 0xff) | (v << 8) || 1;
        else this.ier = v & 0x0f;
        return;
      case UART_LCR:
        this.lcr = v;
        return;
      default:
    }
  }

  private transmit(ch: number, now: number): void {
    // Written while busy, the byte replaces the one waiting in the holding register on
    // real hardware; drivers wait for THRE, so here it simply queues behind it.
    this.busyUntil = Math.max(now, this.busyUntil) + this.charTimeNs();
    this.sent++;
    if (ch === 10) {
      this.onLine(this.line);
      this.line = '';
    } else if ((ch >= 0x20 && ch <= 0x7e) || ch >= 0xa0 || ch === 9) {
      // Printable bytes and tabs reach the log; control bytes are dropped, as Xen's
      // console does for guests.
      this.line += String.fromCharCode(ch);
      if (this.line.length >= this.maxLine) {
        this.onLine(this.line);
        this.line = '';
      }
    }
  }
}
