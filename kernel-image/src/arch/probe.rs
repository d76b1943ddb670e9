//! Fault-tolerant memory probes, in the manner of an exception table: a load
//! from an address that may not be mapped returns an error instead of
//! crashing the kernel.
//!
//! The probe is one instruction at a known address (`spindle_probe_load`).
//! When it faults — a page fault (nothing mapped there, a guard page), or a
//! general-protection fault (an 8-byte read that runs past the top of the
//! lower canonical half) — the fault handler sees that RIP, records the
//! fault, and resumes at `spindle_probe_fixup`, which returns "faulted".
//! The address is a [`VirtAddr`], so it is canonical by construction.
//! Used by the shell's `peek` and by the in-kernel tests that expect faults.

use core::arch::naked_asm;
use core::fmt;

use spin::Mutex;
use x86_64::VirtAddr;
use x86_64::instructions::interrupts;
use x86_64::structures::idt::InterruptStackFrame;

/// A fault taken by a probe.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ProbeFault {
    /// A page fault (vector 14).
    Page {
        /// The faulting address (CR2).
        address: u64,
        /// The page-fault error code.
        error_code: u64,
    },
    /// A general-protection fault (vector 13).
    GeneralProtection {
        /// Its error code (0 for a non-canonical access).
        error_code: u64,
    },
}

impl fmt::Display for ProbeFault {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Page {
                address,
                error_code,
            } => write!(
                f,
                "page fault (address {address:#x}, error code {error_code:#x})"
            ),
            Self::GeneralProtection { error_code } => {
                write!(f, "general-protection fault (error code {error_code:#x})")
            }
        }
    }
}

/// Fault recorded by a fault handler for the probe in progress.
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
/// `out` must be valid for an 8-byte write. `addr` may be anything: a page
/// fault or general-protection fault on it is caught.
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

/// Reads the 8 bytes at `addr`, or reports the fault the read caused.
///
/// Reading an unmapped address is safe; reading a mapped device register may
/// have device side effects, which is why only the shell and tests use this.
pub fn read_u64(addr: VirtAddr) -> Result<u64, ProbeFault> {
    probe(addr.as_u64())
}

/// [`read_u64`] for any 64-bit value, canonical or not: the path a
/// non-canonical address would take, for the tests of the #GP fixup.
fn probe(addr: u64) -> Result<u64, ProbeFault> {
    interrupts::without_interrupts(|| {
        *LAST_FAULT.lock() = None;
        let mut value = 0u64;
        // SAFETY: `value` is a valid, aligned u64 on our stack; a fault on
        // `addr` is turned into a return of 1 by `fixup_page_fault` or
        // `fixup_general_protection`.
        let faulted = unsafe { raw_probe_load(addr, &mut value) };
        match (faulted, LAST_FAULT.lock().take()) {
            (0, _) => Ok(value),
            (_, Some(fault)) => Err(fault),
            // The fixup is reached only through a handler that records the
            // fault first.
            (_, None) => unreachable!("probe fixup reached without a recorded fault"),
        }
    })
}

/// Called first by the page-fault handler: if the fault came from the probe
/// instruction, records it, redirects execution to the fixup and returns
/// true. (A probe of the running strand's own guard page is a probe fault,
/// not a stack overflow: the probe's load does not touch the stack.)
pub fn fixup_page_fault(frame: &mut InterruptStackFrame, address: u64, error_code: u64) -> bool {
    fixup(
        frame,
        ProbeFault::Page {
            address,
            error_code,
        },
    )
}

/// Called by the general-protection handler: if the fault came from the
/// probe instruction, records it, redirects execution to the fixup and
/// returns true.
pub fn fixup_general_protection(frame: &mut InterruptStackFrame, error_code: u64) -> bool {
    fixup(frame, ProbeFault::GeneralProtection { error_code })
}

fn fixup(frame: &mut InterruptStackFrame, fault: ProbeFault) -> bool {
    let load = &raw const spindle_probe_load as u64;
    if frame.instruction_pointer.as_u64() != load {
        return false;
    }
    // Interrupts are off inside `probe`, and the handlers run with them
    // off, so this lock is never contended.
    *LAST_FAULT.lock() = Some(fault);
    let fixup = &raw const spindle_probe_fixup as u64;
    // SAFETY: we only move RIP from the probe's load to its fixup label, both
    // in `raw_probe_load`, with the same stack and registers; the fixup code
    // needs nothing but a return address on the stack, which is unchanged.
    unsafe {
        frame
            .as_mut()
            .update(|f| f.instruction_pointer = VirtAddr::new(fixup));
    }
    true
}

mod tests {
    use ktest_macros::ktest;

    use super::{ProbeFault, probe};
    use crate::ensure_eq;
    use crate::ktest::KtestResult;

    #[ktest]
    fn probe_of_a_non_canonical_address_catches_the_general_protection_fault() -> KtestResult {
        for address in [0x8000_0000_0000_0000, 0x0000_8000_0000_0000, u64::MAX >> 1] {
            ensure_eq!(
                probe(address),
                Err(ProbeFault::GeneralProtection { error_code: 0 })
            );
        }
        Ok(())
    }
}
