//! The service's public face: the capabilities over strands and policies,
//! spawning, and what a strand does to itself (yield, block, sleep).
//!
//! The kernel implements the machine half of the service — stacks, context
//! switches, the timer, its per-CPU state — behind the [`Platform`] trait
//! and installs it at boot ([`set_platform`], which needs the
//! [`KernelCapability`]). Everything here is safe code that forwards to it.
//!
//! **Capabilities.** A [`Strand`] value is the right to control one strand:
//! join, kill, suspend, resume, move it to another policy. Only
//! [`Builder::spawn`] mints one, and only for the spawner, so a strand can
//! be stopped only by someone its spawner handed the capability to (and by
//! the kernel, through [`kill`], which needs the kernel capability). A
//! [`Waker`] is the lesser right to wake one strand, which a strand gives
//! out for itself ([`current_waker`]) so that others can end its wait. A
//! [`Policy`] is the right to retire one registered scheduling policy.
//! None of these types has a public constructor (the fields are private),
//! so safe code cannot forge one:
//!
//! ```compile_fail
//! let forged = strand::Strand { id: strand::StrandId::from_u64(1) };
//! ```

use alloc::boxed::Box;
use alloc::string::String;
use alloc::sync::Arc;
use alloc::vec::Vec;
use core::time::Duration;

use dispatcher::{KernelCapability, Principal, PrincipalId};

use crate::error::{PolicyError, StrandError};
use crate::id::{BlockReason, PolicyId, PolicyInfo, StrandId, StrandInfo};

/// A strand's entry function, boxed.
///
/// Not a `Box<dyn FnOnce()>`: calling one of those keeps the box allocated
/// until the call returns, and a strand that is killed never returns, so
/// every killed strand would leak its box. [`Run::run`] moves the closure
/// out of its box and frees the box *before* calling it; a killed strand
/// then abandons only what the closure itself owns.
pub type Entry = Box<dyn Run>;

/// What a strand runs: any `FnOnce() + Send + 'static`.
pub trait Run: Send + 'static {
    /// Frees the box, then runs the function.
    fn run(self: Box<Self>);
}

impl<F: FnOnce() + Send + 'static> Run for F {
    fn run(self: Box<Self>) {
        let function = {
            let boxed = self;
            *boxed
        };
        function();
    }
}

/// Stack size of a strand unless its builder says otherwise.
pub const DEFAULT_STACK_SIZE: usize = 64 * 1024;

/// What the kernel needs to create a strand.
pub struct SpawnRequest {
    /// Its name.
    pub name: String,
    /// The spawning principal (recorded as the owner).
    pub owner: Principal,
    /// Bytes of stack.
    pub stack_size: usize,
    /// Its policy.
    pub policy: PolicyId,
    /// Its tickets.
    pub tickets: u32,
    /// What it runs.
    pub entry: Entry,
}

