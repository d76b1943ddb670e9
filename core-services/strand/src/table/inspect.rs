//! Looking at the table: descriptions of strands, and the invariant check
//! the tests run after every step.

use alloc::string::String;
use alloc::vec::Vec;

use dispatcher::PrincipalId;

use super::{Record, StrandTable};
use crate::id::{PolicyId, State, StrandId, StrandInfo};
use crate::queue::RunQueue;

impl<M> StrandTable<M> {
    /// The live strands `principal` spawned.
    pub fn owned_by(&self, principal: PrincipalId) -> Vec<StrandId> {
        self.records
            .values()
            .filter(|r| r.owner.id() == principal && !matches!(r.state, State::Exited(_)))
            .map(|r| r.id)
            .collect()
    }

    /// Every strand, by id.
    pub fn infos(&self) -> Vec<StrandInfo> {
        self.records.values().map(Record::info).collect()
    }

    /// One strand.
    pub fn info(&self, id: StrandId) -> Option<StrandInfo> {
        self.records.get(&id).map(Record::info)
    }

    /// Checks the invariants of the [module docs](super) against `rq` (the
    /// queue of every CPU the table's strands are on; one today).
    pub fn check(&self, rq: &RunQueue) -> Result<(), String> {
        let mut queued = 0;
        for record in self.records.values() {
            let id = record.id;
            if record.policy != PolicyId::ROUND_ROBIN && !self.policies.contains_key(&record.policy)
            {
                return Err(alloc::format!(
                    "strand {id} has unregistered policy {}",
                    record.policy
                ));
            }
            let should_queue = record.state == State::Ready && !record.idle;
            match (should_queue, record.queued) {
                (true, Some(key)) => {
                    if rq.get(key) != Some(id) || key.class != record.policy {
                        return Err(alloc::format!("strand {id}: queue entry {key:?} is wrong"));
                    }
                    queued += 1;
                }
                (false, None) => {}
                (true, None) => return Err(alloc::format!("ready strand {id} is not queued")),
                (false, Some(key)) => {
                    return Err(alloc::format!(
                        "strand {id} in state {} is queued at {key:?}",
                        record.state
                    ));
                }
            }
            let zombie = matches!(record.state, State::Exited(_));
            if zombie != self.zombies.contains(&id) {
                return Err(alloc::format!("strand {id}: zombie list disagrees"));
            }
        }
        if queued != rq.len() {
            return Err(alloc::format!(
                "run queue holds {} entries for {queued} ready strands",
                rq.len()
            ));
        }
        if self.zombies.len() > self.records.len() {
            return Err(String::from("zombies without records"));
        }
        let running = self
            .records
            .values()
            .filter(|r| r.state == State::Running)
            .count();
        if running > 1 {
            return Err(alloc::format!("{running} strands running on one CPU"));
        }
        Ok(())
    }
}
