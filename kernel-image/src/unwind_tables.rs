//! Registration of loaded extensions' unwind tables with the unwinder, so
//! that a panic in extension code can unwind through its frames.
//!
//! The kernel's own tables are found through `__GNU_EH_FRAME_HDR`. An
//! extension's `.eh_frame` is linked into its read-only segment followed by
//! a zero terminator (see `domains::LinkedImage::unwind_tables`);
//! [`UnwindTables::register`] hands each table to the unwinder's frame
//! registry once the image is mapped, and dropping the registration removes
//! them again, before the image is unmapped.

use alloc::vec::Vec;
use core::ffi::c_void;

// SAFETY: both are defined by the `unwinding` crate (feature
// `fde-registry`) with exactly these C signatures.
unsafe extern "C" {
    fn __register_frame(begin: *const c_void);
    fn __deregister_frame(begin: *const c_void);
}

/// An image's unwind tables, registered until this is dropped.
pub struct UnwindTables {
    tables: Vec<u64>,
}

impl UnwindTables {
    /// Registers every unwind table of `image`.
    ///
    /// # Safety
    /// `image` must be mapped at the addresses it was linked for, readable,
    /// and stay mapped and unchanged until the returned value is dropped.
    pub unsafe fn register(image: &domains::LinkedImage) -> Self {
        let tables: Vec<u64> = image.unwind_tables().collect();
        for &table in &tables {
            // With interrupts off: the unwinder's registry lock must never be
            // held by code an interrupt handler's contained panic interrupts.
            // SAFETY: `table` is a linked `.eh_frame` inside the mapped image
            // (the caller's contract), followed by the zero terminator the
            // linker reserved; the registry reads it until deregistration.
            x86_64::instructions::interrupts::without_interrupts(|| unsafe {
                __register_frame(table as *const c_void)
            });
        }
        Self { tables }
    }
}

impl Drop for UnwindTables {
    fn drop(&mut self) {
        for &table in &self.tables {
            // SAFETY: `table` was registered by `register` and not yet
            // deregistered; the image is still mapped (the contract of
            // `register`). Interrupts off, as for registering.
            x86_64::instructions::interrupts::without_interrupts(|| unsafe {
                __deregister_frame(table as *const c_void)
            });
        }
    }
}