/// The kernel's half of the service. Implemented once, by the kernel;
/// every method may be called from any strand, and those that say so also
/// from interrupt handlers.
pub trait Platform: Send + Sync {
    /// The strand running on this CPU (`None` outside strands). Any context.
    fn current(&self) -> Option<StrandId>;
    /// Whether the caller may block: it is a strand, not an interrupt
    /// handler, and interrupts are enabled. Any context.
    fn can_block(&self) -> bool;
    /// Blocks the current strand until it is woken; returns at once if a
    /// wakeup is pending.
    fn park(&self, reason: BlockReason) -> Result<(), StrandError>;
    /// Wakes `id` (or leaves it a pending wakeup). Any context.
    fn wake(&self, id: StrandId) -> Result<(), StrandError>;
    /// Lets other ready strands run.
    fn yield_now(&self);
    /// Blocks the current strand until the clock reaches `deadline_ns`.
    fn sleep_until(&self, deadline_ns: u64) -> Result<(), StrandError>;
    /// Nanoseconds since boot. Any context.
    fn now_ns(&self) -> u64;
    /// Creates a strand.
    fn spawn(&self, request: SpawnRequest) -> Result<StrandId, StrandError>;
    /// Kills a strand (the current one: does not return).
    fn kill(&self, id: StrandId) -> Result<(), StrandError>;
    /// Suspends a strand (the current one: blocks it).
    fn suspend(&self, id: StrandId) -> Result<(), StrandError>;
    /// Waits until `id` has exited and its resources are freed.
    fn join(&self, id: StrandId) -> Result<(), StrandError>;
    /// Moves `id` into `policy`.
    fn set_policy(&self, id: StrandId, policy: PolicyId, tickets: u32) -> Result<(), StrandError>;
    /// Registers a policy for `owner`.
    fn register_policy(&self, owner: &Principal, name: &str) -> Result<PolicyId, PolicyError>;
    /// Retires a policy; returns how many strands went back to round-robin.
    fn retire_policy(&self, id: PolicyId) -> Result<usize, PolicyError>;
    /// The policy `principal` registered.
    fn policy_of(&self, principal: PrincipalId) -> Option<PolicyId>;
    /// Every strand.
    fn strands(&self) -> Vec<StrandInfo>;
    /// Round-robin and the registered policies.
    fn policies(&self) -> Vec<PolicyInfo>;
    /// Disables interrupts on this CPU; returns whether they were enabled.
    fn interrupts_disable(&self) -> bool;
    /// Re-enables interrupts if `were_enabled`.
    fn interrupts_restore(&self, were_enabled: bool);
}

static PLATFORM: spin::Once<&'static dyn Platform> = spin::Once::new();

/// Installs the kernel's half of the service (once, at boot; later calls
/// return false and change nothing).
pub fn set_platform(_kernel: KernelCapability, platform: &'static dyn Platform) -> bool {
    let mut installed = false;
    PLATFORM.call_once(|| {
        installed = true;
        platform
    });
    installed
}

pub(crate) fn platform() -> Result<&'static dyn Platform, StrandError> {
    PLATFORM.get().copied().ok_or(StrandError::NoService)
}

/// The right to control one strand. See the [module docs](self).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Strand {
    id: StrandId,
}

impl Strand {
    /// The strand's id.
    pub fn id(&self) -> StrandId {
        self.id
    }

    /// Waits until the strand has exited and its stack and record are
    /// freed. Returns at once if it is already gone.
    pub fn join(&self) -> Result<(), StrandError> {
        platform()?.join(self.id)
    }

    /// Kills the strand. If it is the caller, this does not return (and is
    /// refused with [`StrandError::CannotBlock`] where the caller could not
    /// block either).
    pub fn kill(&self) -> Result<(), StrandError> {
        platform()?.kill(self.id)
    }

    /// Suspends a ready strand until [`resume`](Self::resume); the caller
    /// suspending itself blocks.
    pub fn suspend(&self) -> Result<(), StrandError> {
        platform()?.suspend(self.id)
    }

    /// Wakes the strand from whatever it is blocked in (a suspension, or a
    /// wait, which then sees a spurious wakeup and waits again).
    pub fn resume(&self) -> Result<(), StrandError> {
        platform()?.wake(self.id)
    }

    /// Moves the strand into `policy` with `tickets`.
    pub fn opt_in(&self, policy: PolicyId, tickets: u32) -> Result<(), StrandError> {
        platform()?.set_policy(self.id, policy, tickets)
    }

    /// Moves the strand back to round-robin.
    pub fn opt_out(&self) -> Result<(), StrandError> {
        platform()?.set_policy(self.id, PolicyId::ROUND_ROBIN, 1)
    }

    /// A waker for the strand.
    pub fn waker(&self) -> Waker {
        Waker { id: self.id }
    }

    /// The strand as the service describes it (`None` once it is gone).
    pub fn info(&self) -> Option<StrandInfo> {
        info(self.id)
    }
}

/// The right to wake one strand. See the [module docs](self).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Waker {
    id: StrandId,
}

impl Waker {
    /// The strand it wakes.
    pub fn strand(&self) -> StrandId {
        self.id
    }

