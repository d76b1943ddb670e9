//! The running service: the range table behind a lock and the
//! [`VirtRange`] capability.

use alloc::vec::Vec;

use dispatcher::{KernelCapability, Principal, PrincipalId};

use crate::error::VirtError;
use crate::table::{ContextId, PAGE_SIZE, RangeId, RangeInfo, RangeTable, Zone};

/// The data zone: the virtual region the service hands out to anyone (1 TiB
/// of the kernel's address space, see the kernel's memory layout). Page
/// faults here are the Translation service's events.
pub const REGION: core::ops::Range<u64> = 0xffff_d000_0000_0000..0xffff_d100_0000_0000;

/// The image zone: where the loader places extension images, for the
/// extension's principal ([`allocate_image`]). It lies inside the top
/// 2 GiB, next to the kernel image, so that rustc's kernel-code-model
/// relocations (PC32, 32S) between extensions and the kernel are in range.
pub const IMAGE_REGION: core::ops::Range<u64> = 0xffff_ffff_9000_0000..0xffff_ffff_f000_0000;

/// The kind of access that faulted.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Access {
    /// A load.
    Read,
    /// A store.
    Write,
    /// An instruction fetch.
    Execute,
}

impl core::fmt::Display for Access {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.write_str(match self {
            Self::Read => "read",
            Self::Write => "write",
            Self::Execute => "execute",
        })
    }
}

/// An access through a range that faulted and that no handler resolved.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct AccessFault {
    /// The faulting address.
    pub address: u64,
    /// What the access was.
    pub access: Access,
}

/// Why an access through a range failed.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum AccessError {
    /// Outside the range, or not 8-byte aligned.
    Bounds(VirtError),
    /// The access faulted and no handler resolved the fault.
    Fault(AccessFault),
}

impl core::fmt::Display for AccessError {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        match self {
            Self::Bounds(e) => write!(f, "{e}"),
            Self::Fault(fault) => write!(
                f,
                "unresolved page fault: {} at {:#x}",
                fault.access, fault.address
            ),
        }
    }
}

/// What the kernel provides.
pub trait Platform: Sync {
    /// Removes every mapping in the range and the page tables left empty
    /// (the Translation service); called before a range is freed.
    fn unmap_range(&self, range: &RangeInfo<PrincipalId>);
    /// Loads 8 bytes at `addr`; a fault nobody resolves is returned.
    fn read_u64(&self, addr: u64) -> Result<u64, AccessFault>;
    /// Stores 8 bytes at `addr`; a fault nobody resolves is returned.
    fn write_u64(&self, addr: u64, value: u64) -> Result<(), AccessFault>;
    /// Disables interrupts; returns whether they were enabled.
    fn interrupts_disable(&self) -> bool;
    /// Re-enables interrupts if `were_enabled`.
    fn interrupts_restore(&self, were_enabled: bool);
}

static PLATFORM: spin::Once<&'static dyn Platform> = spin::Once::new();
static TABLE: spin::Mutex<RangeTable<PrincipalId>> =
    spin::Mutex::new(RangeTable::with_zones(REGION, IMAGE_REGION));

/// Installs the kernel's platform (once; false if already done).
pub fn set_platform(_kernel: KernelCapability, platform: &'static dyn Platform) -> bool {
    let mut installed = false;
    PLATFORM.call_once(|| {
        installed = true;
        platform
    });
    installed
}

fn platform() -> Result<&'static dyn Platform, VirtError> {
    PLATFORM.get().copied().ok_or(VirtError::NoService)
}

fn locked<R>(f: impl FnOnce(&mut RangeTable<PrincipalId>) -> R) -> R {
    match PLATFORM.get() {
        Some(p) => {
            let were = p.interrupts_disable();
            let result = f(&mut TABLE.lock());
            p.interrupts_restore(were);
            result
        }
        None => f(&mut TABLE.lock()),
    }
}

/// A range of virtual addresses held: the capability `VirtAddr.Allocate`
/// returns. Only this service makes one. Dropping it (or
/// [`VirtRange::deallocate`]) removes every mapping in it and frees it;
/// unloading its owner does the same, whoever holds it then.
pub struct VirtRange {
    id: RangeId,
    zone: Zone,
    base: u64,
    pages: u64,
    owner: PrincipalId,
    done: bool,
}

impl VirtRange {
    /// Its name.
    pub fn id(&self) -> RangeId {
        self.id
    }

    /// The zone it was taken from.
    pub fn zone(&self) -> Zone {
        self.zone
    }

    /// First byte.
    pub fn base(&self) -> u64 {
        self.base
    }

    /// Length in pages.
    pub fn pages(&self) -> u64 {
        self.pages
    }

    /// One past the last byte.
    pub fn end(&self) -> u64 {
        self.base + self.pages * PAGE_SIZE
    }

    /// Its address space.
    pub fn context(&self) -> ContextId {
        ContextId::KERNEL
    }

    /// Its owner.
    pub fn owner(&self) -> PrincipalId {
        self.owner
    }

