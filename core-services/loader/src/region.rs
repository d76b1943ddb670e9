//! The extension address region: first-fit allocation of page-aligned
//! ranges, and a guard that gives a range back unless the load commits it.

use alloc::vec::Vec;
use core::ops::Range;

/// First-fit allocator of page-aligned ranges inside one region.
///
/// Invariant: `used` is sorted by start, its ranges are page-aligned, lie
/// inside `region` and do not overlap.
#[derive(Debug)]
pub struct RegionAllocator {
    region: Range<u64>,
    page: u64,
    used: Vec<Range<u64>>,
}

impl RegionAllocator {
    /// An empty allocator over `region` (page-aligned; `page` a power of
    /// two), with room reserved for `capacity` ranges so that allocating and
    /// releasing do not change the heap's usage.
    pub fn new(region: Range<u64>, page: u64, capacity: usize) -> Self {
        debug_assert!(page.is_power_of_two());
        debug_assert!(region.start.is_multiple_of(page) && region.end.is_multiple_of(page));
        Self {
            region,
            page,
            used: Vec::with_capacity(capacity),
        }
    }

    /// The region.
    pub fn region(&self) -> Range<u64> {
        self.region.clone()
    }

    /// Takes `len` bytes (rounded up to whole pages, at least one), lowest
    /// address first; `None` if no gap is large enough.
    pub fn allocate(&mut self, len: u64) -> Option<Range<u64>> {
        let len = len.checked_next_multiple_of(self.page)?.max(self.page);
        let mut start = self.region.start;
        let mut index = 0;
        for used in &self.used {
            if start.checked_add(len)? <= used.start {
                break;
            }
            start = used.end;
            index += 1;
        }
        let range = start..start.checked_add(len)?;
        (range.end <= self.region.end).then(|| {
            self.used.insert(index, range.clone());
            range
        })
    }

    /// [`RegionAllocator::allocate`], returning a guard that releases the
    /// range when dropped unless [`RangeGuard::commit`] is called.
    pub fn allocate_guarded(&mut self, len: u64) -> Option<RangeGuard<'_>> {
        let range = self.allocate(len)?;
        Some(RangeGuard {
            region: self,
            range: Some(range),
        })
    }

    /// Gives a range back (exactly as allocated).
    pub fn release(&mut self, range: &Range<u64>) {
        self.used.retain(|r| r != range);
    }

    /// Bytes in use.
    pub fn used_bytes(&self) -> u64 {
        self.used.iter().map(|r| r.end - r.start).sum()
    }
}

/// A range taken for a load in progress: released on drop (a failed load)
/// unless committed (a successful one).
#[derive(Debug)]
pub struct RangeGuard<'r> {
    region: &'r mut RegionAllocator,
    range: Option<Range<u64>>,
}

impl RangeGuard<'_> {
    /// The range.
    pub fn range(&self) -> Range<u64> {
        self.range.clone().unwrap_or(0..0)
    }

    /// Keeps the range allocated and returns it.
    pub fn commit(mut self) -> Range<u64> {
        self.range.take().unwrap_or(0..0)
    }
}

impl Drop for RangeGuard<'_> {
    fn drop(&mut self) {
        if let Some(range) = self.range.take() {
            self.region.release(&range);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const PAGE: u64 = 4096;

    fn region() -> RegionAllocator {
        RegionAllocator::new(0x1000_0000..0x1001_0000, PAGE, 4)
    }

    #[test]
    fn first_fit_reuses_freed_ranges() {
        let mut region = region();
        let a = region.allocate(1).unwrap();
        let b = region.allocate(3 * PAGE + 1).unwrap();
        assert_eq!(a, 0x1000_0000..0x1000_1000);
        assert_eq!(b, 0x1000_1000..0x1000_5000);
        region.release(&a);
        assert_eq!(region.allocate(PAGE), Some(a.clone()));
        assert_eq!(region.allocate(2 * PAGE), Some(b.end..b.end + 2 * PAGE));
        assert_eq!(region.used_bytes(), 7 * PAGE);
    }

    #[test]
    fn requests_past_the_region_or_overflowing_are_refused() {
        let mut region = region();
        assert_eq!(region.allocate(1 << 40), None);
        assert_eq!(region.allocate(u64::MAX), None);
        assert_eq!(region.allocate(16 * PAGE), Some(0x1000_0000..0x1001_0000));
        assert_eq!(region.allocate(1), None);
        assert_eq!(region.used_bytes(), 16 * PAGE);
    }

    #[test]
    fn a_guard_releases_unless_committed() {
        let mut region = region();
        {
            let guard = region.allocate_guarded(PAGE).unwrap();
            assert_eq!(guard.range(), 0x1000_0000..0x1000_1000);
        }
        assert_eq!(region.used_bytes(), 0);
        let kept = region.allocate_guarded(2 * PAGE).unwrap().commit();
        assert_eq!(kept, 0x1000_0000..0x1000_2000);
        assert_eq!(region.used_bytes(), 2 * PAGE);
    }
}
