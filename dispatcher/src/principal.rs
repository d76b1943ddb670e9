//! Principals: the unforgeable identities of whoever installs handlers.
//!
//! A [`Principal`] names an installer (the kernel itself, or one loaded
//! extension). Its fields are private and the only constructor is
//! [`PrincipalIssuer::issue`]; the issuer itself can be obtained exactly once
//! per process through [`PrincipalIssuer::take`]. The kernel takes it at boot,
//! before any extension code runs, so an extension can only ever hold the
//! principal the kernel handed to it.
//!
//! The issuer is also the kernel's revocation capability: when an extension
//! is unloaded, [`PrincipalIssuer::revoke`] uninstalls every binding the
//! extension's principal installed, on every event, and forbids it to install
//! new ones. [`Principal::alive_binding_objects`] then tells the loader when
//! the last binding object (which owns closures whose code lives in the
//! extension's memory) has been dropped.

use alloc::sync::Arc;
use core::fmt;
use core::sync::atomic::{AtomicBool, AtomicU32, AtomicUsize, Ordering};

use crate::registry;

/// The numeric identity of a [`Principal`].
///
/// Ids are unique within one process: the issuer hands them out from a
/// counter and never reuses one. Knowing an id grants nothing; only a
/// [`Principal`] value can be used to install.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct PrincipalId(u32);

impl PrincipalId {
    /// The raw number, for display.
    pub fn as_u32(self) -> u32 {
        self.0
    }
}

impl fmt::Display for PrincipalId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "p{}", self.0)
    }
}

/// The state shared by every copy of one principal and by every binding
/// object it installed.
pub(crate) struct PrincipalState {
    pub(crate) id: PrincipalId,
    pub(crate) name: Arc<str>,
    /// Binding objects (handler + guards + closures) of this principal that
    /// have not been dropped yet. See [`AliveToken`].
    alive: AtomicUsize,
    /// Set once by [`PrincipalIssuer::revoke`]; installs are refused after.
    revoked: AtomicBool,
}

impl PrincipalState {
    pub(crate) fn is_revoked(&self) -> bool {
        self.revoked.load(Ordering::Acquire)
    }
}

/// An unforgeable installer identity.
///
/// Invariants: a `Principal` can only be created by
/// [`PrincipalIssuer::issue`]; every clone refers to the same identity (same
/// [`id`](Self::id), same alive-object counter, same revocation flag). Cloning
/// a principal does not create a new identity, so an extension may keep as
/// many copies of its own principal as it likes.
#[derive(Clone)]
pub struct Principal {
    pub(crate) state: Arc<PrincipalState>,
}

impl Principal {
    /// This principal's id.
    pub fn id(&self) -> PrincipalId {
        self.state.id
    }

    /// The name the kernel gave this principal (an extension's name, or
    /// `"kernel"`).
    pub fn name(&self) -> &str {
        &self.state.name
    }

    /// How many binding objects installed by this principal are still
    /// allocated.
    ///
    /// A binding is one such object (handler and guards, specialised),
    /// plus one per guard the authority imposed after install; for an
    /// extension their code and data live in the extension's memory. The
    /// count includes objects that are no longer installed but are still
    /// referenced by a raise in progress or a retired dispatch table
    /// waiting for its grace period, or by a pending asynchronous job.
    /// From thread context, the call first frees retired tables whose
    /// grace period is over (waiting briefly for other threads' raises).
    /// The loader must wait until this reaches 0 after [`PrincipalIssuer::revoke`]
    /// before it unmaps the extension. (The counter is decremented as the
    /// very last step of dropping the object; a CPU may still be executing
    /// the few instructions of drop glue that follow, so on SMP the loader
    /// should also wait for one quiescent state, e.g. every CPU passing
    /// through the scheduler, before reusing the memory.)
    pub fn alive_binding_objects(&self) -> usize {
        if !crate::rcu::in_interrupt() {
            crate::rcu::synchronize();
        }
        self.state.alive.load(Ordering::Acquire)
    }

    /// Whether [`PrincipalIssuer::revoke`] has been called for this principal.
    pub fn is_revoked(&self) -> bool {
        self.state.is_revoked()
    }

