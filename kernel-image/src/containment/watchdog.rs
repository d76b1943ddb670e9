//! The watchdog: extension code that runs for a second without returning
//! to the kernel (an endless loop, a spin on a lock it holds itself) is
//! made to panic, and the panic is contained like any other.
//!
//! **Detection.** Every timer interrupt looks at the context it
//! interrupted. If that context is inside a kernel call into extensions (an
//! extension-fault frame is open, see [`super::faults`], and no
//! catch-everything frame: a strand's own code is not timed) and the
//! interrupted instruction lies in a loaded extension's image, the tick is
//! counted against that call; [`LIMIT_TICKS`] such ticks (one second at
//! the timer's rate) within one call fire the watchdog. The count belongs
//! to the interrupted strand's containment state, so it follows the strand
//! across switches and restarts with each new call into extensions. Ticks
//! that find the kernel's own code running (a kernel function the
//! extension called) do not count: that code may hold kernel locks and is
//! never interrupted this way.
//!
//! **Forcing the unwind.** Unwinding cannot start at the interrupted
//! instruction: the personality routine finds no call-site entry for an
//! arbitrary instruction and would abort. Instead the handler follows the
//! unwind rules from the interrupted registers (all of them, saved by the
//! timer's entry stub, [`crate::arch::timer_entry`]) one frame out, to the
//! caller of the interrupted function
//! ([`crate::debug::unwind::leave_interrupted_frame`]), restoring the
//! caller's callee-saved registers. It then rewrites the interrupted
//! context so that `iretq` enters [`trampoline`] as if that caller had
//! just called it: the stack pointer at the return address into the
//! caller, the caller's callee-saved registers, and in `rdi` the panic
//! record (extension, message, the backtrace of the looping code). The
//! trampoline starts an ordinary unwind with that record; the caller's
//! return address is a call site, so from there on the unwind is that of a
//! panic raised by the call: the landing pads of every frame out to the
//! boundary run — the extension's own (dropping what they own: an
//! asynchronous handler's job owns its event argument and its references
//! to the handler, which would otherwise never be released) and the
//! kernel's — and the boundary reports and unloads the extension.
//!
//! Only the interrupted frame is abandoned: its locals are never dropped
//! (as if forgotten, which safe code must tolerate) and it never resumes.
//! Its callers see exactly what a panic in the call they were making would
//! have left, except for what the abandoned function wrote meanwhile into
//! memory they own; library code keeps such memory valid at every call of
//! code it does not control (which may panic) and under the forgetting of
//! its guards, and a loop that runs for a second is such code. The one
//! thing the frame could hold of the kernel's — a guard of a kernel lock —
//! no public interface hands to an extension, and ticks that find kernel
//! code running never fire.
//!
//! **Stack overflow** takes the same road from the page-fault handler
//! ([`redirect_overflow`]): a fault just below the stack pointer of
//! extension code running inside a kernel call is an overflow into the
//! stack's guard page. The handler cannot walk from its own frame (it runs
//! on the page-fault stack and only has the CPU's frame), so it resumes
//! the faulting context, interrupts off, in a small stub on this CPU's
//! capture stack ([`overflow_capture`], [`super::capture_stack`]) that
//! saves the callee-saved registers the faulting code had, leaves *all*
//! the extension's frames out to the innermost kernel frame
//! ([`crate::debug::unwind::unwind_to_kernel`]: its landing pads would run
//! next to the guard page) and jumps to the trampoline on the faulting
//! stack, now far above its guard page; the abandoned frames' destructors
//! do not run. The capture stack is neither the faulting stack nor the
//! interrupt stack, so the same road serves whichever stack overflowed,
//! the interrupt stack of a `Clock.Tick` handler included.
//!
//! **`Clock.Tick` handlers** run inside the timer interrupt, on the
//! interrupt stack, with interrupts re-enabled after the interrupt was
//! acknowledged ([`crate::time::on_timer_interrupt`]). A timer interrupt
//! that arrives meanwhile is *nested*: it only counts the tick and runs
//! this check, whose interrupted context is the outer interrupt's raise
//! (its extension-fault frame open). The forced unwind then runs on the
//! interrupt stack, through the dispatcher's frames, to the boundary the
//! timer opened around the raise; so does the unwind of a handler's stack
//! overflow, from the dispatcher's frame that called the handler.
//!
//! **Asynchronous handlers** run inside an extension boundary in their
//! strand (`strands/executor.rs`) and are timed the same way.

