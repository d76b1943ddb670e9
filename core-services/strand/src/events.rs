//! The events the strand service owns, their argument and result types, and
//! the authorizers the kernel installs on them.
//!
//! | event | raised | arguments | original handler |
//! |---|---|---|---|
//! | `Strand.Block` | a strand stopped being runnable: it blocked, or was killed while not running | [`StrandSignal`] | none needed (empty): the service keeps the queues |
//! | `Strand.Unblock` | a strand became runnable: spawned, or woken | [`StrandSignal`] | empty |
//! | `Strand.Checkpoint` | a strand is switched out (preempted, yielded, blocked, exited) | [`StrandSignal`] | empty |
//! | `Strand.Resume` | a strand is switched in | [`StrandSignal`] | empty |
//! | `Sched.PickNext` | a CPU needs the next strand of a policy's class | [`PickArgs`] → [`Pick`] | [`round_robin`]: the front of the class |
//!
//! SPIN's thread management is these two sets of signals: Block/Unblock to
//! the scheduler, Checkpoint/Resume to the thread package. Here the service
//! changes a strand's state and its run queue *first*, under its own lock,
//! and raises the signal after: the signals tell policies and observers
//! what happened; they cannot lose or duplicate a strand, because no
//! handler holds the authoritative state. A policy's only lever is its
//! answer to `Sched.PickNext`, and the service checks that answer (it must
//! name a ready strand of the policy's class on that CPU) before it
//! follows it; a wrong or missing answer is replaced by round-robin's.
//! The service publishes the events install-only ([`events`] hands out
//! [`PublicEvent`]s) and raises them itself ([`raise`], [`ask_policy`],
//! which take the kernel's capability): extensions install handlers but
//! cannot raise. (A raise would change nothing in the service anyway, the
//! state having changed first; it could only mislead other handlers.)
//!
//! **Authority.** The kernel declares the events with its principal and
//! installs the authorizers built here ([`signal_authorizer`],
//! [`pick_authorizer`]). A principal that registered a scheduling policy
//! is a *scheduler*: its bindings get an imposed guard so that they only
//! see the strands that opted into its policy, and only it may handle
//! `Sched.PickNext`, for its own class only. Other principals may observe
//! every strand's signals (a tracer, say). No binding may `Cancel`.
//!
//! Handlers run with interrupts disabled, often in the timer interrupt:
//! they must be short, must not block, and must not wait for a lock that
//! the strand they interrupted may hold (use `try_lock` and give up, see
//! [`sync`](crate::sync)).

use alloc::string::String;
use alloc::vec::Vec;

use dispatcher::{
    Decision, Event, Imposition, InstallRequest, KernelCapability, Placement, Position,
    PrincipalId, PublicEvent, RaiseError,
};

use crate::id::{BlockReason, CpuId, ExitReason, PolicyId, StrandId};

/// Dotted name of the block signal.
pub const BLOCK_EVENT: &str = "Strand.Block";
/// Dotted name of the unblock signal.
pub const UNBLOCK_EVENT: &str = "Strand.Unblock";
/// Dotted name of the switch-out signal.
pub const CHECKPOINT_EVENT: &str = "Strand.Checkpoint";
/// Dotted name of the switch-in signal.
pub const RESUME_EVENT: &str = "Strand.Resume";
/// Dotted name of the policy's decision event.
pub const PICK_NEXT_EVENT: &str = "Sched.PickNext";

/// What made the service raise a signal.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Cause {
    /// Created (`Strand.Unblock`).
    Spawned,
    /// Woken from a block (`Strand.Unblock`).
    Woken,
    /// Its quantum ran out (`Strand.Checkpoint`).
    Preempted,
    /// It gave up the CPU while still runnable (`Strand.Checkpoint`).
    Yielded,
    /// It blocked (`Strand.Block`, then `Strand.Checkpoint`).
    Blocked(BlockReason),
    /// It ended (`Strand.Checkpoint` if it was running, else `Strand.Block`).
    Exited(ExitReason),
    /// Chosen to run (`Strand.Resume`).
    Picked,
}

/// The arguments of the four `Strand.*` signals.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct StrandSignal {
    /// The strand concerned.
    pub strand: StrandId,
    /// Its CPU.
    pub cpu: CpuId,
    /// Its policy (the imposed guard of a scheduler compares this).
    pub policy: PolicyId,
    /// Its tickets.
    pub tickets: u32,
    /// Why the signal is raised.
    pub cause: Cause,
}

/// A ready strand of the class being asked about.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Candidate {
    /// The strand.
    pub strand: StrandId,
    /// Its tickets.
    pub tickets: u32,
}

/// The arguments of `Sched.PickNext`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct PickArgs {
    /// The CPU that needs a strand.
    pub cpu: CpuId,
    /// The class whose turn it is.
    pub policy: PolicyId,
    /// Round-robin's choice: the front of the class's queue.
    pub round_robin: StrandId,
    /// The class's ready strands in queue order (empty for the built-in
    /// round-robin class, which needs only the front).
    pub candidates: Vec<Candidate>,
}

/// A handler's answer to `Sched.PickNext`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Pick {
    /// Run this strand.
    Strand(StrandId),
    /// No opinion: let the next handler (in the end round-robin) decide.
    Pass,
}

impl Pick {
    /// The result handler of `Sched.PickNext`: the first answer that is not
    /// [`Pick::Pass`], in dispatch order (a scheduler's binding is placed
    /// `First`, before the original round-robin).
    pub fn combine(self, next: Pick) -> Pick {
        match self {
            Pick::Pass => next,
            chosen => chosen,
        }
    }
}

