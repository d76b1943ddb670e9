//! Translation core service: frames mapped into ranges, with permissions,
//! on the real x86_64 page tables; page faults as events.
//!
//! SPIN's third memory service. [`add_mapping`] takes a
//! [`virt_addr::VirtRange`] and a [`phys_addr::Frames`] — you cannot map a
//! range or frames you do not hold — and a [`Protection`];
//! [`remove_mapping`], [`protect`] and [`examine_mapping`] complete
//! `AddMapping` / `RemoveMapping` / `ExamineMapping`. The service keeps its
//! own table of what it mapped ([`table`]), so that when PhysAddr takes
//! frames back (deallocation, repossession, unload) or VirtAddr frees a
//! range, every mapping of them goes first ([`unmap_frames`],
//! [`unmap_range`]), with the page tables left empty.
//!
//! A page fault in the service's region becomes an event ([`events`]):
//! `Translation.PageNotPresent`, `Translation.ProtectionFault` or
//! `Translation.BadAddress`, with the address and the kind of access.
//! Guards imposed by the service deliver a fault only to the owner of the
//! range it fell in. A handler resolves it by mapping the page; the service
//! checks that the access is now allowed before letting the faulting code
//! resume ([`handle_fault`]); otherwise the fault is reported to it.
//!
//! Safe code; the kernel supplies the page tables ([`service::Platform`]).
#![cfg_attr(not(test), no_std)]
#![forbid(unsafe_code)]
#![warn(missing_docs)]

extern crate alloc;

pub mod error;
pub mod events;
pub mod service;
pub mod table;

pub use error::TranslationError;
pub use events::{
    BAD_ADDRESS_EVENT, Fault, FaultReply, PAGE_NOT_PRESENT_EVENT, PROTECTION_FAULT_EVENT,
    TranslationEvents,
};
pub use service::{
    FaultCounts, FaultOutcome, Platform, add_mapping, examine_mapping, fault_counts, handle_fault,
    mapping_count, mappings_of, protect, protect_range, remove_mapping, unmap_frames, unmap_range,
};
pub use table::{Mapping, MappingTable, Protection};
