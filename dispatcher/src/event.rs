//! Events: declaration, raising, installing, and the owner's authority.

use alloc::collections::BTreeMap;
use alloc::string::String;
use alloc::sync::Arc;
use alloc::vec::Vec;
use core::fmt;
use core::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering};

use hashbrown::HashMap;
use spin::Mutex;

use crate::authorize::{Authorizer, Decision, InstallRequest};
use crate::binding::{
    Binding, BindingBuilder, BindingCore, BindingId, BindingOptions, BindingStats, Guard, GuardSet,
    Handler,
};
use crate::error::{BindingError, DeclareError, InstallError, RaiseError};
use crate::executor::Executor;
use crate::order::{OrderError, OrderNode, Placement, total_order};
use crate::plan::{
    Chunk, DeferFn, KeyedIndex, Plan, RankScheme, ResultHandler, Settings, Step, band_rank,
    chunk_up, defer_dispatch, insert_step, update_step,
};
use crate::principal::{Principal, PrincipalId};
use crate::registry::{self, BindingInfo, EventInfo, RegisteredEvent};
use crate::snapshot::SnapshotCell;
use crate::time_bounds::{OverrunHandler, TimeBounds, TimeBoundsRef};

/// A typed event: raised with arguments `A`, producing a result `R`.
///
/// A cheap handle (an `Arc` inside): clone it freely, send it anywhere. The
/// event lives as long as any `Event` handle or its [`EventAuthority`]; it
/// then disappears from the [`registry`].
///
/// Events with several arguments use a tuple for `A`. Handlers and guards
/// take `&A`, so raising never moves or clones the arguments (except for
/// asynchronous dispatch, which clones them into the job).
///
/// A handler that captures an `Event` handle of its own event forms a
/// reference cycle (event -> binding -> closure -> event): the event then
/// stays alive until that binding is uninstalled (or its installer
/// revoked), which breaks the cycle.
pub struct Event<A: 'static, R: 'static> {
    pub(crate) inner: Arc<EventInner<A, R>>,
}

impl<A: 'static, R: 'static> Clone for Event<A, R> {
    fn clone(&self) -> Self {
        Event {
            inner: Arc::clone(&self.inner),
        }
    }
}

impl<A: 'static, R: 'static> fmt::Debug for Event<A, R> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Event")
            .field("name", &&*self.inner.name)
            .finish_non_exhaustive()
    }
}

pub(crate) struct EventInner<A: 'static, R: 'static> {
    /// `true` while the original handler is the only thing to run: raises
    /// then call it directly, touching no lock and no reference count.
    fast: AtomicBool,
    /// Raises that took the fast path (relaxed load + store).
    fast_raises: AtomicU64,
    original: Option<Handler<A, R>>,
    plan: SnapshotCell<Plan<A, R>>,
    /// Raises that took the general path (relaxed load + store).
    general_raises: AtomicU64,
    binding_count: AtomicUsize,
    name: Arc<str>,
    owner: Principal,
    key_of: Option<fn(&A) -> u64>,
    defer: Option<DeferFn<A, R>>,
    time_bounds: TimeBoundsRef,
    writer: Mutex<WriterState<A, R>>,
}

/// One installed binding, as the writers see it.
struct Installed<A, R> {
    core: Arc<BindingCore<A, R>>,
    guards: Option<Arc<GuardSet<A>>>,
    imposed_guards: usize,
    options: BindingOptions,
}

impl<A, R> Installed<A, R> {
    /// The binding's rank when no binding has before/after constraints.
    fn band_rank(&self) -> u64 {
        band_rank(self.options.placement.position, self.core.id)
    }

    /// The binding as a plan step with the band rank.
    fn band_step(&self) -> Step<A, R> {
        Step {
            rank: self.band_rank(),
            guards: self.guards.clone(),
            core: Arc::clone(&self.core),
        }
    }
}

/// The authoritative state, changed only under the writer lock; each change
/// is compiled into a new [`Plan`] and published.
struct WriterState<A, R> {
    /// The original handler as a binding object (id `ORIGINAL`).
    original: Option<Arc<BindingCore<A, R>>>,
    original_placement: Placement,
    original_enabled: bool,
    /// By id, i.e. in install order.
    bindings: BTreeMap<BindingId, Installed<A, R>>,
    /// Bindings with before/after constraints.
    constrained: usize,
    /// Asynchronous bindings.
    asynchronous: usize,
    authorizer: Option<Authorizer<A>>,
    result: Option<ResultHandler<R>>,
    default: Option<Handler<A, R>>,
    executor: Option<Arc<dyn Executor>>,
    quantum: Option<u64>,
    on_overrun: Option<OverrunHandler>,
    retired: bool,
}

