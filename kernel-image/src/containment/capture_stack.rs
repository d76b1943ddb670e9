//! The stack a stack overflow is captured on.
//!
//! When extension code inside a kernel call runs into its stack's guard
//! page, the page-fault handler resumes the faulting context in a capture
//! stub ([`super::watchdog`]) that walks the extension's frames out to the
//! kernel frame that called in, prepares the panic record and jumps to the
//! unwind trampoline on the faulting stack. The stub needs a stack of its
//! own: not the faulting stack (it is full), not the page-fault handler's
//! IST stack (the handler has returned when the stub runs, and the next
//! page fault is delivered there), and not the interrupt stack, because
//! that is the stack that overflowed when the faulting code is a
//! `Clock.Tick` handler. So each CPU has a capture stack, allocated at
//! boot ([`init`]) with a guard page below, and every captured overflow
//! runs there, whichever stack overflowed: a strand's, the shell's boot
//! stack or the interrupt stack.
//!
//! **One user at a time.** The stub runs with interrupts off, from the
//! page fault's `iretq` until it leaves for the trampoline; an overflow is
//! captured only from code that ran with interrupts on; NMIs and machine
//! checks have their own IST stacks. So on one CPU the stack has at most
//! one user, and a fault in the stub itself (interrupts off) is never
//! captured. [`claim`] checks it all the same: it marks the stack busy,
//! and a claim before the matching [`release`] is refused; the fault then
//! takes the page-fault handler's fatal path (a kernel panic report, not a
//! double fault). The state lives in this CPU's [`crate::cpu::PerCpu`].

use core::sync::atomic::{AtomicBool, AtomicU64, Ordering};

use crate::strands::stack::Stack;

/// Bytes of the capture stack: the stub walks the extension's frames with
/// the unwinder's register contexts, captures a backtrace and formats the
/// panic record, as the panic handler does before an unwind.
pub const CAPTURE_STACK_BYTES: usize = 64 * 1024;

/// Where a captured overflow faulted.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Fault {
    /// The faulting instruction.
    pub rip: u64,
    /// The stack pointer at the fault.
    pub rsp: u64,
    /// The address that faulted (in the guard page).
    pub address: u64,
}

/// One CPU's capture stack and the overflow being captured on it.
pub struct CaptureStack {
    /// Top of the stack (0 before [`init`]).
    top: AtomicU64,
    /// Set from [`claim`] to [`release`].
    busy: AtomicBool,
    rip: AtomicU64,
    rsp: AtomicU64,
    address: AtomicU64,
}

impl CaptureStack {
    /// No stack yet.
    pub const fn new() -> Self {
        Self {
            top: AtomicU64::new(0),
            busy: AtomicBool::new(false),
            rip: AtomicU64::new(0),
            rsp: AtomicU64::new(0),
            address: AtomicU64::new(0),
        }
    }
}

impl Default for CaptureStack {
    fn default() -> Self {
        Self::new()
    }
}

fn this_cpu() -> &'static CaptureStack {
    &crate::cpu::current().overflow_capture
}

/// Allocates this CPU's capture stack. Boot calls it once, before
/// interrupts are enabled.
pub fn init() {
    let stack = Stack::allocate(CAPTURE_STACK_BYTES)
        .unwrap_or_else(|e| panic!("no memory for the overflow capture stack: {e}"));
    this_cpu().top.store(stack.top(), Ordering::Release);
    // The stack serves for the kernel's whole life.
    core::mem::forget(stack);
}

/// Whether `address` lies in this CPU's capture stack (false before
/// [`init`]).
pub fn contains(address: u64) -> bool {
    let top = this_cpu().top.load(Ordering::Acquire);
    top != 0 && (top - CAPTURE_STACK_BYTES as u64..top).contains(&address)
}

/// Takes this CPU's capture stack for the overflow `fault` and returns its
/// (16-byte-aligned) top; `None` before [`init`] or while it is in use.
/// Called by the page-fault handler, interrupts off.
pub fn claim(fault: Fault) -> Option<u64> {
    let stack = this_cpu();
    let top = stack.top.load(Ordering::Acquire);
    if top == 0 || stack.busy.swap(true, Ordering::Acquire) {
        return None;
    }
    stack.rip.store(fault.rip, Ordering::Relaxed);
    stack.rsp.store(fault.rsp, Ordering::Relaxed);
    stack.address.store(fault.address, Ordering::Relaxed);
    Some(top)
}

/// The overflow being captured on this CPU (what [`claim`] recorded).
pub fn fault() -> Fault {
    let stack = this_cpu();
    Fault {
        rip: stack.rip.load(Ordering::Relaxed),
        rsp: stack.rsp.load(Ordering::Relaxed),
        address: stack.address.load(Ordering::Relaxed),
    }
}

/// Ends the use [`claim`] began. The stub calls it last on the stack,
/// interrupts still off; what it runs after (restoring registers, the
/// jump to the trampoline) cannot be interrupted or captured.
pub fn release() {
    this_cpu().busy.store(false, Ordering::Release);
}

/// Whether an overflow is being captured on this CPU.
pub fn in_use() -> bool {
    this_cpu().busy.load(Ordering::Acquire)
}
