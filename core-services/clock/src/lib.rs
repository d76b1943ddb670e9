//! Clock core service: the uptime counter and the `Clock.Tick` event.
//!
//! The kernel's timer interrupt raises `Clock.Tick` with the new tick count
//! [`hz`] times a second. The event's original handler — the service's
//! primary implementation — advances the counter behind [`ticks`];
//! extensions may add handlers (the kernel's authorizer allows it, and sets
//! a time bound: a tick handler that runs longer than one tick is reported).
//! Handlers run in interrupt context: they must be short and must not block.
#![cfg_attr(not(test), no_std)]
#![forbid(unsafe_code)]
#![warn(missing_docs)]

use core::sync::atomic::{AtomicU64, Ordering};

use dispatcher::Event;

/// Dotted name of the tick event.
pub const TICK_EVENT: &str = "Clock.Tick";

static TICKS: AtomicU64 = AtomicU64::new(0);
static HZ: AtomicU64 = AtomicU64::new(0);
static TICK: spin::Once<Event<u64, ()>> = spin::Once::new();

/// The original handler of `Clock.Tick`: accounts one tick.
pub fn account_tick(_tick: &u64) {
    TICKS.fetch_add(1, Ordering::Relaxed);
}

/// Timer ticks accounted since boot.
pub fn ticks() -> u64 {
    TICKS.load(Ordering::Relaxed)
}

/// The tick rate, set by the kernel when it starts the timer.
pub fn hz() -> u64 {
    HZ.load(Ordering::Relaxed)
}

/// Records the tick rate (kernel, at boot).
pub fn set_hz(hz: u64) {
    HZ.store(hz, Ordering::Relaxed);
}

/// Publishes the `Clock.Tick` event (kernel, once at boot; later calls are
/// ignored and return false).
pub fn publish_tick_event(event: Event<u64, ()>) -> bool {
    let mut published = false;
    TICK.call_once(|| {
        published = true;
        event
    });
    published
}

/// The `Clock.Tick` event, once published.
pub fn tick_event() -> Option<&'static Event<u64, ()>> {
    TICK.get()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ticks_are_counted_by_the_original_handler_through_the_event() {
        let issuer = dispatcher::PrincipalIssuer::take().expect("first take in this test binary");
        let kernel = issuer.issue("kernel");
        let (event, _authority) =
            Event::<u64, ()>::declare(TICK_EVENT, &kernel, account_tick).unwrap();
        assert!(publish_tick_event(event.clone()));
        assert!(!publish_tick_event(event));
        let before = ticks();
        for n in 1..=3 {
            tick_event().unwrap().raise(&n).unwrap();
        }
        assert_eq!(ticks(), before + 3);
        assert_eq!(tick_event().unwrap().raises(), 3);
    }
}
