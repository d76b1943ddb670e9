//! Tries to make the kernel's capability itself: its field is private to
//! the dispatcher, so the struct literal does not build.
#![no_std]
#![forbid(unsafe_code)]

use spindle_sdk::clock;
use spindle_sdk::dispatcher::KernelCapability;
use spindle_sdk::prelude::*;

fn init(_ctx: &ExtensionContext) -> Result<(), ExtensionError> {
    let forged = KernelCapability { _private: () };
    clock::set_hz(forged, 1);
    Ok(())
}

fn exit(_ctx: &ExtensionContext) {}

spindle_sdk::extension!(init: init, exit: exit);
