//! The compiled dispatch plan of one event, and the general raise path.
//!
//! A [`Plan`] is immutable: writers build a new one and publish it through
//! the event's [`SnapshotCell`](crate::snapshot::SnapshotCell). It holds the
//! bindings in their total order (see [`order`](crate::order)), split into
//! the unkeyed ones and a hash index from key to the bindings with that key;
//! each entry carries its rank in the total order so that a raise can merge
//! the two lists without sorting.

use alloc::boxed::Box;
use alloc::sync::Arc;
use alloc::vec::Vec;
use core::hash::{BuildHasherDefault, Hasher};
use core::sync::atomic::Ordering;

use hashbrown::HashMap;

use crate::binding::{BindingCore, BindingId, GuardSet, Handler};
use crate::error::RaiseError;
use crate::executor::{Executor, global_executor};
use crate::order::Position;
use crate::time_bounds::{CallRecord, OverrunHandler, TimeBoundsRef};

/// Folds handler results: called with the accumulated result and the next
/// handler's result, returns the new accumulated result.
pub type ResultHandler<R> = Arc<dyn Fn(R, R) -> R + Send + Sync>;

/// Queues a whole dispatch of an asynchronous event; instantiated where
/// `A: Clone + Send` is known.
pub(crate) type DeferFn<A, R> = fn(&Arc<Plan<A, R>>, &A, &dyn Executor);

/// A cheap hasher for `u64` keys: one 64x64->128 multiply, folded, so that
/// both the low bits (bucket) and the high bits (hashbrown's tag) depend on
/// every bit of the key.
#[derive(Clone, Copy, Default)]
pub(crate) struct KeyHasher(u64);

impl Hasher for KeyHasher {
    #[inline]
    fn write(&mut self, bytes: &[u8]) {
        for &byte in bytes {
            self.write_u64(self.0.rotate_left(8) ^ u64::from(byte));
        }
    }

    #[inline]
    fn write_u64(&mut self, key: u64) {
        const MULTIPLIER: u128 = 0x9e37_79b9_7f4a_7c15;
        let wide = u128::from(key ^ self.0) * MULTIPLIER;
        self.0 = (wide as u64) ^ ((wide >> 64) as u64);
    }

    #[inline]
    fn finish(&self) -> u64 {
        self.0
    }
}

/// One binding in a plan, with its rank in the event's total order and its
/// guards (kept here, one pointer away, because they are evaluated for
/// every raise).
pub(crate) struct Step<A, R> {
    pub(crate) rank: u64,
    pub(crate) guards: Option<Arc<GuardSet<A>>>,
    pub(crate) core: Arc<BindingCore<A, R>>,
}

impl<A, R> Clone for Step<A, R> {
    fn clone(&self) -> Self {
        Step {
            rank: self.rank,
            guards: self.guards.clone(),
            core: Arc::clone(&self.core),
        }
    }
}

/// A run of consecutive steps, shared between successive plans.
pub(crate) type Chunk<A, R> = Arc<[Step<A, R>]>;

/// Most steps in one chunk. An update copies one chunk (cloning at most
/// this many binding references) and shares the others, so installing or
/// uninstalling costs `O(CHUNK + n / CHUNK)` reference-count updates instead
/// of `O(n)`.
pub(crate) const CHUNK: usize = 16;

pub(crate) type KeyedIndex<A, R> = HashMap<u64, Chunk<A, R>, BuildHasherDefault<KeyHasher>>;

/// How ranks are assigned.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum RankScheme {
    /// No binding has before/after constraints, so the total order is
    /// sorted by `(position, id)` and the rank is [`band_rank`]. Ranks are
    /// then stable across updates, which allows updating a plan by copying
    /// one chunk.
    BandAndId,
    /// Constraints exist: the rank is the index in the computed total
    /// order, and every update recompiles the plan.
    TotalIndex,
}

/// The rank of a binding when there are no before/after constraints.
pub(crate) fn band_rank(position: Position, id: BindingId) -> u64 {
    ((position as u64) << 62) | id.as_u64()
}

/// Splits an ordered list of steps into chunks.
pub(crate) fn chunk_up<A, R>(steps: Vec<Step<A, R>>) -> Vec<Chunk<A, R>> {
    let mut chunks = Vec::with_capacity(steps.len().div_ceil(CHUNK));
    let mut steps = steps.into_iter();
    loop {
        let chunk: Vec<Step<A, R>> = steps.by_ref().take(CHUNK).collect();
        if chunk.is_empty() {
            return chunks;
        }
        chunks.push(Arc::from(chunk));
    }
}

