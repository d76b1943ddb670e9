//! Test fixture: two faults at once. The shell command `two-faults` arms
//! this extension's `Clock.Tick` handler (which then panics in the timer
//! interrupt) and panics in its own `Console.Line` handler, so two panics
//! of one extension are in flight in two contexts; the kernel must report
//! both and unload the extension exactly once.
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
        panic!("second fault: Clock.Tick handler at tick {tick}");
    }
}

#[inline(never)]
fn on_command(_line: &Line) -> Reply {
    ARMED.store(true, Ordering::Relaxed);
    // Let a few timer ticks reach the armed handler first.
    let until = spindle_sdk::clock::ticks() + 3;
    while spindle_sdk::clock::ticks() < until {
        core::hint::spin_loop();
    }
    panic!("first fault: Console.Line handler");
}

fn init(ctx: &ExtensionContext) -> Result<(), ExtensionError> {
    let Some(tick_event) = spindle_sdk::clock::tick_event() else {
        return Err(ExtensionError::new("Clock.Tick is not declared"));
    };
    *TICK.lock() = Some(tick_event.binding(on_tick).install(ctx.principal())?);
    let command = spindle_sdk::console::line_event()
        .binding(on_command)
        .guard(|line| line.command() == "two-faults")
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
