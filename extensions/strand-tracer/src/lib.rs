//! `strand-tracer`: augments the strand service instead of replacing a
//! policy. It observes `Strand.Resume` and `Strand.Checkpoint` for every
//! strand (it registers no policy, so the authority lets it see all of
//! them) and counts, per strand, how often it was switched in and why it
//! was switched out. The shell command `trace` prints the counts (`trace
//! reset` clears them).
//!
//! The handlers run with interrupts disabled inside the switch path and
//! must never wait for the strand they interrupted, so they only
//! `try_lock` the counts: a switch that happens while `trace` reads them
//! goes uncounted (reported as `missed`).
#![no_std]
#![forbid(unsafe_code)]

extern crate alloc;

use alloc::collections::BTreeMap;
use alloc::string::String;
use alloc::vec::Vec;

use core::sync::atomic::{AtomicU64, Ordering};
use spindle_sdk::prelude::*;
use spindle_sdk::spin::Mutex;

use spindle_sdk::strand::{self, Cause, StrandId, StrandSignal};

/// One strand's counts.
#[derive(Clone, Copy, Default)]
struct Counts {
    resumed: u64,
    preempted: u64,
    yielded: u64,
    blocked: u64,
    exited: u64,
}

static COUNTS: Mutex<BTreeMap<StrandId, Counts>> = Mutex::new(BTreeMap::new());
/// Signals that found the counts locked.
static MISSED: AtomicU64 = AtomicU64::new(0);

struct Installed {
    signals: [Binding<StrandSignal, ()>; 2],
    command: Binding<Line, Reply>,
}

static INSTALLED: Mutex<Option<Installed>> = Mutex::new(None);

fn on_resume(signal: &StrandSignal) {
    match COUNTS.try_lock() {
        Some(mut counts) => counts.entry(signal.strand).or_default().resumed += 1,
        None => drop(MISSED.fetch_add(1, Ordering::Relaxed)),
    }
}

fn on_checkpoint(signal: &StrandSignal) {
    let Some(mut counts) = COUNTS.try_lock() else {
        MISSED.fetch_add(1, Ordering::Relaxed);
        return;
    };
    let entry = counts.entry(signal.strand).or_default();
    match signal.cause {
        Cause::Preempted => entry.preempted += 1,
        Cause::Yielded => entry.yielded += 1,
        Cause::Blocked(_) => entry.blocked += 1,
        Cause::Exited(_) => entry.exited += 1,
        Cause::Spawned | Cause::Woken | Cause::Picked => {}
    }
}

fn trace(line: &Line) -> Reply {
    if line.args().next() == Some("reset") {
        *COUNTS.lock() = BTreeMap::new();
        MISSED.store(0, Ordering::Relaxed);
        println!("trace: counts cleared");
        return Reply::Handled;
    }
    let rows: Vec<(StrandId, Counts)> = COUNTS.lock().iter().map(|(i, c)| (*i, *c)).collect();
    let names: BTreeMap<StrandId, String> =
        strand::list().into_iter().map(|s| (s.id, s.name)).collect();
    println!(
        "{:>6} {:<16} {:>9} {:>10} {:>8} {:>8} {:>7}",
        "STRAND", "NAME", "SWITCHIN", "PREEMPTED", "YIELDED", "BLOCKED", "EXITED"
    );
    for (id, c) in rows {
        let name = names.get(&id).map_or("(gone)", String::as_str);
        println!(
            "{:>6} {:<16} {:>9} {:>10} {:>8} {:>8} {:>7}",
            id.as_u64(),
            name,
            c.resumed,
            c.preempted,
            c.yielded,
            c.blocked,
            c.exited
        );
    }
    println!(
        "missed: {} signal(s) arrived while the counts were being read",
        MISSED.load(Ordering::Relaxed)
    );
    Reply::Handled
}

fn init(ctx: &ExtensionContext) -> Result<(), ExtensionError> {
    let events = strand::events::events()
        .ok_or_else(|| ExtensionError::new("the strand service's events are not published"))?;
    let principal = ctx.principal();
    let installed = Installed {
        signals: [
            events.resume.install(principal, on_resume)?,
            events.checkpoint.install(principal, on_checkpoint)?,
        ],
        command: spindle_sdk::console::line_event()
            .binding(trace)
            .guard(|line| line.command() == "trace")
            .install(principal)?,
    };
    *INSTALLED.lock() = Some(installed);
    println!("strand-tracer: counting switches; try 'trace'");
    Ok(())
}

fn exit(_ctx: &ExtensionContext) {
    if let Some(installed) = INSTALLED.lock().take() {
        for binding in installed.signals {
            // Already gone only if the kernel revoked it first.
            let _ = binding.uninstall();
        }
        let _ = installed.command.uninstall();
    }
    *COUNTS.lock() = BTreeMap::new();
    println!("strand-tracer: goodbye");
}

spindle_sdk::extension!(init: init, exit: exit);
