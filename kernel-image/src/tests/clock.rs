//! The timer interrupt advances the uptime counter at the calibrated rate.

use ktest_macros::ktest;

use crate::arch::apic::TIMER_HZ;
use crate::ktest::KtestResult;
use crate::time;
use crate::{ensure, ensure_eq};

#[ktest]
fn timer_advances() -> KtestResult {
    ensure!(
        x86_64::instructions::interrupts::are_enabled(),
        "interrupts are off"
    );
    let ticks_before = time::ticks();
    let ns_before = time::uptime_ns();
    // Give up after 2 s of TSC time rather than hang if the timer is dead.
    let deadline = ns_before + 2_000_000_000;
    while time::ticks() < ticks_before + 5 && time::uptime_ns() < deadline {
        x86_64::instructions::hlt();
    }
    let ticks = time::ticks() - ticks_before;
    let elapsed_ns = time::uptime_ns() - ns_before;
    ensure!(ticks >= 5, "only {ticks} timer ticks in {elapsed_ns} ns");
    // 5 ticks at TIMER_HZ must take roughly 5/TIMER_HZ s of TSC time; allow
    // a wide margin for TCG's coarse timing.
    let expected_ns = 5 * 1_000_000_000 / TIMER_HZ;
    ensure!(
        elapsed_ns >= expected_ns / 3 && elapsed_ns <= expected_ns * 5,
        "5 ticks took {elapsed_ns} ns, expected about {expected_ns} ns"
    );
    Ok(())
}

#[ktest]
fn tsc_calibration_is_plausible() -> KtestResult {
    let hz = time::tsc_hz();
    ensure!(
        (100_000_000..20_000_000_000).contains(&hz),
        "TSC at {hz} Hz"
    );
    ensure_eq!(time::uptime_ns() > 0, true);
    Ok(())
}