/// Where a step of rank `rank` is, or would go: (chunk, index in chunk).
fn locate<A, R>(chunks: &[Chunk<A, R>], rank: u64) -> (usize, usize) {
    let chunk = chunks
        .partition_point(|chunk| chunk.last().is_some_and(|last| last.rank < rank))
        .min(chunks.len().saturating_sub(1));
    let index = chunks
        .get(chunk)
        .map_or(0, |chunk| chunk.partition_point(|step| step.rank < rank));
    (chunk, index)
}

/// `chunks` with chunk `at` replaced by `replacement` (zero, one or two
/// chunks); the other chunks are shared.
fn splice<A, R>(
    chunks: &[Chunk<A, R>],
    at: usize,
    mut replacement: Vec<Step<A, R>>,
) -> Vec<Chunk<A, R>> {
    let mut out = Vec::with_capacity(chunks.len() + 1);
    out.extend(chunks[..at].iter().cloned());
    if replacement.len() > CHUNK {
        let back = replacement.split_off(replacement.len() / 2);
        out.push(Arc::from(replacement));
        out.push(Arc::from(back));
    } else if !replacement.is_empty() {
        out.push(Arc::from(replacement));
    }
    out.extend(chunks.get(at + 1..).into_iter().flatten().cloned());
    out
}

/// `chunks` with `step` inserted at its rank.
pub(crate) fn insert_step<A, R>(chunks: &[Chunk<A, R>], step: Step<A, R>) -> Vec<Chunk<A, R>> {
    if chunks.is_empty() {
        return alloc::vec![Arc::from(alloc::vec![step])];
    }
    let (at, index) = locate(chunks, step.rank);
    let old = &chunks[at];
    let mut merged = Vec::with_capacity(old.len() + 1);
    merged.extend(old[..index].iter().cloned());
    merged.push(step);
    merged.extend(old[index..].iter().cloned());
    splice(chunks, at, merged)
}

/// `chunks` with the step of rank `rank` replaced by `with` (or removed if
/// `with` is `None`); `None` if there is no such step.
pub(crate) fn update_step<A, R>(
    chunks: &[Chunk<A, R>],
    rank: u64,
    with: Option<Step<A, R>>,
) -> Option<Vec<Chunk<A, R>>> {
    let (at, index) = locate(chunks, rank);
    let old = chunks.get(at)?;
    if old.get(index)?.rank != rank {
        return None;
    }
    let mut updated: Vec<Step<A, R>> = Vec::with_capacity(old.len());
    updated.extend(old[..index].iter().cloned());
    updated.extend(with);
    updated.extend(old[index + 1..].iter().cloned());
    // Keep chunks from shrinking to crumbs: merge a small one with its
    // successor when both fit in one chunk.
    if updated.len() < CHUNK / 4
        && let Some(next) = chunks
            .get(at + 1)
            .filter(|next| updated.len() + next.len() <= CHUNK)
    {
        updated.extend(next.iter().cloned());
        let mut merged = splice(chunks, at, updated);
        merged.remove(at + 1);
        return Some(merged);
    }
    Some(splice(chunks, at, updated))
}

/// The plan's settings: everything except the steps.
pub(crate) struct Settings<A, R> {
    pub(crate) key_of: Option<fn(&A) -> u64>,
    pub(crate) result: Option<ResultHandler<R>>,
    pub(crate) default: Option<Handler<A, R>>,
    /// The event's own executor (else the global one is used).
    pub(crate) executor: Option<Arc<dyn Executor>>,
    /// Some binding is asynchronous.
    pub(crate) has_async: bool,
    /// The event is asynchronous: the whole dispatch is queued.
    pub(crate) defer: Option<DeferFn<A, R>>,
    /// The owner was revoked: nothing runs.
    pub(crate) retired: bool,
    pub(crate) event: Arc<str>,
    pub(crate) time_bounds: TimeBoundsRef,
    pub(crate) on_overrun: Option<OverrunHandler>,
}

/// Everything a raise needs, frozen at publication time.
pub(crate) struct Plan<A, R> {
    /// Unkeyed bindings (and the original handler, if enabled), by rank.
    pub(crate) unkeyed: Vec<Chunk<A, R>>,
    /// Keyed bindings by key, each list by rank.
    pub(crate) keyed: Arc<KeyedIndex<A, R>>,
    pub(crate) ranks: RankScheme,
    pub(crate) settings: Settings<A, R>,
}

/// What a dispatch has produced so far.
struct Fold<R> {
    result: Option<R>,
    deferred: usize,
}

impl<A: 'static, R: 'static> Plan<A, R> {
    /// The executor for this event, if any.
    pub(crate) fn executor(&self) -> Option<&dyn Executor> {
        match &self.settings.executor {
            Some(own) => Some(&**own),
            None => global_executor().map(|global| &**global),
        }
    }

