//! The kernel's page table (the one the bootloader built, extended in
//! place), reached through the physical-memory mapping.

use spin::Mutex;
use x86_64::instructions::interrupts;
use x86_64::registers::control::{Cr0, Cr0Flags, Cr3, Efer, EferFlags};
use x86_64::structures::paging::mapper::{MapToError, Translate, UnmapError};
use x86_64::structures::paging::{
    Mapper, OffsetPageTable, Page, PageTable, PageTableFlags, PhysFrame, Size4KiB,
};
use x86_64::{PhysAddr, VirtAddr};

use super::frames::KernelFrameSource;
use crate::PHYSICAL_MEMORY_OFFSET;

static PAGE_TABLE: Mutex<Option<OffsetPageTable<'static>>> = Mutex::new(None);

/// Takes over the active level-4 table.
///
/// # Safety
/// Called once, while the bootloader's page table is active and maps all of
/// physical memory at [`PHYSICAL_MEMORY_OFFSET`]: from here on the kernel
/// holds the only reference to the level-4 table, and a second call would
/// make another.
pub unsafe fn init() {
    let (level4_frame, _) = Cr3::read();
    let virt = PHYSICAL_MEMORY_OFFSET + level4_frame.start_address().as_u64();
    // SAFETY: CR3 names the active level-4 table, which the physical-memory
    // mapping makes addressable at `virt`; from here on the kernel only
    // touches it through PAGE_TABLE, under its lock.
    let table = unsafe {
        OffsetPageTable::new(
            &mut *(virt as *mut PageTable),
            VirtAddr::new(PHYSICAL_MEMORY_OFFSET),
        )
    };
    // Read-only pages must stop the kernel's own stores too (the
    // Translation service's protection faults, W^X of extension images).
    if !Cr0::read().contains(Cr0Flags::WRITE_PROTECT) {
        // SAFETY: with CR0.WP the CPU honours read-only entries in
        // supervisor mode as well; the kernel writes read-only memory only
        // through the physical-memory mapping, which is writable.
        unsafe { Cr0::update(|flags| flags.insert(Cr0Flags::WRITE_PROTECT)) };
    }
    // NO_EXECUTE in page-table entries requires EFER.NXE.
    if !Efer::read().contains(EferFlags::NO_EXECUTE_ENABLE) {
        // SAFETY: enabling NXE only gives meaning to bit 63 of page-table
        // entries, which the kernel sets exactly where it wants no execution.
        unsafe { Efer::update(|flags| flags.insert(EferFlags::NO_EXECUTE_ENABLE)) };
    }
    interrupts::without_interrupts(|| *PAGE_TABLE.lock() = Some(table));
}

fn with<R>(f: impl FnOnce(&mut OffsetPageTable<'static>) -> R) -> R {
    interrupts::without_interrupts(|| {
        f(PAGE_TABLE.lock().as_mut().expect("paging not initialised"))
    })
}

/// Maps `page` to `frame` with `flags` (PRESENT is added).
///
/// # Safety
/// The caller owns `frame` and `page` is not in use: mapping can alias
/// memory and break Rust's aliasing rules if either is shared.
pub unsafe fn map(
    page: Page<Size4KiB>,
    frame: PhysFrame<Size4KiB>,
    flags: PageTableFlags,
) -> Result<(), MapToError<Size4KiB>> {
    with(|table| {
        // SAFETY: forwarded from the caller.
        let flush = unsafe {
            table.map_to(
                page,
                frame,
                flags | PageTableFlags::PRESENT,
                &mut KernelFrameSource,
            )
        }?;
        flush.flush();
        Ok(())
    })
}

/// Maps `page` to `frame` with `flags` (PRESENT is added), creating any
/// missing page tables above it present *and writable*, so that a later
/// [`update_flags`] can make the page writable (the leaf entry alone then
/// decides). For the VirtAddr zones, whose pages change protection.
///
/// # Safety
/// As for [`map`].
pub unsafe fn map_changeable(
    page: Page<Size4KiB>,
    frame: PhysFrame<Size4KiB>,
    flags: PageTableFlags,
) -> Result<(), MapToError<Size4KiB>> {
    with(|table| {
        // SAFETY: forwarded from the caller.
        let flush = unsafe {
            table.map_to_with_table_flags(
                page,
                frame,
                flags | PageTableFlags::PRESENT,
                PageTableFlags::PRESENT | PageTableFlags::WRITABLE,
                &mut KernelFrameSource,
            )
        }?;
        flush.flush();
        Ok(())
    })
}

/// Unmaps `page` and returns the frame it mapped.
///
/// # Safety
/// Nothing may use the page afterwards.
pub unsafe fn unmap(page: Page<Size4KiB>) -> Result<PhysFrame<Size4KiB>, UnmapError> {
    with(|table| {
        let (frame, flush) = table.unmap(page)?;
        flush.flush();
        Ok(frame)
    })
}

/// Replaces the flags of the mapped `page` (PRESENT is added) and flushes it.
///
/// # Safety
/// Changing permissions must not break code that relies on them (the
/// caller owns the page's mapping).
pub unsafe fn update_flags(
    page: Page<Size4KiB>,
    flags: PageTableFlags,
) -> Result<(), x86_64::structures::paging::mapper::FlagUpdateError> {
    with(|table| {
        // SAFETY: forwarded from the caller.
        let flush = unsafe { table.update_flags(page, flags | PageTableFlags::PRESENT) }?;
        flush.flush();
        Ok(())
    })
}

/// Frees the page-table frames (levels 1-3) left empty in `[start, end)`,
/// so that mapping and unmapping an extension leaves no frame behind.
///
/// # Safety
/// No page in the range may be mapped by anyone expecting its tables to
/// stay (every table in the range must be owned by this page table alone,
/// which holds for the kernel's single address space).
pub unsafe fn clean_up_range(start: VirtAddr, end: VirtAddr) {
    use x86_64::structures::paging::mapper::CleanUp;
    let range = Page::range_inclusive(
        Page::containing_address(start),
        Page::containing_address(end - 1u64),
    );
    with(|table| {
        // SAFETY: forwarded from the caller.
        unsafe { table.clean_up_addr_range(range, &mut super::frames::KernelFrameSource) }
    });
}

/// The flags of the 4 KiB page mapping `addr`, or `None` if it is not
/// mapped by a 4 KiB page.
pub fn flags(addr: VirtAddr) -> Option<PageTableFlags> {
    use x86_64::structures::paging::mapper::{MappedFrame, TranslateResult};
    with(|table| match table.translate(addr) {
        TranslateResult::Mapped {
            frame: MappedFrame::Size4KiB(_),
            flags,
            ..
        } => Some(flags),
        _ => None,
    })
}

/// Translates a virtual address, or `None` if it is not mapped.
pub fn translate(addr: VirtAddr) -> Option<PhysAddr> {
    with(|table| table.translate_addr(addr))
}
