//! What containment costs: the boundary on a kernel raise when nothing
//! panics (the same raise with and without it, same boot), an extension's
//! call into the kernel beside the kernel's own call (the boundary is not
//! on that path at all), and a contained panic, from the fault to the
//! kernel serving again.
//!
//! The shell runs `bench` outside the raise that carried the command, so
//! the contained panic's unload does not wait for that raise to let go of
//! the failed extension's handlers.

use alloc::vec::Vec;

use super::{Plan, Report, Stats, measure};
use crate::arch::rdtsc;
use crate::containment::{self, faults};
use spindle_package::bench_set::{KERNEL_CALLS, PANIC_IN_HANDLER};

const RAISE_PLAN: Plan = Plan::new(31, 10_000);
const UNWIND_PLAN: Plan = Plan::new(11, 20);
/// Calls from the extension per raise of `kernel-calls N`.
const EXTENSION_CALLS: u64 = 2_000;
/// Raises of `kernel-calls` per run.
const EXTENSION_CALL_PLAN: Plan = Plan::new(15, 20);
/// The same call made by the kernel.
const KERNEL_CALL_PLAN: Plan = Plan::new(31, 10_000);
/// Contained extension faults measured (each loads the fixture again).
const FAULT_RUNS: usize = 5;

/// Measures the rows.
pub fn run(report: &mut Report) {
    let authority = crate::events::authority();
    // An empty line: the built-in commands' handler answers `Unknown`
    // without printing; with no extension loaded this is the fast path.
    let line = console::Line::new("");
    let ops = RAISE_PLAN.ops_per_run;
    let [plain, bounded, generic] = interleaved(
        RAISE_PLAN.runs,
        [
            &mut || {
                batch(ops, || {
                    let _ = core::hint::black_box(authority.line.raise(&line));
                })
            },
            &mut || {
                batch(ops, || {
                    let _ = core::hint::black_box(faults::call_extensions_interruptible(
                        "bench",
                        || authority.line.raise(&line),
                    ));
                })
            },
            &mut || {
                batch(ops, || {
                    let _ = core::hint::black_box(faults::call_extensions("bench", || {
                        authority.line.raise(&line)
                    }));
                })
            },
        ],
    );
    drop(line);
    report.add(
        "containment",
        "Console.Line raise (original handler only)",
        plain,
    );
    report.add(
        "containment",
        "the same raise inside the extension boundary (the shell's)",
        bounded,
    );
    report.add(
        "containment",
        "... inside the boundary that reads RFLAGS",
        generic,
    );
    report.note(alloc::format!(
        "containment: raise inside the boundary / without it = {:.3} (medians, same boot; minima {:.3}); the boundary that reads RFLAGS = {:.3} (minima {:.3})",
        bounded.median / plain.median.max(f64::MIN_POSITIVE),
        bounded.min / plain.min.max(f64::MIN_POSITIVE),
        generic.median / plain.median.max(f64::MIN_POSITIVE),
        generic.min / plain.min.max(f64::MIN_POSITIVE),
    ));
    extension_calls(report);
    report.add(
        "containment",
        "kernel panic caught by catch (unwind 1 frame)",
        measure(UNWIND_PLAN, |i| {
            let _ = core::hint::black_box(containment::catch(|| {
                if core::hint::black_box(i) < u64::MAX {
                    panic!("bench");
                }
            }));
        }),
    );
    let faults = extension_faults();
    let rows = [
        (
            "extension panic in a handler: fault to the raise's error",
            faults.to_boundary,
        ),
        (
            "... then report and unload (fault handled)",
            faults.to_serving,
        ),
        (
            "contained panic: fault to the kernel serving again",
            faults.total,
        ),
    ];
    for (name, samples) in rows {
        if !samples.is_empty() {
            report.add("containment", name, Stats::of(samples));
        }
    }
}

