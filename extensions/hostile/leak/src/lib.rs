//! Test fixture: a leak. The shell command `leak` leaks a 1000-byte `Box`
//! (`Box::leak`) and a 3000-byte vector (`mem::forget`), each time it runs.
//! Nothing will ever free them: `ext unload leak` reports the bytes still
//! allocated from its heap, which the kernel keeps (mapped, its window
//! unused) rather than free under pointers it cannot prove dead.
#![no_std]
#![forbid(unsafe_code)]

extern crate alloc;

use alloc::boxed::Box;
use alloc::vec;

use spindle_sdk::prelude::*;
use spindle_sdk::spin::Mutex;

/// Bytes of the leaked box.
const BOXED: usize = 1000;
/// Bytes of the forgotten vector.
const FORGOTTEN: usize = 3000;

static COMMAND: Mutex<Option<Binding<Line, Reply>>> = Mutex::new(None);

fn on_command(_line: &Line) -> Reply {
    let leaked: &'static mut [u8; BOXED] = Box::leak(Box::new([7; BOXED]));
    core::hint::black_box(leaked);
    // `black_box`: an allocation nothing reads could be optimised away.
    core::mem::forget(core::hint::black_box(vec![9u8; FORGOTTEN]));
    println!("leak: leaked {} bytes in 2 blocks", BOXED + FORGOTTEN);
    Reply::Handled
}

fn init(ctx: &ExtensionContext) -> Result<(), ExtensionError> {
    let binding = spindle_sdk::console::line_event()
        .binding(on_command)
        .guard(|line| line.command() == "leak")
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
