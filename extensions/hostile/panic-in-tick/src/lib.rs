//! Test fixture: installs a `Clock.Tick` handler and the shell command
//! `panic-in-tick`, which arms it; the armed handler panics in the timer
//! interrupt. The kernel must contain the panic inside the interrupt
//! handler, report this extension and unload it from thread context.
#![no_std]
#![forbid(unsafe_code)]

use core::sync::atomic::{AtomicBool, Ordering};

use spindle_sdk::prelude::*;
use spindle_sdk::spin::Mutex;

static ARMED: AtomicBool = AtomicBool::new(false);
static TICK: Mutex<Option<Binding<u64, ()>>> = Mutex::new(None);
static COMMAND: Mutex<Option<Binding<Line, Reply>>> = Mutex::new(None);

#[inline(never)]
fn on_tick(tick: &u64) {
    if ARMED.load(Ordering::Relaxed) {
        panic!("deliberate panic in a Clock.Tick handler at tick {tick}");
    }
}

fn arm(_line: &Line) -> Reply {
    ARMED.store(true, Ordering::Relaxed);
    println!("panic-in-tick: armed; the next Clock.Tick handler call panics");
    Reply::Handled
}

fn init(ctx: &ExtensionContext) -> Result<(), ExtensionError> {
    let Some(tick_event) = spindle_sdk::clock::tick_event() else {
        return Err(ExtensionError::new("Clock.Tick is not declared"));
    };
    let tick = tick_event.binding(on_tick).install(ctx.principal())?;
    *TICK.lock() = Some(tick);
    let command = spindle_sdk::console::line_event()
        .binding(arm)
        .guard(|line| line.command() == "panic-in-tick")
        .install(ctx.principal())?;
    *COMMAND.lock() = Some(command);
    Ok(())
}

fn exit(_ctx: &ExtensionContext) {
    if let Some(binding) = COMMAND.lock().take() {
        let _ = binding.uninstall();
    }
    if let Some(binding) = TICK.lock().take() {
        let _ = binding.uninstall();
    }
}

spindle_sdk::extension!(init: init, exit: exit);
