//! Threads raise while others install and uninstall; every raise is checked
//! against a linearizable model built from the recorded intervals.
//!
//! A logical clock (one `SeqCst` counter) timestamps the start and end of
//! every operation. For each raise `R` and binding `B`:
//!
//! * `B` is *definitely installed* during `R` if its install ended before
//!   `R` started and its uninstall started after `R` ended; then, if its
//!   guard holds and no Cancel binding fired in `R`, `R` must call it.
//! * `B` is *definitely absent* if its install started after `R` ended or
//!   its uninstall ended before `R` started; then `R` must not call it.
//! * No handler is called twice by one raise; handlers run in the defined
//!   order (Cancel bindings are `First`, others `Middle` in install order).
//! * A raise sees one snapshot: if it called `B2`, it also called every
//!   binding `B1` whose guard holds, whose install ended before `B2`'s
//!   started and which was not being uninstalled before the raise ended.
//! * Cancel: at most one Cancel binding fires per raise, and when one does,
//!   nothing after it (the original, the `Middle` bindings) runs.

mod common;

use std::collections::HashSet;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Barrier, Mutex};
use std::thread;
use std::time::{Duration, Instant};

use common::principal;
use dispatcher::{BindingId, Event};

static CLOCK: AtomicU64 = AtomicU64::new(1);

fn tick() -> u64 {
    CLOCK.fetch_add(1, Ordering::SeqCst)
}

/// The raise's arguments: its number (guards look at it) and the log of
/// handlers it called.
struct Probe {
    number: u64,
    calls: Mutex<Vec<u64>>,
}

#[derive(Clone, Copy, Debug, PartialEq)]
enum Kind {
    Plain,
    /// Fires when `number % 3 == residue`.
    Guarded(u64),
    /// `First` + `Cancel`, fires when `number % 4 == 0`.
    Cancel,
}

impl Kind {
    fn fires(self, number: u64) -> bool {
        match self {
            Kind::Plain => true,
            Kind::Guarded(residue) => number % 3 == residue,
            Kind::Cancel => number % 4 == 0,
        }
    }
}

#[derive(Clone, Debug)]
struct Life {
    label: u64,
    id: BindingId,
    kind: Kind,
    install: (u64, u64),
    uninstall: (u64, u64),
}

#[derive(Debug)]
struct RaiseRecord {
    number: u64,
    interval: (u64, u64),
    calls: Vec<u64>,
}

const ORIGINAL_LABEL: u64 = 0;

/// What one run of [`linearizability_scenario`] covered: raises and
/// binding lives recorded, raises that overlapped an update, and raises a
/// Cancel binding stopped.
struct Coverage {
    raises: usize,
    lives: usize,
    overlapping_raises: usize,
    cancelled: usize,
}

#[test]
fn raises_are_linearizable_with_installs_and_uninstalls() {
    // Every run checks linearizability of every raise it recorded. A run is
    // only meaningful if raises really overlapped updates, which depends on
    // how the OS schedules the threads: on a loaded machine a run may see
    // few raises or overlaps, so run again (bounded) until one covers
    // enough.
    let mut runs = Vec::new();
    for _ in 0..8 {
        let coverage = linearizability_scenario();
        let enough = coverage.raises > 1000
            && coverage.lives > 500
            && coverage.overlapping_raises > 100
            && coverage.cancelled > 10;
        runs.push((
            coverage.raises,
            coverage.lives,
            coverage.overlapping_raises,
            coverage.cancelled,
        ));
        if enough {
            return;
        }
    }
    panic!(
        "no run had 1,000 raises, 500 binding lives, 100 raises overlapping an update and 10 cancelled: (raises, lives, overlapping, cancelled) per run {runs:?}"
    );
}

