//! Benchmark fixture: the shell command `kernel-calls N` makes N calls from
//! this extension into the kernel (`clock::tick_event`, an import the loader
//! resolves against the kernel's own symbol) and prints nothing. The
//! kernel's `bench containment` raises it with two values of N and divides
//! the difference, to put the cost of one extension-to-kernel call beside
//! the same call made by the kernel in the same boot.
#![no_std]
#![forbid(unsafe_code)]

use spindle_sdk::prelude::*;
use spindle_sdk::spin::Mutex;

static COMMAND: Mutex<Option<Binding<Line, Reply>>> = Mutex::new(None);

fn on_command(line: &Line) -> Reply {
    let calls: u64 = line.args().next().and_then(|n| n.parse().ok()).unwrap_or(0);
    for _ in 0..calls {
        core::hint::black_box(spindle_sdk::clock::tick_event());
    }
    Reply::Handled
}

fn init(ctx: &ExtensionContext) -> Result<(), ExtensionError> {
    let binding = spindle_sdk::console::line_event()
        .binding(on_command)
        .guard(|line| line.command() == "kernel-calls")
        .install(ctx.principal())?;
    *COMMAND.lock() = Some(binding);
    Ok(())
}

fn exit(_ctx: &ExtensionContext) {
    if let Some(binding) = COMMAND.lock().take() {
        let _ = binding.uninstall();
    }
}

spindle_sdk::extension!(init: init, exit: exit);
