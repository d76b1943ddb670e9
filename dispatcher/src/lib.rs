//! Spindle's central event dispatcher.
//!
//! SPIN's event model (Bershad et al., SOSP'95; Pardyak & Bershad,
//! OSDI'96), typed and safe: services declare *events*, extensions install
//! *handlers* on them, and raising an event is a procedure call routed
//! through a dispatch plan specialised to the handlers currently installed.
//! Everything is checked by the compiler: a handler of `Event<A, R>` is a
//! `Fn(&A) -> R`, a guard a `Fn(&A) -> bool`; there is no `Any` and no
//! run-time cast. The crate is `no_std` + `alloc` and contains no `unsafe`.
//!
//! # Concepts
//!
//! * An [`Event<A, R>`] is declared once by its owner ([`Event::declare`],
//!   [`Event::builder`]) with a dotted name and an optional *original
//!   handler*. The owner receives the [`EventAuthority`], its capability
//!   over the event.
//! * Installing a handler ([`Event::binding`], [`Event::install`]) needs a
//!   [`Principal`], an unforgeable installer identity minted only by the
//!   kernel's [`PrincipalIssuer`]. By default only the owner may install;
//!   the owner's authorizer ([`EventAuthority::set_authorizer`]) sees each
//!   [`InstallRequest`] and returns a [`Decision`]: deny, allow, or allow
//!   with imposed guards / placement.
//! * An install returns a [`Binding`] capability, which uninstalls or
//!   hot-swaps that binding. The authority can do so for any binding, and
//!   the kernel can revoke everything a principal installed
//!   ([`PrincipalIssuer::revoke`]) when it unloads an extension.
//! * Bindings have guards (all must hold), imposed guards (checked first),
//!   a [`Position`] (`First`/`Middle`/`Last`), `before`/`after` constraints,
//!   `Cancel`, an optional *key* (hash-indexed: choosing among thousands of
//!   keyed bindings is O(1)), and may be asynchronous or ephemeral. The
//!   total order and how keyed and unkeyed bindings interleave are defined
//!   in [`order`].
//! * Results: a result handler folds the handlers' results; a default
//!   handler or default result applies when no handler ran synchronously;
//!   with neither, a raise returns a typed [`RaiseError`]. See
//!   [`Event::raise`] for the precise rule, including asynchronous handlers.
//! * Asynchronous events and handlers run through an [`Executor`]
//!   ([`executor`]); time-bounded (*ephemeral*) handlers are tracked against
//!   the event's quantum on a [`Clock`] and reported by the timer hook
//!   [`time_bounds::check_overruns`] or when they return ([`time_bounds`]).
//! * The [`registry`] lists every live event and its bindings, for the
//!   shell's `events` and `handlers EVENT`.
//!
//! # Raising and concurrency
//!
//! * **Fast path.** While the original handler is the only handler (no
//!   binding, event not asynchronous), a raise is one `Acquire` load of a
//!   flag, a relaxed counter update and a direct call of the original: no
//!   reference count, no lock, no read-modify-write.
//! * **General path.** Every change (install, uninstall, swap, authority
//!   setting) produces a new immutable dispatch plan (ordered unkeyed
//!   bindings, key index, result/default handlers, executor) and publishes
//!   it through a two-slot copy-on-write cell (next section); writers are
//!   serialized by a per-event spin mutex. A raise clones the
//!   current plan's `Arc` under a `try_read` of one of the two slots (never
//!   waiting: a writer holds at most one slot at a time) and runs it with no
//!   lock held, so handlers may raise, install and uninstall freely. Each
//!   update is atomic with respect to raises: a raise sees the bindings
//!   either before or after it, never a mix. The plan's bindings are kept in
//!   chunks of at most 16 shared between successive plans, so an update
//!   copies one chunk and shares the rest: installing or uninstalling costs
//!   `O(16 + n / 16)` reference-count updates rather than `O(n)` (when there
//!   are before/after constraints, or for keyed bindings, the update is
//!   linear instead). Four atomic read-modify-writes per raise (slot lock
//!   and unlock, `Arc` clone and drop) are the price of a fully safe,
//!   re-entrant, interrupt-safe read path; see the crate's README for
//!   measurements.
//! * Writer operations (install, uninstall, swap, authority setters,
//!   revocation, registry listings) take spin locks: call them from thread
//!   context (or from an asynchronous handler), not from interrupt handlers.
//!   Raises may be called anywhere, including interrupt handlers.
//! * When a raise holds the last reference to a replaced plan, dropping it
//!   frees memory (and may drop uninstalled binding closures) in the
//!   raising context, possibly an interrupt handler; the kernel's allocator
//!   disables interrupts around its lock, so this is safe.
//!
//! # Why a raise never deadlocks and is linearizable
//!
//! The current plan is kept in **two** slots, each a `spin::RwLock<Arc<Plan>>`.
//! A writer (holding the event's writer mutex) replaces slot 0, then slot 1:
//! for each it first *claims* the slot (the lock's upgradeable bit, which
//! turns new readers away at once), waits for the readers already inside
//! (each holds the lock for one `Arc` clone), and swaps the pointer. A raise
//! does `try_read` on slot 0, then slot 1, clones the `Arc` and releases the
//! lock before running any handler.
//!
//! * *No deadlock.* A raise never blocks: `try_read` fails at once on a
//!   claimed or write-locked slot. A writer claims at most one slot at a
//!   time and runs no foreign code meanwhile, so a raise in an interrupt
//!   handler that interrupted a writer always finds the other slot free.
//!   A writer never waits for a raise on its own CPU (a raise holds a read
//!   lock only across one `Arc` clone). A raise on another CPU retries only
//!   while a writer there is making progress (lock-free, not wait-free).
//! * *Linearizable.* Write `k` takes effect when it releases slot 0 (slot 0
//!   then holds plan `Pk`; slot 1 is updated before write `k + 1` can
//!   start). A raise reading slot 0 gets the latest plan at that instant. A
//!   raise reading slot 1 found slot 0 taken by write `k` a moment before:
//!   slot 1 then held `P(k-1)`, the latest plan at that moment, or a later
//!   plan `Pj` stored in between, which was the latest right after write
//!   `j` stored it. Either way the plan was the latest at an instant within
//!   the raise. (This relies on the real-time order of the lock words'
//!   read-modify-writes, which x86's locked instructions provide.)
//! * *The fast path* keeps the same guarantee: the flag is cleared *before*
//!   publishing a plan that leaves the fast path and set *after* publishing
//!   one that returns to it.
//!
//! The concurrency test (`tests/concurrency.rs`) checks raises racing
//! installs and uninstalls against a linearizable model.
//!
//! # Unloading extensions safely
//!
//! A binding object (handler, guards, closures, whose code and data live in
//! the extension's memory) is reference-counted and only ever freed by
//! ordinary Rust drops: nothing is leaked and nothing is freed early. Each
//! principal counts its live binding objects
//! ([`Principal::alive_binding_objects`]); a raise in progress, a queued
//! asynchronous job or a swapped-out handler still holding one keeps it
//! counted. To unload an extension the kernel calls
//! [`PrincipalIssuer::revoke`] and then waits until the count is 0 before
//! unmapping the extension's memory. Revoking the owner of an event also
//! *retires* the event (all bindings, original and owner-supplied closures
//! are dropped from it; raises return [`RaiseError::Retired`]); the
//! extension should still drop its own `Event`/`EventAuthority` handles in
//! its unload routine, since the event's original handler is kept by the
//! event object until the last handle goes.
//!
//! # Example
//!
//! ```
//! use dispatcher::{Event, PrincipalIssuer};
//!
//! let issuer = PrincipalIssuer::take().expect("first and only take");
//! let kernel = issuer.issue("kernel");
//! let (tick, _authority) =
//!     Event::<u64, ()>::declare("Clock.Tick", &kernel, |_now| ()).unwrap();
//! let counter = std::sync::Arc::new(std::sync::atomic::AtomicU64::new(0));
//! let seen = counter.clone();
//! let binding = tick
//!     .binding(move |&now| seen.store(now, std::sync::atomic::Ordering::Relaxed))
//!     .guard(|&now| now % 2 == 0)
//!     .install(&kernel)
//!     .unwrap();
//! tick.raise(&4).unwrap();
//! assert_eq!(counter.load(std::sync::atomic::Ordering::Relaxed), 4);
//! binding.uninstall().unwrap();
//! ```
//!
//! # Kernel wiring
//!
//! How the kernel declares `Clock.Tick`, raises it from the timer interrupt
//! and lists events for the shell (`spin::Once` in the kernel; `OnceLock`
//! here so that the example runs on the host):
//!
//! ```
//! use std::sync::{Arc, OnceLock, atomic::{AtomicU64, Ordering}};
//! use dispatcher::{Clock, Event, EventAuthority, PrincipalIssuer, registry, time_bounds};
//!
//! static TICK: OnceLock<(Event<u64, ()>, EventAuthority<u64, ()>)> = OnceLock::new();
//! static TICKS: AtomicU64 = AtomicU64::new(0);
//! struct Ticks;
//! impl Clock for Ticks { fn now(&self) -> u64 { TICKS.load(Ordering::Relaxed) } }
//!
//! // Boot, before any extension runs:
//! let issuer = PrincipalIssuer::take().expect("taken once, at boot");
//! let kernel = issuer.issue("kernel");
//! // Kernel-only operations take the kernel's capability.
//! let capability = issuer.kernel_capability();
//! let declared = Event::<u64, ()>::builder("Clock.Tick")
//!     .original(|&_tick| { /* scheduler bookkeeping */ })
//!     .default_result(())
//!     .quantum(2)
//!     .declare(&kernel)
//!     .expect("declared once");
//! TICK.set(declared).ok();
//! time_bounds::set_clock(capability, Arc::new(Ticks)).ok();
//!
//! // Timer interrupt handler: no lock, no allocation on the fast path.
//! let now = TICKS.fetch_add(1, Ordering::Relaxed) + 1;
//! if let Some((tick, _)) = TICK.get() {
//!     let _ = tick.raise(&now);
//! }
//! time_bounds::check_overruns(capability, now, |o| eprintln!("{} overran in {}", o.binding, o.event));
//!
//! // Shell: `events` and `handlers Clock.Tick`.
//! for e in registry::events() {
//!     println!("{:<16} {:<8} {:>3} {:>8}", e.name, e.owner_name, e.bindings, e.raises);
//! }
//! let handlers = registry::bindings_of("Clock.Tick").expect("declared");
//! assert_eq!(handlers[0].id, dispatcher::BindingId::ORIGINAL);
//! assert_eq!(registry::event_info("Clock.Tick").unwrap().raises, 1);
//! ```
#![cfg_attr(target_os = "none", no_std)]
#![deny(unsafe_code)]
#![warn(missing_docs)]

