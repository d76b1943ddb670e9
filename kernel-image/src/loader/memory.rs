//! Memory for extension images, through the three memory services.
//!
//! An image is memory like any other an extension holds, owned by the
//! extension's principal:
//!
//! * its address range is a VirtAddr range of the image zone
//!   ([`virt_addr::IMAGE_REGION`], inside the top 2 GiB next to the kernel,
//!   so that rustc's kernel-code-model relocations between extensions and
//!   the kernel are in range), reserved before the image is linked for it
//!   ([`reserve`]);
//! * its frames are one PhysAddr allocation, *pinned* (mapped for the
//!   kernel's own use: never repossessed), so `phys` counts an extension's
//!   image among its frames;
//! * each page is mapped by the Translation service with its segment's
//!   permissions, so `vm NAME` lists the image's range and mappings.
//!
//! An image is written into its frames through the physical-memory mapping
//! and only then mapped, with its final permissions: text read + execute,
//! read-only data read (no-execute), data and bss read + write
//! (no-execute). No page is ever writable and executable, not even while
//! loading. Unmapping removes the mappings through Translation (which frees
//! the page tables left empty), then gives the range and the frames back.

use core::ops::Range;

use dispatcher::Principal;
use domains::{LinkedImage, SegmentKind};
use loader::{MapError, MapRequest};
use phys_addr::{Attributes, Frames};
use translation::{Protection, TranslationError};
use virt_addr::{VirtError, VirtRange};

use crate::PHYSICAL_MEMORY_OFFSET;
use crate::debug::extensions::Registration;
use crate::unwind_tables::UnwindTables;

/// Page size.
pub const PAGE: u64 = virt_addr::PAGE_SIZE;

/// An image's address range: a VirtAddr range of the image zone, owned by
/// the extension's principal. Dropping it frees the range.
pub struct ImageRange(VirtRange);

impl loader::ImageRange for ImageRange {
    fn addresses(&self) -> Range<u64> {
        self.0.base()..self.0.end()
    }
}

/// An image's range, its frames, its unwind tables and its entry in the
/// debug registry (both registered while it is mapped).
pub struct Mapping {
    range: VirtRange,
    frames: Option<Frames>,
    unwind: Option<UnwindTables>,
    debug: Option<Registration>,
}

/// `VirtAddr.Allocate` in the image zone: at least `bytes` of address
/// space for an image owned by `owner`.
pub fn reserve(owner: &Principal, bytes: u64) -> Result<ImageRange, MapError> {
    let pages = bytes.div_ceil(PAGE).max(1);
    virt_addr::allocate_image(crate::events::capability(), owner, pages)
        .map(ImageRange)
        .map_err(|e| match e {
            VirtError::NoSpace { .. } => MapError::AddressSpaceFull { bytes },
            VirtError::Revoked => MapError::Refused("the extension's principal is revoked"),
            _ => MapError::Refused("the VirtAddr service refused the image's range"),
        })
}

/// The loader's reason for a refused `Translation.AddMapping`.
fn map_error(error: TranslationError, pages: u64) -> MapError {
    match error {
        TranslationError::AlreadyMapped { page } => MapError::AlreadyMapped { address: page },
        TranslationError::PageTable { .. } => MapError::OutOfFrames { pages },
        _ => MapError::Refused("the Translation service refused a page of the image"),
    }
}

/// Copies the image (linked for the addresses of `range`, which is
/// `request.range`) into fresh frames of the extension's principal and
/// maps them W^X through Translation. On failure everything taken, the
/// range included, is given back.
pub fn map_image(request: &MapRequest<'_>, range: ImageRange) -> Result<Mapping, MapError> {
    let ImageRange(range) = range;
    if *request.range != (range.base()..range.end()) {
        return Err(MapError::Refused("image linked for another range"));
    }
    let pages = range.pages();
    let mut mapping = Mapping {
        range,
        frames: None,
        unwind: None,
        debug: None,
    };
    let attributes = Attributes::new().pinned(crate::events::capability());
    let Ok(frames) = phys_addr::allocate(request.owner, pages * PAGE, attributes) else {
        unmap_image(mapping);
        return Err(MapError::OutOfFrames { pages });
    };
    let frames = mapping.frames.insert(frames);
    if let Err(e) = fill_and_map(&mapping.range, frames, request.image) {
        unmap_image(mapping);
        return Err(map_error(e, pages));
    }
    // SAFETY: every page of the image was mapped above at the addresses it
    // was linked for; `unmap_image` drops the registration before unmapping.
    mapping.unwind = Some(unsafe { UnwindTables::register(request.image) });
    // Symbols for backtraces and debuggers, before any of its code runs.
    mapping.debug = Some(crate::debug::extensions::register(
        request.owner.name(),
        request.image,
        request.range.clone(),
    ));
    Ok(mapping)
}

