//! Test fixture: declares the event `RecursiveRaise.Deeper`, whose original
//! handler raises the same event again, one deeper, without bound. The
//! shell command `recursive-raise` starts it and prints where it stopped:
//! the dispatcher's nesting limit must end it with a typed error long
//! before the stack runs out.
#![no_std]
#![forbid(unsafe_code)]

use spindle_sdk::dispatcher::RaiseError;
use spindle_sdk::prelude::*;
use spindle_sdk::spin::Mutex;

/// The event this extension declares, with its authority.
type Declared = (Event<u64, u64>, EventAuthority<u64, u64>);

static EVENT: Mutex<Option<Declared>> = Mutex::new(None);
static COMMAND: Mutex<Option<Binding<Line, Reply>>> = Mutex::new(None);
static STOPPED_BY: Mutex<Option<RaiseError>> = Mutex::new(None);

/// Raises the event one deeper; returns the deepest depth reached.
fn deeper(depth: &u64) -> u64 {
    let event = EVENT.lock().as_ref().map(|(event, _)| event.clone());
    let Some(event) = event else {
        return *depth;
    };
    match event.raise(&(depth + 1)) {
        Ok(deepest) => deepest,
        Err(error) => {
            *STOPPED_BY.lock() = Some(error);
            *depth
        }
    }
}

fn on_command(_line: &Line) -> Reply {
    *STOPPED_BY.lock() = None;
    let deepest = deeper(&0);
    match STOPPED_BY.lock().take() {
        Some(error) => println!("recursive-raise: stopped at depth {deepest}: {error} ({error:?})"),
        None => println!("recursive-raise: returned at depth {deepest} without an error"),
    }
    Reply::Handled
}

fn init(ctx: &ExtensionContext) -> Result<(), ExtensionError> {
    let declared = Event::<u64, u64>::declare("RecursiveRaise.Deeper", ctx.principal(), deeper)
        .map_err(|_| ExtensionError::new("cannot declare RecursiveRaise.Deeper"))?;
    *EVENT.lock() = Some(declared);
    let binding = spindle_sdk::console::line_event()
        .binding(on_command)
        .guard(|line| line.command() == "recursive-raise")
        .install(ctx.principal())?;
    *COMMAND.lock() = Some(binding);
    Ok(())
}

fn exit(_ctx: &ExtensionContext) {
    if let Some(binding) = COMMAND.lock().take() {
        let _ = binding.uninstall();
    }
    EVENT.lock().take();
}

spindle_sdk::extension!(init: init, exit: exit);
