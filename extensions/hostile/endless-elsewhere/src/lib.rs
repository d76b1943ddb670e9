//! Test fixture: endless loops outside a synchronous `Console.Line`
//! handler. The shell command `endless-tick` arms its `Clock.Tick` handler,
//! which then loops for ever in the timer interrupt; `endless-async`
//! reaches an asynchronous handler, which loops for ever in a strand of
//! its own after the raise returned. The kernel's watchdog must stop both
//! and unload the extension.
#![no_std]
#![forbid(unsafe_code)]

use core::sync::atomic::{AtomicBool, Ordering};

use spindle_sdk::prelude::*;
use spindle_sdk::spin::Mutex;

static ARMED: AtomicBool = AtomicBool::new(false);
static TICK: Mutex<Option<Binding<u64, ()>>> = Mutex::new(None);
static COMMANDS: Mutex<[Option<Binding<Line, Reply>>; 2]> = Mutex::new([None, None]);

/// Counts for ever (so that the loop is not optimised into nothing).
#[inline(never)]
fn loop_in_tick(mut counter: u64) -> ! {
    loop {
        counter = core::hint::black_box(counter.wrapping_add(1));
    }
}

/// The same loop, in the asynchronous handler's strand.
#[inline(never)]
fn loop_in_strand(mut counter: u64) -> ! {
    // A different step from `loop_in_tick`'s, so that the linker does not
    // fold the two functions into one.
    loop {
        counter = core::hint::black_box(counter.wrapping_mul(3));
    }
}

fn on_tick(tick: &u64) {
    if ARMED.load(Ordering::Relaxed) {
        loop_in_tick(*tick);
    }
}

fn arm(_line: &Line) -> Reply {
    ARMED.store(true, Ordering::Relaxed);
    println!("endless-elsewhere: armed; the next Clock.Tick handler call never returns");
    Reply::Handled
}

fn in_strand(line: &Line) -> Reply {
    loop_in_strand(line.args().count() as u64)
}

fn init(ctx: &ExtensionContext) -> Result<(), ExtensionError> {
    let Some(tick_event) = spindle_sdk::clock::tick_event() else {
        return Err(ExtensionError::new("Clock.Tick is not declared"));
    };
    let tick = tick_event.binding(on_tick).install(ctx.principal())?;
    *TICK.lock() = Some(tick);
    let event = spindle_sdk::console::line_event();
    let arming = event
        .binding(arm)
        .guard(|line| line.command() == "endless-tick")
        .install(ctx.principal())?;
    let asynchronous = event
        .binding(in_strand)
        .guard(|line| line.command() == "endless-async")
        .asynchronous()
        .install(ctx.principal())?;
    *COMMANDS.lock() = [Some(arming), Some(asynchronous)];
    Ok(())
}

fn exit(_ctx: &ExtensionContext) {
    for binding in COMMANDS.lock().iter_mut() {
        if let Some(binding) = binding.take() {
            let _ = binding.uninstall();
        }
    }
    if let Some(binding) = TICK.lock().take() {
        let _ = binding.uninstall();
    }
}

spindle_sdk::extension!(init: init, exit: exit);
