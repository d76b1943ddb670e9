//! An event as the public sees it: handlers can be installed on it, but it
//! cannot be raised.
//!
//! An [`Event`] handle carries two rights: installing handlers (checked by
//! the event's authorizer) and raising the event. For the kernel's events
//! the second is the kernel's alone: an extension that could raise
//! `Console.Line` could run the shell's built-in commands (`shutdown`), and
//! one that could raise `Clock.Tick` would run the tick accounting. A
//! service publishes a [`PublicEvent`] instead, and its owner keeps the
//! `Event` to raise it.

use alloc::vec::Vec;
use core::fmt;

use crate::{
    Binding, BindingBuilder, BindingInfo, Event, EventInfo, InstallError, Principal, PrincipalId,
};

/// An event's install right without its raise right. See the
/// [module docs](self).
pub struct PublicEvent<A: 'static, R: 'static> {
    event: Event<A, R>,
}

impl<A: 'static, R: 'static> PublicEvent<A, R> {
    /// The install-only view of `event` (whoever holds the event may give
    /// this view away; it cannot be turned back into the event).
    pub fn new(event: Event<A, R>) -> Self {
        Self { event }
    }

    /// Starts building a binding of `handler` to this event (see
    /// [`Event::binding`]).
    pub fn binding<H>(&self, handler: H) -> BindingBuilder<'_, A, R, H>
    where
        H: Fn(&A) -> R + Send + Sync + 'static,
    {
        self.event.binding(handler)
    }

    /// Installs an unguarded binding (see [`Event::install`]).
    pub fn install(
        &self,
        principal: &Principal,
        handler: impl Fn(&A) -> R + Send + Sync + 'static,
    ) -> Result<Binding<A, R>, InstallError> {
        self.event.install(principal, handler)
    }

    /// The event's name.
    pub fn name(&self) -> &str {
        self.event.name()
    }

    /// The owner's principal id.
    pub fn owner(&self) -> PrincipalId {
        self.event.owner()
    }

    /// Raises so far.
    pub fn raises(&self) -> u64 {
        self.event.raises()
    }

    /// A summary of the event.
    pub fn info(&self) -> EventInfo {
        self.event.info()
    }

    /// Its bindings in dispatch order.
    pub fn bindings(&self) -> Vec<BindingInfo> {
        self.event.bindings()
    }
}

impl<A: 'static, R: 'static> Clone for PublicEvent<A, R> {
    fn clone(&self) -> Self {
        Self {
            event: self.event.clone(),
        }
    }
}

impl<A: 'static, R: 'static> fmt::Debug for PublicEvent<A, R> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("PublicEvent")
            .field("name", &self.name())
            .finish()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::test_support::principal;

    #[test]
    fn the_public_view_installs_and_the_owner_raises() {
        let owner = principal("Public.Owner");
        let (event, _authority) = Event::<u32, u32>::builder("Public.View")
            .original(|&x| x)
            .result_handler(|a, b| a + b)
            .declare(&owner)
            .unwrap();
        let public = PublicEvent::new(event.clone());
        let binding = public.binding(|&x| 10 * x).install(&owner).unwrap();
        assert_eq!(public.name(), "Public.View");
        assert_eq!(public.bindings().len(), 2);
        assert_eq!(event.raise(&1), Ok(11));
        assert_eq!(public.raises(), 1);
        binding.uninstall().unwrap();
        assert_eq!(public.clone().bindings().len(), 1);
    }
}
