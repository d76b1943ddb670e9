//! The machine half of the strand service: stacks, context switches,
//! preemption, sleeping, the reaper, and the [`strand::Platform`] the
//! `strand` crate forwards to.
//!
//! The `strand` crate holds the bookkeeping ([`StrandTable`], the run
//! queues) and the public API; this module holds the table in a spin lock
//! (always taken with interrupts disabled, and before the CPU's run-queue
//! lock), raises the service's events outside that lock, and switches
//! stacks ([`schedule`]).
//!
//! **A switch**, whatever its cause (the current strand blocks, yields,
//! exits, or its quantum ran out at a timer interrupt), with interrupts
//! disabled throughout:
//!
//! 1. under the lock: a preempted or yielding strand goes back to its
//!    class's queue; the table computes the `Sched.PickNext` arguments for
//!    the class whose turn it is;
//! 2. no lock: `Sched.PickNext` is raised (round-robin's original handler,
//!    or a scheduler extension's, for its class);
//! 3. under the lock: the table validates the answer (or falls back to
//!    round-robin; with nothing ready, the idle strand runs), charges CPU
//!    time to the outgoing strand and marks the incoming one running;
//! 4. no lock: `Strand.Checkpoint` (outgoing) and `Strand.Resume`
//!    (incoming) are raised; the per-CPU state is updated;
//! 5. [`context::switch`] saves the outgoing registers on its stack and
//!    resumes the incoming strand.
//!
//! **Preemption.** The scheduler's handler on `Clock.Tick` ([`on_tick`])
//! wakes sleepers whose time has come and counts the current strand's
//! quantum; when it is used up and something else is ready, it asks for a
//! switch, which the timer interrupt performs after acknowledging the
//! interrupt ([`preempt_point`]), on the interrupted strand's own stack.
//!
//! **Exit.** A strand that returns (or is killed, or overflows its stack)
//! becomes a zombie and switches away for good; the reaper strand frees its
//! stack and record later — never the stack it runs on — and then wakes
//! the strands joining it.

mod executor;
pub mod overflow;
mod platform;
pub mod stack;
mod timer;

pub use executor::run_later;
use timer::on_tick;
pub use timer::{sleep_ticks, sleep_until};

use alloc::boxed::Box;
use alloc::string::String;
use core::sync::atomic::{AtomicBool, AtomicU64, Ordering};

use dispatcher::{Binding, Principal};
use strand::events::{self as signals, Signal};
use strand::service::{Entry, SpawnRequest};
use strand::table::{Blocked, Join, NewStrand, Start, Stopped, Woken};
use strand::{
    BlockReason, Cause, ExitReason, PolicyId, RunQueue, StrandError, StrandId, StrandTable,
};
use x86_64::instructions::interrupts;

use crate::arch::context::{self, Context};
use crate::arch::rdtsc;
use crate::containment::{self, StrandDepth, faults};
use crate::cpu::{self, StackBounds};
use stack::Stack;

/// Timer ticks a strand runs before it is preempted (if others are ready).
pub const QUANTUM_TICKS: u32 = 1;
/// Stack of the idle strand.
const IDLE_STACK: usize = 16 * 1024;
/// Stack of the kernel's service strands (reaper, asynchronous spawner).
const SERVICE_STACK: usize = 32 * 1024;

/// The kernel's per-strand machine state.
pub struct Machine {
    context: Box<Context>,
    stack: Option<Stack>,
    entry: Option<Entry>,
}

type Table = StrandTable<Machine>;

static TABLE: spin::Mutex<Table> = spin::Mutex::new(StrandTable::new());
static STARTED: AtomicBool = AtomicBool::new(false);
static REAPER: AtomicU64 = AtomicU64::new(0);
static TICK_BINDING: spin::Once<Binding<u64, ()>> = spin::Once::new();

