//! Bindings: a handler attached to an event, with its guards and options.
//!
//! Installing returns a [`Binding`] handle, a capability: only its holder
//! (and the event's [`EventAuthority`](crate::EventAuthority)) can uninstall
//! the binding or swap its handler. Dropping the handle does **not**
//! uninstall the binding (that would need the event's writer lock inside
//! `Drop`, which may run in interrupt context); a binding stays until it is
//! uninstalled through the handle, by the authority, or by revocation of its
//! installer.

use alloc::sync::{Arc, Weak};
use core::fmt;
use core::sync::atomic::{AtomicU64, Ordering};

use crate::error::{BindingError, InstallError};
use crate::event::{Event, EventInner};
use crate::order::{Placement, Position};
use crate::principal::Principal;
use crate::step::{AndGuard, Guards, NoGuards};
use crate::table::{SpawnFn, spawn_step};

/// A side-effect-free predicate over an event's arguments.
pub type Guard<A> = alloc::boxed::Box<dyn Fn(&A) -> bool + Send + Sync>;

/// A handler (or the original handler, or a default handler) of an event
/// with arguments `A` and result `R`.
pub type Handler<A, R> = Arc<dyn Fn(&A) -> R + Send + Sync>;

/// Identifies one binding.
///
/// Ids are unique in the process (one counter for all events) and increase
/// with install time; the original handler of every event has
/// [`BindingId::ORIGINAL`]. A swapped handler keeps its binding's id.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct BindingId(u64);

impl BindingId {
    /// The original handler of an event.
    pub const ORIGINAL: BindingId = BindingId(0);

    /// The raw number.
    pub fn as_u64(self) -> u64 {
        self.0
    }

    #[cfg(test)]
    pub(crate) fn from_raw(raw: u64) -> Self {
        BindingId(raw)
    }

    pub(crate) fn next() -> Self {
        static NEXT: AtomicU64 = AtomicU64::new(1);
        BindingId(NEXT.fetch_add(1, Ordering::Relaxed))
    }
}

impl fmt::Display for BindingId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if *self == BindingId::ORIGINAL {
            f.write_str("original")
        } else {
            write!(f, "b{}", self.0)
        }
    }
}

/// The options of a binding, as requested by the installer (in an
/// [`InstallRequest`](crate::InstallRequest)) or as in force (in
/// [`BindingInfo`](crate::BindingInfo), after the authorizer's impositions).
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct BindingOptions {
    /// Where the handler runs in the event's order.
    pub placement: Placement,
    /// When its guards hold, no handler after it runs.
    pub cancel: bool,
    /// Runs only for raises whose key (from the event's key extractor) is
    /// this value.
    pub key: Option<u64>,
    /// Runs later, through an `Executor`.
    pub asynchronous: bool,
    /// Time-bounded by the event's quantum.
    pub ephemeral: bool,
    /// Number of the installer's own guards.
    pub guards: usize,
}

/// Statistics of one binding that are not on the raise path.
#[derive(Default)]
pub(crate) struct BindingStats {
    /// Overruns of the quantum.
    pub(crate) overruns: AtomicU64,
}

/// The capability to uninstall one binding or swap its handler.
///
/// Invariants: not `Clone`, not constructible outside this crate; at most
/// one handle exists per installed binding. It does not keep the event
/// alive. Dropping it leaves the binding installed (see the [module
/// docs](self)).
#[must_use = "dropping a Binding leaves it installed with no way for you to uninstall it"]
pub struct Binding<A: 'static, R: 'static> {
    pub(crate) id: BindingId,
    pub(crate) event: Weak<EventInner<A, R>>,
}

impl<A: 'static, R: 'static> Binding<A, R> {
    /// This binding's id.
    pub fn id(&self) -> BindingId {
        self.id
    }

    /// Whether the binding is still installed (it may have been removed by
    /// the authority or by revocation).
    pub fn is_installed(&self) -> bool {
        self.event
            .upgrade()
            .is_some_and(|event| event.is_installed(self.id))
    }

    /// Uninstalls the binding. Atomic with respect to raises: a raise that
    /// starts after this returns does not call the handler; a raise in
    /// progress finishes with the snapshot it took.
    pub fn uninstall(self) -> Result<(), BindingError> {
        let event = self.event.upgrade().ok_or(BindingError::EventGone)?;
        event.uninstall(self.id)
    }

    /// Atomically replaces the handler, keeping id, guards, order and
    /// options. Every raise calls either the old or the new handler, never
    /// both and never neither.
    pub fn swap_handler(
        &self,
        handler: impl Fn(&A) -> R + Send + Sync + 'static,
    ) -> Result<(), BindingError> {
        let event = self.event.upgrade().ok_or(BindingError::EventGone)?;
        event.swap_handler(self.id, Arc::new(handler))
    }
}

impl<A: 'static, R: 'static> fmt::Debug for Binding<A, R> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Binding").field("id", &self.id).finish()
    }
}

