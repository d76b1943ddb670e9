//! Test fixture: `init` installs a `Console.Line` handler (command
//! `panic-in-init-probe`), holds heap memory in a local, and then panics.
//! The panic must unwind through this extension's frames (its unwind tables
//! are registered at load) back to the loader, dropping the local on the
//! way; the loader then undoes the whole load.
#![no_std]
#![forbid(unsafe_code)]

extern crate alloc;

use alloc::vec::Vec;

use spindle_sdk::prelude::*;
use spindle_sdk::spin::Mutex;

static PROBE: Mutex<Option<Binding<Line, Reply>>> = Mutex::new(None);

fn init(ctx: &ExtensionContext) -> Result<(), ExtensionError> {
    let binding = spindle_sdk::console::line_event()
        .binding(|_| {
            println!("panic-in-init-probe: this handler should have been revoked");
            Reply::Handled
        })
        .guard(|line| line.command() == "panic-in-init-probe")
        .install(ctx.principal())?;
    *PROBE.lock() = Some(binding);
    // Freed by the unwind, or the heap would not come back to its baseline.
    let scratch: Vec<u64> = (0..512).collect();
    let total: u64 = scratch.iter().sum();
    panic!("deliberate panic in init (scratch sum {total})");
}

fn exit(_ctx: &ExtensionContext) {}

spindle_sdk::extension!(init: init, exit: exit);
