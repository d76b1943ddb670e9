//! Per-extension heaps: each loaded extension allocates from an allocator
//! of its own, over its own window of address space, grown a page at a
//! time up to its quota.
//!
//! * **Routing allocations.** An extension's object imports the allocator
//!   shims (`__rustc::__rust_alloc`, `__rust_alloc_zeroed`,
//!   `__rust_realloc`). At load the loader binds them, for that extension
//!   only, to slot *k*'s entry points ([`entries`]): one instance of
//!   [`alloc_in`], [`alloc_zeroed_in`] and [`realloc_in`] per slot, made by
//!   const generics. `__rust_dealloc` stays the kernel's: the kernel's
//!   `dealloc` sends a pointer inside [`WINDOWS`] here (one subtraction and
//!   one compare, see `heap.rs`), so whoever frees a block — the extension,
//!   or the kernel dropping a `Box` the extension made — frees it in the
//!   heap it came from.
//! * **Quota.** Growth past the quota is refused: the allocation returns
//!   null, the extension's own `handle_alloc_error` panics in its code, and
//!   the unwinding boundary it was called through contains that like any
//!   panic. The kernel heap is a different allocator over a different
//!   range: an extension's demand never makes a kernel allocation fail.
//! * **Pages.** Frames come from the frame bitmap directly, as the kernel
//!   heap's do (an allocator may run in an interrupt and inside the memory
//!   services, so it cannot raise their events); [`usage`] counts them.
//! * **Unload.** [`release`] frees an empty heap; a heap with live blocks is
//!   *kept* (its pages mapped, its window unused) until the last block is
//!   freed, because the kernel may hold them (see `extension_heap`'s
//!   `SlotState::release` and ARCHITECTURE.md).
//!
//! Every arena's lock is taken with interrupts disabled, as the kernel
//! heap's is: an extension's `Clock.Tick` handler may allocate.

use core::alloc::Layout;
use core::ptr::{self, NonNull};

use extension_heap::{Account, Released, SlotState, SlotsFull, Windows};
use linked_list_allocator::Heap;
use spin::Mutex;
use x86_64::VirtAddr;
use x86_64::instructions::interrupts;
use x86_64::structures::paging::{Page, PageTableFlags, Size4KiB};

use super::{frames, layout, paging};

/// How many extensions can have a heap at once (loaded, or unloaded with
/// blocks still live).
pub const SLOTS: usize = 32;

/// Bytes of address space per heap: the largest quota.
pub const WINDOW_BYTES: u64 = 64 << 20;

/// The quota an extension gets: the bytes its heap may map.
pub const DEFAULT_QUOTA: u64 = 4 << 20;

const PAGE: u64 = 4096;

/// The heaps' windows, from [`layout::EXTENSION_HEAPS_START`].
pub const WINDOWS: Windows =
    match Windows::new(layout::EXTENSION_HEAPS_START, WINDOW_BYTES, SLOTS, PAGE) {
        Some(windows) => windows,
        None => panic!("extension heap windows: bad geometry"),
    };

struct Arena {
    heap: Heap,
    account: Account,
    state: SlotState,
}

impl Arena {
    const EMPTY: Self = Self {
        heap: Heap::empty(),
        account: Account::new(0),
        state: SlotState::Free,
    };
}

static ARENAS: [Mutex<Arena>; SLOTS] = [const { Mutex::new(Arena::EMPTY) }; SLOTS];

fn with_arena<R>(slot: usize, f: impl FnOnce(&mut Arena) -> R) -> R {
    interrupts::without_interrupts(|| f(&mut ARENAS[slot].lock()))
}

fn window_start(slot: usize) -> u64 {
    WINDOWS.window(slot).map_or(0, |w| w.start)
}

/// Maps `bytes` at `start` with fresh frames; on running out of frames,
/// unmaps what it mapped and returns `false`.
fn map_pages(start: u64, bytes: u64) -> bool {
    let flags = PageTableFlags::WRITABLE | PageTableFlags::NO_EXECUTE | PageTableFlags::GLOBAL;
    let mut mapped = 0;
    while mapped < bytes {
        let page = Page::<Size4KiB>::containing_address(VirtAddr::new(start + mapped));
        let Some(frame) = frames::allocate() else {
            unmap_pages(start, mapped);
            return false;
        };
        // SAFETY: the page lies in a heap window above the arena's mapped
        // top, which nothing else maps; the frame was just taken from the
        // bitmap.
        if unsafe { paging::map(page, frame, flags) }.is_err() {
            let _ = frames::deallocate(frame);
            unmap_pages(start, mapped);
            return false;
        }
        mapped += PAGE;
    }
    true
}

