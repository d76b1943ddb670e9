//! The writer side of an event: its authoritative state, the operations
//! that change it (install, uninstall, swap, impose, settings), and
//! compiling it into the [`Table`] that raises run.
//!
//! Every change runs under the event's writer lock, compiles a new table
//! from the whole state (linear in the number of bindings) and publishes it
//! with one pointer swap; the old table is freed after a grace period
//! (`rcu`). Writers refuse to run in interrupt context
//! (the kernel marks it): they take spin locks an interrupted writer on the
//! same CPU may hold.

use alloc::boxed::Box;
use alloc::collections::BTreeMap;
use alloc::string::String;
use alloc::sync::Arc;
use alloc::vec::Vec;
use core::sync::atomic::Ordering;

use hashbrown::HashMap;

use super::EventInner;
use crate::authorize::{Authorizer, Decision, InstallRequest};
use crate::binding::{
    Binding, BindingBuilder, BindingId, BindingOptions, BindingStats, Guard, Handler,
};
use crate::error::{BindingError, InstallError};
use crate::executor::Executor;
use crate::order::{OrderError, OrderNode, Placement, total_order};
use crate::principal::{Principal, PrincipalState};
use crate::rcu;
use crate::registry::BindingInfo;
use crate::step::{Guards, Shared, Specialised, WithImposed};
use crate::table::{Extra, KeyedIndex, ResultHandler, Settings, Step, Table};
use crate::time_bounds::{Micros, OverrunHandler};

/// One installed binding (or the original handler), as the writers see it.
pub(crate) struct Installed<A, R> {
    pub(crate) id: BindingId,
    pub(crate) call: Shared<A, R>,
    pub(crate) extra: Option<Arc<Extra<A, R>>>,
    pub(crate) installer: Arc<PrincipalState>,
    pub(crate) imposed_guards: usize,
    pub(crate) options: BindingOptions,
    pub(crate) quantum: Option<Micros>,
    pub(crate) stats: Arc<BindingStats>,
}

/// The authoritative state, changed only under the writer lock; each change
/// is compiled into a new [`Table`] and published.
pub(crate) struct WriterState<A, R> {
    /// The original handler as a binding (id `ORIGINAL`).
    pub(crate) original: Option<Installed<A, R>>,
    pub(crate) original_enabled: bool,
    /// By id, i.e. in install order.
    pub(crate) bindings: BTreeMap<BindingId, Installed<A, R>>,
    /// Bindings with before/after constraints.
    pub(crate) constrained: usize,
    /// Asynchronous bindings.
    pub(crate) asynchronous: usize,
    pub(crate) authorizer: Option<Authorizer<A>>,
    pub(crate) result: Option<ResultHandler<R>>,
    pub(crate) default: Option<Handler<A, R>>,
    pub(crate) executor: Option<Arc<dyn Executor>>,
    pub(crate) quantum: Option<Micros>,
    pub(crate) on_overrun: Option<OverrunHandler>,
    pub(crate) retired: bool,
}

impl<A, R> WriterState<A, R> {
    /// Frees the binding map's last node once it is empty (a `BTreeMap`
    /// keeps its root leaf after its last removal), so that installing and
    /// uninstalling a handler leaves the heap exactly as it was: the kernel
    /// checks that loading and unloading an extension leaks nothing.
    pub(crate) fn release_if_empty(&mut self) {
        if self.bindings.is_empty() {
            self.bindings = BTreeMap::new();
        }
    }

    /// Moves the binding map into nodes allocated by the code running this
    /// (an empty map has none).
    ///
    /// A `BTreeMap`'s nodes are allocated by whichever instantiation of
    /// this crate's generic code inserted into it: when an extension
    /// installs, its own object's copy, so from that extension's heap.
    /// Later installations by others go into the same nodes, which then
    /// outlive the extension that made them and keep its heap from being
    /// freed at its unload. The kernel calls this through the event's own
    /// vtable (see `Registered`), i.e. with the declarer's code, when it
    /// revokes a principal's bindings and when it republishes tables.
    pub(crate) fn rebuild_map(&mut self) {
        self.bindings = core::mem::take(&mut self.bindings).into_iter().collect();
    }

