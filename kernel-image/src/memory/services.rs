//! The kernel's half of the three memory services — PhysAddr, VirtAddr and
//! Translation — and their events.
//!
//! The services' logic is in `core-services/{phys-addr,virt-addr,
//! translation}` (safe, host-tested); this module is the machine they run
//! on: the frame bitmap ([`super::frames`]), zeroing frames through the
//! physical-memory mapping, the kernel's page tables ([`super::paging`]),
//! the range accessors ([`super::access`]), the clock and strands for the
//! reclaim deadline. It also declares the services' events with the
//! kernel's principal and installs their authorizers:
//!
//! * `PhysAddr.Allocate`, `PhysAddr.Deallocate` (signals, anyone observes),
//!   `PhysAddr.Reclaim` (each owner sees only requests addressed to it;
//!   default answer: refused), `PhysAddr.Repossessed` (each owner hears only
//!   about itself);
//! * `Translation.PageNotPresent`, `Translation.ProtectionFault` (each
//!   owner sees only faults in its own ranges; default: not resolved) and
//!   `Translation.BadAddress` (kernel only).
//!
//! The services call each other through these platforms: frames leaving
//! their holder (PhysAddr) and ranges being freed (VirtAddr) are unmapped
//! by Translation first.

use dispatcher::{Event, EventAuthority, PrincipalId};
use phys_addr::{
    FrameNumber, FrameStats, FramesSignal, ReclaimReply, ReclaimRequest, RepossessedNotice,
};
use translation::{Fault, FaultReply, Protection};
use virt_addr::{AccessFault, RangeInfo};
use x86_64::instructions::interrupts;
use x86_64::structures::paging::{Page, PageTableFlags, PhysFrame, Size4KiB};
use x86_64::{PhysAddr, VirtAddr};

use super::{frames, paging};
use crate::PHYSICAL_MEMORY_OFFSET;

/// The machine under the three services.
struct KernelMemory;

static PLATFORM: KernelMemory = KernelMemory;

fn phys_frame(frame: FrameNumber) -> PhysFrame<Size4KiB> {
    PhysFrame::containing_address(PhysAddr::new(frame.start_address()))
}

fn page(addr: u64) -> Page<Size4KiB> {
    Page::containing_address(VirtAddr::new(addr))
}

fn disable() -> bool {
    let were = interrupts::are_enabled();
    interrupts::disable();
    were
}

fn restore(were: bool) {
    if were {
        interrupts::enable();
    }
}

impl phys_addr::Platform for KernelMemory {
    fn allocate_frame(&self) -> Option<FrameNumber> {
        frames::allocate().map(|f| FrameNumber::containing(f.start_address().as_u64()))
    }

    fn allocate_contiguous(&self, count: u64) -> Option<FrameNumber> {
        frames::allocate_contiguous(count)
    }

    fn free_frame(&self, frame: FrameNumber) {
        if let Err(e) = frames::deallocate(phys_frame(frame)) {
            log::warn!(
                "PhysAddr: frame {:#x} not returned: {e}",
                frame.start_address()
            );
        }
    }

    fn zero_frame(&self, frame: FrameNumber) {
        let start = (PHYSICAL_MEMORY_OFFSET + frame.start_address()) as *mut u8;
        // SAFETY: the frame was just taken from the bitmap for the service,
        // so nothing else uses it; the physical-memory mapping covers all
        // RAM, writable.
        unsafe { core::ptr::write_bytes(start, 0, phys_addr::FRAME_SIZE as usize) };
    }

    fn stats(&self) -> FrameStats {
        frames::stats()
    }

    fn unmap_frames(&self, frames: &[FrameNumber]) {
        translation::unmap_frames(crate::events::capability(), frames);
    }

    fn now_ns(&self) -> u64 {
        crate::time::uptime_ns()
    }

    fn can_wait(&self) -> bool {
        strand::can_block()
    }

