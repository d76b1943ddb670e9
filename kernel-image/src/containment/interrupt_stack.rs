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
//! raise re-enables interrupts once on it (see [`crate::time`],
//! [`with_nested_ticks`]); a nested timer interrupt is then delivered on a
//! small stack of its own (an IST entry of the IDT loaded for the raise),
//! so the raise's handlers are the only code below the raise's frames on
//! this stack, and it switches neither strands nor back to this stack.

use core::sync::atomic::{AtomicU64, Ordering};

use crate::arch::{gdt, idt};
use crate::strands::stack::Stack;

/// Bytes of the interrupt stack.
pub const INTERRUPT_STACK_BYTES: usize = 64 * 1024;

/// Bytes of the stack nested timer interrupts run on (see
/// [`with_nested_ticks`]): the accounting-only handler and, at the
/// watchdog's limit, one unwind step and a backtrace.
pub const NESTED_TICK_STACK_BYTES: usize = 32 * 1024;

/// Top of this CPU's interrupt stack (0 before [`init`]).
static TOP: AtomicU64 = AtomicU64::new(0);

/// Allocates the interrupt stack and the nested-tick stack. Boot calls it
/// once, before interrupts are enabled.
pub fn init() {
    let nested = Stack::allocate(NESTED_TICK_STACK_BYTES)
        .unwrap_or_else(|e| panic!("no memory for the nested-tick stack: {e}"));
    // SAFETY: the stack was just allocated (mapped, writable, a guard page
    // below, 16-byte-aligned top) and is kept for ever, used by nothing
    // else; the entry is named only by the IDT `with_nested_ticks` loads,
    // which it loads only once `TOP` (set below) says the interrupt stack
    // exists, so no exception uses the entry while it changes.
    unsafe { gdt::set_interrupt_stack(gdt::NESTED_TICK_IST, x86_64::VirtAddr::new(nested.top())) };
    core::mem::forget(nested);
    let stack = Stack::allocate(INTERRUPT_STACK_BYTES)
        .unwrap_or_else(|e| panic!("no memory for the interrupt stack: {e}"));
    TOP.store(stack.top(), Ordering::Release);
    // The stack serves for the kernel's whole life.
    core::mem::forget(stack);
}

/// Runs `f` with interrupts enabled, timer interrupts that arrive
/// meanwhile being delivered on the nested-tick stack instead of below
/// `f`'s frames on the interrupt stack: so a `Clock.Tick` handler that
/// runs into the interrupt stack's guard page is the only code that
/// does, and the nested tick's frames never do. For the timer's
/// `Clock.Tick` raise only, on the interrupt stack ([`in_use`]) with
/// interrupts disabled, and while every timer interrupt is a nested one
/// (it neither switches strands nor enables interrupts: the timer's
/// `Tick::Nested`). Otherwise `f` runs as it is, interrupts unchanged.
pub fn with_nested_ticks(f: impl FnOnce()) {
    if !in_use() || x86_64::instructions::interrupts::are_enabled() {
        f();
        return;
    }
    // SAFETY: interrupts are disabled; `init` pointed the nested-tick IST
    // entry at a stack of its own before the interrupt stack existed (and
    // we run on it); and our caller's contract makes every timer
    // interrupt until `load_after_tick_raise` a nested one, which runs
    // with interrupts off from entry to `iretq` and never switches, so
    // the stack has one user at a time.
    unsafe { idt::load_for_tick_raise() };
    x86_64::instructions::interrupts::enable();
    f();
    x86_64::instructions::interrupts::disable();
    idt::load_after_tick_raise();
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
/// before it returns ([`with_nested_ticks`]).
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