/// One participant in the order, as the plan compiler sees it.
struct Entry<'w, A, R> {
    core: &'w Arc<BindingCore<A, R>>,
    guards: Option<&'w Arc<GuardSet<A>>>,
    imposed_guards: usize,
    placement: &'w Placement,
    key: Option<u64>,
    options: Option<&'w BindingOptions>,
    enabled: bool,
}

impl<A, R> WriterState<A, R> {
    /// Frees the binding map's last node once it is empty (a `BTreeMap`
    /// keeps its root leaf after its last removal), so that installing and
    /// uninstalling a handler leaves the heap exactly as it was: the kernel
    /// checks that loading and unloading an extension leaks nothing.
    fn release_if_empty(&mut self) {
        if self.bindings.is_empty() {
            self.bindings = BTreeMap::new();
        }
    }

    fn knows(&self, id: BindingId) -> bool {
        if id == BindingId::ORIGINAL {
            self.original.is_some()
        } else {
            self.bindings.contains_key(&id)
        }
    }

    /// The original (if any) and the bindings, in install order.
    fn entries(&self) -> Vec<Entry<'_, A, R>> {
        let mut entries = Vec::with_capacity(self.bindings.len() + 1);
        if let Some(original) = &self.original {
            entries.push(Entry {
                core: original,
                guards: None,
                imposed_guards: 0,
                placement: &self.original_placement,
                key: None,
                options: None,
                enabled: self.original_enabled,
            });
        }
        entries.extend(self.bindings.values().map(|installed| Entry {
            core: &installed.core,
            guards: installed.guards.as_ref(),
            imposed_guards: installed.imposed_guards,
            placement: &installed.options.placement,
            key: installed.options.key,
            options: Some(&installed.options),
            enabled: true,
        }));
        entries
    }

    /// The dispatch order of `entries` (indices), or the error that one
    /// more binding `extra` with `placement` would cause.
    fn order_of(
        entries: &[Entry<'_, A, R>],
        extra: Option<(BindingId, &Placement)>,
    ) -> Result<Vec<usize>, OrderError> {
        let mut nodes: Vec<OrderNode<'_>> = entries
            .iter()
            .map(|entry| OrderNode {
                id: entry.core.id,
                placement: entry.placement,
            })
            .collect();
        if let Some((id, placement)) = extra {
            nodes.push(OrderNode { id, placement });
        }
        total_order(&nodes)
    }

    /// The current order; it always exists (constraints are checked when
    /// they are installed, and removing bindings only drops constraints).
    fn current_order(entries: &[Entry<'_, A, R>]) -> Vec<usize> {
        Self::order_of(entries, None).unwrap_or_else(|_| (0..entries.len()).collect())
    }

    /// Whether raises may skip the plan and call the original directly.
    fn is_trivial(&self, asynchronous: bool) -> bool {
        !self.retired
            && self.original.is_some()
            && self.original_enabled
            && self.bindings.is_empty()
            && !asynchronous
    }
}

/// How a writer operation changed the state, so that the new plan can be
/// derived from the current one instead of recompiled when possible.
enum Change<A, R> {
    /// Recompile everything.
    Recompile,
    /// Only settings changed; the steps are shared with the current plan.
    Settings,
    /// One binding was added.
    Inserted(Step<A, R>, Option<u64>),
    /// The binding with this rank (and key) was removed.
    Removed(u64, Option<u64>),
    /// The binding with this rank (and key) got a new binding object.
    Replaced(Step<A, R>, Option<u64>),
}

impl<A: 'static, R: 'static> EventInner<A, R> {
    #[inline]
    fn raise(self: &Arc<Self>, args: &A) -> Result<R, RaiseError> {
        if self.fast.load(Ordering::Acquire)
            && let Some(original) = &self.original
        {
            bump(&self.fast_raises);
            return Ok(original(args));
        }
        self.raise_general(args)
    }

    #[inline(never)]
    fn raise_general(&self, args: &A) -> Result<R, RaiseError> {
        bump(&self.general_raises);
        let plan = self.plan.load();
        match plan.settings.defer {
            None => plan.dispatch(args, false),
            Some(defer) => {
                if plan.settings.retired {
                    return Err(RaiseError::Retired);
                }
                let executor = plan.executor().ok_or(RaiseError::NoExecutor)?;
                defer(&plan, args, executor);
                plan.default_or(args, 1)
            }
        }
    }

    fn raises(&self) -> u64 {
        self.fast_raises
            .load(Ordering::Relaxed)
            .wrapping_add(self.general_raises.load(Ordering::Relaxed))
    }

    fn settings(&self, writer: &WriterState<A, R>) -> Settings<A, R> {
        let retired = writer.retired;
        Settings {
            key_of: if retired { None } else { self.key_of },
            result: writer.result.clone(),
            default: writer.default.clone(),
            executor: writer.executor.clone(),
            has_async: writer.asynchronous > 0,
            defer: if retired { None } else { self.defer },
            retired,
            event: Arc::clone(&self.name),
            time_bounds: self.time_bounds.clone(),
            on_overrun: writer.on_overrun.clone(),
        }
    }

    /// Compiles the whole writer state into a plan.
    fn compile(&self, writer: &WriterState<A, R>) -> Plan<A, R> {
        let entries = writer.entries();
        let ranks = if writer.constrained == 0 {
            RankScheme::BandAndId
        } else {
            RankScheme::TotalIndex
        };
        let order = WriterState::current_order(&entries);
        let mut unkeyed = Vec::with_capacity(order.len());
        let mut keyed: HashMap<u64, Vec<Step<A, R>>> = HashMap::new();
        if !writer.retired {
            for (index, &at) in order.iter().enumerate() {
                let entry = &entries[at];
                if !entry.enabled {
                    continue;
                }
                let rank = match ranks {
                    RankScheme::BandAndId => band_rank(entry.placement.position, entry.core.id),
                    RankScheme::TotalIndex => index as u64,
                };
                let step = Step {
                    rank,
                    guards: entry.guards.cloned(),
                    core: Arc::clone(entry.core),
                };
                match entry.key {
                    None => unkeyed.push(step),
                    Some(key) => keyed.entry(key).or_default().push(step),
                }
            }
        }
        Plan {
            unkeyed: chunk_up(unkeyed),
            keyed: Arc::new(
                keyed
                    .into_iter()
                    .map(|(key, steps)| (key, Chunk::from(steps)))
                    .collect(),
            ),
            ranks,
            settings: self.settings(writer),
        }
    }

    /// The plan after `change`, derived from `current` when the ranks allow
    /// it (copying one chunk), else compiled from scratch.
    fn next_plan(
        &self,
        writer: &WriterState<A, R>,
        current: &Plan<A, R>,
        change: Change<A, R>,
    ) -> Plan<A, R> {
        // With no binding left, rebuild the plan from scratch: O(1) here, and
        // the event is back in exactly the state (and allocations) it was
        // declared in, so install + uninstall leaves the heap unchanged.
        if writer.bindings.is_empty() {
            return self.compile(writer);
        }
        let incremental = current.ranks == RankScheme::BandAndId && writer.constrained == 0;
        // The keyed index with the step of `rank` under `key` removed and
        // `step` (if any) put in its place by rank. Copies the index (one
        // reference per key): linear in the number of keys.
        let keyed_with = |key: u64, rank: u64, step: Option<Step<A, R>>| {
            let mut index = KeyedIndex::clone(&current.keyed);
            let mut steps: Vec<Step<A, R>> = index
                .get(&key)
                .map(|list| list.iter().filter(|s| s.rank != rank).cloned().collect())
                .unwrap_or_default();
            if let Some(step) = step {
                let at = steps.partition_point(|s| s.rank < step.rank);
                steps.insert(at, step);
            }
            if steps.is_empty() {
                index.remove(&key);
            } else {
                index.insert(key, Chunk::from(steps));
            }
            Arc::new(index)
        };
        let derived = |unkeyed: Vec<Chunk<A, R>>, keyed: Arc<KeyedIndex<A, R>>| Plan {
            unkeyed,
            keyed,
            ranks: current.ranks,
            settings: self.settings(writer),
        };
        match change {
            Change::Settings => derived(current.unkeyed.clone(), Arc::clone(&current.keyed)),
            Change::Inserted(step, None) if incremental => derived(
                insert_step(&current.unkeyed, step),
                Arc::clone(&current.keyed),
            ),
            Change::Inserted(step, Some(key)) if incremental => derived(
                current.unkeyed.clone(),
                keyed_with(key, step.rank, Some(step)),
            ),
            Change::Removed(rank, None) if incremental => {
                match update_step(&current.unkeyed, rank, None) {
                    Some(unkeyed) => derived(unkeyed, Arc::clone(&current.keyed)),
                    None => self.compile(writer),
                }
            }
            Change::Removed(rank, Some(key)) if incremental => {
                derived(current.unkeyed.clone(), keyed_with(key, rank, None))
            }
            Change::Replaced(step, None) if incremental => {
                let rank = step.rank;
                match update_step(&current.unkeyed, rank, Some(step)) {
                    Some(unkeyed) => derived(unkeyed, Arc::clone(&current.keyed)),
                    None => self.compile(writer),
                }
            }
            Change::Replaced(step, Some(key)) if incremental => {
                let rank = step.rank;
                derived(current.unkeyed.clone(), keyed_with(key, rank, Some(step)))
            }
            _ => self.compile(writer),
        }
    }

    /// Publishes `plan`; returns the replaced plans so that the caller drops
    /// them after releasing the writer lock.
    fn publish(&self, writer: &WriterState<A, R>, plan: Plan<A, R>) -> [Arc<Plan<A, R>>; 2] {
        let trivial = writer.is_trivial(self.defer.is_some());
        // Leaving the fast path: clear the flag first, so that every raise
        // after the publication reads the plan. Entering it: publish first.
        if !trivial {
            self.fast.store(false, Ordering::Release);
        }
        let replaced = self.plan.publish(Arc::new(plan));
        if trivial {
            self.fast.store(true, Ordering::Release);
        }
        self.binding_count
            .store(writer.bindings.len(), Ordering::Relaxed);
        replaced
    }

    /// Runs `change` under the writer lock and, if it succeeded, publishes
    /// the plan for the change it reports. Replaced plans are dropped after
    /// the lock is released.
    fn update<T, E>(
        &self,
        change: impl FnOnce(&mut WriterState<A, R>) -> Result<(T, Change<A, R>), E>,
    ) -> Result<T, E> {
        let mut writer = self.writer.lock();
        let outcome = change(&mut writer);
        let (value, replaced) = match outcome {
            Ok((value, change)) => {
                let current = self.plan.load();
                let plan = self.next_plan(&writer, &current, change);
                (Ok(value), Some((self.publish(&writer, plan), current)))
            }
            Err(error) => (Err(error), None),
        };
        drop(writer);
        drop(replaced);
        value
    }

    pub(crate) fn is_installed(&self, id: BindingId) -> bool {
        id != BindingId::ORIGINAL && self.writer.lock().bindings.contains_key(&id)
    }

    pub(crate) fn install(
        self: &Arc<Self>,
        principal: &Principal,
        builder: BindingBuilder<'_, A, R>,
    ) -> Result<Binding<A, R>, InstallError> {
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
            let writer = self.writer.lock();
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
            let core = Arc::new(BindingCore {
                handler,
                cancel: options.cancel,
                spawn,
                quantum,
                id,
                stats: Arc::new(BindingStats::default()),
                alive: principal.alive_token(),
            });
            let imposed_guards = imposed.len();
            let mut all_guards = imposed;
            all_guards.extend(guards);
            let guards = GuardSet::new(all_guards, None, principal.alive_token());
            writer.constrained += usize::from(constrained);
            writer.asynchronous += usize::from(options.asynchronous);
            let installed = Installed {
                core,
                guards,
                imposed_guards,
                options,
            };
            let change = Change::Inserted(installed.band_step(), installed.options.key);
            writer.bindings.insert(id, installed);
            Ok((id, change))
        })?;
        Ok(Binding {
            id,
            event: Arc::downgrade(self),
        })
    }

    pub(crate) fn uninstall(&self, id: BindingId) -> Result<(), BindingError> {
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
            Ok((
                (),
                Change::Removed(removed.band_rank(), removed.options.key),
            ))
        })
    }

    /// Replaces the binding object of `id` by `replace(old)`.
    fn replace_core(
        &self,
        id: BindingId,
        replace: impl FnOnce(&BindingCore<A, R>) -> BindingCore<A, R>,
    ) -> Result<(), BindingError> {
        if id == BindingId::ORIGINAL {
            return Err(BindingError::Original);
        }
        self.update(|writer| {
            let installed = writer
                .bindings
                .get_mut(&id)
                .ok_or(BindingError::NotInstalled(id))?;
            installed.core = Arc::new(replace(&installed.core));
            Ok((
                (),
                Change::Replaced(installed.band_step(), installed.options.key),
            ))
        })
    }

    /// Adds an imposed guard to a binding, checked before its other guards.
    fn impose_guard(&self, id: BindingId, guard: Guard<A>) -> Result<(), BindingError> {
        if id == BindingId::ORIGINAL {
            return Err(BindingError::Original);
        }
        self.update(|writer| {
            let installed = writer
                .bindings
                .get_mut(&id)
                .ok_or(BindingError::NotInstalled(id))?;
            installed.guards = GuardSet::new(
                alloc::vec![guard],
                installed.guards.take(),
                installed.core.alive.duplicate(),
            );
            installed.imposed_guards += 1;
            Ok((
                (),
                Change::Replaced(installed.band_step(), installed.options.key),
            ))
        })
    }

    pub(crate) fn swap_handler(
        &self,
        id: BindingId,
        handler: Handler<A, R>,
    ) -> Result<(), BindingError> {
        self.replace_core(id, |old| old.with_handler(handler))
    }

    /// Changes settings; `recompile` when the steps are affected too.
    fn set(&self, recompile: bool, change: impl FnOnce(&mut WriterState<A, R>)) {
        let _ = self.update(|writer| {
            change(writer);
            let change = if recompile {
                Change::Recompile
            } else {
                Change::Settings
            };
            Ok::<_, ()>(((), change))
        });
    }

    fn binding_infos(&self) -> Vec<BindingInfo> {
        let writer = self.writer.lock();
        let entries = writer.entries();
        WriterState::current_order(&entries)
            .into_iter()
            .enumerate()
            .map(|(rank, at)| {
                let entry = &entries[at];
                let core = entry.core;
                let mut calls = core.stats.calls.load(Ordering::Relaxed);
                if core.id == BindingId::ORIGINAL {
                    calls = calls.wrapping_add(self.fast_raises.load(Ordering::Relaxed));
                }
                BindingInfo {
                    id: core.id,
                    installer: core.installer(),
                    installer_name: String::from(&*core.alive.principal().name),
                    rank,
                    options: entry.options.cloned().unwrap_or_default(),
                    imposed_guards: entry.imposed_guards,
                    quantum: core.quantum,
                    calls,
                    overruns: core.stats.overruns.load(Ordering::Relaxed),
                    enabled: entry.enabled && !writer.retired,
                }
            })
            .collect()
    }
}

