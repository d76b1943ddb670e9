//! Test fixture: allocation until failure. The shell command
//! `alloc-until-failure` allocates 64 KiB blocks, keeping each, until an
//! allocation fails. Its heap has a quota, so the failure comes from the
//! quota, not from the kernel running out of memory: the failed allocation
//! panics in this extension's code, which is contained like any panic, and
//! the kernel keeps serving. `alloc-until-failure keep N` allocates N bytes
//! and keeps them until the extension is unloaded (so `ext info` shows
//! them).
#![no_std]
#![forbid(unsafe_code)]

extern crate alloc;

use alloc::vec;
use alloc::vec::Vec;

use spindle_sdk::prelude::*;
use spindle_sdk::spin::Mutex;

/// Bytes of each block the command allocates.
const BLOCK: usize = 64 * 1024;

static COMMAND: Mutex<Option<Binding<Line, Reply>>> = Mutex::new(None);
static KEPT: Mutex<Vec<Vec<u8>>> = Mutex::new(Vec::new());

/// Allocates blocks until one fails; never returns normally.
#[inline(never)]
fn exhaust() -> usize {
    let mut blocks: Vec<Vec<u8>> = Vec::new();
    loop {
        blocks.push(vec![0xa5; BLOCK]);
        core::hint::black_box(&blocks);
        if blocks.len() > 1 << 20 {
            // Unreachable under any quota; keeps the loop finite.
            return blocks.len();
        }
    }
}

fn on_command(line: &Line) -> Reply {
    let mut args = line.args();
    match (
        args.next(),
        args.next().and_then(|n| n.parse::<usize>().ok()),
    ) {
        (Some("keep"), Some(bytes)) => {
            KEPT.lock().push(vec![1; bytes]);
            println!("alloc-until-failure: keeping {bytes} more bytes");
        }
        _ => {
            println!("alloc-until-failure: allocating {BLOCK}-byte blocks until one fails");
            let blocks = exhaust();
            println!("alloc-until-failure: {blocks} blocks and no failure");
        }
    }
    Reply::Handled
}

fn init(ctx: &ExtensionContext) -> Result<(), ExtensionError> {
    let binding = spindle_sdk::console::line_event()
        .binding(on_command)
        .guard(|line| line.command() == "alloc-until-failure")
        .install(ctx.principal())?;
    *COMMAND.lock() = Some(binding);
    Ok(())
}

fn exit(_ctx: &ExtensionContext) {
    // Taken, not cleared: the vector's own buffer goes too.
    drop(core::mem::take(&mut *KEPT.lock()));
    if let Some(binding) = COMMAND.lock().take() {
        let _ = binding.uninstall();
    }
}

spindle_sdk::extension!(init: init, exit: exit);
