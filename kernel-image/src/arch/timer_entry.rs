//! The timer interrupt's entry: an assembly stub that saves every
//! general-purpose register of the interrupted context in an
//! [`InterruptedRegisters`] record on the stack, calls the kernel's timer
//! handler with it, and restores the registers (possibly changed) before
//! `iretq`.
//!
//! The `x86-interrupt` ABI keeps the interrupted registers out of reach:
//! the handler's prologue saves only what it clobbers, wherever it likes.
//! The watchdog ([`crate::containment::watchdog`]) needs them all, to
//! follow the unwind rules from the interrupted instruction (the
//! callee-saved registers are part of that state) and to resume the
//! interrupted strand somewhere else with the registers of a kernel frame.
//! The kernel target uses no SSE or x87 registers, so the general-purpose
//! registers are the whole state.

use core::arch::naked_asm;

/// The interrupted context: general-purpose registers (pushed by the
/// stub) and the frame the CPU pushed.
#[derive(Debug)]
#[repr(C)]
pub struct InterruptedRegisters {
    pub r15: u64,
    pub r14: u64,
    pub r13: u64,
    pub r12: u64,
    pub r11: u64,
    pub r10: u64,
    pub r9: u64,
    pub r8: u64,
    pub rdi: u64,
    pub rsi: u64,
    pub rbp: u64,
    pub rbx: u64,
    pub rdx: u64,
    pub rcx: u64,
    pub rax: u64,
    /// Pushed by the CPU: where the interrupted code resumes.
    pub rip: u64,
    pub cs: u64,
    pub rflags: u64,
    /// Pushed by the CPU: the interrupted stack pointer.
    pub rsp: u64,
    pub ss: u64,
}

/// The IDT entry of the timer vector.
///
/// The CPU aligns the stack to 16 bytes and pushes 5 words; the 15 pushes
/// below make 160 bytes in all, so the stack is 16-byte aligned at the
/// `call`, as the C ABI wants.
#[unsafe(naked)]
pub extern "C" fn timer_entry() {
    naked_asm!(
        "push rax",
        "push rcx",
        "push rdx",
        "push rbx",
        "push rbp",
        "push rsi",
        "push rdi",
        "push r8",
        "push r9",
        "push r10",
        "push r11",
        "push r12",
        "push r13",
        "push r14",
        "push r15",
        "mov rdi, rsp",
        "cld",
        "call {handler}",
        "pop r15",
        "pop r14",
        "pop r13",
        "pop r12",
        "pop r11",
        "pop r10",
        "pop r9",
        "pop r8",
        "pop rdi",
        "pop rsi",
        "pop rbp",
        "pop rbx",
        "pop rdx",
        "pop rcx",
        "pop rax",
        "iretq",
        handler = sym timer_handler,
    );
}

/// The timer handler proper, called by [`timer_entry`] with the
/// interrupted registers, which it may change.
extern "C" fn timer_handler(registers: &mut InterruptedRegisters) {
    super::idt::on_timer(registers);
}
