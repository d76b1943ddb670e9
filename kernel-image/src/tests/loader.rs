//! The extension loader on the real machine: W^X mappings, exact memory
//! accounting. (The loader's policy is tested on the host: `cargo test -p
//! loader`.)

use ktest_macros::ktest;
use x86_64::VirtAddr;
use x86_64::structures::paging::PageTableFlags;

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