    /// Runs the event's handlers for `args` (the general raise path). With
    /// `inline_async`, asynchronous handlers run synchronously (used when the
    /// dispatch itself already runs in a job).
    pub(crate) fn dispatch(
        self: &Arc<Self>,
        args: &A,
        inline_async: bool,
    ) -> Result<R, RaiseError> {
        let settings = &self.settings;
        if settings.retired {
            return Err(RaiseError::Retired);
        }
        let executor = if settings.has_async && !inline_async {
            Some(self.executor().ok_or(RaiseError::NoExecutor)?)
        } else {
            None
        };
        let keyed: &[Step<A, R>] = match settings.key_of {
            Some(key_of) if !self.keyed.is_empty() => {
                self.keyed.get(&key_of(args)).map_or(&[], |steps| steps)
            }
            _ => &[],
        };
        let mut fold = Fold {
            result: None,
            deferred: 0,
        };
        if keyed.is_empty() {
            'chunks: for chunk in &self.unkeyed {
                for step in chunk.iter() {
                    if self.visit(step, args, executor, &mut fold) {
                        break 'chunks;
                    }
                }
            }
        } else {
            let mut unkeyed = self
                .unkeyed
                .iter()
                .flat_map(|chunk| chunk.iter())
                .peekable();
            let mut keyed = keyed.iter().peekable();
            loop {
                let step = match (unkeyed.peek(), keyed.peek()) {
                    (Some(u), Some(k)) if u.rank < k.rank => unkeyed.next(),
                    (_, Some(_)) => keyed.next(),
                    (Some(_), None) => unkeyed.next(),
                    (None, None) => None,
                };
                let Some(step) = step else { break };
                if self.visit(step, args, executor, &mut fold) {
                    break;
                }
            }
        }
        match fold.result {
            Some(result) => Ok(result),
            None => self.default_or(args, fold.deferred),
        }
    }

    /// The result when no synchronous handler produced one.
    pub(crate) fn default_or(&self, args: &A, deferred: usize) -> Result<R, RaiseError> {
        match &self.settings.default {
            Some(default) => Ok(default(args)),
            None if deferred > 0 => Err(RaiseError::Deferred),
            None => Err(RaiseError::NoHandlerFired),
        }
    }

    /// Considers one binding; returns `true` when the dispatch must stop
    /// (a cancelling binding fired).
    #[inline(always)]
    fn visit(
        self: &Arc<Self>,
        step: &Step<A, R>,
        args: &A,
        executor: Option<&dyn Executor>,
        fold: &mut Fold<R>,
    ) -> bool {
        if let Some(guards) = &step.guards
            && !guards.hold(args)
        {
            return false;
        }
        let core = &step.core;
        match (core.spawn, executor) {
            (Some(spawn), Some(executor)) => {
                spawn(self, core, args, executor);
                fold.deferred += 1;
            }
            _ => {
                let result = self.run_handler(core, args);
                fold.result = Some(match fold.result.take() {
                    None => result,
                    Some(previous) => match &self.settings.result {
                        Some(combine) => combine(previous, result),
                        None => result,
                    },
                });
            }
        }
        core.cancel
    }

    /// Calls one handler, counting the call and enforcing its time bound.
    #[inline(always)]
    pub(crate) fn run_handler(&self, core: &BindingCore<A, R>, args: &A) -> R {
        let calls = &core.stats.calls;
        calls.store(
            calls.load(Ordering::Relaxed).wrapping_add(1),
            Ordering::Relaxed,
        );
        match core.quantum {
            None => (core.handler)(args),
            Some(quantum) => self.run_timed(core, args, quantum),
        }
    }

    #[inline(never)]
    #[cold]
    fn run_timed(&self, core: &BindingCore<A, R>, args: &A, quantum: u64) -> R {
        let settings = &self.settings;
        let bounds = settings.time_bounds.get();
        let Some(clock) = bounds.clock() else {
            // Installing an ephemeral binding requires a clock, and clocks
            // are never removed; run untimed if that ever changes.
            return (core.handler)(args);
        };
        let started = clock.now();
        let deadline = started.saturating_add(quantum);
        let ticket = bounds.enter(CallRecord {
            event: &settings.event,
            binding: core.id,
            installer: core.installer(),
            started,
            deadline,
            stats: &core.stats,
            on_overrun: settings.on_overrun.as_ref(),
        });
        let result = (core.handler)(args);
        let ended = clock.now();
        let reported_by_timer = ticket.is_some_and(|ticket| bounds.leave(ticket));
        if ended > deadline && !reported_by_timer {
            core.stats.overruns.fetch_add(1, Ordering::Relaxed);
            if let Some(on_overrun) = &settings.on_overrun {
                on_overrun(&crate::time_bounds::Overrun {
                    event: Arc::clone(&settings.event),
                    binding: core.id,
                    installer: core.installer(),
                    started,
                    deadline,
                    observed_at: ended,
                    detected_by: crate::time_bounds::Detection::Return,
                });
            }
        }
        result
    }
}

