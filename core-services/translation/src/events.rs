//! The page-fault events the Translation service owns, and their
//! authorizers.
//!
//! | event | raised when | arguments → result | default |
//! |---|---|---|---|
//! | `Translation.PageNotPresent` | an access to an unmapped page of an allocated range | [`Fault`] → [`FaultReply`] | [`FaultReply::NotResolved`] |
//! | `Translation.ProtectionFault` | an access a mapping in a range does not allow | [`Fault`] → [`FaultReply`] | [`FaultReply::NotResolved`] |
//! | `Translation.BadAddress` | an access in the service's region that no range covers (a guard page, a freed range) | [`Fault`] → [`FaultReply`] | [`FaultReply::NotResolved`] |
//!
//! **Authority.** On `PageNotPresent` and `ProtectionFault` the authorizer
//! imposes a guard: a binding sees only faults in ranges its installer
//! owns (the fault carries the range's owner, looked up by the service, not
//! by the handler). `BadAddress` faults belong to no range, so nobody but
//! the kernel may handle them. Nobody may `Cancel`.
//!
//! Handlers run in the page-fault handler: interrupts off, on the fault's
//! own stack; they may allocate frames and add mappings (that is how a
//! fault is resolved), and must not block. The service checks the answer:
//! `Resolved` counts only if the page is now mapped with a protection that
//! allows the access, so a handler that claims success without doing the
//! work cannot make the faulting code loop.

use alloc::string::String;

use dispatcher::{
    Decision, Event, Imposition, InstallRequest, KernelCapability, PrincipalId, PublicEvent,
};
use virt_addr::{Access, RangeId};

/// Dotted name of the not-present fault.
pub const PAGE_NOT_PRESENT_EVENT: &str = "Translation.PageNotPresent";
/// Dotted name of the protection fault.
pub const PROTECTION_FAULT_EVENT: &str = "Translation.ProtectionFault";
/// Dotted name of the fault outside every range.
pub const BAD_ADDRESS_EVENT: &str = "Translation.BadAddress";

/// A page fault, as the handlers see it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Fault {
    /// The faulting address.
    pub address: u64,
    /// What the access was.
    pub access: Access,
    /// The range it fell in (none for `BadAddress`).
    pub range: Option<RangeId>,
    /// That range's owner.
    pub owner: Option<PrincipalId>,
    /// That range's first byte (0 without a range).
    pub range_base: u64,
}

impl Fault {
    /// The page index of the address in its range.
    pub fn page_index(&self) -> u64 {
        (self.address - self.range_base) / virt_addr::PAGE_SIZE
    }
}

/// A fault handler's answer.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum FaultReply {
    /// The page is now mapped (with the access allowed): resume.
    Resolved,
    /// Not handled here.
    NotResolved,
}

impl FaultReply {
    /// The result handler: resolved if any handler resolved it.
    pub fn combine(self, other: FaultReply) -> FaultReply {
        if self == Self::Resolved || other == Self::Resolved {
            Self::Resolved
        } else {
            Self::NotResolved
        }
    }
}

/// The events as the kernel declared them (raisable).
pub struct KernelEvents {
    /// `Translation.PageNotPresent`.
    pub page_not_present: Event<Fault, FaultReply>,
    /// `Translation.ProtectionFault`.
    pub protection_fault: Event<Fault, FaultReply>,
    /// `Translation.BadAddress`.
    pub bad_address: Event<Fault, FaultReply>,
}

/// The events as everyone sees them: install-only.
pub struct TranslationEvents {
    /// `Translation.PageNotPresent`.
    pub page_not_present: PublicEvent<Fault, FaultReply>,
    /// `Translation.ProtectionFault`.
    pub protection_fault: PublicEvent<Fault, FaultReply>,
    /// `Translation.BadAddress`.
    pub bad_address: PublicEvent<Fault, FaultReply>,
}

static EVENTS: spin::Once<(KernelEvents, TranslationEvents)> = spin::Once::new();

/// Publishes the events (the kernel, once at boot; false if already done).
pub fn publish_events(_kernel: KernelCapability, events: KernelEvents) -> bool {
    let mut published = false;
    EVENTS.call_once(|| {
        published = true;
        let public = TranslationEvents {
            page_not_present: PublicEvent::new(events.page_not_present.clone()),
            protection_fault: PublicEvent::new(events.protection_fault.clone()),
            bad_address: PublicEvent::new(events.bad_address.clone()),
        };
        (events, public)
    });
    published
}

/// The events, once published, to install handlers on.
pub fn events() -> Option<&'static TranslationEvents> {
    EVENTS.get().map(|(_, public)| public)
}

pub(crate) fn kernel_events() -> Option<&'static KernelEvents> {
    EVENTS.get().map(|(events, _)| events)
}

/// The authorizer of `PageNotPresent` and `ProtectionFault`: only faults in
/// the installer's own ranges.
pub fn range_owner_authorizer(request: &InstallRequest<'_>) -> Decision<Fault> {
    let installer = request.principal;
    Decision::Impose(
        Imposition::new()
            .guard(move |fault: &Fault| fault.owner == Some(installer))
            .forbid_cancel(),
    )
}

/// The authorizer of `BadAddress`: no range, no owner, so nobody but the
/// kernel.
pub fn bad_address_authorizer(request: &InstallRequest<'_>) -> Decision<Fault> {
    let _ = request;
    Decision::Deny(String::from(
        "Translation.BadAddress faults belong to no range: only the kernel handles them",
    ))
}
