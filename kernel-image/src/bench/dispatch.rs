//! Event-raise benchmarks, after OSDI'96 Table 1 (Pardyak & Bershad):
//! raising an event with 0 and 5 arguments and 1 / 5 / 10 / 50 handlers
//! (the original plus n - 1 unguarded bindings), 1 / 5 / 10 / 50 guards all
//! false and all true, keyed bindings (1 to 1,000, one matching), result folding
//! and an asynchronous raise. Each event is declared for the run and
//! dropped afterwards (its bindings with it).

use alloc::format;
use alloc::vec::Vec;
use core::hint::black_box;

use dispatcher::{Binding, Event, Principal};

use super::{Plan, Published, Report, measure};

const PLAN: Plan = Plan::new(21, 2_000);

type Five = (u64, u64, u64, u64, u64);

/// SPIN's raise figures (µs on a 133 MHz Alpha 3000/400), with the
/// specialised dispatch stub; its procedure call was 0.10 µs (0 args) and
/// 0.14 µs (5 args).
fn spin_stub(args: usize, handlers: usize) -> Option<Published> {
    let (micros, call_micros) = match (args, handlers) {
        (0, 1) => (0.23, 0.10),
        (0, 5) => (0.41, 0.10),
        (0, 10) => (0.63, 0.10),
        (0, 50) => (2.48, 0.10),
        (5, 1) => (0.42, 0.14),
        (5, 10) => (1.32, 0.14),
        (5, 50) => (5.65, 0.14),
        _ => return None,
    };
    Some(Published {
        system: "SPIN",
        micros,
        mhz: 133.0,
        call_micros,
    })
}

fn unit(_: &()) {}

fn five(&(a, b, c, d, e): &Five) -> u64 {
    a ^ b ^ c ^ d ^ e
}

fn principal() -> Principal {
    crate::events::authority().issuer.issue("bench-dispatch")
}

fn add(report: &mut Report, name: &str, stats: super::Stats, published: Option<Published>) {
    match published {
        Some(p) => report.add_published("dispatch", name, stats, p),
        None => report.add("dispatch", name, stats),
    }
}

fn handlers(report: &mut Report, owner: &Principal) {
    for n in [1usize, 5, 10, 50] {
        let (event, _a) =
            Event::<(), ()>::declare(&format!("Bench.Args0.H{n}"), owner, unit).expect("declare");
        let _b: Vec<Binding<(), ()>> = (1..n)
            .map(|_| event.install(owner, unit).expect("install"))
            .collect();
        let stats = measure(PLAN, |_| {
            black_box(event.raise(black_box(&())).is_ok());
        });
        add(
            report,
            &format!("raise, 0 args, {n} handler(s)"),
            stats,
            spin_stub(0, n),
        );

        let (event, _a) = Event::<Five, u64>::declare(&format!("Bench.Args5.H{n}"), owner, five)
            .expect("declare");
        let _b: Vec<Binding<Five, u64>> = (1..n)
            .map(|_| event.install(owner, five).expect("install"))
            .collect();
        let stats = measure(PLAN, |i| {
            black_box(event.raise(black_box(&(i, 2, 3, 4, 5))).unwrap_or(0));
        });
        add(
            report,
            &format!("raise, 5 args, {n} handler(s)"),
            stats,
            spin_stub(5, n),
        );
    }
}

fn guards(report: &mut Report, owner: &Principal) {
    for n in GUARD_COUNTS {
        for (label, hold) in [("all false", false), ("all true", true)] {
            let (event, _a) = Event::<u64, u64>::builder(&format!("Bench.Guards{n}.{hold}"))
                .default_result(0)
                .declare(owner)
                .expect("declare");
            let _b: Vec<Binding<u64, u64>> = (0..n)
                .map(|k| {
                    event
                        .binding(move |&x| x ^ k)
                        .guard(move |&x| (x < 1 << 40) == hold)
                        .install(owner)
                        .expect("install")
                })
                .collect();
            let stats = measure(PLAN, |i| {
                black_box(event.raise(black_box(&i)).unwrap_or(0));
            });
            add(report, &format!("raise, {n} guard(s) {label}"), stats, None);
        }
    }
}

/// Numbers of guarded bindings the guard rows raise over (SPIN's UDP
/// guard experiment used the same).
const GUARD_COUNTS: [u64; 4] = [1, 5, 10, 50];

fn keyed(report: &mut Report, owner: &Principal) {
    for n in [1u64, 10, 100, 1000] {
        let (event, _a) = Event::<u64, u64>::builder(&format!("Bench.Keyed{n}"))
            .key(|&k| k)
            .declare(owner)
            .expect("declare");
        let _b: Vec<Binding<u64, u64>> = (0..n)
            .map(|k| {
                event
                    .binding(|&x| x + 1)
                    .key(k)
                    .install(owner)
                    .expect("install")
            })
            .collect();
        let stats = measure(PLAN, |i| {
            black_box(event.raise(black_box(&(i % n))).unwrap_or(0));
        });
        add(
            report,
            &format!("raise, {n} keyed binding(s), one matching"),
            stats,
            None,
        );
    }
}

fn folding(report: &mut Report, owner: &Principal) {
    let (event, _a) = Event::<u64, u64>::builder("Bench.Fold10")
        .original(|&x| x)
        .result_handler(|a, b| a.wrapping_add(b))
        .declare(owner)
        .expect("declare");
    let _b: Vec<Binding<u64, u64>> = (1..10)
        .map(|_| event.install(owner, |&x| x).expect("install"))
        .collect();
    let stats = measure(PLAN, |i| {
        black_box(event.raise(black_box(&i)).unwrap_or(0));
    });
    add(report, "raise, 10 handlers, results folded", stats, None);
}

fn asynchronous(report: &mut Report, owner: &Principal) {
    let (event, _a) = Event::<u64, ()>::builder("Bench.Async")
        .original(|_| ())
        .default_result(())
        .asynchronous()
        .declare(owner)
        .expect("declare");
    // Queuing the job is what the raise costs; the jobs run later on the
    // executor's strand.
    let stats = measure(Plan::new(5, 50), |i| {
        black_box(event.raise(black_box(&i)).is_ok());
    });
    add(
        report,
        "asynchronous raise (queue the dispatch)",
        stats,
        None,
    );
}

/// Measures the dispatch rows.
pub fn run(report: &mut Report) {
    let owner = principal();
    handlers(report, &owner);
    guards(report, &owner);
    keyed(report, &owner);
    folding(report, &owner);
    asynchronous(report, &owner);
}
