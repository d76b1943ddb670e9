//! The strand table: every strand's record and every registered policy,
//! and the transitions between states, applied to the table and a CPU's
//! [`RunQueue`] together.
//!
//! This is the service's bookkeeping, free of any machine detail: the
//! kernel keeps its per-strand machine state (saved context, stack) in the
//! record's `machine` field, takes its lock with interrupts disabled, and
//! performs the switches the transitions call for. Every method is
//! all-or-nothing: it either applies a whole transition or returns an error
//! and changes nothing.
//!
//! Invariants (checked by [`StrandTable::check`], and after every step of
//! the model-based tests):
//!
//! * a strand is `Ready` exactly when it is in its CPU's run queue, under
//!   its policy's class (the idle strand is the exception: ready, never
//!   queued, run only when the queue is empty);
//! * the run queue holds no other entries;
//! * every strand's policy is round-robin or a registered policy;
//! * `Exited` strands are exactly the zombies the reaper has yet to free.
//!
//! So whatever a policy answers, and whatever happens to it (retired,
//! unloaded), every strand is in exactly one place: running, in the queue,
//! blocked, or waiting for the reaper.

use alloc::collections::{BTreeMap, BTreeSet};
use alloc::string::String;
use alloc::vec::Vec;

use dispatcher::{Principal, RaiseError};

use crate::error::StrandError;
use crate::events::{Candidate, Cause, Pick, PickArgs, StrandSignal};
use crate::id::{BlockReason, CpuId, ExitReason, PolicyId, State, StrandId, StrandInfo};
use crate::queue::{QueueKey, RunQueue};

mod inspect;
mod policies;

use policies::PolicyEntry;

/// Most tickets one strand may hold.
pub const MAX_TICKETS: u32 = 1 << 20;

/// Longest policy name.
pub const MAX_POLICY_NAME: usize = 32;

/// How a new strand starts.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Start {
    /// Ready, queued (a spawned strand).
    Ready,
    /// Already running (the context that boots the kernel, adopted).
    Running,
    /// Its CPU's idle strand: ready but never queued.
    Idle,
}

/// What the table needs to create a strand.
#[derive(Debug)]
pub struct NewStrand<M> {
    /// Its name.
    pub name: String,
    /// Who spawned it.
    pub owner: Principal,
    /// Its CPU.
    pub cpu: CpuId,
    /// Its policy.
    pub policy: PolicyId,
    /// Its tickets (1..=[`MAX_TICKETS`]).
    pub tickets: u32,
    /// Whether it may never be killed or suspended.
    pub essential: bool,
    /// How it starts.
    pub start: Start,
    /// The kernel's machine state for it.
    pub machine: M,
}

/// One strand's record.
pub struct Record<M> {
    id: StrandId,
    name: String,
    owner: Principal,
    state: State,
    policy: PolicyId,
    tickets: u32,
    cpu: CpuId,
    essential: bool,
    idle: bool,
    cpu_cycles: u64,
    ticks: u64,
    switches: u64,
    wakeup_pending: bool,
    queued: Option<QueueKey>,
    joiners: Vec<StrandId>,
    /// The kernel's machine state (context, stack, entry function).
    pub machine: M,
}

impl<M> Record<M> {
    /// Its id.
    pub fn id(&self) -> StrandId {
        self.id
    }

    /// Its name.
    pub fn name(&self) -> &str {
        &self.name
    }

    /// Its state.
    pub fn state(&self) -> State {
        self.state
    }

    /// Who spawned it.
    pub fn owner(&self) -> &Principal {
        &self.owner
    }

    /// Its policy.
    pub fn policy(&self) -> PolicyId {
        self.policy
    }

    /// Whether it is its CPU's idle strand.
    pub fn is_idle(&self) -> bool {
        self.idle
    }

    /// The signal about this strand with `cause`.
    pub fn signal(&self, cause: Cause) -> StrandSignal {
        StrandSignal {
            strand: self.id,
            cpu: self.cpu,
            policy: self.policy,
            tickets: self.tickets,
            cause,
        }
    }

    fn info(&self) -> StrandInfo {
        StrandInfo {
            id: self.id,
            name: self.name.clone(),
            state: self.state,
            owner: self.owner.id(),
            owner_name: String::from(self.owner.name()),
            policy: self.policy,
            tickets: self.tickets,
            cpu: self.cpu,
            cpu_cycles: self.cpu_cycles,
            ticks: self.ticks,
            switches: self.switches,
            essential: self.essential,
            idle: self.idle,
        }
    }
}

