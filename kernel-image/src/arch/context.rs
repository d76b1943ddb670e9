//! The context switch: a strand's registers saved on its own stack, its
//! stack pointer in its [`Context`].
//!
//! [`switch`] pushes RFLAGS and the callee-saved registers of the System V
//! ABI (RBX, RBP, R12-R15) on the outgoing strand's stack, stores RSP in the
//! outgoing context, loads the incoming one's RSP, pops the same registers
//! and returns — into the incoming strand where it last called `switch`, or,
//! for a new strand, into its entry function. Caller-saved registers need no
//! saving: `switch` is an ordinary call, so the compiler has already saved
//! whatever it needs. The kernel target uses no SSE or x87 registers, so
//! there is no floating-point state to switch.
//!
//! Every switch happens with interrupts disabled; RFLAGS (and so IF) is
//! restored from the incoming stack, so a strand switched out from the
//! timer interrupt resumes with interrupts off and returns from that
//! interrupt with `iretq`, which restores its own flags, and a new strand
//! starts with interrupts off and enables them itself.

use core::arch::naked_asm;

/// A switched-out strand's saved stack pointer (everything else is on its
/// stack). Kept boxed, so that its address stays fixed while records move.
#[derive(Debug, Default)]
#[repr(C)]
pub struct Context {
    rsp: u64,
}

/// RFLAGS of a new strand: only the always-one bit 1 set (interrupts off).
const INITIAL_RFLAGS: u64 = 0x2;

/// Bytes of the initial frame below a new stack's top.
const INITIAL_FRAME: u64 = 9 * 8;

impl Context {
    /// The context of a strand that will start at `entry` on the stack
    /// whose (16-byte aligned) top is `stack_top`.
    ///
    /// # Safety
    /// `[stack_top - 72, stack_top)` must be mapped, writable and unused by
    /// anything else.
    pub unsafe fn new_strand(stack_top: u64, entry: extern "C" fn() -> !) -> Self {
        debug_assert_eq!(stack_top % 16, 0);
        // From the top down: a zero return address for `entry` (ends
        // backtraces, and leaves RSP = 8 mod 16 at entry, as after a call),
        // the address `switch` returns to, RFLAGS, then RBP, RBX, R12-R15.
        let frame: [u64; 9] = [
            0, // r15
            0, // r14
            0, // r13
            0, // r12
            0, // rbx
            0, // rbp
            INITIAL_RFLAGS,
            entry as *const () as u64,
            0, // return address of `entry`
        ];
        let rsp = stack_top - INITIAL_FRAME;
        // SAFETY: the caller guarantees the 72 bytes below the top are ours
        // and writable; `rsp` is 8-byte aligned.
        unsafe { core::ptr::copy_nonoverlapping(frame.as_ptr(), rsp as *mut u64, frame.len()) };
        Self { rsp }
    }
}

/// Saves the running strand's registers and stack pointer into `save`, and
/// resumes the strand whose context is `load`.
///
/// # Safety
/// Interrupts must be disabled. `save` must be valid for a write and stay
/// valid until the saved strand is resumed. `load` must hold the stack
/// pointer saved by an earlier `switch` (or made by
/// [`Context::new_strand`]) of a strand that is not running, whose stack is
/// still mapped.
#[unsafe(naked)]
pub unsafe extern "sysv64" fn switch(save: *mut Context, load: *const Context) {
    naked_asm!(
        "pushfq",
        "push rbp",
        "push rbx",
        "push r12",
        "push r13",
        "push r14",
        "push r15",
        "mov [rdi], rsp",
        "mov rsp, [rsi]",
        "pop r15",
        "pop r14",
        "pop r13",
        "pop r12",
        "pop rbx",
        "pop rbp",
        "popfq",
        "ret",
    )
}
