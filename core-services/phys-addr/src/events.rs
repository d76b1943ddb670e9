//! The events the PhysAddr service owns, their arguments and results, and
//! the authorizers the kernel installs on them.
//!
//! | event | raised | arguments → result | original handler |
//! |---|---|---|---|
//! | `PhysAddr.Allocate` | after frames were allocated | [`FramesSignal`] | empty |
//! | `PhysAddr.Deallocate` | after frames were freed | [`FramesSignal`] | empty |
//! | `PhysAddr.Reclaim` | once per owner asked to give frames back | [`ReclaimRequest`] → [`ReclaimReply`] | none; default [`ReclaimReply::Refused`] |
//! | `PhysAddr.Repossessed` | after the abort protocol took an owner's frames | [`RepossessedNotice`] | empty |
//!
//! As with the strand service, the service changes its state first and
//! raises after; handlers cannot make the books wrong. `Reclaim`'s answer is
//! informative only: the service counts what an owner actually gave back.
//!
//! **Authority.** Anyone may observe `Allocate` and `Deallocate`. On
//! `Reclaim` and `Repossessed` the authorizer imposes a guard: a binding
//! only ever sees requests and notices addressed to its own installer, so
//! one extension cannot answer (or eavesdrop) for another. Nobody may
//! `Cancel`. The events are published install-only ([`events`]); only the
//! kernel raises them.

use dispatcher::{
    Decision, Event, Imposition, InstallRequest, KernelCapability, PrincipalId, PublicEvent,
};

use crate::ledger::AllocationId;

/// Dotted name of the allocation signal.
pub const ALLOCATE_EVENT: &str = "PhysAddr.Allocate";
/// Dotted name of the deallocation signal.
pub const DEALLOCATE_EVENT: &str = "PhysAddr.Deallocate";
/// Dotted name of the reclaim request.
pub const RECLAIM_EVENT: &str = "PhysAddr.Reclaim";
/// Dotted name of the repossession notice.
pub const REPOSSESSED_EVENT: &str = "PhysAddr.Repossessed";

/// Arguments of `PhysAddr.Allocate` / `PhysAddr.Deallocate`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct FramesSignal {
    /// Who holds (held) the frames.
    pub owner: PrincipalId,
    /// The allocation.
    pub allocation: AllocationId,
    /// How many frames.
    pub frames: u64,
    /// Whether they are mapped for the kernel's own use.
    pub pinned: bool,
}

/// Arguments of `PhysAddr.Reclaim`: `owner` is asked to free `frames`
/// frames before `deadline_ns` (the clock of `strand::now_ns`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct ReclaimRequest {
    /// The owner asked.
    pub owner: PrincipalId,
    /// Frames asked for.
    pub frames: u64,
    /// When the abort protocol starts.
    pub deadline_ns: u64,
}

/// A handler's answer to `PhysAddr.Reclaim`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ReclaimReply {
    /// I freed this many frames.
    Released(u64),
    /// I will not give anything back.
    Refused,
}

impl ReclaimReply {
    /// The result handler: the sum of what was released.
    pub fn combine(self, other: ReclaimReply) -> ReclaimReply {
        match (self, other) {
            (Self::Released(a), Self::Released(b)) => Self::Released(a + b),
            (Self::Refused, x) | (x, Self::Refused) => x,
        }
    }
}

/// Arguments of `PhysAddr.Repossessed`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct RepossessedNotice {
    /// The owner whose frames were taken.
    pub owner: PrincipalId,
    /// How many this time.
    pub frames: u64,
    /// Length of its repossession vector now.
    pub vector_len: usize,
}

/// The events as the kernel declared them (raisable).
pub struct KernelEvents {
    /// `PhysAddr.Allocate`.
    pub allocate: Event<FramesSignal, ()>,
    /// `PhysAddr.Deallocate`.
    pub deallocate: Event<FramesSignal, ()>,
    /// `PhysAddr.Reclaim`.
    pub reclaim: Event<ReclaimRequest, ReclaimReply>,
    /// `PhysAddr.Repossessed`.
    pub repossessed: Event<RepossessedNotice, ()>,
}

/// The events as everyone sees them: install-only.
pub struct PhysEvents {
    /// `PhysAddr.Allocate`.
    pub allocate: PublicEvent<FramesSignal, ()>,
    /// `PhysAddr.Deallocate`.
    pub deallocate: PublicEvent<FramesSignal, ()>,
    /// `PhysAddr.Reclaim`.
    pub reclaim: PublicEvent<ReclaimRequest, ReclaimReply>,
    /// `PhysAddr.Repossessed`.
    pub repossessed: PublicEvent<RepossessedNotice, ()>,
}

static EVENTS: spin::Once<(KernelEvents, PhysEvents)> = spin::Once::new();

/// Publishes the events (the kernel, once at boot; false if already done).
pub fn publish_events(_kernel: KernelCapability, events: KernelEvents) -> bool {
    let mut published = false;
    EVENTS.call_once(|| {
        published = true;
        let public = PhysEvents {
            allocate: PublicEvent::new(events.allocate.clone()),
            deallocate: PublicEvent::new(events.deallocate.clone()),
            reclaim: PublicEvent::new(events.reclaim.clone()),
            repossessed: PublicEvent::new(events.repossessed.clone()),
        };
        (events, public)
    });
    published
}

/// The events, once published, to install handlers on.
pub fn events() -> Option<&'static PhysEvents> {
    EVENTS.get().map(|(_, public)| public)
}

pub(crate) fn kernel_events() -> Option<&'static KernelEvents> {
    EVENTS.get().map(|(events, _)| events)
}

/// The authorizer of the two signals: anyone may observe, nobody cancels.
pub fn signal_authorizer(request: &InstallRequest<'_>) -> Decision<FramesSignal> {
    let _ = request;
    Decision::Impose(Imposition::new().forbid_cancel())
}

/// The authorizer of `PhysAddr.Reclaim`: a binding sees only requests
/// addressed to its installer.
pub fn reclaim_authorizer(request: &InstallRequest<'_>) -> Decision<ReclaimRequest> {
    let installer = request.principal;
    Decision::Impose(
        Imposition::new()
            .guard(move |r: &ReclaimRequest| r.owner == installer)
            .forbid_cancel(),
    )
}

/// The authorizer of `PhysAddr.Repossessed`: a binding hears only about
/// its installer's frames.
pub fn repossessed_authorizer(request: &InstallRequest<'_>) -> Decision<RepossessedNotice> {
    let installer = request.principal;
    Decision::Impose(
        Imposition::new()
            .guard(move |n: &RepossessedNotice| n.owner == installer)
            .forbid_cancel(),
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn replies_sum_what_was_released() {
        use ReclaimReply::*;
        assert_eq!(Released(3).combine(Released(4)), Released(7));
        assert_eq!(Refused.combine(Released(2)), Released(2));
        assert_eq!(Released(2).combine(Refused), Released(2));
        assert_eq!(Refused.combine(Refused), Refused);
    }
}