use alloc::boxed::Box;
use core::fmt::Write;

use super::{FixedText, NAME_CAPACITY, Panicked, StrandDepth, capture_stack};
use crate::arch::timer_entry::InterruptedRegisters;
use crate::debug::backtrace::Backtrace;
use crate::debug::extensions::try_snapshot;
use crate::debug::symbols;
use crate::debug::unwind::{self, Registers};

/// Timer ticks in extension code within one call before the watchdog
/// fires: one second.
pub const LIMIT_TICKS: u32 = crate::arch::apic::TIMER_HZ as u32;

/// Most extension frames followed out to the kernel.
const MAX_EXTENSION_FRAMES: usize = 100_000;

/// RFLAGS.IF.
const INTERRUPT_FLAG: u64 = 1 << 9;

/// Called by the timer interrupt with the interrupted registers and the
/// interrupted context's containment state; redirects the context to
/// [`trampoline`] when the watchdog fires.
pub fn on_timer(registers: &mut InterruptedRegisters, interrupted: &mut StrandDepth) {
    if !interrupted.in_extension_call() || registers.rflags & INTERRUPT_FLAG == 0 {
        return;
    }
    let start = Registers {
        rip: registers.rip,
        rsp: registers.rsp,
        rbp: registers.rbp,
        rbx: registers.rbx,
        r12: registers.r12,
        r13: registers.r13,
        r14: registers.r14,
        r15: registers.r15,
    };
    let (culprit, caller) = {
        let Some(registry) = try_snapshot() else {
            return;
        };
        let Some(frame) = registry.find(start.rip) else {
            return;
        };
        interrupted.extension_samples += 1;
        if interrupted.extension_samples < LIMIT_TICKS {
            return;
        }
        let Some(kernel) = symbols::kernel() else {
            return;
        };
        let mut culprit = FixedText::new();
        let _ = culprit.write_str(frame.name);
        let caller = unwind::leave_interrupted_frame(start, kernel, &registry);
        (culprit, caller)
    };
    let caller = match caller {
        Ok(frame) => frame,
        Err(reason) => {
            log::error!(
                "watchdog: {} ran for {} ticks but its frames cannot be left ({reason}); it keeps running",
                culprit,
                interrupted.extension_samples
            );
            interrupted.extension_samples = 0;
            return;
        }
    };
    let record = forced_record(
        culprit,
        start,
        line!(),
        format_args!(
            "watchdog: extension code ran for {} timer ticks without returning to the kernel",
            interrupted.extension_samples
        ),
    );
    interrupted.extension_samples = 0;
    // As if the caller had just called the trampoline: the return address
    // into it on top of the stack, its callee-saved registers.
    registers.rip = trampoline as *const () as u64;
    registers.rsp = caller.rsp - 8;
    registers.rbp = caller.rbp;
    registers.rbx = caller.rbx;
    registers.r12 = caller.r12;
    registers.r13 = caller.r13;
    registers.r14 = caller.r14;
    registers.r15 = caller.r15;
    registers.rdi = Box::into_raw(record) as u64;
}

// Entered by `iretq` with the stack pointer at a return address into the
// kernel (so the frame rules are those at a function's first
// instruction), the panic record in `rdi`. It keeps the stack aligned for
// the call and never returns.
core::arch::global_asm!(
    ".pushsection .text.spindle_watchdog_trampoline,\"ax\",@progbits",
    ".global spindle_watchdog_trampoline",
    ".type spindle_watchdog_trampoline,@function",
    "spindle_watchdog_trampoline:",
    ".cfi_startproc",
    "sub rsp, 8",
    ".cfi_adjust_cfa_offset 8",
    "call {unwind}",
    "ud2",
    ".cfi_endproc",
    ".size spindle_watchdog_trampoline, . - spindle_watchdog_trampoline",
    ".popsection",
    unwind = sym unwind_from_trampoline,
);

