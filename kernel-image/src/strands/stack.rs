//! Strand stacks: mapped pages with an unmapped guard below each.
//!
//! The region [`STRAND_STACKS_START`]`..`[`STRAND_STACKS_END`] is cut into
//! 2 MiB slots. A stack occupies the top of its slot; everything below it
//! in the slot stays unmapped, so a strand that runs off the bottom of its
//! stack — even by a large frame, since every frame over a page is probed
//! page by page — faults in its own slot's guard region, never in another
//! strand's stack. A slot is one level-1 page table, so freeing a stack
//! frees its page table too, and the level-2 and -3 tables above go when
//! their last slot goes: spawning and joining strands leaves frames
//! exactly as they were. Slots are reused lowest first.
//!
//! Frames come from [`stack_frame`] and go back through
//! [`release_stack_frame`]: the one place to re-route when frames get
//! owners.

use alloc::collections::BTreeSet;

use spin::Mutex;
use strand::StrandError;
use x86_64::VirtAddr;
use x86_64::instructions::interrupts;
use x86_64::structures::paging::mapper::MapToError;
use x86_64::structures::paging::{Page, PageTableFlags, PhysFrame, Size4KiB};

use crate::cpu::StackBounds;
use crate::memory::layout::{STRAND_STACKS_END, STRAND_STACKS_START};
use crate::memory::{frames, paging};

const PAGE: u64 = 4096;
/// Bytes of address space per stack.
pub const SLOT_SIZE: u64 = 2 << 20;
/// The largest stack: a slot less one guard page.
pub const MAX_STACK: usize = (SLOT_SIZE - PAGE) as usize;
const SLOTS: u64 = (STRAND_STACKS_END - STRAND_STACKS_START) / SLOT_SIZE;

/// Free slots below `next`; `next` is the lowest never-used slot.
struct Slots {
    free: BTreeSet<u64>,
    next: u64,
}

static SLOT_ALLOCATOR: Mutex<Slots> = Mutex::new(Slots {
    free: BTreeSet::new(),
    next: 0,
});

fn take_slot() -> Option<u64> {
    interrupts::without_interrupts(|| {
        let mut slots = SLOT_ALLOCATOR.lock();
        if let Some(slot) = slots.free.pop_first() {
            if slots.free.is_empty() {
                slots.free = BTreeSet::new();
            }
            return Some(slot);
        }
        (slots.next < SLOTS).then(|| {
            slots.next += 1;
            slots.next - 1
        })
    })
}

fn release_slot(slot: u64) {
    interrupts::without_interrupts(|| {
        let mut guard = SLOT_ALLOCATOR.lock();
        let slots = &mut *guard;
        slots.free.insert(slot);
        // Give back the top of the used range, so the free set stays small
        // (and empty, holding no heap, once every stack is gone).
        while slots.next > 0 && slots.free.remove(&(slots.next - 1)) {
            slots.next -= 1;
        }
        if slots.free.is_empty() {
            slots.free = BTreeSet::new();
        }
    });
}

/// A frame for a stack page.
fn stack_frame() -> Option<PhysFrame<Size4KiB>> {
    frames::allocate()
}

/// Gives a stack page's frame back.
fn release_stack_frame(frame: PhysFrame<Size4KiB>) {
    if let Err(e) = frames::deallocate(frame) {
        log::error!(
            "stack frame {:#x} not returned: {e}",
            frame.start_address().as_u64()
        );
    }
}

/// A mapped strand stack; unmapped and freed when dropped.
#[derive(Debug)]
pub struct Stack {
    slot: u64,
    pages: u64,
}

impl Stack {
    /// Maps a stack of at least `bytes` (whole pages, at least one).
    pub fn allocate(bytes: usize) -> Result<Stack, StrandError> {
        if bytes > MAX_STACK {
            return Err(StrandError::StackTooLarge {
                requested: bytes,
                max: MAX_STACK,
            });
        }
        let pages = (bytes as u64).div_ceil(PAGE).max(1);
        let slot = take_slot().ok_or(StrandError::OutOfMemory("strand stack addresses"))?;
        let mut stack = Stack { slot, pages: 0 };
        let flags = PageTableFlags::WRITABLE | PageTableFlags::NO_EXECUTE;
        while stack.pages < pages {
            let page =
                Page::containing_address(VirtAddr::new(stack.top() - (stack.pages + 1) * PAGE));
            let Some(frame) = stack_frame() else {
                return Err(StrandError::OutOfMemory("stack frames"));
            };
            // SAFETY: the page is in this stack's slot, which no one else
            // uses, and is not mapped yet; the frame was just allocated.
            match unsafe { paging::map(page, frame, flags) } {
                Ok(()) => stack.pages += 1,
                Err(e) => {
                    release_stack_frame(frame);
                    return Err(StrandError::OutOfMemory(match e {
                        MapToError::FrameAllocationFailed => "page tables",
                        _ => "stack pages already mapped",
                    }));
                }
            }
        }
        Ok(stack)
    }

    fn base(&self) -> u64 {
        STRAND_STACKS_START + self.slot * SLOT_SIZE
    }

    /// One past the stack's highest byte (16-byte aligned).
    pub fn top(&self) -> u64 {
        self.base() + SLOT_SIZE
    }

    /// The stack's lowest byte.
    pub fn bottom(&self) -> u64 {
        self.top() - self.pages * PAGE
    }

    /// The stack and its guard region.
    pub fn bounds(&self) -> StackBounds {
        StackBounds {
            guard_start: self.base(),
            bottom: self.bottom(),
            top: self.top(),
        }
    }
}

impl Drop for Stack {
    fn drop(&mut self) {
        for n in 0..self.pages {
            let page: Page = Page::containing_address(VirtAddr::new(self.top() - (n + 1) * PAGE));
            // SAFETY: the stack is being dropped: no strand runs on it any
            // more (the reaper frees only stacks of strands switched out
            // for good), and nothing else maps its slot.
            match unsafe { paging::unmap(page) } {
                Ok(frame) => release_stack_frame(frame),
                Err(e) => log::error!("stack page {:#x} not unmapped: {e:?}", page.start_address()),
            }
        }
        // SAFETY: the slot's pages are all unmapped now, and its page
        // tables (and any above that became empty) serve no other mapping
        // in use: each slot is one level-1 table of its own.
        unsafe {
            paging::clean_up_range(
                VirtAddr::new(self.base()),
                VirtAddr::new(self.base() + SLOT_SIZE),
            );
        }
        release_slot(self.slot);
    }
}
