//! The dispatcher's executor: every asynchronous event or handler runs in a
//! strand of its own, as in SPIN.
//!
//! A raise may queue a job from anywhere, the timer interrupt included, so
//! [`StrandExecutor::spawn`] only appends the job to a queue and wakes the
//! *spawner*, a kernel strand that creates one strand per job in thread
//! context. If a strand cannot be created (memory exhausted), the spawner
//! runs the job itself rather than drop it.

use alloc::boxed::Box;
use alloc::collections::LinkedList;
use alloc::string::String;
use alloc::sync::Arc;
use core::sync::atomic::{AtomicU64, Ordering};

use dispatcher::{Executor, Job};
use strand::service::SpawnRequest;
use strand::{BlockReason, PolicyId, StrandId};
use x86_64::instructions::interrupts;

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
                entry: Box::new(job),
            };
            if let Err((e, job)) = super::spawn_strand(request, false) {
                log::warn!(
                    "no strand for an asynchronous handler ({e}); running it in the spawner"
                );
                job.run();
            }
        }
        let _ = super::park(BlockReason::Idle);
    }
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