    /// Wakes the strand (or leaves it a pending wakeup if it is running).
    /// May be called from interrupt handlers.
    pub fn wake(&self) -> Result<(), StrandError> {
        platform()?.wake(self.id)
    }
}

/// The right to retire one registered scheduling policy.
#[derive(Debug, PartialEq, Eq)]
pub struct Policy {
    id: PolicyId,
}

impl Policy {
    /// The policy's id (what strands opt into).
    pub fn id(&self) -> PolicyId {
        self.id
    }

    /// Retires the policy: its strands go back to round-robin. Returns how
    /// many moved.
    pub fn retire(self) -> Result<usize, PolicyError> {
        PLATFORM
            .get()
            .ok_or(PolicyError::NoService)?
            .retire_policy(self.id)
    }
}

/// Registers a scheduling policy named `name` for `principal` (one per
/// principal). Strands opt into it with [`Strand::opt_in`]; its handler on
/// `Sched.PickNext` then chooses among them.
pub fn register_policy(principal: &Principal, name: &str) -> Result<Policy, PolicyError> {
    let platform = PLATFORM.get().ok_or(PolicyError::NoService)?;
    platform
        .register_policy(principal, name)
        .map(|id| Policy { id })
}

/// Creates strands.
pub struct Builder {
    name: String,
    stack_size: usize,
    policy: PolicyId,
    tickets: u32,
}

impl Builder {
    /// A strand named `name`, with the default stack, under round-robin.
    pub fn new(name: &str) -> Self {
        Self {
            name: String::from(name),
            stack_size: DEFAULT_STACK_SIZE,
            policy: PolicyId::ROUND_ROBIN,
            tickets: 1,
        }
    }

    /// Its stack size in bytes (rounded up to whole pages).
    pub fn stack_size(mut self, bytes: usize) -> Self {
        self.stack_size = bytes;
        self
    }

    /// Opts it into `policy` with `tickets` from the start.
    pub fn policy(mut self, policy: PolicyId, tickets: u32) -> Self {
        self.policy = policy;
        self.tickets = tickets;
        self
    }

    /// Spawns it, owned by `owner`, running `entry`; returns its capability.
    pub fn spawn(
        self,
        owner: &Principal,
        entry: impl FnOnce() + Send + 'static,
    ) -> Result<Strand, StrandError> {
        let id = platform()?.spawn(SpawnRequest {
            name: self.name,
            owner: owner.clone(),
            stack_size: self.stack_size,
            policy: self.policy,
            tickets: self.tickets,
            entry: Box::new(entry),
        })?;
        Ok(Strand { id })
    }

    /// Spawns it to compute a value, which [`JoinHandle::join`] returns.
    pub fn spawn_joinable<T: Send + 'static>(
        self,
        owner: &Principal,
        entry: impl FnOnce() -> T + Send + 'static,
    ) -> Result<JoinHandle<T>, StrandError> {
        let slot = Arc::new(spin::Mutex::new(None));
        let result = Arc::clone(&slot);
        let strand = self.spawn(owner, move || {
            let value = entry();
            *result.lock() = Some(value);
        })?;
        Ok(JoinHandle { strand, slot })
    }
}

/// A strand computing a `T`.
pub struct JoinHandle<T> {
    strand: Strand,
    slot: Arc<spin::Mutex<Option<T>>>,
}

impl<T> JoinHandle<T> {
    /// The strand's capability.
    pub fn strand(&self) -> &Strand {
        &self.strand
    }

    /// Waits for the strand and returns its value, or
    /// [`StrandError::NoResult`] if it was killed or overflowed its stack.
    pub fn join(self) -> Result<T, StrandError> {
        self.strand.join()?;
        let value = self.slot.lock().take();
        value.ok_or(StrandError::NoResult(self.strand.id))
    }
}

/// The strand running on this CPU.
pub fn current() -> Option<StrandId> {
    platform().ok()?.current()
}

/// A waker for the calling strand, to hand to whoever will end its wait.
pub fn current_waker() -> Option<Waker> {
    current().map(|id| Waker { id })
}

