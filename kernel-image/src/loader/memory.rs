//! Memory for extension images: address ranges in the extension region,
//! frames, and W^X page mappings.
//!
//! An image is written into its frames through the physical-memory mapping
//! and only then mapped, with its final permissions: text read + execute,
//! read-only data read (no-execute), data and bss read + write
//! (no-execute). No page is ever writable and executable, not even while
//! loading.

use alloc::vec::Vec;
use core::ops::Range;

use domains::{LinkedImage, SegmentKind};
use x86_64::VirtAddr;
use x86_64::structures::paging::{Page, PageTableFlags, PhysFrame, Size4KiB};

use crate::PHYSICAL_MEMORY_OFFSET;
use crate::memory::{frames, paging};
use crate::unwind_tables::UnwindTables;

/// Page size.
pub const PAGE: u64 = 4096;

/// Where extension images are mapped: inside the top 2 GiB, next to the
/// kernel image, so that rustc's kernel-code-model relocations (PC32, 32S)
/// between extensions and the kernel are in range.
pub const EXTENSION_REGION: Range<u64> = 0xffff_ffff_9000_0000..0xffff_ffff_f000_0000;

/// First-fit allocator of page-aligned ranges inside [`EXTENSION_REGION`].
/// Invariant: `used` is sorted by start and its ranges do not overlap.
pub struct RegionAllocator {
    used: Vec<Range<u64>>,
}

impl RegionAllocator {
    /// An empty region, with room reserved for `capacity` images so that
    /// loading and unloading do not change the heap's usage.
    pub fn with_capacity(capacity: usize) -> Self {
        Self {
            used: Vec::with_capacity(capacity),
        }
    }

    /// Takes `len` bytes (rounded up to pages), lowest address first.
    pub fn allocate(&mut self, len: u64) -> Option<Range<u64>> {
        let len = len.next_multiple_of(PAGE).max(PAGE);
        let mut start = EXTENSION_REGION.start;
        let mut index = 0;
        for used in &self.used {
            if start.checked_add(len)? <= used.start {
                break;
            }
            start = used.end;
            index += 1;
        }
        let range = start..start.checked_add(len)?;
        (range.end <= EXTENSION_REGION.end).then(|| {
            self.used.insert(index, range.clone());
            range
        })
    }

    /// Gives a range back.
    pub fn release(&mut self, range: &Range<u64>) {
        self.used.retain(|r| r != range);
    }

    /// Bytes in use.
    pub fn used_bytes(&self) -> u64 {
        self.used.iter().map(|r| r.end - r.start).sum()
    }
}

/// An image's pages and the frames behind them, and its unwind tables
/// (registered while it is mapped).
pub struct Mapping {
    /// The virtual range.
    pub range: Range<u64>,
    frames: Vec<PhysFrame<Size4KiB>>,
    unwind: Option<UnwindTables>,
}

impl Mapping {
    /// Number of pages.
    pub fn pages(&self) -> usize {
        self.frames.len()
    }

    /// Number of unwind tables registered for the image.
    pub fn unwind_tables(&self) -> usize {
        self.unwind.as_ref().map_or(0, UnwindTables::count)
    }
}

fn flags_for(kind: SegmentKind) -> PageTableFlags {
    match kind {
        SegmentKind::Text => PageTableFlags::empty(),
        SegmentKind::ReadOnly => PageTableFlags::NO_EXECUTE,
        SegmentKind::Data => PageTableFlags::WRITABLE | PageTableFlags::NO_EXECUTE,
    }
}

/// Copies `image` (linked for addresses inside `range`) into fresh frames and
/// maps them W^X. On failure everything taken is given back.
pub fn map_image(image: &LinkedImage, range: Range<u64>) -> Result<Mapping, &'static str> {
    let pages = (range.end - range.start) / PAGE;
    let mut mapping = Mapping {
        range: range.clone(),
        frames: Vec::with_capacity(pages as usize),
        unwind: None,
    };
    for index in 0..pages {
        let Some(frame) = frames::allocate() else {
            unmap_image(mapping);
            return Err("no free frames for the extension image");
        };
        let page_address = range.start + index * PAGE;
        let frame_bytes = frame_slice(frame);
        frame_bytes.fill(0);
        // Copy whichever segment covers this page, and take its permissions.
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
                frame_bytes[(from - page_address) as usize..(to - page_address) as usize]
                    .copy_from_slice(src);
            }
        }
        let page = Page::<Size4KiB>::containing_address(VirtAddr::new(page_address));
        // SAFETY: the frame was just allocated (no one else maps it) and the
        // page lies in a range of the extension region that the region
        // allocator handed out to this image alone.
        if unsafe { paging::map(page, frame, flags | PageTableFlags::GLOBAL) }.is_err() {
            let _ = frames::deallocate(frame);
            unmap_image(mapping);
            return Err("extension page already mapped");
        }
        mapping.frames.push(frame);
    }
    // SAFETY: every page of the image was mapped above at the addresses it
    // was linked for; `unmap_image` drops the registration before unmapping.
    mapping.unwind = Some(unsafe { UnwindTables::register(image) });
    Ok(mapping)
}

/// The 4 KiB of a frame, through the physical-memory mapping.
fn frame_slice(frame: PhysFrame<Size4KiB>) -> &'static mut [u8] {
    // SAFETY: the frame was just taken from the allocator, so nothing else
    // refers to it, and the physical-memory mapping covers all RAM. The
    // returned slice is used only until the frame is mapped.
    unsafe {
        core::slice::from_raw_parts_mut(
            (PHYSICAL_MEMORY_OFFSET + frame.start_address().as_u64()) as *mut u8,
            PAGE as usize,
        )
    }
}

/// Unmaps an image, frees its frames and the page tables left empty.
pub fn unmap_image(mut mapping: Mapping) {
    // The unwinder must forget the tables before their pages go.
    drop(mapping.unwind.take());
    for (index, frame) in mapping.frames.iter().enumerate() {
        let page = Page::<Size4KiB>::containing_address(VirtAddr::new(
            mapping.range.start + index as u64 * PAGE,
        ));
        // SAFETY: the extension's code no longer runs (its exit returned or
        // its init failed) and every binding into it has been dropped, so
        // nothing uses these pages.
        match unsafe { paging::unmap(page) } {
            Ok(unmapped) if unmapped == *frame => {}
            other => log::warn!(
                "unmapping extension page {:#x}: {other:?}",
                page.start_address().as_u64()
            ),
        }
        if let Err(e) = frames::deallocate(*frame) {
            log::warn!("extension frame {:#x}: {e}", frame.start_address().as_u64());
        }
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
