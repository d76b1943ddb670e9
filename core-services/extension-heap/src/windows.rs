//! Fixed windows of address space, one per slot, and routing by address.

use core::ops::Range;

/// `count` windows of `size` bytes each, back to back from `base`.
///
/// Invariants (checked by [`Windows::new`]): `base` and `size` are
/// multiples of `page`, `size > 0`, and the last window ends without
/// overflowing.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Windows {
    base: u64,
    size: u64,
    count: usize,
}

impl Windows {
    /// The windows, or `None` if the invariants do not hold.
    pub const fn new(base: u64, size: u64, count: usize, page: u64) -> Option<Self> {
        if size == 0 || page == 0 || !base.is_multiple_of(page) || !size.is_multiple_of(page) {
            return None;
        }
        match size.checked_mul(count as u64) {
            Some(total) if base.checked_add(total).is_some() => Some(Self { base, size, count }),
            _ => None,
        }
    }

    /// How many windows.
    pub const fn count(&self) -> usize {
        self.count
    }

    /// Bytes per window: the largest quota a slot can have.
    pub const fn size(&self) -> u64 {
        self.size
    }

    /// All windows together.
    pub const fn span(&self) -> Range<u64> {
        self.base..self.base + self.size * self.count as u64
    }

    /// Slot `slot`'s window, or `None` past the last.
    pub fn window(&self, slot: usize) -> Option<Range<u64>> {
        (slot < self.count).then(|| {
            let start = self.base + self.size * slot as u64;
            start..start + self.size
        })
    }

    /// Whether `address` lies in some window: one subtraction and one
    /// compare, the test every kernel `dealloc` makes.
    #[inline(always)]
    pub const fn contains(&self, address: u64) -> bool {
        address.wrapping_sub(self.base) < self.size * self.count as u64
    }

    /// The slot whose window holds `address`.
    pub const fn slot_of(&self, address: u64) -> Option<usize> {
        if self.contains(address) {
            Some(((address - self.base) / self.size) as usize)
        } else {
            None
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const PAGE: u64 = 4096;

    #[test]
    fn windows_are_back_to_back_and_route_each_address_to_its_slot() {
        let w = Windows::new(0xffff_c800_0000_0000, 1 << 30, 4, PAGE).unwrap();
        assert_eq!(w.span(), 0xffff_c800_0000_0000..0xffff_c801_0000_0000);
        assert_eq!(
            w.window(2),
            Some(0xffff_c800_8000_0000..0xffff_c800_c000_0000)
        );
        assert_eq!(w.window(4), None);
        assert_eq!(w.slot_of(0xffff_c800_0000_0000), Some(0));
        assert_eq!(w.slot_of(0xffff_c800_3fff_ffff), Some(0));
        assert_eq!(w.slot_of(0xffff_c800_4000_0000), Some(1));
        assert_eq!(w.slot_of(0xffff_c800_ffff_ffff), Some(3));
        assert_eq!(w.slot_of(0xffff_c801_0000_0000), None);
        assert_eq!(w.slot_of(0xffff_c7ff_ffff_ffff), None);
        // The kernel heap and null are nobody's.
        assert!(!w.contains(0xffff_9000_0000_0000));
        assert!(!w.contains(0));
    }

    #[test]
    fn bad_geometry_is_refused() {
        assert_eq!(Windows::new(1, PAGE, 1, PAGE), None);
        assert_eq!(Windows::new(0, PAGE + 1, 1, PAGE), None);
        assert_eq!(Windows::new(0, 0, 1, PAGE), None);
        assert_eq!(Windows::new(u64::MAX - PAGE + 1, PAGE, 2, PAGE), None);
        assert!(Windows::new(u64::MAX - 2 * PAGE + 1, PAGE, 1, PAGE).is_some());
    }
}
