//! Visible revocation, after the exokernel: ask, wait for a deadline, then
//! take by force and say so.
//!
//! A [`Reclaim`] is one round of the protocol over a [`Ledger`]:
//!
//! 1. **Ask** ([`Reclaim::plan`]): the frames wanted are shared among the
//!    owners in proportion to what each could give up (its unpinned frames
//!    beyond the guarantee); each owner with a non-zero share gets a
//!    [`Demand`]. The service raises `PhysAddr.Reclaim` once per demand,
//!    behind an imposed guard, so an owner hears only its own.
//! 2. **Wait** until the deadline or until every demand is met
//!    ([`Reclaim::observe`]): an owner meets its demand by deallocating
//!    frames — what counts is how many unpinned frames it holds now
//!    compared with when it was asked, not what it answered.
//! 3. **Abort protocol** ([`Reclaim::abort`]): from each owner still short,
//!    the shortfall is repossessed ([`Ledger::repossess`]: never pinned
//!    frames, never below the guarantee), recorded in its repossession
//!    vector, and reported; the service unmaps and frees those frames and
//!    raises `PhysAddr.Repossessed` for that owner.
//!
//! The state machine is pure: the service supplies the clock and the
//! ledger, so the host tests drive every path (cooperative, partial,
//! refusing, late) deterministically.

use alloc::string::String;
use alloc::vec::Vec;

use crate::bitmap::FrameNumber;
use crate::ledger::Ledger;

/// What one owner was asked for and what came of it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Demand<O> {
    /// The owner.
    pub owner: O,
    /// Its name.
    pub name: String,
    /// Frames asked for.
    pub asked: u64,
    /// Its unpinned frames when asked.
    pub held_when_asked: u64,
    /// Frames it gave back before the deadline (as far as seen).
    pub released: u64,
    /// Frames taken by the abort protocol.
    pub repossessed: u64,
}

impl<O> Demand<O> {
    /// Frames still owed.
    pub fn shortfall(&self) -> u64 {
        self.asked.saturating_sub(self.released)
    }
}

/// Where a round is.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Phase {
    /// Owners have been asked; the deadline has not passed.
    Asking,
    /// Every demand was met before the deadline.
    Satisfied,
    /// The deadline passed and the shortfall was repossessed.
    Aborted,
}

/// One round of reclaiming.
#[derive(Clone, Debug)]
pub struct Reclaim<O> {
    wanted: u64,
    deadline_ns: u64,
    demands: Vec<Demand<O>>,
    phase: Phase,
}

/// The frames the abort protocol took from one owner (to unmap and free).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Taken<O> {
    /// The owner.
    pub owner: O,
    /// The frames.
    pub frames: Vec<FrameNumber>,
}

impl<O: Copy + Ord> Reclaim<O> {
    /// Plans a round that wants `wanted` frames back, owners to answer by
    /// `deadline_ns`. Shares are proportional to what each owner could give
    /// up (rounded down, the remainder going to the largest holders first)
    /// and never exceed it; if all of it is less than `wanted`, all of it is
    /// asked for.
    pub fn plan(ledger: &Ledger<O>, wanted: u64, deadline_ns: u64) -> Self {
        let candidates: Vec<(O, String, u64)> = ledger
            .revocable_by_owner()
            .into_iter()
            .filter(|(_, _, revocable)| *revocable > 0)
            .collect();
        let total: u64 = candidates.iter().map(|c| c.2).sum();
        let mut shares: Vec<u64> = candidates
            .iter()
            .map(|c| {
                if total <= wanted {
                    c.2
                } else {
                    ((c.2 as u128 * wanted as u128) / total as u128) as u64
                }
            })
            .collect();
        let mut remainder = wanted.min(total) - shares.iter().sum::<u64>();
        let mut order: Vec<usize> = (0..candidates.len()).collect();
        order.sort_by(|&a, &b| candidates[b].2.cmp(&candidates[a].2));
        while remainder > 0 {
            let before = remainder;
            for &i in &order {
                if remainder > 0 && shares[i] < candidates[i].2 {
                    shares[i] += 1;
                    remainder -= 1;
                }
            }
            if remainder == before {
                break;
            }
        }
        let demands = candidates
            .into_iter()
            .zip(shares)
            .filter(|(_, share)| *share > 0)
            .map(|((owner, name, _), asked)| Demand {
                owner,
                name,
                asked,
                held_when_asked: ledger.unpinned(owner),
                released: 0,
                repossessed: 0,
            })
            .collect();
        Self {
            wanted,
            deadline_ns,
            demands,
            phase: Phase::Asking,
        }
    }

    /// Frames wanted.
    pub fn wanted(&self) -> u64 {
        self.wanted
    }

    /// The deadline.
    pub fn deadline_ns(&self) -> u64 {
        self.deadline_ns
    }

    /// The demands, in owner order.
    pub fn demands(&self) -> &[Demand<O>] {
        &self.demands
    }

    /// The phase.
    pub fn phase(&self) -> Phase {
        self.phase
    }

    /// Updates what each owner has given back (from the ledger) and returns
    /// whether every demand is met; a met round becomes
    /// [`Phase::Satisfied`].
    pub fn observe(&mut self, ledger: &Ledger<O>) -> bool {
        if self.phase != Phase::Asking {
            return self.phase == Phase::Satisfied;
        }
        for demand in &mut self.demands {
            let now = ledger.unpinned(demand.owner);
            demand.released = demand.held_when_asked.saturating_sub(now);
        }
        if self.demands.iter().all(|d| d.shortfall() == 0) {
            self.phase = Phase::Satisfied;
        }
        self.phase == Phase::Satisfied
    }

    /// Whether the owners' time is up at `now_ns`.
    pub fn expired(&self, now_ns: u64) -> bool {
        now_ns >= self.deadline_ns
    }

    /// The abort protocol: repossesses each owner's shortfall (after a last
    /// [`observe`](Self::observe)) and returns the frames taken, by owner.
    /// Refused (nothing taken) before the deadline unless `now_ns` is past
    /// it, and a no-op for a satisfied round.
    pub fn abort(&mut self, ledger: &mut Ledger<O>, now_ns: u64) -> Vec<Taken<O>> {
        if self.observe(ledger) || !self.expired(now_ns) {
            return Vec::new();
        }
        let mut taken = Vec::new();
        for demand in &mut self.demands {
            let shortfall = demand.shortfall();
            if shortfall == 0 {
                continue;
            }
            let frames = ledger.repossess(demand.owner, shortfall, now_ns);
            demand.repossessed = frames.len() as u64;
            if !frames.is_empty() {
                taken.push(Taken {
                    owner: demand.owner,
                    frames,
                });
            }
        }
        self.phase = Phase::Aborted;
        taken
    }

    /// Frames got back in all (given and taken).
    pub fn recovered(&self) -> u64 {
        self.demands
            .iter()
            .map(|d| d.released.min(d.asked) + d.repossessed)
            .sum()
    }
}
