//! Declaring an event: [`EventBuilder`].

use alloc::boxed::Box;
use alloc::collections::BTreeMap;
use alloc::string::String;
use alloc::sync::Arc;
use core::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize};

use super::writer::{Installed, WriterState};
use super::{Event, EventAuthority, EventInner};
use crate::binding::{BindingId, BindingOptions, BindingStats, Handler};
use crate::error::DeclareError;
use crate::executor::Executor;
use crate::principal::{AliveToken, Principal};
use crate::rcu::Published;
use crate::registry::{self, RegisteredEvent};
use crate::step::{NoGuards, Shared, Specialised};
use crate::table::{DeferFn, ResultHandler, Table, defer_dispatch};
use crate::time_bounds::{TimeBounds, TimeBoundsRef};

/// What declaring an event returns: the event handle, and the owner's
/// authority over it.
pub type Declared<A, R> = (Event<A, R>, EventAuthority<A, R>);

/// Makes the original handler's specialised object, given the owner's
/// alive token.
type MakeOriginal<A, R> = Box<dyn FnOnce(AliveToken) -> Shared<A, R>>;

/// Declares an event; see [`Event::builder`].
#[must_use = "an event builder does nothing until `declare` is called"]
pub struct EventBuilder<A: 'static, R: 'static> {
    name: String,
    original: Option<(Handler<A, R>, MakeOriginal<A, R>)>,
    key_of: Option<fn(&A) -> u64>,
    result: Option<ResultHandler<R>>,
    default: Option<Handler<A, R>>,
    quantum: Option<crate::time_bounds::Micros>,
    defer: Option<DeferFn<A, R>>,
    executor: Option<Arc<dyn Executor>>,
    time_bounds: TimeBoundsRef,
}

impl<A: 'static, R: 'static> EventBuilder<A, R> {
    pub(crate) fn new(name: &str) -> Self {
        EventBuilder {
            name: String::from(name),
            original: None,
            key_of: None,
            result: None,
            default: None,
            quantum: None,
            defer: None,
            executor: None,
            time_bounds: TimeBoundsRef::Global,
        }
    }

    /// The original (primary) handler: part of the dispatch like an
    /// unguarded `Middle` binding installed first. When it is the only
    /// handler, a raise is one indirect call of it.
    pub fn original<H>(mut self, handler: H) -> Self
    where
        H: Fn(&A) -> R + Send + Sync + 'static,
    {
        let handler = Arc::new(handler);
        let shared = Arc::clone(&handler);
        let make: MakeOriginal<A, R> = Box::new(move |alive| {
            let call: Shared<A, R> = Arc::new(Specialised::new(
                move |args: &A| shared(args),
                Arc::new(NoGuards),
                0,
                alive,
            ));
            call
        });
        self.original = Some((handler, make));
        self
    }

    /// The key extractor for keyed bindings.
    pub fn key(mut self, key_of: fn(&A) -> u64) -> Self {
        self.key_of = Some(key_of);
        self
    }

    /// The result handler; see [`EventAuthority::set_result_handler`].
    pub fn result_handler(mut self, combine: impl Fn(R, R) -> R + Send + Sync + 'static) -> Self {
        self.result = Some(Arc::new(combine));
        self
    }

    /// The default handler; see [`EventAuthority::set_default_handler`].
    pub fn default_handler(mut self, handler: impl Fn(&A) -> R + Send + Sync + 'static) -> Self {
        self.default = Some(Arc::new(handler));
        self
    }

    /// The default result; see [`EventAuthority::set_default_result`].
    pub fn default_result(self, result: R) -> Self
    where
        R: Clone + Send + Sync,
    {
        self.default_handler(move |_| result.clone())
    }

    /// The quantum for ephemeral bindings; see [`EventAuthority::set_quantum`].
    pub fn quantum(mut self, quantum: crate::time_bounds::Micros) -> Self {
        self.quantum = Some(quantum);
        self
    }

    /// The event's own executor.
    pub fn executor(mut self, executor: Arc<dyn Executor>) -> Self {
        self.executor = Some(executor);
        self
    }

    /// A private time-bounds table (with its own clock) instead of the
    /// process-wide one.
    pub fn time_bounds(mut self, time_bounds: Arc<TimeBounds>) -> Self {
        self.time_bounds = TimeBoundsRef::Own(time_bounds);
        self
    }

    /// Declares the event, owned by `owner`: registers it under its name and
    /// returns the event handle and the owner's authority.
    pub fn declare(self, owner: &Principal) -> Result<Declared<A, R>, DeclareError> {
        registry::validate_name(&self.name)?;
        let name: Arc<str> = Arc::from(self.name.as_str());
        let (original, original_entry) = match self.original {
            None => (None, None),
            Some((handler, make)) => {
                let entry = Installed {
                    id: BindingId::ORIGINAL,
                    call: make(owner.alive_token()),
                    extra: None,
                    installer: Arc::clone(&owner.state),
                    imposed_guards: 0,
                    options: BindingOptions::default(),
                    quantum: None,
                    stats: Arc::new(BindingStats::default()),
                };
                (Some(crate::rcu::Pinned::new(handler)), Some(entry))
            }
        };
        let writer = WriterState {
            original: original_entry,
            original_enabled: true,
            bindings: BTreeMap::new(),
            constrained: 0,
            asynchronous: 0,
            authorizer: None,
            result: self.result,
            default: self.default,
            executor: self.executor,
            quantum: self.quantum,
            on_overrun: None,
            retired: false,
        };
        let placeholder = Table {
            steps: Arc::from([]),
            simple: true,
            retired: false,
            result: None,
            default: None,
            keyed: None,
            settings: Arc::new(crate::table::Settings {
                key_of: None,
                executor: None,
                has_async: false,
                defer: None,
                event: Arc::clone(&name),
                time_bounds: self.time_bounds.clone(),
                on_overrun: None,
            }),
        };
        let inner = Arc::new(EventInner {
            table: Published::new(Box::new(placeholder), writer),
            solo: AtomicBool::new(false),
            solo_raises: AtomicU64::new(0),
            raises: AtomicU64::new(0),
            original,
            binding_count: AtomicUsize::new(0),
            name,
            owner: owner.clone(),
            key_of: self.key_of,
            defer: self.defer,
            time_bounds: self.time_bounds,
        });
        inner
            .update(|_| Ok::<_, ()>(()))
            .expect("compiling the declared state cannot fail");
        let as_registered: Arc<dyn RegisteredEvent> = inner.clone();
        registry::register(Arc::downgrade(&as_registered), &inner.name)?;
        let event = Event { inner };
        crate::observe::declared(&event);
        let authority = EventAuthority::new(event.clone());
        Ok((event, authority))
    }
}

impl<A: Clone + Send + 'static, R: 'static> EventBuilder<A, R> {
    /// Makes the event asynchronous: a raise clones the arguments, takes the
    /// current table, and queues the whole dispatch as one job on the
    /// executor; inside that job asynchronous bindings run inline. The raise
    /// returns the default (handler or result) if the event has one, else
    /// [`RaiseError::Deferred`](crate::RaiseError::Deferred).
    pub fn asynchronous(mut self) -> Self {
        self.defer = Some(defer_dispatch::<A, R>);
        self
    }
}
