//! Where asynchronous handlers and events run.
//!
//! The dispatcher does not create threads: it hands each asynchronous piece
//! of work to an [`Executor`] as a boxed [`Job`]. In the kernel the Strand
//! service implements it (one strand per job, or a worker pool); host tests
//! use a simple queue.
//!
//! An event uses its own executor if its authority set one
//! ([`EventAuthority::set_executor`](crate::EventAuthority::set_executor)),
//! otherwise the process-wide one installed by [`set_global_executor`].
//! A raise that needs an executor and finds none returns
//! [`RaiseError::NoExecutor`](crate::RaiseError::NoExecutor) *before* running
//! any handler.

use alloc::boxed::Box;
use alloc::sync::Arc;
use core::fmt;

use crate::KernelCapability;

/// A unit of deferred work: one asynchronous handler call, or one whole
/// dispatch of an asynchronous event.
pub type Job = Box<dyn FnOnce() + Send + 'static>;

/// Runs jobs later, outside the raise that produced them.
///
/// Invariant expected of implementations: `spawn` must not run the job
/// before returning if it may be called from an interrupt handler (the job
/// would then run in interrupt context), and it must not block. Dropping a
/// job without running it is allowed (for example at shutdown); it drops the
/// handler references the job holds.
pub trait Executor: Send + Sync {
    /// Queues `job` to run later.
    fn spawn(&self, job: Job);
}

static GLOBAL_EXECUTOR: spin::Once<Arc<dyn Executor>> = spin::Once::new();

/// Returned by [`set_global_executor`] when one is already installed.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct ExecutorAlreadySet;

impl fmt::Display for ExecutorAlreadySet {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("a global executor is already installed")
    }
}

/// Installs the process-wide executor used by every event that has none of
/// its own (kernel only). It can be installed once.
pub fn set_global_executor(
    _kernel: KernelCapability,
    executor: Arc<dyn Executor>,
) -> Result<(), ExecutorAlreadySet> {
    let mut installed = false;
    GLOBAL_EXECUTOR.call_once(|| {
        installed = true;
        executor
    });
    if installed {
        Ok(())
    } else {
        Err(ExecutorAlreadySet)
    }
}

/// The process-wide executor, if installed. Crate-private: a job spawned
/// on it directly would escape the binding accounting that unloading an
/// extension waits on.
pub(crate) fn global_executor() -> Option<&'static Arc<dyn Executor>> {
    GLOBAL_EXECUTOR.get()
}