/// What [`StrandTable::wake`] did.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Woken {
    /// The strand was blocked and is now ready: raise `Strand.Unblock`.
    Readied(StrandSignal),
    /// The strand was running or ready: its next block returns at once.
    Pending,
}

/// What [`StrandTable::block`] did.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Blocked {
    /// The strand is blocked: raise `Strand.Block`, then switch away.
    Now(StrandSignal),
    /// A wakeup was pending; it was consumed and the strand keeps running.
    WakeupPending,
}

/// What [`StrandTable::kill`] and [`StrandTable::suspend`] found.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Stopped {
    /// Done: the strand was not running; raise `Strand.Block`.
    Done(StrandSignal),
    /// The strand is running: the kernel must stop it where it runs (for
    /// the current strand: exit or block it).
    Running,
}

/// Why a policy's answer was not followed.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Rejection {
    /// Raising `Sched.PickNext` failed, or every handler passed.
    NoAnswer,
    /// The named strand does not exist.
    NoSuchStrand,
    /// The named strand is not ready.
    NotReady,
    /// The named strand belongs to another policy.
    OtherClass,
    /// The named strand is queued on another CPU.
    OtherCpu,
}

/// The outcome of [`StrandTable::commit`].
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Commit {
    /// The strand that now runs.
    pub strand: StrandId,
    /// `None` if the policy's answer was followed, else why not.
    pub rejected: Option<Rejection>,
}

/// A strand the reaper took out of the table.
pub struct Reaped<M> {
    /// Its id.
    pub id: StrandId,
    /// How it ended.
    pub reason: ExitReason,
    /// Its machine state, to free before calling
    /// [`StrandTable::reaped`], which returns the joiners to wake.
    pub machine: M,
}

/// Whether a joiner must wait.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Join {
    /// The strand is gone (reaped, or never existed): nothing to wait for.
    Gone,
    /// Registered: the reaper wakes the joiner when the strand is gone.
    Wait,
}

/// Every strand and policy. See the [module docs](self).
pub struct StrandTable<M> {
    records: BTreeMap<StrandId, Record<M>>,
    policies: BTreeMap<PolicyId, PolicyEntry>,
    zombies: BTreeSet<StrandId>,
    /// Strands [`reap`](Self::reap) took out whose machine state (their
    /// stack) the caller has not freed yet, with their joiners: a join
    /// returns only once [`reaped`](Self::reaped) says it is freed.
    reaping: BTreeMap<StrandId, Vec<StrandId>>,
    next_id: u64,
    next_policy: u32,
}

impl<M> Default for StrandTable<M> {
    fn default() -> Self {
        Self::new()
    }
}

impl<M> StrandTable<M> {
    /// An empty table.
    pub const fn new() -> Self {
        Self {
            records: BTreeMap::new(),
            policies: BTreeMap::new(),
            zombies: BTreeSet::new(),
            reaping: BTreeMap::new(),
            next_id: 1,
            next_policy: 1,
        }
    }

    /// Number of records (including exited strands not yet reaped).
    pub fn len(&self) -> usize {
        self.records.len()
    }

    /// Whether the table is empty.
    pub fn is_empty(&self) -> bool {
        self.records.is_empty()
    }

    /// A strand's record.
    pub fn get(&self, id: StrandId) -> Option<&Record<M>> {
        self.records.get(&id)
    }

    /// A strand's record, to change its machine state.
    pub fn get_mut(&mut self, id: StrandId) -> Option<&mut Record<M>> {
        self.records.get_mut(&id)
    }

    fn live(&self, id: StrandId) -> Result<&Record<M>, StrandError> {
        let record = self.records.get(&id).ok_or(StrandError::NotFound(id))?;
        match record.state {
            State::Exited(_) => Err(StrandError::Exited(id)),
            _ => Ok(record),
        }
    }

    fn record(&mut self, id: StrandId) -> &mut Record<M> {
        self.records
            .get_mut(&id)
            .unwrap_or_else(|| unreachable!("strand {id} was checked just before"))
    }

