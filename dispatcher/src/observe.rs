//! Observing events without knowing their types, and learning about events
//! as they are declared: what a monitor (the `tracer` extension, SPIN's
//! "monitor system activity") needs.
//!
//! * [`observe`] installs, on the live event of a given name, a binding
//!   whose guard counts the raises that reach it and never holds: the
//!   handler never runs, so the event's result is unchanged, and the
//!   binding goes through the event's authorizer like any other (an owner
//!   may deny it or impose guards, which then hide raises from the
//!   observer). Events nobody observes keep their fast path: observing
//!   costs only the events observed.
//! * `Dispatcher.EventDeclared` ([`EVENT_DECLARED`]) is raised after each
//!   event is declared, with its name, once the kernel has published it
//!   ([`publish_declared_event`]); extensions install on it through
//!   [`declared_event`]. It is raised synchronously inside the
//!   declaration, before the owner has set its authorizer: an observer
//!   that is denied there should try again later.
//!
//! The registry of observable events holds weak references, like
//! [`registry`](crate::registry): it never keeps an event alive.

use alloc::boxed::Box;
use alloc::string::String;
use alloc::sync::{Arc, Weak};
use alloc::vec::Vec;
use core::fmt;
use core::sync::atomic::{AtomicU64, Ordering};

use spin::{Mutex, Once};

use crate::error::{BindingError, InstallError};
use crate::event::{Event, EventInner};
use crate::{KernelCapability, Principal, PublicEvent};

/// Name of the event raised when an event is declared.
pub const EVENT_DECLARED: &str = "Dispatcher.EventDeclared";

/// The argument of `Dispatcher.EventDeclared`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct EventDeclared {
    /// The new event's dotted name.
    pub name: String,
}

/// An installed observation; [`Observer::stop`] uninstalls it (revoking
/// the installer's principal does too).
pub struct Observer {
    event: String,
    uninstall: Box<dyn FnOnce() -> Result<(), BindingError> + Send + Sync>,
}

impl Observer {
    /// The observed event's name.
    pub fn event(&self) -> &str {
        &self.event
    }

    /// Uninstalls the observing binding.
    pub fn stop(self) -> Result<(), BindingError> {
        (self.uninstall)()
    }
}

impl fmt::Debug for Observer {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Observer")
            .field("event", &self.event)
            .finish_non_exhaustive()
    }
}

/// Why [`observe`] failed.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum ObserveError {
    /// No live event has that name.
    NoSuchEvent(String),
    /// The event's authorizer refused the observing binding.
    Install(InstallError),
}

impl fmt::Display for ObserveError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::NoSuchEvent(name) => write!(f, "no event named '{name}'"),
            Self::Install(e) => write!(f, "{e:?}"),
        }
    }
}

/// An event seen through its types' erasure.
trait ObservableEvent: Send + Sync {
    fn name(&self) -> &str;
    fn alive(&self) -> bool;
    /// A strong handle, to install through outside the registry's lock.
    fn upgrade(&self) -> Option<Box<dyn LiveEvent>>;
}

/// A live event, held strongly while an observer is installed on it.
trait LiveEvent {
    fn observe(
        self: Box<Self>,
        principal: &Principal,
        counter: Arc<AtomicU64>,
    ) -> Result<Observer, ObserveError>;
}

struct WeakEvent<A: 'static, R: 'static> {
    name: String,
    inner: Weak<EventInner<A, R>>,
}

impl<A: 'static, R: 'static> ObservableEvent for WeakEvent<A, R> {
    fn name(&self) -> &str {
        &self.name
    }

    fn alive(&self) -> bool {
        self.inner.strong_count() > 0
    }

    fn upgrade(&self) -> Option<Box<dyn LiveEvent>> {
        let inner = self.inner.upgrade()?;
        Some(Box::new(Event { inner }))
    }
}

impl<A: 'static, R: 'static> LiveEvent for Event<A, R> {
    fn observe(
        self: Box<Self>,
        principal: &Principal,
        counter: Arc<AtomicU64>,
    ) -> Result<Observer, ObserveError> {
        let binding = self
            .binding(|_: &A| -> R { unreachable!("an observer's guard never holds") })
            .guard(move |_: &A| {
                counter.fetch_add(1, Ordering::Relaxed);
                false
            })
            .install(principal)
            .map_err(ObserveError::Install)?;
        Ok(Observer {
            event: String::from(self.name()),
            uninstall: Box::new(move || binding.uninstall()),
        })
    }
}

static OBSERVABLE: Mutex<Vec<Box<dyn ObservableEvent>>> = Mutex::new(Vec::new());
static DECLARED: Once<Event<EventDeclared, ()>> = Once::new();
static DECLARED_PUBLIC: Once<PublicEvent<EventDeclared, ()>> = Once::new();

/// Called by [`EventBuilder::declare`](crate::EventBuilder::declare) once
/// the event is registered: makes it observable and raises
/// `Dispatcher.EventDeclared`.
pub(crate) fn declared<A: 'static, R: 'static>(event: &Event<A, R>) {
    let name = String::from(event.name());
    {
        let mut observable = OBSERVABLE.lock();
        observable.retain(|e| e.alive());
        observable.push(Box::new(WeakEvent {
            name: name.clone(),
            inner: Arc::downgrade(&event.inner),
        }));
    }
    if let Some(declared) = DECLARED.get() {
        // Nobody listening (no binding, no original) is not an error.
        let _ = declared.raise(&EventDeclared { name });
    }
}

/// Publishes `Dispatcher.EventDeclared` (the kernel declares it and keeps
/// the right to raise it; extensions get [`declared_event`]). Later calls
/// are ignored and return false.
pub fn publish_declared_event(_kernel: KernelCapability, event: Event<EventDeclared, ()>) -> bool {
    let mut first = false;
    DECLARED.call_once(|| {
        first = true;
        event.clone()
    });
    if first {
        DECLARED_PUBLIC.call_once(|| PublicEvent::new(event));
    }
    first
}

/// `Dispatcher.EventDeclared`, install-only, once the kernel published it.
pub fn declared_event() -> Option<&'static PublicEvent<EventDeclared, ()>> {
    DECLARED_PUBLIC.get()
}

/// Forgets entries of events that died (see `registry::prune_dead`).
pub(crate) fn prune_dead() {
    if let Some(mut observable) = OBSERVABLE.try_lock() {
        observable.retain(|e| e.alive());
    }
}

/// Names of the live events, in declaration order.
pub fn observable_events() -> Vec<String> {
    let mut observable = OBSERVABLE.lock();
    observable.retain(|e| e.alive());
    observable.iter().map(|e| String::from(e.name())).collect()
}

/// Installs an observer of the live event `name` for `principal`: every
/// raise that reaches its binding adds one to `counter`. See the
/// [module docs](self).
pub fn observe(
    name: &str,
    principal: &Principal,
    counter: Arc<AtomicU64>,
) -> Result<Observer, ObserveError> {
    // Upgrade under the lock, install outside it (the authorizer runs
    // arbitrary code, which may declare events).
    let live = OBSERVABLE
        .lock()
        .iter()
        .filter(|e| e.name() == name)
        .find_map(|e| e.upgrade());
    match live {
        Some(event) => event.observe(principal, counter),
        None => Err(ObserveError::NoSuchEvent(name.into())),
    }
}
