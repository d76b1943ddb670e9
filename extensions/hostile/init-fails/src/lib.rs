//! Test fixture: `init` installs a `Console.Line` handler (command
//! `init-fails-probe`) and then returns an error. The loader must undo the
//! whole load: the handler revoked, the memory freed, the domain dropped.
#![no_std]
#![forbid(unsafe_code)]

use spindle_sdk::prelude::*;
use spindle_sdk::spin::Mutex;

/// Where the handler is kept, as a real extension would keep it for `exit`.
static PROBE: Mutex<Option<Binding<Line, Reply>>> = Mutex::new(None);

fn init(ctx: &ExtensionContext) -> Result<(), ExtensionError> {
    let binding = spindle_sdk::console::line_event()
        .binding(|_| {
            println!("init-fails-probe: this handler should have been revoked");
            Reply::Handled
        })
        .guard(|line| line.command() == "init-fails-probe")
        .install(ctx.principal())?;
    // Deliberately leave the binding installed: cleaning up after a failed
    // init is the loader's job.
    *PROBE.lock() = Some(binding);
    Err(ExtensionError::new(
        "refusing to start: this fixture always fails",
    ))
}

fn exit(_ctx: &ExtensionContext) {}

spindle_sdk::extension!(init: init, exit: exit);
