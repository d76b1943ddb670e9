//! Test fixture: an ordinary extension compiled with `-C code-model=large`
//! (set by the build from its Cargo metadata). The large model addresses
//! data through 64-bit GOT offsets (R_X86_64_GOTPC64, GOTOFF64), which the
//! loader does not support: it must refuse the object and name the
//! relocation.
#![no_std]
#![forbid(unsafe_code)]

use core::sync::atomic::{AtomicU64, Ordering};

use spindle_sdk::prelude::*;

static CALLS: AtomicU64 = AtomicU64::new(0);

fn init(_ctx: &ExtensionContext) -> Result<(), ExtensionError> {
    CALLS.fetch_add(1, Ordering::Relaxed);
    println!(
        "large-model: init ran {} time(s)",
        CALLS.load(Ordering::Relaxed)
    );
    Ok(())
}

fn exit(_ctx: &ExtensionContext) {}

spindle_sdk::extension!(init: init, exit: exit);
