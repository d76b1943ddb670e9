//! The panic handler.
//!
//! A panic inside a containment boundary ([`crate::containment::catch`])
//! unwinds back to it. Any other panic is fatal: the handler prints the
//! message, the location and a symbolised backtrace
//! ([`crate::debug::backtrace`]), and stops QEMU with the failure status (in
//! test mode, after recording the failed test). Everything it prints goes
//! through the console's panic path, which never waits for the console's
//! lock.

use core::fmt::Write;
use core::panic::PanicInfo;
use core::sync::atomic::{AtomicBool, Ordering};

use crate::arch::qemu::{ExitCode, exit};
use crate::arch::serial::PanicConsole;
use crate::containment;
use crate::debug::backtrace::Backtrace;

static PANICKING: AtomicBool = AtomicBool::new(false);

#[panic_handler]
fn panic(info: &PanicInfo<'_>) -> ! {
    if info.can_unwind() && containment::may_unwind() && !PANICKING.load(Ordering::SeqCst) {
        // Returns only if no frame caught the unwind.
        containment::begin_unwind(info);
    }
    x86_64::instructions::interrupts::disable();
    if PANICKING.swap(true, Ordering::SeqCst) {
        // A panic while panicking (e.g. the console itself is broken): stop.
        exit(ExitCode::Failure);
    }
    let location = info
        .location()
        .map_or(("<unknown>", 0, 0), |l| (l.file(), l.line(), l.column()));
    let mut console = PanicConsole;
    let _ = writeln!(
        console,
        "\nKERNEL PANIC at {}:{}:{}: {}",
        location.0,
        location.1,
        location.2,
        info.message()
    );
    let _ = Backtrace::capture().print(&mut console);
    crate::ktest::on_panic();
    exit(ExitCode::Failure)
}

/// An allocation that failed panics, and the panic unwinds like any other:
/// an extension whose heap reached its quota (its `Box::new`, its vector's
/// growth, in its code or in kernel code it called) is contained at the
/// boundary it was called through and blamed, from its frame on the stack.
/// Without this handler `alloc` stops with a panic that cannot unwind.
#[alloc_error_handler]
fn allocation_failed(layout: core::alloc::Layout) -> ! {
    panic!(
        "memory allocation of {} bytes (align {}) failed",
        layout.size(),
        layout.align()
    )
}

/// Stops the machine for a kernel panic that was unwound to a boundary
/// before it was known to be the kernel's (see
/// [`containment::faults`]): prints it with the backtrace captured where
/// it was raised.
pub fn fatal_caught(record: &containment::Panicked) -> ! {
    x86_64::instructions::interrupts::disable();
    if PANICKING.swap(true, Ordering::SeqCst) {
        exit(ExitCode::Failure);
    }
    let mut console = PanicConsole;
    let _ = writeln!(
        console,
        "\nKERNEL PANIC at {}:{}:{}: {}",
        record.file, record.line, record.column, record.message
    );
    if let Some(backtrace) = &record.backtrace {
        let _ = backtrace.print(&mut console);
    }
    crate::ktest::on_panic();
    exit(ExitCode::Failure)
}
