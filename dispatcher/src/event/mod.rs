//! Events: the handle, and how a raise runs.
//!
//! * [`Event`] (this file): the handle; raising reads the event's current
//!   `Table` inside a read section (`rcu`).
//! * [`EventBuilder`] (`builder.rs`): declaring an event.
//! * [`EventAuthority`] (`authority.rs`): the owner's capability.
//! * `writer.rs`: the writer state, installs and uninstalls, and compiling
//!   it into a new table.
//! * `registered.rs`: the event as the registry lists and revokes it.

mod authority;
mod builder;
mod registered;
mod writer;

use alloc::sync::Arc;
use alloc::vec::Vec;
use core::fmt;
use core::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering};

pub use authority::EventAuthority;
pub use builder::{Declared, EventBuilder};

use crate::binding::BindingBuilder;
use crate::error::{InstallError, RaiseError};
use crate::principal::{Principal, PrincipalId};
use crate::rcu::{self, Published};
use crate::registry::{BindingInfo, EventInfo, RegisteredEvent};
use crate::step::{NoGuards, bump};
use crate::table::{DeferFn, Table};
use crate::time_bounds::TimeBoundsRef;
use writer::WriterState;

/// A typed event: raised with arguments `A`, producing a result `R`.
///
/// A cheap handle (an `Arc` inside): clone it freely, send it anywhere. The
/// event lives as long as any `Event` handle or its [`EventAuthority`]; it
/// then disappears from the [`registry`](crate::registry).
///
/// Events with several arguments use a tuple for `A`. Handlers and guards
/// take `&A`, so raising never moves or clones the arguments (except for
/// asynchronous dispatch, which clones them into the job).
///
/// A handler that captures an `Event` handle of its own event forms a
/// reference cycle (event -> binding -> closure -> event): the event then
/// stays alive until that binding is uninstalled (or its installer
/// revoked), which breaks the cycle.
pub struct Event<A: 'static, R: 'static> {
    pub(crate) inner: Arc<EventInner<A, R>>,
}

impl<A: 'static, R: 'static> Clone for Event<A, R> {
    fn clone(&self) -> Self {
        Event {
            inner: Arc::clone(&self.inner),
        }
    }
}

impl<A: 'static, R: 'static> fmt::Debug for Event<A, R> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Event")
            .field("name", &&*self.inner.name)
            .finish_non_exhaustive()
    }
}

/// The original handler as solo raises call it.
type PinnedHandler<A, R> = rcu::Pinned<dyn Fn(&A) -> R + Send + Sync>;

pub(crate) struct EventInner<A: 'static, R: 'static> {
    /// The table raises run, and (behind its writer lock) the state it is
    /// compiled from.
    table: Published<Table<A, R>, WriterState<A, R>>,
    /// `true` while the original handler is the only thing to run (no
    /// binding, not asynchronous, not retired): raises then call it
    /// directly, without reading the table.
    solo: AtomicBool,
    /// Raises that took the solo path (relaxed load + store); they are
    /// also the original's calls on that path.
    solo_raises: AtomicU64,
    /// Raises that ran the table (relaxed load + store).
    raises: AtomicU64,
    /// The original handler as callers may call it through
    /// ([`EventAuthority::original`]).
    original: Option<PinnedHandler<A, R>>,
    binding_count: AtomicUsize,
    name: Arc<str>,
    owner: Principal,
    key_of: Option<fn(&A) -> u64>,
    defer: Option<DeferFn<A, R>>,
    time_bounds: TimeBoundsRef,
}

impl<A: 'static, R: 'static> Drop for EventInner<A, R> {
    fn drop(&mut self) {
        // The registry and the observable list hold weak references to
        // this event, which keep its allocation until they are removed.
        crate::registry::prune_dead();
        crate::observe::prune_dead();
    }
}

