//! Test fixture: calls the kernel's own ELF linker (`domains`), a
//! kernel-internal crate that the `SpinPublic` domain does not export. The
//! build lets this fixture through so that the loader's check is what
//! refuses it, naming the symbol.
#![no_std]
#![forbid(unsafe_code)]

use spindle_sdk::prelude::*;

fn init(_ctx: &ExtensionContext) -> Result<(), ExtensionError> {
    match domains::Object::parse(&[], &domains::Limits::default()) {
        Ok(_) => Err(ExtensionError::new("an empty object parsed")),
        Err(_) => Ok(()),
    }
}

fn exit(_ctx: &ExtensionContext) {}

spindle_sdk::extension!(init: init, exit: exit);
