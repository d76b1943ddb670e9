//! A CPU's run queue: its ready strands, grouped by the policy (the *class*)
//! that schedules them, each class in FIFO order.
//!
//! Choosing what runs next is two decisions:
//!
//! 1. **Which class.** Classes with ready strands take turns
//!    ([`RunQueue::next_class`]): after a strand of class `c` was picked,
//!    the next decision goes to the next class after `c` that has a ready
//!    strand, wrapping around. So a policy loaded by an extension shares
//!    the CPU with the kernel's round-robin strands (the shell among them)
//!    and can never starve them, however it picks.
//! 2. **Which strand of the class.** Asked of the class's policy through
//!    `Sched.PickNext`; round-robin's answer is the front of the class's
//!    FIFO ([`RunQueue::front`]).
//!
//! Entries are keyed by (class, sequence number), so a class's members are
//! one ordered range of a `BTreeMap`: push, remove and front are
//! O(log n). The map keeps its root node when it drains, so a queue that
//! holds up to a leaf's worth of strands (11) allocates nothing in steady
//! state: the heap figure the kernel's exact memory accounting compares
//! does not depend on whether a background strand happens to be queued.

use alloc::collections::BTreeMap;

use crate::id::{CpuId, PolicyId, StrandId};

/// Where a strand sits in a run queue (kept in its record, to remove it).
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct QueueKey {
    /// The class (policy) it is queued under.
    pub class: PolicyId,
    /// Its place in the class's FIFO.
    pub seq: u64,
}

/// One CPU's ready strands.
#[derive(Debug)]
pub struct RunQueue {
    cpu: CpuId,
    entries: BTreeMap<QueueKey, StrandId>,
    next_seq: u64,
    last_class: Option<PolicyId>,
}

impl RunQueue {
    /// An empty run queue for `cpu`.
    pub const fn new(cpu: CpuId) -> Self {
        Self {
            cpu,
            entries: BTreeMap::new(),
            next_seq: 0,
            last_class: None,
        }
    }

    /// The CPU it belongs to.
    pub fn cpu(&self) -> CpuId {
        self.cpu
    }

    /// Ready strands queued.
    pub fn len(&self) -> usize {
        self.entries.len()
    }

    /// Whether no strand is queued.
    pub fn is_empty(&self) -> bool {
        self.entries.is_empty()
    }

    /// Queues `strand` at the back of `class`.
    pub fn push_back(&mut self, class: PolicyId, strand: StrandId) -> QueueKey {
        let key = QueueKey {
            class,
            seq: self.next_seq,
        };
        self.next_seq += 1;
        self.entries.insert(key, strand);
        key
    }

    /// Takes the entry at `key` out; returns the strand that was there.
    pub fn remove(&mut self, key: QueueKey) -> Option<StrandId> {
        self.entries.remove(&key)
    }

    /// The strand queued at `key`, if any.
    pub fn get(&self, key: QueueKey) -> Option<StrandId> {
        self.entries.get(&key).copied()
    }

    /// The class whose turn it is: the first class after the one last
    /// served that has a ready strand, wrapping around; `None` if the
    /// queue is empty.
    pub fn next_class(&self) -> Option<PolicyId> {
        let after = self.last_class.and_then(|last| {
            let start = QueueKey {
                class: PolicyId::from_u32(last.as_u32().checked_add(1)?),
                seq: 0,
            };
            self.entries.range(start..).next().map(|(key, _)| key.class)
        });
        after.or_else(|| self.entries.keys().next().map(|key| key.class))
    }

    /// The first strand of `class` (round-robin's choice).
    pub fn front(&self, class: PolicyId) -> Option<(QueueKey, StrandId)> {
        self.members(class).next()
    }

    /// The strands of `class`, in FIFO order.
    pub fn members(&self, class: PolicyId) -> impl Iterator<Item = (QueueKey, StrandId)> + '_ {
        let start = QueueKey { class, seq: 0 };
        self.entries
            .range(start..)
            .take_while(move |(key, _)| key.class == class)
            .map(|(key, strand)| (*key, *strand))
    }

    /// Records that `class` was just served, for [`next_class`](Self::next_class).
    pub fn served(&mut self, class: PolicyId) {
        self.last_class = Some(class);
    }

    /// Every entry, by class then FIFO order.
    pub fn iter(&self) -> impl Iterator<Item = (QueueKey, StrandId)> + '_ {
        self.entries.iter().map(|(key, strand)| (*key, *strand))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn id(n: u64) -> StrandId {
        StrandId::from_u64(n)
    }

    const RR: PolicyId = PolicyId::ROUND_ROBIN;
    const P1: PolicyId = PolicyId::from_u32(1);
    const P2: PolicyId = PolicyId::from_u32(2);

    #[test]
    fn each_class_is_fifo() {
        let mut q = RunQueue::new(CpuId(0));
        let a = q.push_back(RR, id(1));
        q.push_back(P1, id(2));
        q.push_back(RR, id(3));
        assert_eq!(q.front(RR), Some((a, id(1))));
        assert_eq!(
            q.members(RR)
                .map(|(_, s)| s)
                .collect::<alloc::vec::Vec<_>>(),
            [id(1), id(3)]
        );
        assert_eq!(q.remove(a), Some(id(1)));
        assert_eq!(q.front(RR).map(|(_, s)| s), Some(id(3)));
        assert_eq!(q.remove(a), None, "removed twice");
        assert_eq!(q.len(), 2);
    }

    #[test]
    fn classes_take_turns_and_empty_classes_are_skipped() {
        let mut q = RunQueue::new(CpuId(0));
        assert_eq!(q.next_class(), None);
        q.push_back(RR, id(1));
        q.push_back(P2, id(2));
        assert_eq!(q.next_class(), Some(RR));
        q.served(RR);
        assert_eq!(q.next_class(), Some(P2), "P1 is empty: skipped");
        q.served(P2);
        assert_eq!(q.next_class(), Some(RR), "wraps around");
        q.push_back(P1, id(3));
        q.served(RR);
        assert_eq!(q.next_class(), Some(P1));
    }

    #[test]
    fn a_drained_queue_holds_no_allocation_and_keys_stay_unique() {
        let mut q = RunQueue::new(CpuId(0));
        let keys: alloc::vec::Vec<_> = (0..100).map(|n| q.push_back(P1, id(n))).collect();
        for key in &keys {
            assert!(q.remove(*key).is_some());
        }
        assert!(q.is_empty());
        let again = q.push_back(P1, id(7));
        assert!(!keys.contains(&again));
    }
}
