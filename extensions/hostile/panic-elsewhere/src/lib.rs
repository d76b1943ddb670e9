//! Test fixture: panics outside a synchronous handler. `panic-in-guard`
//! reaches a `Console.Line` guard that panics while the dispatcher decides
//! whether to run the handler; `panic-in-async` reaches an asynchronous
//! handler, which panics in a strand of its own after the raise returned.
#![no_std]
#![forbid(unsafe_code)]

use spindle_sdk::prelude::*;
use spindle_sdk::spin::Mutex;

static BINDINGS: Mutex<[Option<Binding<Line, Reply>>; 2]> = Mutex::new([None, None]);

#[inline(never)]
fn guard(line: &Line) -> bool {
    if line.command() == "panic-in-guard" {
        panic!("deliberate panic in a Console.Line guard");
    }
    false
}

#[inline(never)]
fn in_strand(line: &Line) -> Reply {
    panic!(
        "deliberate panic in an asynchronous handler ({} argument(s))",
        line.args().count()
    );
}

fn unreachable_handler(_line: &Line) -> Reply {
    Reply::Handled
}

fn init(ctx: &ExtensionContext) -> Result<(), ExtensionError> {
    let event = spindle_sdk::console::line_event();
    let guarded = event
        .binding(unreachable_handler)
        .guard(guard)
        .install(ctx.principal())?;
    let asynchronous = event
        .binding(in_strand)
        .guard(|line| line.command() == "panic-in-async")
        .asynchronous()
        .install(ctx.principal())?;
    *BINDINGS.lock() = [Some(guarded), Some(asynchronous)];
    Ok(())
}

fn exit(_ctx: &ExtensionContext) {
    for binding in BINDINGS.lock().iter_mut() {
        if let Some(binding) = binding.take() {
            let _ = binding.uninstall();
        }
    }
}

spindle_sdk::extension!(init: init, exit: exit);
