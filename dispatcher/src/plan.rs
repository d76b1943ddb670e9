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

use crate::binding::{BindingCore, Handler};
use crate::error::RaiseError;
use crate::executor::{Executor, global_executor};
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

/// One binding in a plan, with its rank in the event's total order.
pub(crate) struct Step<A, R> {
    pub(crate) rank: u32,
    pub(crate) core: Arc<BindingCore<A, R>>,
}

pub(crate) type KeyedIndex<A, R> = HashMap<u64, Vec<Step<A, R>>, BuildHasherDefault<KeyHasher>>;

/// Everything a raise needs, frozen at publication time.
pub(crate) struct Plan<A, R> {
    /// Unkeyed bindings (and the original handler, if enabled), by rank.
    pub(crate) unkeyed: Box<[Step<A, R>]>,
    /// Keyed bindings by key, each list by rank.
    pub(crate) keyed: KeyedIndex<A, R>,
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

/// What a dispatch has produced so far.
struct Fold<R> {
    result: Option<R>,
    deferred: usize,
}

impl<A: 'static, R: 'static> Plan<A, R> {
    /// The executor for this event, if any.
    pub(crate) fn executor(&self) -> Option<&dyn Executor> {
        match &self.executor {
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
        if self.retired {
            return Err(RaiseError::Retired);
        }
        let executor = if self.has_async && !inline_async {
            Some(self.executor().ok_or(RaiseError::NoExecutor)?)
        } else {
            None
        };
        let keyed: &[Step<A, R>] = match self.key_of {
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
            for step in self.unkeyed.iter() {
                if self.visit(step, args, executor, &mut fold) {
                    break;
                }
            }
        } else {
            let (mut unkeyed, mut keyed) =
                (self.unkeyed.iter().peekable(), keyed.iter().peekable());
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
        match &self.default {
            Some(default) => Ok(default(args)),
            None if deferred > 0 => Err(RaiseError::Deferred { jobs: deferred }),
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
        let core = &step.core;
        if !core.guards_hold(args) {
            return false;
        }
        match (core.spawn, executor) {
            (Some(spawn), Some(executor)) => {
                spawn(self, core, args, executor);
                fold.deferred += 1;
            }
            _ => {
                let result = self.run_handler(core, args);
                fold.result = Some(match fold.result.take() {
                    None => result,
                    Some(previous) => match &self.result {
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
        let bounds = self.time_bounds.get();
        let Some(clock) = bounds.clock() else {
            // Installing an ephemeral binding requires a clock, and clocks
            // are never removed; run untimed if that ever changes.
            return (core.handler)(args);
        };
        let started = clock.now();
        let deadline = started.saturating_add(quantum);
        let ticket = bounds.enter(CallRecord {
            event: &self.event,
            binding: core.id,
            installer: core.installer(),
            started,
            deadline,
            stats: &core.stats,
            on_overrun: self.on_overrun.as_ref(),
        });
        let result = (core.handler)(args);
        let ended = clock.now();
        let reported_by_timer = ticket.is_some_and(|ticket| bounds.leave(ticket));
        if ended > deadline && !reported_by_timer {
            core.stats.overruns.fetch_add(1, Ordering::Relaxed);
            if let Some(on_overrun) = &self.on_overrun {
                on_overrun(&crate::time_bounds::Overrun {
                    event: Arc::clone(&self.event),
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
    use core::hash::BuildHasher;

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
}
