//! One binding as a raise calls it: guards and handler monomorphised into
//! one object behind one virtual call (`Callable`).
//!
//! `Specialised<A, G, H>` is built at install time from the installer's
//! concrete handler type `H` and guard chain `G`, so a raise reaches the
//! handler through a single indirect call whose body checks the guards and
//! calls the handler inline. Guards imposed by the authority after install
//! wrap the object (`WithImposed`); a hot-swapped handler shares the old
//! object's guards (`Callable::swap`). Each object counts its calls and the
//! installer's alive binding objects.

use alloc::sync::Arc;
use core::sync::atomic::{AtomicU64, Ordering};

use crate::binding::{Guard, Handler};
use crate::principal::AliveToken;

/// A binding's guards and handler, called by raises.
pub(crate) trait Callable<A, R>: Send + Sync {
    /// Checks the guards; if all hold, counts the call and runs the handler.
    fn call(&self, args: &A) -> Option<R>;
    /// Whether all guards hold.
    fn holds(&self, args: &A) -> bool;
    /// Counts the call and runs the handler (guards already checked).
    fn run(&self, args: &A) -> R;
    /// Handler calls so far.
    fn calls(&self) -> u64;
    /// The same binding (guards, call count) with another handler.
    fn swap(&self, handler: Handler<A, R>, alive: AliveToken) -> Shared<A, R>;
}

/// A step as shared by tables: the binding's callable object.
pub(crate) type Shared<A, R> = Arc<dyn Callable<A, R>>;

/// A chain of guards known at compile time; see
/// [`BindingBuilder::guard`](crate::BindingBuilder::guard).
pub trait Guards<A>: Send + Sync + 'static {
    /// Whether every guard holds for `args`.
    fn hold(&self, args: &A) -> bool;
}

/// No guard: always holds.
#[derive(Clone, Copy, Debug, Default)]
pub struct NoGuards;

impl<A> Guards<A> for NoGuards {
    #[inline(always)]
    fn hold(&self, _args: &A) -> bool {
        true
    }
}

/// The guards `G`, then `F`.
#[derive(Clone, Copy, Debug)]
pub struct AndGuard<G, F>(pub(crate) G, pub(crate) F);

impl<A, G: Guards<A>, F: Fn(&A) -> bool + Send + Sync + 'static> Guards<A> for AndGuard<G, F> {
    #[inline(always)]
    fn hold(&self, args: &A) -> bool {
        self.0.hold(args) && (self.1)(args)
    }
}

/// Counts one call with a relaxed load and store (no locked instruction):
/// exact on one CPU, may under-count calls truly concurrent on several.
#[inline(always)]
pub(crate) fn bump(counter: &AtomicU64) {
    counter.store(
        counter.load(Ordering::Relaxed).wrapping_add(1),
        Ordering::Relaxed,
    );
}

/// A binding's handler `H` with its guards `G`, specialised.
///
/// The guards sit in their own allocation, shared with the object a hot
/// swap makes (same guards, new handler), so that swapping frees the old
/// handler at once.
pub(crate) struct Specialised<A, G, H> {
    calls: AtomicU64,
    guards: Arc<G>,
    handler: H,
    /// Counts the object for its installer; last, so it drops after the
    /// closures.
    _alive: AliveToken,
    _args: core::marker::PhantomData<fn(&A)>,
}

impl<A, G, H> Specialised<A, G, H> {
    pub(crate) fn new(handler: H, guards: Arc<G>, calls: u64, alive: AliveToken) -> Self {
        Specialised {
            calls: AtomicU64::new(calls),
            guards,
            handler,
            _alive: alive,
            _args: core::marker::PhantomData,
        }
    }
}

impl<A, R, G, H> Callable<A, R> for Specialised<A, G, H>
where
    A: 'static,
    R: 'static,
    G: Guards<A>,
    H: Fn(&A) -> R + Send + Sync + 'static,
{
    #[inline]
    fn call(&self, args: &A) -> Option<R> {
        if !self.guards.hold(args) {
            return None;
        }
        bump(&self.calls);
        Some((self.handler)(args))
    }

    fn holds(&self, args: &A) -> bool {
        self.guards.hold(args)
    }

    fn run(&self, args: &A) -> R {
        bump(&self.calls);
        (self.handler)(args)
    }

    fn calls(&self) -> u64 {
        self.calls.load(Ordering::Relaxed)
    }

    fn swap(&self, handler: Handler<A, R>, alive: AliveToken) -> Shared<A, R> {
        Arc::new(Swapped(Specialised::new(
            handler,
            Arc::clone(&self.guards),
            self.calls(),
            alive,
        )))
    }
}

/// A hot-swapped handler (type-erased) behind the binding's guards `G`.
pub(crate) struct Swapped<A, R, G>(Specialised<A, G, Handler<A, R>>);

impl<A, R, G> Callable<A, R> for Swapped<A, R, G>
where
    A: 'static,
    R: 'static,
    G: Guards<A>,
{
    fn call(&self, args: &A) -> Option<R> {
        if !self.0.guards.hold(args) {
            return None;
        }
        Some(self.run(args))
    }

    fn holds(&self, args: &A) -> bool {
        self.0.guards.hold(args)
    }

    fn run(&self, args: &A) -> R {
        bump(&self.0.calls);
        (self.0.handler)(args)
    }

    fn calls(&self) -> u64 {
        self.0.calls.load(Ordering::Relaxed)
    }

    fn swap(&self, handler: Handler<A, R>, alive: AliveToken) -> Shared<A, R> {
        Arc::new(Swapped(Specialised::new(
            handler,
            Arc::clone(&self.0.guards),
            self.calls(),
            alive,
        )))
    }
}

/// A guard imposed by the event's authority, checked before the binding's
/// own guards: at install (by the authorizer) or later
/// ([`EventAuthority::impose_guard`](crate::EventAuthority::impose_guard),
/// which counts it as one more binding object).
pub(crate) struct WithImposed<A, R> {
    guard: Arc<Guard<A>>,
    inner: Shared<A, R>,
    _alive: Option<AliveToken>,
}

impl<A, R> WithImposed<A, R> {
    pub(crate) fn new(
        guard: Arc<Guard<A>>,
        inner: Shared<A, R>,
        alive: Option<AliveToken>,
    ) -> Self {
        WithImposed {
            guard,
            inner,
            _alive: alive,
        }
    }
}

impl<A: 'static, R: 'static> Callable<A, R> for WithImposed<A, R> {
    fn call(&self, args: &A) -> Option<R> {
        if (self.guard)(args) {
            self.inner.call(args)
        } else {
            None
        }
    }

    fn holds(&self, args: &A) -> bool {
        (self.guard)(args) && self.inner.holds(args)
    }

    fn run(&self, args: &A) -> R {
        self.inner.run(args)
    }

    fn calls(&self) -> u64 {
        self.inner.calls()
    }

    fn swap(&self, handler: Handler<A, R>, alive: AliveToken) -> Shared<A, R> {
        let own = self._alive.as_ref().map(|_| alive.duplicate());
        let inner = self.inner.swap(handler, alive);
        Arc::new(WithImposed::new(Arc::clone(&self.guard), inner, own))
    }
}
