//! Fault-tolerant memory probes, in the manner of an exception table: a load
//! from an address that may not be mapped returns an error instead of
//! crashing the kernel.
//!
//! The probe is one instruction at a known address (`spindle_probe_load`).
//! When it page-faults, the page-fault handler sees that RIP, records the
//! fault, and resumes at `spindle_probe_fixup`, which returns "faulted".
//! Used by the shell's `peek` and by the in-kernel test that expects a page
//! fault.

use core::arch::naked_asm;

use spin::Mutex;
use x86_64::instructions::interrupts;
use x86_64::structures::idt::InterruptStackFrame;

/// A fault taken by a probe.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct ProbeFault {
    /// The faulting address (CR2).
    pub address: u64,
    /// The page-fault error code.
    pub error_code: u64,
}

/// Fault recorded by the page-fault handler for the probe in progress.
static LAST_FAULT: Mutex<Option<ProbeFault>> = Mutex::new(None);

// SAFETY: both labels are defined by the naked function below; only their
// addresses are used (compared with and written to the faulting RIP).
unsafe extern "C" {
    static spindle_probe_load: u8;
    static spindle_probe_fixup: u8;
}

/// Loads 8 bytes from `addr` into `*out`; returns 0, or 1 after a fault.
///
/// # Safety
/// `out` must be valid for an 8-byte write. `addr` may be anything: a fault
/// on it is caught.
#[unsafe(naked)]
unsafe extern "sysv64" fn raw_probe_load(addr: u64, out: *mut u64) -> u64 {
    naked_asm!(
        ".global spindle_probe_load",
        ".global spindle_probe_fixup",
        "spindle_probe_load:",
        "mov rax, qword ptr [rdi]",
        "mov qword ptr [rsi], rax",
        "xor eax, eax",
        "ret",
        "spindle_probe_fixup:",
        "mov eax, 1",
        "ret",
    )
}

/// Reads the 8 bytes at `addr`, or reports the page fault the read caused.
///
/// Reading an unmapped address is safe; reading a mapped device register may
/// have device side effects, which is why only the shell and tests use this.
pub fn read_u64(addr: u64) -> Result<u64, ProbeFault> {
    interrupts::without_interrupts(|| {
        *LAST_FAULT.lock() = None;
        let mut value = 0u64;
        // SAFETY: `value` is a valid, aligned u64 on our stack; a fault on
        // `addr` is turned into a return of 1 by `fixup_page_fault`.
        let faulted = unsafe { raw_probe_load(addr, &mut value) };
        match (faulted, LAST_FAULT.lock().take()) {
            (0, _) => Ok(value),
            (_, Some(fault)) => Err(fault),
            (_, None) => Err(ProbeFault {
                address: addr,
                error_code: u64::MAX,
            }),
        }
    })
}

/// Called by the page-fault handler: if the fault came from the probe
/// instruction, records it, redirects execution to the fixup and returns true.
pub fn fixup_page_fault(frame: &mut InterruptStackFrame, address: u64, error_code: u64) -> bool {
    let load = &raw const spindle_probe_load as u64;
    if frame.instruction_pointer.as_u64() != load {
        return false;
    }
    // Interrupts are off inside `read_u64`, and the handler runs with them
    // off, so this lock is never contended.
    *LAST_FAULT.lock() = Some(ProbeFault {
        address,
        error_code,
    });
    let fixup = &raw const spindle_probe_fixup as u64;
    // SAFETY: we only move RIP from the probe's load to its fixup label, both
    // in `raw_probe_load`, with the same stack and registers; the fixup code
    // needs nothing but a return address on the stack, which is unchanged.
    unsafe {
        frame
            .as_mut()
            .update(|f| f.instruction_pointer = x86_64::VirtAddr::new(fixup));
    }
    true
}
