//! The life of one heap slot: free, live (its extension is loaded), kept
//! (its extension is gone but blocks allocated from it are not).

use core::fmt;

use crate::account::Account;

/// Where a slot is in its life.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum SlotState {
    /// Nobody's: its window is unmapped.
    #[default]
    Free,
    /// The heap of a loaded extension.
    Live,
    /// Its extension was unloaded with blocks still allocated: the pages
    /// stay mapped and the window unused until the last block is freed.
    Kept,
}

/// What [`SlotState::release`] did with a heap.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Released {
    /// It was empty: free again (the caller unmaps its pages).
    Freed,
    /// Blocks were live: kept until they are freed.
    Kept {
        /// Bytes still allocated.
        bytes: u64,
        /// Blocks still allocated.
        blocks: u64,
    },
}

/// Every slot is live or kept.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct SlotsFull {
    /// How many slots there are.
    pub slots: usize,
    /// How many of them are kept for unloaded extensions.
    pub kept: usize,
}

impl fmt::Display for SlotsFull {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "all {} extension heaps are in use ({} kept for unloaded extensions)",
            self.slots, self.kept
        )
    }
}

impl SlotState {
    /// Takes a free slot for a loading extension; `false` if not free.
    pub fn take(&mut self) -> bool {
        let free = *self == Self::Free;
        if free {
            *self = Self::Live;
        }
        free
    }

    /// The slot's extension was unloaded (after its bindings were revoked
    /// and raises in progress finished). An empty heap is freed; one with
    /// live blocks is **kept**: code the kernel runs on its own behalf may
    /// hold them (a generic kernel function instantiated in the extension's
    /// object allocates from the extension's heap), so freeing them would
    /// leave the kernel with dangling pointers. A slot that is not live is
    /// left as it is (reported as freed: nothing is the caller's to do).
    pub fn release(&mut self, account: &Account) -> Released {
        if *self != Self::Live {
            return Released::Freed;
        }
        if account.is_empty() {
            *self = Self::Free;
            Released::Freed
        } else {
            *self = Self::Kept;
            Released::Kept {
                bytes: account.used,
                blocks: account.blocks,
            }
        }
    }

    /// A block was freed: a kept heap that became empty is free again, and
    /// `true` tells the caller to unmap its pages.
    pub fn freed(&mut self, account: &Account) -> bool {
        let reclaim = *self == Self::Kept && account.is_empty();
        if reclaim {
            *self = Self::Free;
        }
        reclaim
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_empty_heap_is_freed_at_release() {
        let mut s = SlotState::default();
        assert!(s.take());
        assert!(!s.take(), "a live slot is not taken twice");
        assert_eq!(s.release(&Account::new(4096)), Released::Freed);
        assert_eq!(s, SlotState::Free);
    }

    #[test]
    fn a_heap_with_live_blocks_is_kept_until_the_last_is_freed() {
        let mut s = SlotState::default();
        assert!(s.take());
        let mut a = Account::new(4096);
        a.allocated(100);
        a.allocated(24);
        assert_eq!(
            s.release(&a),
            Released::Kept {
                bytes: 124,
                blocks: 2
            }
        );
        assert!(!s.take(), "a kept slot is not reused");
        a.freed(100);
        assert!(!s.freed(&a));
        assert_eq!(s, SlotState::Kept);
        a.freed(24);
        assert!(s.freed(&a));
        assert_eq!(s, SlotState::Free);
        assert!(s.take());
    }

    #[test]
    fn frees_in_a_live_heap_never_reclaim_it() {
        let mut s = SlotState::default();
        assert!(s.take());
        assert!(!s.freed(&Account::new(4096)));
        assert_eq!(s, SlotState::Live);
    }

    #[test]
    fn running_out_of_slots_reads_as_a_sentence() {
        assert_eq!(
            SlotsFull { slots: 32, kept: 3 }.to_string(),
            "all 32 extension heaps are in use (3 kept for unloaded extensions)"
        );
    }
}
