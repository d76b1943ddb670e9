//! Test fixture: installs a `Clock.Tick` handler and the shell command
//! `overflow-in-tick`, which arms it; the armed handler calls a function
//! that calls itself without bound, each frame holding a buffer, until the
//! stack it runs on (the kernel's interrupt stack: `Clock.Tick` handlers
//! run inside the timer interrupt) runs into its guard page. The kernel
//! must contain the overflow inside the interrupt (no double fault),
//! report this extension and unload it from thread context.
#![no_std]
#![forbid(unsafe_code)]

use core::sync::atomic::{AtomicBool, Ordering};

use spindle_sdk::prelude::*;
use spindle_sdk::spin::Mutex;

static ARMED: AtomicBool = AtomicBool::new(false);
static TICK: Mutex<Option<Binding<u64, ()>>> = Mutex::new(None);
static COMMAND: Mutex<Option<Binding<Line, Reply>>> = Mutex::new(None);

#[inline(never)]
#[allow(unconditional_recursion)] // the point of the fixture
fn descend(depth: u64) -> u64 {
    let mut buffer = [0u8; 512];
    buffer[(depth % 512) as usize] = depth as u8;
    let below = descend(core::hint::black_box(depth + 1));
    below.wrapping_add(u64::from(core::hint::black_box(buffer)[0]))
}

#[inline(never)]
fn on_tick(tick: &u64) {
    if ARMED.load(Ordering::Relaxed) {
        let total = descend(core::hint::black_box(*tick));
        core::hint::black_box(total);
    }
}

fn arm(_line: &Line) -> Reply {
    ARMED.store(true, Ordering::Relaxed);
    println!("overflow-in-tick: armed; the next Clock.Tick handler call recurses without bound");
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
        .guard(|line| line.command() == "overflow-in-tick")
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
