//! The service's typed errors.

use alloc::string::String;
use core::fmt;

use crate::id::{PolicyId, StrandId};

/// Why a strand operation was refused.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum StrandError {
    /// The kernel has not started the strand service (host code, or too
    /// early in boot).
    NoService,
    /// No strand has this id (it never existed, or it exited and was
    /// reaped).
    NotFound(StrandId),
    /// The strand has exited.
    Exited(StrandId),
    /// The operation needs a ready strand (for example suspending one that
    /// is already blocked).
    NotReady(StrandId),
    /// Blocking is impossible here: in an interrupt handler, with
    /// interrupts disabled,
    /// or outside any strand.
    CannotBlock,
    /// One of the kernel's essential strands (idle, reaper, the shell):
    /// it cannot be killed or suspended.
    Protected(StrandId),
    /// A strand cannot join itself.
    JoinSelf,
    /// Memory ran out while creating the strand; `what` says which
    /// resource (stack frames, page tables, addresses, ...).
    OutOfMemory(&'static str),
    /// A stack of `requested` bytes is more than the `max` a strand may have.
    StackTooLarge {
        /// Bytes asked for.
        requested: usize,
        /// The largest stack there is room for.
        max: usize,
    },
    /// No registered policy has this id.
    NoSuchPolicy(PolicyId),
    /// Tickets must be between 1 and [`MAX_TICKETS`](crate::MAX_TICKETS).
    BadTickets(u32),
    /// The joined strand ended without producing its result (it was killed
    /// or overflowed its stack).
    NoResult(StrandId),
}

impl fmt::Display for StrandError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            StrandError::NoService => f.write_str("the strand service is not running"),
            StrandError::NotFound(id) => write!(f, "no strand {id}"),
            StrandError::Exited(id) => write!(f, "strand {id} has exited"),
            StrandError::NotReady(id) => write!(f, "strand {id} is not ready"),
            StrandError::CannotBlock => f.write_str(
                "cannot block here (interrupt handler, interrupts disabled, or not in a strand)",
            ),
            StrandError::Protected(id) => {
                write!(f, "strand {id} is one of the kernel's essential strands")
            }
            StrandError::JoinSelf => f.write_str("a strand cannot join itself"),
            StrandError::OutOfMemory(what) => write!(f, "out of memory: {what}"),
            StrandError::StackTooLarge { requested, max } => {
                write!(
                    f,
                    "a stack of {requested} bytes is over the {max}-byte limit"
                )
            }
            StrandError::NoSuchPolicy(id) => write!(f, "no scheduling policy {id}"),
            StrandError::BadTickets(n) => write!(
                f,
                "{n} tickets: a strand holds between 1 and {} tickets",
                crate::MAX_TICKETS
            ),
            StrandError::NoResult(id) => {
                write!(
                    f,
                    "strand {id} ended without a result (killed or overflowed)"
                )
            }
        }
    }
}

/// Why a policy could not be registered or retired.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum PolicyError {
    /// The kernel has not started the strand service.
    NoService,
    /// Another policy has this name.
    NameTaken(String),
    /// The name is empty, too long or not printable.
    BadName,
    /// The principal already registered a policy (one each).
    AlreadyRegistered(PolicyId),
    /// No registered policy has this id.
    NotFound(PolicyId),
}

impl fmt::Display for PolicyError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            PolicyError::NoService => f.write_str("the strand service is not running"),
            PolicyError::NameTaken(name) => write!(f, "a policy named '{name}' exists"),
            PolicyError::BadName => f.write_str("a policy name is 1-32 printable characters"),
            PolicyError::AlreadyRegistered(id) => {
                write!(f, "this principal already registered policy {id}")
            }
            PolicyError::NotFound(id) => write!(f, "no scheduling policy {id}"),
        }
    }
}
