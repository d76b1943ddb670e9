//! Strand benchmarks, after SPIN's thread-management table (SOSP'95):
//! fork-join (create a strand that does nothing and wait for it to be
//! gone) and ping-pong (two strands hand control back and forth through
//! two semaphores: a round trip is two blocks, two wakes and two
//! switches), plus a plain switch between two yielding strands.

use alloc::sync::Arc;
use core::sync::atomic::{AtomicBool, Ordering};

use strand::Semaphore;

use super::{Plan, Published, Report, measure};

/// SPIN's kernel fork-join (22 us on a 133 MHz Alpha 3000/400).
const SPIN_FORK_JOIN: Published = Published {
    system: "SPIN",
    micros: 22.0,
    mhz: 133.0,
    call_micros: 0.10,
};

/// SPIN's kernel ping-pong (17 us on the same machine).
const SPIN_PING_PONG: Published = Published {
    system: "SPIN",
    micros: 17.0,
    mhz: 133.0,
    call_micros: 0.10,
};

/// Stack of the strands the benchmarks create.
const STACK: usize = 16 * 1024;

fn fork_join(report: &mut Report) {
    let stats = measure(Plan::new(11, 20), |_| {
        let strand = crate::strands::spawn_kernel("bench-fork", STACK, || {})
            .expect("memory for a benchmark strand");
        strand.join().expect("the strand exits");
    });
    report.add_published(
        "strands",
        "fork-join (spawn, run, exit, reap)",
        stats,
        SPIN_FORK_JOIN,
    );
}

fn ping_pong(report: &mut Report) {
    let ping = Arc::new(Semaphore::new(0));
    let pong = Arc::new(Semaphore::new(0));
    let stop = Arc::new(AtomicBool::new(false));
    let (p, q, s) = (ping.clone(), pong.clone(), stop.clone());
    let partner = crate::strands::spawn_kernel("bench-pong", STACK, move || {
        loop {
            if p.acquire().is_err() || s.load(Ordering::Relaxed) {
                break;
            }
            q.release();
        }
    })
    .expect("memory for a benchmark strand");
    let stats = measure(Plan::new(11, 200), |_| {
        ping.release();
        pong.acquire().expect("the shell's strand can block");
    });
    stop.store(true, Ordering::Relaxed);
    ping.release();
    let _ = partner.join();
    report.add_published(
        "strands",
        "ping-pong round trip (2 switches)",
        stats,
        SPIN_PING_PONG,
    );
}

fn yield_switch(report: &mut Report) {
    let stop = Arc::new(AtomicBool::new(false));
    let s = stop.clone();
    let partner = crate::strands::spawn_kernel("bench-yield", STACK, move || {
        while !s.load(Ordering::Relaxed) {
            strand::yield_now();
        }
    })
    .expect("memory for a benchmark strand");
    let stats = measure(Plan::new(11, 200), |_| strand::yield_now());
    stop.store(true, Ordering::Relaxed);
    let _ = partner.join();
    // Each yield is a switch away and, by the partner's yield, one back.
    report.add(
        "strands",
        "yield to a ready strand and back (2 switches)",
        stats,
    );
}

/// Measures the suite.
pub fn run(report: &mut Report) {
    fork_join(report);
    ping_pong(report);
    yield_switch(report);
}
