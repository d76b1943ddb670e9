//! `stats`: summary statistics of numbers typed at the shell, computed with
//! two crates.io libraries the extension carries in its own domain:
//! `heapless` holds the samples in a bounded buffer (no heap, a clear
//! error past [`MAX_SAMPLES`]) and `libm` supplies the square root,
//! logarithm and exponential that `core` lacks. Both use `unsafe`, so both
//! are listed in `extensions/vetted.toml`; `ext info stats` shows them.
//!
//! ```text
//! spindle> stats 3 1 4 1 5 9 2 6
//! n 8  min 1  max 9  mean 3.875  median 3.5  stddev 2.571  geomean 2.995
//! ```
#![no_std]
#![forbid(unsafe_code)]

use heapless::Vec;
use spindle_sdk::prelude::*;
use spindle_sdk::spin::Mutex;

/// Most numbers one command takes.
pub const MAX_SAMPLES: usize = 64;

/// The summary of a sample.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Summary {
    /// Number of values.
    pub count: usize,
    /// Smallest.
    pub min: f64,
    /// Largest.
    pub max: f64,
    /// Arithmetic mean.
    pub mean: f64,
    /// Middle value (mean of the two middle ones for an even count).
    pub median: f64,
    /// Population standard deviation.
    pub stddev: f64,
    /// Geometric mean, if every value is positive.
    pub geomean: Option<f64>,
}

/// Summarises `samples` (sorted in place); `None` if it is empty.
pub fn summarize(samples: &mut [f64]) -> Option<Summary> {
    let count = samples.len();
    if count == 0 {
        return None;
    }
    samples.sort_unstable_by(f64::total_cmp);
    let n = count as f64;
    let mean = samples.iter().sum::<f64>() / n;
    let variance = samples.iter().map(|x| (x - mean) * (x - mean)).sum::<f64>() / n;
    let median = if count % 2 == 1 {
        samples[count / 2]
    } else {
        (samples[count / 2 - 1] + samples[count / 2]) / 2.0
    };
    let geomean = samples
        .iter()
        .all(|&x| x > 0.0)
        .then(|| libm::exp(samples.iter().map(|&x| libm::log(x)).sum::<f64>() / n));
    Some(Summary {
        count,
        min: samples[0],
        max: samples[count - 1],
        mean,
        median,
        stddev: libm::sqrt(variance),
        geomean,
    })
}

/// `e^rate`: the growth factor of one unit of time at a continuous rate.
/// Inlined into its callers (the `private-import` fixture shows what that
/// means for an extension that calls it without carrying `libm` itself).
#[inline]
pub fn growth(rate: f64) -> f64 {
    libm::exp(rate)
}

/// The installed handler, kept so that `exit` can uninstall it.
static COMMAND: Mutex<Option<Binding<Line, Reply>>> = Mutex::new(None);

fn command(line: &Line) -> Reply {
    let mut samples: Vec<f64, MAX_SAMPLES> = Vec::new();
    for word in line.args() {
        let Ok(value) = word.parse::<f64>() else {
            println!("stats: '{word}' is not a number");
            return Reply::Handled;
        };
        if samples.push(value).is_err() {
            println!("stats: at most {MAX_SAMPLES} numbers");
            return Reply::Handled;
        }
    }
    match summarize(&mut samples) {
        None => {
            println!("usage: stats NUMBER... (summary statistics, up to {MAX_SAMPLES} numbers)")
        }
        Some(s) => {
            print!(
                "n {}  min {}  max {}  mean {:.3}  median {}  stddev {:.3}",
                s.count, s.min, s.max, s.mean, s.median, s.stddev
            );
            match s.geomean {
                Some(g) => println!("  geomean {g:.3}"),
                None => println!("  geomean - (needs positive numbers)"),
            }
        }
    }
    Reply::Handled
}

fn init(ctx: &ExtensionContext) -> Result<(), ExtensionError> {
    let binding = spindle_sdk::console::line_event()
        .binding(command)
        .guard(|line| line.command() == "stats")
        .install(ctx.principal())?;
    *COMMAND.lock() = Some(binding);
    println!("stats: loaded; try 'stats 3 1 4 1 5 9 2 6'");
    Ok(())
}

fn exit(_ctx: &ExtensionContext) {
    if let Some(binding) = COMMAND.lock().take() {
        let _ = binding.uninstall();
    }
}

spindle_sdk::extension!(init: init, exit: exit);
