//! The service's errors.

use core::fmt;

use crate::bitmap::FrameError;
use crate::ledger::AllocationId;

/// Why a PhysAddr operation failed.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum PhysError {
    /// `Allocate` of zero bytes.
    ZeroSize,
    /// More frames than one allocation may hold.
    TooLarge {
        /// Frames asked for.
        frames: u64,
        /// The limit.
        limit: u64,
    },
    /// Not enough free frames (after reclaiming, where that was possible).
    OutOfFrames {
        /// Frames asked for.
        wanted: u64,
        /// Frames free.
        free: u64,
    },
    /// The allocation is gone: deallocated, or taken back when its owner
    /// was unloaded.
    Released(AllocationId),
    /// An index past the allocation's end.
    BadIndex {
        /// The allocation.
        allocation: AllocationId,
        /// The index asked for.
        index: usize,
        /// Its length.
        len: usize,
    },
    /// That frame of the allocation was repossessed (see the owner's
    /// repossession vector).
    Repossessed {
        /// The allocation.
        allocation: AllocationId,
        /// The index.
        index: usize,
    },
    /// The principal was revoked (its extension is being unloaded).
    Revoked,
    /// The kernel has not installed the service yet.
    NoService,
    /// A reclaim round is already running.
    ReclaimInProgress,
    /// The frame bitmap refused.
    Frame(FrameError),
}

impl fmt::Display for PhysError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::ZeroSize => write!(f, "PhysAddr.Allocate of zero bytes"),
            Self::TooLarge { frames, limit } => {
                write!(
                    f,
                    "{frames} frames asked for, at most {limit} per allocation"
                )
            }
            Self::OutOfFrames { wanted, free } => {
                write!(f, "out of frames: {wanted} wanted, {free} free")
            }
            Self::Released(id) => write!(f, "allocation {} was released", id.as_u64()),
            Self::BadIndex {
                allocation,
                index,
                len,
            } => write!(
                f,
                "frame index {index} outside allocation {} of {len} frames",
                allocation.as_u64()
            ),
            Self::Repossessed { allocation, index } => write!(
                f,
                "frame {index} of allocation {} was repossessed",
                allocation.as_u64()
            ),
            Self::Revoked => write!(f, "the principal was revoked"),
            Self::NoService => write!(f, "the PhysAddr service is not running"),
            Self::ReclaimInProgress => write!(f, "a reclaim round is already running"),
            Self::Frame(e) => write!(f, "{e}"),
        }
    }
}

impl From<FrameError> for PhysError {
    fn from(e: FrameError) -> Self {
        Self::Frame(e)
    }
}
