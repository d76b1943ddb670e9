//! Clock core service: the uptime counter and the `Clock.Tick` event.
//!
//! The kernel's timer interrupt raises `Clock.Tick` with the new tick count
//! [`hz`] times a second. The event's original handler — the service's
//! primary implementation, [`account_tick`], which like every kernel-only
//! operation takes a [`KernelCapability`] — advances the counter behind
//! [`ticks`];
//! extensions may add handlers (the kernel's authorizer allows it, and sets
//! a time bound: a tick handler that runs longer than one tick is reported).
//! Handlers run in interrupt context: they must be short and must not block.
#![cfg_attr(not(test), no_std)]
#![forbid(unsafe_code)]
#![warn(missing_docs)]

use core::sync::atomic::{AtomicU64, Ordering};

use dispatcher::{Event, KernelCapability, PublicEvent};

/// Dotted name of the tick event.
pub const TICK_EVENT: &str = "Clock.Tick";

static TICKS: AtomicU64 = AtomicU64::new(0);
static HZ: AtomicU64 = AtomicU64::new(0);
static TICK: spin::Once<PublicEvent<u64, ()>> = spin::Once::new();

/// The original handler of `Clock.Tick`: accounts one tick. The kernel
/// declares the event with `move |tick| account_tick(capability, tick)`.
pub fn account_tick(_kernel: KernelCapability, _tick: &u64) {
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

/// Records the tick rate (kernel only, at boot).
pub fn set_hz(_kernel: KernelCapability, hz: u64) {
    HZ.store(hz, Ordering::Relaxed);
}

/// Publishes the `Clock.Tick` event (kernel only, once at boot; later calls
/// are ignored and return false).
pub fn publish_tick_event(_kernel: KernelCapability, event: Event<u64, ()>) -> bool {
    let mut published = false;
    TICK.call_once(|| {
        published = true;
        PublicEvent::new(event)
    });
    published
}

/// The `Clock.Tick` event, once published, to install handlers on (only the
/// kernel raises it).
pub fn tick_event() -> Option<&'static PublicEvent<u64, ()>> {
    TICK.get()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ticks_are_counted_by_the_original_handler_through_the_event() {
        let issuer = dispatcher::PrincipalIssuer::take().expect("first take in this test binary");
        let kernel = issuer.issue("kernel");
        let capability = issuer.kernel_capability();
        let (event, _authority) = Event::<u64, ()>::declare(TICK_EVENT, &kernel, move |tick| {
            account_tick(capability, tick)
        })
        .unwrap();
        assert!(publish_tick_event(capability, event.clone()));
        assert!(!publish_tick_event(capability, event.clone()));
        set_hz(capability, 100);
        assert_eq!(hz(), 100);
        let before = ticks();
        for n in 1..=3 {
            event.raise(&n).unwrap();
        }
        assert_eq!(ticks(), before + 3);
        assert_eq!(tick_event().unwrap().raises(), 3);
    }
}
