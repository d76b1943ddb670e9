//! Test fixture: the shell command `recurse` calls a function that calls
//! itself without bound, each frame holding a buffer, until the stack runs
//! into its guard page. The kernel must contain the overflow (no double
//! fault), unwind to the shell's raise and unload the extension.
#![no_std]
#![forbid(unsafe_code)]

use spindle_sdk::prelude::*;
use spindle_sdk::spin::Mutex;

static COMMAND: Mutex<Option<Binding<Line, Reply>>> = Mutex::new(None);

#[inline(never)]
#[allow(unconditional_recursion)] // the point of the fixture
fn descend(depth: u64) -> u64 {
    let mut buffer = [0u8; 512];
    buffer[(depth % 512) as usize] = depth as u8;
    let below = descend(core::hint::black_box(depth + 1));
    below.wrapping_add(u64::from(core::hint::black_box(buffer)[0]))
}

fn on_command(_line: &Line) -> Reply {
    println!("unbounded-recursion: descending");
    let total = descend(core::hint::black_box(0));
    println!("unbounded-recursion: {total} (never printed)");
    Reply::Handled
}

fn init(ctx: &ExtensionContext) -> Result<(), ExtensionError> {
    let binding = spindle_sdk::console::line_event()
        .binding(on_command)
        .guard(|line| line.command() == "recurse")
        .install(ctx.principal())?;
    *COMMAND.lock() = Some(binding);
    Ok(())
}

fn exit(_ctx: &ExtensionContext) {
    if let Some(binding) = COMMAND.lock().take() {
        let _ = binding.uninstall();
    }
}

spindle_sdk::extension!(init: init, exit: exit);
