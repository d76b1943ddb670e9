//! COM1 serial console: the kernel's only terminal.
//!
//! Output and input go through one lock that is only ever taken with
//! interrupts disabled, so an interrupt handler that logs cannot deadlock
//! against the code it interrupted.

use core::fmt;

use spin::Mutex;
use uart_16550::backend::PioBackend;
use uart_16550::{Config, Uart16550};
use x86_64::instructions::interrupts;

/// I/O port base of COM1.
const COM1: u16 = 0x3f8;

static PORT: Mutex<Option<Uart16550<PioBackend>>> = Mutex::new(None);

/// Initialises COM1 (8-N-1, FIFO on, polling mode).
pub fn init() {
    // SAFETY: 0x3f8..0x400 is COM1 on every PC-compatible machine, QEMU
    // included, and nothing else in the kernel touches those ports.
    let mut uart = unsafe { Uart16550::new_port(COM1) }.expect("COM1 base port is valid");
    // A missing UART leaves the kernel silent but alive; nothing to report to.
    let _ = uart.init(Config::DEFAULT);
    interrupts::without_interrupts(|| *PORT.lock() = Some(uart));
}

/// Writes raw bytes, translating `\n` to `\r\n` for terminals.
pub fn write_bytes(bytes: &[u8]) {
    interrupts::without_interrupts(|| {
        if let Some(uart) = PORT.lock().as_mut() {
            for chunk in bytes.split_inclusive(|&b| b == b'\n') {
                if let Some((b'\n', body)) = chunk.split_last() {
                    uart.send_bytes_exact(body);
                    uart.send_bytes_exact(b"\r\n");
                } else {
                    uart.send_bytes_exact(chunk);
                }
            }
        }
    });
}

/// Writes raw bytes on the panic path: like [`write_bytes`], but if the
/// console's lock is held (the panic interrupted a write, on this CPU, and
/// that write will never resume) the port is driven directly instead of
/// waiting for ever.
pub fn write_bytes_panicking(bytes: &[u8]) {
    let send = |uart: &mut Uart16550<PioBackend>| {
        for chunk in bytes.split_inclusive(|&b| b == b'\n') {
            if let Some((b'\n', body)) = chunk.split_last() {
                uart.send_bytes_exact(body);
                uart.send_bytes_exact(b"\r\n");
            } else {
                uart.send_bytes_exact(chunk);
            }
        }
    };
    interrupts::without_interrupts(|| {
        if let Some(mut port) = PORT.try_lock() {
            if let Some(uart) = port.as_mut() {
                send(uart);
            }
            return;
        }
        // SAFETY: COM1's ports, as in `init`; the UART was initialised by
        // `init` (the lock is held, so `init` ran). The interrupted holder
        // never runs again: the panic path ends by stopping the machine.
        if let Ok(mut uart) = unsafe { Uart16550::new_port(COM1) } {
            send(&mut uart);
        }
    });
}

/// A `fmt::Write` sink for the panic path ([`write_bytes_panicking`]).
pub struct PanicConsole;

impl fmt::Write for PanicConsole {
    fn write_str(&mut self, s: &str) -> fmt::Result {
        write_bytes_panicking(s.as_bytes());
        Ok(())
    }
}

/// Returns one received byte, if any is waiting.
pub fn try_read_byte() -> Option<u8> {
    interrupts::without_interrupts(|| PORT.lock().as_mut()?.try_receive_byte().ok())
}

/// A `fmt::Write` sink for the console.
pub struct Console;

impl fmt::Write for Console {
    fn write_str(&mut self, s: &str) -> fmt::Result {
        write_bytes(s.as_bytes());
        Ok(())
    }
}

/// Prints to the serial console.
#[macro_export]
macro_rules! print {
    ($($arg:tt)*) => {{
        use core::fmt::Write as _;
        let _ = write!($crate::arch::serial::Console, $($arg)*);
    }};
}

/// Prints a line to the serial console.
#[macro_export]
macro_rules! println {
    () => { $crate::print!("\n") };
    ($($arg:tt)*) => {{
        use core::fmt::Write as _;
        let _ = writeln!($crate::arch::serial::Console, $($arg)*);
    }};
}
