//! Names and states: strand, CPU and policy identities, the states a strand
//! goes through, and the descriptions the service hands out.
//!
//! Identities are plain numbers: knowing one grants nothing. The rights
//! over a strand are in the capabilities of [`crate::service`].

use alloc::string::String;
use core::fmt;

use dispatcher::PrincipalId;

/// The identity of a strand. Unique for the life of the kernel: ids are
/// handed out from a counter and never reused, so a stale id can name no
/// other strand.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct StrandId(u64);

impl StrandId {
    /// The id with this number (for parsing a shell argument; it names a
    /// strand only if one with this number exists).
    pub const fn from_u64(raw: u64) -> Self {
        Self(raw)
    }

    /// The number.
    pub const fn as_u64(self) -> u64 {
        self.0
    }
}

impl fmt::Display for StrandId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}", self.0)
    }
}

/// A processor. Spindle runs on CPU 0 only today; every per-CPU structure
/// is keyed by this so that a second CPU needs no new data layout.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct CpuId(pub u32);

impl fmt::Display for CpuId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "cpu{}", self.0)
    }
}

/// A scheduling policy: the built-in round-robin ([`PolicyId::ROUND_ROBIN`])
/// or one registered by an extension.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct PolicyId(u32);

impl PolicyId {
    /// The built-in preemptive round-robin, the policy of every strand that
    /// did not opt into another.
    pub const ROUND_ROBIN: PolicyId = PolicyId(0);

    /// The id with this number.
    pub const fn from_u32(raw: u32) -> Self {
        Self(raw)
    }

    /// The number.
    pub const fn as_u32(self) -> u32 {
        self.0
    }
}

impl fmt::Display for PolicyId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}", self.0)
    }
}

/// Why a strand is blocked.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum BlockReason {
    /// In `sleep`, until a clock deadline.
    Sleep,
    /// Waiting for another strand to exit.
    Join,
    /// Waiting on a mutex, condition variable or semaphore.
    Wait,
    /// Suspended through its capability.
    Suspended,
    /// Waiting for work (the reaper, the asynchronous-handler spawner).
    Idle,
}

impl BlockReason {
    /// Short lower-case name, for listings.
    pub fn name(self) -> &'static str {
        match self {
            BlockReason::Sleep => "sleep",
            BlockReason::Join => "join",
            BlockReason::Wait => "wait",
            BlockReason::Suspended => "suspended",
            BlockReason::Idle => "idle",
        }
    }
}

/// How a strand ended.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ExitReason {
    /// Its entry function returned.
    Returned,
    /// It was killed through its capability or by the kernel.
    Killed,
    /// It ran into the guard page below its stack and was stopped.
    StackOverflow,
    /// It panicked; the panic unwound to its entry and was contained there.
    Panicked,
}

impl ExitReason {
    /// Short lower-case name, for listings.
    pub fn name(self) -> &'static str {
        match self {
            ExitReason::Returned => "returned",
            ExitReason::Killed => "killed",
            ExitReason::StackOverflow => "stack overflow",
            ExitReason::Panicked => "panicked",
        }
    }
}

/// Where a strand is in its life.
///
/// ```text
///            spawn                pick (Resume)
///   ------> Ready ------------------------------> Running
///             ^  <------------------------------   |  |
///             |     preempt / yield (Checkpoint)   |  |
///      wake   |                                    |  | return, kill,
///   (Unblock) |          block (Block)             |  | overflow
///           Blocked <------------------------------+  |
///             |                                       v
///             +------------- kill ---------------> Exited --> reaped
/// ```
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum State {
    /// Runnable, in its CPU's run queue.
    Ready,
    /// On its CPU now.
    Running,
    /// Waiting to be woken.
    Blocked(BlockReason),
    /// Finished; its stack and record are freed by the reaper.
    Exited(ExitReason),
}

impl fmt::Display for State {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            State::Ready => f.write_str("ready"),
            State::Running => f.write_str("running"),
            State::Blocked(reason) => write!(f, "blocked:{}", reason.name()),
            State::Exited(reason) => write!(f, "exited:{}", reason.name()),
        }
    }
}

/// A strand as the service describes it (`strands` in the shell).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct StrandInfo {
    /// Its id.
    pub id: StrandId,
    /// The name given at spawn.
    pub name: String,
    /// Its state.
    pub state: State,
    /// The principal that spawned it (kernel or an extension).
    pub owner: PrincipalId,
    /// That principal's name.
    pub owner_name: String,
    /// The policy that schedules it.
    pub policy: PolicyId,
    /// Its tickets (its share under a proportional-share policy).
    pub tickets: u32,
    /// Its CPU.
    pub cpu: CpuId,
    /// TSC cycles it has run for.
    pub cpu_cycles: u64,
    /// Timer ticks that found it running (CPU time as the scheduler
    /// samples it: one per quantum it used to the end).
    pub ticks: u64,
    /// Times it was switched in.
    pub switches: u64,
    /// The kernel's own strands that cannot be killed (idle, reaper, the
    /// shell, ...).
    pub essential: bool,
    /// Whether it is its CPU's idle strand.
    pub idle: bool,
}

/// A registered policy as the service describes it (`sched` in the shell).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct PolicyInfo {
    /// Its id.
    pub id: PolicyId,
    /// The name it registered under.
    pub name: String,
    /// Who registered it (`None` for the built-in round-robin).
    pub owner: Option<PrincipalId>,
    /// That principal's name (`kernel` for round-robin).
    pub owner_name: String,
    /// Strands that opted into it (live ones).
    pub strands: usize,
    /// Picks of its handlers that the service accepted.
    pub picks: u64,
    /// Picks refused (not a ready strand of the policy) and replaced by
    /// round-robin's choice.
    pub rejected: u64,
}
