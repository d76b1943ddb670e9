//! The containment boundary: panics unwind back to `containment::catch`,
//! destructors run on the way, and the heap comes back exactly.

use alloc::boxed::Box;
use alloc::vec::Vec;
use core::sync::atomic::{AtomicUsize, Ordering};

use ktest_macros::ktest;

use crate::containment::{self, Panicked};
use crate::ktest::KtestResult;
use crate::memory::heap;
use crate::{ensure, ensure_eq};

static DROPPED: AtomicUsize = AtomicUsize::new(0);

/// Counts its drops.
struct Guard(#[allow(dead_code)] Box<[u8; 64]>);

impl Drop for Guard {
    fn drop(&mut self) {
        DROPPED.fetch_add(1, Ordering::SeqCst);
    }
}

#[inline(never)]
fn nested(depth: u32) -> u32 {
    let _guard = Guard(Box::new([depth as u8; 64]));
    if depth == 0 {
        panic!("deliberate panic at the bottom");
    }
    core::hint::black_box(nested(depth - 1)) + 1
}

fn caught(f: impl FnOnce()) -> Result<Box<Panicked>, alloc::string::String> {
    match containment::catch(f) {
        Ok(()) => Err("the closure returned instead of panicking".into()),
        Err(panicked) => Ok(panicked),
    }
}

#[ktest]
fn a_panic_unwinds_to_the_boundary_running_every_destructor() -> KtestResult {
    let heap_before = heap::settled_stats().used;
    DROPPED.store(0, Ordering::SeqCst);
    let panicked = caught(|| {
        nested(5);
    })
    .map_err(crate::ktest::KtestFailure::new)?;
    ensure_eq!(panicked.message.as_str(), "deliberate panic at the bottom");
    ensure!(
        panicked.file.as_str().ends_with("tests/containment.rs"),
        "location {}",
        panicked.file
    );
    ensure_eq!(DROPPED.load(Ordering::SeqCst), 6);
    // The record is the unwind's payload, boxed: the heap is back once it goes.
    drop(panicked);
    ensure_eq!(heap::settled_stats().used, heap_before);
    ensure!(!containment::may_unwind(), "catch frame left open");
    Ok(())
}

#[ktest]
fn a_hundred_panics_in_a_row_leave_the_heap_as_it_was() -> KtestResult {
    let heap_before = heap::settled_stats().used;
    for round in 0..100u32 {
        let panicked = caught(|| {
            let held: Vec<u32> = (0..round).collect();
            panic!("round {} held {}", round, held.len());
        })
        .map_err(crate::ktest::KtestFailure::new)?;
        ensure!(panicked.message.as_str().starts_with("round "));
    }
    ensure_eq!(heap::settled_stats().used, heap_before);
    Ok(())
}

#[ktest]
fn panics_raised_by_core_are_caught() -> KtestResult {
    let index = core::hint::black_box(7usize);
    let short = [1u8, 2, 3];
    let bounds = caught(|| {
        core::hint::black_box(short[index]);
    })
    .map_err(crate::ktest::KtestFailure::new)?;
    ensure!(
        bounds.message.as_str().contains("index out of bounds"),
        "{}",
        bounds.message
    );
    let none: Option<u8> = core::hint::black_box(None);
    let unwrap = caught(|| {
        core::hint::black_box(none.unwrap());
    })
    .map_err(crate::ktest::KtestFailure::new)?;
    ensure!(
        unwrap.message.as_str().contains("on a `None` value"),
        "{}",
        unwrap.message
    );
    let max = core::hint::black_box(u32::MAX);
    let overflow = caught(|| {
        core::hint::black_box(max + 1);
    })
    .map_err(crate::ktest::KtestFailure::new)?;
    ensure!(
        overflow.message.as_str().contains("overflow"),
        "{}",
        overflow.message
    );
    Ok(())
}

#[ktest]
fn catch_returns_the_value_when_nothing_panics() -> KtestResult {
    let value = containment::catch(|| 41 + 1);
    ensure!(matches!(value, Ok(42)), "{value:?}");
    Ok(())
}

/// Loads the fixture `name`, raises `Console.Line` with `command` inside
/// the extension boundary, and handles the fault (report, unload).
/// Returns what the raise returned.
fn fault_cycle(
    name: &str,
    command: &str,
) -> Result<crate::containment::faults::ExtensionFailed, crate::ktest::KtestFailure> {
    use crate::containment::faults;
    let fail = |e: &dyn core::fmt::Display| crate::ktest::KtestFailure::new(alloc::format!("{e}"));
    crate::loader::load(name).map_err(|e| fail(&e))?;
    let line = console::Line::new(command);
    let result = faults::call_extensions("ktest", || crate::events::authority().line.raise(&line));
    drop(line);
    let failed = match result {
        Ok(_) => return Err(fail(&alloc::format!("{command} returned"))),
        Err(failed) => failed,
    };
    ensure!(!containment::may_unwind(), "catch frame left open");
    ensure!(
        x86_64::instructions::interrupts::are_enabled(),
        "interrupts left disabled"
    );
    // The raise's read section was closed by the unwind.
    ensure_eq!(dispatcher::read_side::raise_depth(), 0);
    ensure_eq!(faults::handle_pending(), 1);
    ensure!(
        !crate::loader::with(|l| l.is_loaded(name)),
        "{name} still loaded"
    );
    Ok(failed)
}

/// Forced unwinding from the timer path: the `endless-loop` fixture's
/// handler never returns; the watchdog redirects it from the timer
/// interrupt, the unwind reaches the boundary, and the extension is
/// unloaded. The second round leaves the heap exactly as it was (the
/// first may leave `Console.Line`'s dispatch plan recompiled to another
/// size).
#[ktest]
fn the_watchdog_unwinds_an_endless_loop_from_the_timer_interrupt() -> KtestResult {
    use crate::containment::faults;
    let faults_before = faults::count();
    let failed = fault_cycle("endless-loop", "endless-loop")?;
    ensure_eq!(failed.extension(), "endless-loop");
    ensure_eq!(failed.site(), "ktest");
    ensure_eq!(faults::count(), faults_before + 1);
    // Retired dispatch tables are freed after their grace period.
    dispatcher::read_side::synchronize();
    let heap_before = heap::stats().used;
    fault_cycle("endless-loop", "endless-loop")?;
    dispatcher::read_side::synchronize();
    ensure_eq!(heap::stats().used, heap_before);
    Ok(())
}

/// The stack guard: the `unbounded-recursion` fixture's handler recurses
/// into the guard page below the stack; the page fault becomes a forced
/// unwind from the kernel frame that called in (no double fault), and the
/// extension is unloaded; the second round leaves the heap exactly as it
/// was.
#[ktest]
fn an_overflow_into_the_guard_page_unwinds_to_the_boundary() -> KtestResult {
    let failed = fault_cycle("unbounded-recursion", "recurse")?;
    ensure_eq!(failed.extension(), "unbounded-recursion");
    dispatcher::read_side::synchronize();
    let heap_before = heap::stats().used;
    fault_cycle("unbounded-recursion", "recurse")?;
    dispatcher::read_side::synchronize();
    ensure_eq!(heap::stats().used, heap_before);
    Ok(())
}

/// Waits until `done()` or five seconds of TSC time, halting between
/// interrupts.
fn wait_until(done: impl Fn() -> bool) -> bool {
    let deadline = crate::time::uptime_ns() + 5_000_000_000;
    while !done() && crate::time::uptime_ns() < deadline {
        x86_64::instructions::hlt();
    }
    done()
}

/// The stack guard of the interrupt stack: the `overflow-in-tick`
/// fixture's `Clock.Tick` handler, once armed, recurses into the guard
/// page below the interrupt stack it runs on. The fault is captured on the
/// capture stack, the unwind ends at the boundary the timer opened around
/// the raise, the extension is reported as failed during `Clock.Tick` and
/// unloaded; afterwards the capture stack is free and the timer still
/// ticks (no tick left in service at the local APIC).
#[ktest]
fn an_overflow_of_the_interrupt_stack_unwinds_to_the_timers_boundary() -> KtestResult {
    use crate::containment::{capture_stack, faults};
    let fail = |e: &dyn core::fmt::Display| crate::ktest::KtestFailure::new(alloc::format!("{e}"));
    let name = "overflow-in-tick";
    let faults_before = faults::count();
    crate::loader::load(name).map_err(|e| fail(&e))?;
    let line = console::Line::new(name);
    let armed = faults::call_extensions("ktest", || crate::events::authority().line.raise(&line));
    drop(line);
    ensure!(matches!(armed, Ok(Ok(_))), "arming it failed");
    ensure!(
        wait_until(|| faults::count() > faults_before),
        "the overflow was never contained"
    );
    let last = faults::history()
        .pop()
        .ok_or_else(|| fail(&"no fault in the history"))?;
    ensure_eq!(last.extension.as_str(), name);
    ensure_eq!(last.site, clock::TICK_EVENT);
    ensure!(
        last.reason.as_str().contains("stack overflow"),
        "{}",
        last.reason
    );
    faults::handle_pending();
    ensure!(
        wait_until(|| !crate::loader::with(|l| l.is_loaded(name))),
        "{name} still loaded"
    );
    ensure_eq!(faults::count(), faults_before + 1);
    ensure!(
        !capture_stack::in_use(),
        "the capture stack was not released"
    );
    let ticks = crate::time::ticks();
    ensure!(
        wait_until(|| crate::time::ticks() >= ticks + 3),
        "the timer stopped ticking"
    );
    Ok(())
}
