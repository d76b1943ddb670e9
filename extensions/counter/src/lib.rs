//! `counter`: exports a counter that other extensions call directly. Its
//! public functions become exports of the `counter` domain; loading
//! `counter-client` resolves the client's imports against them, and while the
//! client is loaded the kernel refuses to unload `counter`.
#![no_std]
#![forbid(unsafe_code)]

use core::sync::atomic::{AtomicU64, Ordering};

use spindle_sdk::prelude::*;

static COUNT: AtomicU64 = AtomicU64::new(0);

/// Adds `by` to the counter and returns the new value.
///
/// `inline(never)` keeps this a real cross-extension call (a small function
/// would otherwise be inlined into the caller, which would then import only
/// the static).
#[inline(never)]
pub fn increment(by: u64) -> u64 {
    COUNT.fetch_add(by, Ordering::SeqCst) + by
}

/// The current value.
#[inline(never)]
pub fn value() -> u64 {
    COUNT.load(Ordering::SeqCst)
}

fn init(_ctx: &ExtensionContext) -> Result<(), ExtensionError> {
    println!("counter: loaded at {}", value());
    Ok(())
}

fn exit(_ctx: &ExtensionContext) {
    println!("counter: unloaded at {}", value());
}

spindle_sdk::extension!(init: init, exit: exit);
