//! PhysAddr core service: physical frames as capabilities, with owners,
//! events, and visible revocation.
//!
//! SPIN splits memory management into three services: physical storage
//! (this one), naming (`virt-addr`) and translation (`translation`). This
//! one hands out physical frames:
//!
//! * **`PhysAddr.Allocate(size, attributes)`** ([`allocate`]) returns a
//!   [`Frames`] capability that only this crate can make; dropping it, or
//!   [`Frames::deallocate`], is `PhysAddr.Deallocate`. Every allocation has
//!   an owner, the principal that asked (the kernel or an extension), and
//!   [`owners`] lists them with their frame counts (the shell's `phys`).
//! * **Visible revocation**, after the exokernel ([`reclaim`] module): when
//!   free frames fall below the [`watermark`], or the kernel asks
//!   ([`reclaim()`], the shell's `phys squeeze`), owners are asked through
//!   `PhysAddr.Reclaim` to give frames back by a deadline; an owner that
//!   does not is subject to the abort protocol, which repossesses the
//!   shortfall by force and records every frame in the owner's
//!   *repossession vector* ([`repossession_vector`]), announced by
//!   `PhysAddr.Repossessed`. Each owner keeps [`GUARANTEED_FRAMES`] that are
//!   never repossessed, and frames mapped for the kernel's own use (an
//!   extension's code, allocated [`Attributes::pinned`]) are never taken.
//!
//! The logic is safe, `no_std` code tested on the host: the [`bitmap`] of
//! free frames, the [`ledger`] of owners (against a model, in
//! `tests/model.rs`) and the [`reclaim`] state machine. The kernel supplies
//! the machine ([`service::Platform`]).
#![cfg_attr(not(test), no_std)]
#![forbid(unsafe_code)]
#![warn(missing_docs)]

extern crate alloc;

pub mod bitmap;
pub mod error;
pub mod events;
pub mod ledger;
pub mod reclaim;
pub mod service;

pub use bitmap::{FRAME_SIZE, FrameBitmap, FrameError, FrameNumber, FrameStats};
pub use error::PhysError;
pub use events::{
    ALLOCATE_EVENT, DEALLOCATE_EVENT, FramesSignal, PhysEvents, RECLAIM_EVENT, REPOSSESSED_EVENT,
    ReclaimReply, ReclaimRequest, RepossessedNotice,
};
pub use ledger::{AllocationId, Ledger, OwnerUsage, Repossession};
pub use reclaim::{Demand, Phase, Reclaim, Taken};
pub use service::{
    Attributes, DEFAULT_WATERMARK, Frames, GUARANTEED_FRAMES, MAX_FRAMES_PER_ALLOCATION, Platform,
    RECLAIM_DEADLINE_NS, ReclaimReport, allocate, held_by, owners, reclaim, release_owner,
    repossession_vector, repossession_vector_of, set_watermark, stats, watermark,
};
