//! The published dispatch plan: a copy-on-write snapshot readable from
//! interrupt handlers without ever waiting on a writer.
//!
//! [`SnapshotCell`] keeps the current `Arc<T>` in **two** slots, each a
//! `spin::RwLock<Arc<T>>`. Writers are serialized by the caller (the event's
//! writer mutex) and call [`SnapshotCell::publish`], which replaces slot 0
//! and then slot 1, each under its write lock for exactly one pointer swap.
//! A writer first *claims* a slot (the lock's upgradeable bit), which turns
//! new readers away to the other slot at once, so a stream of raises cannot
//! starve a writer. A reader ([`SnapshotCell::load`]) does `try_read` on
//! slot 0, then on slot 1, clones the `Arc`, and drops the read guard before
//! the caller runs anything.
//!
//! # Why a reader never deadlocks
//!
//! A writer claims or holds at most one slot at any instant, and never runs
//! foreign code while doing so. A reader never blocks: `try_read` fails
//! immediately when a slot is claimed or write-locked. If an interrupt
//! arrives on the CPU of a writer that holds slot `i`, the raise in the
//! interrupt handler finds slot `1 - i` free and proceeds. (Conversely a
//! writer never waits for a reader on its own CPU: a raise holds a read
//! guard only across one `Arc` clone and never publishes meanwhile.) A
//! reader on another CPU may find slot 0 taken, then slot 1 taken (the
//! writer moved on between the two tries) and try again: it retries only
//! while a writer on another CPU is making progress, so the read is
//! lock-free (though not wait-free under an unbounded stream of writers).
//!
//! # Why it is linearizable
//!
//! Number the published values `P0, P1, ...`. Write `k` *linearizes* when it
//! releases slot 0's write lock (slot 0 then holds `Pk`; it completes slot 1
//! before the next write may start). A reader that obtains slot 0 reads the
//! latest linearized value at that instant. A reader that obtains slot 1 at
//! time `t1` found slot 0 taken (claimed or write-locked) by some write `k`
//! at an earlier time `t0` of the same `load`. If slot 1 was not written in
//! `(t0, t1)` it held `P(k-1)`, the latest value at `t0`; if it was, it
//! holds some `Pj` (`j >= k`) stored in `(t0, t1)`, which was the latest
//! value right after write `j` stored it (write `j + 1` cannot linearize
//! before write `j` finished slot 1). Either way the value read was the
//! latest at some instant inside the `load` call. The argument uses the
//! real-time order of the lock-word read-modify-writes, which x86's locked
//! instructions provide (they are totally ordered); the memory ordering is
//! the lock's `Acquire`/`Release`.
//!
//! # Memory
//!
//! The old value is dropped when its last holder drops its `Arc`: that may be
//! a raise running in an interrupt handler, so freeing memory (and dropping
//! binding closures) can happen in interrupt context. The kernel's allocator
//! disables interrupts around its own lock, which makes this safe.

use alloc::sync::Arc;
use core::mem;

use spin::RwLock;

/// A two-slot copy-on-write cell; see the [module docs](self).
pub(crate) struct SnapshotCell<T> {
    slots: [RwLock<Arc<T>>; 2],
}

impl<T> SnapshotCell<T> {
    /// A cell publishing `initial`.
    pub(crate) fn new(initial: Arc<T>) -> Self {
        SnapshotCell {
            slots: [RwLock::new(Arc::clone(&initial)), RwLock::new(initial)],
        }
    }

    /// The current value. Never waits for a writer (see the module docs).
    #[inline]
    pub(crate) fn load(&self) -> Arc<T> {
        loop {
            for slot in &self.slots {
                if let Some(guard) = slot.try_read() {
                    return Arc::clone(&guard);
                }
            }
            core::hint::spin_loop();
        }
    }

    /// Publishes `next`. The caller must serialize calls to `publish` (the
    /// event's writer mutex does) and must not call it from a context that
    /// interrupted a `load` of this cell on the same CPU while it held a
    /// read guard (raises never call `publish` while holding one).
    ///
    /// Returns the two replaced values so that the caller decides where they
    /// are dropped (outside any lock).
    pub(crate) fn publish(&self, next: Arc<T>) -> [Arc<T>; 2] {
        let old0 = Self::replace(&self.slots[0], Arc::clone(&next));
        let old1 = Self::replace(&self.slots[1], next);
        [old0, old1]
    }

    /// Replaces one slot's value. The writer first claims the slot with the
    /// lock's *upgradeable* bit, which makes new `try_read`s fail at once
    /// (so readers move to the other slot instead of starving the writer),
    /// then waits for the readers already inside (each holds the lock for
    /// one `Arc` clone) and swaps the pointer.
    fn replace(slot: &RwLock<Arc<T>>, next: Arc<T>) -> Arc<T> {
        let mut guard = slot.upgradeable_read().upgrade();
        mem::replace(&mut *guard, next)
    }
}

#[cfg(test)]
impl<T> SnapshotCell<T> {
    /// Write-locks one slot, as a writer in the middle of `publish` would.
    pub(crate) fn hold_slot_for_test(&self, slot: usize) -> spin::RwLockWriteGuard<'_, Arc<T>> {
        self.slots[slot].write()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
    use std::thread;

    #[test]
    fn load_sees_published_value() {
        let cell = SnapshotCell::new(Arc::new(1u32));
        assert_eq!(*cell.load(), 1);
        let old = cell.publish(Arc::new(2));
        assert_eq!(*old[0], 1);
        assert_eq!(*cell.load(), 2);
    }

    #[test]
    fn reader_uses_other_slot_while_one_is_claimed_or_write_locked() {
        // Simulates an interrupt arriving on a writer's CPU: the writer holds
        // a slot, the "interrupt" must still read without waiting.
        let cell = SnapshotCell::new(Arc::new(7u32));
        for slot in 0..2 {
            let claim = cell.slots[slot].upgradeable_read();
            assert_eq!(*cell.load(), 7);
            drop(claim);
        }
        let guard = cell.slots[0].write();
        assert_eq!(*cell.load(), 7);
        drop(guard);
        let guard = cell.slots[1].write();
        assert_eq!(*cell.load(), 7);
        drop(guard);
    }

    #[test]
    fn values_never_go_backwards_for_one_reader() {
        let cell = Arc::new(SnapshotCell::new(Arc::new(0u64)));
        let reads = Arc::new(AtomicU64::new(0));
        let stop = Arc::new(AtomicBool::new(false));
        let reader = {
            let (cell, reads, stop) = (Arc::clone(&cell), Arc::clone(&reads), Arc::clone(&stop));
            thread::spawn(move || {
                let mut last = 0;
                while !stop.load(Ordering::Relaxed) {
                    let v = *cell.load();
                    assert!(v >= last, "read {v} after {last}");
                    last = v;
                    reads.fetch_add(1, Ordering::Relaxed);
                }
            })
        };
        // Keep publishing until the reader has overlapped with many updates.
        let mut published = 0u64;
        while published < 20_000 || reads.load(Ordering::Relaxed) < 1_000 {
            published += 1;
            drop(cell.publish(Arc::new(published)));
            if published % 1024 == 0 {
                thread::yield_now();
            }
        }
        stop.store(true, Ordering::Relaxed);
        reader.join().unwrap();
        assert_eq!(*cell.load(), published);
    }
}
