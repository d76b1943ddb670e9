//! The service's errors.

use core::fmt;

use phys_addr::{FrameNumber, PhysError};
use virt_addr::VirtError;

/// Why a Translation operation failed.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum TranslationError {
    /// The page is already mapped.
    AlreadyMapped {
        /// The page.
        page: u64,
    },
    /// The frame is already mapped at another page.
    FrameAlreadyMapped {
        /// The frame.
        frame: FrameNumber,
        /// Where.
        page: u64,
    },
    /// Nothing is mapped at the page.
    NotMapped {
        /// The page.
        page: u64,
    },
    /// The range is not usable (gone, or the page is outside it).
    Range(VirtError),
    /// The frame is not usable (repossessed, released, bad index).
    Frame(PhysError),
    /// The page tables refused (out of frames for a page table).
    PageTable {
        /// The page.
        page: u64,
    },
    /// The kernel has not installed the service yet.
    NoService,
}

impl fmt::Display for TranslationError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::AlreadyMapped { page } => write!(f, "page {page:#x} is already mapped"),
            Self::FrameAlreadyMapped { frame, page } => write!(
                f,
                "frame {:#x} is already mapped at {page:#x}",
                frame.start_address()
            ),
            Self::NotMapped { page } => write!(f, "nothing is mapped at {page:#x}"),
            Self::Range(e) => write!(f, "{e}"),
            Self::Frame(e) => write!(f, "{e}"),
            Self::PageTable { page } => {
                write!(f, "no frame for a page table while mapping {page:#x}")
            }
            Self::NoService => write!(f, "the Translation service is not running"),
        }
    }
}

impl From<VirtError> for TranslationError {
    fn from(e: VirtError) -> Self {
        Self::Range(e)
    }
}

impl From<PhysError> for TranslationError {
    fn from(e: PhysError) -> Self {
        Self::Frame(e)
    }
}
