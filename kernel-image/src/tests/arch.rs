//! CPU exceptions: the breakpoint handler returns; a probe's page fault on
//! an unmapped address or on the running strand's own guard page is caught
//! and reported with the right address and code. (The general-protection
//! fault of a non-canonical probe is tested in `arch::probe`, where the
//! untyped entry point lives.)

use alloc::sync::Arc;

use ktest_macros::ktest;
use x86_64::VirtAddr;

use crate::arch::idt;
use crate::arch::probe::{self, ProbeFault};
use crate::ktest::{KtestFailure, KtestResult};
use crate::memory::paging;
use crate::strands;
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
    // Error code 0: not-present (bit 0 clear), read (bit 1 clear),
    // supervisor (bit 2 clear).
    ensure_eq!(
        probe::read_u64(VirtAddr::new(address + 8)),
        Err(ProbeFault::Page {
            address: address + 8,
            error_code: 0
        })
    );
    Ok(())
}

#[ktest]
fn probe_of_the_running_strands_guard_page_is_a_page_fault_not_an_overflow() -> KtestResult {
    // A spawned strand's stack sits at the top of its slot with the guard
    // below it; the strand probes its own guard and reports what it saw.
    let seen = Arc::new(spin::Mutex::new(None));
    let report = seen.clone();
    let prober = strands::spawn_kernel("guard-probe", 16 * 1024, move || {
        let bounds = crate::cpu::current().stack_bounds();
        let results = [bounds.guard_start, bounds.bottom - 8]
            .map(|address| (address, probe::read_u64(VirtAddr::new(address))));
        *report.lock() = Some((bounds.top, results));
    })
    .map_err(|e| KtestFailure::new(alloc::format!("spawning the prober: {e:?}")))?;
    prober
        .join()
        .map_err(|e| KtestFailure::new(alloc::format!("the prober did not finish: {e:?}")))?;
    let Some((top, results)) = seen.lock().take() else {
        return Err(KtestFailure::new("the prober reported nothing".into()));
    };
    ensure!(top != 0, "the prober ran without stack bounds");
    for (address, result) in results {
        ensure_eq!(
            result,
            Err(ProbeFault::Page {
                address,
                error_code: 0
            })
        );
    }
    Ok(())
}

#[ktest]
fn probe_reads_mapped_memory() -> KtestResult {
    let value: u64 = 0x5eed_f00d_cafe_d00d;
    let address = &value as *const u64 as u64;
    ensure_eq!(
        probe::read_u64(VirtAddr::new(address)),
        Ok(0x5eed_f00d_cafe_d00d)
    );
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