/// Queues one whole dispatch of an asynchronous event.
pub(crate) fn defer_dispatch<A: Clone + Send + 'static, R: 'static>(
    plan: &Arc<Plan<A, R>>,
    args: &A,
    executor: &dyn Executor,
) {
    let plan = Arc::clone(plan);
    let args = args.clone();
    executor.spawn(Box::new(move || {
        let _result = plan.dispatch(&args, true);
    }));
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::binding::BindingStats;
    use core::hash::BuildHasher;
    use proptest::prelude::*;
    use std::collections::BTreeMap;

    #[test]
    fn key_hasher_spreads_page_aligned_keys() {
        let build = BuildHasherDefault::<KeyHasher>::default();
        let hashes: std::collections::HashSet<u64> = (0..4096u64)
            .map(|page| build.hash_one(page << 12) & 0xfff)
            .collect();
        // Page-aligned keys must not collapse onto a few buckets.
        assert!(
            hashes.len() > 2000,
            "only {} distinct low bits",
            hashes.len()
        );
        let tags: std::collections::HashSet<u64> = (0..4096u64)
            .map(|page| build.hash_one(page) >> 57)
            .collect();
        assert_eq!(tags.len(), 128, "top 7 bits must vary");
    }

    fn step(rank: u64, tag: u64) -> Step<(), u64> {
        let principal = crate::test_support::principal("Unit.Chunks");
        Step {
            rank,
            guards: None,
            core: Arc::new(BindingCore {
                handler: Arc::new(move |_: &()| tag),
                cancel: false,
                spawn: None,
                quantum: None,
                id: BindingId::from_raw(rank),
                stats: Arc::new(BindingStats::default()),
                alive: principal.alive_token(),
            }),
        }
    }

    fn flatten(chunks: &[Chunk<(), u64>]) -> Vec<(u64, u64)> {
        chunks
            .iter()
            .flat_map(|chunk| chunk.iter())
            .map(|step| (step.rank, (step.core.handler)(&())))
            .collect()
    }

    #[derive(Clone, Debug)]
    enum ChunkOp {
        Insert(u64),
        Remove(u64),
        Replace(u64),
    }

    proptest! {
        #![proptest_config(ProptestConfig { cases: 64, ..ProptestConfig::default() })]

        /// Inserting, removing and replacing steps in the chunked list
        /// behaves like an ordered map, and chunks stay non-empty and small.
        #[test]
        fn chunked_steps_behave_like_an_ordered_map(ops in prop::collection::vec(
            prop_oneof![
                3 => (0u64..400).prop_map(ChunkOp::Insert),
                1 => (0u64..400).prop_map(ChunkOp::Remove),
                1 => (0u64..400).prop_map(ChunkOp::Replace),
            ],
            1..300,
        )) {
            let mut model: BTreeMap<u64, u64> = BTreeMap::new();
            let mut chunks: Vec<Chunk<(), u64>> = chunk_up(Vec::new());
            for (tag, op) in ops.into_iter().enumerate() {
                let tag = tag as u64;
                match op {
                    ChunkOp::Insert(rank) if !model.contains_key(&rank) => {
                        chunks = insert_step(&chunks, step(rank, tag));
                        model.insert(rank, tag);
                    }
                    ChunkOp::Insert(_) => {}
                    ChunkOp::Remove(rank) => {
                        let updated = update_step(&chunks, rank, None);
                        prop_assert_eq!(updated.is_some(), model.remove(&rank).is_some());
                        if let Some(updated) = updated {
                            chunks = updated;
                        }
                    }
                    ChunkOp::Replace(rank) => {
                        let updated = update_step(&chunks, rank, Some(step(rank, tag)));
                        prop_assert_eq!(updated.is_some(), model.contains_key(&rank));
                        if let Some(updated) = updated {
                            chunks = updated;
                            model.insert(rank, tag);
                        }
                    }
                }
                prop_assert!(chunks.iter().all(|chunk| !chunk.is_empty() && chunk.len() <= CHUNK));
                prop_assert_eq!(flatten(&chunks), model.iter().map(|(&r, &t)| (r, t)).collect::<Vec<_>>());
            }
            // Rebuilding from scratch gives the same sequence.
            let all: Vec<Step<(), u64>> = chunks.iter().flat_map(|c| c.iter().cloned()).collect();
            prop_assert_eq!(flatten(&chunk_up(all)), flatten(&chunks));
        }
    }
}