/// Cycles per operation of `ops` calls of `op` (one run of [`measure`]).
#[inline(always)]
fn batch(ops: u64, mut op: impl FnMut()) -> f64 {
    let start = rdtsc();
    for _ in 0..ops {
        op();
    }
    (rdtsc() - start) as f64 / ops as f64
}

/// One sample of each of `batches` per run, the batches in turn, for
/// `runs` runs: load on the host (TCG's cycles are the host's) falls on all
/// of them alike.
fn interleaved<const N: usize>(
    runs: usize,
    mut batches: [&mut dyn FnMut() -> f64; N],
) -> [Stats; N] {
    let mut samples: [Vec<f64>; N] = core::array::from_fn(|_| Vec::with_capacity(runs));
    for _ in 0..runs {
        for (batch, samples) in batches.iter_mut().zip(samples.iter_mut()) {
            samples.push(batch());
        }
    }
    samples.map(Stats::of)
}

/// One call from an extension into the kernel, beside the same call made
/// by the kernel: `kernel-calls N` raised with N = 0 and N =
/// [`EXTENSION_CALLS`]; the difference per call.
fn extension_calls(report: &mut Report) {
    let kernel = measure(KERNEL_CALL_PLAN, |_| {
        core::hint::black_box(clock::tick_event());
    });
    if let Err(e) = crate::loader::load(KERNEL_CALLS) {
        report.note(alloc::format!(
            "containment: no extension-to-kernel call row: cannot load {KERNEL_CALLS}: {e}"
        ));
        return;
    }
    let authority = crate::events::authority();
    let none = console::Line::new(alloc::format!("{KERNEL_CALLS} 0"));
    let many = console::Line::new(alloc::format!("{KERNEL_CALLS} {EXTENSION_CALLS}"));
    let empty = measure(EXTENSION_CALL_PLAN, |_| {
        let _ = core::hint::black_box(authority.line.raise(&none));
    });
    let full = measure(EXTENSION_CALL_PLAN, |_| {
        let _ = core::hint::black_box(authority.line.raise(&many));
    });
    drop((none, many));
    let _ = crate::loader::unload(KERNEL_CALLS);
    let per_call = |raise: f64| ((raise - empty.median) / EXTENSION_CALLS as f64).max(0.0);
    let extension = Stats {
        median: per_call(full.median),
        min: per_call(full.min),
        max: per_call(full.max),
        runs: full.runs,
    };
    report.add(
        "containment",
        "extension -> kernel call (clock::tick_event)",
        extension,
    );
    report.add("containment", "the same call made by the kernel", kernel);
    report.note(alloc::format!(
        "containment: extension -> kernel call / kernel's own call = {:.3} (medians, same boot)",
        extension.median / kernel.median.max(f64::MIN_POSITIVE)
    ));
}

/// Cycles of each contained fault, per stage.
#[derive(Default)]
struct FaultSamples {
    /// From the raise to its error: the panic, the culprit's stack walk,
    /// the unwind, the report's formatting.
    to_boundary: Vec<f64>,
    /// From the error to the extension being gone: printing the report,
    /// the unload.
    to_serving: Vec<f64>,
    /// The two together: from the raise that faults to the kernel ready to
    /// serve the next command.
    total: Vec<f64>,
}

/// Loads `panic-in-handler`, triggers its panic and unloads it
/// [`FAULT_RUNS`] times.
fn extension_faults() -> FaultSamples {
    let mut samples = FaultSamples::default();
    for _ in 0..FAULT_RUNS {
        if crate::loader::load(PANIC_IN_HANDLER).is_err() {
            break;
        }
        let line = console::Line::new(alloc::format!("{PANIC_IN_HANDLER} bench"));
        let start = rdtsc();
        let result =
            faults::call_extensions("bench", || crate::events::authority().line.raise(&line));
        let caught = rdtsc();
        drop(line);
        faults::handle_pending();
        let served = rdtsc();
        if result.is_ok() {
            break;
        }
        samples.to_boundary.push((caught - start) as f64);
        samples.to_serving.push((served - caught) as f64);
        samples.total.push((served - start) as f64);
    }
    samples
}
