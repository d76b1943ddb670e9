//! `cache`: holds frames as a cache and gives them back when asked.
//!
//! At load it allocates [`CACHE_FRAMES`] frames from PhysAddr in chunks of
//! [`CHUNK`]; its `PhysAddr.Reclaim` handler (which, by the service's
//! imposed guard, sees only requests addressed to the cache) drops chunks
//! until the request is met and answers how many frames it released. The
//! command `cache` prints what it holds and what it gave back.
#![no_std]
#![forbid(unsafe_code)]

extern crate alloc;

use alloc::vec::Vec;
use core::sync::atomic::{AtomicU64, Ordering};

use spindle_sdk::phys_addr::{self, Attributes, Frames, ReclaimReply, ReclaimRequest};
use spindle_sdk::prelude::*;
use spindle_sdk::spin::Mutex;

/// Frames taken at load.
const CACHE_FRAMES: u64 = 256;
/// Frames per allocation.
const CHUNK: u64 = 4;

static COMMAND: Mutex<Option<Binding<Line, Reply>>> = Mutex::new(None);
static RECLAIM: Mutex<Option<Binding<ReclaimRequest, ReclaimReply>>> = Mutex::new(None);
static HELD: Mutex<Vec<Frames>> = Mutex::new(Vec::new());
static GIVEN_BACK: AtomicU64 = AtomicU64::new(0);

fn give_back(request: &ReclaimRequest) -> ReclaimReply {
    let mut released = 0;
    let mut held = HELD.lock();
    while released < request.frames {
        let Some(chunk) = held.pop() else { break };
        released += chunk.deallocate().unwrap_or(0);
    }
    GIVEN_BACK.fetch_add(released, Ordering::Relaxed);
    println!(
        "cache: asked for {} frames, gave back {released} ({} left)",
        request.frames,
        held.iter().map(|f| f.present() as u64).sum::<u64>()
    );
    ReclaimReply::Released(released)
}

fn init(ctx: &ExtensionContext) -> Result<(), ExtensionError> {
    let events = phys_addr::events::events()
        .ok_or_else(|| ExtensionError::new("the PhysAddr service is not running"))?;
    {
        let mut held = HELD.lock();
        for _ in 0..CACHE_FRAMES / CHUNK {
            let chunk = phys_addr::allocate(ctx.principal(), CHUNK * 4096, Attributes::new())
                .map_err(|e| ExtensionError::new(alloc::format!("cache: {e}")))?;
            held.push(chunk);
        }
    }
    let reclaim = events.reclaim.binding(give_back).install(ctx.principal())?;
    *RECLAIM.lock() = Some(reclaim);
    let command = spindle_sdk::console::line_event()
        .binding(|_line| {
            let held = HELD.lock();
            println!(
                "cache: holding {} frames in {} allocations; gave back {} in all",
                held.iter().map(|f| f.present() as u64).sum::<u64>(),
                held.len(),
                GIVEN_BACK.load(Ordering::Relaxed)
            );
            Reply::Handled
        })
        .guard(|line| line.command() == "cache")
        .install(ctx.principal())?;
    *COMMAND.lock() = Some(command);
    println!("cache: holding {CACHE_FRAMES} frames");
    Ok(())
}

fn exit(_ctx: &ExtensionContext) {
    if let Some(binding) = COMMAND.lock().take() {
        let _ = binding.uninstall();
    }
    if let Some(binding) = RECLAIM.lock().take() {
        let _ = binding.uninstall();
    }
    *HELD.lock() = Vec::new();
}

spindle_sdk::extension!(init: init, exit: exit);
