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
use alloc::vec::Vec;
use core::fmt;
use core::sync::atomic::{AtomicU64, Ordering};

use crate::error::{BindingError, InstallError};
use crate::event::{Event, EventInner};
use crate::executor::Executor;
use crate::order::{Placement, Position};
use crate::plan::Plan;
use crate::principal::{AliveToken, Principal, PrincipalId};

/// A side-effect-free predicate over an event's arguments.
pub type Guard<A> = alloc::boxed::Box<dyn Fn(&A) -> bool + Send + Sync>;

/// The guards of one binding: checked in order (`first`, then `rest`),
/// then (for guards imposed after install) the older set it extends.
/// Immutable and shared by the plans that contain the binding. The first
/// guard is stored inline so that the common one-guard case costs one
/// pointer hop from the plan to the guard's code.
pub(crate) struct GuardSet<A> {
    pub(crate) first: Guard<A>,
    pub(crate) rest: alloc::boxed::Box<[Guard<A>]>,
    pub(crate) next: Option<Arc<GuardSet<A>>>,
    /// Counts the guard closures for the installer (released by its `Drop`
    /// only); must stay last.
    pub(crate) _alive: AliveToken,
}

impl<A> GuardSet<A> {
    /// A set of `guards` (checked in order) in front of `next`; `next`
    /// itself when `guards` is empty.
    pub(crate) fn new(
        guards: Vec<Guard<A>>,
        next: Option<Arc<GuardSet<A>>>,
        alive: AliveToken,
    ) -> Option<Arc<GuardSet<A>>> {
        let mut guards = guards.into_iter();
        match guards.next() {
            None => next,
            Some(first) => Some(Arc::new(GuardSet {
                first,
                rest: guards.collect(),
                next,
                _alive: alive,
            })),
        }
    }

    /// Whether every guard of the chain holds for `args`.
    #[inline(always)]
    pub(crate) fn hold(&self, args: &A) -> bool {
        let mut set = self;
        loop {
            if !(set.first)(args) {
                return false;
            }
            for guard in set.rest.iter() {
                if !guard(args) {
                    return false;
                }
            }
            match &set.next {
                Some(next) => set = next,
                None => return true,
            }
        }
    }
}

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
    /// Runs later, through an [`Executor`].
    pub asynchronous: bool,
    /// Time-bounded by the event's quantum.
    pub ephemeral: bool,
    /// Number of the installer's own guards.
    pub guards: usize,
}

/// Statistics of one binding, shared by every handler swapped into it.
#[derive(Default)]
pub(crate) struct BindingStats {
    /// Handler calls. Updated with a relaxed load and store (not a
    /// read-modify-write): exact on one CPU, where interrupts nest, and may
    /// under-count when several CPUs run the same handler at once.
    pub(crate) calls: AtomicU64,
    /// Overruns of the quantum.
    pub(crate) overruns: AtomicU64,
}

/// Spawns one asynchronous handler call; instantiated where `A: Clone + Send`
/// is known.
pub(crate) type SpawnHandlerFn<A, R> =
    fn(&Arc<Plan<A, R>>, &Arc<BindingCore<A, R>>, &A, &dyn Executor);

/// The immutable binding object that raises see: handler, closure,
/// flags. Replaced as a whole (never mutated) by a handler swap. The
/// binding's guards live beside it in the plan ([`GuardSet`]), so that
/// imposing a guard does not replace the handler.
pub(crate) struct BindingCore<A, R> {
    pub(crate) handler: Handler<A, R>,
    pub(crate) cancel: bool,
    pub(crate) spawn: Option<SpawnHandlerFn<A, R>>,
    /// `Some(quantum)` for ephemeral bindings.
    pub(crate) quantum: Option<u64>,
    pub(crate) id: BindingId,
    pub(crate) stats: Arc<BindingStats>,
    /// Must stay the last field: it is dropped after the closures above.
    pub(crate) alive: AliveToken,
}

impl<A, R> BindingCore<A, R> {
    pub(crate) fn installer(&self) -> PrincipalId {
        self.alive.principal().id
    }

    /// The same binding with another handler (same id, flags, statistics).
    pub(crate) fn with_handler(&self, handler: Handler<A, R>) -> Self {
        BindingCore {
            handler,
            cancel: self.cancel,
            spawn: self.spawn,
            quantum: self.quantum,
            id: self.id,
            stats: Arc::clone(&self.stats),
            alive: self.alive.duplicate(),
        }
    }
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
#[must_use = "a binding builder does nothing until `install` is called"]
pub struct BindingBuilder<'e, A: 'static, R: 'static> {
    pub(crate) event: &'e Event<A, R>,
    pub(crate) handler: Handler<A, R>,
    pub(crate) guards: Vec<Guard<A>>,
    pub(crate) options: BindingOptions,
    pub(crate) spawn: Option<SpawnHandlerFn<A, R>>,
}

impl<'e, A: 'static, R: 'static> BindingBuilder<'e, A, R> {
    pub(crate) fn new(event: &'e Event<A, R>, handler: Handler<A, R>) -> Self {
        BindingBuilder {
            event,
            handler,
            guards: Vec::new(),
            options: BindingOptions::default(),
            spawn: None,
        }
    }

    /// Adds a guard; the handler runs only if all guards hold. Guards must
    /// be free of side effects: they may be evaluated for every raise.
    pub fn guard(mut self, guard: impl Fn(&A) -> bool + Send + Sync + 'static) -> Self {
        self.guards.push(alloc::boxed::Box::new(guard));
        self.options.guards += 1;
        self
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

impl<A: Clone + Send + 'static, R: 'static> BindingBuilder<'_, A, R> {
    /// Runs the handler later, through the event's executor: its guards are
    /// evaluated during the raise, and if they hold the handler is queued as
    /// a job with a clone of the arguments. Its result is discarded; it does
    /// not contribute to the raise's result.
    pub fn asynchronous(mut self) -> Self {
        self.options.asynchronous = true;
        self.spawn = Some(spawn_handler::<A, R>);
        self
    }
}

fn spawn_handler<A: Clone + Send + 'static, R: 'static>(
    plan: &Arc<Plan<A, R>>,
    core: &Arc<BindingCore<A, R>>,
    args: &A,
    executor: &dyn Executor,
) {
    let plan = Arc::clone(plan);
    let core = Arc::clone(core);
    let args = args.clone();
    executor.spawn(alloc::boxed::Box::new(move || {
        let _result = plan.run_handler(&core, &args);
    }));
}