/// Whether the caller may block (see [`Platform::can_block`]).
pub fn can_block() -> bool {
    platform().is_ok_and(|p| p.can_block())
}

/// Lets other ready strands run (from thread context; where blocking is
/// impossible, this does nothing).
pub fn yield_now() {
    if let Ok(platform) = platform() {
        platform.yield_now();
    }
}

/// Blocks the calling strand until it is woken through a [`Waker`] (or its
/// [`Strand`]); returns at once if a wakeup arrived since it last blocked.
/// Callers wait for a condition in a loop: a wakeup may be spurious.
pub fn block(reason: BlockReason) -> Result<(), StrandError> {
    let platform = platform()?;
    if !platform.can_block() {
        return Err(StrandError::CannotBlock);
    }
    platform.park(reason)
}

/// Sleeps for at least `duration` (the clock's resolution is one timer
/// tick).
pub fn sleep(duration: Duration) -> Result<(), StrandError> {
    let platform = platform()?;
    let nanos = u64::try_from(duration.as_nanos()).unwrap_or(u64::MAX);
    sleep_until_ns(platform.now_ns().saturating_add(nanos))
}

/// Sleeps until the clock reads `deadline_ns` (nanoseconds since boot).
pub fn sleep_until_ns(deadline_ns: u64) -> Result<(), StrandError> {
    let platform = platform()?;
    if !platform.can_block() {
        return Err(StrandError::CannotBlock);
    }
    platform.sleep_until(deadline_ns)
}

/// Nanoseconds since boot (0 before the service starts).
pub fn now_ns() -> u64 {
    platform().map_or(0, |p| p.now_ns())
}

/// Every strand, by id.
pub fn list() -> Vec<StrandInfo> {
    platform().map(|p| p.strands()).unwrap_or_default()
}

/// One strand.
pub fn info(id: StrandId) -> Option<StrandInfo> {
    list().into_iter().find(|s| s.id == id)
}

/// Round-robin and every registered policy.
pub fn policies() -> Vec<PolicyInfo> {
    platform().map(|p| p.policies()).unwrap_or_default()
}

/// The policy registered under `name` (`round-robin` is the built-in one).
pub fn policy_named(name: &str) -> Option<PolicyId> {
    policies()
        .into_iter()
        .find(|p| p.name == name)
        .map(|p| p.id)
}

/// The policy `principal` registered (for the events' authorizers).
pub fn policy_of_principal(principal: PrincipalId) -> Option<PolicyId> {
    platform().ok()?.policy_of(principal)
}

/// Kills any strand but an essential one (the kernel's shell command
/// `kill`, and unloading an extension).
pub fn kill(_kernel: KernelCapability, id: StrandId) -> Result<(), StrandError> {
    platform()?.kill(id)
}

/// Kills every live strand `principal` spawned; returns their ids (join
/// them to know they are gone).
pub fn kill_owned_by(_kernel: KernelCapability, principal: PrincipalId) -> Vec<StrandId> {
    let Ok(platform) = platform() else {
        return Vec::new();
    };
    let owned: Vec<StrandId> = platform
        .strands()
        .into_iter()
        .filter(|s| s.owner == principal && !matches!(s.state, crate::State::Exited(_)))
        .map(|s| s.id)
        .collect();
    for &id in &owned {
        // A strand that exits on its own meanwhile is gone just the same.
        let _ = platform.kill(id);
    }
    owned
}

/// Waits until strand `id` is gone, without its capability (the kernel,
/// after [`kill_owned_by`]).
pub fn join_any(_kernel: KernelCapability, id: StrandId) -> Result<(), StrandError> {
    platform()?.join(id)
}

/// Retires the policy `principal` registered, if any (the kernel, when an
/// extension is unloaded or fails in `init`); returns how many strands
/// went back to round-robin.
pub fn retire_policy_of(_kernel: KernelCapability, principal: PrincipalId) -> usize {
    let Some(platform) = PLATFORM.get() else {
        return 0;
    };
    match platform.policy_of(principal) {
        Some(policy) => platform.retire_policy(policy).unwrap_or(0),
        None => 0,
    }
}
