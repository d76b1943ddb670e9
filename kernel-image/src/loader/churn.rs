//! Load/unload churn: every example extension in the catalogue loaded and
//! unloaded over and over, with the heap and the frames compared exactly
//! against a baseline taken after one warm-up round.
//!
//! A *cycle* is one extension loaded and unloaded again. A *round* loads
//! the example extensions one after the other (so that they meet: `tracer`
//! observes the events the others declare, `counter-client` links against
//! `counter`, `hog` and `cache` hold frames at the same time) and then
//! unloads them in the reverse order, dependents before what they import
//! from. The warm-up round finds a load order that respects the imports
//! (a load refused for a missing import is retried once the others are
//! loaded), and the measured rounds reuse it: every prefix of that order
//! loads. Rounds repeat until the cycles asked for are done; the last one
//! may take a prefix.
//!
//! The warm-up round is not measured: anything initialised lazily on the
//! first load of an extension (the unwinder's caches, a dispatch plan's
//! capacity) is allocated once and kept, and would otherwise look like a
//! leak.

use alloc::boxed::Box;
use alloc::string::String;
use alloc::vec::Vec;
use core::fmt;

use spindle_package::Kind;

use loader::Origin;

use super::{LoadError, UnloadError};
use crate::arch::rdtsc;
use crate::memory::{frames, heap};

/// Frames and heap bytes in use, the two figures a churn compares.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct MemoryInUse {
    /// 4 KiB frames allocated.
    pub frames: u64,
    /// Heap bytes allocated, once retired dispatch tables are freed.
    pub heap_bytes: usize,
}

impl MemoryInUse {
    /// The figures now ([`heap::settled_stats`]: thread context only).
    pub fn now() -> Self {
        let heap_bytes = heap::settled_stats().used;
        Self {
            frames: frames::stats().used(),
            heap_bytes,
        }
    }
}

/// What a churn did.
#[derive(Clone, Debug)]
pub struct ChurnReport {
    /// The extensions cycled, in load order.
    pub extensions: Vec<String>,
    /// Load/unload cycles done after the warm-up round.
    pub cycles: u64,
    /// Rounds those cycles took.
    pub rounds: u64,
    /// Memory in use after the warm-up round.
    pub baseline: MemoryInUse,
    /// Memory in use after the last round.
    pub after: MemoryInUse,
    /// TSC cycles the measured rounds took.
    pub tsc_cycles: u64,
}

impl ChurnReport {
    /// Whether memory came back exactly to the baseline.
    pub fn at_baseline(&self) -> bool {
        self.baseline == self.after
    }
}

/// Why a churn stopped.
#[derive(Debug)]
pub enum ChurnError {
    /// No example extension is available to load (all loaded, or none in
    /// the catalogue).
    NothingToChurn,
    /// Loading `extension` failed (in round `round`; 0 is the warm-up).
    Load {
        extension: String,
        round: u64,
        error: Box<LoadError>,
    },
    /// Unloading `extension` failed (in round `round`).
    Unload {
        extension: String,
        round: u64,
        error: Box<UnloadError>,
    },
}

impl fmt::Display for ChurnError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::NothingToChurn => {
                f.write_str("no example extension is available (each is loaded, or none exists)")
            }
            Self::Load {
                extension,
                round,
                error,
            } => write!(f, "round {round}: cannot load {extension}: {error}"),
            Self::Unload {
                extension,
                round,
                error,
            } => write!(f, "round {round}: cannot unload {extension}: {error}"),
        }
    }
}

/// The ramdisk's example extensions (not test fixtures, not pushed) that
/// are not loaded now.
fn candidates() -> Vec<String> {
    super::with(|loader| loader.catalogue_listing())
        .rows
        .into_iter()
        .filter(|row| {
            row.kind == Kind::Extension && row.origin == Origin::Ramdisk && row.loaded_at.is_none()
        })
        .map(|row| row.name)
        .collect()
}

/// Unloads `loaded` in reverse order.
fn unload_all(loaded: &[String], round: u64) -> Result<(), ChurnError> {
    for name in loaded.iter().rev() {
        super::unload(name).map_err(|error| ChurnError::Unload {
            extension: name.clone(),
            round,
            error: Box::new(error),
        })?;
    }
    Ok(())
}

/// The warm-up round: loads every candidate, retrying the ones refused
/// until a pass makes no progress, and unloads them all. Returns the order
/// in which they loaded.
fn warm_up(mut pending: Vec<String>) -> Result<Vec<String>, ChurnError> {
    let mut order: Vec<String> = Vec::new();
    while !pending.is_empty() {
        let loaded_before = order.len();
        let mut refused = Vec::new();
        let mut last_error = None;
        for name in pending {
            match super::load(&name) {
                Ok(_) => order.push(name),
                Err(error) => {
                    last_error = Some((name.clone(), error));
                    refused.push(name);
                }
            }
        }
        if order.len() == loaded_before
            && let Some((extension, error)) = last_error
        {
            unload_all(&order, 0)?;
            return Err(ChurnError::Load {
                extension,
                round: 0,
                error: Box::new(error),
            });
        }
        pending = refused;
    }
    unload_all(&order, 0)?;
    Ok(order)
}

/// One measured round: loads `order` and unloads it in reverse. On a
/// failed load, what this round loaded is unloaded first.
fn round(order: &[String], number: u64) -> Result<(), ChurnError> {
    for (index, name) in order.iter().enumerate() {
        if let Err(error) = super::load(name) {
            unload_all(&order[..index], number)?;
            return Err(ChurnError::Load {
                extension: name.clone(),
                round: number,
                error: Box::new(error),
            });
        }
    }
    unload_all(order, number)
}

/// Loads and unloads the example extensions `cycles` times in all, after
/// one warm-up round; see the module docs. Thread context only (loads and
/// unloads wait for raises in progress).
pub fn churn(cycles: u64) -> Result<ChurnReport, ChurnError> {
    let candidates = candidates();
    if candidates.is_empty() {
        return Err(ChurnError::NothingToChurn);
    }
    let order = warm_up(candidates)?;
    let baseline = MemoryInUse::now();
    let start = rdtsc();
    let (mut done, mut rounds) = (0, 0);
    while done < cycles {
        let take = (cycles - done).min(order.len() as u64) as usize;
        rounds += 1;
        round(&order[..take], rounds)?;
        done += take as u64;
    }
    let tsc_cycles = rdtsc() - start;
    Ok(ChurnReport {
        extensions: order,
        cycles: done,
        rounds,
        baseline,
        after: MemoryInUse::now(),
        tsc_cycles,
    })
}