    /// Creates a strand. A ready strand is queued at the back of its
    /// policy's class, and `Strand.Unblock` is to be raised with the
    /// returned signal. A refused strand is handed back with the error, so
    /// that the caller frees its machine state outside the table's lock.
    #[allow(clippy::result_large_err)]
    pub fn insert(
        &mut self,
        new: NewStrand<M>,
        rq: &mut RunQueue,
    ) -> Result<(StrandId, Option<StrandSignal>), (StrandError, NewStrand<M>)> {
        if let Err(e) = check_tickets(new.tickets) {
            return Err((e, new));
        }
        if new.policy != PolicyId::ROUND_ROBIN && !self.policies.contains_key(&new.policy) {
            return Err((StrandError::NoSuchPolicy(new.policy), new));
        }
        let id = StrandId::from_u64(self.next_id);
        self.next_id += 1;
        let (state, queued, idle) = match new.start {
            Start::Ready => (State::Ready, Some(rq.push_back(new.policy, id)), false),
            Start::Running => (State::Running, None, false),
            Start::Idle => (State::Ready, None, true),
        };
        let record = Record {
            id,
            name: new.name,
            owner: new.owner,
            state,
            policy: new.policy,
            tickets: new.tickets,
            cpu: new.cpu,
            essential: new.essential || idle,
            idle,
            cpu_cycles: 0,
            ticks: 0,
            switches: 0,
            wakeup_pending: false,
            queued,
            joiners: Vec::new(),
            machine: new.machine,
        };
        let signal = queued.map(|_| record.signal(Cause::Spawned));
        self.records.insert(id, record);
        Ok((id, signal))
    }

    /// Makes a blocked strand ready; a running or ready strand gets a
    /// pending wakeup instead, so that a wake that races ahead of the
    /// block it answers is not lost.
    pub fn wake(&mut self, id: StrandId, rq: &mut RunQueue) -> Result<Woken, StrandError> {
        let record = self.live(id)?;
        match record.state {
            State::Blocked(_) => {
                let class = record.policy;
                let key = rq.push_back(class, id);
                let record = self.record(id);
                record.state = State::Ready;
                record.queued = Some(key);
                record.wakeup_pending = false;
                Ok(Woken::Readied(record.signal(Cause::Woken)))
            }
            _ => {
                self.record(id).wakeup_pending = true;
                Ok(Woken::Pending)
            }
        }
    }

    /// Blocks the running strand `id`, unless a wakeup is pending (which is
    /// then consumed).
    pub fn block(&mut self, id: StrandId, reason: BlockReason) -> Result<Blocked, StrandError> {
        let record = self.live(id)?;
        if record.state != State::Running {
            return Err(StrandError::NotReady(id));
        }
        let record = self.record(id);
        if core::mem::take(&mut record.wakeup_pending) {
            return Ok(Blocked::WakeupPending);
        }
        record.state = State::Blocked(reason);
        Ok(Blocked::Now(record.signal(Cause::Blocked(reason))))
    }

    /// Suspends a ready strand (it stays blocked until woken). A running
    /// strand must block itself; suspending a blocked one is refused.
    pub fn suspend(&mut self, id: StrandId, rq: &mut RunQueue) -> Result<Stopped, StrandError> {
        let record = self.live(id)?;
        if record.essential {
            return Err(StrandError::Protected(id));
        }
        match record.state {
            State::Running => Ok(Stopped::Running),
            State::Ready => {
                let key = record.queued;
                if let Some(key) = key {
                    rq.remove(key);
                }
                let record = self.record(id);
                record.queued = None;
                record.state = State::Blocked(BlockReason::Suspended);
                Ok(Stopped::Done(
                    record.signal(Cause::Blocked(BlockReason::Suspended)),
                ))
            }
            _ => Err(StrandError::NotReady(id)),
        }
    }

    /// Puts the running strand `id` back at the end of its class (it was
    /// preempted or yielded). The idle strand becomes ready but is not
    /// queued.
    pub fn requeue(&mut self, id: StrandId, rq: &mut RunQueue) -> Result<(), StrandError> {
        let record = self.live(id)?;
        if record.state != State::Running {
            return Err(StrandError::NotReady(id));
        }
        let (idle, class) = (record.idle, record.policy);
        let key = (!idle).then(|| rq.push_back(class, id));
        let record = self.record(id);
        record.state = State::Ready;
        record.queued = key;
        Ok(())
    }

