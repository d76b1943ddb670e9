//! The frame bitmap: which physical frames are RAM and which are free.
//!
//! Physical memory is a sequence of 4 KiB *frames*, numbered by
//! [`FrameNumber`] (`physical address / 4096`). The allocator covers one
//! window of frame numbers `[base, base + len)` with a bitmap, one bit per
//! frame: `1` = unavailable (allocated, reserved or not RAM), `0` = free.
//! Only frames the caller declared usable ever become free, so memory-mapped
//! I/O holes and firmware regions inside the window are never handed out.
//!
//! The bitmap storage is borrowed (`&'a mut [u64]`), not allocated: the
//! kernel carves it out of a usable region before it has a heap. Who holds
//! an allocated frame is not the bitmap's business: the service's
//! [`ledger`](crate::ledger) records owners.

use core::fmt;

/// Size of one frame in bytes.
pub const FRAME_SIZE: u64 = 4096;

/// Number of a physical frame: its physical address divided by [`FRAME_SIZE`].
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct FrameNumber(pub u64);

impl FrameNumber {
    /// The frame containing physical address `addr`.
    pub const fn containing(addr: u64) -> Self {
        Self(addr / FRAME_SIZE)
    }

    /// Physical address of the frame's first byte.
    pub const fn start_address(self) -> u64 {
        self.0 * FRAME_SIZE
    }
}

/// Why an allocator operation failed.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum FrameError {
    /// The bitmap storage is too small for the requested window.
    StorageTooSmall {
        /// Words needed.
        needed: usize,
        /// Words given.
        given: usize,
    },
    /// The frame is outside the allocator's window.
    OutOfRange(FrameNumber),
    /// The frame is already free: a double free, or a frame never handed out.
    NotAllocated(FrameNumber),
    /// The frame was never declared usable RAM.
    NotUsable(FrameNumber),
    /// A contiguous request asked for zero frames or a non-power-of-two alignment.
    BadRequest,
}

impl fmt::Display for FrameError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::StorageTooSmall { needed, given } => {
                write!(
                    f,
                    "bitmap storage too small: need {needed} words, have {given}"
                )
            }
            Self::OutOfRange(n) => write!(f, "frame {:#x} is outside the allocator", n.0),
            Self::NotAllocated(n) => write!(f, "frame {:#x} is not allocated", n.0),
            Self::NotUsable(n) => write!(f, "frame {:#x} is not usable RAM", n.0),
            Self::BadRequest => write!(f, "bad contiguous request"),
        }
    }
}

/// Counters describing the allocator's state.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Default)]
pub struct FrameStats {
    /// Frames declared usable (free or allocated).
    pub usable: u64,
    /// Frames currently free.
    pub free: u64,
}

impl FrameStats {
    /// Frames currently allocated.
    pub fn used(&self) -> u64 {
        self.usable - self.free
    }
}

/// Bitmap frame allocator over a window of frame numbers.
///
/// Invariants: the storage holds two bitmaps of `words_per_map` words each:
/// `usable` (bit set = the frame is RAM the caller declared usable) and
/// `free` (bit set = the frame is free). A frame is free only if it is
/// usable; `stats.free` is the number of set `free` bits and `stats.usable`
/// the number of set `usable` bits; `next_hint` is a word index where the
/// next search starts.
pub struct FrameBitmap<'a> {
    usable: &'a mut [u64],
    free: &'a mut [u64],
    base: u64,
    len: u64,
    next_hint: usize,
    stats: FrameStats,
}

impl<'a> FrameBitmap<'a> {
    /// Number of `u64` words of storage needed to cover `frames` frames
    /// (two bits per frame).
    pub const fn words_needed(frames: u64) -> usize {
        2 * frames.div_ceil(64) as usize
    }

    /// An allocator for frames `[base, base + len)` with no usable frame;
    /// declare RAM with [`FrameBitmap::add_usable`].
    pub fn try_new(
        storage: &'a mut [u64],
        base: FrameNumber,
        len: u64,
    ) -> Result<Self, FrameError> {
        let needed = Self::words_needed(len);
        if storage.len() < needed {
            return Err(FrameError::StorageTooSmall {
                needed,
                given: storage.len(),
            });
        }
        let (usable, rest) = storage.split_at_mut(needed / 2);
        let free = &mut rest[..needed / 2];
        usable.fill(0);
        free.fill(0);
        Ok(Self {
            usable,
            free,
            base: base.0,
            len,
            next_hint: 0,
            stats: FrameStats::default(),
        })
    }

