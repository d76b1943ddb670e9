//! Uses `unsafe` and tries to lift the crate's own lint level: the build
//! compiles extensions with `-F unsafe-code`, which the source cannot
//! override.
#![no_std]
#![allow(unsafe_code)]

use spindle_sdk::prelude::*;

fn init(_ctx: &ExtensionContext) -> Result<(), ExtensionError> {
    // Reads the kernel's memory behind the type system's back.
    let secret = unsafe { core::ptr::read_volatile(0xffff_ffff_8000_0000 as *const u64) };
    println!("{secret:#x}");
    Ok(())
}

fn exit(_ctx: &ExtensionContext) {}

spindle_sdk::extension!(init: init, exit: exit);
