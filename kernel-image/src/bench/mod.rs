//! The in-kernel benchmark harness: figures measured in the running kernel,
//! in TSC cycles, each beside the cost of an indirect call measured in the
//! same boot.
//!
//! Under QEMU's TCG the TSC counts host cycles spent emulating, so absolute
//! figures depend on the host; only ratios to a baseline measured in the
//! same boot mean anything. Every figure is the median (and the spread)
//! over repeated runs of a batch of operations, so timer interrupts and
//! other noise land in the tails, not in the median.
//!
//! A suite is a function that measures rows into a [`Report`]; suites are
//! listed in [`SUITES`] and run by the shell's `bench [SUITE]`.

mod baseline;
mod containment;
mod dispatch;
mod loading;
mod strands;
mod vm;

use alloc::string::String;
use alloc::vec::Vec;

use crate::arch::rdtsc;
use crate::println;

/// Cycles per operation over repeated runs.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Stats {
    /// Median over the runs.
    pub median: f64,
    /// Fastest run.
    pub min: f64,
    /// Slowest run.
    pub max: f64,
    /// Runs measured.
    pub runs: usize,
}

impl Stats {
    /// Statistics of per-operation cycle counts, one per run.
    ///
    /// # Panics
    /// If `samples` is empty.
    pub fn of(mut samples: Vec<f64>) -> Self {
        assert!(!samples.is_empty(), "no samples");
        samples.sort_by(f64::total_cmp);
        let n = samples.len();
        let median = if n % 2 == 1 {
            samples[n / 2]
        } else {
            (samples[n / 2 - 1] + samples[n / 2]) / 2.0
        };
        Self {
            median,
            min: samples[0],
            max: samples[n - 1],
            runs: n,
        }
    }
}

/// How many times to repeat what.
#[derive(Clone, Copy, Debug)]
pub struct Plan {
    /// Runs (each gives one sample).
    pub runs: usize,
    /// Operations per run.
    pub ops_per_run: u64,
}

impl Plan {
    /// `runs` runs of `ops_per_run` operations.
    pub const fn new(runs: usize, ops_per_run: u64) -> Self {
        Self { runs, ops_per_run }
    }
}

/// Measures `op` (called with the operation's index) `plan.runs` times
/// `plan.ops_per_run` times; returns cycles per operation.
pub fn measure(plan: Plan, mut op: impl FnMut(u64)) -> Stats {
    let samples = (0..plan.runs)
        .map(|_| {
            let start = rdtsc();
            for i in 0..plan.ops_per_run {
                op(core::hint::black_box(i));
            }
            (rdtsc() - start) as f64 / plan.ops_per_run as f64
        })
        .collect();
    Stats::of(samples)
}

/// A published figure to print beside ours.
#[derive(Clone, Copy, Debug)]
pub struct Published {
    /// Who measured it ("SPIN", ...).
    pub system: &'static str,
    /// Microseconds on the system's machine.
    pub micros: f64,
    /// The machine's clock in MHz (to print cycles).
    pub mhz: f64,
    /// The system's procedure call on the same machine, in microseconds
    /// (its ratio is `micros / call_micros`).
    pub call_micros: f64,
}

/// SPIN's protected in-kernel procedure call (OSDI'96 Table 1: 0.10 us on
/// a 133 MHz Alpha 3000/400): the unit of SPIN's ratios.
pub const SPIN_PROCEDURE_CALL: Published = Published {
    system: "SPIN",
    micros: 0.10,
    mhz: 133.0,
    call_micros: 0.10,
};

/// One measured figure.
#[derive(Clone, Debug)]
pub struct Row {
    /// Suite it belongs to.
    pub suite: &'static str,
    /// What was measured.
    pub name: String,
    /// Cycles per operation.
    pub stats: Stats,
    /// The published figure it compares with, if any.
    pub published: Option<Published>,
    /// What else it compares with (a target, another row), if anything.
    pub note: Option<String>,
}

/// The rows a run produced, with the baseline they are compared with.
pub struct Report {
    /// An indirect call in this boot, measured when the report was made:
    /// the unit of every ratio.
    pub indirect_call: Stats,
    /// The rows, in the order measured.
    pub rows: Vec<Row>,
    /// Lines printed after the table (same-boot ratios between rows).
    pub notes: Vec<String>,
}

impl Report {
    /// A report whose ratios use the indirect-call baseline measured now.
    pub fn new() -> Self {
        Self {
            indirect_call: baseline::indirect_call(),
            rows: Vec::new(),
            notes: Vec::new(),
        }
    }

    /// Adds a row.
    pub fn add(&mut self, suite: &'static str, name: impl Into<String>, stats: Stats) {
        self.rows.push(Row {
            suite,
            name: name.into(),
            stats,
            published: None,
            note: None,
        });
    }