/// Raises one of the service's signals. A panic in an extension's handler
/// is contained here (the extension is unloaded later, see
/// [`containment::faults`]).
fn raise(which: Signal, signal: &strand::StrandSignal) {
    let site = match which {
        Signal::Block => strand::BLOCK_EVENT,
        Signal::Unblock => strand::UNBLOCK_EVENT,
        Signal::Checkpoint => strand::CHECKPOINT_EVENT,
        Signal::Resume => strand::RESUME_EVENT,
    };
    containment::interrupt_stack::call_on_interrupt_stack(&mut || {
        let _ = faults::call_extensions_deferred(site, || {
            signals::raise(crate::events::capability(), which, signal);
        });
    });
}

/// Runs `f` on the strand table and this CPU's run queue, with interrupts
/// disabled. `f` must not raise events or call back into this module.
fn locked<R>(f: impl FnOnce(&mut Table, &mut RunQueue) -> R) -> R {
    interrupts::without_interrupts(|| {
        let mut table = TABLE.lock();
        let mut queue = cpu::current().run_queue.lock();
        f(&mut table, &mut queue)
    })
}

fn kernel() -> Principal {
    crate::events::authority().kernel.clone()
}

fn started() -> bool {
    STARTED.load(Ordering::Acquire)
}

/// Starts the service: the running boot context becomes the strand
/// `name` (it goes on to run the shell or the tests), and the idle strand,
/// the reaper and the asynchronous-handler executor are created.
///
/// # Safety
/// Called once, from the boot context on its own stack, with interrupts
/// disabled, after the events are declared and the timer runs: the running
/// context is adopted as a strand, and a second adoption would give two
/// strands one stack.
pub unsafe fn init(name: &str) {
    let capability = crate::events::authority().issuer.kernel_capability();
    strand::service::set_platform(capability, &platform::PLATFORM);
    let cpu = cpu::current();
    let adopt = |name: &str, start, machine| NewStrand {
        name: String::from(name),
        owner: kernel(),
        cpu: cpu.id,
        policy: PolicyId::ROUND_ROBIN,
        tickets: 1,
        essential: true,
        start,
        machine,
    };
    let boot = Machine {
        context: Box::new(Context::default()),
        stack: None,
        entry: None,
    };
    let boot = locked(|t, rq| t.insert(adopt(name, Start::Running, boot), rq))
        .unwrap_or_else(|(e, _)| panic!("adopting the boot context: {e}"))
        .0;
    cpu.switch_in(boot, StackBounds::default(), rdtsc());

    let idle = new_machine(IDLE_STACK, Box::new(idle_loop))
        .unwrap_or_else(|(e, _)| panic!("no memory for the idle strand: {e}"));
    let idle = locked(|t, rq| t.insert(adopt("idle", Start::Idle, idle), rq))
        .unwrap_or_else(|(e, _)| panic!("creating the idle strand: {e}"))
        .0;
    cpu.set_idle(idle);
    // The sleep set's root node, allocated now and kept for good (see
    // `PerCpu::sleepers`): the heap figure then does not depend on whether
    // any strand has slept yet.
    interrupts::without_interrupts(|| {
        let mut sleepers = cpu.sleepers.lock();
        sleepers.insert((0, idle));
        sleepers.remove(&(0, idle));
    });
    STARTED.store(true, Ordering::Release);

    let reaper = spawn_essential("reaper", reaper_loop)
        .unwrap_or_else(|e| panic!("creating the reaper: {e}"));
    REAPER.store(reaper.as_u64(), Ordering::Relaxed);
    executor::init();
    overflow::init();

    let tick = clock::tick_event()
        .expect("Clock.Tick is declared before strands start")
        .binding(on_tick)
        .install(&crate::events::authority().kernel)
        .expect("the kernel installs on its own event");
    TICK_BINDING.call_once(|| tick);
    log::info!(
        "strands: {name} (boot) is strand {boot}, idle {idle}, reaper {reaper}; quantum {QUANTUM_TICKS} tick(s)"
    );
}

/// A new strand's machine state: a stack whose initial frame starts
/// [`strand_entry`], and its entry function. On failure the entry is
/// handed back.
fn new_machine(stack_size: usize, entry: Entry) -> Result<Machine, (StrandError, Entry)> {
    let stack = match Stack::allocate(stack_size) {
        Ok(stack) => stack,
        Err(e) => return Err((e, entry)),
    };
    // SAFETY: the stack was just mapped writable and nothing else uses it.
    let context = unsafe { Context::new_strand(stack.top(), strand_entry) };
    Ok(Machine {
        context: Box::new(context),
        stack: Some(stack),
        entry: Some(entry),
    })
}

