//! The kernel heap: `linked_list_allocator` over pages mapped at boot.
//!
//! The lock is only taken with interrupts disabled, so an interrupt handler
//! may allocate and free (the dispatcher frees old binding snapshots from
//! whoever drops them last, possibly an interrupt).

use core::alloc::{GlobalAlloc, Layout};
use core::ptr::{self, NonNull};

use linked_list_allocator::Heap;
use spin::Mutex;
use x86_64::VirtAddr;
use x86_64::instructions::interrupts;
use x86_64::structures::paging::{Page, PageTableFlags};

/// Heap counters.
#[derive(Clone, Copy, Debug)]
pub struct HeapStats {
    /// Bytes managed.
    pub size: usize,
    /// Bytes allocated (including allocator padding).
    pub used: usize,
    /// Bytes free.
    pub free: usize,
}

struct KernelHeap(Mutex<Heap>);

#[global_allocator]
static HEAP: KernelHeap = KernelHeap(Mutex::new(Heap::empty()));

// SAFETY: `Heap` hands out disjoint blocks of the mapped heap region and the
// lock serialises all access; interrupts are disabled while it is held.
unsafe impl GlobalAlloc for KernelHeap {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        interrupts::without_interrupts(|| {
            self.0
                .lock()
                .allocate_first_fit(layout)
                .map_or(ptr::null_mut(), |p| p.as_ptr())
        })
    }

    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        // A block of an extension's heap goes back to that heap, whoever
        // frees it; the kernel's own blocks pay one compare for this.
        if super::extension_heap::WINDOWS.contains(ptr as u64) {
            if let Some(ptr) = NonNull::new(ptr) {
                // SAFETY: forwarded from the caller; the block lies in an
                // extension heap's window, so that heap handed it out.
                unsafe { super::extension_heap::deallocate(ptr, layout) };
            }
            return;
        }
        if let Some(ptr) = NonNull::new(ptr) {
            // SAFETY: the caller guarantees `ptr` came from `alloc` with `layout`.
            interrupts::without_interrupts(|| unsafe { self.0.lock().deallocate(ptr, layout) });
        }
    }
}

/// Maps `size` bytes at `start` and hands them to the allocator.
///
/// # Safety
/// `start..start + size` is page-aligned address space reserved for the
/// heap, unmapped and used by nothing else; the frame allocator and the
/// page table are set up; called once (the allocator would otherwise be
/// handed a second region while blocks of the first are live).
pub unsafe fn init(start: u64, size: u64) {
    let flags = PageTableFlags::WRITABLE | PageTableFlags::NO_EXECUTE | PageTableFlags::GLOBAL;
    let first = Page::containing_address(VirtAddr::new(start));
    let last = Page::containing_address(VirtAddr::new(start + size - 1));
    for page in Page::range_inclusive(first, last) {
        let frame = super::frames::allocate().expect("out of frames while mapping the heap");
        // SAFETY: the heap range is reserved for the heap in the layout, and
        // the frame was just allocated, so neither is in use elsewhere.
        unsafe { super::paging::map(page, frame, flags) }.expect("heap page already mapped");
    }
    interrupts::without_interrupts(|| {
        // SAFETY: [start, start + size) was mapped writable just above and is
        // used by nothing but this heap.
        unsafe { HEAP.0.lock().init(start as *mut u8, size as usize) };
    });
}

/// Counters once the binding tables the dispatcher retired (each install
/// or uninstall retires one, freed after a grace period) are freed, as far
/// as a bounded wait allows: what a comparison against a baseline needs.
/// Inside a raise nothing retired can be freed yet, so this is [`stats`].
pub fn settled_stats() -> HeapStats {
    dispatcher::read_side::synchronize();
    stats()
}

/// Current counters.
pub fn stats() -> HeapStats {
    interrupts::without_interrupts(|| {
        let heap = HEAP.0.lock();
        HeapStats {
            size: heap.size(),
            used: heap.used(),
            free: heap.free(),
        }
    })
}
