//! `hello`: the smallest useful extension. It greets when loaded and adds
//! the shell command `hello` by installing a guarded handler on
//! `Console.Line`; unloading removes the command again.
#![no_std]
#![forbid(unsafe_code)]

use spindle_sdk::prelude::*;
use spindle_sdk::spin::Mutex;

/// The installed handler, kept so that `exit` can uninstall it.
static COMMAND: Mutex<Option<Binding<Line, Reply>>> = Mutex::new(None);

// Out of line so that debuggers and backtraces can name it: the dispatcher
// specialises each binding to its handler and would otherwise inline it.
#[inline(never)]
fn greet(line: &Line) -> Reply {
    let mut args = line.args().peekable();
    if args.peek().is_none() {
        println!("Hello from the hello extension!");
    } else {
        print!("Hello,");
        for word in args {
            print!(" {word}");
        }
        println!("! (from the hello extension)");
    }
    Reply::Handled
}

fn init(ctx: &ExtensionContext) -> Result<(), ExtensionError> {
    let binding = spindle_sdk::console::line_event()
        .binding(greet)
        .guard(|line| line.command() == "hello")
        .install(ctx.principal())?;
    *COMMAND.lock() = Some(binding);
    println!("hello: loaded; try the command 'hello'");
    Ok(())
}

fn exit(_ctx: &ExtensionContext) {
    if let Some(binding) = COMMAND.lock().take() {
        // Already gone only if the kernel revoked it first; nothing to undo then.
        let _ = binding.uninstall();
    }
    println!("hello: goodbye");
}

spindle_sdk::extension!(init: init, exit: exit);