unsafe extern "C" {
    /// The trampoline (above). Never called as a function: only its
    /// address is used, as the instruction pointer `iretq` resumes at.
    #[link_name = "spindle_watchdog_trampoline"]
    fn trampoline();
}

/// How far below the stack pointer a not-present fault still counts as
/// running into the stack's guard page (a function's stack probe touches
/// its frame page by page).
const OVERFLOW_REACH: u64 = 64 * 1024;

/// Called first by the page-fault handler: if extension code inside a
/// kernel call faulted just below its stack pointer (it ran into the
/// guard page), resumes it in [`overflow_capture`] on this CPU's capture
/// stack ([`super::capture_stack`]), which forces the unwind. Returns
/// whether it did.
pub fn redirect_overflow(
    frame: &mut x86_64::structures::idt::InterruptStackFrame,
    address: u64,
    error_code: u64,
    interrupted: &StrandDepth,
) -> bool {
    const PRESENT: u64 = 1;
    let rip = frame.instruction_pointer.as_u64();
    let rsp = frame.stack_pointer.as_u64();
    let flags = frame.cpu_flags.bits();
    let below_stack = address < rsp.saturating_add(64) && rsp - address.min(rsp) <= OVERFLOW_REACH;
    // Interrupts on at the fault: the capture stub (interrupts off) and
    // the kernel's own interrupt handlers are never captured.
    if !interrupted.in_extension_call()
        || error_code & PRESENT != 0
        || flags & INTERRUPT_FLAG == 0
        || !below_stack
        || capture_stack::contains(rsp)
    {
        return false;
    }
    let in_extension = try_snapshot().is_some_and(|registry| registry.find(rip).is_some());
    if !in_extension {
        return false;
    }
    let Some(top) = capture_stack::claim(capture_stack::Fault { rip, rsp, address }) else {
        return false;
    };
    recover_lost_tick();
    // SAFETY: the faulting context resumes in `overflow_capture` at the top
    // of this CPU's capture stack, which `claim` reserved for it (mapped,
    // 16-byte aligned, used by nothing else until `release`), with
    // interrupts off; the stub never returns to the faulting instruction.
    // Its frames are abandoned for the forced unwind (see the module docs).
    unsafe {
        frame.as_mut().update(|f| {
            f.instruction_pointer = x86_64::VirtAddr::new(overflow_capture as *const () as u64);
            f.stack_pointer = x86_64::VirtAddr::new(top);
            f.cpu_flags =
                x86_64::registers::rflags::RFlags::from_bits_truncate(flags & !INTERRUPT_FLAG);
        });
    }
    true
}

/// A timer interrupt that arrives while the overflowing code's stack
/// pointer is already at the guard page (after a frame's `sub rsp`, before
/// its first store) faults while the CPU pushes the interrupt frame: the
/// page fault is taken instead, with the extension's registers (it is the
/// same overflow), and the timer interrupt, already accepted by the local
/// APIC, is never handled, so its in-service bit would stay set and block
/// every later tick. Any in-service timer vector at a fault of code that
/// ran with interrupts on is such a lost delivery: the timer handler
/// acknowledges first and keeps interrupts off until then (the outer one
/// of a `Clock.Tick` raise acknowledged before it enabled them). So it is
/// acknowledged here.
fn recover_lost_tick() {
    if crate::arch::apic::in_service(crate::arch::idt::TIMER_VECTOR) {
        crate::arch::apic::end_of_interrupt();
    }
}

/// The callee-saved registers of the faulting code, in, and of the kernel
/// frame to resume, out, with where the trampoline starts.
#[repr(C)]
struct Captured {
    r15: u64,
    r14: u64,
    r13: u64,
    r12: u64,
    rbx: u64,
    rbp: u64,
    /// Out: the stack pointer the trampoline starts with.
    target_rsp: u64,
    /// Out: the panic record, for the trampoline's `rdi`.
    record: u64,
}

