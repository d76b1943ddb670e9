//! Time-bounded (ephemeral) handlers: quanta, in-flight records and the
//! overrun hook for the kernel's timer.
//!
//! An event's authority sets a *quantum* (in [`Micros`] of a [`Clock`]) with
//! [`EventAuthority::set_quantum`](crate::EventAuthority::set_quantum). A
//! binding installed with [`ephemeral`](crate::BindingBuilder::ephemeral)
//! records the quantum in force at install time. Each time such a handler
//! runs, the raise:
//!
//! 1. reads the clock (`started`), computes `deadline = started + quantum`
//!    and stores an in-flight record in a fixed table of
//!    [`IN_FLIGHT_SLOTS`] slots;
//! 2. calls the handler;
//! 3. reads the clock again, removes the record, and if `now > deadline` and
//!    the timer did not already report this call, reports an overrun
//!    ([`Detection::Return`]).
//!
//! While the handler runs, the kernel's timer interrupt calls
//! [`check_overruns`] (or [`TimeBounds::check_overruns`]) with the current
//! time; every in-flight call past its deadline is reported once
//! ([`Detection::Timer`]). The timer cannot stop a handler by itself (that
//! needs strands); the report is where the kernel decides to log, mark the
//! extension faulty, or unload it.
//!
//! Every report increments the binding's overrun count (shown by
//! [`BindingInfo`](crate::BindingInfo)), calls the authority's overrun
//! handler ([`EventAuthority::set_overrun_handler`](crate::EventAuthority::set_overrun_handler))
//! and, for timer detection, the closure passed to `check_overruns`. A call
//! is reported at most once.
//!
//! The table never makes anyone wait: raises claim a slot with `try_lock`
//! (a full table means the call runs untracked by the timer, but the
//! after-return check still applies, and [`TimeBounds::untracked`] counts
//! it), and `check_overruns` skips a slot that is locked at that instant
//! (it is looked at again on the next tick).

use alloc::sync::Arc;
use core::fmt;
use core::sync::atomic::{AtomicU64, Ordering};

use spin::Mutex;

use crate::KernelCapability;
use crate::binding::{BindingId, BindingStats};
use crate::principal::PrincipalId;

/// A time or a duration in microseconds: the unit of the dispatcher's
/// clock, quanta and overrun reports.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Micros(pub u64);

impl Micros {
    /// `self + other`, saturating.
    pub const fn saturating_add(self, other: Micros) -> Micros {
        Micros(self.0.saturating_add(other.0))
    }

    /// `self - other`, saturating at zero.
    pub const fn saturating_sub(self, other: Micros) -> Micros {
        Micros(self.0.saturating_sub(other.0))
    }
}

impl fmt::Display for Micros {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} us", self.0)
    }
}

/// A monotonic microsecond clock provided by the kernel.
pub trait Clock: Send + Sync {
    /// The current time. Must never go backwards.
    fn now(&self) -> Micros;
}

/// Who noticed an overrun.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Detection {
    /// The timer hook, while the handler was still running.
    Timer,
    /// The dispatcher, when the handler returned.
    Return,
}

/// One handler call that exceeded its quantum.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Overrun {
    /// The event's name.
    pub event: Arc<str>,
    /// The binding whose handler overran.
    pub binding: BindingId,
    /// Who installed that binding.
    pub installer: PrincipalId,
    /// Clock reading when the handler was called.
    pub started: Micros,
    /// `started + quantum`.
    pub deadline: Micros,
    /// Clock reading at detection (`> deadline`).
    pub observed_at: Micros,
    /// Who noticed.
    pub detected_by: Detection,
}

/// The authority's overrun callback. It may run in interrupt context (timer
/// detection) or in the raising context (return detection).
pub type OverrunHandler = Arc<dyn Fn(&Overrun) + Send + Sync>;

/// Number of in-flight records a [`TimeBounds`] table holds.
pub const IN_FLIGHT_SLOTS: usize = 64;