    /// Adds a line printed after the table.
    pub fn note(&mut self, text: String) {
        self.notes.push(text);
    }

    /// Adds a row with a note (what it compares with).
    pub fn add_noted(
        &mut self,
        suite: &'static str,
        name: impl Into<String>,
        stats: Stats,
        note: impl Into<String>,
    ) {
        self.add(suite, name, stats);
        self.note_last(note);
    }

    /// Sets the note of the last row added.
    pub fn note_last(&mut self, note: impl Into<String>) {
        if let Some(row) = self.rows.last_mut() {
            row.note = Some(note.into());
        }
    }

    /// Adds a row with the published figure it is compared with.
    pub fn add_published(
        &mut self,
        suite: &'static str,
        name: impl Into<String>,
        stats: Stats,
        published: Published,
    ) {
        self.add(suite, name, stats);
        if let Some(row) = self.rows.last_mut() {
            row.published = Some(published);
        }
    }

    /// A row's median as a multiple of this boot's indirect call.
    pub fn ratio(&self, stats: &Stats) -> f64 {
        stats.median / self.indirect_call.median.max(f64::MIN_POSITIVE)
    }

    /// Prints the table.
    pub fn print(&self) {
        println!(
            "{:<11} {:<44} {:>10} {:>10} {:>10} {:>5} {:>8}  COMPARED WITH (published: us, cycles, ratio to its call)",
            "SUITE", "BENCHMARK", "CYCLES", "MIN", "MAX", "RUNS", "RATIO"
        );
        for row in &self.rows {
            let compared = row
                .published
                .map(|p| {
                    alloc::format!(
                        "{} {:.2} us, {:.0} cyc, {:.2}x",
                        p.system,
                        p.micros,
                        p.micros * p.mhz,
                        p.micros / p.call_micros
                    )
                })
                .into_iter()
                .chain(row.note.clone())
                .collect::<Vec<_>>()
                .join("; ");
            println!(
                "{:<11} {:<44} {:>10.1} {:>10.1} {:>10.1} {:>5} {:>8.2}  {}",
                row.suite,
                row.name,
                row.stats.median,
                row.stats.min,
                row.stats.max,
                row.stats.runs,
                self.ratio(&row.stats),
                compared
            );
        }
        println!(
            "cycles: TSC cycles per operation, median (min, max) of the runs (TCG: host cycles spent emulating); ratio: to an indirect call in this boot ({:.1} cycles)",
            self.indirect_call.median
        );
        for note in &self.notes {
            println!("{note}");
        }
    }
}

impl Default for Report {
    fn default() -> Self {
        Self::new()
    }
}

/// A named group of benchmarks.
pub struct Suite {
    /// Name given to `bench`.
    pub name: &'static str,
    /// What it measures.
    pub about: &'static str,
    /// Measures its rows into the report.
    pub run: fn(&mut Report),
}

/// Every suite, in the order `bench` runs them.
pub const SUITES: &[Suite] = &[
    Suite {
        name: "baseline",
        about: "empty loop, direct call, indirect call, a call from an extension into the kernel",
        run: baseline::run,
    },
    Suite {
        name: "dispatch",
        about: "raise with 0/5 args and 1-50 handlers, guards, keys, folding, async",
        run: dispatch::run,
    },
    Suite {
        name: "strands",
        about: "fork-join, ping-pong, switch",
        run: strands::run,
    },
    Suite {
        name: "containment",
        about: "the extension boundary on a raise; a contained panic",
        run: containment::run,
    },
    Suite {
        name: "vm",
        about: "Appel & Li's VM primitives through PhysAddr/VirtAddr/Translation",
        run: vm::run,
    },
    Suite {
        name: "loading",
        about: "extension load (by stage) and unload, small / medium / large",
        run: loading::run,
    },
];

/// The suite named `name`, or every suite; the error lists the suites.
pub fn select(name: Option<&str>) -> Result<Vec<&'static Suite>, String> {
    let selected: Vec<&'static Suite> = SUITES
        .iter()
        .filter(|s| name.is_none_or(|n| n == s.name))
        .collect();
    if selected.is_empty() {
        let suites: Vec<String> = SUITES
            .iter()
            .map(|s| alloc::format!("{} ({})", s.name, s.about))
            .collect();
        return Err(alloc::format!(
            "no suite '{}'; suites: {}",
            name.unwrap_or(""),
            suites.join(", ")
        ));
    }
    Ok(selected)
}

/// Runs `suites` and prints the table. Run it outside any `Console.Line`
/// raise (the shell defers it): the suites load and unload extensions and
/// raise `Console.Line` themselves.
pub fn run(suites: &[&Suite]) {
    let mut report = Report::new();
    for suite in suites {
        (suite.run)(&mut report);
    }
    report.print();
}
