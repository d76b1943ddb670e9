//! CPU exceptions: the breakpoint handler returns; a page fault on an
//! unmapped address is caught and reported with the right address and code.

use ktest_macros::ktest;
use x86_64::VirtAddr;

use crate::arch::{idt, probe};
use crate::ktest::KtestResult;
use crate::memory::paging;
use crate::{ensure, ensure_eq};

#[ktest]
fn breakpoint_returns() -> KtestResult {
    let before = idt::breakpoint_count();
    x86_64::instructions::interrupts::int3();
    x86_64::instructions::interrupts::int3();
    ensure_eq!(idt::breakpoint_count(), before + 2);
    Ok(())
}

#[ktest]
fn page_fault_on_unmapped_address_is_caught() -> KtestResult {
    // A canonical lower-half address the kernel never maps.
    let address = 0x0000_5555_dead_b000;
    ensure!(
        paging::translate(VirtAddr::new(address)).is_none(),
        "{address:#x} is unexpectedly mapped"
    );
    let fault = probe::read_u64(address + 8);
    let Err(fault) = fault else {
        return Err(crate::ktest::KtestFailure::new(alloc::format!(
            "read of {address:#x} did not fault: {fault:?}"
        )));
    };
    ensure_eq!(fault.address, address + 8);
    // Error code: not-present (bit 0 clear), read (bit 1 clear), supervisor (bit 2 clear).
    ensure_eq!(fault.error_code & 0b111, 0);
    Ok(())
}

#[ktest]
fn probe_reads_mapped_memory() -> KtestResult {
    let value: u64 = 0x5eed_f00d_cafe_d00d;
    let address = &value as *const u64 as u64;
    ensure_eq!(probe::read_u64(address), Ok(0x5eed_f00d_cafe_d00d));
    Ok(())
}

#[ktest]
fn spurious_interrupts_are_rare() -> KtestResult {
    // The PIC is masked and the APIC programmed; a storm of spurious
    // interrupts would mean the interrupt set-up is wrong.
    ensure!(
        idt::spurious_count() < 10,
        "{} spurious interrupts",
        idt::spurious_count()
    );
    Ok(())
}
