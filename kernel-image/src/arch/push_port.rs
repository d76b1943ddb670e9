//! COM2: the push channel's port. `cargo xtask run` connects it to a local
//! socket; `cargo xtask push` sends signed extensions through it. Only the
//! push receiver strand uses it, so the console (COM1) is never disturbed.

use spin::Mutex;
use uart_16550::backend::PioBackend;
use uart_16550::{Config, Uart16550};

/// I/O port base of COM2.
const COM2: u16 = 0x2f8;

static PORT: Mutex<Option<Uart16550<PioBackend>>> = Mutex::new(None);

/// Initialises COM2 (8-N-1, FIFO on, polling). Returns false if no UART
/// answers there (then the push channel stays off).
pub fn init() -> bool {
    // SAFETY: 0x2f8..0x300 is COM2 on every PC-compatible machine, QEMU
    // included, and nothing else in the kernel touches those ports.
    let Ok(mut uart) = (unsafe { Uart16550::new_port(COM2) }) else {
        return false;
    };
    if uart.init(Config::DEFAULT).is_err() {
        return false;
    }
    *PORT.lock() = Some(uart);
    true
}

/// Reads the bytes waiting (at most `buf.len()`); returns how many.
pub fn read_available(buf: &mut [u8]) -> usize {
    let mut port = PORT.lock();
    let Some(uart) = port.as_mut() else {
        return 0;
    };
    let mut n = 0;
    while n < buf.len() {
        match uart.try_receive_byte() {
            Ok(byte) => {
                buf[n] = byte;
                n += 1;
            }
            Err(_) => break,
        }
    }
    n
}

/// Writes `bytes` as they are (no newline translation: frames are binary).
pub fn write(bytes: &[u8]) {
    if let Some(uart) = PORT.lock().as_mut() {
        uart.send_bytes_exact(bytes);
    }
}
