//! The stack an interrupt handler's calls into extensions run on.
//!
//! The timer interrupt runs on whatever stack it interrupted: a strand's,
//! possibly the idle strand's 16 KiB. Containing a panic there (capturing a
//! backtrace, unwinding with the unwinder's register contexts, formatting
//! the report) needs more than such a stack may have left, and extension
//! handlers of `Clock.Tick` are entitled to a stack of known size
//! regardless of which strand the tick interrupted. So the raise runs on a
//! stack of its own ([`call_on_interrupt_stack`]), with a guard page below;
//! the catch frame sits inside the call, so an unwind never crosses the
//! switch. One stack per CPU is enough: it is entered only with interrupts
//! disabled and only when not in use already. The timer's `Clock.Tick`
//! raise re-enables interrupts once on it (see [`crate::time`]); a nested
//! timer interrupt then runs below it on the same stack and neither
//! switches stacks nor strands.

use core::sync::atomic::{AtomicU64, Ordering};

use crate::strands::stack::Stack;

/// Bytes of the interrupt stack.
pub const INTERRUPT_STACK_BYTES: usize = 64 * 1024;

/// Top of this CPU's interrupt stack (0 before [`init`]).
static TOP: AtomicU64 = AtomicU64::new(0);

/// Allocates the stack. Boot calls it once, before interrupts are enabled.
pub fn init() {
    let stack = Stack::allocate(INTERRUPT_STACK_BYTES)
        .unwrap_or_else(|e| panic!("no memory for the interrupt stack: {e}"));
    TOP.store(stack.top(), Ordering::Release);
    // The stack serves for the kernel's whole life.
    core::mem::forget(stack);
}

/// Whether `address` lies in the interrupt stack (false before [`init`]).
pub fn contains(address: u64) -> bool {
    let top = TOP.load(Ordering::Acquire);
    top != 0 && (top - INTERRUPT_STACK_BYTES as u64..top).contains(&address)
}

/// Whether the current stack is the interrupt stack.
pub fn in_use() -> bool {
    let rsp: u64;
    // SAFETY: reads the stack pointer; touches nothing.
    unsafe {
        core::arch::asm!("mov {}, rsp", out(reg) rsp, options(nomem, nostack, preserves_flags))
    };
    contains(rsp)
}

/// Runs `f` on the interrupt stack if interrupts are disabled and it is
/// not in use already; otherwise (and before [`init`]) on the current
/// stack. `f` must not let a panic escape (it opens its own catch frame)
/// and must not switch strands. It may enable interrupts only while it
/// runs on the interrupt stack ([`in_use`]) and must disable them again
/// before it returns; an interrupt meanwhile runs below it on this stack.
pub fn call_on_interrupt_stack(f: &mut dyn FnMut()) {
    let top = TOP.load(Ordering::Acquire);
    if top == 0 || in_use() || x86_64::instructions::interrupts::are_enabled() {
        f();
        return;
    }
    extern "C" fn enter(f: *mut &mut dyn FnMut()) {
        // SAFETY: `f` points at the caller's `&mut dyn FnMut()`, alive
        // for the whole call (the caller waits in the `asm!` below).
        unsafe { (*f)() }
    }
    let mut f = f;
    let argument: *mut &mut dyn FnMut() = &mut f;
    // SAFETY: `top` is the 16-byte-aligned top of a mapped stack used by
    // nothing else (interrupts are off, one CPU, and it is not in use). The old stack pointer is
    // kept in r12, which `enter` preserves (callee-saved), and restored
    // after the call. `enter` follows the C ABI; every caller-saved
    // register is declared clobbered. No panic unwinds out of `enter`
    // (the caller's contract), so the unwinder never meets this frame.
    unsafe {
        core::arch::asm!(
            "mov r12, rsp",
            "mov rsp, {top}",
            "call {enter}",
            "mov rsp, r12",
            top = in(reg) top,
            enter = sym enter,
            in("rdi") argument,
            out("r12") _,
            clobber_abi("C"),
        );
    }
}
