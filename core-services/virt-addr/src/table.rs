//! The table of allocated ranges: first fit inside each [`Zone`] of the
//! service's address space, one unmapped guard page after every range.
//!
//! Pure bookkeeping, generic over the owner type so that the host tests
//! use small numbers.

use alloc::collections::BTreeMap;
use alloc::string::String;
use alloc::vec::Vec;
use core::ops::Range;

use crate::error::VirtError;

/// Size of a page.
pub const PAGE_SIZE: u64 = 4096;

/// Names one range. Never reused.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct RangeId(u64);

impl RangeId {
    /// The number, for display.
    pub fn as_u64(self) -> u64 {
        self.0
    }
}

/// The translation context a range belongs to. Spindle has one address
/// space today, the kernel's; user address spaces would add contexts.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct ContextId(u32);

impl ContextId {
    /// The kernel's (only) address space.
    pub const KERNEL: ContextId = ContextId(0);

    /// The number, for display.
    pub fn as_u32(self) -> u32 {
        self.0
    }
}

/// The part of the address space a range is taken from.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Zone {
    /// Ranges that extensions allocate and map themselves; page faults in
    /// them are the Translation service's events.
    Data,
    /// Extension images, which the loader allocates for an extension's
    /// principal: a window next to the kernel image, because code built for
    /// the kernel code model reaches the kernel with 32-bit relocations.
    Image,
}

impl Zone {
    /// Every zone.
    pub const ALL: [Zone; 2] = [Zone::Data, Zone::Image];

    fn index(self) -> usize {
        match self {
            Self::Data => 0,
            Self::Image => 1,
        }
    }

    /// A word for listings.
    pub fn name(self) -> &'static str {
        match self {
            Self::Data => "data",
            Self::Image => "image",
        }
    }
}

/// One allocated range.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct RangeInfo<O> {
    /// Its name.
    pub id: RangeId,
    /// The zone it was taken from.
    pub zone: Zone,
    /// First byte (page aligned).
    pub base: u64,
    /// Length in pages.
    pub pages: u64,
    /// Its address space.
    pub context: ContextId,
    /// Who holds it.
    pub owner: O,
    /// The owner's name.
    pub owner_name: String,
}

impl<O> RangeInfo<O> {
    /// One past the last byte.
    pub fn end(&self) -> u64 {
        self.base + self.pages * PAGE_SIZE
    }

    /// Whether `addr` is inside.
    pub fn contains(&self, addr: u64) -> bool {
        (self.base..self.end()).contains(&addr)
    }
}

/// The ranges of the service's zones. Range ids are unique across zones.
pub struct RangeTable<O> {
    /// Each zone's addresses, by [`Zone::index`]; the zones do not overlap.
    zones: [Range<u64>; 2],
    /// By base address.
    ranges: BTreeMap<u64, RangeInfo<O>>,
    next_id: u64,
}

impl<O: Copy + Eq> RangeTable<O> {
    /// An empty table with only a data zone, `region` (page aligned).
    pub const fn new(region: Range<u64>) -> Self {
        Self::with_zones(region, 0..0)
    }

    /// An empty table over a data zone and an image zone (page aligned,
    /// disjoint).
    pub const fn with_zones(data: Range<u64>, image: Range<u64>) -> Self {
        Self {
            zones: [data, image],
            ranges: BTreeMap::new(),
            next_id: 1,
        }
    }

    /// The data zone.
    pub fn region(&self) -> Range<u64> {
        self.zone(Zone::Data)
    }

    /// The addresses of `zone`.
    pub fn zone(&self, zone: Zone) -> Range<u64> {
        self.zones[zone.index()].clone()
    }

    /// Allocates `pages` pages of the data zone for `owner`.
    pub fn allocate(
        &mut self,
        owner: O,
        name: &str,
        pages: u64,
    ) -> Result<RangeInfo<O>, VirtError> {
        self.allocate_in(Zone::Data, owner, name, pages)
    }

    /// Allocates `pages` pages of `zone` for `owner`: the lowest gap that
    /// holds them and a guard page after.
    pub fn allocate_in(
        &mut self,
        zone: Zone,
        owner: O,
        name: &str,
        pages: u64,
    ) -> Result<RangeInfo<O>, VirtError> {
        if pages == 0 {
            return Err(VirtError::ZeroPages);
        }
        let span = pages
            .checked_add(1)
            .and_then(|p| p.checked_mul(PAGE_SIZE))
            .ok_or(VirtError::NoSpace { pages })?;
        let region = self.zone(zone);
        let mut candidate = region.start;
        for range in self.ranges.range(region.clone()).map(|(_, r)| r) {
            if candidate
                .checked_add(span)
                .is_none_or(|end| range.base >= end)
            {
                break;
            }
            candidate = candidate.max(range.end() + PAGE_SIZE);
        }
        if candidate
            .checked_add(span)
            .is_none_or(|end| end > region.end)
        {
            return Err(VirtError::NoSpace { pages });
        }
        let info = RangeInfo {
            id: RangeId(self.next_id),
            zone,
            base: candidate,
            pages,
            context: ContextId::KERNEL,
            owner,
            owner_name: String::from(name),
        };
        self.next_id += 1;
        self.ranges.insert(candidate, info.clone());
        Ok(info)
    }

