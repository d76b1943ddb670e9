//! Test fixture: `init` sleeps for three seconds and then succeeds. While it
//! sleeps the loader is busy with it; a push that arrives meanwhile must be
//! refused with "a load is in progress", and the shell's load must then
//! finish normally.
#![no_std]
#![forbid(unsafe_code)]

use core::time::Duration;

use spindle_sdk::prelude::*;

/// How long `init` takes.
const INIT_SLEEP: Duration = Duration::from_secs(3);

fn init(_ctx: &ExtensionContext) -> Result<(), ExtensionError> {
    spindle_sdk::strand::service::sleep(INIT_SLEEP)
        .map_err(|_| ExtensionError::new("slow-init: cannot sleep in init"))?;
    println!("slow-init: init done after {} s", INIT_SLEEP.as_secs());
    Ok(())
}

fn exit(_ctx: &ExtensionContext) {}

spindle_sdk::extension!(init: init, exit: exit);
