//! Loading and unloading extensions, stage by stage, for a small, a medium
//! and a large extension of the ramdisk.
//!
//! Each run loads the extension (the loader times each stage itself, see
//! `loader::LoadCycles`, and copies the object once just before, as the
//! baseline) and unloads it again. Every stage's row carries its cost in
//! copies of the object, measured in the same run: the figure issue 11's
//! target (a whole load ≤ 100 copies) is about.
//!
//! The suite must run outside any `Console.Line` raise (the shell defers
//! `bench`): an unload waits until no raise in progress holds the
//! extension's handlers.

use alloc::format;
use alloc::vec::Vec;

use loader::LoadReport;

use super::{Report, Stats};
use crate::arch::rdtsc;

/// Loads and unloads per extension.
const RUNS: usize = 7;

/// The extensions measured: (size class, name). Chosen for their sizes
/// (about 4 KB, 250 KB and 450 KB in a debug build) and because loading
/// and unloading them has no lasting effect on the kernel.
const SUBJECTS: [(&str, &str); 3] = spindle_package::bench_set::LOADED;

/// Reads one stage's cycles from a load's report.
type StageCycles = fn(&LoadReport) -> u64;

/// One load and unload: the loader's report and the unload's cycles.
fn cycle(name: &str) -> Option<(LoadReport, u64)> {
    let report = crate::loader::load(name).ok()?;
    let start = rdtsc();
    let unloaded = crate::loader::unload(name);
    let unload = rdtsc() - start;
    unloaded.ok()?;
    Some((report, unload))
}

/// Measures one extension; prints why if it cannot be measured.
fn subject(report: &mut Report, class: &str, name: &str) {
    if crate::loader::with(|l| l.is_loaded(name)) {
        crate::println!("bench loading: {name} is loaded; unload it to measure it");
        return;
    }
    let Some(bytes) = crate::loader::with(|l| l.catalogue().get(name).map(|e| e.object().len()))
    else {
        crate::println!("bench loading: no '{name}' in the catalogue");
        return;
    };
    let mut runs = Vec::with_capacity(RUNS);
    for _ in 0..RUNS {
        match cycle(name) {
            Some(run) => runs.push(run),
            None => {
                crate::println!("bench loading: loading or unloading {name} failed");
                return;
            }
        }
    }
    let copy = Stats::of(
        runs.iter()
            .map(|(r, _)| r.baseline_copy_cycles as f64)
            .collect(),
    );
    let copies = |stats: &Stats| stats.median / copy.median.max(1.0);
    let label = format!("{name} ({class}, {} KB)", bytes.div_ceil(1024));
    report.add("loading", format!("{label}: copy the object once"), copy);
    let stages: [(&str, StageCycles); 7] = [
        ("verify", |r| r.cycles.verify),
        ("parse", |r| r.cycles.parse),
        ("resolve", |r| r.cycles.resolve),
        ("link", |r| r.cycles.link),
        ("map", |r| r.cycles.map),
        ("init", |r| r.cycles.init),
        ("load total", |r| r.cycles.total()),
    ];
    for (stage, of) in stages {
        let stats = Stats::of(runs.iter().map(|(r, _)| of(r) as f64).collect());
        let note = format!("{:.1}x copying the object", copies(&stats));
        report.add_noted("loading", format!("{label}: {stage}"), stats, note);
    }
    let unload = Stats::of(runs.iter().map(|&(_, u)| u as f64).collect());
    let note = format!("{:.1}x copying the object", copies(&unload));
    report.add_noted("loading", format!("{label}: unload"), unload, note);
}

/// Measures the suite.
pub fn run(report: &mut Report) {
    for (class, name) in SUBJECTS {
        subject(report, class, name);
    }
}