/// Builds and installs a binding; obtained from [`Event::binding`].
///
/// ```
/// # use dispatcher::{Event, PrincipalIssuer};
/// # let issuer = PrincipalIssuer::take().unwrap();
/// # let owner = issuer.issue("net");
/// let (packet, _authority) = Event::<(u16, usize), u16>::builder("Net.Packet")
///     .key(|&(port, _len)| u64::from(port))
///     .declare(&owner)
///     .unwrap();
/// let http = packet
///     .binding(|&(port, _len)| port)
///     .guard(|&(_port, len)| len > 0)
///     .key(80)
///     .first()
///     .install(&owner)
///     .unwrap();
/// assert_eq!(packet.raise(&(80, 512)), Ok(80));
/// http.uninstall().unwrap();
/// ```
///
/// The builder's type carries the handler `H` and the guard chain `G`, so
/// that the installed binding is one specialised object: a raise calls
/// guards and handler through a single indirect call.
#[must_use = "a binding builder does nothing until `install` is called"]
pub struct BindingBuilder<'e, A: 'static, R: 'static, H, G = NoGuards> {
    pub(crate) event: &'e Event<A, R>,
    pub(crate) handler: H,
    pub(crate) guards: G,
    pub(crate) options: BindingOptions,
    pub(crate) spawn: Option<SpawnFn<A, R>>,
}

impl<'e, A: 'static, R: 'static, H> BindingBuilder<'e, A, R, H, NoGuards>
where
    H: Fn(&A) -> R + Send + Sync + 'static,
{
    pub(crate) fn new(event: &'e Event<A, R>, handler: H) -> Self {
        BindingBuilder {
            event,
            handler,
            guards: NoGuards,
            options: BindingOptions::default(),
            spawn: None,
        }
    }
}

impl<'e, A: 'static, R: 'static, H, G> BindingBuilder<'e, A, R, H, G>
where
    H: Fn(&A) -> R + Send + Sync + 'static,
    G: Guards<A>,
{
    /// Adds a guard; the handler runs only if all guards hold (checked in
    /// the order they were added). Guards must be free of side effects:
    /// they may be evaluated for every raise.
    pub fn guard<F>(self, guard: F) -> BindingBuilder<'e, A, R, H, AndGuard<G, F>>
    where
        F: Fn(&A) -> bool + Send + Sync + 'static,
    {
        let mut options = self.options;
        options.guards += 1;
        BindingBuilder {
            event: self.event,
            handler: self.handler,
            guards: AndGuard(self.guards, guard),
            options,
            spawn: self.spawn,
        }
    }

    /// Replaces the handler by `wrap(handler)`, keeping guards and options
    /// (for example to run it inside a containment boundary).
    pub fn map_handler<H2>(self, wrap: impl FnOnce(H) -> H2) -> BindingBuilder<'e, A, R, H2, G>
    where
        H2: Fn(&A) -> R + Send + Sync + 'static,
    {
        BindingBuilder {
            event: self.event,
            handler: wrap(self.handler),
            guards: self.guards,
            options: self.options,
            spawn: self.spawn,
        }
    }

    /// Runs in the `First` band.
    pub fn first(mut self) -> Self {
        self.options.placement.position = Position::First;
        self
    }

    /// Runs in the `Last` band.
    pub fn last(mut self) -> Self {
        self.options.placement.position = Position::Last;
        self
    }

    /// Runs before binding `other` (which must be installed on this event).
    pub fn before(mut self, other: BindingId) -> Self {
        self.options.placement.before.push(other);
        self
    }

    /// Runs after binding `other` (which must be installed on this event).
    pub fn after(mut self, other: BindingId) -> Self {
        self.options.placement.after.push(other);
        self
    }

    /// When this binding's guards hold, the handlers after it do not run.
    pub fn cancel(mut self) -> Self {
        self.options.cancel = true;
        self
    }

    /// Runs only for raises whose key is `key`; the event must have a key
    /// extractor. Keyed bindings are found through a hash index.
    pub fn key(mut self, key: u64) -> Self {
        self.options.key = Some(key);
        self
    }

    /// Time-bounds the handler by the event's quantum (which must be set).
    pub fn ephemeral(mut self) -> Self {
        self.options.ephemeral = true;
        self
    }

    /// Installs the binding for `principal`.
    ///
    /// The owner of the event may always install; anyone else needs the
    /// event's authorizer to allow it. Fails with a typed [`InstallError`]
    /// and changes nothing when refused.
    pub fn install(self, principal: &Principal) -> Result<Binding<A, R>, InstallError> {
        self.event.inner.install(principal, self)
    }
}

impl<A: Clone + Send + 'static, R: 'static, H, G> BindingBuilder<'_, A, R, H, G>
where
    H: Fn(&A) -> R + Send + Sync + 'static,
    G: Guards<A>,
{
    /// Runs the handler later, through the event's executor: its guards are
    /// evaluated during the raise, and if they hold the handler is queued as
    /// a job with a clone of the arguments. Its result is discarded; it does
    /// not contribute to the raise's result.
    pub fn asynchronous(mut self) -> Self {
        self.options.asynchronous = true;
        self.spawn = Some(spawn_step::<A, R>);
        self
    }
}
