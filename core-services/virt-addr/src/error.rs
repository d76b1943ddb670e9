//! The service's errors.

use core::fmt;

use crate::table::RangeId;

/// Why a VirtAddr operation failed.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum VirtError {
    /// A range of zero pages.
    ZeroPages,
    /// No gap in the region holds that many pages (and a guard page).
    NoSpace {
        /// Pages asked for.
        pages: u64,
    },
    /// The range is gone: deallocated, or taken back at unload.
    Released(RangeId),
    /// An address or page index outside the range.
    OutOfRange {
        /// The range.
        range: RangeId,
        /// The offending offset in bytes.
        offset: u64,
    },
    /// The principal was revoked.
    Revoked,
    /// The kernel has not installed the service yet.
    NoService,
}

impl fmt::Display for VirtError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::ZeroPages => write!(f, "VirtAddr.Allocate of zero pages"),
            Self::NoSpace { pages } => write!(f, "no room for {pages} pages in the region"),
            Self::Released(id) => write!(f, "range {} was released", id.as_u64()),
            Self::OutOfRange { range, offset } => {
                write!(f, "offset {offset:#x} is outside range {}", range.as_u64())
            }
            Self::Revoked => write!(f, "the principal was revoked"),
            Self::NoService => write!(f, "the VirtAddr service is not running"),
        }
    }
}