    fn knows(&self, id: BindingId) -> bool {
        if id == BindingId::ORIGINAL {
            self.original.is_some()
        } else {
            self.bindings.contains_key(&id)
        }
    }

    /// The original (if any) and the bindings, in install order.
    pub(crate) fn entries(&self) -> Vec<&Installed<A, R>> {
        self.original.iter().chain(self.bindings.values()).collect()
    }

    /// The dispatch order of `entries` (indices), or the error that one
    /// more binding `extra` with `placement` would cause.
    fn order_of(
        entries: &[&Installed<A, R>],
        extra: Option<(BindingId, &Placement)>,
    ) -> Result<Vec<usize>, OrderError> {
        let mut nodes: Vec<OrderNode<'_>> = entries
            .iter()
            .map(|entry| OrderNode {
                id: entry.id,
                placement: &entry.options.placement,
            })
            .collect();
        if let Some((id, placement)) = extra {
            nodes.push(OrderNode { id, placement });
        }
        total_order(&nodes)
    }

    /// The current order; it always exists (constraints are checked when
    /// they are installed, and removing bindings only drops constraints).
    pub(crate) fn current_order(entries: &[&Installed<A, R>]) -> Vec<usize> {
        Self::order_of(entries, None).unwrap_or_else(|_| (0..entries.len()).collect())
    }

    /// Whether raises may skip the table and call the original directly.
    fn is_solo(&self, asynchronous: bool) -> bool {
        !self.retired
            && self.original.is_some()
            && self.original_enabled
            && self.bindings.is_empty()
            && !asynchronous
    }

    fn enabled(&self, entry: &Installed<A, R>) -> bool {
        entry.id != BindingId::ORIGINAL || self.original_enabled
    }
}

impl<A: 'static, R: 'static> EventInner<A, R> {
    /// Compiles the whole writer state into a table.
    pub(crate) fn compile(&self, writer: &WriterState<A, R>) -> Table<A, R> {
        let entries = writer.entries();
        let mut steps = Vec::with_capacity(entries.len());
        let mut keyed: HashMap<u64, Vec<Step<A, R>>> = HashMap::new();
        let mut simple = !writer.retired && self.defer.is_none();
        if !writer.retired {
            for (rank, &at) in WriterState::current_order(&entries).iter().enumerate() {
                let entry = entries[at];
                if !writer.enabled(entry) {
                    continue;
                }
                let step = Step {
                    call: rcu::Pinned::new(Arc::clone(&entry.call)),
                    rank: rank as u64,
                    cancel: entry.options.cancel,
                    extra: entry.extra.clone(),
                };
                simple &= !step.cancel && step.extra.is_none();
                match entry.options.key {
                    None => steps.push(step),
                    Some(key) => {
                        simple = false;
                        keyed.entry(key).or_default().push(step);
                    }
                }
            }
        }
        let keyed = (!keyed.is_empty()).then(|| {
            Arc::new(
                keyed
                    .into_iter()
                    .map(|(key, steps)| (key, steps.into_boxed_slice()))
                    .collect::<KeyedIndex<A, R>>(),
            )
        });
        let retired = writer.retired;
        Table {
            steps: steps.into(),
            simple,
            retired,
            result: writer.result.clone(),
            default: writer.default.clone(),
            keyed,
            settings: Arc::new(Settings {
                key_of: if retired { None } else { self.key_of },
                executor: writer.executor.clone(),
                has_async: writer.asynchronous > 0,
                defer: if retired { None } else { self.defer },
                event: Arc::clone(&self.name),
                time_bounds: self.time_bounds.clone(),
                on_overrun: writer.on_overrun.clone(),
            }),
        }
    }

    /// Runs `change` under the writer lock and, if it succeeded, publishes
    /// the table compiled from the new state. Replaced tables are freed
    /// after their grace period, outside the lock.
    pub(crate) fn update<T, E>(
        &self,
        change: impl FnOnce(&mut WriterState<A, R>) -> Result<T, E>,
    ) -> Result<T, E> {
        let mut writer = self.table.lock();
        let value = change(&mut writer)?;
        let table = self.compile(&writer);
        let solo = writer.is_solo(self.defer.is_some());
        // Leaving the solo path: clear the flag first, so that every raise
        // after the publication reads the table. Entering it: publish
        // first.
        if !solo {
            self.solo.store(false, Ordering::Release);
        }
        writer.replace(Box::new(table));
        if solo {
            self.solo.store(true, Ordering::Release);
        }
        self.binding_count
            .store(writer.bindings.len(), Ordering::Relaxed);
        drop(writer);
        rcu::try_reclaim();
        Ok(value)
    }