    /// Declares frames `[start, start + count)` usable and free, clipped to the
    /// window. Frames already usable are left as they are. Returns the number
    /// of frames that became free.
    pub fn add_usable(&mut self, start: FrameNumber, count: u64) -> u64 {
        let mut added = 0;
        for frame in self.clip(start, count) {
            let (word, bit) = self.position(frame);
            if self.usable[word] & bit == 0 {
                self.usable[word] |= bit;
                self.free[word] |= bit;
                added += 1;
            }
        }
        self.stats.usable += added;
        self.stats.free += added;
        added
    }

    /// Marks free frames in `[start, start + count)` as allocated (for memory
    /// the kernel takes for itself before the allocator is in use, such as the
    /// bitmap's own storage). Returns how many frames were taken.
    pub fn reserve(&mut self, start: FrameNumber, count: u64) -> u64 {
        let mut taken = 0;
        for frame in self.clip(start, count) {
            let (word, bit) = self.position(frame);
            if self.free[word] & bit != 0 {
                self.free[word] &= !bit;
                taken += 1;
            }
        }
        self.stats.free -= taken;
        taken
    }

    /// Allocates one frame, or `None` when every usable frame is in use.
    pub fn allocate(&mut self) -> Option<FrameNumber> {
        let n = self.free.len();
        for step in 0..n {
            let index = (self.next_hint + step) % n;
            let word = self.free[index];
            if word != 0 {
                let bit = word.trailing_zeros() as u64;
                self.free[index] &= !(1 << bit);
                self.next_hint = index;
                self.stats.free -= 1;
                return Some(FrameNumber(self.base + index as u64 * 64 + bit));
            }
        }
        None
    }

    /// Allocates `count` physically contiguous frames whose first frame
    /// number is a multiple of `align` (a power of two, in frames).
    pub fn allocate_contiguous(
        &mut self,
        count: u64,
        align: u64,
    ) -> Result<Option<FrameNumber>, FrameError> {
        if count == 0 || !align.is_power_of_two() {
            return Err(FrameError::BadRequest);
        }
        let end = self.base + self.len;
        let mut start = self.base.next_multiple_of(align);
        while start.saturating_add(count) <= end {
            match (start..start + count).find(|&f| !self.is_free(f)) {
                None => {
                    for frame in start..start + count {
                        let (word, bit) = self.position(frame);
                        self.free[word] &= !bit;
                    }
                    self.stats.free -= count;
                    return Ok(Some(FrameNumber(start)));
                }
                Some(busy) => start = (busy + 1).next_multiple_of(align),
            }
        }
        Ok(None)
    }

    /// Returns an allocated frame to the pool.
    ///
    /// Fails, changing nothing, for frames outside the window, frames that
    /// were never usable RAM, and frames that are already free (a double free).
    pub fn deallocate(&mut self, frame: FrameNumber) -> Result<(), FrameError> {
        if frame.0 < self.base || frame.0 >= self.base + self.len {
            return Err(FrameError::OutOfRange(frame));
        }
        let (word, bit) = self.position(frame.0);
        if self.usable[word] & bit == 0 {
            return Err(FrameError::NotUsable(frame));
        }
        if self.free[word] & bit != 0 {
            return Err(FrameError::NotAllocated(frame));
        }
        self.free[word] |= bit;
        self.stats.free += 1;
        Ok(())
    }

    /// Whether `frame` is currently free.
    pub fn is_free_frame(&self, frame: FrameNumber) -> bool {
        frame.0 >= self.base && frame.0 < self.base + self.len && self.is_free(frame.0)
    }

    /// Current counters.
    pub fn stats(&self) -> FrameStats {
        self.stats
    }

    fn is_free(&self, frame: u64) -> bool {
        let (word, bit) = self.position(frame);
        self.free[word] & bit != 0
    }

    /// The part of `[start, start + count)` inside the window.
    fn clip(&self, start: FrameNumber, count: u64) -> core::ops::Range<u64> {
        let lo = start.0.max(self.base);
        let hi = start.0.saturating_add(count).min(self.base + self.len);
        lo..hi.max(lo)
    }

    /// Word index and bit mask of `frame`, which must be inside the window.
    fn position(&self, frame: u64) -> (usize, u64) {
        let offset = frame - self.base;
        ((offset / 64) as usize, 1 << (offset % 64))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn bitmap(storage: &mut [u64], base: u64, len: u64) -> FrameBitmap<'_> {
        FrameBitmap::try_new(storage, FrameNumber(base), len).unwrap()
    }