    /// Kills a strand (not an essential one). A strand that is not running
    /// exits at once; for a running one the kernel must stop it.
    pub fn kill(&mut self, id: StrandId, rq: &mut RunQueue) -> Result<Stopped, StrandError> {
        let record = self.live(id)?;
        if record.essential {
            return Err(StrandError::Protected(id));
        }
        if record.state == State::Running {
            return Ok(Stopped::Running);
        }
        let signal = self.exit(id, ExitReason::Killed, rq)?;
        Ok(Stopped::Done(signal))
    }

    /// Ends a strand (running or not) for `reason`: it leaves the run queue
    /// and waits for the reaper. Returns the signal to raise
    /// (`Strand.Checkpoint` if it was running, else `Strand.Block`).
    pub fn exit(
        &mut self,
        id: StrandId,
        reason: ExitReason,
        rq: &mut RunQueue,
    ) -> Result<StrandSignal, StrandError> {
        let record = self.live(id)?;
        if let Some(key) = record.queued {
            rq.remove(key);
        }
        let record = self.record(id);
        record.queued = None;
        record.state = State::Exited(reason);
        let signal = record.signal(Cause::Exited(reason));
        self.zombies.insert(id);
        Ok(signal)
    }

    /// The arguments of the next `Sched.PickNext`: the class whose turn it
    /// is, its front, and (for an extension's class) its ready strands.
    /// `None` when nothing is queued (the CPU runs its idle strand).
    pub fn choose(&self, rq: &RunQueue) -> Option<PickArgs> {
        let class = rq.next_class()?;
        let (_, front) = rq.front(class)?;
        let candidates = if class == PolicyId::ROUND_ROBIN {
            Vec::new()
        } else {
            rq.members(class)
                .map(|(_, strand)| Candidate {
                    strand,
                    tickets: self.records.get(&strand).map_or(1, |r| r.tickets),
                })
                .collect()
        };
        Some(PickArgs {
            cpu: rq.cpu(),
            policy: class,
            round_robin: front,
            candidates,
        })
    }

    fn validate(
        &self,
        id: StrandId,
        class: PolicyId,
        rq: &RunQueue,
    ) -> Result<QueueKey, Rejection> {
        let record = self.records.get(&id).ok_or(Rejection::NoSuchStrand)?;
        if record.state != State::Ready {
            return Err(Rejection::NotReady);
        }
        let key = record.queued.ok_or(Rejection::NotReady)?;
        if record.cpu != rq.cpu() || rq.get(key) != Some(id) {
            return Err(Rejection::OtherCpu);
        }
        if key.class != class {
            return Err(Rejection::OtherClass);
        }
        Ok(key)
    }

    /// Applies the answer to a `Sched.PickNext` raised with `args`: the
    /// named strand runs if it is a ready strand of the class on this CPU;
    /// otherwise round-robin's choice does (the front of the class, or of
    /// the next class if the class emptied meanwhile), and the policy's
    /// rejection is counted. `None` if nothing is ready.
    pub fn commit(
        &mut self,
        args: &PickArgs,
        answer: Result<Pick, RaiseError>,
        rq: &mut RunQueue,
    ) -> Option<Commit> {
        let class = args.policy;
        let checked = match answer {
            Ok(Pick::Strand(id)) => self.validate(id, class, rq).map(|key| (id, key)),
            Ok(Pick::Pass) | Err(_) => Err(Rejection::NoAnswer),
        };
        let rejected = checked.err();
        if let Some(entry) = self.policies.get_mut(&class) {
            match rejected {
                None => entry.picks += 1,
                Some(_) => entry.rejected += 1,
            }
        }
        let (id, key) = match checked {
            Ok(chosen) => chosen,
            Err(_) => {
                let (key, id) = rq
                    .front(class)
                    .or_else(|| rq.next_class().and_then(|c| rq.front(c)))?;
                (id, key)
            }
        };
        rq.remove(key);
        rq.served(key.class);
        let record = self.record(id);
        record.queued = None;
        record.state = State::Running;
        Some(Commit {
            strand: id,
            rejected,
        })
    }

    /// Makes the idle strand `id` the running strand (nothing was queued).
    pub fn run_idle(&mut self, id: StrandId) -> Result<(), StrandError> {
        let record = self.live(id)?;
        if !record.idle {
            return Err(StrandError::NotReady(id));
        }
        self.record(id).state = State::Running;
        Ok(())
    }

