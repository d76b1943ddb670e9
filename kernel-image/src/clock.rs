//! Time: the uptime counter driven by the local-APIC timer, and a
//! nanosecond clock from the calibrated TSC.

use core::sync::atomic::{AtomicU64, Ordering};

use crate::arch::{apic, rdtsc};

static TICKS: AtomicU64 = AtomicU64::new(0);
static TSC_HZ: AtomicU64 = AtomicU64::new(0);
static APIC_TIMER_HZ: AtomicU64 = AtomicU64::new(0);
static TSC_AT_BOOT: AtomicU64 = AtomicU64::new(0);

/// Calibrates and starts the timer.
pub fn init() {
    let calibration = apic::init();
    TSC_HZ.store(calibration.tsc_hz.max(1), Ordering::Relaxed);
    APIC_TIMER_HZ.store(calibration.apic_timer_hz, Ordering::Relaxed);
}

/// Records the TSC at the earliest point of boot.
pub fn mark_boot() {
    TSC_AT_BOOT.store(rdtsc(), Ordering::Relaxed);
}

/// Called by the timer interrupt handler, [`apic::TIMER_HZ`] times a second.
pub fn on_timer_interrupt() {
    TICKS.fetch_add(1, Ordering::Relaxed);
}

/// Timer interrupts since the timer started.
pub fn ticks() -> u64 {
    TICKS.load(Ordering::Relaxed)
}

/// TSC frequency measured at boot.
pub fn tsc_hz() -> u64 {
    TSC_HZ.load(Ordering::Relaxed)
}

/// The local-APIC timer's input rate (after its divider) measured at boot.
pub fn apic_timer_hz() -> u64 {
    APIC_TIMER_HZ.load(Ordering::Relaxed)
}

/// [`uptime_ns`], or `None` before the TSC has been calibrated.
pub fn uptime_ns_if_calibrated() -> Option<u64> {
    (TSC_HZ.load(Ordering::Relaxed) != 0).then(uptime_ns)
}

/// Nanoseconds since [`mark_boot`], from the TSC.
pub fn uptime_ns() -> u64 {
    let cycles = rdtsc().wrapping_sub(TSC_AT_BOOT.load(Ordering::Relaxed));
    (u128::from(cycles) * 1_000_000_000 / u128::from(tsc_hz().max(1))) as u64
}