    #[test]
    fn starts_with_nothing_free() {
        let mut storage = [0u64; 8];
        let mut frames = bitmap(&mut storage, 100, 200);
        assert_eq!(frames.stats(), FrameStats { usable: 0, free: 0 });
        assert_eq!(frames.allocate(), None);
    }

    #[test]
    fn storage_must_cover_window() {
        let mut storage = [0u64; 3];
        let err = FrameBitmap::try_new(&mut storage, FrameNumber(0), 65).err();
        assert_eq!(
            err,
            Some(FrameError::StorageTooSmall {
                needed: 4,
                given: 3
            })
        );
    }

    #[test]
    fn only_usable_frames_are_handed_out_until_exhaustion() {
        let mut storage = [0u64; 8];
        let mut frames = bitmap(&mut storage, 1000, 256);
        assert_eq!(frames.add_usable(FrameNumber(1010), 5), 5);
        assert_eq!(frames.add_usable(FrameNumber(1200), 3), 3);
        // Clipped at the window's end, and idempotent.
        assert_eq!(frames.add_usable(FrameNumber(1254), 10), 2);
        assert_eq!(frames.add_usable(FrameNumber(1010), 5), 0);
        let mut got = std::vec::Vec::new();
        while let Some(f) = frames.allocate() {
            got.push(f.0);
        }
        got.sort();
        assert_eq!(
            got,
            [1010, 1011, 1012, 1013, 1014, 1200, 1201, 1202, 1254, 1255]
        );
        assert_eq!(frames.stats().free, 0);
        assert_eq!(frames.stats().used(), 10);
    }

    #[test]
    fn free_makes_a_frame_allocatable_again_and_catches_double_free() {
        let mut storage = [0u64; 2];
        let mut frames = bitmap(&mut storage, 0, 64);
        frames.add_usable(FrameNumber(0), 2);
        let a = frames.allocate().unwrap();
        let b = frames.allocate().unwrap();
        assert_ne!(a, b);
        assert_eq!(frames.allocate(), None);
        frames.deallocate(a).unwrap();
        assert_eq!(frames.deallocate(a), Err(FrameError::NotAllocated(a)));
        assert_eq!(
            frames.deallocate(FrameNumber(64)),
            Err(FrameError::OutOfRange(FrameNumber(64)))
        );
        // A hole that was never usable RAM cannot be "freed" into the pool.
        assert_eq!(
            frames.deallocate(FrameNumber(10)),
            Err(FrameError::NotUsable(FrameNumber(10)))
        );
        assert_eq!(frames.stats(), FrameStats { usable: 2, free: 1 });
        assert_eq!(frames.allocate(), Some(a));
        assert_eq!(frames.allocate(), None);
    }

    #[test]
    fn reserve_takes_free_frames() {
        let mut storage = [0u64; 4];
        let mut frames = bitmap(&mut storage, 0, 128);
        frames.add_usable(FrameNumber(0), 128);
        assert_eq!(frames.reserve(FrameNumber(0), 16), 16);
        assert_eq!(frames.reserve(FrameNumber(8), 16), 8);
        assert_eq!(frames.stats().free, 128 - 24);
        assert!(!frames.is_free_frame(FrameNumber(23)));
        assert!(frames.is_free_frame(FrameNumber(24)));
        assert_eq!(frames.allocate(), Some(FrameNumber(24)));
    }

    #[test]
    fn contiguous_respects_alignment_and_holes() {
        let mut storage = [0u64; 8];
        let mut frames = bitmap(&mut storage, 3, 200);
        frames.add_usable(FrameNumber(3), 200);
        frames.reserve(FrameNumber(20), 1);
        let run = frames.allocate_contiguous(16, 16).unwrap().unwrap();
        // 16 is taken by the hole at 20, so the first aligned run is 32..48.
        assert_eq!(run, FrameNumber(32));
        for f in 32..48 {
            assert!(!frames.is_free_frame(FrameNumber(f)));
        }
        assert_eq!(
            frames.allocate_contiguous(0, 1),
            Err(FrameError::BadRequest)
        );
        assert_eq!(
            frames.allocate_contiguous(4, 3),
            Err(FrameError::BadRequest)
        );
        assert_eq!(frames.allocate_contiguous(500, 1), Ok(None));
    }

    #[test]
    fn addresses_round_trip() {
        assert_eq!(
            FrameNumber::containing(0x1234_5678).start_address(),
            0x1234_5000
        );
    }
}
