//! Test fixture: the shell command `self-deadlock` locks a spin lock and,
//! holding it, locks it again: it spins for ever on a lock it holds itself.
//! The kernel's watchdog must stop it and unload the extension.
#![no_std]
#![forbid(unsafe_code)]

use spindle_sdk::prelude::*;
use spindle_sdk::spin::Mutex;

static COMMAND: Mutex<Option<Binding<Line, Reply>>> = Mutex::new(None);
static STATE: Mutex<u64> = Mutex::new(0);

#[inline(never)]
fn bump_twice() -> u64 {
    let mut first = STATE.lock();
    *first += 1;
    // The same lock again, still held above: never granted.
    let second = STATE.lock();
    *first + *second
}

fn on_command(_line: &Line) -> Reply {
    println!("self-deadlock: locking twice");
    let total = bump_twice();
    println!("self-deadlock: {total} (never printed)");
    Reply::Handled
}

fn init(ctx: &ExtensionContext) -> Result<(), ExtensionError> {
    let binding = spindle_sdk::console::line_event()
        .binding(on_command)
        .guard(|line| line.command() == "self-deadlock")
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
