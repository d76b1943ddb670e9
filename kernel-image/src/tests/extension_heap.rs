//! Extension heaps on the real machine: allocation through a slot's entry
//! points, routing of frees by address, the quota, and heaps kept after
//! their extension's unload.

use alloc::alloc::{alloc, dealloc};
use core::alloc::Layout;

use extension_heap::Released;
use ktest_macros::ktest;

use crate::ktest::KtestResult;
use crate::memory::extension_heap::{self as heaps, WINDOWS};
use crate::memory::{frames, heap};
use crate::{ensure, ensure_eq};

const PAGE: u64 = 4096;

type AllocFn = fn(usize, usize) -> *mut u8;
type ReallocFn = unsafe fn(*mut u8, usize, usize, usize) -> *mut u8;

/// A slot's `__rust_alloc` and `__rust_realloc`, from the addresses the
/// loader binds an extension's imports to.
fn entry_points(slot: usize) -> (AllocFn, ReallocFn) {
    let entries = heaps::entries(slot).expect("slot in range");
    // SAFETY: `entries` holds the addresses of the slot's `alloc_in` and
    // `realloc_in` instances, which have exactly these signatures.
    unsafe {
        (
            core::mem::transmute::<u64, AllocFn>(entries.alloc),
            core::mem::transmute::<u64, ReallocFn>(entries.realloc),
        )
    }
}

#[ktest]
fn a_slot_allocates_in_its_own_window_and_the_kernel_frees_there() -> KtestResult {
    let frames_before = frames::stats().used();
    let slot = heaps::take(4 * PAGE)
        .map_err(|e| crate::ktest::KtestFailure::new(alloc::format!("{e}")))?;
    let window = WINDOWS.window(slot).expect("slot in range");
    let (alloc_fn, _) = entry_points(slot);
    let block = alloc_fn(100, 8);
    ensure!(
        window.contains(&(block as u64)),
        "{block:p} outside slot {slot}'s window {window:x?}"
    );
    let usage = heaps::usage(slot).expect("slot in range");
    ensure_eq!((usage.used, usage.blocks, usage.mapped), (100, 1, PAGE));
    ensure_eq!(frames::stats().used(), frames_before + 1 + 3);
    // The kernel's global `dealloc` routes the block back by its address.
    // SAFETY: `block` came from the slot's allocator with this layout.
    unsafe { dealloc(block, Layout::from_size_align(100, 8).expect("valid")) };
    let usage = heaps::usage(slot).expect("slot in range");
    ensure_eq!((usage.used, usage.blocks, usage.peak), (0, 0, 100));
    ensure_eq!(heaps::release(slot), Released::Freed);
    // The page and the page tables above it are all given back.
    ensure_eq!(frames::stats().used(), frames_before);
    Ok(())
}

#[ktest]
fn the_quota_refuses_growth_and_the_kernel_heap_is_untouched() -> KtestResult {
    let kernel_before = heap::settled_stats().used;
    let frames_before = frames::stats().used();
    let slot = heaps::take(2 * PAGE)
        .map_err(|e| crate::ktest::KtestFailure::new(alloc::format!("{e}")))?;
    let (alloc_fn, _) = entry_points(slot);
    let mut blocks = alloc::vec::Vec::with_capacity(16);
    loop {
        let block = alloc_fn(1024, 8);
        if block.is_null() {
            break;
        }
        blocks.push(block);
        ensure!(blocks.len() <= 8, "more than the quota's worth allocated");
    }
    let usage = heaps::usage(slot).expect("slot in range");
    ensure_eq!(usage.mapped, 2 * PAGE);
    ensure_eq!(usage.refused, 1);
    ensure_eq!(usage.blocks, blocks.len() as u64);
    ensure!(
        blocks.len() >= 7,
        "only {} KiB of 8 KiB usable",
        blocks.len()
    );
    // A block larger than the quota is refused outright.
    ensure!(alloc_fn(3 * PAGE as usize, 8).is_null());
    for block in blocks.drain(..) {
        // SAFETY: each block came from the slot with this layout.
        unsafe { dealloc(block, Layout::from_size_align(1024, 8).expect("valid")) };
    }
    drop(blocks);
    ensure_eq!(heaps::release(slot), Released::Freed);
    ensure_eq!(frames::stats().used(), frames_before);
    ensure_eq!(heap::settled_stats().used, kernel_before);
    Ok(())
}

#[ktest]
fn a_heap_with_live_blocks_is_kept_until_the_last_is_freed() -> KtestResult {
    let frames_before = frames::stats().used();
    let slot = heaps::take(4 * PAGE)
        .map_err(|e| crate::ktest::KtestFailure::new(alloc::format!("{e}")))?;
    let (alloc_fn, _) = entry_points(slot);
    let block = alloc_fn(1000, 8);
    ensure!(!block.is_null());
    ensure_eq!(
        heaps::release(slot),
        Released::Kept {
            bytes: 1000,
            blocks: 1
        }
    );
    // The kept slot is not handed out again, and allocates nothing more.
    let other =
        heaps::take(PAGE).map_err(|e| crate::ktest::KtestFailure::new(alloc::format!("{e}")))?;
    ensure!(other != slot, "kept slot {slot} handed out again");
    ensure_eq!(heaps::release(other), Released::Freed);
    ensure!(alloc_fn(8, 8).is_null(), "a kept heap allocated");
    ensure_eq!(heaps::summary().kept, 1);
    // SAFETY: `block` came from the slot with this layout.
    unsafe { dealloc(block, Layout::from_size_align(1000, 8).expect("valid")) };
    ensure_eq!(heaps::summary().kept, 0);
    ensure_eq!(frames::stats().used(), frames_before);
    Ok(())
}

#[ktest]
fn realloc_moves_a_kernel_block_into_the_slot_and_frees_it_in_the_kernel() -> KtestResult {
    let kernel_before = heap::settled_stats().used;
    let slot = heaps::take(4 * PAGE)
        .map_err(|e| crate::ktest::KtestFailure::new(alloc::format!("{e}")))?;
    let (_, realloc_fn) = entry_points(slot);
    let layout = Layout::from_size_align(64, 8).expect("valid");
    // SAFETY: non-zero size.
    let old = unsafe { alloc(layout) };
    ensure!(!old.is_null());
    // SAFETY: `old` is a fresh block of 64 bytes.
    unsafe { old.write_bytes(0x5a, 64) };
    // SAFETY: `old` came from the global allocator with `layout`; 200 is a
    // valid size for alignment 8.
    let new = unsafe { realloc_fn(old, 64, 8, 200) };
    ensure!(WINDOWS.window(slot).expect("slot").contains(&(new as u64)));
    // SAFETY: the first 64 bytes were copied from `old`.
    let copied = unsafe { core::slice::from_raw_parts(new, 64) };
    ensure!(copied.iter().all(|&b| b == 0x5a), "bytes not copied");
    ensure_eq!(heap::settled_stats().used, kernel_before);
    // SAFETY: `new` came from the slot with size 200, alignment 8.
    unsafe { dealloc(new, Layout::from_size_align(200, 8).expect("valid")) };
    ensure_eq!(heaps::release(slot), Released::Freed);
    Ok(())
}