impl<A: 'static, R: 'static> RegisteredEvent for EventInner<A, R> {
    fn name(&self) -> &str {
        &self.name
    }

    fn info(&self) -> EventInfo {
        let (original_enabled, retired) = {
            let writer = self.writer.lock();
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

    fn revoke_principal(&self, principal: PrincipalId) -> usize {
        let retire = principal == self.owner.id();
        let mut removed = 0;
        let _ = self.update(|writer| {
            let before = writer.bindings.len();
            if retire {
                removed = writer
                    .bindings
                    .values()
                    .filter(|installed| installed.core.installer() == principal)
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
                    .retain(|_, installed| installed.core.installer() != principal);
                writer.release_if_empty();
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
            Ok(((), Change::Recompile))
        });
        removed
    }
}

/// Counts one raise with a relaxed load and a relaxed store instead of a
/// read-modify-write, which keeps the fast path free of locked
/// instructions. It is a statistic, never used for correctness. It may
/// under-count: a raise nested in an interrupt that lands between the load
/// and the store of the interrupted raise has its increment overwritten, and
/// raises running at the same instant on several CPUs can lose increments.
/// Without such overlaps (the common case on one CPU) it is exact.
#[inline(always)]
fn bump(counter: &AtomicU64) {
    counter.store(
        counter.load(Ordering::Relaxed).wrapping_add(1),
        Ordering::Relaxed,
    );
}

/// What declaring an event returns: the event handle, and the owner's
/// authority over it.
pub type Declared<A, R> = (Event<A, R>, EventAuthority<A, R>);

/// Declares an event; see [`Event::builder`].
#[must_use = "an event builder does nothing until `declare` is called"]
pub struct EventBuilder<A: 'static, R: 'static> {
    name: String,
    original: Option<Handler<A, R>>,
    key_of: Option<fn(&A) -> u64>,
    result: Option<ResultHandler<R>>,
    default: Option<Handler<A, R>>,
    quantum: Option<u64>,
    defer: Option<DeferFn<A, R>>,
    executor: Option<Arc<dyn Executor>>,
    time_bounds: TimeBoundsRef,
}

impl<A: 'static, R: 'static> EventBuilder<A, R> {
    /// The original (primary) handler: part of the dispatch like an
    /// unguarded `Middle` binding installed first. When it is the only
    /// handler, a raise is a direct call of it.
    pub fn original(mut self, handler: impl Fn(&A) -> R + Send + Sync + 'static) -> Self {
        self.original = Some(Arc::new(handler));
        self
    }

    /// The key extractor for keyed bindings.
    pub fn key(mut self, key_of: fn(&A) -> u64) -> Self {
        self.key_of = Some(key_of);
        self
    }

    /// The result handler; see [`EventAuthority::set_result_handler`].
    pub fn result_handler(mut self, combine: impl Fn(R, R) -> R + Send + Sync + 'static) -> Self {
        self.result = Some(Arc::new(combine));
        self
    }

    /// The default handler; see [`EventAuthority::set_default_handler`].
    pub fn default_handler(mut self, handler: impl Fn(&A) -> R + Send + Sync + 'static) -> Self {
        self.default = Some(Arc::new(handler));
        self
    }

    /// The default result; see [`EventAuthority::set_default_result`].
    pub fn default_result(self, result: R) -> Self
    where
        R: Clone + Send + Sync,
    {
        self.default_handler(move |_| result.clone())
    }

    /// The quantum for ephemeral bindings; see [`EventAuthority::set_quantum`].
    pub fn quantum(mut self, ticks: u64) -> Self {
        self.quantum = Some(ticks);
        self
    }

    /// The event's own executor.
    pub fn executor(mut self, executor: Arc<dyn Executor>) -> Self {
        self.executor = Some(executor);
        self
    }

    /// A private time-bounds table (with its own clock) instead of the
    /// process-wide one.
    pub fn time_bounds(mut self, time_bounds: Arc<TimeBounds>) -> Self {
        self.time_bounds = TimeBoundsRef::Own(time_bounds);
        self
    }

    /// Declares the event, owned by `owner`: registers it under its name and
    /// returns the event handle and the owner's authority.
    pub fn declare(self, owner: &Principal) -> Result<Declared<A, R>, DeclareError> {
        registry::validate_name(&self.name)?;
        let name: Arc<str> = Arc::from(self.name.as_str());
        let original_core = self.original.as_ref().map(|handler| {
            Arc::new(BindingCore {
                handler: Arc::clone(handler),
                cancel: false,
                spawn: None,
                quantum: None,
                id: BindingId::ORIGINAL,
                stats: Arc::new(BindingStats::default()),
                alive: owner.alive_token(),
            })
        });
        let writer = WriterState {
            original: original_core,
            original_placement: Placement::default(),
            original_enabled: true,
            bindings: BTreeMap::new(),
            constrained: 0,
            asynchronous: 0,
            authorizer: None,
            result: self.result,
            default: self.default,
            executor: self.executor,
            quantum: self.quantum,
            on_overrun: None,
            retired: false,
        };
        let placeholder = Arc::new(Plan {
            unkeyed: Vec::new(),
            keyed: Arc::new(KeyedIndex::default()),
            ranks: RankScheme::BandAndId,
            settings: Settings {
                key_of: None,
                result: None,
                default: None,
                executor: None,
                has_async: false,
                defer: None,
                retired: false,
                event: Arc::clone(&name),
                time_bounds: self.time_bounds.clone(),
                on_overrun: None,
            },
        });
        let inner = Arc::new(EventInner {
            fast: AtomicBool::new(false),
            fast_raises: AtomicU64::new(0),
            original: self.original,
            plan: SnapshotCell::new(placeholder),
            general_raises: AtomicU64::new(0),
            binding_count: AtomicUsize::new(0),
            name,
            owner: owner.clone(),
            key_of: self.key_of,
            defer: self.defer,
            time_bounds: self.time_bounds,
            writer: Mutex::new(writer),
        });
        {
            let writer = inner.writer.lock();
            let plan = inner.compile(&writer);
            drop(inner.publish(&writer, plan));
        }
        let as_registered: Arc<dyn RegisteredEvent> = inner.clone();
        registry::register(Arc::downgrade(&as_registered), &inner.name)?;
        let event = Event { inner };
        crate::observe::declared(&event);
        let authority = EventAuthority {
            event: event.clone(),
        };
        Ok((event, authority))
    }
}

impl<A: Clone + Send + 'static, R: 'static> EventBuilder<A, R> {
    /// Makes the event asynchronous: a raise clones the arguments, takes the
    /// current plan, and queues the whole dispatch as one job on the
    /// executor; inside that job asynchronous bindings run inline. The raise
    /// returns the default (handler or result) if the event has one, else
    /// [`RaiseError::Deferred`].
    pub fn asynchronous(mut self) -> Self {
        self.defer = Some(defer_dispatch::<A, R>);
        self
    }
}

impl<A: 'static, R: 'static> Event<A, R> {
    /// Starts declaring an event named `name` (dotted, e.g. `Strand.Block`).
    pub fn builder(name: &str) -> EventBuilder<A, R> {
        EventBuilder {
            name: String::from(name),
            original: None,
            key_of: None,
            result: None,
            default: None,
            quantum: None,
            defer: None,
            executor: None,
            time_bounds: TimeBoundsRef::Global,
        }
    }

    /// Declares an event with an original handler and nothing else.
    pub fn declare(
        name: &str,
        owner: &Principal,
        original: impl Fn(&A) -> R + Send + Sync + 'static,
    ) -> Result<Declared<A, R>, DeclareError> {
        Event::builder(name).original(original).declare(owner)
    }

    /// Raises the event.
    ///
    /// Runs, in the event's order (see [`order`](crate::order)), every
    /// binding whose guards all hold, stopping after a `Cancel` binding that
    /// fired. The result is the fold of the results of the handlers that ran
    /// synchronously, by the result handler (`combine(acc, next)`, starting
    /// from the first result) or, without one, the last handler's result.
    /// If no handler ran synchronously, the default handler/result supplies
    /// it; without a default the raise returns
    /// [`RaiseError::NoHandlerFired`], or [`RaiseError::Deferred`] if
    /// handlers were queued on the executor.
    ///
    /// Never waits for writers and takes no lock an interrupt handler could
    /// deadlock on: safe to call from interrupt handlers. When the original
    /// handler is the only handler, this is one atomic load and a direct
    /// call.
    #[inline]
    pub fn raise(&self, args: &A) -> Result<R, RaiseError> {
        self.inner.raise(args)
    }

    /// Starts building a binding of `handler` to this event.
    pub fn binding(
        &self,
        handler: impl Fn(&A) -> R + Send + Sync + 'static,
    ) -> BindingBuilder<'_, A, R> {
        BindingBuilder::new(self, Arc::new(handler))
    }

    /// Installs an unguarded `Middle` binding for `principal`; shorthand for
    /// `self.binding(handler).install(principal)`.
    pub fn install(
        &self,
        principal: &Principal,
        handler: impl Fn(&A) -> R + Send + Sync + 'static,
    ) -> Result<Binding<A, R>, InstallError> {
        self.binding(handler).install(principal)
    }

    /// The event's name.
    pub fn name(&self) -> &str {
        &self.inner.name
    }

    /// The owner's principal id.
    pub fn owner(&self) -> PrincipalId {
        self.inner.owner.id()
    }

    /// Raises so far (see [`EventInfo::raises`] for precision).
    pub fn raises(&self) -> u64 {
        self.inner.raises()
    }

    /// The event as the registry lists it.
    pub fn info(&self) -> EventInfo {
        self.inner.info()
    }

    /// The bindings in dispatch order, including the original handler.
    pub fn bindings(&self) -> Vec<BindingInfo> {
        self.inner.binding_infos()
    }
}

/// The owner's capability over one event.
///
/// Invariants: given only to the declarer by [`EventBuilder::declare`]; not
/// `Clone`. Every change it makes is atomic with respect to raises (it
/// publishes a new plan). Its methods take the event's writer lock: call
/// them from thread context.
pub struct EventAuthority<A: 'static, R: 'static> {
    event: Event<A, R>,
}

impl<A: 'static, R: 'static> fmt::Debug for EventAuthority<A, R> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("EventAuthority")
            .field("event", &&*self.event.inner.name)
            .finish()
    }
}

