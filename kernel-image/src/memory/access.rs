//! Loads and stores through a VirtAddr range on an extension's behalf,
//! with a recovery point for faults nobody resolves.
//!
//! Extensions are safe code: they reach their ranges through
//! `VirtRange::read_u64` / `write_u64`, which end here. The access is one
//! instruction at a known address (`spindle_range_load` /
//! `spindle_range_store`). When it faults, the page-fault handler first
//! asks the Translation service ([`super::faults`]); if a handler resolves
//! the fault, `iretq` retries the instruction and it completes. If not,
//! the handler records the fault and resumes at the accessor's fixup,
//! which returns "faulted": the operation fails with the fault, the kernel
//! goes on.

use core::arch::naked_asm;
use core::sync::atomic::{AtomicU64, Ordering};

use virt_addr::{Access, AccessFault};
use x86_64::structures::idt::InterruptStackFrame;

// SAFETY: the labels are defined by the naked functions below; only their
// addresses are used (compared with and written to a faulting RIP).
unsafe extern "C" {
    static spindle_range_load: u8;
    static spindle_range_load_fixup: u8;
    static spindle_range_store: u8;
    static spindle_range_store_fixup: u8;
}

/// The address of the last unresolved fault of an accessor (per CPU in
/// spirit: one CPU today, and the fault is read by the faulting code right
/// after the fixup, with nothing in between that could fault there).
static LAST_FAULT: AtomicU64 = AtomicU64::new(0);

/// Loads 8 bytes from `addr` into `*out`; returns 0, or 1 after an
/// unresolved fault.
///
/// # Safety
/// `out` must be valid for an 8-byte write; `addr` must lie in the VirtAddr
/// region (a fault there is resolved or recovered).
#[unsafe(naked)]
unsafe extern "sysv64" fn raw_load(addr: u64, out: *mut u64) -> u64 {
    naked_asm!(
        ".global spindle_range_load",
        ".global spindle_range_load_fixup",
        "spindle_range_load:",
        "mov rax, qword ptr [rdi]",
        "mov qword ptr [rsi], rax",
        "xor eax, eax",
        "ret",
        "spindle_range_load_fixup:",
        "mov eax, 1",
        "ret",
    )
}

/// Stores `value` at `addr`; returns 0, or 1 after an unresolved fault.
///
/// # Safety
/// `addr` must lie in the VirtAddr region, in a range the caller holds
/// (the store may overwrite only that range's memory).
#[unsafe(naked)]
unsafe extern "sysv64" fn raw_store(addr: u64, value: u64) -> u64 {
    naked_asm!(
        ".global spindle_range_store",
        ".global spindle_range_store_fixup",
        "spindle_range_store:",
        "mov qword ptr [rdi], rsi",
        "xor eax, eax",
        "ret",
        "spindle_range_store_fixup:",
        "mov eax, 1",
        "ret",
    )
}

fn in_region(addr: u64) -> bool {
    virt_addr::REGION.contains(&addr) && virt_addr::REGION.contains(&(addr + 7))
}

/// Reads 8 bytes of a range (the caller checked bounds and holding).
pub fn read_u64(addr: u64) -> Result<u64, AccessFault> {
    assert!(in_region(addr), "range access outside the VirtAddr region");
    let mut value = 0u64;
    // SAFETY: `value` is a valid u64 on our stack; `addr` is in the
    // region, where a fault is resolved by Translation or recovered by
    // `fixup_page_fault`.
    let faulted = unsafe { raw_load(addr, &mut value) };
    if faulted == 0 {
        Ok(value)
    } else {
        Err(AccessFault {
            address: LAST_FAULT.load(Ordering::Relaxed),
            access: Access::Read,
        })
    }
}

/// Writes 8 bytes of a range (the caller checked bounds and holding).
pub fn write_u64(addr: u64, value: u64) -> Result<(), AccessFault> {
    assert!(in_region(addr), "range access outside the VirtAddr region");
    // SAFETY: `addr` is in the region, inside a range the caller (the
    // VirtAddr service, for the range's holder) checked; the memory there
    // is only ever the range's own frames, never kernel data.
    let faulted = unsafe { raw_store(addr, value) };
    if faulted == 0 {
        Ok(())
    } else {
        Err(AccessFault {
            address: LAST_FAULT.load(Ordering::Relaxed),
            access: Access::Write,
        })
    }
}

/// Called by the page-fault handler after Translation did not resolve the
/// fault: if it came from an accessor, records it, moves RIP to the
/// accessor's fixup and returns true.
pub fn fixup_page_fault(frame: &mut InterruptStackFrame, address: u64) -> bool {
    let rip = frame.instruction_pointer.as_u64();
    let fixup = if rip == &raw const spindle_range_load as u64 {
        &raw const spindle_range_load_fixup as u64
    } else if rip == &raw const spindle_range_store as u64 {
        &raw const spindle_range_store_fixup as u64
    } else {
        return false;
    };
    LAST_FAULT.store(address, Ordering::Relaxed);
    // SAFETY: RIP moves from the accessor's one memory instruction to its
    // fixup label in the same function, with the same stack and
    // registers; the fixup needs only the return address, unchanged.
    unsafe {
        frame
            .as_mut()
            .update(|f| f.instruction_pointer = x86_64::VirtAddr::new(fixup));
    }
    true
}
