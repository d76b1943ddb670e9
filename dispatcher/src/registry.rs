//! The registry of all live events, for introspection (the shell's `events`
//! and `handlers EVENT`) and for revocation.
//!
//! The registry holds a weak reference to each event, so it never keeps an
//! event alive: an event disappears from listings as soon as its last
//! [`Event`](crate::Event) handle and its
//! [`EventAuthority`](crate::EventAuthority) are dropped, and its name can be
//! declared again. Dead entries are pruned lazily by the next registry call,
//! so dropping an event never takes the registry lock (it may happen in
//! interrupt context).
//!
//! All functions here take the registry's spin lock: call them from thread
//! context, not from interrupt handlers.

use alloc::string::String;
use alloc::sync::{Arc, Weak};
use alloc::vec::Vec;

use spin::Mutex;

use crate::binding::{BindingId, BindingOptions};
use crate::error::DeclareError;
use crate::principal::PrincipalId;

/// One event, as listed by [`events`].
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct EventInfo {
    /// The dotted name.
    pub name: String,
    /// The owner's principal id.
    pub owner: PrincipalId,
    /// The owner's name.
    pub owner_name: String,
    /// Installed bindings, not counting the original handler.
    pub bindings: usize,
    /// Raises so far. Counted with relaxed loads and stores: exact on one
    /// CPU, may under-count raises that run truly concurrently on several.
    pub raises: u64,
    /// Whether the event has an original handler that currently runs.
    pub original_enabled: bool,
    /// Whether the event is asynchronous.
    pub asynchronous: bool,
    /// Whether the owner was revoked.
    pub retired: bool,
}

/// One binding, as listed by [`bindings_of`].
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct BindingInfo {
    /// The binding's id ([`BindingId::ORIGINAL`] for the original handler).
    pub id: BindingId,
    /// Who installed it.
    pub installer: PrincipalId,
    /// The installer's name.
    pub installer_name: String,
    /// 0-based rank in the event's current total order.
    pub rank: usize,
    /// The options in force (after the authorizer's impositions).
    pub options: BindingOptions,
    /// Guards imposed by the authority.
    pub imposed_guards: usize,
    /// The quantum recorded at install, for ephemeral bindings.
    pub quantum: Option<crate::time_bounds::Micros>,
    /// Handler calls so far (relaxed counter, like [`EventInfo::raises`]).
    pub calls: u64,
    /// Quantum overruns so far.
    pub overruns: u64,
    /// Whether the handler currently runs (false only for a disabled
    /// original handler).
    pub enabled: bool,
}

/// The type-erased view of an event that the registry keeps.
pub(crate) trait RegisteredEvent: Send + Sync {
    fn name(&self) -> &str;
    fn info(&self) -> EventInfo;
    fn binding_infos(&self) -> Vec<BindingInfo>;
    /// Uninstalls every binding of `principal`; if it owns the event,
    /// retires the event (which also uninstalls everybody else's bindings).
    /// Returns the number of `principal`'s bindings uninstalled.
    fn revoke_principal(&self, principal: PrincipalId) -> usize;
    /// Compiles and publishes the event's table again from its writer
    /// state (the same bindings, in the same order).
    fn republish(&self);
}

static EVENTS: Mutex<Vec<Weak<dyn RegisteredEvent>>> = Mutex::new(Vec::new());

/// Checks that `name` is dotted: two or more non-empty segments of ASCII
/// letters, digits and `_`.
pub(crate) fn validate_name(name: &str) -> Result<(), DeclareError> {
    let valid_segment = |segment: &str| {
        !segment.is_empty()
            && segment
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || b == b'_')
    };
    if name.split('.').count() >= 2 && name.split('.').all(valid_segment) {
        Ok(())
    } else {
        Err(DeclareError::InvalidName(name.into()))
    }
}

/// Adds `event` unless a live event has the same name.
pub(crate) fn register(event: Weak<dyn RegisteredEvent>, name: &str) -> Result<(), DeclareError> {
    let mut events = EVENTS.lock();
    events.retain(|entry| entry.strong_count() > 0);
    let duplicate = events
        .iter()
        .filter_map(Weak::upgrade)
        .any(|live| live.name() == name);
    if duplicate {
        return Err(DeclareError::DuplicateName(name.into()));
    }
    events.push(event);
    Ok(())
}

/// Forgets entries of events that died. Their weak references keep each
/// dead event's allocation until they go, so an event's last owner calls
/// this (through `EventInner`'s `Drop`). Skipped if the list is locked:
/// whoever holds it prunes it too.
pub(crate) fn prune_dead() {
    if let Some(mut events) = EVENTS.try_lock() {
        events.retain(|entry| entry.strong_count() > 0);
    }
}

/// Strong references to every live event, taken under the lock and
/// returned so that the caller works (and drops them) outside it.
pub(crate) fn live_events() -> Vec<Arc<dyn RegisteredEvent>> {
    let mut events = EVENTS.lock();
    events.retain(|entry| entry.strong_count() > 0);
    events.iter().filter_map(Weak::upgrade).collect()
}

/// Compiles every live event's table again, from this (kernel) code, and
/// publishes it; the tables replaced are retired as usual. Returns how many
/// events were republished. Kernel only: the kernel calls it when an
/// extension is unloaded, because the tables an extension's install or
/// uninstall compiled (generic dispatcher code instantiated in its object)
/// were allocated by that extension's code, from its heap.
pub fn republish_all(_kernel: crate::KernelCapability) -> usize {
    let events = live_events();
    for event in &events {
        event.republish();
    }
    events.len()
}

/// Every live event, sorted by name.
pub fn events() -> Vec<EventInfo> {
    let mut infos: Vec<EventInfo> = live_events().iter().map(|event| event.info()).collect();
    infos.sort_by(|a, b| a.name.cmp(&b.name));
    infos
}

/// The bindings of the live event named `name`, in dispatch order
/// (including the original handler), or `None` if there is no such event.
pub fn bindings_of(name: &str) -> Option<Vec<BindingInfo>> {
    live_events()
        .into_iter()
        .find(|event| event.name() == name)
        .map(|event| event.binding_infos())
}

/// The live event named `name`, if any.
pub fn event_info(name: &str) -> Option<EventInfo> {
    live_events()
        .into_iter()
        .find(|event| event.name() == name)
        .map(|event| event.info())
}
