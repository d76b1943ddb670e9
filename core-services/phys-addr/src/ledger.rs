//! Who holds which frames: the service's book of allocations, owners,
//! guaranteed frames and repossession vectors.
//!
//! The ledger is pure bookkeeping (no locks, no events, no hardware), so the
//! whole ownership model is tested on the host against a model
//! (`tests/model.rs`). Frames themselves come from, and go back to, the
//! kernel's [`FrameBitmap`](crate::FrameBitmap); the ledger only says who
//! holds them.
//!
//! Rules it keeps:
//!
//! * every allocation has exactly one owner (a principal: the kernel or an
//!   extension), and a frame is in at most one allocation;
//! * an allocation is *pinned* when the frames are mapped for the kernel's
//!   own use (an extension's code and data, say): pinned frames are never
//!   repossessed;
//! * each owner keeps [`Ledger::guaranteed`] of its unpinned frames that are
//!   never repossessed either;
//! * every frame repossessed from an owner is recorded, in order, in that
//!   owner's repossession vector, which it can read until it goes away.

use alloc::collections::BTreeMap;
use alloc::string::String;
use alloc::vec::Vec;

use crate::bitmap::FrameNumber;
use crate::error::PhysError;

/// Names one allocation. Never reused, so a stale handle (a capability
/// whose frames the kernel already took back at unload) names nothing.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct AllocationId(u64);

impl AllocationId {
    /// The number, for display.
    pub fn as_u64(self) -> u64 {
        self.0
    }
}

/// One frame taken by force.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Repossession {
    /// The frame.
    pub frame: FrameNumber,
    /// The allocation it was taken from.
    pub allocation: AllocationId,
    /// Its index in that allocation.
    pub index: usize,
    /// When (the platform's clock, nanoseconds since boot).
    pub at_ns: u64,
}

/// One owner's holdings, for `phys`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct OwnerUsage<O> {
    /// The owner.
    pub owner: O,
    /// Its name.
    pub name: String,
    /// Frames it holds (pinned included).
    pub frames: u64,
    /// Of those, frames mapped for the kernel's use (never repossessed).
    pub pinned: u64,
    /// Allocations it holds.
    pub allocations: usize,
    /// Length of its repossession vector.
    pub repossessed: usize,
}

struct Allocation<O> {
    owner: O,
    /// `None` where a frame was repossessed.
    frames: Vec<Option<FrameNumber>>,
    pinned: bool,
}

impl<O> Allocation<O> {
    fn present(&self) -> impl Iterator<Item = FrameNumber> + '_ {
        self.frames.iter().flatten().copied()
    }
}

struct OwnerRecord {
    name: String,
    frames: u64,
    pinned: u64,
    allocations: usize,
    vector: Vec<Repossession>,
}

/// The book of allocations, by owner `O` (the kernel uses
/// `dispatcher::PrincipalId`; the host tests small numbers).
pub struct Ledger<O> {
    allocations: BTreeMap<AllocationId, Allocation<O>>,
    owners: BTreeMap<O, OwnerRecord>,
    next_id: u64,
    guaranteed: u64,
}

impl<O: Copy + Ord> Ledger<O> {
    /// An empty ledger in which each owner keeps `guaranteed` unpinned
    /// frames safe from repossession.
    pub const fn new(guaranteed: u64) -> Self {
        Self {
            allocations: BTreeMap::new(),
            owners: BTreeMap::new(),
            next_id: 1,
            guaranteed,
        }
    }

    /// Frames per owner that are never repossessed.
    pub fn guaranteed(&self) -> u64 {
        self.guaranteed
    }

    /// Records `frames` as one allocation of `owner` (called `name`).
    pub fn record(
        &mut self,
        owner: O,
        name: &str,
        frames: Vec<FrameNumber>,
        pinned: bool,
    ) -> AllocationId {
        let id = AllocationId(self.next_id);
        self.next_id += 1;
        let count = frames.len() as u64;
        let record = self.owners.entry(owner).or_insert_with(|| OwnerRecord {
            name: String::from(name),
            frames: 0,
            pinned: 0,
            allocations: 0,
            vector: Vec::new(),
        });
        record.frames += count;
        record.allocations += 1;
        if pinned {
            record.pinned += count;
        }
        self.allocations.insert(
            id,
            Allocation {
                owner,
                frames: frames.into_iter().map(Some).collect(),
                pinned,
            },
        );
        id
    }

    /// The owner of an allocation.
    pub fn owner_of(&self, id: AllocationId) -> Option<O> {
        self.allocations.get(&id).map(|a| a.owner)
    }