/// Fills each frame of `frames` (fresh from `PhysAddr.Allocate`, hence
/// zeroed) with its page of `image`, then maps it at that page of `range`
/// with the page's permissions.
fn fill_and_map(
    range: &VirtRange,
    frames: &Frames,
    image: &LinkedImage,
) -> Result<(), TranslationError> {
    for page in 0..range.pages() {
        let index = page as usize;
        let frame = frames.frame(index)?;
        // SAFETY: the frame was just allocated for this image alone and is
        // mapped nowhere yet; the slice is dropped before the frame is
        // mapped below.
        let bytes = unsafe { frame_slice(frame) };
        let protection = fill_page(bytes, range.base() + page * PAGE, image);
        translation::add_mapping(range, page, frames, index, protection)?;
    }
    Ok(())
}

/// The permissions of a segment's pages.
fn protection(kind: SegmentKind) -> Protection {
    match kind {
        SegmentKind::Text => Protection::READ_EXECUTE,
        SegmentKind::ReadOnly => Protection::READ,
        SegmentKind::Data => Protection::READ_WRITE,
    }
}

/// Fills one page's frame from whichever segment covers `page_address`
/// and returns the page's permissions. The frame is zeroed already
/// (`PhysAddr.Allocate` hands out zeroed frames), so the rest of the page
/// stays zero.
fn fill_page(frame: &mut [u8], page_address: u64, image: &LinkedImage) -> Protection {
    let mut permissions = Protection::READ;
    for segment in image.segments() {
        let seg = segment.range();
        let seg_pages = seg.start..seg.end.next_multiple_of(PAGE);
        if !seg_pages.contains(&page_address) {
            continue;
        }
        permissions = protection(segment.kind);
        let from = page_address.max(seg.start);
        let to = (page_address + PAGE).min(seg.end);
        if from < to {
            let src = &segment.bytes[(from - seg.start) as usize..(to - seg.start) as usize];
            frame[(from - page_address) as usize..(to - page_address) as usize]
                .copy_from_slice(src);
        }
    }
    permissions
}

/// The 4 KiB of a frame, through the physical-memory mapping.
///
/// # Safety
/// The caller owns `frame` exclusively (just allocated, not mapped
/// anywhere else) for as long as the returned slice lives, and drops the
/// slice before mapping or freeing the frame.
unsafe fn frame_slice<'a>(frame: phys_addr::FrameNumber) -> &'a mut [u8] {
    // SAFETY: the physical-memory mapping covers all RAM, so the address is
    // mapped and writable; exclusivity is the caller's contract.
    unsafe {
        core::slice::from_raw_parts_mut(
            (PHYSICAL_MEMORY_OFFSET + frame.start_address()) as *mut u8,
            PAGE as usize,
        )
    }
}

/// Unmaps an image through Translation (freeing the page tables left
/// empty), then gives its range to VirtAddr and its frames to PhysAddr.
/// Called only once the extension's code can no longer run (its exit
/// returned or its init failed, and every binding into it has been
/// dropped), or before any of it ran.
pub fn unmap_image(mapping: Mapping) {
    let Mapping {
        range,
        frames,
        unwind,
        debug,
    } = mapping;
    // The unwinder and the debug registry must forget the image before its
    // pages go.
    drop(debug);
    drop(unwind);
    // VirtAddr has Translation remove every mapping in the range first.
    if let Err(e) = range.deallocate() {
        log::warn!("extension image range: {e}");
    }
    if let Some(frames) = frames
        && let Err(e) = frames.deallocate()
    {
        log::warn!("extension image frames: {e}");
    }
}