impl<A: 'static, R: 'static> EventAuthority<A, R> {
    /// A handle to the event.
    pub fn event(&self) -> Event<A, R> {
        self.event.clone()
    }

    fn inner(&self) -> &EventInner<A, R> {
        &self.event.inner
    }

    /// Uninstalls any binding of this event.
    pub fn uninstall(&self, id: BindingId) -> Result<(), BindingError> {
        self.inner().uninstall(id)
    }

    /// Registers the authorizer consulted for installs by principals other
    /// than the owner (replacing any previous one).
    pub fn set_authorizer(
        &self,
        authorizer: impl Fn(&InstallRequest<'_>) -> Decision<A> + Send + Sync + 'static,
    ) {
        let authorizer: Authorizer<A> = Arc::new(authorizer);
        self.inner()
            .set(false, |writer| writer.authorizer = Some(authorizer));
    }

    /// Removes the authorizer: only the owner may install again.
    pub fn clear_authorizer(&self) {
        self.inner().set(false, |writer| writer.authorizer = None);
    }

    /// Adds a guard to an installed binding, checked before its other
    /// guards.
    pub fn impose_guard(
        &self,
        id: BindingId,
        guard: impl Fn(&A) -> bool + Send + Sync + 'static,
    ) -> Result<(), BindingError> {
        self.inner().impose_guard(id, alloc::boxed::Box::new(guard))
    }

    /// Atomically replaces a binding's handler (hot swap); see
    /// [`Binding::swap_handler`].
    pub fn swap_handler(
        &self,
        id: BindingId,
        handler: impl Fn(&A) -> R + Send + Sync + 'static,
    ) -> Result<(), BindingError> {
        self.inner().swap_handler(id, Arc::new(handler))
    }

    /// Sets the quantum (clock ticks) for ephemeral bindings. It is
    /// recorded on each binding when it is installed: changing it affects
    /// later installs only. `None` refuses new ephemeral bindings.
    pub fn set_quantum(&self, ticks: Option<u64>) {
        self.inner().set(false, |writer| writer.quantum = ticks);
    }

    /// Sets the result handler: the raise's result is
    /// `combine(...combine(combine(r1, r2), r3)..., rn)` over the results of
    /// the handlers that ran synchronously, in order.
    pub fn set_result_handler(&self, combine: impl Fn(R, R) -> R + Send + Sync + 'static) {
        let combine: ResultHandler<R> = Arc::new(combine);
        self.inner()
            .set(false, |writer| writer.result = Some(combine));
    }

    /// Removes the result handler: the last handler's result is returned.
    pub fn clear_result_handler(&self) {
        self.inner().set(false, |writer| writer.result = None);
    }

    /// Sets the default handler, called with the arguments when no handler
    /// ran synchronously.
    pub fn set_default_handler(&self, handler: impl Fn(&A) -> R + Send + Sync + 'static) {
        let handler: Handler<A, R> = Arc::new(handler);
        self.inner()
            .set(false, |writer| writer.default = Some(handler));
    }

    /// Sets a default result, returned (cloned) when no handler ran
    /// synchronously.
    pub fn set_default_result(&self, result: R)
    where
        R: Clone + Send + Sync,
    {
        self.set_default_handler(move |_| result.clone());
    }

    /// Removes the default handler or result.
    pub fn clear_default(&self) {
        self.inner().set(false, |writer| writer.default = None);
    }

    /// The original handler, e.g. for a replacement to call through to.
    pub fn original(&self) -> Option<Handler<A, R>> {
        self.inner().original.clone()
    }

    /// Takes the original handler out of the dispatch (`false`) or puts it
    /// back (`true`), keeping its place in the order.
    pub fn set_original_enabled(&self, enabled: bool) {
        self.inner()
            .set(true, |writer| writer.original_enabled = enabled);
    }

    /// Sets (or with `None` removes) the event's own executor.
    pub fn set_executor(&self, executor: Option<Arc<dyn Executor>>) {
        self.inner().set(false, |writer| writer.executor = executor);
    }

    /// Sets the callback told about every quantum overrun of this event's
    /// ephemeral handlers; it may run in interrupt context.
    pub fn set_overrun_handler(&self, handler: impl Fn(&crate::Overrun) + Send + Sync + 'static) {
        let handler: OverrunHandler = Arc::new(handler);
        self.inner()
            .set(false, |writer| writer.on_overrun = Some(handler));
    }

    /// The bindings in dispatch order, including the original handler.
    pub fn bindings(&self) -> Vec<BindingInfo> {
        self.inner().binding_infos()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::test_support::principal;

    fn is_fast<A, R>(event: &Event<A, R>) -> bool {
        event.inner.fast.load(Ordering::Acquire)
    }

    #[test]
    fn fast_path_is_used_exactly_while_the_original_is_alone() {
        let owner = principal("Unit.Fast");
        let (event, authority) = Event::<u32, u32>::declare("Unit.Fast", &owner, |&x| x).unwrap();
        assert!(is_fast(&event));
        let binding = event.install(&owner, |&x| x + 1).unwrap();
        assert!(!is_fast(&event));
        assert_eq!(event.raise(&1), Ok(2));
        binding.uninstall().unwrap();
        assert!(is_fast(&event));
        assert_eq!(event.raise(&1), Ok(1));
        // Settings that cannot change the original's lone result keep it.
        authority.set_result_handler(|a, b| a + b);
        authority.set_default_result(9);
        assert!(is_fast(&event));
        authority.set_original_enabled(false);
        assert!(!is_fast(&event));
        assert_eq!(event.raise(&1), Ok(9));
        authority.set_original_enabled(true);
        assert!(is_fast(&event));

        let (no_original, _a) = Event::<u32, u32>::builder("Unit.NoOriginal")
            .declare(&owner)
            .unwrap();
        assert!(!is_fast(&no_original));
        let (deferred, _b) = Event::<u32, u32>::builder("Unit.Deferred")
            .original(|&x| x)
            .asynchronous()
            .declare(&owner)
            .unwrap();
        assert!(!is_fast(&deferred));
    }

    #[test]
    fn raise_never_waits_for_a_writer_on_its_cpu() {
        // An interrupt handler raising while the code it interrupted is in
        // the middle of an update: writer lock held, one slot write-locked.
        let owner = principal("Unit.Interrupt");
        let (event, _authority) = Event::<u32, u32>::builder("Unit.Interrupt")
            .result_handler(|a, b| a + b)
            .declare(&owner)
            .unwrap();
        let _b = event.install(&owner, |&x| x).unwrap();
        let _c = event.install(&owner, |&x| x * 10).unwrap();
        let writer = event.inner.writer.lock();
        for slot in 0..2 {
            let held = event.inner.plan.hold_slot_for_test(slot);
            assert_eq!(event.raise(&2), Ok(22));
            drop(held);
        }
        drop(writer);
    }

    #[test]
    fn failed_install_publishes_nothing() {
        let owner = principal("Unit.NoPublish");
        let (event, _authority) =
            Event::<u32, u32>::declare("Unit.NoPublish", &owner, |&x| x).unwrap();
        let before = event.inner.plan.load();
        assert!(event.binding(|&x| x).key(1).install(&owner).is_err());
        assert!(event.binding(|&x| x).ephemeral().install(&owner).is_err());
        assert!(Arc::ptr_eq(&before, &event.inner.plan.load()));
        assert!(is_fast(&event));
        assert_eq!(owner.alive_binding_objects(), 1, "only the original");
    }
}
