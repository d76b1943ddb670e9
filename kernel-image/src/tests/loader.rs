//! The extension loader on the real machine: W^X mappings, exact memory
//! accounting. (The loader's policy is tested on the host: `cargo test -p
//! loader`.)

use ktest_macros::ktest;
use x86_64::VirtAddr;
use x86_64::structures::paging::{PageTableFlags, PhysFrame, Size4KiB};

use crate::ktest::{KtestFailure, KtestResult};
use crate::loader;
use crate::memory::{frames, heap, paging};
use crate::{ensure, ensure_eq};

fn failure(e: impl core::fmt::Display) -> KtestFailure {
    KtestFailure::new(alloc::format!("{e}"))
}

#[ktest]
fn extension_pages_are_mapped_w_xor_x() -> KtestResult {
    loader::load("hello").map_err(failure)?;
    let report = loader::with(|l| l.info("hello"))
        .and_then(|info| info.loaded)
        .ok_or_else(|| failure("hello not loaded"))?
        .report;
    let image = report.range.clone();
    let [text, rodata, data] = report.segments.clone();
    let mut checked = 0;
    for page in (image.start..image.end).step_by(4096) {
        let flags = paging::flags(VirtAddr::new(page))
            .ok_or_else(|| failure(alloc::format!("{page:#x} unmapped")))?;
        let writable = flags.contains(PageTableFlags::WRITABLE);
        let executable = !flags.contains(PageTableFlags::NO_EXECUTE);
        ensure!(
            !(writable && executable),
            "page {page:#x} is writable and executable"
        );
        if text.contains(&page) {
            ensure!(executable && !writable, "text page {page:#x}: {flags:?}");
        } else if rodata.contains(&page) {
            ensure!(!executable && !writable, "rodata page {page:#x}: {flags:?}");
        } else if data.contains(&page) {
            ensure!(!executable && writable, "data page {page:#x}: {flags:?}");
        }
        checked += 1;
    }
    ensure!(checked >= 3, "only {checked} pages");
    loader::unload("hello").map_err(failure)?;
    ensure!(
        paging::translate(VirtAddr::new(image.start)).is_none(),
        "image still mapped after unload"
    );
    Ok(())
}

/// The image range of `name` in VirtAddr's table, if any.
fn image_range(name: &str) -> Option<virt_addr::RangeInfo<dispatcher::PrincipalId>> {
    virt_addr::ranges()
        .into_iter()
        .find(|r| r.owner_name == name && r.zone == virt_addr::Zone::Image)
}

#[ktest]
fn an_image_is_a_range_frames_and_mappings_of_its_principal() -> KtestResult {
    let free_before = frames::stats().free;
    ensure!(image_range("hello").is_none());
    let report = loader::load("hello").map_err(failure)?;
    let image = report.range.clone();
    let pages = (image.end - image.start) / 4096;
    let range = image_range("hello").ok_or_else(|| failure("no VirtAddr range for hello"))?;
    ensure_eq!(range.base..range.end(), image);
    ensure!(virt_addr::IMAGE_REGION.contains(&range.base));
    // Every page mapped by Translation, for hello, with its segment's
    // permissions, all from one pinned allocation of hello's.
    let mappings = translation::mappings_of(&range);
    ensure_eq!(mappings.len() as u64, pages);
    let [text, rodata, data] = report.segments.clone();
    for m in &mappings {
        ensure_eq!(m.owner, range.owner);
        ensure_eq!(m.allocation, mappings[0].allocation);
        let expected = if text.contains(&m.page) {
            translation::Protection::READ_EXECUTE
        } else if data.contains(&m.page) {
            translation::Protection::READ_WRITE
        } else {
            translation::Protection::READ
        };
        if text.contains(&m.page) || rodata.contains(&m.page) || data.contains(&m.page) {
            ensure!(
                m.protection == expected,
                "page {:#x}: {} instead of {expected}",
                m.page,
                m.protection
            );
        }
    }
    let owner = phys_addr::owners()
        .into_iter()
        .find(|o| o.name == "hello")
        .ok_or_else(|| failure("phys lists no frames of hello"))?;
    ensure_eq!(
        (owner.frames, owner.pinned, owner.allocations),
        (pages, pages, 1)
    );
    loader::unload("hello").map_err(failure)?;
    ensure!(
        image_range("hello").is_none(),
        "the range outlived the unload"
    );
    ensure!(phys_addr::owners().iter().all(|o| o.name != "hello"));
    // Frames and page tables all back.
    ensure_eq!(frames::stats().free, free_before);
    Ok(())
}

#[ktest]
fn load_and_unload_leave_frames_and_heap_exactly_as_they_were() -> KtestResult {
    // Once, to let anything lazily initialised settle.
    loader::load("alloc-demo").map_err(failure)?;
    loader::unload("alloc-demo").map_err(failure)?;
    let (frames_before, heap_before) = (frames::stats(), heap::settled_stats().used);
    for _ in 0..3 {
        loader::load("alloc-demo").map_err(failure)?;
        ensure!(
            frames::stats().free < frames_before.free,
            "loading took no frames"
        );
        loader::unload("alloc-demo").map_err(failure)?;
        ensure_eq!(frames::stats(), frames_before);
        ensure_eq!(heap::settled_stats().used, heap_before);
    }
    Ok(())
}

