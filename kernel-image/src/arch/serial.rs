//! COM1 serial console: the kernel's only terminal.
//!
//! Output and input go through one lock that is only ever taken with
//! interrupts disabled, so an interrupt handler that logs cannot deadlock
//! against the code it interrupted.

use core::fmt;
use core::sync::atomic::{AtomicU8, AtomicU64, Ordering};

use spin::Mutex;
use uart_16550::backend::PioBackend;
use uart_16550::{Config, Uart16550};
use x86_64::instructions::interrupts;

/// I/O port base of COM1.
const COM1: u16 = 0x3f8;

static PORT: Mutex<Option<Uart16550<PioBackend>>> = Mutex::new(None);

/// How many writes have completed since boot; changed only with `PORT`
/// held, so each write gets its own number.
static WRITES: AtomicU64 = AtomicU64::new(0);

/// The last byte written (before `\n` translation).
static LAST_BYTE: AtomicU8 = AtomicU8::new(b'\n');

/// Where the console's output stands: how many writes have completed and
/// the last byte written. The shell keeps the mark of its own last write
/// to learn that something else printed since ([`write_resuming`]).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct OutputMark {
    /// Writes completed since boot.
    pub writes: u64,
    /// The last byte written.
    pub last_byte: u8,
}

/// The console's output mark now.
pub fn output_mark() -> OutputMark {
    interrupts::without_interrupts(|| {
        let _port = PORT.lock();
        current_mark()
    })
}

/// The mark; called with `PORT` held.
fn current_mark() -> OutputMark {
    OutputMark {
        writes: WRITES.load(Ordering::Relaxed),
        last_byte: LAST_BYTE.load(Ordering::Relaxed),
    }
}

/// Sends `bytes` (translating `\n` to `\r\n`) and counts the write;
/// called with `PORT` held (or, on the panic path, when its holder will
/// never run again).
fn send(uart: Option<&mut Uart16550<PioBackend>>, bytes: &[u8]) {
    if let Some(uart) = uart {
        for chunk in bytes.split_inclusive(|&b| b == b'\n') {
            if let Some((b'\n', body)) = chunk.split_last() {
                uart.send_bytes_exact(body);
                uart.send_bytes_exact(b"\r\n");
            } else {
                uart.send_bytes_exact(chunk);
            }
        }
    }
    if let Some(&last) = bytes.last() {
        LAST_BYTE.store(last, Ordering::Relaxed);
    }
    WRITES.fetch_add(1, Ordering::Relaxed);
}

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
    interrupts::without_interrupts(|| send(PORT.lock().as_mut(), bytes));
}

/// Writes `bytes` as the continuation of a line whose owner last wrote at
/// `own` (see [`OutputMark`]). If anything else was written since, the
/// line is first restored: a line break if the other output did not end
/// with one, then each part of `restore` (for the shell: the prompt and
/// the input typed so far). Check and writes happen under the console's
/// lock, so no other output can come between them. Returns the mark after
/// the write, for the next call.
pub fn write_resuming(own: OutputMark, restore: &[&[u8]], bytes: &[u8]) -> OutputMark {
    interrupts::without_interrupts(|| {
        let mut port = PORT.lock();
        let now = current_mark();
        if now.writes != own.writes {
            if now.last_byte != b'\n' {
                send(port.as_mut(), b"\n");
            }
            for part in restore {
                send(port.as_mut(), part);
            }
        }
        send(port.as_mut(), bytes);
        current_mark()
    })
}

/// Writes raw bytes on the panic path: like [`write_bytes`], but if the
/// console's lock is held (the panic interrupted a write, on this CPU, and
/// that write will never resume) the port is driven directly instead of
/// waiting for ever.
pub fn write_bytes_panicking(bytes: &[u8]) {
    interrupts::without_interrupts(|| {
        if let Some(mut port) = PORT.try_lock() {
            send(port.as_mut(), bytes);
            return;
        }
        // SAFETY: COM1's ports, as in `init`; the UART was initialised by
        // `init` (the lock is held, so `init` ran). The interrupted holder
        // never runs again: the panic path ends by stopping the machine.
        if let Ok(mut uart) = unsafe { Uart16550::new_port(COM1) } {
            send(Some(&mut uart), bytes);
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
