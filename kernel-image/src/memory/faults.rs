//! The page-fault path into the Translation service.
//!
//! The page-fault handler ([`crate::arch::idt`]) asks [`handle`] after the
//! stack-overflow check: a fault in the VirtAddr region is the service's.
//! It raises `Translation.PageNotPresent`, `ProtectionFault` or
//! `BadAddress`; when a handler resolved it, the handler returns and the
//! faulting instruction runs again. When nobody did, a fault taken by a
//! range accessor ([`super::access`]) fails that access; any other fault
//! goes on to the kernel's report, as before. No fault is retried without
//! a mapping that allows it, so nothing loops.

use virt_addr::Access;
use x86_64::structures::idt::{InterruptStackFrame, PageFaultErrorCode};

/// Returns true if the fault was dealt with (resolved, or turned into an
/// accessor's error).
pub fn handle(frame: &mut InterruptStackFrame, address: u64, code: PageFaultErrorCode) -> bool {
    let access = if code.contains(PageFaultErrorCode::INSTRUCTION_FETCH) {
        Access::Execute
    } else if code.contains(PageFaultErrorCode::CAUSED_BY_WRITE) {
        Access::Write
    } else {
        Access::Read
    };
    let present = code.contains(PageFaultErrorCode::PROTECTION_VIOLATION);
    match translation::handle_fault(crate::events::capability(), address, access, present) {
        translation::FaultOutcome::NotOurs => false,
        translation::FaultOutcome::Resolved => true,
        translation::FaultOutcome::Unresolved(fault) => {
            if super::access::fixup_page_fault(frame, address) {
                return true;
            }
            log::error!(
                "unresolved {} fault at {address:#x} in range {:?} (owner {:?})",
                fault.access,
                fault.range.map(|r| r.as_u64()),
                fault.owner
            );
            false
        }
    }
}
