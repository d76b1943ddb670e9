//! The running service: mappings on the kernel's page tables, and the
//! page-fault path.

use alloc::vec::Vec;
use core::sync::atomic::{AtomicU64, Ordering};

use dispatcher::{KernelCapability, PrincipalId};
use phys_addr::{FrameNumber, Frames};
use virt_addr::{Access, PAGE_SIZE, RangeId, RangeInfo, VirtError, VirtRange};

use crate::error::TranslationError;
use crate::events::{Fault, FaultReply, kernel_events};
use crate::table::{Mapping, MappingTable, Protection};

/// What the kernel provides: the x86_64 page tables.
pub trait Platform: Sync {
    /// Maps `page` to `frame`; fails only for want of a page-table frame
    /// ([`TranslationError::PageTable`]).
    fn map(
        &self,
        page: u64,
        frame: FrameNumber,
        protection: Protection,
    ) -> Result<(), TranslationError>;
    /// Unmaps `page` (and flushes it from the TLB).
    fn unmap(&self, page: u64);
    /// Changes `page`'s permissions (and flushes it).
    fn protect(&self, page: u64, protection: Protection);
    /// Frees the page tables left empty in `[start, end)`.
    fn free_tables(&self, start: u64, end: u64);
    /// Disables interrupts; returns whether they were enabled.
    fn interrupts_disable(&self) -> bool;
    /// Re-enables interrupts if `were_enabled`.
    fn interrupts_restore(&self, were_enabled: bool);
}

static PLATFORM: spin::Once<&'static dyn Platform> = spin::Once::new();
static TABLE: spin::Mutex<MappingTable<PrincipalId>> = spin::Mutex::new(MappingTable::new());

/// Faults seen by kind and how they ended.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct FaultCounts {
    /// `PageNotPresent` raised.
    pub not_present: u64,
    /// `ProtectionFault` raised.
    pub protection: u64,
    /// `BadAddress` raised.
    pub bad_address: u64,
    /// Resolved (the access was retried).
    pub resolved: u64,
    /// Not resolved (reported to the faulting code).
    pub unresolved: u64,
}

static COUNTS: [AtomicU64; 5] = [const { AtomicU64::new(0) }; 5];

/// Consecutive faults at the same page for the same access that a handler
/// said it resolved: the last one's page and access, and how many in a
/// row.
static REPEAT: spin::Mutex<(u64, Option<Access>, u32)> = spin::Mutex::new((0, None, 0));

/// A fault "resolved" this many times in a row at the same page for the
/// same access made no progress (the page tables disagree with the
/// mapping, say): it is reported instead of retried again.
pub const MAX_REPEATED_FAULTS: u32 = 3;

/// Counts a resolved fault; false if it repeats one that made no progress.
fn progressing(address: u64, access: Access) -> bool {
    let page = address & !(PAGE_SIZE - 1);
    let Some(mut last) = REPEAT.try_lock() else {
        return true;
    };
    if last.0 == page && last.1 == Some(access) {
        last.2 += 1;
    } else {
        *last = (page, Some(access), 1);
    }
    if last.2 > MAX_REPEATED_FAULTS {
        *last = (0, None, 0);
        return false;
    }
    true
}

/// Installs the kernel's platform (once; false if already done).
pub fn set_platform(_kernel: KernelCapability, platform: &'static dyn Platform) -> bool {
    let mut installed = false;
    PLATFORM.call_once(|| {
        installed = true;
        platform
    });
    installed
}

fn platform() -> Result<&'static dyn Platform, TranslationError> {
    PLATFORM.get().copied().ok_or(TranslationError::NoService)
}

/// Runs `f` on the table with interrupts disabled (page tables and table
/// change together).
fn locked<R>(p: &dyn Platform, f: impl FnOnce(&mut MappingTable<PrincipalId>) -> R) -> R {
    let were = p.interrupts_disable();
    let result = f(&mut TABLE.lock());
    p.interrupts_restore(were);
    result
}

/// `Translation.AddMapping`: maps frame `index` of `frames` at page `page`
/// of `range`, with `protection`. Holding both capabilities is the right to
/// do so.
pub fn add_mapping(
    range: &VirtRange,
    page: u64,
    frames: &Frames,
    index: usize,
    protection: Protection,
) -> Result<(), TranslationError> {
    let p = platform()?;
    let address = range.page_address(page)?;
    if !range.is_live() {
        return Err(TranslationError::Range(VirtError::Released(range.id())));
    }
    let frame = frames.frame(index)?;
    let mapping = Mapping {
        page: address,
        frame,
        allocation: frames.id(),
        index,
        range: range.id(),
        owner: range.owner(),
        protection,
    };
    locked(p, |table| {
        table.insert(mapping)?;
        p.map(address, frame, protection).inspect_err(|_| {
            table.remove(address);
        })
    })
}

/// `Translation.RemoveMapping`: unmaps page `page` of `range`; returns the
/// frame that was mapped. Page tables left empty are freed.
pub fn remove_mapping(range: &VirtRange, page: u64) -> Result<FrameNumber, TranslationError> {
    let p = platform()?;
    let address = range.page_address(page)?;
    let mapping = locked(p, |table| {
        let mapping = table
            .remove(address)
            .ok_or(TranslationError::NotMapped { page: address })?;
        p.unmap(address);
        Ok::<_, TranslationError>(mapping)
    })?;
    p.free_tables(address, address + PAGE_SIZE);
    Ok(mapping.frame)
}

