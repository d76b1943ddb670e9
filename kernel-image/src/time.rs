//! Time: the local-APIC timer that raises `Clock.Tick` (whose original
//! handler, in the clock service, counts the ticks), a nanosecond clock from
//! the calibrated TSC, and the dispatcher's clock for time-bounded handlers.

use alloc::sync::Arc;
use core::sync::atomic::{AtomicBool, AtomicU64, Ordering};

use crate::arch::{apic, rdtsc};

static TSC_HZ: AtomicU64 = AtomicU64::new(0);
static APIC_TIMER_HZ: AtomicU64 = AtomicU64::new(0);
static TSC_AT_BOOT: AtomicU64 = AtomicU64::new(0);

/// Microseconds since boot: the dispatcher's clock for quanta.
struct MicrosecondClock;

impl dispatcher::Clock for MicrosecondClock {
    fn now(&self) -> dispatcher::Micros {
        dispatcher::Micros(uptime_ns() / 1000)
    }
}

/// Calibrates and starts the timer, and gives the dispatcher its clock.
///
/// # Safety
/// As for [`apic::init`]: once, interrupts disabled, the IDT loaded and
/// the PIC masked.
pub unsafe fn init() {
    // SAFETY: our caller's contract is apic::init's.
    let calibration = unsafe { apic::init() };
    TSC_HZ.store(calibration.tsc_hz.max(1), Ordering::Relaxed);
    APIC_TIMER_HZ.store(calibration.apic_timer_hz, Ordering::Relaxed);
    let capability = crate::events::capability();
    clock::set_hz(capability, apic::TIMER_HZ);
    // Only fails if set twice, which init does not do.
    let _ = dispatcher::time_bounds::set_clock(capability, Arc::new(MicrosecondClock));
}

/// Records the TSC at the earliest point of boot.
pub fn mark_boot() {
    TSC_AT_BOOT.store(rdtsc(), Ordering::Relaxed);
}

static TICK_NUMBER: AtomicU64 = AtomicU64::new(0);

/// Set while a `Clock.Tick` raise runs (with interrupts enabled, on the
/// interrupt stack): a timer interrupt that finds it set is nested.
static TICK_RAISE_RUNNING: AtomicBool = AtomicBool::new(false);

/// What a timer interrupt did, as [`on_timer_interrupt`] reports it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Tick {
    /// `Clock.Tick` was raised: the interrupt may go on to schedule.
    Raised,
    /// The interrupt arrived during a `Clock.Tick` raise: it only counted
    /// the tick. Its handler lets the watchdog look at the raise it
    /// interrupted and must not schedule (it runs on the interrupt stack,
    /// inside the outer timer interrupt's handler).
    Nested,
}

/// Called by the timer interrupt handler, [`apic::TIMER_HZ`] times a second
/// (the interrupt is acknowledged already): raises `Clock.Tick`, then lets
/// the dispatcher report time-bounded handlers that are past their quantum.
///
/// The raise runs on the interrupt stack **with interrupts enabled**, so
/// that the timer keeps ticking while `Clock.Tick` handlers run: a nested
/// timer interrupt arrives on a stack of its own
/// ([`crate::containment::interrupt_stack::with_nested_ticks`]), only
/// counts the tick ([`Tick::Nested`]) and its handler runs the watchdog,
/// which stops a handler that loops (see [`crate::containment::watchdog`]).
/// Interrupts are disabled again before the stack switches back.
pub fn on_timer_interrupt() -> Tick {
    let tick = TICK_NUMBER.fetch_add(1, Ordering::Relaxed) + 1;
    if TICK_RAISE_RUNNING.load(Ordering::Relaxed) {
        return Tick::Nested;
    }
    let authority = crate::events::authority();
    // The event has an original handler, so a raise cannot fail for lack
    // of one; a retired event would simply stop counting.
    // A panic in an extension's handler stops here, inside this
    // interrupt's own frames (unwinding cannot cross the interrupt frame),
    // on a stack of known size; the extension is unloaded from thread
    // context (`faults::kick`).
    crate::containment::interrupt_stack::call_on_interrupt_stack(&mut || {
        // Only on the interrupt stack: a nested interrupt must not land on
        // the interrupted strand's stack (before the interrupt stack
        // exists, the raise runs where it is, with interrupts off).
        let raise = || {
            let _ = crate::containment::faults::call_extensions_deferred(clock::TICK_EVENT, || {
                authority.tick.raise(&tick)
            });
        };
        if crate::containment::interrupt_stack::in_use() {
            // Every timer interrupt from here to the flag's reset is
            // nested; they arrive on a stack of their own.
            TICK_RAISE_RUNNING.store(true, Ordering::Relaxed);
            crate::containment::interrupt_stack::with_nested_ticks(raise);
            TICK_RAISE_RUNNING.store(false, Ordering::Relaxed);
        } else {
            raise();
        }
    });
    let capability = authority.issuer.kernel_capability();
    dispatcher::time_bounds::check_overruns(
        capability,
        dispatcher::Micros(uptime_ns() / 1000),
        |_| {},
    );
    crate::containment::faults::kick();
    Tick::Raised
}

/// Timer ticks counted by `Clock.Tick`'s original handler.
pub fn ticks() -> u64 {
    clock::ticks()
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
