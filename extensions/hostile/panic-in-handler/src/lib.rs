//! Test fixture: installs a `Console.Line` handler for the command
//! `panic-in-handler`, which panics two named calls deep
//! (`on_command` → `detonate`). Until handlers run inside a containment
//! boundary the panic is fatal; either way its backtrace must name this
//! extension's functions, through the dispatcher, down to the shell.
#![no_std]
#![forbid(unsafe_code)]

use spindle_sdk::prelude::*;
use spindle_sdk::spin::Mutex;

static COMMAND: Mutex<Option<Binding<Line, Reply>>> = Mutex::new(None);

/// Panics; `inline(never)` keeps it a frame of its own in the backtrace.
#[inline(never)]
fn detonate(words: usize) -> Reply {
    panic!("deliberate panic in a Console.Line handler ({words} argument(s))");
}

#[inline(never)]
fn on_command(line: &Line) -> Reply {
    let words = line.args().count();
    detonate(core::hint::black_box(words))
}

fn init(ctx: &ExtensionContext) -> Result<(), ExtensionError> {
    let binding = spindle_sdk::console::line_event()
        .binding(on_command)
        .guard(|line| line.command() == "panic-in-handler")
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