    pub(crate) fn is_installed(&self, id: BindingId) -> bool {
        id != BindingId::ORIGINAL && self.table.lock().bindings.contains_key(&id)
    }

    pub(crate) fn install<H, G>(
        self: &Arc<Self>,
        principal: &Principal,
        builder: BindingBuilder<'_, A, R, H, G>,
    ) -> Result<Binding<A, R>, InstallError>
    where
        H: Fn(&A) -> R + Send + Sync + 'static,
        G: Guards<A>,
    {
        if rcu::in_interrupt() {
            return Err(InstallError::InInterrupt);
        }
        let BindingBuilder {
            handler,
            guards,
            mut options,
            spawn,
            ..
        } = builder;
        if principal.is_revoked() {
            return Err(InstallError::Revoked);
        }
        if options.key.is_some() && self.key_of.is_none() {
            return Err(InstallError::NotKeyed);
        }
        let mut imposed: Vec<Guard<A>> = Vec::new();
        let (retired, authorizer) = {
            let writer = self.table.lock();
            (writer.retired, writer.authorizer.clone())
        };
        if retired {
            return Err(InstallError::Retired);
        }
        if principal.id() != self.owner.id() {
            let Some(authorizer) = authorizer else {
                return Err(InstallError::Denied {
                    reason: String::from("only the event's owner may install (no authorizer)"),
                });
            };
            let request = InstallRequest {
                principal: principal.id(),
                principal_name: principal.name(),
                event: &self.name,
                options: &options,
            };
            match authorizer(&request) {
                Decision::Allow => {}
                Decision::Deny(reason) => return Err(InstallError::Denied { reason }),
                Decision::Impose(imposition) => {
                    imposed = imposition.guards;
                    if let Some(placement) = imposition.placement {
                        options.placement = placement;
                    }
                    if imposition.forbid_cancel {
                        options.cancel = false;
                    }
                }
            }
        }
        let id = self.update(|writer| {
            if writer.retired {
                return Err(InstallError::Retired);
            }
            // Checked again under the lock: revocation sets the flag before
            // sweeping, and the sweep takes this lock.
            if principal.is_revoked() {
                return Err(InstallError::Revoked);
            }
            let quantum = if options.ephemeral {
                let quantum = writer.quantum.ok_or(InstallError::NoQuantum)?;
                if self.time_bounds.get().clock().is_none() {
                    return Err(InstallError::NoClock);
                }
                Some(quantum)
            } else {
                None
            };
            let placement = &options.placement;
            if let Some(&unknown) = placement
                .before
                .iter()
                .chain(&placement.after)
                .find(|&&other| !writer.knows(other))
            {
                return Err(InstallError::Order(OrderError::UnknownBinding(unknown)));
            }
            let id = BindingId::next();
            let constrained = placement.is_constrained();
            if constrained || writer.constrained > 0 {
                WriterState::order_of(&writer.entries(), Some((id, placement)))?;
            }
            let imposed_guards = imposed.len();
            let mut call: Shared<A, R> = Arc::new(Specialised::new(
                handler,
                Arc::new(guards),
                0,
                principal.alive_token(),
            ));
            // The authorizer's guards, checked first (in their order).
            for guard in imposed.into_iter().rev() {
                call = Arc::new(WithImposed::new(Arc::new(guard), call, None));
            }
            let stats = Arc::new(BindingStats::default());
            let extra = (spawn.is_some() || quantum.is_some()).then(|| {
                Arc::new(Extra {
                    spawn,
                    quantum,
                    id,
                    installer: principal.id(),
                    stats: Arc::clone(&stats),
                })
            });
            writer.constrained += usize::from(constrained);
            writer.asynchronous += usize::from(options.asynchronous);
            writer.bindings.insert(
                id,
                Installed {
                    id,
                    call,
                    extra,
                    installer: Arc::clone(&principal.state),
                    imposed_guards,
                    options,
                    quantum,
                    stats,
                },
            );
            Ok(id)
        })?;
        Ok(Binding {
            id,
            event: Arc::downgrade(self),
        })
    }

