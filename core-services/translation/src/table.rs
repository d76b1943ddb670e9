//! The mappings the service made: which page of which range maps which
//! frame of which allocation, with what protection.
//!
//! Pure bookkeeping (the page tables are the kernel's), generic over the
//! owner type for the host tests. The kernel's page tables and this table
//! change together, under the service's lock.

use alloc::collections::BTreeMap;
use alloc::vec::Vec;

use phys_addr::{AllocationId, FrameNumber};
use virt_addr::{PAGE_SIZE, RangeId};

use crate::error::TranslationError;

/// What a mapping allows. Reading is always allowed (x86_64 has no
/// write-only or execute-only pages).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Protection {
    /// Stores allowed.
    pub write: bool,
    /// Instruction fetches allowed.
    pub execute: bool,
}

impl Protection {
    /// Read only.
    pub const READ: Protection = Protection {
        write: false,
        execute: false,
    };
    /// Read and write.
    pub const READ_WRITE: Protection = Protection {
        write: true,
        execute: false,
    };
    /// Read and execute.
    pub const READ_EXECUTE: Protection = Protection {
        write: false,
        execute: true,
    };

    /// Whether an access of this kind is allowed.
    pub fn allows(self, access: virt_addr::Access) -> bool {
        match access {
            virt_addr::Access::Read => true,
            virt_addr::Access::Write => self.write,
            virt_addr::Access::Execute => self.execute,
        }
    }
}

impl core::fmt::Display for Protection {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        write!(
            f,
            "r{}{}",
            if self.write { "w" } else { "-" },
            if self.execute { "x" } else { "-" }
        )
    }
}

/// One mapping.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Mapping<O> {
    /// The page's address.
    pub page: u64,
    /// The frame mapped there.
    pub frame: FrameNumber,
    /// The allocation the frame belongs to, and its index there.
    pub allocation: AllocationId,
    /// Index of the frame in the allocation.
    pub index: usize,
    /// The range the page belongs to.
    pub range: RangeId,
    /// The range's owner.
    pub owner: O,
    /// What it allows.
    pub protection: Protection,
}

/// The service's mappings, by page address.
pub struct MappingTable<O> {
    by_page: BTreeMap<u64, Mapping<O>>,
}

impl<O: Copy> Default for MappingTable<O> {
    fn default() -> Self {
        Self::new()
    }
}

impl<O: Copy> MappingTable<O> {
    /// No mappings.
    pub const fn new() -> Self {
        Self {
            by_page: BTreeMap::new(),
        }
    }

    /// Records a mapping; refused if the page is mapped or the frame is
    /// already mapped somewhere (one mapping per frame keeps revocation
    /// exact).
    pub fn insert(&mut self, mapping: Mapping<O>) -> Result<(), TranslationError> {
        if self.by_page.contains_key(&mapping.page) {
            return Err(TranslationError::AlreadyMapped { page: mapping.page });
        }
        if let Some(other) = self.by_page.values().find(|m| m.frame == mapping.frame) {
            return Err(TranslationError::FrameAlreadyMapped {
                frame: mapping.frame,
                page: other.page,
            });
        }
        self.by_page.insert(mapping.page, mapping);
        Ok(())
    }

    /// Removes the mapping of `page`.
    pub fn remove(&mut self, page: u64) -> Option<Mapping<O>> {
        self.by_page.remove(&page)
    }

    /// The mapping of the page containing `addr`.
    pub fn get(&self, addr: u64) -> Option<&Mapping<O>> {
        self.by_page.get(&(addr & !(PAGE_SIZE - 1)))
    }

    /// Changes a mapping's protection.
    pub fn protect(&mut self, page: u64, protection: Protection) -> Option<Mapping<O>> {
        let mapping = self.by_page.get_mut(&page)?;
        mapping.protection = protection;
        Some(*mapping)
    }

    /// The mappings in `[start, end)`, by address.
    pub fn in_range(&self, start: u64, end: u64) -> Vec<Mapping<O>> {
        self.by_page.range(start..end).map(|(_, m)| *m).collect()
    }

    /// The pages mapping any of `frames`.
    pub fn pages_of(&self, frames: &[FrameNumber]) -> Vec<u64> {
        self.by_page
            .values()
            .filter(|m| frames.contains(&m.frame))
            .map(|m| m.page)
            .collect()
    }

    /// Number of mappings.
    pub fn len(&self) -> usize {
        self.by_page.len()
    }

    /// Whether there are none.
    pub fn is_empty(&self) -> bool {
        self.by_page.is_empty()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ids() -> (AllocationId, RangeId) {
        // Ids are only made by their services; the table just stores them,
        // so the tests borrow real ones from a ledger and a range table.
        let mut ledger = phys_addr::Ledger::<u32>::new(0);
        let allocation = ledger.record(1, "x", alloc::vec![FrameNumber(1)], false);
        let mut ranges = virt_addr::RangeTable::<u32>::new(0..1 << 30);
        let range = ranges.allocate(1, "x", 4).unwrap().id;
        (allocation, range)
    }

    fn mapping(page: u64, frame: u64) -> Mapping<u32> {
        let (allocation, range) = ids();
        Mapping {
            page,
            frame: FrameNumber(frame),
            allocation,
            index: 0,
            range,
            owner: 1,
            protection: Protection::READ_WRITE,
        }
    }

    #[test]
    fn one_mapping_per_page_and_per_frame() {
        let mut t = MappingTable::new();
        t.insert(mapping(0x1000, 7)).unwrap();
        assert_eq!(
            t.insert(mapping(0x1000, 8)),
            Err(TranslationError::AlreadyMapped { page: 0x1000 })
        );
        assert_eq!(
            t.insert(mapping(0x2000, 7)),
            Err(TranslationError::FrameAlreadyMapped {
                frame: FrameNumber(7),
                page: 0x1000
            })
        );
        t.insert(mapping(0x2000, 8)).unwrap();
        t.insert(mapping(0x9000, 9)).unwrap();
        assert_eq!(t.get(0x1fff).map(|m| m.frame), Some(FrameNumber(7)));
        assert_eq!(
            t.pages_of(&[FrameNumber(9), FrameNumber(8)]),
            [0x2000, 0x9000]
        );
        assert_eq!(t.in_range(0x1000, 0x3000).len(), 2);
        assert_eq!(
            t.protect(0x2000, Protection::READ).unwrap().protection,
            Protection::READ
        );
        assert!(
            !t.get(0x2000)
                .unwrap()
                .protection
                .allows(virt_addr::Access::Write)
        );
        assert!(
            t.get(0x2000)
                .unwrap()
                .protection
                .allows(virt_addr::Access::Read)
        );
        assert_eq!(t.remove(0x1000).map(|m| m.frame), Some(FrameNumber(7)));
        assert_eq!(t.len(), 2);
    }
}
