//! The dispatcher's executor: every asynchronous event or handler runs in a
//! strand of its own, as in SPIN.
//!
//! A raise may queue a job from anywhere, the timer interrupt included, so
//! [`StrandExecutor::spawn`] only appends the job to a queue and wakes the
//! *spawner*, a kernel strand that creates one strand per job in thread
//! context. If a strand cannot be created (memory exhausted), the spawner
//! runs the job itself rather than drop it.
//!
//! A job runs inside an extension boundary ([`run_job`]): the handler it
//! runs may be an extension's, and an asynchronous handler is as bounded
//! in time as a synchronous one. A panic in it is contained at the
//! boundary, and the watchdog counts the ticks its extension code runs
//! without returning and forces the unwind after a second, exactly as for
//! a raise (the strand is preemptible, so the kernel kept serving anyway;
//! without the boundary the loop would hold the extension, the strand and
//! its stack for ever).

use alloc::boxed::Box;
use alloc::collections::LinkedList;
use alloc::string::String;
use alloc::sync::Arc;
use core::sync::atomic::{AtomicU64, Ordering};

use dispatcher::{Executor, Job};
use strand::service::SpawnRequest;
use strand::{BlockReason, PolicyId, StrandId};
use x86_64::instructions::interrupts;

/// The site a fault in an asynchronous handler is reported at.
pub const ASYNC_SITE: &str = "an asynchronous handler";

/// Stack of a strand running one asynchronous handler.
pub const JOB_STACK: usize = 64 * 1024;

/// Jobs not yet given a strand. A linked list: each job's node is freed
/// when it is taken, so an idle executor holds no heap.
static JOBS: spin::Mutex<LinkedList<Job>> = spin::Mutex::new(LinkedList::new());
static SPAWNER: AtomicU64 = AtomicU64::new(0);

struct StrandExecutor;

impl Executor for StrandExecutor {
    fn spawn(&self, job: Job) {
        interrupts::without_interrupts(|| JOBS.lock().push_back(job));
        // The spawner exists from boot on; a pending wakeup is kept if it
        // is busy.
        let _ = super::wake(StrandId::from_u64(SPAWNER.load(Ordering::Relaxed)));
    }
}

/// Runs `job` later in a kernel strand of its own. Callable from
/// anywhere, the timer interrupt included (not from inside the scheduler).
pub fn run_later(job: Job) {
    StrandExecutor.spawn(job);
}

fn spawner_loop() {
    loop {
        while let Some(job) = interrupts::without_interrupts(|| JOBS.lock().pop_front()) {
            let request = SpawnRequest {
                name: String::from("async"),
                owner: super::kernel(),
                stack_size: JOB_STACK,
                policy: PolicyId::ROUND_ROBIN,
                tickets: 1,
                entry: Box::new(move || run_job(job)),
            };
            if let Err((e, entry)) = super::spawn_strand(request, false) {
                log::warn!(
                    "no strand for an asynchronous handler ({e}); running it in the spawner"
                );
                entry.run();
            }
        }
        let _ = super::park(BlockReason::Idle);
    }
}

/// Runs `job` at the extension boundary [`ASYNC_SITE`]; a fault there is
/// reported and its extension unloaded by the job [`faults::kick`] queues.
/// A kernel panic passes through to the strand's own catch frame.
///
/// [`faults::kick`]: crate::containment::faults::kick
fn run_job(job: Job) {
    let _ = crate::containment::faults::call_extensions_deferred(ASYNC_SITE, job);
    crate::containment::faults::kick();
}

/// Starts the spawner and installs the executor.
pub fn init() {
    let spawner = super::spawn_essential("async-spawner", spawner_loop)
        .unwrap_or_else(|e| panic!("creating the asynchronous-handler spawner: {e}"));
    SPAWNER.store(spawner.as_u64(), Ordering::Relaxed);
    if dispatcher::set_global_executor(crate::events::capability(), Arc::new(StrandExecutor))
        .is_err()
    {
        log::error!("a global executor was installed before the kernel's");
    }
}
