//! What the kernel tells the dispatcher about the context raises run in.
//!
//! * **Strand switches** ([`park`]): a raise's read section and nesting
//!   depth belong to the strand that raised, not to the CPU. When the
//!   scheduler switches a strand out it parks the strand's read state and
//!   resumes it when the strand runs again, exactly like the containment
//!   boundary's catch depth. While a strand is parked inside a raise,
//!   retired dispatch tables wait for it. On a host, each thread has its
//!   own state and nothing needs parking.
//! * **Interrupt context** ([`InterruptScope`]): writers (install,
//!   uninstall, swap, impose, authority settings) take spin locks that the
//!   interrupted code may hold, so in an interrupt handler they are refused
//!   with [`InstallError::InInterrupt`](crate::InstallError::InInterrupt) /
//!   [`BindingError::InInterrupt`](crate::BindingError::InInterrupt)
//!   instead of risking a deadlock. Raises are fine anywhere.
//!
//! Both take the [`KernelCapability`]: an extension cannot mark itself in
//! interrupt context or tamper with a strand's read state.

use crate::KernelCapability;
use crate::rcu;

pub use crate::rcu::{MAX_RAISE_DEPTH, ParkedReads};

/// Parks the running strand's read state for a switch; call
/// `ParkedReads::resume` on the same strand when it runs again. A new
/// strand starts with none.
pub fn park(_kernel: KernelCapability) -> ParkedReads {
    rcu::park()
}

impl ParkedReads {
    /// Gives the resumed strand its read state back.
    pub fn restore(self, _kernel: KernelCapability) {
        self.resume();
    }
}

/// Marks the current context as an interrupt handler while it lives.
#[derive(Debug)]
#[must_use = "the scope ends when dropped"]
pub struct InterruptScope {
    _private: (),
}

impl InterruptScope {
    /// Enters interrupt context (nests).
    pub fn enter(_kernel: KernelCapability) -> Self {
        rcu::interrupt_enter();
        InterruptScope { _private: () }
    }
}

impl Drop for InterruptScope {
    fn drop(&mut self) {
        rcu::interrupt_leave();
    }
}

/// Whether the current context is marked as an interrupt handler.
pub fn in_interrupt() -> bool {
    rcu::in_interrupt()
}

/// The current strand's (or thread's) raise nesting depth.
pub fn raise_depth() -> u64 {
    rcu::depth()
}

/// Frees retired dispatch tables whose grace period is over, waiting a
/// bounded time for other threads' raises in progress. The kernel may call
/// it from thread context (for example before unmapping an extension).
pub fn synchronize() {
    rcu::synchronize();
}
