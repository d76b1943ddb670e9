//! `hog`: takes frames and will not give them back.
//!
//! At load it allocates [`HOG_FRAMES`] frames in one allocation. Its
//! `PhysAddr.Reclaim` handler refuses; after the deadline the abort
//! protocol repossesses the frames it was asked for and records each in
//! its repossession vector, and `PhysAddr.Repossessed` tells it so. The
//! command `hog vector` prints that vector: what it lost, read from the
//! service.
#![no_std]
#![forbid(unsafe_code)]

extern crate alloc;

use alloc::vec::Vec;

use spindle_sdk::phys_addr::{
    self, Attributes, Frames, ReclaimReply, ReclaimRequest, RepossessedNotice,
};
use spindle_sdk::prelude::*;
use spindle_sdk::spin::Mutex;

/// Frames taken at load.
const HOG_FRAMES: u64 = 256;

static COMMAND: Mutex<Option<Binding<Line, Reply>>> = Mutex::new(None);
static RECLAIM: Mutex<Option<Binding<ReclaimRequest, ReclaimReply>>> = Mutex::new(None);
static TOLD: Mutex<Option<Binding<RepossessedNotice, ()>>> = Mutex::new(None);
static HELD: Mutex<Option<Frames>> = Mutex::new(None);

fn vector(principal: &Principal) {
    let lost = phys_addr::repossession_vector(principal);
    let held = HELD.lock().as_ref().map_or(0, |f| f.present());
    println!(
        "hog: repossession vector: {} frames lost, {held} still held",
        lost.len()
    );
    for r in lost.iter().take(8) {
        println!(
            "  frame {:#010x} (allocation {} index {}) at {} ms",
            r.frame.start_address(),
            r.allocation.as_u64(),
            r.index,
            r.at_ns / 1_000_000
        );
    }
    if lost.len() > 8 {
        println!("  ... {} more", lost.len() - 8);
    }
}

fn init(ctx: &ExtensionContext) -> Result<(), ExtensionError> {
    let events = phys_addr::events::events()
        .ok_or_else(|| ExtensionError::new("the PhysAddr service is not running"))?;
    let frames = phys_addr::allocate(ctx.principal(), HOG_FRAMES * 4096, Attributes::new())
        .map_err(|e| ExtensionError::new(alloc::format!("hog: {e}")))?;
    *HELD.lock() = Some(frames);
    let reclaim = events
        .reclaim
        .binding(|request| {
            println!("hog: asked for {} frames, refusing", request.frames);
            ReclaimReply::Refused
        })
        .install(ctx.principal())?;
    *RECLAIM.lock() = Some(reclaim);
    let told = events
        .repossessed
        .binding(|notice| {
            println!(
                "hog: told {} frames were repossessed (vector now {})",
                notice.frames, notice.vector_len
            );
        })
        .install(ctx.principal())?;
    *TOLD.lock() = Some(told);
    let principal = ctx.principal().clone();
    let command = spindle_sdk::console::line_event()
        .binding(move |line| {
            let words: Vec<&str> = line.text().split_whitespace().collect();
            match words.as_slice() {
                [_, "vector"] => vector(&principal),
                _ => println!("hog: usage: hog vector"),
            }
            Reply::Handled
        })
        .guard(|line| line.command() == "hog")
        .install(ctx.principal())?;
    *COMMAND.lock() = Some(command);
    println!("hog: holding {HOG_FRAMES} frames");
    Ok(())
}

fn exit(_ctx: &ExtensionContext) {
    for binding in [COMMAND.lock().take()].into_iter().flatten() {
        let _ = binding.uninstall();
    }
    if let Some(binding) = RECLAIM.lock().take() {
        let _ = binding.uninstall();
    }
    if let Some(binding) = TOLD.lock().take() {
        let _ = binding.uninstall();
    }
    HELD.lock().take();
}

spindle_sdk::extension!(init: init, exit: exit);
