//! The owner's capability over one event: [`EventAuthority`].

use alloc::sync::Arc;
use alloc::vec::Vec;
use core::fmt;

use super::{Event, EventInner};
use crate::authorize::{Authorizer, Decision, InstallRequest};
use crate::binding::{BindingId, Handler};
use crate::error::BindingError;
use crate::executor::Executor;
use crate::registry::BindingInfo;
use crate::table::ResultHandler;
use crate::time_bounds::OverrunHandler;

/// The owner's capability over one event.
///
/// Invariants: given only to the declarer by `EventBuilder::declare`; not
/// `Clone`. Every change it makes is atomic with respect to raises (it
/// publishes a new plan). Its methods take the event's writer lock: call
/// them from thread context.
pub struct EventAuthority<A: 'static, R: 'static> {
    event: Event<A, R>,
}

impl<A: 'static, R: 'static> fmt::Debug for EventAuthority<A, R> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("EventAuthority")
            .field("event", &&*self.event.inner.name)
            .finish()
    }
}

impl<A: 'static, R: 'static> EventAuthority<A, R> {
    pub(crate) fn new(event: Event<A, R>) -> Self {
        EventAuthority { event }
    }

    /// A handle to the event.
    pub fn event(&self) -> Event<A, R> {
        self.event.clone()
    }

    fn inner(&self) -> &EventInner<A, R> {
        &self.event.inner
    }

    /// Uninstalls any binding of this event.
    pub fn uninstall(&self, id: BindingId) -> Result<(), BindingError> {
        self.inner().uninstall(id)
    }

    /// Registers the authorizer consulted for installs by principals other
    /// than the owner (replacing any previous one).
    pub fn set_authorizer(
        &self,
        authorizer: impl Fn(&InstallRequest<'_>) -> Decision<A> + Send + Sync + 'static,
    ) {
        let authorizer: Authorizer<A> = Arc::new(authorizer);
        self.inner()
            .set(|writer| writer.authorizer = Some(authorizer));
    }

    /// Removes the authorizer: only the owner may install again.
    pub fn clear_authorizer(&self) {
        self.inner().set(|writer| writer.authorizer = None);
    }

    /// Adds a guard to an installed binding, checked before its other
    /// guards.
    pub fn impose_guard(
        &self,
        id: BindingId,
        guard: impl Fn(&A) -> bool + Send + Sync + 'static,
    ) -> Result<(), BindingError> {
        self.inner().impose_guard(id, alloc::boxed::Box::new(guard))
    }

    /// Atomically replaces a binding's handler (hot swap); see
    /// `Binding::swap_handler`.
    pub fn swap_handler(
        &self,
        id: BindingId,
        handler: impl Fn(&A) -> R + Send + Sync + 'static,
    ) -> Result<(), BindingError> {
        self.inner().swap_handler(id, Arc::new(handler))
    }

    /// Sets the quantum for ephemeral bindings. It is
    /// recorded on each binding when it is installed: changing it affects
    /// later installs only. `None` refuses new ephemeral bindings.
    pub fn set_quantum(&self, quantum: Option<crate::time_bounds::Micros>) {
        self.inner().set(|writer| writer.quantum = quantum);
    }

    /// Sets the result handler: the raise's result is
    /// `combine(...combine(combine(r1, r2), r3)..., rn)` over the results of
    /// the handlers that ran synchronously, in order.
    pub fn set_result_handler(&self, combine: impl Fn(R, R) -> R + Send + Sync + 'static) {
        let combine: ResultHandler<R> = Arc::new(combine);
        self.inner().set(|writer| writer.result = Some(combine));
    }

    /// Removes the result handler: the last handler's result is returned.
    pub fn clear_result_handler(&self) {
        self.inner().set(|writer| writer.result = None);
    }

    /// Sets the default handler, called with the arguments when no handler
    /// ran synchronously.
    pub fn set_default_handler(&self, handler: impl Fn(&A) -> R + Send + Sync + 'static) {
        let handler: Handler<A, R> = Arc::new(handler);
        self.inner().set(|writer| writer.default = Some(handler));
    }

    /// Sets a default result, returned (cloned) when no handler ran
    /// synchronously.
    pub fn set_default_result(&self, result: R)
    where
        R: Clone + Send + Sync,
    {
        self.set_default_handler(move |_| result.clone());
    }

    /// Removes the default handler or result.
    pub fn clear_default(&self) {
        self.inner().set(|writer| writer.default = None);
    }

    /// The original handler, e.g. for a replacement to call through to.
    pub fn original(&self) -> Option<Handler<A, R>> {
        self.inner()
            .original
            .as_ref()
            .map(|original| Arc::clone(original.arc()))
    }

    /// Takes the original handler out of the dispatch (`false`) or puts it
    /// back (`true`), keeping its place in the order.
    pub fn set_original_enabled(&self, enabled: bool) {
        self.inner().set(|writer| writer.original_enabled = enabled);
    }

    /// Sets (or with `None` removes) the event's own executor.
    pub fn set_executor(&self, executor: Option<Arc<dyn Executor>>) {
        self.inner().set(|writer| writer.executor = executor);
    }

    /// Sets the callback told about every quantum overrun of this event's
    /// ephemeral handlers; it may run in interrupt context.
    pub fn set_overrun_handler(&self, handler: impl Fn(&crate::Overrun) + Send + Sync + 'static) {
        let handler: OverrunHandler = Arc::new(handler);
        self.inner().set(|writer| writer.on_overrun = Some(handler));
    }

    /// The bindings in dispatch order, including the original handler.
    pub fn bindings(&self) -> Vec<BindingInfo> {
        self.inner().binding_infos()
    }
}
