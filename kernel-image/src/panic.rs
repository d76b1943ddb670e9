//! The panic handler: prints the message and location and stops QEMU with
//! the failure status (in test mode, after recording the failed test).

use core::panic::PanicInfo;
use core::sync::atomic::{AtomicBool, Ordering};

use crate::arch::qemu::{ExitCode, exit};
use crate::println;

static PANICKING: AtomicBool = AtomicBool::new(false);

#[panic_handler]
fn panic(info: &PanicInfo<'_>) -> ! {
    x86_64::instructions::interrupts::disable();
    if PANICKING.swap(true, Ordering::SeqCst) {
        // A panic while panicking (e.g. the console itself is broken): stop.
        exit(ExitCode::Failure);
    }
    let location = info
        .location()
        .map_or(("<unknown>", 0, 0), |l| (l.file(), l.line(), l.column()));
    println!();
    println!(
        "KERNEL PANIC at {}:{}:{}: {}",
        location.0,
        location.1,
        location.2,
        info.message()
    );
    crate::ktest::on_panic();
    exit(ExitCode::Failure)
}