/// Changes the protection of page `page` of `range`.
pub fn protect(
    range: &VirtRange,
    page: u64,
    protection: Protection,
) -> Result<(), TranslationError> {
    let p = platform()?;
    let address = range.page_address(page)?;
    locked(p, |table| {
        table
            .protect(address, protection)
            .ok_or(TranslationError::NotMapped { page: address })?;
        p.protect(address, protection);
        Ok(())
    })
}

/// Changes the protection of every mapped page of `range`; returns how
/// many pages changed.
pub fn protect_range(range: &VirtRange, protection: Protection) -> Result<usize, TranslationError> {
    let p = platform()?;
    if !range.is_live() {
        return Err(TranslationError::Range(VirtError::Released(range.id())));
    }
    Ok(locked(p, |table| {
        let pages = table.in_range(range.base(), range.end());
        for m in &pages {
            table.protect(m.page, protection);
            p.protect(m.page, protection);
        }
        pages.len()
    }))
}

/// `Translation.ExamineMapping`: what page `page` of `range` maps.
pub fn examine_mapping(
    range: &VirtRange,
    page: u64,
) -> Result<Option<Mapping<PrincipalId>>, TranslationError> {
    let p = platform()?;
    let address = range.page_address(page)?;
    Ok(locked(p, |table| table.get(address).copied()))
}

/// The mappings of range `id` (anyone may look: addresses and frame
/// numbers grant nothing).
pub fn mappings_of(range: &RangeInfo<PrincipalId>) -> Vec<Mapping<PrincipalId>> {
    match platform() {
        Ok(p) => locked(p, |table| table.in_range(range.base, range.end())),
        Err(_) => Vec::new(),
    }
}

/// Number of mappings in all.
pub fn mapping_count() -> usize {
    platform().map_or(0, |p| locked(p, |table| table.len()))
}

/// Removes every mapping of these frames (PhysAddr calls this before
/// frames leave their holder). Kernel only.
pub fn unmap_frames(_kernel: KernelCapability, frames: &[FrameNumber]) -> usize {
    let Ok(p) = platform() else { return 0 };
    if frames.is_empty() {
        return 0;
    }
    let pages = locked(p, |table| {
        let pages = table.pages_of(frames);
        for &page in &pages {
            table.remove(page);
            p.unmap(page);
        }
        pages
    });
    for &page in &pages {
        p.free_tables(page, page + PAGE_SIZE);
    }
    pages.len()
}

/// Removes every mapping in `range` and frees the page tables left empty
/// (VirtAddr calls this before a range is freed). Kernel only.
pub fn unmap_range(_kernel: KernelCapability, range: &RangeInfo<PrincipalId>) -> usize {
    let Ok(p) = platform() else { return 0 };
    let count = locked(p, |table| {
        let mappings = table.in_range(range.base, range.end());
        for m in &mappings {
            table.remove(m.page);
            p.unmap(m.page);
        }
        mappings.len()
    });
    p.free_tables(range.base, range.end());
    count
}

/// How the service dealt with a page fault.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum FaultOutcome {
    /// Not in the service's region: someone else's fault.
    NotOurs,
    /// A handler mapped the page: retry the access.
    Resolved,
    /// Raised, and nobody resolved it: report it to the faulting code.
    Unresolved(Fault),
}

/// The page-fault path (kernel only): raises the event the fault calls for
/// and checks the answer. `present` is the error code's P bit (a
/// protection violation rather than a missing page).
pub fn handle_fault(
    _kernel: KernelCapability,
    address: u64,
    access: Access,
    present: bool,
) -> FaultOutcome {
    if !virt_addr::REGION.contains(&address) {
        return FaultOutcome::NotOurs;
    }
    let range = virt_addr::lookup(address);
    let fault = Fault {
        address,
        access,
        range: range.as_ref().map(|r| r.id),
        owner: range.as_ref().map(|r| r.owner),
        range_base: range.as_ref().map_or(0, |r| r.base),
    };
    let Some(events) = kernel_events() else {
        return FaultOutcome::Unresolved(fault);
    };
    let (event, counter) = match (&range, present) {
        (None, _) => (&events.bad_address, 2),
        (Some(_), false) => (&events.page_not_present, 0),
        (Some(_), true) => (&events.protection_fault, 1),
    };
    COUNTS[counter].fetch_add(1, Ordering::Relaxed);
    let reply = event.raise(&fault).unwrap_or(FaultReply::NotResolved);
    // Believe it only if the page now allows the access, and the same
    // access has not just been "resolved" at this page again and again.
    let resolved = reply == FaultReply::Resolved
        && range.is_some()
        && TABLE
            .try_lock()
            .and_then(|t| t.get(address).map(|m| m.protection.allows(access)))
            .unwrap_or(false)
        && progressing(address, access);
    if resolved {
        COUNTS[3].fetch_add(1, Ordering::Relaxed);
        FaultOutcome::Resolved
    } else {
        COUNTS[4].fetch_add(1, Ordering::Relaxed);
        FaultOutcome::Unresolved(fault)
    }
}

/// Faults since boot.
pub fn fault_counts() -> FaultCounts {
    let c = |i: usize| COUNTS[i].load(Ordering::Relaxed);
    FaultCounts {
        not_present: c(0),
        protection: c(1),
        bad_address: c(2),
        resolved: c(3),
        unresolved: c(4),
    }
}

/// The range id of a mapping's page, for listings.
pub fn range_of(mapping: &Mapping<PrincipalId>) -> RangeId {
    mapping.range
}