/// Creates a strand; on failure hands the entry function back.
fn spawn_strand(request: SpawnRequest, essential: bool) -> Result<StrandId, (StrandError, Entry)> {
    if !started() {
        return Err((StrandError::NoService, request.entry));
    }
    let machine = new_machine(request.stack_size, request.entry)?;
    let new = NewStrand {
        name: request.name,
        owner: request.owner,
        cpu: cpu::current().id,
        policy: request.policy,
        tickets: request.tickets,
        essential,
        start: Start::Ready,
        machine,
    };
    match locked(|t, rq| t.insert(new, rq)) {
        Ok((id, signal)) => {
            if let Some(signal) = signal {
                raise(Signal::Unblock, &signal);
            }
            Ok(id)
        }
        Err((e, mut new)) => {
            let entry = new.machine.entry.take();
            // The stack is unmapped here, outside the table's lock.
            drop(new);
            Err((e, entry.unwrap_or_else(|| Box::new(|| {}))))
        }
    }
}

/// Spawns a kernel strand that may never be killed.
fn spawn_essential(name: &str, entry: fn()) -> Result<StrandId, StrandError> {
    spawn_strand(
        SpawnRequest {
            name: String::from(name),
            owner: kernel(),
            stack_size: SERVICE_STACK,
            policy: PolicyId::ROUND_ROBIN,
            tickets: 1,
            entry: Box::new(entry),
        },
        true,
    )
    .map_err(|(e, _)| e)
}

/// Where every new strand starts (see [`Context::new_strand`]): with
/// interrupts disabled, on its fresh stack. The entry function runs inside
/// a containment boundary: a panic in it ends the strand, not the kernel.
extern "C" fn strand_entry() -> ! {
    StrandDepth::NONE.restore();
    let me = cpu::current().current_strand();
    let entry = locked(|t, _| t.get_mut(me).and_then(|r| r.machine.entry.take()));
    interrupts::enable();
    let reason = match entry.map(|entry| containment::catch(|| entry.run())) {
        None | Some(Ok(())) => ExitReason::Returned,
        Some(Err(panicked)) if panicked.culprit.is_some() => {
            // An extension's code panicked: the extension goes.
            faults::report("a strand", &panicked);
            drop(panicked);
            faults::want_job();
            faults::kick();
            ExitReason::Panicked
        }
        Some(Err(panicked)) => {
            log::error!("strand {me} panicked and was stopped: {panicked}");
            drop(panicked);
            ExitReason::Panicked
        }
    };
    exit_current(reason)
}

fn idle_loop() {
    loop {
        // Wakes at the next interrupt; the timer interrupt switches to
        // whatever became ready.
        interrupts::enable_and_hlt();
    }
}

