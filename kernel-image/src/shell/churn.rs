//! `ext churn CYCLES`: the load/unload churn of the example extensions
//! ([`crate::loader::churn`]), printed with its memory comparison.

use crate::loader::churn::{ChurnReport, churn};
use crate::println;

/// Runs the churn (from the shell's deferred work: thread context, outside
/// the raise) and prints what it found.
pub fn run(cycles: u64) {
    match churn(cycles) {
        Ok(report) => print_report(&report),
        Err(e) => println!("error: churn stopped: {e}"),
    }
}

fn print_report(report: &ChurnReport) {
    let seconds = report.tsc_cycles as f64 / crate::time::tsc_hz().max(1) as f64;
    println!(
        "churn: {} load/unload cycles in {} rounds over {} extensions ({}) in {:.1} s",
        report.cycles,
        report.rounds,
        report.extensions.len(),
        report.extensions.join(", "),
        seconds
    );
    println!(
        "churn: frames used {} -> {}, heap used {} -> {} bytes (baseline after one warm-up round)",
        report.baseline.frames,
        report.after.frames,
        report.baseline.heap_bytes,
        report.after.heap_bytes
    );
    if report.at_baseline() {
        println!("churn: memory exactly at baseline");
    } else {
        println!(
            "error: churn: memory not at baseline: {:+} frames, {:+} heap bytes",
            report.after.frames as i64 - report.baseline.frames as i64,
            report.after.heap_bytes as i64 - report.baseline.heap_bytes as i64
        );
    }
}
