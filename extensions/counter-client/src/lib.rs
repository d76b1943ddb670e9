//! `counter-client`: adds the shell command `count [N]`, which calls the
//! `counter` extension's exported `increment` (an import resolved against the
//! `counter` domain at load time, so it cannot load before `counter`).
#![no_std]
#![forbid(unsafe_code)]

use spindle_sdk::prelude::*;
use spindle_sdk::spin::Mutex;

static COMMAND: Mutex<Option<Binding<Line, Reply>>> = Mutex::new(None);

fn count(line: &Line) -> Reply {
    match line.args().next().map(str::parse::<u64>) {
        None => println!("counter is now {}", counter::increment(1)),
        Some(Ok(by)) => println!("counter is now {}", counter::increment(by)),
        Some(Err(_)) => println!("count: expected a number"),
    }
    Reply::Handled
}

fn init(ctx: &ExtensionContext) -> Result<(), ExtensionError> {
    let binding = spindle_sdk::console::line_event()
        .binding(count)
        .guard(|line| line.command() == "count")
        .install(ctx.principal())?;
    *COMMAND.lock() = Some(binding);
    println!("counter-client: loaded; counter is at {}", counter::value());
    Ok(())
}

fn exit(_ctx: &ExtensionContext) {
    if let Some(binding) = COMMAND.lock().take() {
        let _ = binding.uninstall();
    }
}

spindle_sdk::extension!(init: init, exit: exit);
