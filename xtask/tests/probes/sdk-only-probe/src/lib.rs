//! The control: an ordinary extension, which the gate lets through.
#![no_std]
#![forbid(unsafe_code)]

use spindle_sdk::prelude::*;

fn init(_ctx: &ExtensionContext) -> Result<(), ExtensionError> {
    spindle_sdk::log::info!("probe loaded");
    Ok(())
}

fn exit(_ctx: &ExtensionContext) {}

spindle_sdk::extension!(init: init, exit: exit);
