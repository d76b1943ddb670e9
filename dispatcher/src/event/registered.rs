//! The event as the registry sees it: listing and revocation.

use alloc::string::String;
use alloc::vec::Vec;
use core::sync::atomic::Ordering;

use super::EventInner;
use crate::principal::PrincipalId;
use crate::registry::{BindingInfo, EventInfo, RegisteredEvent};

impl<A: 'static, R: 'static> RegisteredEvent for EventInner<A, R> {
    fn name(&self) -> &str {
        &self.name
    }

    fn info(&self) -> EventInfo {
        let (original_enabled, retired) = {
            let writer = self.table.lock();
            (
                writer.original.is_some() && writer.original_enabled && !writer.retired,
                writer.retired,
            )
        };
        EventInfo {
            name: String::from(&*self.name),
            owner: self.owner.id(),
            owner_name: String::from(self.owner.name()),
            bindings: self.binding_count.load(Ordering::Relaxed),
            raises: self.raises(),
            original_enabled,
            asynchronous: self.defer.is_some(),
            retired,
        }
    }

    fn binding_infos(&self) -> Vec<BindingInfo> {
        EventInner::binding_infos(self)
    }

    fn republish(&self) {
        let _ = self.update(|writer| {
            writer.rebuild_map();
            Ok::<(), ()>(())
        });
    }

    fn revoke_principal(&self, principal: PrincipalId) -> usize {
        let retire = principal == self.owner.id();
        let mut removed = 0;
        let _ = self.update(|writer| {
            let before = writer.bindings.len();
            if retire {
                removed = writer
                    .bindings
                    .values()
                    .filter(|installed| installed.installer.id == principal)
                    .count();
                writer.bindings.clear();
                writer.original = None;
                writer.authorizer = None;
                writer.result = None;
                writer.default = None;
                writer.executor = None;
                writer.on_overrun = None;
                writer.retired = true;
            } else {
                writer
                    .bindings
                    .retain(|_, installed| installed.installer.id != principal);
                // Nodes the revoked principal's code allocated may hold
                // other principals' bindings: out of its heap, even when
                // none of its own were left to remove.
                writer.rebuild_map();
                removed = before - writer.bindings.len();
                if removed == 0 {
                    // Nothing to publish.
                    return Err(());
                }
            }
            writer.constrained = writer
                .bindings
                .values()
                .filter(|installed| installed.options.placement.is_constrained())
                .count();
            writer.asynchronous = writer
                .bindings
                .values()
                .filter(|installed| installed.options.asynchronous)
                .count();
            Ok(())
        });
        removed
    }
}
