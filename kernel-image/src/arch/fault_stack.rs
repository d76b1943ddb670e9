//! The page-fault handler's own stack, safe for nested faults.
//!
//! The page fault has an IST entry ([`gdt::PAGE_FAULT_IST`]), so it gets a
//! good stack even when the faulting code has none left (a strand that ran
//! into its guard page). But an IST entry is a fixed address: a page fault
//! *inside* the page-fault handler (a bad pointer in fault-handling code,
//! or, later, in an extension's fault handler) would be delivered at the
//! same address and overwrite the frame of the fault being handled.
//!
//! So the region is split into [`LEVELS`] levels. The handler's first act
//! ([`Nesting::enter`]) moves the IST entry down one level, so a nested
//! fault lands below the running handler's frame; leaving ([`Nesting`]'s
//! `Drop`, so also on unwinding) moves it back. Faults nested deeper than
//! the levels are refused with a panic; the one after that would find the
//! entry pointing at the unmapped page below the region and become a
//! double fault, which has its own stack: the kernel reports instead of
//! triple-faulting.

use core::sync::atomic::{AtomicU64, Ordering};

use x86_64::VirtAddr;

use super::gdt;

/// Nesting levels of the page-fault stack.
pub const LEVELS: usize = 4;

static TOP: AtomicU64 = AtomicU64::new(0);
static LEVEL_SIZE: AtomicU64 = AtomicU64::new(0);

fn region() -> (u64, u64) {
    let top = TOP.load(Ordering::Relaxed);
    if top != 0 {
        return (top, LEVEL_SIZE.load(Ordering::Relaxed));
    }
    let (top, size) = gdt::boot_page_fault_stack();
    (top.as_u64(), size / LEVELS as u64)
}

/// Points the page-fault IST entry at nesting level `depth` of the region.
/// Runs with interrupts disabled (in the handler, or inside [`install`]'s
/// contract), and a level at or past [`LEVELS`] lands on the unmapped page
/// below the region, which turns the next fault into a reported double
/// fault.
fn point_at_level(depth: usize) {
    let (top, level_size) = region();
    // SAFETY: levels below `top` are the page-fault region (mapped,
    // writable, used by page faults alone) and level `depth` is below every
    // running handler's frame; past the region is the guard page, which the
    // double fault (its own stack) reports. The entry changes only with
    // interrupts disabled, and a page fault cannot arrive during the write.
    unsafe {
        gdt::set_interrupt_stack(
            gdt::PAGE_FAULT_IST,
            VirtAddr::new(top - depth as u64 * level_size),
        )
    };
}

/// Moves page faults to `LEVELS` levels of `level_size` bytes below `top`.
///
/// # Safety
/// `top - LEVELS * level_size .. top` is mapped, writable and used by
/// nothing else for the kernel's life, with an unmapped page below it;
/// interrupts are disabled and no page fault is being handled.
pub unsafe fn install(top: VirtAddr, level_size: u64) {
    debug_assert_eq!(
        crate::cpu::current()
            .page_fault_depth
            .load(Ordering::Relaxed),
        0
    );
    LEVEL_SIZE.store(level_size, Ordering::Relaxed);
    TOP.store(top.as_u64(), Ordering::Relaxed);
    point_at_level(0);
}

/// One page fault being handled on this CPU.
pub struct Nesting {
    depth: usize,
}

impl Nesting {
    /// Called first in the page-fault handler: moves the IST entry below
    /// this handler's frame.
    pub fn enter() -> Self {
        let depth = crate::cpu::current()
            .page_fault_depth
            .fetch_add(1, Ordering::Relaxed)
            + 1;
        point_at_level(depth);
        if depth >= LEVELS {
            panic!("page faults nested {depth} deep: the fault handlers are faulting");
        }
        Self { depth }
    }

    /// 1 for a fault of ordinary code, 2 and more for faults in a fault
    /// handler.
    pub fn depth(&self) -> usize {
        self.depth
    }
}

impl Drop for Nesting {
    fn drop(&mut self) {
        let depth = crate::cpu::current()
            .page_fault_depth
            .fetch_sub(1, Ordering::Relaxed)
            - 1;
        point_at_level(depth);
    }
}
