//! Spindle's central event dispatcher.
//!
//! SPIN's event model (Bershad et al., SOSP'95; Pardyak & Bershad,
//! OSDI'96), typed and safe: services declare *events*, extensions install
//! *handlers* on them, and raising an event is a procedure call routed
//! through a dispatch table specialised to the handlers currently installed.
//! Everything is checked by the compiler: a handler of `Event<A, R>` is a
//! `Fn(&A) -> R`, a guard a `Fn(&A) -> bool`; there is no `Any` and no
//! run-time cast. The crate is `no_std` + `alloc` on the kernel target
//! (it uses `std` on a host for thread-local read state); its only
//! `unsafe` is the read side's module, `rcu`, argued below.
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
//! * **Tables.** Every change (install, uninstall, swap, authority setting)
//!   compiles the event's state into a new immutable *table*: a flat array
//!   of steps in dispatch order, a hash index for keyed bindings, and the
//!   result and default handlers. A step is one *specialised* object per
//!   binding (`step::Specialised<A, G, H>`): the installer's guard chain `G`
//!   and handler `H` are concrete types, so a raise reaches guards and
//!   handler through one indirect call. The table is published with one
//!   atomic pointer swap; writers are serialized by a per-event spin lock.
//!   An update is linear in the number of bindings.
//! * **Raise.** A raise opens a *read section* (it stores depth + 1 in its
//!   context's cell: a thread's on a host, the CPU's in the kernel, where
//!   strands park theirs on a switch), loads the table pointer, and walks
//!   the array with no lock held: no reference count, no locked
//!   instruction. Handlers may raise, install and uninstall freely. While
//!   the original handler is the only handler, a raise reads no table: it
//!   is one nesting level (the depth store, no section), the flag load, the
//!   count and a call of the original, which the event itself owns.
//! * **Nesting.** A raise nested more than [`MAX_RAISE_DEPTH`] deep in one
//!   strand or thread returns [`RaiseError::TooDeep`] before running
//!   anything, whether it goes through bindings or the original alone; the
//!   depth is the one the read section keeps, so the check is the compare
//!   before its store (the same compare sends contexts that need a full
//!   fence to the out-of-line path).
//! * **Writers** take spin locks: call them from thread context (or from an
//!   asynchronous handler). The kernel marks interrupt handlers
//!   ([`read_side::InterruptScope`]); there, writers return
//!   [`InstallError::InInterrupt`] / [`BindingError::InInterrupt`] instead
//!   of risking a deadlock with the code they interrupted (authority
//!   setters do nothing). Raises may be called anywhere.
//! * **Reclamation.** A replaced table is retired and freed after a grace
//!   period (next section): by the writer right after the update when no
//!   raise is in progress, else later, by the next update or by
//!   [`Principal::alive_binding_objects`], [`PrincipalIssuer::revoke`] and
//!   [`read_side::synchronize`], which wait a bounded time for other
//!   threads. Freeing a table may drop uninstalled binding closures in that
//!   context.
//!
//! # Why a raise is safe without reference counting
//!
//! The `unsafe` is in one module, `rcu`. A reader obtains `&Table` from a
//! raw pointer; the claim is that the table is not freed while that
//! reference lives. Notation: reader `R` in context `C` does `S` (store
//! depth + 1 into `C`'s cell), a light fence, `L` (load the table pointer),
//! uses the table, then `E` (a release fence and the store that closes the
//! section). Writer `W` does `X` (swap the pointer to the new table), the
//! heavy barrier `B`, and later a reclaimer does `V` (read `C`'s cell) and,
//! if `C` is seen outside the section, frees the old table `T`.
//!
//! 1. *Either `L` sees the new table or `V` sees `S`.* `B` is
//!    `membarrier(MEMBARRIER_CMD_PRIVATE_EXPEDITED)` on Linux hosts: it
//!    runs a full barrier on every CPU running a thread of the process, so
//!    for any reader either its `S` is globally visible before `B` returns
//!    (and `V`, after `B`, sees it or a later value of the cell), or the
//!    reader had not yet executed the fence between `S` and `L`, so `L`
//!    comes after `X` and reads the new table. (If the kernel refuses to
//!    register the barrier, readers use a `SeqCst` fence instead of the
//!    compiler fence; the decision is taken once, before any context gets
//!    a cell.) In the kernel there is one CPU and the reader and writer are
//!    interleaved by interrupts and strand switches on it: program order is
//!    the order, and a compiler fence suffices. Under Miri and loom both
//!    sides use `SeqCst` fences, which is what they can check.
//! 2. *`V` seeing `C` outside the section means `R` is done with `T`.*
//!    The reclaimer frees only if, for every context, the cell shows depth
//!    0, or its count of finished outermost sections has moved on since the
//!    reclaimer's first look (so a section open at that look has closed),
//!    and no strand is parked inside a raise. `E` is a release fence before
//!    the closing store and the reclaimer issues an acquire fence after
//!    `V`, so all of `R`'s reads of `T` happen before the free. A cell is
//!    written only by its own context (interrupts nest and restore it
//!    exactly; a strand switch parks and restores it), so a stale value can
//!    only make the reclaimer wait, never free early.
//! 3. *The reclaimer's own context.* A writer inside a raise (a handler
//!    that uninstalls) may be the reader of `T`: the reclaimer frees
//!    nothing while its own depth is not 0.
//! 4. *Raises without a section.* A raise of the original handler alone
//!    stores depth + 1 and restores the old word (no fence, no finished
//!    count): it reads no table, and the original belongs to the event,
//!    which the raiser's handle keeps alive. For the reclaimer such a level
//!    is indistinguishable from a section: it can only make it wait (depth
//!    above 0), never free early, since the finished count moves only when
//!    an outermost section ends, and any section nested in the level is not
//!    outermost.
//! 5. *One cell, one context.* A host thread takes its cell from the pool
//!    under the pool's lock and keeps it until it ends (a thread being torn
//!    down is lent one for a single raise): two contexts never write the
//!    same cell, which 2 relies on.
//! 6. *Handlers reached by address.* Steps and the original keep an `Arc`
//!    with its value's address beside it (`rcu::Pinned`): the address is
//!    taken once from the `Arc`, which the same object holds, so it is
//!    valid exactly as long as the `Arc` (and the table or event holding
//!    it) is.
//!
//! Linearizability: `X` is the update's linearization point. A raise that
//! starts after the update returned loads the new table (its `L` follows
//! `X` in real time; on the host the `AcqRel` swap and `Acquire` load order
//! it), and a raise in progress finishes with the table it loaded, so each
//! raise sees the bindings before or after an update, never a mix. The
//! solo flag (original handler only) is cleared before publishing a table
//! that leaves the solo path and set after publishing one that returns to
//! it. `tests/concurrency.rs` checks raises racing updates against a
//! linearizable model; `rcu`'s unit tests (also run under Miri) and its
//! loom model (`RUSTFLAGS="--cfg loom"`) check the reclamation.
//!
//! # Unloading extensions safely
//!
//! A binding object (handler, guards, closures, whose code and data live in
//! the extension's memory) is reference-counted and only ever freed by
//! ordinary Rust drops: nothing is leaked and nothing is freed early. Each
//! principal counts its live binding objects
//! ([`Principal::alive_binding_objects`]); a raise in progress, a retired
//! table waiting for its grace period or a queued asynchronous job still
//! holding one keeps it counted. To unload an extension the kernel calls
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
//! use dispatcher::{Clock, Event, EventAuthority, Micros, PrincipalIssuer, registry, time_bounds};
//!
//! static TICK: OnceLock<(Event<u64, ()>, EventAuthority<u64, ()>)> = OnceLock::new();
//! static TICKS: AtomicU64 = AtomicU64::new(0);
//! struct Ticks;
//! impl Clock for Ticks { fn now(&self) -> Micros { Micros(TICKS.load(Ordering::Relaxed)) } }
//!
//! // Boot, before any extension runs:
//! let issuer = PrincipalIssuer::take().expect("taken once, at boot");
//! let kernel = issuer.issue("kernel");
//! // Kernel-only operations take the kernel's capability.
//! let capability = issuer.kernel_capability();
//! let declared = Event::<u64, ()>::builder("Clock.Tick")
//!     .original(|&_tick| { /* scheduler bookkeeping */ })
//!     .default_result(())
//!     .quantum(Micros(2))
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
//! time_bounds::check_overruns(capability, Micros(now), |o| eprintln!("{} overran in {}", o.binding, o.event));
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
pub use time_bounds::{Clock, Detection, Micros, Overrun, TimeBounds};

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