#[ktest]
fn refused_loads_change_nothing() -> KtestResult {
    let (frames_before, heap_before) = (frames::stats(), heap::settled_stats().used);
    for fixture in [
        "tampered",
        "internal-symbol",
        "large-model",
        "init-fails",
        "no-descriptor",
    ] {
        ensure!(loader::load(fixture).is_err(), "{fixture} was accepted");
        ensure_eq!(frames::stats(), frames_before);
        ensure_eq!(heap::settled_stats().used, heap_before);
    }
    Ok(())
}

#[ktest]
fn a_panic_in_init_unwinds_through_the_extension_and_undoes_the_load() -> KtestResult {
    // Once first, so that anything initialised lazily on the first failed
    // load (the unwinder's caches) is not counted as a leak.
    let _ = loader::load("panic-in-init");
    let (frames_before, heap_before) = (frames::stats(), heap::settled_stats().used);
    for _ in 0..3 {
        match loader::load("panic-in-init") {
            Err(loader::LoadError::InitPanicked(panicked)) => {
                ensure!(
                    panicked
                        .message
                        .starts_with("deliberate panic in init (scratch sum 130816)"),
                    "{}",
                    panicked.message
                );
                ensure!(
                    panicked.file.ends_with("panic-in-init/src/lib.rs"),
                    "{}",
                    panicked.file
                );
            }
            other => {
                return Err(failure(alloc::format!(
                    "expected InitPanicked, got {other:?}"
                )));
            }
        }
        ensure_eq!(frames::stats(), frames_before);
        ensure_eq!(heap::settled_stats().used, heap_before);
    }
    Ok(())
}

#[ktest]
fn a_churn_of_every_example_extension_leaves_memory_exactly_at_its_baseline() -> KtestResult {
    // Two rounds and a prefix of a third: the prefix must load too.
    let report = loader::churn::churn(30).map_err(failure)?;
    ensure_eq!(report.cycles, 30);
    ensure!(
        report.extensions.len() >= 10 && report.extensions.iter().any(|e| e == "counter-client"),
        "cycled only {:?}",
        report.extensions
    );
    ensure!(report.rounds >= 3, "{} rounds", report.rounds);
    ensure_eq!(report.after, report.baseline);
    Ok(())
}

/// Takes frames from the bitmap until `left` are free (for [`give_back`]).
fn exhaust_to(left: u64) -> Result<alloc::vec::Vec<PhysFrame<Size4KiB>>, KtestFailure> {
    let mut taken = alloc::vec::Vec::new();
    while frames::stats().free > left {
        taken.push(frames::allocate().ok_or_else(|| failure("the bitmap ran dry early"))?);
    }
    Ok(taken)
}

fn give_back(taken: alloc::vec::Vec<PhysFrame<Size4KiB>>) -> KtestResult {
    for frame in taken {
        frames::deallocate(frame).map_err(failure)?;
    }
    Ok(())
}

#[ktest]
fn a_load_short_of_frames_leaves_no_range_frame_or_page_table_behind() -> KtestResult {
    ensure!(
        virt_addr::ranges()
            .iter()
            .all(|r| r.zone != virt_addr::Zone::Image),
        "an image is loaded already"
    );
    // A range of 510 pages (and its guard page) first, so that hello's
    // image starts on the last page of a 2 MiB window and runs into the
    // next: its pages need two level-1 tables, and a shortage can strike
    // half-way through the mapping.
    let principal = crate::events::authority().issuer.issue("ktest-spacer");
    let spacer =
        virt_addr::allocate_image(crate::events::capability(), &principal, 510).map_err(failure)?;
    let before = frames::stats();
    let report = loader::load("hello").map_err(failure)?;
    let pages = (report.range.end - report.range.start) / 4096;
    // Besides the image: its heap's pages, and the page tables of the heap
    // window (one per level that had none yet: at most three).
    let heap_pages = crate::memory::extension_heap::summary().frames;
    let tables = before.free - frames::stats().free - pages - heap_pages;
    loader::unload("hello").map_err(failure)?;
    ensure_eq!(frames::stats(), before);
    ensure_eq!(report.range.start, spacer.end() + 4096);
    ensure!(
        (2..=2 + 3).contains(&tables),
        "{tables} page tables for an image across two windows and its heap"
    );
    // One frame short of the image (PhysAddr refuses), and the image's
    // frames plus one table (Translation maps the first page, then finds
    // no frame for the second window's table).
    for left in [pages - 1, pages + 1] {
        let taken = exhaust_to(left)?;
        let result = loader::load("hello").map(|_| ());
        let free_after = frames::stats().free;
        let range_left = image_range("hello");
        give_back(taken)?;
        ensure_eq!(
            result,
            Err(loader::LoadError::Map(::loader::MapError::OutOfFrames {
                pages
            }))
        );
        ensure_eq!(free_after, left);
        ensure!(range_left.is_none(), "{left} free: the range stayed");
        ensure!(phys_addr::owners().iter().all(|o| o.name != "hello"));
        ensure_eq!(frames::stats(), before);
    }
    spacer.deallocate().map_err(failure)?;
    // And with the frames back, it loads.
    loader::load("hello").map_err(failure)?;
    loader::unload("hello").map_err(failure)?;
    ensure_eq!(frames::stats(), before);
    Ok(())
}