struct InFlight {
    token: u64,
    event: Arc<str>,
    binding: BindingId,
    installer: PrincipalId,
    started: Micros,
    deadline: Micros,
    reported: bool,
    stats: Arc<BindingStats>,
    on_overrun: Option<OverrunHandler>,
}

impl InFlight {
    fn overrun(&self, observed_at: Micros, detected_by: Detection) -> Overrun {
        Overrun {
            event: Arc::clone(&self.event),
            binding: self.binding,
            installer: self.installer,
            started: self.started,
            deadline: self.deadline,
            observed_at,
            detected_by,
        }
    }
}

/// Returned when a clock is installed twice.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct ClockAlreadySet;

impl fmt::Display for ClockAlreadySet {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("a clock is already installed")
    }
}

/// A clock plus a table of in-flight ephemeral handler calls.
///
/// The kernel uses the process-wide table ([`global`], fed by [`set_clock`]
/// and scanned by [`check_overruns`]). An event can be given its own table
/// ([`EventBuilder::time_bounds`](crate::EventBuilder::time_bounds)), which
/// host tests use to get a private fake clock.
pub struct TimeBounds {
    clock: spin::Once<Arc<dyn Clock>>,
    slots: [Mutex<Option<InFlight>>; IN_FLIGHT_SLOTS],
    next_token: AtomicU64,
    untracked: AtomicU64,
}

/// Identifies one tracked call while it runs.
pub(crate) struct InFlightTicket {
    slot: usize,
    token: u64,
}

/// What is recorded for one ephemeral call; see [`TimeBounds::enter`].
pub(crate) struct CallRecord<'a> {
    pub(crate) event: &'a Arc<str>,
    pub(crate) binding: BindingId,
    pub(crate) installer: PrincipalId,
    pub(crate) started: Micros,
    pub(crate) deadline: Micros,
    pub(crate) stats: &'a Arc<BindingStats>,
    pub(crate) on_overrun: Option<&'a OverrunHandler>,
}

impl TimeBounds {
    /// An empty table with no clock yet.
    pub const fn new() -> Self {
        TimeBounds {
            clock: spin::Once::new(),
            slots: [const { Mutex::new(None) }; IN_FLIGHT_SLOTS],
            next_token: AtomicU64::new(1),
            untracked: AtomicU64::new(0),
        }
    }

    /// An empty table reading `clock`.
    pub fn with_clock(clock: Arc<dyn Clock>) -> Self {
        let bounds = TimeBounds::new();
        bounds.clock.call_once(|| clock);
        bounds
    }

    /// Installs the clock; it can be installed once.
    pub fn set_clock(&self, clock: Arc<dyn Clock>) -> Result<(), ClockAlreadySet> {
        let mut installed = false;
        self.clock.call_once(|| {
            installed = true;
            clock
        });
        if installed {
            Ok(())
        } else {
            Err(ClockAlreadySet)
        }
    }

    /// The clock, if installed.
    pub fn clock(&self) -> Option<&Arc<dyn Clock>> {
        self.clock.get()
    }

    /// Number of ephemeral calls currently recorded as in flight (a slot
    /// that is being updated at this instant counts as busy).
    pub fn in_flight(&self) -> usize {
        self.slots
            .iter()
            .filter(|slot| slot.try_lock().is_none_or(|rec| rec.is_some()))
            .count()
    }

    /// Ephemeral calls that ran without an in-flight record because the
    /// table was full (only the after-return check applied to them).
    pub fn untracked(&self) -> u64 {
        self.untracked.load(Ordering::Relaxed)
    }

