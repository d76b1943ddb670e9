//! The table's scheduling policies: registering one, retiring one (its
//! strands back to round-robin), finding them, describing them.

use alloc::collections::BTreeMap;
use alloc::string::String;
use alloc::vec::Vec;

use dispatcher::{Principal, PrincipalId};

use super::{MAX_POLICY_NAME, ROUND_ROBIN_NAME, StrandTable};
use crate::error::PolicyError;
use crate::id::{PolicyId, PolicyInfo, State, StrandId};
use crate::queue::{QueueKey, RunQueue};

/// A registered policy.
pub(super) struct PolicyEntry {
    pub(super) name: String,
    pub(super) owner: PrincipalId,
    pub(super) owner_name: String,
    pub(super) picks: u64,
    pub(super) rejected: u64,
}

impl<M> StrandTable<M> {
    /// Registers a policy named `name` for `owner` (one per principal).
    pub fn register_policy(
        &mut self,
        owner: &Principal,
        name: &str,
    ) -> Result<PolicyId, PolicyError> {
        if name.is_empty()
            || name.len() > MAX_POLICY_NAME
            || !name.bytes().all(|b| b.is_ascii_graphic())
            || name == ROUND_ROBIN_NAME
        {
            return Err(PolicyError::BadName);
        }
        if let Some(id) = self.policy_of(owner.id()) {
            return Err(PolicyError::AlreadyRegistered(id));
        }
        if self.policies.values().any(|p| p.name == name) {
            return Err(PolicyError::NameTaken(String::from(name)));
        }
        let id = PolicyId::from_u32(self.next_policy);
        self.next_policy += 1;
        self.policies.insert(
            id,
            PolicyEntry {
                name: String::from(name),
                owner: owner.id(),
                owner_name: String::from(owner.name()),
                picks: 0,
                rejected: 0,
            },
        );
        Ok(id)
    }

    /// Retires a policy: every strand that opted into it goes back to
    /// round-robin (ready ones keep their relative order, at the back of
    /// the round-robin class). Returns how many strands moved.
    pub fn retire_policy(&mut self, id: PolicyId, rq: &mut RunQueue) -> Result<usize, PolicyError> {
        if self.policies.remove(&id).is_none() {
            return Err(PolicyError::NotFound(id));
        }
        if self.policies.is_empty() {
            self.policies = BTreeMap::new();
        }
        let queued: Vec<(QueueKey, StrandId)> = rq.members(id).collect();
        for (key, strand) in queued {
            rq.remove(key);
            let new_key = rq.push_back(PolicyId::ROUND_ROBIN, strand);
            if let Some(record) = self.records.get_mut(&strand) {
                record.queued = Some(new_key);
            }
        }
        let mut moved = 0;
        for record in self.records.values_mut().filter(|r| r.policy == id) {
            record.policy = PolicyId::ROUND_ROBIN;
            moved += 1;
        }
        Ok(moved)
    }

    /// The policy `principal` registered, if any.
    pub fn policy_of(&self, principal: PrincipalId) -> Option<PolicyId> {
        self.policies
            .iter()
            .find(|(_, entry)| entry.owner == principal)
            .map(|(id, _)| *id)
    }

    /// The policy registered under `name` (`round-robin` is the built-in).
    pub fn policy_named(&self, name: &str) -> Option<PolicyId> {
        if name == ROUND_ROBIN_NAME {
            return Some(PolicyId::ROUND_ROBIN);
        }
        self.policies
            .iter()
            .find(|(_, entry)| entry.name == name)
            .map(|(id, _)| *id)
    }

    /// The most recently registered policy, if any.
    pub fn newest_policy(&self) -> Option<PolicyId> {
        self.policies.keys().next_back().copied()
    }

    /// Round-robin and every registered policy.
    pub fn policy_infos(&self) -> Vec<PolicyInfo> {
        let members = |policy: PolicyId| {
            self.records
                .values()
                .filter(|r| r.policy == policy && !matches!(r.state, State::Exited(_)))
                .count()
        };
        let mut infos = Vec::with_capacity(self.policies.len() + 1);
        infos.push(PolicyInfo {
            id: PolicyId::ROUND_ROBIN,
            name: String::from(ROUND_ROBIN_NAME),
            owner: None,
            owner_name: String::from("kernel"),
            strands: members(PolicyId::ROUND_ROBIN),
            picks: 0,
            rejected: 0,
        });
        infos.extend(self.policies.iter().map(|(id, entry)| PolicyInfo {
            id: *id,
            name: entry.name.clone(),
            owner: Some(entry.owner),
            owner_name: entry.owner_name.clone(),
            strands: members(*id),
            picks: entry.picks,
            rejected: entry.rejected,
        }));
        infos
    }
}
