//! The baselines every other figure is compared with: an empty loop, a
//! direct call and an indirect call; and SPIN's protected in-kernel call: a
//! call from a loaded extension into a kernel function
//! (`dispatcher::Principal::id`, one load), beside the kernel calling the
//! same function directly.

use alloc::format;
use core::hint::black_box;

use super::{Plan, Published, Report, Stats, measure};
use crate::arch::rdtsc;
use crate::containment::faults;
use spindle_package::bench_set::CALLER;

const PLAN: Plan = Plan::new(31, 10_000);

/// Calls per timed loop (the loop with none is subtracted).
const LOOP_CALLS: u64 = 10_000;
/// Timed loops (pairs) per row.
const LOOP_RUNS: usize = 21;

/// SPIN's protected in-kernel call (SOSP'95: 0.13 us on a 133 MHz Alpha
/// 3000/400; its procedure call was 0.10 us).
const SPIN_PROTECTED_CALL: Published = Published {
    system: "SPIN",
    micros: 0.13,
    mhz: 133.0,
    call_micros: 0.10,
};

#[inline(never)]
fn callee(x: u64) -> u64 {
    black_box(x.wrapping_add(1))
}

fn indirect(plan: Plan) -> Stats {
    let f: fn(u64) -> u64 = black_box(callee);
    measure(plan, |i| {
        black_box(f(i));
    })
}

/// One indirect call through a function pointer.
pub fn indirect_call() -> Stats {
    indirect(PLAN)
}

/// Cycles per call: each run times `calls(0)` and `calls(LOOP_CALLS)` and
/// divides the difference by [`LOOP_CALLS`], so what surrounds the loop
/// (a raise, the command's parsing) cancels out.
fn per_call(mut calls: impl FnMut(u64) -> bool) -> Option<Stats> {
    let mut samples = alloc::vec::Vec::with_capacity(LOOP_RUNS);
    for _ in 0..LOOP_RUNS {
        let start = rdtsc();
        let none = calls(0);
        let middle = rdtsc();
        let some = calls(LOOP_CALLS);
        let end = rdtsc();
        if !(none && some) {
            return None;
        }
        let with = (end - middle) as f64;
        let without = (middle - start) as f64;
        samples.push((with - without).max(0.0) / LOOP_CALLS as f64);
    }
    Some(Stats::of(samples))
}

/// Raises `Console.Line` with `line` inside the extension boundary;
/// whether the extension handled it.
fn raise(line: &console::Line) -> bool {
    matches!(
        faults::call_extensions("bench", || crate::events::authority().line.raise(line)),
        Ok(Ok(console::Reply::Handled))
    )
}

fn extension_call(report: &mut Report) {
    let principal = crate::events::authority().issuer.issue("bench-call-kernel");
    // The loop `bench-call` runs, with the kernel calling the function.
    let direct = per_call(|n| {
        for _ in 0..n {
            black_box(black_box(&principal).id());
        }
        true
    })
    .expect("the direct loop always runs");
    crate::events::authority().issuer.revoke(&principal);
    report.add(
        "baseline",
        "kernel function (Principal::id) called by the kernel",
        direct,
    );
    let loaded_here = !crate::loader::with(|l| l.is_loaded(CALLER));
    if loaded_here && let Err(e) = crate::loader::load(CALLER) {
        crate::println!("bench baseline: cannot load {CALLER}: {e}");
        return;
    }
    let zero = console::Line::new(format!("{CALLER} 0"));
    let many = console::Line::new(format!("{CALLER} {LOOP_CALLS}"));
    let measured = per_call(|n| raise(if n == 0 { &zero } else { &many }));
    drop((zero, many));
    if loaded_here && let Err(e) = crate::loader::unload(CALLER) {
        crate::println!("bench baseline: cannot unload {CALLER}: {e}");
    }
    let Some(stats) = measured else {
        crate::println!("bench baseline: {CALLER} did not handle its command");
        return;
    };
    report.add_published(
        "baseline",
        "the same, called from a loaded extension",
        stats,
        SPIN_PROTECTED_CALL,
    );
    let ratio = stats.median / direct.median.max(f64::MIN_POSITIVE);
    report.note_last(format!(
        "{ratio:.2}x the direct call (target <= 1.10: {})",
        if ratio <= 1.10 { "met" } else { "not met" }
    ));
}

/// The kernel heap: one block allocated and freed, with the heap as it is
/// (every structure the loader, the dispatcher and the shell allocate pays
/// this).
fn heap(report: &mut Report) {
    for size in [64usize, 1024] {
        report.add(
            "baseline",
            format!("kernel heap: allocate and free {size} bytes"),
            measure(PLAN, |_| {
                black_box(alloc::vec::Vec::<u8>::with_capacity(black_box(size)));
            }),
        );
    }
}

/// Measures the baselines.
pub fn run(report: &mut Report) {
    report.add("baseline", "empty loop iteration", measure(PLAN, |_| {}));
    report.add_published(
        "baseline",
        "direct call",
        measure(PLAN, |i| {
            black_box(callee(i));
        }),
        super::SPIN_PROCEDURE_CALL,
    );
    let unit = report.indirect_call;
    report.add("baseline", "indirect call (fn pointer)", unit);
    heap(report);
    extension_call(report);
}