/// Entered (by `iretq`) on the capture stack's top with the faulting
/// code's registers: saves the callee-saved ones, lets
/// [`leave_overflowed_frames`] replace them with the kernel frame's, loads
/// those and jumps to the trampoline on the faulting stack.
#[unsafe(naked)]
extern "C" fn overflow_capture() -> ! {
    core::arch::naked_asm!(
        "sub rsp, 16",
        "push rbp",
        "push rbx",
        "push r12",
        "push r13",
        "push r14",
        "push r15",
        "mov rdi, rsp",
        "call {leave}",
        "pop r15",
        "pop r14",
        "pop r13",
        "pop r12",
        "pop rbx",
        "pop rbp",
        "mov rdi, [rsp + 8]",
        "mov rsp, [rsp]",
        "jmp spindle_watchdog_trampoline",
        leave = sym leave_overflowed_frames,
    );
}

/// Follows the unwind rules from the faulting state out to the kernel
/// frame that called into the extension and prepares the panic record.
/// Runs on the capture stack, interrupts off.
extern "C" fn leave_overflowed_frames(captured: &mut Captured) {
    let fault = capture_stack::fault();
    let start = Registers {
        rip: fault.rip,
        rsp: fault.rsp,
        rbp: captured.rbp,
        rbx: captured.rbx,
        r12: captured.r12,
        r13: captured.r13,
        r14: captured.r14,
        r15: captured.r15,
    };
    let mut culprit = FixedText::new();
    let kernel_frame = match (try_snapshot(), symbols::kernel()) {
        (Some(registry), Some(kernel)) => {
            if let Some(frame) = registry.find(start.rip) {
                let _ = culprit.write_str(frame.name);
            }
            unwind::unwind_to_kernel(start, kernel, &registry, MAX_EXTENSION_FRAMES)
        }
        _ => Err(unwind::StopReason::RegistryBusy),
    };
    let mut record = forced_record(
        culprit,
        start,
        line!(),
        format_args!(
            "stack overflow: extension code ran into the guard page at {:#x} (stack pointer {:#x})",
            fault.address, start.rsp
        ),
    );
    let kernel_frame = match kernel_frame {
        Ok(frame) => frame,
        Err(reason) => {
            let _ = write!(record.message, "; its frames cannot be left ({reason})");
            crate::panic::fatal_caught(&record)
        }
    };
    captured.r15 = kernel_frame.r15;
    captured.r14 = kernel_frame.r14;
    captured.r13 = kernel_frame.r13;
    captured.r12 = kernel_frame.r12;
    captured.rbx = kernel_frame.rbx;
    captured.rbp = kernel_frame.rbp;
    captured.target_rsp = kernel_frame.rsp - 8;
    captured.record = Box::into_raw(record) as u64;
    capture_stack::release();
}

/// Starts the unwind with the record the watchdog prepared.
extern "C-unwind" fn unwind_from_trampoline(record: *mut Panicked) -> ! {
    // SAFETY: `record` is the pointer `on_timer` made with `Box::into_raw`
    // and put in `rdi` of this one redirected context; it is taken back
    // exactly once, here.
    let record = unsafe { Box::from_raw(record) };
    // As in the panic handler: no interrupt until the boundary.
    x86_64::instructions::interrupts::disable();
    let fallback = record.clone();
    super::resume_unwind(record);
    // No catch frame took it (cannot happen: the context was inside one).
    crate::panic::fatal_caught(&fallback)
}

/// The record a forced unwind carries: `message`, the extension to blame,
/// the backtrace from the interrupted registers, and this file and `line`
/// as the place the kernel stopped it.
fn forced_record(
    culprit: FixedText<NAME_CAPACITY>,
    start: Registers,
    line: u32,
    message: core::fmt::Arguments<'_>,
) -> Box<Panicked> {
    let mut record = Box::new(Panicked {
        message: FixedText::new(),
        file: FixedText::new(),
        line,
        column: 0,
        culprit: Some(culprit),
        backtrace: Some(Backtrace::from_registers(start)),
    });
    let _ = record.message.write_fmt(message);
    let _ = record.file.write_str(file!());
    record
}