    /// Moves a strand into `policy` with `tickets` (it keeps its place
    /// relative to later arrivals: a ready strand goes to the back of its
    /// new class).
    pub fn set_policy(
        &mut self,
        id: StrandId,
        policy: PolicyId,
        tickets: u32,
        rq: &mut RunQueue,
    ) -> Result<(), StrandError> {
        check_tickets(tickets)?;
        if policy != PolicyId::ROUND_ROBIN && !self.policies.contains_key(&policy) {
            return Err(StrandError::NoSuchPolicy(policy));
        }
        let record = self.live(id)?;
        if record.idle {
            return Err(StrandError::Protected(id));
        }
        let queued = record.queued;
        let key = queued.map(|key| {
            rq.remove(key);
            rq.push_back(policy, id)
        });
        let record = self.record(id);
        record.queued = key;
        record.policy = policy;
        record.tickets = tickets;
        Ok(())
    }

    /// Registers `joiner` to be woken when `target` is gone.
    pub fn add_joiner(&mut self, target: StrandId, joiner: StrandId) -> Result<Join, StrandError> {
        if target == joiner {
            return Err(StrandError::JoinSelf);
        }
        let joiners = match self.records.get_mut(&target) {
            Some(record) => &mut record.joiners,
            None => match self.reaping.get_mut(&target) {
                Some(joiners) => joiners,
                None => return Ok(Join::Gone),
            },
        };
        if !joiners.contains(&joiner) {
            joiners.push(joiner);
        }
        Ok(Join::Wait)
    }

    /// Takes one exited strand out of the table, unless `in_use(id)` (its
    /// stack is still the one its CPU runs on). Joins keep waiting until
    /// the caller has freed its machine state and called
    /// [`reaped`](Self::reaped).
    pub fn reap(&mut self, in_use: impl Fn(StrandId) -> bool) -> Option<Reaped<M>> {
        let id = *self.zombies.iter().find(|&&id| !in_use(id))?;
        self.zombies.remove(&id);
        if self.zombies.is_empty() {
            self.zombies = BTreeSet::new();
        }
        let record = self.records.remove(&id)?;
        let reason = match record.state {
            State::Exited(reason) => reason,
            _ => ExitReason::Killed,
        };
        self.reaping.insert(id, record.joiners);
        Some(Reaped {
            id,
            reason,
            machine: record.machine,
        })
    }

    /// Ends the reaping of `id` once its machine state is freed: returns
    /// the strands waiting in `join`, to wake (empty for a strand not being
    /// reaped).
    pub fn reaped(&mut self, id: StrandId) -> Vec<StrandId> {
        let joiners = self.reaping.remove(&id).unwrap_or_default();
        if self.reaping.is_empty() {
            // An emptied map keeps its node; the heap's baseline must not.
            self.reaping = BTreeMap::new();
        }
        joiners
    }

    /// Exited strands waiting for the reaper.
    pub fn zombies(&self) -> usize {
        self.zombies.len()
    }

    /// Charges `cycles` of CPU time to `id`.
    pub fn charge(&mut self, id: StrandId, cycles: u64) {
        if let Some(record) = self.records.get_mut(&id) {
            record.cpu_cycles = record.cpu_cycles.wrapping_add(cycles);
        }
    }

    /// Counts one timer tick that found `id` running.
    pub fn charge_tick(&mut self, id: StrandId) {
        if let Some(record) = self.records.get_mut(&id) {
            record.ticks += 1;
        }
    }

    /// Counts one switch into `id`.
    pub fn switched_in(&mut self, id: StrandId) {
        if let Some(record) = self.records.get_mut(&id) {
            record.switches += 1;
        }
    }

    /// The signal about `id` with `cause`, for the kernel to raise.
    pub fn signal(&self, id: StrandId, cause: Cause) -> Option<StrandSignal> {
        self.records.get(&id).map(|r| r.signal(cause))
    }
}

/// The name of the built-in policy.
pub const ROUND_ROBIN_NAME: &str = "round-robin";

fn check_tickets(tickets: u32) -> Result<(), StrandError> {
    if (1..=MAX_TICKETS).contains(&tickets) {
        Ok(())
    } else {
        Err(StrandError::BadTickets(tickets))
    }
}