/// Switches this CPU away from the current strand. `cause` says why it
/// stops: preempted or yielding (it stays ready), or blocked or exited (the
/// caller already changed its state). Interrupts must be disabled.
fn schedule(cause: Cause) {
    debug_assert!(!interrupts::are_enabled());
    let cpu = cpu::current();
    let prev = cpu.current_strand();
    let idle = cpu.idle_strand();
    let args = locked(|t, rq| {
        if matches!(cause, Cause::Preempted | Cause::Yielded) {
            // Fails only if `prev` is not running, which it is.
            let _ = t.requeue(prev, rq);
        }
        t.choose(rq)
    });
    // A policy whose handler panics is passed over: round-robin answers.
    let answer = args.as_ref().map(|args| {
        let mut answer = None;
        containment::interrupt_stack::call_on_interrupt_stack(&mut || {
            answer = Some(
                faults::call_extensions_deferred(strand::PICK_NEXT_EVENT, || {
                    signals::ask_policy(crate::events::capability(), args)
                })
                .unwrap_or_else(|_| Ok(strand::events::round_robin(args))),
            );
        });
        answer.unwrap_or_else(|| Ok(strand::events::round_robin(args)))
    });
    let switch = locked(|t, rq| {
        let committed = match (&args, answer) {
            (Some(args), Some(answer)) => t.commit(args, answer, rq),
            _ => None,
        };
        let next = match committed {
            Some(commit) => {
                if let Some(rejected) = commit.rejected
                    && args
                        .as_ref()
                        .is_some_and(|a| a.policy != PolicyId::ROUND_ROBIN)
                {
                    log::debug!("policy answer refused ({rejected:?}); round-robin's choice runs");
                }
                commit.strand
            }
            None => {
                // Nothing ready: the idle strand (it may be `prev`).
                let _ = t.run_idle(idle);
                idle
            }
        };
        if next == prev {
            return None;
        }
        let now = rdtsc();
        t.charge(prev, cpu.take_running_cycles(now));
        t.switched_in(next);
        let outgoing = t.get(prev)?.signal(cause);
        let incoming = t.get(next)?;
        let resume = incoming.signal(Cause::Picked);
        let bounds = incoming
            .machine
            .stack
            .as_ref()
            .map(Stack::bounds)
            .unwrap_or_default();
        let load: *const Context = &*incoming.machine.context;
        let save: *mut Context = &mut *t.get_mut(prev)?.machine.context;
        Some((next, save, load, bounds, outgoing, resume))
    });
    let Some((next, save, load, bounds, outgoing, resume)) = switch else {
        return;
    };
    raise(Signal::Checkpoint, &outgoing);
    raise(Signal::Resume, &resume);
    cpu.switch_in(next, bounds, rdtsc());
    // Catch frames are the strand's: keep ours on our stack meanwhile.
    let depth = StrandDepth::save();
    // So are raises in progress (read sections, nesting depth) and the
    // interrupt mark: the next strand starts with none.
    let reads = dispatcher::read_side::park(crate::events::capability());
    // SAFETY: interrupts are disabled. Both contexts are boxed in records
    // that stay in the table: `prev` is running (or a zombie the reaper
    // cannot free before this switch completes: the reaper is a strand and
    // nothing else runs on this CPU meanwhile), and `next` is the strand
    // the table just marked running, switched out earlier by this function
    // or prepared by `Context::new_strand`, with its stack mapped.
    unsafe { context::switch(save, load) };
    reads.restore(crate::events::capability());
    depth.restore();
}

/// The timer interrupt's last step: switches if [`on_tick`] (or a wakeup
/// while the CPU idled) asked for it.
pub fn preempt_point() {
    if started() && cpu::current().take_resched() {
        schedule(Cause::Preempted);
    }
}

/// Makes `id` ready (or leaves it a pending wakeup).
fn wake(id: StrandId) -> Result<(), StrandError> {
    let cpu = cpu::current();
    match locked(|t, rq| t.wake(id, rq))? {
        Woken::Readied(signal) => {
            raise(Signal::Unblock, &signal);
            if cpu.current_strand() == cpu.idle_strand() {
                cpu.request_resched();
            }
        }
        Woken::Pending => {}
    }
    Ok(())
}

/// Blocks the current strand (unless a wakeup is pending).
fn park(reason: BlockReason) -> Result<(), StrandError> {
    if !started() || !interrupts::are_enabled() {
        return Err(StrandError::CannotBlock);
    }
    interrupts::disable();
    let me = cpu::current().current_strand();
    let blocked = locked(|t, _| t.block(me, reason));
    if let Ok(Blocked::Now(signal)) = blocked {
        raise(Signal::Block, &signal);
        schedule(Cause::Blocked(reason));
    }
    interrupts::enable();
    blocked.map(drop)
}

/// Ends the current strand; its stack is freed by the reaper.
fn exit_current(reason: ExitReason) -> ! {
    interrupts::disable();
    let me = cpu::current().current_strand();
    let reaper = StrandId::from_u64(REAPER.load(Ordering::Relaxed));
    let woken = locked(|t, rq| {
        let exited = t.exit(me, reason, rq);
        (exited, t.wake(reaper, rq))
    });
    if let (_, Ok(Woken::Readied(signal))) = woken {
        raise(Signal::Unblock, &signal);
    }
    schedule(Cause::Exited(reason));
    panic!("strand {me} ran again after it exited ({})", reason.name());
}