extern crate alloc;

pub mod authorize;
pub mod binding;
pub mod capability;
pub mod error;
pub mod event;
pub mod executor;
pub mod observe;
pub mod order;
pub mod principal;
pub mod public_event;
mod rcu;
pub mod read_side;
pub mod registry;
pub mod step;
mod table;
pub mod time_bounds;

pub use authorize::{Authorizer, Decision, Imposition, InstallRequest};
pub use binding::{Binding, BindingBuilder, BindingId, BindingOptions, Guard, Handler};
pub use capability::KernelCapability;
pub use error::{BindingError, DeclareError, InstallError, RaiseError};
pub use event::{Declared, Event, EventAuthority, EventBuilder};
pub use executor::{Executor, Job, set_global_executor};
pub use order::{OrderError, Placement, Position};
pub use principal::{Principal, PrincipalId, PrincipalIssuer, Revocation};
pub use public_event::PublicEvent;
pub use read_side::{InterruptScope, MAX_RAISE_DEPTH};
pub use registry::{BindingInfo, EventInfo};
pub use step::{AndGuard, Guards, NoGuards};
pub use table::ResultHandler;
pub use time_bounds::{Clock, Detection, Overrun, TimeBounds};

#[cfg(test)]
pub(crate) mod test_support {
    use crate::{Principal, PrincipalIssuer};

    /// A principal from the unit tests' shared issuer.
    pub(crate) fn principal(name: &str) -> Principal {
        static ISSUER: spin::Once<PrincipalIssuer> = spin::Once::new();
        ISSUER
            .call_once(|| PrincipalIssuer::take().expect("unit tests take it first"))
            .issue(name)
    }
}