    /// Whether the range still exists (it is taken back when its owner is
    /// unloaded).
    pub fn is_live(&self) -> bool {
        locked(|t| t.get(self.id).is_some())
    }

    /// The address of page `page`.
    pub fn page_address(&self, page: u64) -> Result<u64, VirtError> {
        if page >= self.pages {
            return Err(VirtError::OutOfRange {
                range: self.id,
                offset: page.saturating_mul(PAGE_SIZE),
            });
        }
        Ok(self.base + page * PAGE_SIZE)
    }

    fn checked(&self, offset: u64) -> Result<u64, AccessError> {
        if offset % 8 != 0
            || offset
                .checked_add(8)
                .is_none_or(|end| end > self.pages * PAGE_SIZE)
        {
            return Err(AccessError::Bounds(VirtError::OutOfRange {
                range: self.id,
                offset,
            }));
        }
        if !self.is_live() {
            return Err(AccessError::Bounds(VirtError::Released(self.id)));
        }
        Ok(self.base + offset)
    }

    /// Reads the 8 bytes at `offset`. A page that is not mapped faults:
    /// `Translation.PageNotPresent` goes to the range's owner, and if it
    /// resolves the fault the read completes; otherwise the fault is
    /// returned.
    pub fn read_u64(&self, offset: u64) -> Result<u64, AccessError> {
        let addr = self.checked(offset)?;
        let p = platform().map_err(AccessError::Bounds)?;
        p.read_u64(addr).map_err(AccessError::Fault)
    }

    /// Writes 8 bytes at `offset`; faults as for [`read_u64`](Self::read_u64).
    pub fn write_u64(&self, offset: u64, value: u64) -> Result<(), AccessError> {
        let addr = self.checked(offset)?;
        let p = platform().map_err(AccessError::Bounds)?;
        p.write_u64(addr, value).map_err(AccessError::Fault)
    }

    /// Frees the range (after removing its mappings).
    pub fn deallocate(mut self) -> Result<(), VirtError> {
        self.done = true;
        release(self.id)
    }
}

impl core::fmt::Debug for VirtRange {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        write!(
            f,
            "VirtRange({} at {:#x}, {} pages)",
            self.id.as_u64(),
            self.base,
            self.pages
        )
    }
}

impl Drop for VirtRange {
    fn drop(&mut self) {
        if !self.done {
            let _ = release(self.id);
        }
    }
}

fn release(id: RangeId) -> Result<(), VirtError> {
    let p = platform()?;
    let info = locked(|t| t.get(id).cloned()).ok_or(VirtError::Released(id))?;
    p.unmap_range(&info);
    locked(|t| t.free(id)).map(|_| ())
}

/// `VirtAddr.Allocate`: `pages` pages of the data zone for `owner`,
/// unmapped.
pub fn allocate(owner: &Principal, pages: u64) -> Result<VirtRange, VirtError> {
    allocate_in(Zone::Data, owner, pages)
}

/// `VirtAddr.Allocate` in the image zone, for an extension image: `pages`
/// pages next to the kernel image, owned by the extension's principal
/// `owner`, unmapped. Kernel only (the loader).
pub fn allocate_image(
    _kernel: KernelCapability,
    owner: &Principal,
    pages: u64,
) -> Result<VirtRange, VirtError> {
    allocate_in(Zone::Image, owner, pages)
}

fn allocate_in(zone: Zone, owner: &Principal, pages: u64) -> Result<VirtRange, VirtError> {
    if owner.is_revoked() {
        return Err(VirtError::Revoked);
    }
    platform()?;
    let info = locked(|t| t.allocate_in(zone, owner.id(), owner.name(), pages))?;
    Ok(VirtRange {
        id: info.id,
        zone: info.zone,
        base: info.base,
        pages: info.pages,
        owner: info.owner,
        done: false,
    })
}

/// The data-zone range containing `addr`, for the page-fault path: never
/// waits (a contended lock answers `None`).
pub fn lookup(addr: u64) -> Option<RangeInfo<PrincipalId>> {
    if !REGION.contains(&addr) {
        return None;
    }
    TABLE.try_lock().and_then(|t| t.lookup(addr).cloned())
}

/// Range `id`, if it still exists.
pub fn range(id: RangeId) -> Option<RangeInfo<PrincipalId>> {
    locked(|t| t.get(id).cloned())
}

/// Every range of both zones, by address.
pub fn ranges() -> Vec<RangeInfo<PrincipalId>> {
    locked(|t| t.all())
}

/// Unmaps and frees every range of `owner`, in both zones (its extension
/// is unloaded). Kernel only. Returns how many.
pub fn release_owner(_kernel: KernelCapability, owner: PrincipalId) -> usize {
    let Ok(p) = platform() else { return 0 };
    let ranges: Vec<RangeInfo<PrincipalId>> =
        locked(|t| t.all().into_iter().filter(|r| r.owner == owner).collect());
    for range in &ranges {
        p.unmap_range(range);
    }
    locked(|t| t.release_owner(owner)).len()
}
