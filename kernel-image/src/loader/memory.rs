//! Memory for extension images: frames, and W^X page mappings in the
//! extension region.
//!
//! An image is written into its frames through the physical-memory mapping
//! and only then mapped, with its final permissions: text read + execute,
//! read-only data read (no-execute), data and bss read + write
//! (no-execute). No page is ever writable and executable, not even while
//! loading.
//!
//! The frames come from the PhysAddr service, owned by the extension's
//! principal and *pinned* (mapped for the kernel's own use: never
//! repossessed), so `phys` counts an extension's image among its frames
//! and unloading returns them.

use alloc::vec::Vec;
use core::ops::Range;

use domains::{LinkedImage, SegmentKind};
use loader::{MapError, MapRequest};
use phys_addr::{Attributes, Frames};
use x86_64::VirtAddr;
use x86_64::structures::paging::{Page, PageTableFlags, PhysFrame, Size4KiB};

use crate::PHYSICAL_MEMORY_OFFSET;
use crate::debug::extensions::Registration;
use crate::memory::paging;
use crate::unwind_tables::UnwindTables;

/// Page size.
pub const PAGE: u64 = 4096;

/// Where extension images are mapped: inside the top 2 GiB, next to the
/// kernel image, so that rustc's kernel-code-model relocations (PC32, 32S)
/// between extensions and the kernel are in range.
pub const EXTENSION_REGION: Range<u64> = 0xffff_ffff_9000_0000..0xffff_ffff_f000_0000;

/// An image's pages and the frames behind them, its unwind tables, and its
/// entry in the debug registry (both registered while it is mapped).
pub struct Mapping {
    /// The virtual range.
    pub range: Range<u64>,
    frames: Vec<PhysFrame<Size4KiB>>,
    /// The PhysAddr allocation behind `frames` (dropped after the unmap).
    allocation: Option<Frames>,
    unwind: Option<UnwindTables>,
    debug: Option<Registration>,
}

fn flags_for(kind: SegmentKind) -> PageTableFlags {
    match kind {
        SegmentKind::Text => PageTableFlags::empty(),
        SegmentKind::ReadOnly => PageTableFlags::NO_EXECUTE,
        SegmentKind::Data => PageTableFlags::WRITABLE | PageTableFlags::NO_EXECUTE,
    }
}

/// Copies the image (linked for addresses inside `request.range`, a range
/// of [`EXTENSION_REGION`] the loader gave to it alone) into fresh frames
/// and maps them W^X. On failure everything taken is given back.
pub fn map_image(request: &MapRequest<'_>) -> Result<Mapping, MapError> {
    let range = request.range.clone();
    if range.start < EXTENSION_REGION.start || range.end > EXTENSION_REGION.end {
        return Err(MapError::Refused("range outside the extension region"));
    }
    let pages = (range.end - range.start) / PAGE;
    let mut mapping = Mapping {
        range: range.clone(),
        frames: Vec::with_capacity(pages as usize),
        allocation: None,
        unwind: None,
        debug: None,
    };
    let attributes = Attributes::new().pinned(crate::events::capability());
    let allocation = phys_addr::allocate(request.owner, range.end - range.start, attributes)
        .map_err(|_| MapError::OutOfFrames { pages })?;
    let numbers: Result<Vec<_>, _> = (0..pages as usize).map(|i| allocation.frame(i)).collect();
    let Ok(numbers) = numbers else {
        return Err(MapError::OutOfFrames { pages });
    };
    mapping.allocation = Some(allocation);
    for (index, number) in numbers.into_iter().enumerate() {
        let index = index as u64;
        let frame = PhysFrame::containing_address(x86_64::PhysAddr::new(number.start_address()));
        let page_address = range.start + index * PAGE;
        // SAFETY: the frame was just taken from the allocator, so nothing
        // else refers to it; the slice is dropped before the frame is mapped.
        let frame_bytes = unsafe { frame_slice(frame) };
        let flags = fill_page(frame_bytes, page_address, request.image);
        let page = Page::<Size4KiB>::containing_address(VirtAddr::new(page_address));
        // SAFETY: the frame was just allocated (no one else maps it) and the
        // page lies in a range of the extension region that the loader's
        // region allocator handed out to this image alone.
        if unsafe { paging::map(page, frame, flags | PageTableFlags::GLOBAL) }.is_err() {
            unmap_image(mapping);
            return Err(MapError::AlreadyMapped {
                address: page_address,
            });
        }
        mapping.frames.push(frame);
    }
    // SAFETY: every page of the image was mapped above at the addresses it
    // was linked for; `unmap_image` drops the registration before unmapping.
    mapping.unwind = Some(unsafe { UnwindTables::register(request.image) });
    // Symbols for backtraces and debuggers, before any of its code runs.
    mapping.debug = Some(crate::debug::extensions::register(
        request.owner.name(),
        request.image,
        range,
    ));
    Ok(mapping)
}

