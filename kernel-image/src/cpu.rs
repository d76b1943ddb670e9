//! Per-CPU state: what each processor is doing, kept in one place so that
//! a second CPU needs a second instance, not a rewrite.
//!
//! Spindle runs on CPU 0 only today, so [`current`] returns the one
//! static instance. Fields that interrupt handlers read without a lock are
//! atomics; the run queue and the sleep queue are spin locks taken with
//! interrupts disabled (the run queue always after the strand table's lock,
//! see [`crate::strands`]).

use alloc::collections::BTreeSet;
use core::sync::atomic::{AtomicBool, AtomicU32, AtomicU64, AtomicUsize, Ordering};

use strand::{CpuId, RunQueue, StrandId};

/// The stack a strand runs on, as the page-fault handler needs it to
/// recognise an overflow: `[guard_start, bottom)` is unmapped, `[bottom,
/// top)` is the stack. All zero when unknown (the boot stack).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct StackBounds {
    /// First byte of the unmapped guard region below the stack.
    pub guard_start: u64,
    /// Lowest byte of the stack.
    pub bottom: u64,
    /// One past the highest byte of the stack.
    pub top: u64,
}

/// One CPU's state.
pub struct PerCpu {
    /// This CPU.
    pub id: CpuId,
    current: AtomicU64,
    idle: AtomicU64,
    /// Ready strands of this CPU.
    pub run_queue: spin::Mutex<RunQueue>,
    /// Sleeping strands by wake-up time (ns since boot). Its root node is
    /// allocated when strands start and, like the run queue's, kept when
    /// the set empties, so whether a strand sleeps at a given moment does
    /// not move the heap figure.
    pub sleepers: spin::Mutex<BTreeSet<(u64, StrandId)>>,
    need_resched: AtomicBool,
    quantum_ticks: AtomicU32,
    running_since: AtomicU64,
    guard_start: AtomicU64,
    stack_bottom: AtomicU64,
    stack_top: AtomicU64,
    /// Page faults being handled on this CPU (nesting depth).
    pub page_fault_depth: AtomicUsize,
    /// The guard-page address and RIP of the last stack overflow, for the
    /// report the dying strand prints.
    pub overflow: [AtomicU64; 2],
    /// The stack an extension's stack overflow is captured on, and the
    /// overflow being captured (see [`crate::containment::capture_stack`]).
    pub overflow_capture: crate::containment::capture_stack::CaptureStack,
}

impl PerCpu {
    const fn new(id: CpuId) -> Self {
        Self {
            id,
            current: AtomicU64::new(0),
            idle: AtomicU64::new(0),
            run_queue: spin::Mutex::new(RunQueue::new(id)),
            sleepers: spin::Mutex::new(BTreeSet::new()),
            need_resched: AtomicBool::new(false),
            quantum_ticks: AtomicU32::new(0),
            running_since: AtomicU64::new(0),
            guard_start: AtomicU64::new(0),
            stack_bottom: AtomicU64::new(0),
            stack_top: AtomicU64::new(0),
            page_fault_depth: AtomicUsize::new(0),
            overflow: [AtomicU64::new(0), AtomicU64::new(0)],
            overflow_capture: crate::containment::capture_stack::CaptureStack::new(),
        }
    }

    /// The strand running here.
    pub fn current_strand(&self) -> StrandId {
        StrandId::from_u64(self.current.load(Ordering::Relaxed))
    }

    /// This CPU's idle strand.
    pub fn idle_strand(&self) -> StrandId {
        StrandId::from_u64(self.idle.load(Ordering::Relaxed))
    }

    /// Records the idle strand (once, at boot).
    pub fn set_idle(&self, id: StrandId) {
        self.idle.store(id.as_u64(), Ordering::Relaxed);
    }

    /// Records that `id`, on the stack `bounds`, runs here from now on
    /// (with interrupts disabled, just before the switch).
    pub fn switch_in(&self, id: StrandId, bounds: StackBounds, now_tsc: u64) {
        self.current.store(id.as_u64(), Ordering::Relaxed);
        self.guard_start
            .store(bounds.guard_start, Ordering::Relaxed);
        self.stack_bottom.store(bounds.bottom, Ordering::Relaxed);
        self.stack_top.store(bounds.top, Ordering::Relaxed);
        self.quantum_ticks.store(0, Ordering::Relaxed);
        self.running_since.store(now_tsc, Ordering::Relaxed);
    }

    /// The current strand's stack.
    pub fn stack_bounds(&self) -> StackBounds {
        StackBounds {
            guard_start: self.guard_start.load(Ordering::Relaxed),
            bottom: self.stack_bottom.load(Ordering::Relaxed),
            top: self.stack_top.load(Ordering::Relaxed),
        }
    }

    /// TSC cycles since the current strand was switched in, and restarts
    /// the count (for CPU-time accounting).
    pub fn take_running_cycles(&self, now_tsc: u64) -> u64 {
        now_tsc.wrapping_sub(self.running_since.swap(now_tsc, Ordering::Relaxed))
    }

    /// Counts one timer tick of the current strand's quantum; returns the
    /// ticks used so far.
    pub fn tick_quantum(&self) -> u32 {
        self.quantum_ticks.fetch_add(1, Ordering::Relaxed) + 1
    }

    /// Asks for a switch at the end of the current interrupt.
    pub fn request_resched(&self) {
        self.need_resched.store(true, Ordering::Relaxed);
    }

    /// Takes the switch request.
    pub fn take_resched(&self) -> bool {
        self.need_resched.swap(false, Ordering::Relaxed)
    }
}

static CPU0: PerCpu = PerCpu::new(CpuId(0));

/// The state of the CPU this code runs on.
pub fn current() -> &'static PerCpu {
    &CPU0
}
