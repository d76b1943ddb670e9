//! x86_64 hardware glue: the only place where the kernel talks to devices,
//! descriptor tables and control registers.

pub mod apic;
pub mod context;
pub mod fault_stack;
pub mod fpu;
pub mod gdt;
pub mod idt;
pub mod pic;
pub mod pit;
pub mod probe;
pub mod push_port;
pub mod qemu;
pub mod serial;
pub mod timer_entry;

/// Reads the time-stamp counter.
#[inline]
pub fn rdtsc() -> u64 {
    // SAFETY: RDTSC has no side effects and is available on every x86_64 CPU.
    unsafe { core::arch::x86_64::_rdtsc() }
}
