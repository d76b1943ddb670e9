//! The kernel heap: size-class free lists in front of
//! `linked_list_allocator`, over pages mapped at boot.
//!
//! A first-fit list allocator walks its holes on every allocation, and the
//! kernel's many small, short-lived blocks (binding tables, strings, the
//! loader's vectors) leave it many holes: allocating and freeing 64 bytes
//! took 56 indirect calls under TCG (`bench baseline`). Blocks of up to
//! [`LARGEST_CLASS`] bytes are therefore served from one free list per
//! power-of-two size class; a freed small block goes back on its class's
//! list, and the list allocator only sees the first allocation of each
//! block and the large requests. The lists are given back to the list
//! allocator when it cannot satisfy a request (so cached blocks never make
//! an allocation fail), and the counters exclude them: `used` is the bytes
//! of live blocks, whatever is cached.
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

/// The smallest size class (a free block holds one link; the list
/// allocator's smallest block is 16 bytes too).
const SMALLEST_CLASS: usize = 16;
/// The largest size class; bigger requests go to the list allocator.
pub const LARGEST_CLASS: usize = 2048;
/// Classes 16, 32, ..., [`LARGEST_CLASS`] bytes.
const CLASSES: usize = (LARGEST_CLASS / SMALLEST_CLASS).trailing_zeros() as usize + 1;

/// The class serving `layout`: the smallest power of two that is at least
/// its size and its alignment. Blocks of class `c` are `16 << c` bytes and
/// aligned to their size, so any request of the class fits any block of it.
fn class_of(layout: Layout) -> Option<usize> {
    let size = layout
        .size()
        .max(layout.align())
        .max(SMALLEST_CLASS)
        .next_power_of_two();
    (size <= LARGEST_CLASS).then(|| (size / SMALLEST_CLASS).trailing_zeros() as usize)
}

/// The layout of a block of each class: `16 << c` bytes, aligned to its
/// size (checked when the kernel is compiled).
const CLASS_LAYOUTS: [Layout; CLASSES] = {
    let mut layouts = [Layout::new::<u8>(); CLASSES];
    let mut class = 0;
    while class < CLASSES {
        let size = SMALLEST_CLASS << class;
        layouts[class] = match Layout::from_size_align(size, size) {
            Ok(layout) => layout,
            Err(_) => panic!("a size class is not a valid layout"),
        };
        class += 1;
    }
    layouts
};

/// The layout of a block of class `class` (`class < CLASSES`).
fn class_layout(class: usize) -> Layout {
    CLASS_LAYOUTS[class]
}

/// A freed block of a size class: its first word links the next one.
struct FreeBlock {
    next: Option<NonNull<FreeBlock>>,
}

/// The allocator behind the lock.
struct Allocator {
    heap: Heap,
    /// Per class, the most recently freed block of it.
    free: [Option<NonNull<FreeBlock>>; CLASSES],
    /// Bytes of the blocks on the free lists.
    cached: usize,
}

// SAFETY: the free lists point into the heap region, which only this
// allocator uses; every access to them is under the `Mutex` (with
// interrupts disabled).
unsafe impl Send for Allocator {}

impl Allocator {
    const fn empty() -> Self {
        Self {
            heap: Heap::empty(),
            free: [None; CLASSES],
            cached: 0,
        }
    }

    fn allocate(&mut self, layout: Layout) -> *mut u8 {
        let Some(class) = class_of(layout) else {
            return self.allocate_in_list(layout);
        };
        match self.free[class] {
            Some(block) => {
                // SAFETY: `block` is on class `class`'s list, so it is a
                // free block of this allocator whose first word `deallocate`
                // wrote.
                self.free[class] = unsafe { block.as_ptr().read().next };
                self.cached -= SMALLEST_CLASS << class;
                block.as_ptr().cast()
            }
            None => self.allocate_in_list(class_layout(class)),
        }
    }

    /// A block from the list allocator; if it has none that fits, the
    /// cached blocks are given back to it first.
    fn allocate_in_list(&mut self, layout: Layout) -> *mut u8 {
        if let Ok(block) = self.heap.allocate_first_fit(layout) {
            return block.as_ptr();
        }
        if self.cached == 0 {
            return ptr::null_mut();
        }
        self.give_back_cached();
        self.heap
            .allocate_first_fit(layout)
            .map_or(ptr::null_mut(), NonNull::as_ptr)
    }

    /// # Safety
    /// `block` came from [`Allocator::allocate`] with `layout` and is not
    /// used again.
    unsafe fn deallocate(&mut self, block: NonNull<u8>, layout: Layout) {
        match class_of(layout) {
            Some(class) => {
                let block = block.cast::<FreeBlock>();
                // SAFETY: the block is at least 16 bytes and aligned to its
                // class size (>= 16), and the caller gives it up.
                unsafe {
                    block.as_ptr().write(FreeBlock {
                        next: self.free[class],
                    });
                }
                self.free[class] = Some(block);
                self.cached += SMALLEST_CLASS << class;
            }
            // SAFETY: forwarded from the caller; large blocks come from the
            // list allocator with this layout.
            None => unsafe { self.heap.deallocate(block, layout) },
        }
    }

    /// Returns every cached block to the list allocator.
    fn give_back_cached(&mut self) {
        for class in 0..CLASSES {
            while let Some(block) = self.free[class] {
                // SAFETY: as in `allocate`: a free block on the list.
                self.free[class] = unsafe { block.as_ptr().read().next };
                // SAFETY: the block came from the list allocator with its
                // class layout and nothing uses it.
                unsafe { self.heap.deallocate(block.cast(), class_layout(class)) };
            }
        }
        self.cached = 0;
    }

    fn stats(&self) -> HeapStats {
        HeapStats {
            size: self.heap.size(),
            used: self.heap.used() - self.cached,
            free: self.heap.free() + self.cached,
        }
    }
}

struct KernelHeap(Mutex<Allocator>);

#[global_allocator]
static HEAP: KernelHeap = KernelHeap(Mutex::new(Allocator::empty()));

// SAFETY: `Allocator` hands out disjoint blocks of the mapped heap region
// (a block on a free list is handed out once, then off the list) and the
// lock serialises all access; interrupts are disabled while it is held.
unsafe impl GlobalAlloc for KernelHeap {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        interrupts::without_interrupts(|| self.0.lock().allocate(layout))
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

    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        // A kernel block that stays in its size class stays where it is.
        if !super::extension_heap::WINDOWS.contains(ptr as u64)
            && let Some(class) = class_of(layout)
            && Layout::from_size_align(new_size, layout.align())
                .is_ok_and(|new| class_of(new) == Some(class))
        {
            return ptr;
        }
        // SAFETY: the caller guarantees `new_size`, rounded up to
        // `layout.align()`, does not overflow `isize`.
        let new_layout = unsafe { Layout::from_size_align_unchecked(new_size, layout.align()) };
        // SAFETY: `new_size` is non-zero (the caller's contract).
        let new = unsafe { self.alloc(new_layout) };
        if !new.is_null() {
            // SAFETY: both blocks are live, distinct, and at least this long;
            // `ptr` came from this allocator with `layout` (the caller's
            // contract) and is not used after.
            unsafe {
                ptr::copy_nonoverlapping(ptr, new, layout.size().min(new_size));
                self.dealloc(ptr, layout);
            }
        }
        new
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
        unsafe { HEAP.0.lock().heap.init(start as *mut u8, size as usize) };
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
    interrupts::without_interrupts(|| HEAP.0.lock().stats())
}