    /// Frame `index` of allocation `id`.
    pub fn frame(&self, id: AllocationId, index: usize) -> Result<FrameNumber, PhysError> {
        let allocation = self.allocations.get(&id).ok_or(PhysError::Released(id))?;
        match allocation.frames.get(index) {
            None => Err(PhysError::BadIndex {
                allocation: id,
                index,
                len: allocation.frames.len(),
            }),
            Some(None) => Err(PhysError::Repossessed {
                allocation: id,
                index,
            }),
            Some(Some(frame)) => Ok(*frame),
        }
    }

    /// The frames still present in allocation `id`.
    pub fn frames_of(&self, id: AllocationId) -> Result<Vec<FrameNumber>, PhysError> {
        let allocation = self.allocations.get(&id).ok_or(PhysError::Released(id))?;
        Ok(allocation.present().collect())
    }

    /// Removes allocation `id` and returns the frames it still held (to be
    /// freed by the caller).
    pub fn remove(&mut self, id: AllocationId) -> Result<Vec<FrameNumber>, PhysError> {
        let allocation = self
            .allocations
            .remove(&id)
            .ok_or(PhysError::Released(id))?;
        let frames: Vec<FrameNumber> = allocation.present().collect();
        if let Some(record) = self.owners.get_mut(&allocation.owner) {
            record.frames -= frames.len() as u64;
            record.allocations -= 1;
            if allocation.pinned {
                record.pinned -= frames.len() as u64;
            }
        }
        self.forget_if_empty(allocation.owner);
        Ok(frames)
    }

    /// Frames `owner` holds that are not pinned.
    pub fn unpinned(&self, owner: O) -> u64 {
        self.owners.get(&owner).map_or(0, |r| r.frames - r.pinned)
    }

    /// Frames that may be repossessed from `owner`: its unpinned frames
    /// beyond the guarantee.
    pub fn revocable(&self, owner: O) -> u64 {
        self.unpinned(owner).saturating_sub(self.guaranteed)
    }

    /// Every owner with frames (or a non-empty vector) and what it could
    /// give up, in owner order.
    pub fn revocable_by_owner(&self) -> Vec<(O, String, u64)> {
        self.owners
            .iter()
            .map(|(&owner, r)| (owner, r.name.clone(), self.revocable(owner)))
            .collect()
    }

    /// Takes up to `count` frames from `owner` by force, never below its
    /// guarantee and never from a pinned allocation; newest allocations
    /// first, last frames first. Each frame taken is recorded in the
    /// owner's repossession vector and returned (to be unmapped and freed
    /// by the caller).
    pub fn repossess(&mut self, owner: O, count: u64, now_ns: u64) -> Vec<FrameNumber> {
        let take = count.min(self.revocable(owner));
        let mut taken = Vec::new();
        if take == 0 {
            return taken;
        }
        let mut records = Vec::new();
        for (&id, allocation) in self.allocations.iter_mut().rev() {
            if allocation.owner != owner || allocation.pinned {
                continue;
            }
            for index in (0..allocation.frames.len()).rev() {
                if taken.len() as u64 == take {
                    break;
                }
                if let Some(frame) = allocation.frames[index].take() {
                    taken.push(frame);
                    records.push(Repossession {
                        frame,
                        allocation: id,
                        index,
                        at_ns: now_ns,
                    });
                }
            }
        }
        if let Some(record) = self.owners.get_mut(&owner) {
            record.frames -= taken.len() as u64;
            record.vector.extend(records);
        }
        taken
    }

    /// `owner`'s repossession vector, oldest first.
    pub fn vector(&self, owner: O) -> Vec<Repossession> {
        self.owners
            .get(&owner)
            .map(|r| r.vector.clone())
            .unwrap_or_default()
    }

    /// Removes everything `owner` holds (its extension was unloaded):
    /// returns the frames to free, and forgets its vector.
    pub fn release_owner(&mut self, owner: O) -> Vec<FrameNumber> {
        let ids: Vec<AllocationId> = self
            .allocations
            .iter()
            .filter(|(_, a)| a.owner == owner)
            .map(|(&id, _)| id)
            .collect();
        let mut frames = Vec::new();
        for id in ids {
            if let Some(allocation) = self.allocations.remove(&id) {
                frames.extend(allocation.present());
            }
        }
        self.owners.remove(&owner);
        frames
    }

    /// Every owner's holdings, in owner order.
    pub fn owners(&self) -> Vec<OwnerUsage<O>> {
        self.owners
            .iter()
            .map(|(&owner, r)| OwnerUsage {
                owner,
                name: r.name.clone(),
                frames: r.frames,
                pinned: r.pinned,
                allocations: r.allocations,
                repossessed: r.vector.len(),
            })
            .collect()
    }

    /// Total frames recorded.
    pub fn total_frames(&self) -> u64 {
        self.owners.values().map(|r| r.frames).sum()
    }

    fn forget_if_empty(&mut self, owner: O) {
        if self
            .owners
            .get(&owner)
            .is_some_and(|r| r.allocations == 0 && r.vector.is_empty())
        {
            self.owners.remove(&owner);
        }
    }
}