    fn pause(&self) {
        if crate::strands::sleep_ticks(1).is_err() {
            x86_64::instructions::hlt();
        }
    }

    fn interrupts_disable(&self) -> bool {
        disable()
    }

    fn interrupts_restore(&self, were_enabled: bool) {
        restore(were_enabled)
    }
}

impl virt_addr::Platform for KernelMemory {
    fn unmap_range(&self, range: &RangeInfo<PrincipalId>) {
        translation::unmap_range(crate::events::capability(), range);
    }

    fn read_u64(&self, addr: u64) -> Result<u64, AccessFault> {
        super::access::read_u64(addr)
    }

    fn write_u64(&self, addr: u64, value: u64) -> Result<(), AccessFault> {
        super::access::write_u64(addr, value)
    }

    fn interrupts_disable(&self) -> bool {
        disable()
    }

    fn interrupts_restore(&self, were_enabled: bool) {
        restore(were_enabled)
    }
}

/// Page-table flags for a protection (never global: the region's pages
/// change often and are flushed one by one).
fn flags(protection: Protection) -> PageTableFlags {
    let mut flags = PageTableFlags::PRESENT;
    if protection.write {
        flags |= PageTableFlags::WRITABLE;
    }
    if !protection.execute {
        flags |= PageTableFlags::NO_EXECUTE;
    }
    flags
}

impl translation::Platform for KernelMemory {
    fn map(
        &self,
        addr: u64,
        frame: FrameNumber,
        protection: Protection,
    ) -> Result<(), translation::TranslationError> {
        // SAFETY: the Translation service maps only frames held through a
        // `Frames` capability (used by nothing else) at pages of a range
        // held through a `VirtRange`, in one of VirtAddr's two zones (data,
        // extension images), which only it maps; it checked the page is not
        // mapped.
        unsafe { paging::map_changeable(page(addr), phys_frame(frame), flags(protection)) }
            .map_err(|_| translation::TranslationError::PageTable { page: addr })
    }

    fn unmap(&self, addr: u64) {
        // SAFETY: the service unmaps a page only when its mapping goes
        // (removed, frames taken back, range freed); accesses to a data-zone
        // page after that fault and are the service's to handle, and an
        // image's pages go only once none of its code can run.
        if let Err(e) = unsafe { paging::unmap(page(addr)) } {
            log::warn!("Translation: unmapping {addr:#x}: {e:?}");
        }
    }

    fn protect(&self, addr: u64, protection: Protection) {
        // SAFETY: the page is one the service mapped; changing its
        // permissions affects only the range's own accesses.
        if let Err(e) = unsafe { paging::update_flags(page(addr), flags(protection)) } {
            log::warn!("Translation: protecting {addr:#x}: {e:?}");
        }
    }

    fn free_tables(&self, start: u64, end: u64) {
        // SAFETY: the range is in one of VirtAddr's zones, in the kernel's
        // single address space; a table left empty there served only the
        // service's mappings (the tables the image zone shares with the
        // kernel image above it are never empty).
        unsafe { paging::clean_up_range(VirtAddr::new(start), VirtAddr::new(end)) };
    }

    fn interrupts_disable(&self) -> bool {
        disable()
    }

    fn interrupts_restore(&self, were_enabled: bool) {
        restore(were_enabled)
    }
}

/// The kernel's authority over the memory services' events (kept for the
/// kernel's lifetime: the authorizers live with it).
#[allow(dead_code)]
pub struct MemoryAuthority {
    /// `PhysAddr.Allocate`.
    pub allocate: EventAuthority<FramesSignal, ()>,
    /// `PhysAddr.Deallocate`.
    pub deallocate: EventAuthority<FramesSignal, ()>,
    /// `PhysAddr.Reclaim`.
    pub reclaim: EventAuthority<ReclaimRequest, ReclaimReply>,
    /// `PhysAddr.Repossessed`.
    pub repossessed: EventAuthority<RepossessedNotice, ()>,
    /// `Translation.PageNotPresent`, `ProtectionFault`, `BadAddress`.
    pub faults: [EventAuthority<Fault, FaultReply>; 3],
}