/// Fills one page's frame from whichever segment covers `page_address`
/// (zeros elsewhere) and returns the page's permissions.
fn fill_page(frame: &mut [u8], page_address: u64, image: &LinkedImage) -> PageTableFlags {
    frame.fill(0);
    let mut flags = PageTableFlags::NO_EXECUTE;
    for segment in image.segments() {
        let seg = segment.range();
        let seg_pages = seg.start..seg.end.next_multiple_of(PAGE);
        if !seg_pages.contains(&page_address) {
            continue;
        }
        flags = flags_for(segment.kind);
        let from = page_address.max(seg.start);
        let to = (page_address + PAGE).min(seg.end);
        if from < to {
            let src = &segment.bytes[(from - seg.start) as usize..(to - seg.start) as usize];
            frame[(from - page_address) as usize..(to - page_address) as usize]
                .copy_from_slice(src);
        }
    }
    flags
}

/// The 4 KiB of a frame, through the physical-memory mapping.
///
/// # Safety
/// The caller owns `frame` exclusively (just allocated, not mapped
/// anywhere else) for as long as the returned slice lives, and drops the
/// slice before mapping or freeing the frame.
unsafe fn frame_slice<'a>(frame: PhysFrame<Size4KiB>) -> &'a mut [u8] {
    // SAFETY: the physical-memory mapping covers all RAM, so the address is
    // mapped and writable; exclusivity is the caller's contract.
    unsafe {
        core::slice::from_raw_parts_mut(
            (PHYSICAL_MEMORY_OFFSET + frame.start_address().as_u64()) as *mut u8,
            PAGE as usize,
        )
    }
}

/// Unmaps an image, returns its frames to PhysAddr and frees the page
/// tables left empty.
pub fn unmap_image(mut mapping: Mapping) {
    // The unwinder and the debug registry must forget the image before its
    // pages go.
    drop(mapping.debug.take());
    drop(mapping.unwind.take());
    for (index, frame) in mapping.frames.iter().enumerate() {
        let page = Page::<Size4KiB>::containing_address(VirtAddr::new(
            mapping.range.start + index as u64 * PAGE,
        ));
        // SAFETY: the loader unmaps an image only once the extension's code
        // can no longer run (its exit returned or its init failed, and every
        // binding into it has been dropped), so nothing uses these pages.
        match unsafe { paging::unmap(page) } {
            Ok(unmapped) if unmapped == *frame => {}
            other => log::warn!(
                "unmapping extension page {:#x}: {other:?}",
                page.start_address().as_u64()
            ),
        }
    }
    if let Some(allocation) = mapping.allocation.take()
        && let Err(e) = allocation.deallocate()
    {
        log::warn!("extension image frames: {e}");
    }
    // SAFETY: the range belongs to the extension region, whose page tables
    // only extension images use; the image was the range's only user.
    unsafe {
        paging::clean_up_range(
            VirtAddr::new(mapping.range.start),
            VirtAddr::new(mapping.range.end),
        )
    };
}