fn linearizability_scenario() -> Coverage {
    let owner = principal("Conc.Owner");
    let (event, _authority) = Event::<Probe, ()>::declare("Conc.Event", &owner, |probe| {
        probe.calls.lock().unwrap().push(ORIGINAL_LABEL);
        // A raise is a few nanoseconds: stretch it so that raises overlap
        // updates often even when threads rarely run at the same instant.
        for _ in 0..2_000 {
            std::hint::spin_loop();
        }
    })
    .unwrap();

    let done = Arc::new(AtomicBool::new(false));
    let next_label = Arc::new(AtomicU64::new(1));
    let next_number = Arc::new(AtomicU64::new(0));
    let deadline = Instant::now() + Duration::from_secs(4);
    let start_line = Arc::new(Barrier::new(4));
    // Installer rounds and raises so far; each side paces itself on the
    // other so that raises and updates really interleave even on a loaded
    // machine (or where `spin_loop` is slow and raises are long).
    let rounds = Arc::new(AtomicU64::new(0));
    let raised = Arc::new(AtomicU64::new(0));

    let installers: Vec<_> = [false, true]
        .into_iter()
        .map(|with_cancel| {
            let (event, owner, next_label) = (event.clone(), owner.clone(), next_label.clone());
            let (start_line, rounds, raised) = (start_line.clone(), rounds.clone(), raised.clone());
            thread::spawn(move || {
                let mut lives = Vec::new();
                let mut live = std::collections::VecDeque::new();
                start_line.wait();
                // A bounded number of updates (and a time cap), while the
                // raisers keep raising.
                for round in 0..2_000u64 {
                    while raised.load(Ordering::Relaxed) < round && Instant::now() <= deadline {
                        thread::yield_now();
                    }
                    if Instant::now() > deadline {
                        break;
                    }
                    let label = next_label.fetch_add(1, Ordering::Relaxed);
                    let kind = match (with_cancel, round % 5) {
                        (true, 0) => Kind::Cancel,
                        (_, 1 | 3) => Kind::Guarded(label % 3),
                        _ => Kind::Plain,
                    };
                    let builder = event.binding(move |probe: &Probe| {
                        probe.calls.lock().unwrap().push(label);
                    });
                    // Guards are part of the builder's type, so each kind
                    // installs its own builder.
                    let start = tick();
                    let binding = match kind {
                        Kind::Plain => builder.install(&owner),
                        Kind::Guarded(residue) => builder
                            .guard(move |p: &Probe| p.number % 3 == residue)
                            .install(&owner),
                        Kind::Cancel => builder
                            .first()
                            .cancel()
                            .guard(|p: &Probe| p.number % 4 == 0)
                            .install(&owner),
                    }
                    .unwrap();
                    let end = tick();
                    live.push_back((label, kind, (start, end), binding));
                    if live.len() > 6 {
                        let (label, kind, install, binding) = live.pop_front().unwrap();
                        let id = binding.id();
                        let start = tick();
                        binding.uninstall().unwrap();
                        let end = tick();
                        lives.push(Life {
                            label,
                            id,
                            kind,
                            install,
                            uninstall: (start, end),
                        });
                    }
                    rounds.fetch_add(1, Ordering::Relaxed);
                    if round % 16 == 0 {
                        thread::yield_now();
                    }
                }
                for (label, kind, install, binding) in live {
                    let id = binding.id();
                    let start = tick();
                    binding.uninstall().unwrap();
                    let end = tick();
                    lives.push(Life {
                        label,
                        id,
                        kind,
                        install,
                        uninstall: (start, end),
                    });
                }
                lives
            })
        })
        .collect();

    let raisers: Vec<_> = (0..2)
        .map(|_| {
            let (event, done, next_number) = (event.clone(), done.clone(), next_number.clone());
            let (start_line, rounds, raised) = (start_line.clone(), rounds.clone(), raised.clone());
            thread::spawn(move || {
                let mut records = Vec::new();
                start_line.wait();
                while !done.load(Ordering::Relaxed) {
                    if records.len() as u64 > (rounds.load(Ordering::Relaxed) + 1) * 30 {
                        thread::yield_now();
                        continue;
                    }
                    let probe = Probe {
                        number: next_number.fetch_add(1, Ordering::Relaxed),
                        calls: Mutex::new(Vec::new()),
                    };
                    let start = tick();
                    event.raise(&probe).unwrap();
                    let end = tick();
                    raised.fetch_add(1, Ordering::Relaxed);
                    records.push(RaiseRecord {
                        number: probe.number,
                        interval: (start, end),
                        calls: probe.calls.into_inner().unwrap(),
                    });
                }
                records
            })
        })
        .collect();

    let mut lives: Vec<Life> = installers
        .into_iter()
        .flat_map(|t| t.join().unwrap())
        .collect();
    done.store(true, Ordering::Relaxed);
    let raises: Vec<RaiseRecord> = raisers
        .into_iter()
        .flat_map(|t| t.join().unwrap())
        .collect();
    lives.sort_by_key(|life| life.install.0);

    let mut overlapping_raises = 0;
    let mut cancelled = 0;
    for raise in &raises {
        let (start, end) = raise.interval;
        let called: HashSet<u64> = raise.calls.iter().copied().collect();
        assert_eq!(
            called.len(),
            raise.calls.len(),
            "a handler ran twice: {raise:?}"
        );

        // Bindings this raise might have seen.
        let candidates: Vec<&Life> = lives
            .iter()
            .take_while(|life| life.install.0 < end)
            .filter(|life| life.uninstall.1 > start)
            .collect();
        if candidates
            .iter()
            .any(|life| life.install.1 > start || life.uninstall.0 < end)
        {
            overlapping_raises += 1;
        }
        let by_label = |label: u64| candidates.iter().find(|life| life.label == label);
        for &label in &raise.calls {
            if label == ORIGINAL_LABEL {
                continue;
            }
            let life = by_label(label)
                .unwrap_or_else(|| panic!("{raise:?} called binding {label}, definitely absent"));
            assert!(
                life.kind.fires(raise.number),
                "guard did not hold: {life:?} {raise:?}"
            );
        }

        // Order: the fired Cancel binding (if any) first, then the original,
        // then Middle bindings by id (install order).
        let ids: Vec<BindingId> = raise
            .calls
            .iter()
            .map(|&label| {
                if label == ORIGINAL_LABEL {
                    BindingId::ORIGINAL
                } else {
                    by_label(label).unwrap().id
                }
            })
            .collect();
        let cancel_calls: Vec<&&Life> = raise
            .calls
            .iter()
            .filter_map(|&label| by_label(label))
            .filter(|life| life.kind == Kind::Cancel)
            .collect();
        if cancel_calls.is_empty() {
            assert_eq!(raise.calls.first(), Some(&ORIGINAL_LABEL), "{raise:?}");
            assert!(
                ids.windows(2).all(|w| w[0] < w[1]),
                "out of order: {raise:?}"
            );
        } else {
            cancelled += 1;
            assert_eq!(raise.calls.len(), 1, "Cancel must stop the rest: {raise:?}");
        }

        // Definitely installed and firing => called (unless cancelled).
        let definitely = |life: &Life| life.install.1 < start && life.uninstall.0 > end;
        for life in &candidates {
            if definitely(life) && life.kind.fires(raise.number) {
                if life.kind == Kind::Cancel {
                    assert_eq!(
                        cancel_calls.len(),
                        1,
                        "{life:?} must have cancelled {raise:?}"
                    );
                } else if cancel_calls.is_empty() {
                    assert!(called.contains(&life.label), "{raise:?} missed {life:?}");
                }
            }
        }

        // One snapshot: calling B2 implies calling every firing B1 installed
        // before B2 and still installed until the raise ended.
        if cancel_calls.is_empty() {
            for b2 in candidates
                .iter()
                .filter(|life| called.contains(&life.label))
            {
                for b1 in &candidates {
                    if b1.kind != Kind::Cancel
                        && b1.install.1 < b2.install.0
                        && b1.uninstall.0 > end
                        && b1.kind.fires(raise.number)
                    {
                        assert!(
                            called.contains(&b1.label),
                            "{raise:?} saw {b2:?} but not {b1:?}"
                        );
                    }
                }
            }
        }
    }
    eprintln!(
        "{} raises ({overlapping_raises} overlapping an update, {cancelled} cancelled), {} installs",
        raises.len(),
        lives.len()
    );
    assert_eq!(
        owner.alive_binding_objects(),
        1,
        "only the original is left"
    );
    Coverage {
        raises: raises.len(),
        lives: lives.len(),
        overlapping_raises,
        cancelled,
    }
}