    pub(crate) fn alive_token(&self) -> AliveToken {
        AliveToken::new(&self.state)
    }
}

impl fmt::Debug for Principal {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Principal")
            .field("id", &self.state.id)
            .field("name", &&*self.state.name)
            .finish()
    }
}

impl PartialEq for Principal {
    fn eq(&self, other: &Self) -> bool {
        self.state.id == other.state.id
    }
}

impl Eq for Principal {}

/// Counts one live binding object for its principal.
///
/// Created together with the object and dropped as its *last* field, so the
/// count goes down only after the handler and guard closures have been
/// dropped.
pub(crate) struct AliveToken {
    state: Arc<PrincipalState>,
}

impl AliveToken {
    pub(crate) fn new(state: &Arc<PrincipalState>) -> Self {
        state.alive.fetch_add(1, Ordering::AcqRel);
        AliveToken {
            state: Arc::clone(state),
        }
    }

    /// A second token for the same principal (for a new object that
    /// replaces or accompanies the one holding `self`).
    pub(crate) fn duplicate(&self) -> AliveToken {
        AliveToken::new(&self.state)
    }
}

impl Drop for AliveToken {
    fn drop(&mut self) {
        self.state.alive.fetch_sub(1, Ordering::AcqRel);
    }
}

static ISSUER_TAKEN: AtomicBool = AtomicBool::new(false);
static NEXT_PRINCIPAL: AtomicU32 = AtomicU32::new(1);

/// The kernel's capability to mint principals and to revoke them.
///
/// Invariant: at most one `PrincipalIssuer` exists per process (it is not
/// `Clone` and [`take`](Self::take) succeeds once). Whoever holds it is the
/// kernel.
pub struct PrincipalIssuer {
    _private: (),
}

/// What [`PrincipalIssuer::revoke`] did.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Revocation {
    /// Bindings of the principal that were installed and are now uninstalled.
    pub uninstalled: usize,
    /// Binding objects of the principal still allocated right after the
    /// sweep (held by raises in progress, pending jobs, or old snapshots).
    pub still_alive: usize,
}

impl PrincipalIssuer {
    /// Takes the process's one issuer. Returns `None` on every call after
    /// the first.
    ///
    /// The kernel calls this at boot, before any extension runs.
    pub fn take() -> Option<PrincipalIssuer> {
        ISSUER_TAKEN
            .compare_exchange(false, true, Ordering::AcqRel, Ordering::Acquire)
            .ok()
            .map(|_| PrincipalIssuer { _private: () })
    }

    /// Mints a new principal with a fresh id and the given name.
    ///
    /// The name is copied; nothing keeps pointing into the caller's memory.
    pub fn issue(&self, name: &str) -> Principal {
        let id = PrincipalId(NEXT_PRINCIPAL.fetch_add(1, Ordering::Relaxed));
        Principal {
            state: Arc::new(PrincipalState {
                id,
                name: Arc::from(name),
                alive: AtomicUsize::new(0),
                revoked: AtomicBool::new(false),
            }),
        }
    }

    /// Revokes a principal: it may no longer install, and every binding it
    /// installed on any live event is uninstalled (each event's update is
    /// atomic with respect to raises of that event).
    ///
    /// After this returns, no raise that *starts* later calls one of the
    /// principal's handlers; raises already in progress may still do so, and
    /// [`Principal::alive_binding_objects`] tells when they are all done.
    /// Must be called from thread context (it takes each event's writer
    /// lock and the registry lock).
    pub fn revoke(&self, principal: &Principal) -> Revocation {
        // Set the flag first: an install that takes an event's writer lock
        // after our sweep passed that event sees it and is refused; one that
        // held the lock before is swept.
        principal.state.revoked.store(true, Ordering::Release);
        let mut uninstalled = 0;
        for event in registry::live_events() {
            uninstalled += event.revoke_principal(principal.id());
        }
        crate::rcu::synchronize();
        Revocation {
            uninstalled,
            still_alive: principal.alive_binding_objects(),
        }
    }
}

impl fmt::Debug for PrincipalIssuer {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("PrincipalIssuer")
    }
}