/// Unmaps `bytes` at `start`, frees their frames and the page tables left
/// empty.
fn unmap_pages(start: u64, bytes: u64) {
    if bytes == 0 {
        return;
    }
    let mut offset = 0;
    while offset < bytes {
        let page = Page::<Size4KiB>::containing_address(VirtAddr::new(start + offset));
        // SAFETY: the arena's heap no longer hands out or holds blocks in
        // these pages (it is empty or was never handed them).
        if let Ok(frame) = unsafe { paging::unmap(page) } {
            let _ = frames::deallocate(frame);
        }
        offset += PAGE;
    }
    // SAFETY: the window belongs to this arena alone.
    unsafe { paging::clean_up_range(VirtAddr::new(start), VirtAddr::new(start + bytes)) };
}

/// Frees an arena's pages and forgets its heap.
fn reclaim(slot: usize, arena: &mut Arena) {
    unmap_pages(window_start(slot), arena.account.mapped);
    arena.heap = Heap::empty();
    arena.account = Account::new(0);
}

/// Takes a free slot for a loading extension with `quota` bytes
/// (at most [`WINDOW_BYTES`]).
pub fn take(quota: u64) -> Result<usize, SlotsFull> {
    let mut kept = 0;
    for slot in 0..SLOTS {
        let taken = with_arena(slot, |arena| {
            if arena.state.take() {
                arena.account = Account::new(quota.min(WINDOW_BYTES));
                return true;
            }
            kept += usize::from(arena.state == SlotState::Kept);
            false
        });
        if taken {
            return Ok(slot);
        }
    }
    Err(SlotsFull { slots: SLOTS, kept })
}

/// The slot's extension is gone (its bindings revoked, raises done): an
/// empty heap is freed, one with live blocks kept until they are freed.
pub fn release(slot: usize) -> Released {
    if slot >= SLOTS {
        return Released::Freed;
    }
    with_arena(slot, |arena| {
        let released = arena.state.release(&arena.account);
        if released == Released::Freed && arena.account.mapped > 0 {
            reclaim(slot, arena);
        }
        released
    })
}

/// The slot's figures.
pub fn usage(slot: usize) -> Option<Account> {
    (slot < SLOTS).then(|| with_arena(slot, |arena| arena.account))
}

/// What `mem` shows of the extension heaps.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Summary {
    /// Heaps of loaded extensions.
    pub live: usize,
    /// Bytes allocated in them.
    pub live_bytes: u64,
    /// Heaps kept after their extension's unload.
    pub kept: usize,
    /// Bytes still allocated in them.
    pub kept_bytes: u64,
    /// Frames mapped under all of them.
    pub frames: u64,
}

/// The heaps' figures together.
pub fn summary() -> Summary {
    let mut summary = Summary::default();
    for slot in 0..SLOTS {
        with_arena(slot, |arena| {
            match arena.state {
                SlotState::Live => {
                    summary.live += 1;
                    summary.live_bytes += arena.account.used;
                }
                SlotState::Kept => {
                    summary.kept += 1;
                    summary.kept_bytes += arena.account.used;
                }
                SlotState::Free => {}
            }
            summary.frames += arena.account.frames(PAGE);
        });
    }
    summary
}

/// Allocates in slot `slot`'s heap, growing it within its quota; null if
/// the quota (or the machine's frames) would be exceeded, or the slot is
/// not a loaded extension's.
pub fn allocate(slot: usize, layout: Layout) -> *mut u8 {
    with_arena(slot, |arena| {
        if arena.state != SlotState::Live {
            return ptr::null_mut();
        }
        loop {
            if arena.account.mapped > 0
                && let Ok(block) = arena.heap.allocate_first_fit(layout)
            {
                arena.account.allocated(layout.size() as u64);
                return block.as_ptr();
            }
            let Ok(growth) = arena
                .account
                .grow(layout.size() as u64, layout.align() as u64, PAGE)
            else {
                return ptr::null_mut();
            };
            let top = window_start(slot) + arena.account.mapped;
            if !map_pages(top, growth.bytes) {
                return ptr::null_mut();
            }
            if arena.account.mapped == 0 {
                // SAFETY: [top, top + bytes) was mapped writable just above,
                // at the start of this arena's window, which nothing else
                // uses.
                unsafe { arena.heap.init(top as *mut u8, growth.bytes as usize) };
            } else {
                // SAFETY: the pages just mapped start at the heap's top and
                // belong to this arena's window alone.
                unsafe { arena.heap.extend(growth.bytes as usize) };
            }
            arena.account.grown(growth);
        }
    })
}

