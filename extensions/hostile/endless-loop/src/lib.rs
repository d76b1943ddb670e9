//! Test fixture: the shell command `endless-loop` runs a loop that never
//! ends (it counts, so that the loop is not optimised into nothing). The
//! kernel's watchdog must stop it and unload the extension.
#![no_std]
#![forbid(unsafe_code)]

use spindle_sdk::prelude::*;
use spindle_sdk::spin::Mutex;

static COMMAND: Mutex<Option<Binding<Line, Reply>>> = Mutex::new(None);

#[inline(never)]
fn spin_forever(mut counter: u64) -> Reply {
    loop {
        counter = core::hint::black_box(counter.wrapping_add(1));
    }
}

fn on_command(_line: &Line) -> Reply {
    println!("endless-loop: looping");
    spin_forever(core::hint::black_box(0))
}

fn init(ctx: &ExtensionContext) -> Result<(), ExtensionError> {
    let binding = spindle_sdk::console::line_event()
        .binding(on_command)
        .guard(|line| line.command() == "endless-loop")
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
