//! What containment costs: the boundary on a kernel raise when nothing
//! panics, and a contained panic, from the fault to the kernel serving
//! again.

use alloc::vec::Vec;

use super::{Plan, Report, Stats, measure};
use crate::arch::rdtsc;
use crate::containment::{self, faults};

const RAISE_PLAN: Plan = Plan::new(31, 10_000);
const UNWIND_PLAN: Plan = Plan::new(11, 20);
/// Contained extension faults measured (each loads the fixture again).
const FAULT_RUNS: usize = 5;

/// Measures the rows.
pub fn run(report: &mut Report) {
    let authority = crate::events::authority();
    // An empty line: the built-in commands' handler answers `Unknown`
    // without printing; with no extension loaded this is the fast path.
    let line = console::Line::new("");
    report.add(
        "containment",
        "Console.Line raise (original handler only)",
        measure(RAISE_PLAN, |_| {
            let _ = core::hint::black_box(authority.line.raise(&line));
        }),
    );
    report.add(
        "containment",
        "the same raise inside the extension boundary",
        measure(RAISE_PLAN, |_| {
            let _ = core::hint::black_box(faults::call_extensions("bench", || {
                authority.line.raise(&line)
            }));
        }),
    );
    drop(line);
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
    let (to_boundary, to_serving) = extension_faults();
    if let Some(stats) = to_boundary {
        report.add(
            "containment",
            "extension panic in a handler: fault to the raise's error",
            stats,
        );
    }
    if let Some(stats) = to_serving {
        report.add(
            "containment",
            "... then report and unload (nested in bench's raise: waits out the 1 s release bound)",
            stats,
        );
    }
}

/// Loads `panic-in-handler`, triggers its panic and unloads it
/// [`FAULT_RUNS`] times: cycles from the raise to its error (the panic,
/// the culprit's stack walk, the unwind, the report), and from the error to
/// the extension being gone (printing the report, the unload).
fn extension_faults() -> (Option<Stats>, Option<Stats>) {
    let mut to_boundary = Vec::new();
    let mut to_serving = Vec::new();
    for _ in 0..FAULT_RUNS {
        if crate::loader::load("panic-in-handler").is_err() {
            break;
        }
        let line = console::Line::new("panic-in-handler bench");
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
        to_boundary.push((caught - start) as f64);
        to_serving.push((served - caught) as f64);
    }
    let stats = |samples: Vec<f64>| (!samples.is_empty()).then(|| Stats::of(samples));
    (stats(to_boundary), stats(to_serving))
}
