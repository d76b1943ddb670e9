//! Authorizers: the event owner's say over who may install what.
//!
//! By default only the event's owner may install handlers on it. The owner
//! may register an authorizer
//! ([`EventAuthority::set_authorizer`](crate::EventAuthority::set_authorizer));
//! it then sees every install request from any other principal and returns a
//! [`Decision`]: deny (with a reason), allow, or allow with impositions
//! (extra guards that run before the installer's own, a placement that
//! replaces the requested one, and/or a ban on `Cancel`). This is SPIN's
//! "secure binding": the check happens once, at install time; raises pay
//! only for the imposed guards.
//!
//! The authorizer runs in the installer's context, outside the event's
//! writer lock; it may not install on the same event.

use alloc::string::String;
use alloc::sync::Arc;
use alloc::vec::Vec;

use crate::binding::{BindingOptions, Guard};
use crate::order::Placement;
use crate::principal::PrincipalId;

/// What an authorizer is shown.
#[derive(Clone, Copy, Debug)]
pub struct InstallRequest<'a> {
    /// Who asks.
    pub principal: PrincipalId,
    /// The asking principal's name.
    pub principal_name: &'a str,
    /// The event's name.
    pub event: &'a str,
    /// The requested options.
    pub options: &'a BindingOptions,
}

/// An authorizer's answer.
pub enum Decision<A> {
    /// Install as requested.
    Allow,
    /// Refuse; the installer gets
    /// [`InstallError::Denied`](crate::InstallError::Denied) with this reason.
    Deny(String),
    /// Install with the given impositions.
    Impose(Imposition<A>),
}

/// What an authorizer adds to, or changes in, a binding it allows.
pub struct Imposition<A> {
    pub(crate) guards: Vec<Guard<A>>,
    pub(crate) placement: Option<Placement>,
    pub(crate) forbid_cancel: bool,
}

impl<A> Imposition<A> {
    /// No imposition yet.
    pub fn new() -> Self {
        Imposition {
            guards: Vec::new(),
            placement: None,
            forbid_cancel: false,
        }
    }

    /// Adds an imposed guard; imposed guards are checked before the
    /// installer's own.
    pub fn guard(mut self, guard: impl Fn(&A) -> bool + Send + Sync + 'static) -> Self {
        self.guards.push(alloc::boxed::Box::new(guard));
        self
    }

    /// Replaces the requested placement.
    pub fn placement(mut self, placement: Placement) -> Self {
        self.placement = Some(placement);
        self
    }

    /// Installs the binding without `Cancel` even if it was requested.
    pub fn forbid_cancel(mut self) -> Self {
        self.forbid_cancel = true;
        self
    }
}

impl<A> Default for Imposition<A> {
    fn default() -> Self {
        Imposition::new()
    }
}

/// An event's authorizer.
pub type Authorizer<A> = Arc<dyn Fn(&InstallRequest<'_>) -> Decision<A> + Send + Sync>;
