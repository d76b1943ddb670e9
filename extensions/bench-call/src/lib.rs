//! `bench-call`: the extension side of the benchmark of a call from an
//! extension into the kernel (SPIN's protected in-kernel call). The command
//! `bench-call N` calls the kernel function `dispatcher::Principal::id` (one
//! load; the dispatcher is linked into the kernel and exported through
//! `SpinPublic`) N times in a loop and prints nothing. `bench baseline`
//! raises it with two values of N, divides the difference of the times by
//! the difference of the counts, and compares the result with the same
//! loop run by the kernel.
#![no_std]
#![forbid(unsafe_code)]

use core::hint::black_box;

use spindle_sdk::prelude::*;
use spindle_sdk::spin::Mutex;

/// The installed handler, kept so that `exit` can uninstall it.
static COMMAND: Mutex<Option<Binding<Line, Reply>>> = Mutex::new(None);
/// The principal whose `id` the loop asks for.
static PRINCIPAL: Mutex<Option<Principal>> = Mutex::new(None);

#[inline(never)]
fn calls(line: &Line) -> Reply {
    let principal = PRINCIPAL.lock();
    match (
        line.args().next().map(str::parse::<u64>),
        principal.as_ref(),
    ) {
        (Some(Ok(n)), Some(principal)) => {
            for _ in 0..n {
                black_box(black_box(principal).id());
            }
        }
        _ => println!("bench-call: expected a number of calls"),
    }
    Reply::Handled
}

fn init(ctx: &ExtensionContext) -> Result<(), ExtensionError> {
    *PRINCIPAL.lock() = Some(ctx.principal().clone());
    let binding = spindle_sdk::console::line_event()
        .binding(calls)
        .guard(|line| line.command() == "bench-call")
        .install(ctx.principal())?;
    *COMMAND.lock() = Some(binding);
    Ok(())
}

fn exit(_ctx: &ExtensionContext) {
    if let Some(binding) = COMMAND.lock().take() {
        let _ = binding.uninstall();
    }
    PRINCIPAL.lock().take();
}

spindle_sdk::extension!(init: init, exit: exit);