/// Frees a block of an extension heap; a kept heap whose last block this
/// was is unmapped.
///
/// # Safety
/// `ptr` was returned by [`allocate`] (through a slot's entry point) with
/// `layout`, and is not used afterwards.
pub unsafe fn deallocate(ptr: NonNull<u8>, layout: Layout) {
    let Some(slot) = WINDOWS.slot_of(ptr.as_ptr() as u64) else {
        return;
    };
    with_arena(slot, |arena| {
        // SAFETY: forwarded from the caller; the pointer's window names the
        // arena that handed it out.
        unsafe { arena.heap.deallocate(ptr, layout) };
        arena.account.freed(layout.size() as u64);
        if arena.state.freed(&arena.account) {
            reclaim(slot, arena);
        }
    })
}

/// Slot `K`'s `__rust_alloc`.
fn alloc_in<const K: usize>(size: usize, align: usize) -> *mut u8 {
    match Layout::from_size_align(size, align) {
        Ok(layout) => allocate(K, layout),
        Err(_) => ptr::null_mut(),
    }
}

/// Slot `K`'s `__rust_alloc_zeroed`.
fn alloc_zeroed_in<const K: usize>(size: usize, align: usize) -> *mut u8 {
    let block = alloc_in::<K>(size, align);
    if !block.is_null() {
        // SAFETY: `block` is a fresh allocation of `size` bytes.
        unsafe { ptr::write_bytes(block, 0, size) };
    }
    block
}

/// Slot `K`'s `__rust_realloc`: a new block in slot `K`'s heap, the bytes
/// copied, the old block freed wherever it lives (an extension may grow a
/// vector the kernel allocated, and the other way round).
///
/// # Safety
/// `__rust_realloc`'s contract: `old` was allocated by the global
/// allocator with `old_size` and `align`, `new_size` is non-zero and valid
/// for `align`; on success `old` is not used again.
unsafe fn realloc_in<const K: usize>(
    old: *mut u8,
    old_size: usize,
    align: usize,
    new_size: usize,
) -> *mut u8 {
    let block = alloc_in::<K>(new_size, align);
    if block.is_null() {
        return block;
    }
    // SAFETY: both blocks are valid for the smaller size and distinct (the
    // new one is fresh); `old` came from the global allocator with this
    // layout (the caller's contract), so the kernel's `dealloc` may free it.
    unsafe {
        ptr::copy_nonoverlapping(old, block, old_size.min(new_size));
        alloc::alloc::dealloc(old, Layout::from_size_align_unchecked(old_size, align));
    }
    block
}

/// The addresses a slot's extension binds its allocator imports to.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct SlotEntries {
    /// For `__rust_alloc`.
    pub alloc: u64,
    /// For `__rust_alloc_zeroed`.
    pub alloc_zeroed: u64,
    /// For `__rust_realloc`.
    pub realloc: u64,
}

struct EntryFns {
    alloc: fn(usize, usize) -> *mut u8,
    alloc_zeroed: fn(usize, usize) -> *mut u8,
    realloc: unsafe fn(*mut u8, usize, usize, usize) -> *mut u8,
}

macro_rules! entry_table {
    ($($k:literal)*) => {
        [$(EntryFns {
            alloc: alloc_in::<$k>,
            alloc_zeroed: alloc_zeroed_in::<$k>,
            realloc: realloc_in::<$k>,
        }),*]
    };
}

static ENTRIES: [EntryFns; SLOTS] = entry_table!(
    0 1 2 3 4 5 6 7 8 9 10 11 12 13 14 15 16 17 18 19 20 21 22 23 24 25 26 27 28 29 30 31
);

/// Slot `slot`'s entry points.
pub fn entries(slot: usize) -> Option<SlotEntries> {
    ENTRIES.get(slot).map(|e| SlotEntries {
        alloc: e.alloc as usize as u64,
        alloc_zeroed: e.alloc_zeroed as usize as u64,
        realloc: e.realloc as usize as u64,
    })
}
