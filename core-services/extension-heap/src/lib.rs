//! The logic of per-extension heaps, without the machine.
//!
//! Every loaded extension allocates from a heap of its own: an allocator
//! over a fixed **window** of the kernel's address space, grown a page at a
//! time up to the extension's **quota**. The kernel (`kernel-image`'s
//! `memory::extension_heap`) owns the allocator, the pages and the frames;
//! this crate is the arithmetic and the bookkeeping it relies on, testable
//! on the host:
//!
//! * [`Windows`]: slot *k*'s window, and the slot owning an address (the
//!   kernel's `dealloc` routes every pointer with one subtraction and one
//!   compare, so its own allocations keep their fast path);
//! * [`Account`]: bytes in use, blocks, peak, pages mapped, refusals, and
//!   the growth decision against the quota;
//! * [`SlotState`]: whether a slot is free, held by a loaded extension, or
//!   **kept** after an unload because blocks are still allocated in them
//!   (see [`SlotState::release`] for why a heap is not simply freed).
#![cfg_attr(not(test), no_std)]
#![forbid(unsafe_code)]
#![warn(missing_docs)]

mod account;
mod slots;
mod windows;

pub use account::{Account, Growth, QuotaExceeded};
pub use slots::{Released, SlotState, SlotsFull};
pub use windows::Windows;