    /// Frees range `id`.
    pub fn free(&mut self, id: RangeId) -> Result<RangeInfo<O>, VirtError> {
        let base = self
            .ranges
            .values()
            .find(|r| r.id == id)
            .map(|r| r.base)
            .ok_or(VirtError::Released(id))?;
        let info = self.ranges.remove(&base).expect("found above");
        self.release_if_empty();
        Ok(info)
    }

    /// An emptied `BTreeMap` keeps its root node; a fresh one holds no
    /// memory, so an idle service leaves the heap as it found it.
    fn release_if_empty(&mut self) {
        if self.ranges.is_empty() {
            self.ranges = BTreeMap::new();
        }
    }

    /// The range containing `addr`.
    pub fn lookup(&self, addr: u64) -> Option<&RangeInfo<O>> {
        self.ranges
            .range(..=addr)
            .next_back()
            .map(|(_, r)| r)
            .filter(|r| r.contains(addr))
    }

    /// Range `id`.
    pub fn get(&self, id: RangeId) -> Option<&RangeInfo<O>> {
        self.ranges.values().find(|r| r.id == id)
    }

    /// Every range, by address.
    pub fn all(&self) -> Vec<RangeInfo<O>> {
        self.ranges.values().cloned().collect()
    }

    /// Removes and returns every range of `owner`.
    pub fn release_owner(&mut self, owner: O) -> Vec<RangeInfo<O>> {
        let bases: Vec<u64> = self
            .ranges
            .values()
            .filter(|r| r.owner == owner)
            .map(|r| r.base)
            .collect();
        let released = bases
            .into_iter()
            .filter_map(|b| self.ranges.remove(&b))
            .collect();
        self.release_if_empty();
        released
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const P: u64 = PAGE_SIZE;

    #[test]
    fn first_fit_with_a_guard_page_after_each_range() {
        let mut t = RangeTable::<u32>::new(0x10_0000..0x10_0000 + 20 * P);
        let a = t.allocate(1, "a", 4).unwrap();
        let b = t.allocate(2, "b", 2).unwrap();
        assert_eq!(a.base, 0x10_0000);
        assert_eq!(b.base, a.end() + P, "one guard page between");
        assert_eq!(t.lookup(a.base + 3 * P + 5).map(|r| r.id), Some(a.id));
        assert_eq!(t.lookup(a.end()), None, "the guard page is nobody's");
        assert_eq!(t.lookup(b.base).map(|r| r.owner), Some(2));
        t.free(a.id).unwrap();
        assert_eq!(t.free(a.id), Err(VirtError::Released(a.id)));
        // The hole before b takes a 3-page range (3 + guard = 4 <= 5).
        let c = t.allocate(3, "c", 3).unwrap();
        assert_eq!(c.base, 0x10_0000);
        // 20 pages: a hole of 5, b + guard 3, so 12 left at the end.
        assert_eq!(
            t.allocate(4, "d", 12),
            Err(VirtError::NoSpace { pages: 12 })
        );
        assert!(t.allocate(4, "d", 11).is_ok());
        assert_eq!(t.allocate(4, "z", 0), Err(VirtError::ZeroPages));
    }

    #[test]
    fn zones_allocate_apart_and_ids_stay_unique() {
        let data = 0x10_0000..0x10_0000 + 8 * P;
        let image = 0x80_0000..0x80_0000 + 6 * P;
        let mut t = RangeTable::<u32>::with_zones(data.clone(), image.clone());
        let d = t.allocate(1, "a", 2).unwrap();
        let i = t.allocate_in(Zone::Image, 1, "a", 3).unwrap();
        let j = t.allocate_in(Zone::Image, 2, "b", 1).unwrap();
        assert_eq!((d.base, d.zone), (data.start, Zone::Data));
        assert_eq!((i.base, i.zone), (image.start, Zone::Image));
        assert_eq!(j.base, i.end() + P, "one guard page between images");
        assert_ne!(d.id, i.id);
        assert_ne!(i.id, j.id);
        // 6 pages: 3 + guard, 1 + guard; nothing left for another.
        assert_eq!(
            t.allocate_in(Zone::Image, 3, "c", 1),
            Err(VirtError::NoSpace { pages: 1 })
        );
        // The data zone is untouched by the image zone's ranges.
        assert_eq!(t.allocate(3, "c", 4).unwrap().base, d.end() + P);
        assert_eq!(t.lookup(i.base + 2 * P).map(|r| r.id), Some(i.id));
        assert_eq!(t.zone(Zone::Image), image);
        // A table without an image zone has no room there.
        let mut plain = RangeTable::<u32>::new(data);
        assert_eq!(
            plain.allocate_in(Zone::Image, 1, "a", 1),
            Err(VirtError::NoSpace { pages: 1 })
        );
        // Freed image ranges are reused, lowest first.
        t.free(i.id).unwrap();
        assert_eq!(
            t.allocate_in(Zone::Image, 4, "d", 3).unwrap().base,
            image.start
        );
    }

    #[test]
    fn releasing_an_owner_takes_only_its_ranges() {
        let mut t = RangeTable::<u32>::new(0..100 * P);
        let a1 = t.allocate(1, "a", 1).unwrap();
        let b = t.allocate(2, "b", 1).unwrap();
        let a2 = t.allocate(1, "a", 1).unwrap();
        let gone: Vec<RangeId> = t.release_owner(1).iter().map(|r| r.id).collect();
        assert_eq!(gone, [a1.id, a2.id]);
        assert_eq!(t.all(), [b]);
    }
}