/// The original handler of `Sched.PickNext`: the built-in round-robin,
/// which takes the front of the class's queue.
pub fn round_robin(args: &PickArgs) -> Pick {
    Pick::Strand(args.round_robin)
}

/// The original handler of the four signals: nothing to do (the service
/// changed the state before raising).
pub fn signal_original(_signal: &StrandSignal) {}

/// The five events as the kernel declared them (it hands them to the
/// service with [`publish_events`]; they can be raised).
pub struct KernelEvents {
    /// `Strand.Block`.
    pub block: Event<StrandSignal, ()>,
    /// `Strand.Unblock`.
    pub unblock: Event<StrandSignal, ()>,
    /// `Strand.Checkpoint`.
    pub checkpoint: Event<StrandSignal, ()>,
    /// `Strand.Resume`.
    pub resume: Event<StrandSignal, ()>,
    /// `Sched.PickNext`.
    pub pick_next: Event<PickArgs, Pick>,
}

/// The five events as everyone sees them: handlers can be installed, the
/// events cannot be raised.
pub struct StrandEvents {
    /// `Strand.Block`.
    pub block: PublicEvent<StrandSignal, ()>,
    /// `Strand.Unblock`.
    pub unblock: PublicEvent<StrandSignal, ()>,
    /// `Strand.Checkpoint`.
    pub checkpoint: PublicEvent<StrandSignal, ()>,
    /// `Strand.Resume`.
    pub resume: PublicEvent<StrandSignal, ()>,
    /// `Sched.PickNext`.
    pub pick_next: PublicEvent<PickArgs, Pick>,
}

/// Which of the four signals.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Signal {
    /// `Strand.Block`.
    Block,
    /// `Strand.Unblock`.
    Unblock,
    /// `Strand.Checkpoint`.
    Checkpoint,
    /// `Strand.Resume`.
    Resume,
}

impl KernelEvents {
    /// The event of one signal.
    fn signal(&self, which: Signal) -> &Event<StrandSignal, ()> {
        match which {
            Signal::Block => &self.block,
            Signal::Unblock => &self.unblock,
            Signal::Checkpoint => &self.checkpoint,
            Signal::Resume => &self.resume,
        }
    }

    fn public(&self) -> StrandEvents {
        StrandEvents {
            block: PublicEvent::new(self.block.clone()),
            unblock: PublicEvent::new(self.unblock.clone()),
            checkpoint: PublicEvent::new(self.checkpoint.clone()),
            resume: PublicEvent::new(self.resume.clone()),
            pick_next: PublicEvent::new(self.pick_next.clone()),
        }
    }
}

/// The events to raise (the service's) and their public views.
static EVENTS: spin::Once<(KernelEvents, StrandEvents)> = spin::Once::new();

/// Publishes the events (the kernel, once at boot; later calls are ignored
/// and return false).
pub fn publish_events(_kernel: KernelCapability, events: KernelEvents) -> bool {
    let mut published = false;
    EVENTS.call_once(|| {
        published = true;
        let public = events.public();
        (events, public)
    });
    published
}

/// The events, once published, to install handlers on.
pub fn events() -> Option<&'static StrandEvents> {
    EVENTS.get().map(|(_, public)| public)
}

/// Raises a signal (kernel only; nothing happens before the events are
/// published). A raise cannot fail for lack of a handler (each has its
/// original); other failures are ignored, because the state change already
/// happened.
pub fn raise(_kernel: KernelCapability, which: Signal, signal: &StrandSignal) {
    if let Some((events, _)) = EVENTS.get() {
        let _ = events.signal(which).raise(signal);
    }
}

/// Raises `Sched.PickNext` (kernel only); before the events are published,
/// round-robin's answer.
pub fn ask_policy(_kernel: KernelCapability, args: &PickArgs) -> Result<Pick, RaiseError> {
    match EVENTS.get() {
        Some((events, _)) => events.pick_next.raise(args),
        None => Ok(round_robin(args)),
    }
}

/// The authorizer of the four signals. `policy_of` tells which policy a
/// principal registered, if any.
pub fn signal_authorizer(
    policy_of: fn(PrincipalId) -> Option<PolicyId>,
) -> impl Fn(&InstallRequest<'_>) -> Decision<StrandSignal> + Send + Sync + 'static {
    move |request| {
        let imposition = Imposition::new().forbid_cancel();
        match policy_of(request.principal) {
            Some(policy) => Decision::Impose(
                imposition.guard(move |signal: &StrandSignal| signal.policy == policy),
            ),
            None => Decision::Impose(imposition),
        }
    }
}

/// The authorizer of `Sched.PickNext`: only schedulers, each for its own
/// class, placed before round-robin.
pub fn pick_authorizer(
    policy_of: fn(PrincipalId) -> Option<PolicyId>,
) -> impl Fn(&InstallRequest<'_>) -> Decision<PickArgs> + Send + Sync + 'static {
    move |request| match policy_of(request.principal) {
        None => Decision::Deny(String::from(
            "only a principal that registered a scheduling policy may handle Sched.PickNext",
        )),
        Some(policy) => Decision::Impose(
            Imposition::new()
                .guard(move |args: &PickArgs| args.policy == policy)
                .placement(Placement {
                    position: Position::First,
                    ..Placement::default()
                })
                .forbid_cancel(),
        ),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_first_real_pick_wins() {
        let a = Pick::Strand(StrandId::from_u64(1));
        let b = Pick::Strand(StrandId::from_u64(2));
        assert_eq!(Pick::Pass.combine(a), a);
        assert_eq!(a.combine(b), a);
        assert_eq!(a.combine(Pick::Pass), a);
        assert_eq!(Pick::Pass.combine(Pick::Pass), Pick::Pass);
    }
}
