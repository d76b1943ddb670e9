//! Stack overflow: a strand that runs into the guard region below its
//! stack is stopped, reported, and reaped; the others keep running.
//!
//! The page fault is delivered on its own IST stack (the strand has none
//! left). [`contain`] is the first thing the page-fault handler asks: if
//! the faulting address is in the current strand's guard region, it
//! redirects the interrupted context — instruction pointer to [`die`],
//! stack pointer to the top of the strand's own stack, whose frames are
//! abandoned, interrupts off — and returns; the handler's `iretq` then
//! "returns" into `die`, which reports and ends the strand like any exit.
//! No switch happens on the fault stack, and the fault handler leaves
//! normally, so nested faults keep working.
//!
//! What cannot be contained is refused with a clear panic rather than a
//! triple fault: an overflow with interrupts disabled (the strand may hold
//! a lock that interrupt handlers need, and its state is unknown), or in a
//! nested fault.

use core::sync::atomic::Ordering;

use x86_64::VirtAddr;
use x86_64::registers::rflags::RFlags;
use x86_64::structures::idt::InterruptStackFrame;

use super::stack::Stack;
use crate::arch::fault_stack;
use crate::cpu;

/// Bytes of each nesting level of the page-fault stack.
const FAULT_LEVEL_SIZE: u64 = 32 * 1024;

/// Moves the page-fault handler to a stack with a guard page below it.
pub fn init() {
    let stack = Stack::allocate((FAULT_LEVEL_SIZE * fault_stack::LEVELS as u64) as usize)
        .unwrap_or_else(|e| panic!("no memory for the page-fault stack: {e}"));
    let top = stack.top();
    // The stack serves for the kernel's whole life.
    core::mem::forget(stack);
    x86_64::instructions::interrupts::without_interrupts(|| {
        // SAFETY: the stack was just allocated with a guard page below it,
        // sized for every level, and is forgotten (kept for ever); interrupts
        // are off and no page fault is in progress outside a handler.
        unsafe { fault_stack::install(VirtAddr::new(top), FAULT_LEVEL_SIZE) };
    });
}

/// Called first by the page-fault handler; returns true if the fault was a
/// strand's stack overflow and the strand is now headed for [`die`].
pub fn contain(frame: &mut InterruptStackFrame, address: u64, depth: usize) -> bool {
    let cpu = cpu::current();
    let bounds = cpu.stack_bounds();
    if bounds.top == 0 || !(bounds.guard_start..bounds.bottom).contains(&address) {
        return false;
    }
    let strand = cpu.current_strand();
    let rip = frame.instruction_pointer.as_u64();
    if depth != 1 {
        panic!(
            "strand {strand} overflowed its stack (guard page {address:#x}) inside a page-fault handler"
        );
    }
    if !RFlags::from_bits_truncate(frame.cpu_flags.bits()).contains(RFlags::INTERRUPT_FLAG) {
        panic!(
            "strand {strand} overflowed its stack (guard page {address:#x}, RIP {rip:#x}) with interrupts disabled: it may hold a kernel lock, so it cannot be stopped safely"
        );
    }
    cpu.overflow[0].store(address, Ordering::Relaxed);
    cpu.overflow[1].store(rip, Ordering::Relaxed);
    let flags = frame.cpu_flags.bits() & !RFlags::INTERRUPT_FLAG.bits();
    // SAFETY: the interrupted strand is being abandoned: it resumes at
    // `die` (which never returns) on the top of its own stack, which is
    // mapped and which nothing else uses; its old frames are dropped
    // without running (nothing refers into them from outside the strand).
    // RSP = top - 8 is what `die` expects on entry (as after a call), and
    // interrupts stay off until `die` has recorded the exit.
    unsafe {
        frame.as_mut().update(|f| {
            f.instruction_pointer = VirtAddr::new(die as *const () as u64);
            f.stack_pointer = VirtAddr::new(bounds.top - 8);
            f.cpu_flags = RFlags::from_bits_truncate(flags);
        });
    }
    true
}

/// Where an overflowing strand resumes: reports and exits.
extern "C" fn die() -> ! {
    let cpu = cpu::current();
    let strand = cpu.current_strand();
    {
        // In a scope of its own: `exit_current` never returns, so nothing
        // alive at its call would ever be dropped.
        let name = strand::info(strand).map(|s| s.name).unwrap_or_default();
        let address = cpu.overflow[0].load(Ordering::Relaxed);
        let rip = cpu.overflow[1].load(Ordering::Relaxed);
        crate::println!();
        log::error!(
            "strand {strand} ({name}) overflowed its stack: guard page hit at {address:#x} (RIP {rip:#x}); the strand is stopped, the others keep running"
        );
    }
    super::exit_current(strand::ExitReason::StackOverflow)
}