    /// The timer hook: reports every in-flight call whose deadline is before
    /// `now` and was not reported yet, first to the event authority's
    /// overrun handler, then to `report`. Returns how many were reported.
    ///
    /// Never waits: a slot that is locked at this instant is skipped until
    /// the next call. Safe to call from an interrupt handler, including one
    /// that interrupted a running handler, and from inside a handler.
    pub fn check_overruns(&self, now: Micros, mut report: impl FnMut(&Overrun)) -> usize {
        let mut reported = 0;
        for slot in &self.slots {
            let Some(mut guard) = slot.try_lock() else {
                continue;
            };
            let Some(rec) = guard.as_mut() else {
                continue;
            };
            if rec.reported || now <= rec.deadline {
                continue;
            }
            rec.reported = true;
            rec.stats.overruns.fetch_add(1, Ordering::Relaxed);
            let overrun = rec.overrun(now, Detection::Timer);
            let on_overrun = rec.on_overrun.clone();
            drop(guard);
            if let Some(handler) = on_overrun {
                handler(&overrun);
            }
            report(&overrun);
            reported += 1;
        }
        reported
    }

    /// Records a call as in flight. `None` when every slot is taken.
    pub(crate) fn enter(&self, call: CallRecord<'_>) -> Option<InFlightTicket> {
        let token = self.next_token.fetch_add(1, Ordering::Relaxed);
        for (index, slot) in self.slots.iter().enumerate() {
            let Some(mut guard) = slot.try_lock() else {
                continue;
            };
            if guard.is_some() {
                continue;
            }
            *guard = Some(InFlight {
                token,
                event: Arc::clone(call.event),
                binding: call.binding,
                installer: call.installer,
                started: call.started,
                deadline: call.deadline,
                reported: false,
                stats: Arc::clone(call.stats),
                on_overrun: call.on_overrun.cloned(),
            });
            return Some(InFlightTicket { slot: index, token });
        }
        self.untracked.fetch_add(1, Ordering::Relaxed);
        None
    }

    /// Removes a record; returns whether the timer already reported it.
    ///
    /// Uses a spinning `lock`: the only other holders of the slot are
    /// `check_overruns` (which holds it for a few loads and stores and
    /// cannot be interrupted by this call on the same CPU, since this call
    /// only happens after the handler returned) and `enter` on another CPU
    /// (which skips it after one `try_lock`).
    pub(crate) fn leave(&self, ticket: InFlightTicket) -> bool {
        let mut guard = self.slots[ticket.slot].lock();
        match guard.take() {
            Some(rec) if rec.token == ticket.token => {
                let reported = rec.reported;
                drop(guard);
                drop(rec);
                reported
            }
            other => {
                // Not ours (cannot happen: only the ticket holder empties a
                // slot it filled). Put it back untouched.
                *guard = other;
                false
            }
        }
    }
}

impl Default for TimeBounds {
    fn default() -> Self {
        TimeBounds::new()
    }
}

impl fmt::Debug for TimeBounds {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("TimeBounds")
            .field("has_clock", &self.clock.get().is_some())
            .field("in_flight", &self.in_flight())
            .field("untracked", &self.untracked())
            .finish()
    }
}

static GLOBAL: TimeBounds = TimeBounds::new();

/// The process-wide table used by events that were not given their own
/// (kernel only: its clock and timer hook are the kernel's).
pub fn global(_kernel: KernelCapability) -> &'static TimeBounds {
    &GLOBAL
}

/// Installs the kernel's clock in the process-wide table (once; kernel
/// only).
pub fn set_clock(_kernel: KernelCapability, clock: Arc<dyn Clock>) -> Result<(), ClockAlreadySet> {
    GLOBAL.set_clock(clock)
}

/// The kernel's timer hook on the process-wide table (kernel only); see
/// [`TimeBounds::check_overruns`].
pub fn check_overruns(
    _kernel: KernelCapability,
    now: Micros,
    report: impl FnMut(&Overrun),
) -> usize {
    GLOBAL.check_overruns(now, report)
}

/// Which table an event uses.
#[derive(Clone)]
pub(crate) enum TimeBoundsRef {
    Global,
    Own(Arc<TimeBounds>),
}

impl TimeBoundsRef {
    pub(crate) fn get(&self) -> &TimeBounds {
        match self {
            TimeBoundsRef::Global => &GLOBAL,
            TimeBoundsRef::Own(own) => own,
        }
    }
}
