//! The dispatcher's typed errors. Nothing in the dispatcher panics on bad
//! input; every refusal is one of these.

use alloc::string::String;
use core::fmt;

use crate::binding::BindingId;
use crate::order::OrderError;

/// Why a raise produced no result.
///
/// Deliberately fieldless (one byte), so that `Result<R, RaiseError>` stays
/// small and is returned in registers for word-sized `R`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum RaiseError {
    /// No handler's guards held (or the event has no handler at all), and
    /// the event has neither a default handler nor a default result.
    NoHandlerFired,
    /// Handlers fired, but all of them were queued to run asynchronously
    /// (or the event itself is asynchronous), so no result exists yet, and
    /// the event has no default.
    Deferred,
    /// The raise needs an executor (an asynchronous event or binding) and
    /// neither the event nor the process has one. No handler ran.
    NoExecutor,
    /// The event's owner was revoked (its extension unloaded); the event no
    /// longer has any handler.
    Retired,
    /// The raise was nested more than
    /// [`MAX_RAISE_DEPTH`](crate::MAX_RAISE_DEPTH) deep in this strand (a
    /// handler raising its own event without end); nothing ran.
    TooDeep,
}

impl fmt::Display for RaiseError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            RaiseError::NoHandlerFired => f.write_str("no handler fired and no default is set"),
            RaiseError::Deferred => {
                f.write_str("every firing handler was deferred and no default is set")
            }
            RaiseError::NoExecutor => f.write_str("asynchronous dispatch needs an executor"),
            RaiseError::Retired => f.write_str("the event's owner was revoked"),
            RaiseError::TooDeep => {
                write!(f, "raises nested more than {} deep", crate::MAX_RAISE_DEPTH)
            }
        }
    }
}

/// Why an install was refused. A refused install changes nothing.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum InstallError {
    /// The installing principal was revoked.
    Revoked,
    /// The event's authorizer refused (or the event has none and the
    /// installer is not its owner).
    Denied {
        /// The authorizer's reason.
        reason: String,
    },
    /// A keyed binding was requested but the event declares no key.
    NotKeyed,
    /// An ephemeral binding was requested but the event has no quantum.
    NoQuantum,
    /// An ephemeral binding was requested but the event's time-bounds table
    /// has no clock.
    NoClock,
    /// The requested (or imposed) placement cannot be satisfied.
    Order(OrderError),
    /// The event's owner was revoked.
    Retired,
    /// Called from an interrupt handler, where the writer lock could
    /// deadlock with the interrupted code; install from thread context.
    InInterrupt,
}

impl fmt::Display for InstallError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            InstallError::Revoked => f.write_str("the installing principal was revoked"),
            InstallError::Denied { reason } => write!(f, "install denied: {reason}"),
            InstallError::NotKeyed => f.write_str("the event has no key"),
            InstallError::NoQuantum => f.write_str("the event has no quantum"),
            InstallError::NoClock => f.write_str("no clock for time-bounded handlers"),
            InstallError::Order(error) => write!(f, "impossible order: {error}"),
            InstallError::Retired => f.write_str("the event's owner was revoked"),
            InstallError::InInterrupt => f.write_str("cannot install from an interrupt handler"),
        }
    }
}

impl From<OrderError> for InstallError {
    fn from(error: OrderError) -> Self {
        InstallError::Order(error)
    }
}

/// Why an operation on an existing binding failed.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum BindingError {
    /// The binding is not installed on this event (it was uninstalled,
    /// revoked, or never existed here).
    NotInstalled(BindingId),
    /// The operation does not apply to the original handler (it cannot be
    /// uninstalled, swapped or guarded; the authority can disable it with
    /// [`EventAuthority::set_original_enabled`](crate::EventAuthority::set_original_enabled)).
    Original,
    /// The event no longer exists.
    EventGone,
    /// Called from an interrupt handler, where the writer lock could
    /// deadlock with the interrupted code; call from thread context.
    InInterrupt,
}

impl fmt::Display for BindingError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            BindingError::NotInstalled(id) => write!(f, "{id} is not installed on this event"),
            BindingError::Original => f.write_str("not applicable to the original handler"),
            BindingError::EventGone => f.write_str("the event no longer exists"),
            BindingError::InInterrupt => {
                f.write_str("cannot change a binding from an interrupt handler")
            }
        }
    }
}

/// Why an event could not be declared.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum DeclareError {
    /// The name is not dotted: it needs at least two non-empty segments of
    /// ASCII letters, digits and `_`, separated by `.` (`Strand.Block`).
    InvalidName(String),
    /// A live event already has this name.
    DuplicateName(String),
}

impl fmt::Display for DeclareError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            DeclareError::InvalidName(name) => write!(f, "invalid event name {name:?}"),
            DeclareError::DuplicateName(name) => write!(f, "event {name:?} already exists"),
        }
    }
}

impl core::error::Error for RaiseError {}
impl core::error::Error for InstallError {}
impl core::error::Error for BindingError {}
impl core::error::Error for DeclareError {}
impl core::error::Error for OrderError {}