impl<A: 'static, R: 'static> EventInner<A, R> {
    /// With the original handler alone, a raise is one nesting level (the
    /// depth limit), the flag load, the count and the call: no read
    /// section, since it reads no published table and the original lives
    /// as long as `self`. Anything else opens a section and runs the table,
    /// out of line.
    #[inline]
    fn raise(&self, args: &A) -> Result<R, RaiseError> {
        if self.solo.load(Ordering::Acquire)
            && let Some(original) = &self.original
        {
            return rcu::nested(
                || {
                    bump(&self.solo_raises);
                    Ok(original(args))
                },
                || Err(RaiseError::TooDeep),
            );
        }
        self.raise_table(args)
    }

    #[inline(never)]
    fn raise_table(&self, args: &A) -> Result<R, RaiseError> {
        rcu::read(
            |section| {
                bump(&self.raises);
                self.table.get(section).raise(args)
            },
            || Err(RaiseError::TooDeep),
        )
    }

    fn raises(&self) -> u64 {
        self.raises
            .load(Ordering::Relaxed)
            .wrapping_add(self.solo_raises.load(Ordering::Relaxed))
    }
}

impl<A: 'static, R: 'static> Event<A, R> {
    /// Starts declaring an event named `name` (dotted, e.g. `Strand.Block`).
    pub fn builder(name: &str) -> EventBuilder<A, R> {
        EventBuilder::new(name)
    }

    /// Declares an event with an original handler and nothing else.
    pub fn declare(
        name: &str,
        owner: &Principal,
        original: impl Fn(&A) -> R + Send + Sync + 'static,
    ) -> Result<Declared<A, R>, crate::DeclareError> {
        Event::builder(name).original(original).declare(owner)
    }

    /// Raises the event.
    ///
    /// Runs, in the event's order (see [`order`](crate::order)), every
    /// binding whose guards all hold, stopping after a `Cancel` binding that
    /// fired. The result is the fold of the results of the handlers that ran
    /// synchronously, by the result handler (`combine(acc, next)`, starting
    /// from the first result) or, without one, the last handler's result.
    /// If no handler ran synchronously, the default handler/result supplies
    /// it; without a default the raise returns
    /// [`RaiseError::NoHandlerFired`], or [`RaiseError::Deferred`] if
    /// handlers were queued on the executor. A raise nested more than
    /// [`MAX_RAISE_DEPTH`](crate::MAX_RAISE_DEPTH) deep in the same strand
    /// (or thread) returns [`RaiseError::TooDeep`] and runs nothing.
    ///
    /// Never waits and takes no lock: safe to call from interrupt handlers.
    /// The read side costs no locked instruction (see the crate docs).
    #[inline]
    pub fn raise(&self, args: &A) -> Result<R, RaiseError> {
        self.inner.raise(args)
    }

    /// Starts building a binding of `handler` to this event.
    pub fn binding<H>(&self, handler: H) -> BindingBuilder<'_, A, R, H, NoGuards>
    where
        H: Fn(&A) -> R + Send + Sync + 'static,
    {
        BindingBuilder::new(self, handler)
    }

    /// Installs an unguarded `Middle` binding for `principal`; shorthand for
    /// `self.binding(handler).install(principal)`.
    pub fn install(
        &self,
        principal: &Principal,
        handler: impl Fn(&A) -> R + Send + Sync + 'static,
    ) -> Result<crate::Binding<A, R>, InstallError> {
        self.binding(handler).install(principal)
    }

    /// The event's name.
    pub fn name(&self) -> &str {
        &self.inner.name
    }

    /// The owner's principal id.
    pub fn owner(&self) -> PrincipalId {
        self.inner.owner.id()
    }

    /// Raises so far (see [`EventInfo::raises`] for precision).
    pub fn raises(&self) -> u64 {
        self.inner.raises()
    }

    /// The event as the registry lists it.
    pub fn info(&self) -> EventInfo {
        self.inner.info()
    }

    /// The bindings in dispatch order, including the original handler.
    pub fn bindings(&self) -> Vec<BindingInfo> {
        self.inner.binding_infos()
    }
}
