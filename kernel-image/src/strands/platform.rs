//! The kernel's half of the strand service, as the `strand` crate sees it:
//! every method forwards to this module's parent.

use alloc::vec::Vec;

use dispatcher::{Principal, PrincipalId};
use strand::service::SpawnRequest;
use strand::{
    BlockReason, Platform, PolicyError, PolicyId, PolicyInfo, StrandError, StrandId, StrandInfo,
};
use x86_64::instructions::interrupts;

use super::{join, kill, locked, park, spawn_strand, started, suspend, wake, yield_now};
use crate::cpu;

/// The kernel's half of the strand service.
pub(super) struct KernelPlatform;

/// The one instance, installed at boot.
pub(super) static PLATFORM: KernelPlatform = KernelPlatform;

impl Platform for KernelPlatform {
    fn current(&self) -> Option<StrandId> {
        started().then(|| cpu::current().current_strand())
    }

    fn can_block(&self) -> bool {
        started() && interrupts::are_enabled()
    }

    fn park(&self, reason: BlockReason) -> Result<(), StrandError> {
        park(reason)
    }

    fn wake(&self, id: StrandId) -> Result<(), StrandError> {
        wake(id)
    }

    fn yield_now(&self) {
        yield_now();
    }

    fn sleep_until(&self, deadline_ns: u64) -> Result<(), StrandError> {
        super::sleep_until(deadline_ns)
    }

    fn now_ns(&self) -> u64 {
        crate::time::uptime_ns()
    }

    fn spawn(&self, request: SpawnRequest) -> Result<StrandId, StrandError> {
        spawn_strand(request, false).map_err(|(e, _)| e)
    }

    fn kill(&self, id: StrandId) -> Result<(), StrandError> {
        kill(id)
    }

    fn suspend(&self, id: StrandId) -> Result<(), StrandError> {
        suspend(id)
    }

    fn join(&self, id: StrandId) -> Result<(), StrandError> {
        join(id)
    }

    fn set_policy(&self, id: StrandId, policy: PolicyId, tickets: u32) -> Result<(), StrandError> {
        locked(|t, rq| t.set_policy(id, policy, tickets, rq))
    }

    fn register_policy(&self, owner: &Principal, name: &str) -> Result<PolicyId, PolicyError> {
        let id = locked(|t, _| t.register_policy(owner, name))?;
        log::info!(
            "scheduling policy {id} '{name}' registered by {}",
            owner.name()
        );
        Ok(id)
    }

    fn retire_policy(&self, id: PolicyId) -> Result<usize, PolicyError> {
        let moved = locked(|t, rq| t.retire_policy(id, rq))?;
        log::info!("scheduling policy {id} retired; {moved} strand(s) back to round-robin");
        Ok(moved)
    }

    fn policy_of(&self, principal: PrincipalId) -> Option<PolicyId> {
        locked(|t, _| t.policy_of(principal))
    }

    fn strands(&self) -> Vec<StrandInfo> {
        locked(|t, _| t.infos())
    }

    fn policies(&self) -> Vec<PolicyInfo> {
        locked(|t, _| t.policy_infos())
    }

    fn interrupts_disable(&self) -> bool {
        let were_enabled = interrupts::are_enabled();
        interrupts::disable();
        were_enabled
    }

    fn interrupts_restore(&self, were_enabled: bool) {
        if were_enabled {
            interrupts::enable();
        }
    }
}
