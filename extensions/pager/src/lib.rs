//! `pager`: demand-zero paging through the three memory services.
//!
//! `pager touch N` allocates a VirtAddr range of N pages with nothing
//! mapped in it, then writes and reads back one word in each page. Every
//! first touch is a page fault: the Translation service raises
//! `Translation.PageNotPresent`, and this extension's handler — which the
//! service's imposed guard lets see only faults in the pager's own ranges —
//! allocates a zeroed frame from PhysAddr and maps it at the faulting page;
//! the faulting access then resumes. The command prints how many faults
//! were handled and how many frames were mapped.
#![no_std]
#![forbid(unsafe_code)]

extern crate alloc;

use alloc::string::String;
use alloc::sync::Arc;
use alloc::vec::Vec;
use core::sync::atomic::{AtomicU64, Ordering};

use spindle_sdk::phys_addr::{self, Attributes, Frames};
use spindle_sdk::prelude::*;
use spindle_sdk::spin::Mutex;
use spindle_sdk::translation::{self, Fault, FaultReply, Protection};
use spindle_sdk::virt_addr::{self, VirtRange};

/// Most pages one `touch` may reserve.
const MAX_PAGES: u64 = 4096;

static COMMAND: Mutex<Option<Binding<Line, Reply>>> = Mutex::new(None);
static FAULT_HANDLER: Mutex<Option<Binding<Fault, FaultReply>>> = Mutex::new(None);
/// The range being paged (shared with the fault handler).
static RANGE: Mutex<Option<Arc<VirtRange>>> = Mutex::new(None);
/// The frames mapped in it, one allocation per page.
static FRAMES: Mutex<Vec<Frames>> = Mutex::new(Vec::new());
static FAULTS: AtomicU64 = AtomicU64::new(0);
static MAPPED: AtomicU64 = AtomicU64::new(0);
/// Faults delivered that were not in the current range (the imposed guard
/// should keep this at zero).
static FOREIGN: AtomicU64 = AtomicU64::new(0);

/// The fault handler: runs in the page-fault handler, must not block, so it
/// only ever `try_lock`s.
fn resolve(principal: &Principal, fault: &Fault) -> FaultReply {
    let Some(range) = RANGE.try_lock().and_then(|r| r.clone()) else {
        return FaultReply::NotResolved;
    };
    if fault.range != Some(range.id()) {
        FOREIGN.fetch_add(1, Ordering::Relaxed);
        return FaultReply::NotResolved;
    }
    FAULTS.fetch_add(1, Ordering::Relaxed);
    let Ok(frames) = phys_addr::allocate(principal, 4096, Attributes::new()) else {
        return FaultReply::NotResolved;
    };
    if translation::add_mapping(
        &range,
        fault.page_index(),
        &frames,
        0,
        Protection::READ_WRITE,
    )
    .is_err()
    {
        return FaultReply::NotResolved;
    }
    match FRAMES.try_lock() {
        Some(mut held) => {
            held.push(frames);
            MAPPED.fetch_add(1, Ordering::Relaxed);
            FaultReply::Resolved
        }
        // Dropping the frames unmaps them again: not resolved.
        None => FaultReply::NotResolved,
    }
}

fn touch(principal: &Principal, pages: u64) -> Result<(), String> {
    if pages == 0 || pages > MAX_PAGES {
        return Err(alloc::format!("N must be 1..={MAX_PAGES}"));
    }
    // Let go of the previous range first: its mappings and frames go back.
    RANGE.lock().take();
    FRAMES.lock().clear();
    FAULTS.store(0, Ordering::Relaxed);
    MAPPED.store(0, Ordering::Relaxed);
    let range = Arc::new(virt_addr::allocate(principal, pages).map_err(|e| alloc::format!("{e}"))?);
    *RANGE.lock() = Some(range.clone());
    let mut verified = 0;
    for page in 0..pages {
        let offset = page * 4096 + (page % 512) * 8;
        let value = 0x5350_494e_0000_0000 | page;
        range
            .write_u64(offset, value)
            .map_err(|e| alloc::format!("page {page}: {e}"))?;
        if range
            .read_u64(offset)
            .map_err(|e| alloc::format!("page {page}: {e}"))?
            == value
        {
            verified += 1;
        }
    }
    println!(
        "pager: touched {pages} pages at {:#x}: {} faults handled, {} frames mapped, {verified} pages read back, {} foreign faults seen",
        range.base(),
        FAULTS.load(Ordering::Relaxed),
        MAPPED.load(Ordering::Relaxed),
        FOREIGN.load(Ordering::Relaxed),
    );
    Ok(())
}

fn init(ctx: &ExtensionContext) -> Result<(), ExtensionError> {
    let events = translation::events::events()
        .ok_or_else(|| ExtensionError::new("the Translation service is not running"))?;
    let principal = ctx.principal().clone();
    let handler = events
        .page_not_present
        .binding(move |fault| resolve(&principal, fault))
        .install(ctx.principal())?;
    *FAULT_HANDLER.lock() = Some(handler);
    let principal = ctx.principal().clone();
    let command = spindle_sdk::console::line_event()
        .binding(move |line| {
            let words: Vec<&str> = line.text().split_whitespace().collect();
            let result = match words.as_slice() {
                [_, "touch", n] => n
                    .parse()
                    .map_err(|_| alloc::format!("'{n}' is not a number"))
                    .and_then(|n| touch(&principal, n)),
                _ => Err(String::from("usage: pager touch N")),
            };
            if let Err(e) = result {
                println!("pager: {e}");
            }
            Reply::Handled
        })
        .guard(|line| line.command() == "pager")
        .install(ctx.principal())?;
    *COMMAND.lock() = Some(command);
    Ok(())
}

fn exit(_ctx: &ExtensionContext) {
    if let Some(binding) = COMMAND.lock().take() {
        let _ = binding.uninstall();
    }
    if let Some(binding) = FAULT_HANDLER.lock().take() {
        let _ = binding.uninstall();
    }
    RANGE.lock().take();
    *FRAMES.lock() = Vec::new();
}

spindle_sdk::extension!(init: init, exit: exit);
