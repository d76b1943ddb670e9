//! The physical frame allocator: `phys_addr::FrameBitmap` over the
//! bootloader's memory map, behind an interrupt-safe lock.

use bootloader_api::info::{MemoryRegionKind, MemoryRegions};
use phys_addr::{FRAME_SIZE, FrameBitmap, FrameError, FrameNumber, FrameStats};
use spin::Mutex;
use x86_64::PhysAddr;
use x86_64::instructions::interrupts;
use x86_64::structures::paging::{PhysFrame, Size4KiB};

use crate::PHYSICAL_MEMORY_OFFSET;

static FRAMES: Mutex<Option<FrameBitmap<'static>>> = Mutex::new(None);

/// Builds the bitmap, storing it in the first usable region large enough.
///
/// # Safety
/// `regions` is the bootloader's memory map for this boot: every region it
/// marks usable is RAM that nothing else uses, covered by the
/// physical-memory mapping. Called once: a second bitmap would hand out
/// frames the first one already gave away.
pub unsafe fn init(regions: &MemoryRegions) {
    let usable = || {
        regions
            .iter()
            .filter(|r| r.kind == MemoryRegionKind::Usable)
    };
    let end_frame = usable()
        .map(|r| r.end / FRAME_SIZE)
        .max()
        .expect("no usable memory");
    let words = FrameBitmap::words_needed(end_frame);
    let storage_bytes = (words as u64 * 8).next_multiple_of(FRAME_SIZE);
    let home = usable()
        .find(|r| {
            r.end - r.start.next_multiple_of(FRAME_SIZE) >= storage_bytes && r.start >= 0x10_0000
        })
        .expect("no usable region can hold the frame bitmap");
    let storage_phys = home.start.next_multiple_of(FRAME_SIZE);
    // SAFETY: [storage_phys, +storage_bytes) is usable RAM according to the
    // memory map, mapped at PHYSICAL_MEMORY_OFFSET by the bootloader, and
    // reserved below so it is never handed out; this is its only reference.
    let storage: &'static mut [u64] = unsafe {
        core::slice::from_raw_parts_mut((PHYSICAL_MEMORY_OFFSET + storage_phys) as *mut u64, words)
    };
    let mut bitmap =
        FrameBitmap::try_new(storage, FrameNumber(0), end_frame).expect("bitmap sized above");
    for region in usable() {
        let first = region.start.div_ceil(FRAME_SIZE);
        let last = region.end / FRAME_SIZE;
        bitmap.add_usable(FrameNumber(first), last.saturating_sub(first));
    }
    bitmap.reserve(
        FrameNumber::containing(storage_phys),
        storage_bytes / FRAME_SIZE,
    );
    let stats = bitmap.stats();
    log::debug!(
        "frame allocator: {} usable frames, {} free, bitmap at {storage_phys:#x}",
        stats.usable,
        stats.free
    );
    interrupts::without_interrupts(|| *FRAMES.lock() = Some(bitmap));
}

fn with<R>(f: impl FnOnce(&mut FrameBitmap<'static>) -> R) -> R {
    interrupts::without_interrupts(|| {
        f(FRAMES
            .lock()
            .as_mut()
            .expect("frame allocator not initialised"))
    })
}

/// Allocates one 4 KiB frame.
pub fn allocate() -> Option<PhysFrame<Size4KiB>> {
    with(|frames| frames.allocate())
        .map(|n| PhysFrame::containing_address(PhysAddr::new(n.start_address())))
}

/// Allocates `count` contiguous frames.
pub fn allocate_contiguous(count: u64) -> Option<FrameNumber> {
    with(|frames| frames.allocate_contiguous(count, 1).ok().flatten())
}

/// Frees one frame; double frees and frames that are not RAM are refused.
pub fn deallocate(frame: PhysFrame<Size4KiB>) -> Result<(), FrameError> {
    with(|frames| frames.deallocate(FrameNumber::containing(frame.start_address().as_u64())))
}

/// Current counters.
pub fn stats() -> FrameStats {
    with(|frames| frames.stats())
}

/// Whether the frame is currently free (for tests).
pub fn is_free(frame: PhysFrame<Size4KiB>) -> bool {
    with(|frames| frames.is_free_frame(FrameNumber::containing(frame.start_address().as_u64())))
}

/// Adapter giving the `x86_64` crate's mapper frames for page tables (and
/// taking back the frames of page tables it frees).
pub struct KernelFrameSource;

impl x86_64::structures::paging::FrameDeallocator<Size4KiB> for KernelFrameSource {
    // SAFETY: the caller (the page-table clean-up) guarantees the frame is
    // an unused page table; the bitmap refuses anything it did not hand out.
    unsafe fn deallocate_frame(&mut self, frame: PhysFrame<Size4KiB>) {
        if let Err(e) = deallocate(frame) {
            log::warn!(
                "page-table frame {:#x} not returned: {e}",
                frame.start_address().as_u64()
            );
        }
    }
}

// SAFETY: every frame handed out comes from the bitmap, which hands a frame
// out at most once until it is deallocated.
unsafe impl x86_64::structures::paging::FrameAllocator<Size4KiB> for KernelFrameSource {
    fn allocate_frame(&mut self) -> Option<PhysFrame<Size4KiB>> {
        allocate()
    }
}
