//! Links against a crate other than the SDK (the kernel's own linker).
#![no_std]
#![forbid(unsafe_code)]

use spindle_sdk::prelude::*;

fn init(_ctx: &ExtensionContext) -> Result<(), ExtensionError> {
    let _ = domains::Object::parse(&[], &domains::Limits::default());
    Ok(())
}

fn exit(_ctx: &ExtensionContext) {}

spindle_sdk::extension!(init: init, exit: exit);
