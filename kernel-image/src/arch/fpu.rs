//! The x87/SSE control state.
//!
//! The kernel and extensions are compiled without SSE (soft float), but the
//! unwinder saves and restores MXCSR and the x87 control word when it
//! captures a register context, and those instructions fault unless the
//! FPU and SSE are enabled. So the kernel enables them once, early at boot,
//! before anything can unwind. No compiled code keeps values in SSE or x87
//! registers, so a context switch need not save them.

use x86_64::registers::control::{Cr0, Cr0Flags, Cr4, Cr4Flags};

/// Enables the x87 FPU and SSE: CR0.MP set, CR0.EM and CR0.TS clear,
/// CR4.OSFXSR and CR4.OSXMMEXCPT set.
pub fn enable() {
    // SAFETY: these bits only permit x87/SSE instructions (EM, TS clear; MP
    // makes WAIT honour TS) and declare that the OS saves SSE state with
    // FXSAVE and handles SIMD exceptions (OSFXSR, OSXMMEXCPT); they change
    // nothing about memory or paging.
    unsafe {
        Cr0::update(|flags| {
            flags.insert(Cr0Flags::MONITOR_COPROCESSOR);
            flags.remove(Cr0Flags::EMULATE_COPROCESSOR | Cr0Flags::TASK_SWITCHED);
        });
        Cr4::update(|flags| {
            flags.insert(Cr4Flags::OSFXSR | Cr4Flags::OSXMMEXCPT_ENABLE);
        });
    }
}