fn kill(id: StrandId) -> Result<(), StrandError> {
    let me = cpu::current().current_strand();
    let reaper = StrandId::from_u64(REAPER.load(Ordering::Relaxed));
    let (stopped, woken) = locked(|t, rq| {
        let stopped = t.kill(id, rq);
        let woken = matches!(stopped, Ok(Stopped::Done(_))).then(|| t.wake(reaper, rq));
        (stopped, woken)
    });
    match stopped? {
        Stopped::Done(signal) => {
            raise(Signal::Block, &signal);
            if let Some(Ok(Woken::Readied(signal))) = woken {
                raise(Signal::Unblock, &signal);
            }
            Ok(())
        }
        // Killing oneself from a handler that runs with interrupts off (an
        // exception's own stack, perhaps) is refused like blocking there.
        Stopped::Running if id == me && !interrupts::are_enabled() => Err(StrandError::CannotBlock),
        Stopped::Running if id == me => exit_current(ExitReason::Killed),
        Stopped::Running => Err(StrandError::NotReady(id)),
    }
}

fn suspend(id: StrandId) -> Result<(), StrandError> {
    let me = cpu::current().current_strand();
    match locked(|t, rq| t.suspend(id, rq))? {
        Stopped::Done(signal) => {
            raise(Signal::Block, &signal);
            Ok(())
        }
        Stopped::Running if id == me => park(BlockReason::Suspended),
        Stopped::Running => Err(StrandError::NotReady(id)),
    }
}

fn join(target: StrandId) -> Result<(), StrandError> {
    let me = cpu::current().current_strand();
    loop {
        match locked(|t, _| t.add_joiner(target, me))? {
            Join::Gone => return Ok(()),
            Join::Wait => park(BlockReason::Join)?,
        }
    }
}

/// Lets other ready strands run. Only from thread context: in an interrupt
/// or exception handler (interrupts disabled) it does nothing, so no switch
/// ever happens on an exception's own stack.
fn yield_now() {
    if started() && interrupts::are_enabled() {
        interrupts::without_interrupts(|| schedule(Cause::Yielded));
    }
}

/// Frees exited strands' stacks and records, then wakes their joiners (a
/// join returns only after the stack's frames are free).
fn reaper_loop() {
    loop {
        while let Some(reaped) = locked(|t, _| {
            let me = cpu::current().current_strand();
            t.reap(|id| id == me)
        }) {
            drop(reaped.machine);
            // A strand killed in its sleep leaves its timer behind.
            let cpu = cpu::current();
            interrupts::without_interrupts(|| {
                let mut sleepers = cpu.sleepers.lock();
                sleepers.retain(|&(_, id)| id != reaped.id);
            });
            for joiner in locked(|t, _| t.reaped(reaped.id)) {
                // A joiner killed meanwhile does not need waking.
                let _ = wake(joiner);
            }
        }
        // Woken by every exit; a pending wakeup makes this return at once.
        let _ = park(BlockReason::Idle);
    }
}

/// Strands waiting for the reaper.
pub fn zombies() -> usize {
    locked(|t, _| t.zombies())
}

/// Checks the table's invariants against this CPU's run queue.
pub fn check() -> Result<(), String> {
    locked(|t, rq| t.check(rq))
}

/// Spawns a kernel service strand (essential: it cannot be killed) with a
/// stack of `stack_size` bytes.
pub fn spawn_service(name: &str, stack_size: usize, entry: fn()) -> Result<StrandId, StrandError> {
    spawn_strand(
        SpawnRequest {
            name: String::from(name),
            owner: kernel(),
            stack_size,
            policy: PolicyId::ROUND_ROBIN,
            tickets: 1,
            entry: Box::new(entry),
        },
        true,
    )
    .map_err(|(e, _)| e)
}

/// Spawns a strand owned by the kernel.
pub fn spawn_kernel(
    name: &str,
    stack_size: usize,
    entry: impl FnOnce() + Send + 'static,
) -> Result<strand::Strand, StrandError> {
    strand::Builder::new(name)
        .stack_size(stack_size)
        .spawn(&kernel(), entry)
}
