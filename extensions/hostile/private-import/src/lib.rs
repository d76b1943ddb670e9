//! Fixture: reaches into a crate another extension carries privately.
//!
//! `stats::growth` is `#[inline]`: compiled into this crate, it calls
//! `libm::exp`, which lives in the copy of `libm` that `stats` carries. An
//! extension's domain exports its own crate only, so nothing exports that
//! symbol and the load is refused, naming the crate and the extension that
//! carries it. (The cure is to depend on `libm` directly: the build then
//! gives this extension its own copy.)
#![no_std]
#![forbid(unsafe_code)]

use spindle_sdk::prelude::*;

fn init(_ctx: &ExtensionContext) -> Result<(), ExtensionError> {
    println!("private-import: e^1 = {}", stats::growth(1.0));
    Ok(())
}

fn exit(_ctx: &ExtensionContext) {}

spindle_sdk::extension!(init: init, exit: exit);
