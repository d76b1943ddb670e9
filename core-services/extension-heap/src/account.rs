//! What one extension heap holds, and whether it may grow.

use core::fmt;

/// The figures of one heap: live blocks and bytes (as the allocations asked
/// for them, without the allocator's padding), the peak, the pages mapped
/// under it, the quota on those pages, and how many growths were refused.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Account {
    /// Most bytes the heap may map.
    pub quota: u64,
    /// Bytes mapped (whole pages).
    pub mapped: u64,
    /// Bytes in live blocks.
    pub used: u64,
    /// Live blocks.
    pub blocks: u64,
    /// Most bytes ever live at once.
    pub peak: u64,
    /// Allocations refused because the quota was reached.
    pub refused: u64,
}

/// How far a heap grows to satisfy one allocation.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Growth {
    /// Bytes to map at the top of the heap (whole pages).
    pub bytes: u64,
}

/// An allocation the quota does not allow.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct QuotaExceeded {
    /// The bytes asked for.
    pub requested: u64,
    /// Bytes already mapped.
    pub mapped: u64,
    /// The quota.
    pub quota: u64,
}

impl fmt::Display for QuotaExceeded {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "allocating {} bytes would exceed the heap quota ({} of {} bytes mapped)",
            self.requested, self.mapped, self.quota
        )
    }
}

impl Account {
    /// An empty heap with `quota` bytes.
    pub const fn new(quota: u64) -> Self {
        Self {
            quota,
            mapped: 0,
            used: 0,
            blocks: 0,
            peak: 0,
            refused: 0,
        }
    }

    /// Pages mapped (`page` bytes each): the frames the heap holds.
    pub const fn frames(&self, page: u64) -> u64 {
        self.mapped / page
    }

    /// Growth for an allocation of `size` bytes aligned to `align` that the
    /// heap's free space could not satisfy: enough whole pages for the
    /// block at any alignment, clamped to what the quota leaves. Refused
    /// (and counted) when the quota leaves nothing.
    pub fn grow(&mut self, size: u64, align: u64, page: u64) -> Result<Growth, QuotaExceeded> {
        let left = self.quota.saturating_sub(self.mapped);
        let want = size
            .saturating_add(align)
            .saturating_add(page - 1)
            .max(page)
            / page
            * page;
        let bytes = want.min(left / page * page);
        if bytes == 0 {
            self.refused += 1;
            return Err(QuotaExceeded {
                requested: size,
                mapped: self.mapped,
                quota: self.quota,
            });
        }
        Ok(Growth { bytes })
    }

    /// The growth was mapped.
    pub fn grown(&mut self, growth: Growth) {
        self.mapped += growth.bytes;
    }

    /// A block of `size` bytes was handed out.
    pub fn allocated(&mut self, size: u64) {
        self.used += size;
        self.blocks += 1;
        self.peak = self.peak.max(self.used);
    }

    /// A block of `size` bytes came back.
    pub fn freed(&mut self, size: u64) {
        self.used = self.used.saturating_sub(size);
        self.blocks = self.blocks.saturating_sub(1);
    }

    /// Whether no block is live.
    pub const fn is_empty(&self) -> bool {
        self.blocks == 0
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const PAGE: u64 = 4096;

    #[test]
    fn growth_is_whole_pages_covering_size_and_alignment() {
        let mut a = Account::new(16 * PAGE);
        assert_eq!(a.grow(1, 8, PAGE), Ok(Growth { bytes: PAGE }));
        assert_eq!(a.grow(PAGE, 8, PAGE), Ok(Growth { bytes: 2 * PAGE }));
        assert_eq!(a.grow(3 * PAGE, PAGE, PAGE), Ok(Growth { bytes: 4 * PAGE }));
    }

    #[test]
    fn growth_stops_at_the_quota_and_the_refusal_is_counted() {
        let mut a = Account::new(4 * PAGE);
        let g = a.grow(3 * PAGE, 8, PAGE).unwrap();
        assert_eq!(g, Growth { bytes: 4 * PAGE });
        a.grown(g);
        assert_eq!(a.frames(PAGE), 4);
        assert_eq!(
            a.grow(16, 8, PAGE),
            Err(QuotaExceeded {
                requested: 16,
                mapped: 4 * PAGE,
                quota: 4 * PAGE
            })
        );
        assert_eq!(a.refused, 1);
        // Clamped to what is left.
        let mut b = Account::new(3 * PAGE);
        b.grown(Growth { bytes: PAGE });
        assert_eq!(b.grow(10 * PAGE, 8, PAGE), Ok(Growth { bytes: 2 * PAGE }));
    }

    #[test]
    fn usage_tracks_blocks_bytes_and_peak() {
        let mut a = Account::new(PAGE);
        a.allocated(100);
        a.allocated(28);
        a.freed(100);
        assert_eq!((a.used, a.blocks, a.peak), (28, 1, 128));
        assert!(!a.is_empty());
        a.freed(28);
        assert!(a.is_empty());
        assert_eq!(a.peak, 128);
    }

    #[test]
    fn a_refusal_reads_as_a_sentence() {
        let e = QuotaExceeded {
            requested: 65536,
            mapped: 4194304,
            quota: 4194304,
        };
        assert_eq!(
            e.to_string(),
            "allocating 65536 bytes would exceed the heap quota (4194304 of 4194304 bytes mapped)"
        );
    }
}
