//! Heap and frame allocator behaviour on the real machine.

use alloc::alloc::{alloc, dealloc};
use alloc::vec::Vec;
use core::alloc::Layout;

use ktest_macros::ktest;
use x86_64::VirtAddr;
use x86_64::structures::paging::{Page, PageTableFlags};

use crate::ktest::KtestResult;
use crate::memory::{frames, heap, paging};
use crate::{ensure, ensure_eq};

#[ktest]
fn heap_alloc_free_across_sizes_and_alignments() -> KtestResult {
    let used_before = heap::settled_stats().used;
    let mut blocks = Vec::with_capacity(200);
    let sizes = [
        1usize,
        3,
        8,
        15,
        16,
        17,
        63,
        64,
        100,
        255,
        256,
        1000,
        4096,
        4097,
        65_536,
        1 << 20,
    ];
    let aligns = [1usize, 2, 8, 16, 64, 256, 4096];
    for (i, &size) in sizes.iter().enumerate() {
        for &align in &aligns {
            let layout = Layout::from_size_align(size, align).expect("valid layout");
            // SAFETY: the layout has non-zero size.
            let ptr = unsafe { alloc(layout) };
            ensure!(
                !ptr.is_null(),
                "allocation of {size} bytes aligned {align} failed"
            );
            ensure_eq!(ptr as usize % align, 0);
            let pattern = (i as u8).wrapping_mul(31).wrapping_add(align as u8);
            // SAFETY: `ptr` is a fresh allocation of `size` bytes.
            unsafe { ptr.write_bytes(pattern, size) };
            blocks.push((ptr, layout, pattern));
        }
    }
    // Every block still holds its own pattern: no two allocations overlap.
    for &(ptr, layout, pattern) in &blocks {
        // SAFETY: each block is live and `layout.size()` bytes long.
        let bytes = unsafe { core::slice::from_raw_parts(ptr, layout.size()) };
        ensure!(
            bytes.iter().all(|&b| b == pattern),
            "block at {ptr:p} was overwritten"
        );
    }
    for (ptr, layout, _) in blocks.drain(..) {
        // SAFETY: allocated above with this layout and not yet freed.
        unsafe { dealloc(ptr, layout) };
    }
    drop(blocks);
    ensure_eq!(heap::settled_stats().used, used_before);
    Ok(())
}

/// Freed small blocks wait on their size class's list; when the heap is
/// full they are given back, so a large request still succeeds, and the
/// counters never include them.
#[ktest]
fn cached_small_blocks_never_make_a_large_allocation_fail() -> KtestResult {
    const SMALL: usize = heap::LARGEST_CLASS;
    const LARGE: usize = 1 << 20;
    let baseline = heap::settled_stats().used;
    let small = Layout::from_size_align(SMALL, 8).expect("valid layout");
    let large = Layout::from_size_align(LARGE, 8).expect("valid layout");
    let mut blocks: Vec<*mut u8> = Vec::with_capacity(heap::stats().size / SMALL + 1);
    // Interrupts stay off while the heap is full (nothing else may need
    // it), and so nothing else allocates or frees between the counters.
    let outcome = x86_64::instructions::interrupts::without_interrupts(|| {
        let before = heap::stats();
        loop {
            // SAFETY: the layout has non-zero size.
            let block = unsafe { alloc(small) };
            if block.is_null() || blocks.len() == blocks.capacity() {
                if !block.is_null() {
                    // SAFETY: just allocated with `small`.
                    unsafe { dealloc(block, small) };
                }
                break;
            }
            blocks.push(block);
        }
        let filled = blocks.len() * SMALL;
        let full = heap::stats();
        for block in blocks.drain(..) {
            // SAFETY: allocated above with `small`, freed once.
            unsafe { dealloc(block, small) };
        }
        let freed = heap::stats();
        // SAFETY: the layout has non-zero size.
        let big = unsafe { alloc(large) };
        if !big.is_null() {
            // SAFETY: allocated just above with `large`.
            unsafe { dealloc(big, large) };
        }
        (before, filled, full, freed, !big.is_null())
    });
    let (before, filled, full, freed, large_fit) = outcome;
    ensure!(
        filled > LARGE,
        "only {filled} bytes of small blocks before the heap was full"
    );
    ensure!(
        full.free < LARGE,
        "the heap was not full: {} bytes free",
        full.free
    );
    ensure_eq!(freed.used, before.used);
    ensure!(
        large_fit,
        "a {LARGE}-byte block did not fit after {filled} bytes of small blocks were freed"
    );
    drop(blocks);
    ensure_eq!(heap::settled_stats().used, baseline);
    Ok(())
}

#[ktest]
fn frame_allocator_alloc_free_and_exhaustion() -> KtestResult {
    let before = frames::stats();
    ensure!(before.free > 1000, "only {} free frames", before.free);
    let mut taken = Vec::with_capacity(before.free as usize + 1);
    while let Some(frame) = frames::allocate() {
        ensure!(
            taken.len() as u64 <= before.free,
            "more frames handed out than were free"
        );
        taken.push(frame);
    }
    ensure_eq!(taken.len() as u64, before.free);
    ensure_eq!(frames::stats().free, 0);
    // Distinct frames: sort and look for neighbours that are equal.
    let mut addresses: Vec<u64> = taken.iter().map(|f| f.start_address().as_u64()).collect();
    addresses.sort_unstable();
    ensure!(
        addresses.windows(2).all(|w| w[0] != w[1]),
        "a frame was handed out twice"
    );
    let first = taken[0];
    for frame in taken.drain(..) {
        frames::deallocate(frame)
            .map_err(|e| crate::ktest::KtestFailure::new(alloc::format!("{e}")))?;
    }
    ensure_eq!(frames::stats(), before);
    ensure!(frames::is_free(first));
    ensure!(
        frames::deallocate(first).is_err(),
        "double free was accepted"
    );
    Ok(())
}

#[ktest]
fn map_write_unmap_round_trip() -> KtestResult {
    let frame =
        frames::allocate().ok_or_else(|| crate::ktest::KtestFailure::new("no frame".into()))?;
    let page: Page = Page::containing_address(VirtAddr::new(0x0000_6000_0000_0000));
    let flags = PageTableFlags::WRITABLE | PageTableFlags::NO_EXECUTE;
    // SAFETY: the frame was just allocated and the page is in an unused
    // lower-half range no other code maps.
    unsafe { paging::map(page, frame, flags) }
        .map_err(|e| crate::ktest::KtestFailure::new(alloc::format!("{e:?}")))?;
    ensure_eq!(
        paging::translate(page.start_address()),
        Some(frame.start_address())
    );
    let ptr = page.start_address().as_mut_ptr::<u64>();
    // SAFETY: the page is mapped writable just above and used only here.
    unsafe { ptr.write_volatile(0x1234_5678_9abc_def0) };
    let through_phys =
        (crate::PHYSICAL_MEMORY_OFFSET + frame.start_address().as_u64()) as *const u64;
    // SAFETY: the physical-memory mapping covers every frame, and the frame
    // is ours.
    let read_back = unsafe { through_phys.read_volatile() };
    ensure_eq!(read_back, 0x1234_5678_9abc_def0);
    // SAFETY: nothing uses the page after this.
    let unmapped = unsafe { paging::unmap(page) }
        .map_err(|e| crate::ktest::KtestFailure::new(alloc::format!("{e:?}")))?;
    ensure_eq!(unmapped, frame);
    ensure!(paging::translate(page.start_address()).is_none());
    frames::deallocate(frame)
        .map_err(|e| crate::ktest::KtestFailure::new(alloc::format!("{e}")))?;
    Ok(())
}