    pub(crate) fn uninstall(&self, id: BindingId) -> Result<(), BindingError> {
        if rcu::in_interrupt() {
            return Err(BindingError::InInterrupt);
        }
        if id == BindingId::ORIGINAL {
            return Err(BindingError::Original);
        }
        self.update(|writer| {
            let removed = writer
                .bindings
                .remove(&id)
                .ok_or(BindingError::NotInstalled(id))?;
            writer.release_if_empty();
            writer.constrained -= usize::from(removed.options.placement.is_constrained());
            writer.asynchronous -= usize::from(removed.options.asynchronous);
            Ok(())
        })
    }

    /// Replaces the callable object of binding `id` by `replace(old)`.
    fn replace_call(
        &self,
        id: BindingId,
        replace: impl FnOnce(&mut Installed<A, R>),
    ) -> Result<(), BindingError> {
        if rcu::in_interrupt() {
            return Err(BindingError::InInterrupt);
        }
        if id == BindingId::ORIGINAL {
            return Err(BindingError::Original);
        }
        self.update(|writer| {
            let installed = writer
                .bindings
                .get_mut(&id)
                .ok_or(BindingError::NotInstalled(id))?;
            replace(installed);
            Ok(())
        })
    }

    /// Adds an imposed guard to a binding, checked before its other guards.
    pub(crate) fn impose_guard(&self, id: BindingId, guard: Guard<A>) -> Result<(), BindingError> {
        let guard = Arc::new(guard);
        self.replace_call(id, |installed| {
            let alive = installed.call_alive_token();
            installed.call = Arc::new(WithImposed::new(
                guard,
                Arc::clone(&installed.call),
                Some(alive),
            ));
            installed.imposed_guards += 1;
        })
    }

    /// Atomically replaces a binding's handler, keeping its guards, order,
    /// options and statistics.
    pub(crate) fn swap_handler(
        &self,
        id: BindingId,
        handler: Handler<A, R>,
    ) -> Result<(), BindingError> {
        self.replace_call(id, |installed| {
            let alive = installed.call_alive_token();
            installed.call = installed.call.swap(handler, alive);
        })
    }

    /// Changes settings (thread context only; refused in interrupt
    /// context, see [`InstallError::InInterrupt`]).
    pub(crate) fn set(&self, change: impl FnOnce(&mut WriterState<A, R>)) {
        if rcu::in_interrupt() {
            return;
        }
        let _ = self.update(|writer| {
            change(writer);
            Ok::<_, ()>(())
        });
    }

    pub(crate) fn binding_infos(&self) -> Vec<BindingInfo> {
        let writer = self.table.lock();
        let entries = writer.entries();
        WriterState::current_order(&entries)
            .into_iter()
            .enumerate()
            .map(|(rank, at)| {
                let entry = entries[at];
                let original = entry.id == BindingId::ORIGINAL;
                BindingInfo {
                    id: entry.id,
                    installer: entry.installer.id,
                    installer_name: String::from(&*entry.installer.name),
                    rank,
                    options: if original {
                        BindingOptions::default()
                    } else {
                        entry.options.clone()
                    },
                    imposed_guards: entry.imposed_guards,
                    quantum: entry.quantum,
                    calls: if original {
                        entry
                            .call
                            .calls()
                            .wrapping_add(self.solo_raises.load(Ordering::Relaxed))
                    } else {
                        entry.call.calls()
                    },
                    overruns: entry.stats.overruns.load(Ordering::Relaxed),
                    enabled: writer.enabled(entry) && !writer.retired,
                }
            })
            .collect()
    }
}

impl<A, R> Installed<A, R> {
    /// A token counting one more binding object for this installer.
    fn call_alive_token(&self) -> crate::principal::AliveToken {
        crate::principal::AliveToken::new(&self.installer)
    }
}