static AUTHORITY: spin::Once<MemoryAuthority> = spin::Once::new();

/// The kernel's authority over the memory events.
#[allow(dead_code)]
pub fn authority() -> &'static MemoryAuthority {
    AUTHORITY.get().expect("memory::services::init ran at boot")
}

/// Installs the platforms and declares the events. After `events::init`.
pub fn init() {
    let kernel = &crate::events::authority().kernel;
    let capability = crate::events::capability();
    phys_addr::service::set_platform(capability, &PLATFORM);
    virt_addr::service::set_platform(capability, &PLATFORM);
    translation::service::set_platform(capability, &PLATFORM);

    let signal = |name: &str| {
        let (event, authority) = Event::<FramesSignal, ()>::builder(name)
            .original(|_| ())
            .declare(kernel)
            .expect("each PhysAddr signal is declared once");
        authority.set_authorizer(phys_addr::events::signal_authorizer);
        (event, authority)
    };
    let (allocate, allocate_authority) = signal(phys_addr::ALLOCATE_EVENT);
    let (deallocate, deallocate_authority) = signal(phys_addr::DEALLOCATE_EVENT);
    let (reclaim, reclaim_authority) =
        Event::<ReclaimRequest, ReclaimReply>::builder(phys_addr::RECLAIM_EVENT)
            .result_handler(ReclaimReply::combine)
            .default_result(ReclaimReply::Refused)
            .declare(kernel)
            .expect("PhysAddr.Reclaim is declared once");
    reclaim_authority.set_authorizer(phys_addr::events::reclaim_authorizer);
    let (repossessed, repossessed_authority) =
        Event::<RepossessedNotice, ()>::builder(phys_addr::REPOSSESSED_EVENT)
            .original(|_| ())
            .declare(kernel)
            .expect("PhysAddr.Repossessed is declared once");
    repossessed_authority.set_authorizer(phys_addr::events::repossessed_authorizer);
    phys_addr::events::publish_events(
        capability,
        phys_addr::events::KernelEvents {
            allocate,
            deallocate,
            reclaim,
            repossessed,
        },
    );

    let fault_event = |name: &str| {
        Event::<Fault, FaultReply>::builder(name)
            .result_handler(FaultReply::combine)
            .default_result(FaultReply::NotResolved)
            .declare(kernel)
            .expect("each Translation fault event is declared once")
    };
    let (page_not_present, not_present_authority) =
        fault_event(translation::PAGE_NOT_PRESENT_EVENT);
    not_present_authority.set_authorizer(translation::events::range_owner_authorizer);
    let (protection_fault, protection_authority) = fault_event(translation::PROTECTION_FAULT_EVENT);
    protection_authority.set_authorizer(translation::events::range_owner_authorizer);
    let (bad_address, bad_address_authority) = fault_event(translation::BAD_ADDRESS_EVENT);
    bad_address_authority.set_authorizer(translation::events::bad_address_authorizer);
    translation::events::publish_events(
        capability,
        translation::events::KernelEvents {
            page_not_present,
            protection_fault,
            bad_address,
        },
    );

    AUTHORITY.call_once(|| MemoryAuthority {
        allocate: allocate_authority,
        deallocate: deallocate_authority,
        reclaim: reclaim_authority,
        repossessed: repossessed_authority,
        faults: [
            not_present_authority,
            protection_authority,
            bad_address_authority,
        ],
    });
}

/// Takes back everything an unloaded extension held in the three
/// services: its ranges (unmapped) and its frames (unmapped, freed),
/// whoever holds the capabilities now. Returns (ranges, frames).
pub fn release_owner(owner: PrincipalId) -> (usize, u64) {
    let capability = crate::events::capability();
    let ranges = virt_addr::release_owner(capability, owner);
    let frames = phys_addr::release_owner(capability, owner);
    (ranges, frames)
}
