//! VirtAddr core service: ranges of virtual addresses as capabilities.
//!
//! SPIN's naming service: `VirtAddr.Allocate` ([`allocate`]) returns a
//! [`VirtRange`] — an address, a length, and the translation context it
//! belongs to — that only this crate can make. A range is a name, not
//! memory: nothing is mapped in it until its holder asks the Translation
//! service to map frames it holds (`translation::add_mapping`), or
//! resolves the page faults its accesses cause. Each range is followed by
//! an unmapped guard page that no range owns, so running off the end of a
//! range is a fault at an address nobody owns (`Translation.BadAddress`),
//! never one in a neighbour's range.
//!
//! Extensions are safe code and cannot dereference an address, so a range
//! offers checked accessors ([`VirtRange::read_u64`],
//! [`VirtRange::write_u64`]); the kernel performs the access, and a fault
//! it takes is the range's page fault, delivered to the owner's handlers.
//!
//! Ranges come from one of two zones ([`Zone`]): the data zone
//! ([`REGION`]), which anyone may allocate from and whose page faults are
//! events, and the image zone ([`IMAGE_REGION`]), from which the loader
//! allocates each extension image for the extension's principal
//! ([`allocate_image`], kernel only), so that the image is a range like any
//! other: listed under its owner, mapped through the Translation service,
//! taken back at unload.
//!
//! The [`table`] (first fit, guard pages) is tested on the host; the kernel
//! supplies unmapping and the accessors ([`service::Platform`]).
#![cfg_attr(not(test), no_std)]
#![forbid(unsafe_code)]
#![warn(missing_docs)]

extern crate alloc;

pub mod error;
pub mod service;
pub mod table;

pub use error::VirtError;
pub use service::{
    Access, AccessError, AccessFault, IMAGE_REGION, Platform, REGION, VirtRange, allocate,
    allocate_image, lookup, range, ranges, release_owner,
};
pub use table::{ContextId, PAGE_SIZE, RangeId, RangeInfo, RangeTable, Zone};
