//! Strand core service: Spindle's kernel threads, the scheduler as a set of
//! events, and synchronisation.
//!
//! A *strand* is a kernel thread: its own stack (with an unmapped guard
//! page below it) and saved registers, run by the CPU until it blocks,
//! yields, exits, or its quantum ends. Strands are named by a [`StrandId`]
//! and controlled through capabilities minted only by this service
//! ([`Strand`], [`Waker`], [`Policy`]; see [`service`]).
//!
//! # The scheduler is events
//!
//! As in SPIN, the scheduler and the thread package talk through events
//! that the service owns and the kernel declares at boot:
//! `Strand.Block` / `Strand.Unblock` (to the scheduler), `Strand.Checkpoint`
//! / `Strand.Resume` (the thread package: a strand switched out / in), and
//! `Sched.PickNext`, which asks a policy which of its ready strands runs
//! next. The built-in preemptive round-robin is the original handler of
//! `Sched.PickNext`; an extension replaces it for the strands that opt into
//! its policy by registering a policy ([`register_policy`]) and handling
//! the event, and augments the service by observing the signals. See
//! [`events`] for the table and the authority rules (imposed guards so that
//! a scheduler sees only its own strands).
//!
//! # Every strand accounted for
//!
//! The service keeps the authoritative state — the [`table`] of strands
//! and each CPU's [`queue`] — and changes it before it raises a signal.
//! Handlers receive copies; a policy's only influence is its answer to
//! `Sched.PickNext`, which the service validates ([`table::StrandTable::commit`]):
//! a strand that does not exist, is not ready, or belongs to another class
//! is refused and round-robin's choice runs instead. Retiring a policy
//! (its extension unloaded, or failed in `init`) moves its strands back to
//! round-robin in one step under the table's lock. Hence no answer and no
//! failure of a policy can lose or duplicate a strand, and the model-based
//! tests (`tests/model.rs`) check the invariants after every step of random
//! histories, including hostile policies.
//!
//! # Concurrency
//!
//! The kernel holds the table under one spin lock taken with interrupts
//! disabled, and each CPU's run queue under its own, always taken after the
//! table's (a fixed order, so no deadlock). Events are raised with neither
//! lock held, so handlers may call back into the service (query strands,
//! wake one); they run with interrupts disabled and must not block.
//! `Sched.PickNext` is raised between two critical sections: the first
//! computes its arguments, the second validates the answer against the
//! state at that moment, so a change in between (a handler woke a strand)
//! is harmless. On one CPU with interrupts disabled nothing else runs in
//! between; on several, the validation is what keeps a strand from being
//! picked twice.
//!
//! The [`sync`] primitives are built on block/wake with pending-wakeup
//! semantics; see that module for why no wakeup is lost.
//!
//! This crate is safe code and compiles for the host: the table, the
//! queues, the policy validation and the synchronisation primitives are
//! tested there (the latter on real threads through a test platform).
#![cfg_attr(not(test), no_std)]
#![forbid(unsafe_code)]
#![warn(missing_docs)]

extern crate alloc;

pub mod error;
pub mod events;
pub mod id;
pub mod queue;
pub mod service;
pub mod sync;
pub mod table;

pub use error::{PolicyError, StrandError};
pub use events::{
    BLOCK_EVENT, CHECKPOINT_EVENT, Candidate, Cause, KernelEvents, PICK_NEXT_EVENT, Pick, PickArgs,
    RESUME_EVENT, Signal, StrandEvents, StrandSignal, UNBLOCK_EVENT,
};
pub use id::{BlockReason, CpuId, ExitReason, PolicyId, PolicyInfo, State, StrandId, StrandInfo};
pub use queue::{QueueKey, RunQueue};
pub use service::{
    Builder, DEFAULT_STACK_SIZE, JoinHandle, Platform, Policy, Run, SpawnRequest, Strand, Waker,
    block, can_block, current, current_waker, info, list, now_ns, policies, policy_named,
    policy_of_principal, register_policy, sleep, sleep_until_ns, yield_now,
};
pub use sync::{Condvar, Mutex, MutexGuard, Semaphore};
pub use table::{MAX_TICKETS, ROUND_ROBIN_NAME, StrandTable};
