//! The dispatch table of one event, and how a raise runs it.
//!
//! A [`Table`] is immutable once published (through
//! [`rcu::Published`](crate::rcu)): a flat array of [`Step`]s in the
//! event's total order (see [`order`](crate::order)), a hash index from key
//! to the keyed steps, and the result and default handlers. Writers build a
//! new table for every change. A raise reads one pointer and walks the
//! array: per binding one indirect call (guards and handler specialised
//! into one object, see [`step`](crate::step)). Tables whose steps are all
//! synchronous, untimed and non-cancelling, with no keyed binding, are
//! *simple* and take a loop with nothing else in it.

use alloc::boxed::Box;
use alloc::sync::Arc;
use core::hash::{BuildHasherDefault, Hasher};

use hashbrown::HashMap;

use crate::binding::{BindingId, BindingStats, Handler};
use crate::error::RaiseError;
use crate::executor::{Executor, global_executor};
use crate::principal::PrincipalId;
use crate::rcu::Pinned;
use crate::step::Callable;
use crate::time_bounds::{CallRecord, Micros, OverrunHandler, TimeBoundsRef};

/// Folds handler results: called with the accumulated result and the next
/// handler's result, returns the new accumulated result.
pub type ResultHandler<R> = Arc<dyn Fn(R, R) -> R + Send + Sync>;

/// Queues a whole dispatch of an asynchronous event; instantiated where
/// `A: Clone + Send` is known.
pub(crate) type DeferFn<A, R> = fn(Table<A, R>, &A, &dyn Executor);

/// Spawns one asynchronous handler call; instantiated where `A: Clone +
/// Send` is known.
pub(crate) type SpawnFn<A, R> = fn(&Step<A, R>, &Arc<Settings<A, R>>, &A, &dyn Executor);

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

/// Keyed steps by key, each list by rank.
pub(crate) type KeyedIndex<A, R> = HashMap<u64, Box<[Step<A, R>]>, BuildHasherDefault<KeyHasher>>;

/// What a step needs beyond its callable object: asynchronous and
/// time-bounded bindings only.
pub(crate) struct Extra<A, R> {
    pub(crate) spawn: Option<SpawnFn<A, R>>,
    pub(crate) quantum: Option<Micros>,
    pub(crate) id: BindingId,
    pub(crate) installer: PrincipalId,
    pub(crate) stats: Arc<BindingStats>,
}

/// One binding in a table.
pub(crate) struct Step<A, R> {
    pub(crate) call: Pinned<dyn Callable<A, R>>,
    /// Position in the event's total order (keyed and unkeyed together).
    pub(crate) rank: u64,
    pub(crate) cancel: bool,
    pub(crate) extra: Option<Arc<Extra<A, R>>>,
}

impl<A, R> Clone for Step<A, R> {
    fn clone(&self) -> Self {
        Step {
            call: self.call.clone(),
            rank: self.rank,
            cancel: self.cancel,
            extra: self.extra.clone(),
        }
    }
}

/// The table's rarely used settings.
pub(crate) struct Settings<A, R> {
    pub(crate) key_of: Option<fn(&A) -> u64>,
    /// The event's own executor (else the global one is used).
    pub(crate) executor: Option<Arc<dyn Executor>>,
    /// Some binding is asynchronous.
    pub(crate) has_async: bool,
    /// The event is asynchronous: the whole dispatch is queued.
    pub(crate) defer: Option<DeferFn<A, R>>,
    pub(crate) event: Arc<str>,
    pub(crate) time_bounds: TimeBoundsRef,
    pub(crate) on_overrun: Option<OverrunHandler>,
}

/// Everything a raise needs, frozen at publication time.
pub(crate) struct Table<A, R> {
    /// Unkeyed steps (and the original handler, if enabled), by rank.
    pub(crate) steps: Arc<[Step<A, R>]>,
    /// `steps` only: no keyed, asynchronous, timed or cancelling step.
    pub(crate) simple: bool,
    /// The owner was revoked: nothing runs.
    pub(crate) retired: bool,
    pub(crate) result: Option<ResultHandler<R>>,
    pub(crate) default: Option<Handler<A, R>>,
    pub(crate) keyed: Option<Arc<KeyedIndex<A, R>>>,
    pub(crate) settings: Arc<Settings<A, R>>,
}

impl<A, R> Clone for Table<A, R> {
    fn clone(&self) -> Self {
        Table {
            steps: Arc::clone(&self.steps),
            simple: self.simple,
            retired: self.retired,
            result: self.result.clone(),
            default: self.default.clone(),
            keyed: self.keyed.clone(),
            settings: Arc::clone(&self.settings),
        }
    }
}

/// What a dispatch has produced so far.
struct Fold<R> {
    result: Option<R>,
    deferred: usize,
}

impl<A: 'static, R: 'static> Table<A, R> {
    /// Runs the raise (inside a read section).
    #[inline(always)]
    pub(crate) fn raise(&self, args: &A) -> Result<R, RaiseError> {
        if self.simple {
            let mut result = None;
            match &self.result {
                None => {
                    for step in self.steps.iter() {
                        if let Some(r) = step.call.call(args) {
                            result = Some(r);
                        }
                    }
                }
                Some(combine) => {
                    for step in self.steps.iter() {
                        if let Some(r) = step.call.call(args) {
                            result = Some(match result.take() {
                                None => r,
                                Some(previous) => combine(previous, r),
                            });
                        }
                    }
                }
            }
            return match result {
                Some(result) => Ok(result),
                None => self.default_or(args, 0),
            };
        }
        self.raise_general(args)
    }

    #[inline(never)]
    fn raise_general(&self, args: &A) -> Result<R, RaiseError> {
        if self.retired {
            return Err(RaiseError::Retired);
        }
        match self.settings.defer {
            None => self.dispatch(args, false),
            Some(defer) => {
                let executor = self.executor().ok_or(RaiseError::NoExecutor)?;
                defer(self.clone(), args, executor);
                self.default_or(args, 1)
            }
        }
    }

    /// The executor for this event, if any.
    pub(crate) fn executor(&self) -> Option<&dyn Executor> {
        match &self.settings.executor {
            Some(own) => Some(&**own),
            None => global_executor().map(|global| &**global),
        }
    }

    /// Runs every step in order (the general path). With `inline_async`,
    /// asynchronous handlers run synchronously (used when the dispatch
    /// itself already runs in a job).
    pub(crate) fn dispatch(&self, args: &A, inline_async: bool) -> Result<R, RaiseError> {
        if self.retired {
            return Err(RaiseError::Retired);
        }
        let executor = if self.settings.has_async && !inline_async {
            Some(self.executor().ok_or(RaiseError::NoExecutor)?)
        } else {
            None
        };
        let keyed: &[Step<A, R>] = match (self.settings.key_of, &self.keyed) {
            (Some(key_of), Some(index)) => index.get(&key_of(args)).map_or(&[], |steps| steps),
            _ => &[],
        };
        let mut fold = Fold {
            result: None,
            deferred: 0,
        };
        if keyed.is_empty() {
            for step in self.steps.iter() {
                if self.visit(step, args, executor, &mut fold) {
                    break;
                }
            }
        } else {
            let mut unkeyed = self.steps.iter().peekable();
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
        match &self.default {
            Some(default) => Ok(default(args)),
            None if deferred > 0 => Err(RaiseError::Deferred),
            None => Err(RaiseError::NoHandlerFired),
        }
    }

    /// Considers one step; returns `true` when the dispatch must stop (a
    /// cancelling binding fired).
    #[inline(always)]
    fn visit(
        &self,
        step: &Step<A, R>,
        args: &A,
        executor: Option<&dyn Executor>,
        fold: &mut Fold<R>,
    ) -> bool {
        let result = match &step.extra {
            None => match step.call.call(args) {
                Some(result) => result,
                None => return false,
            },
            Some(extra) => {
                if !step.call.holds(args) {
                    return false;
                }
                if let (Some(spawn), Some(executor)) = (extra.spawn, executor) {
                    spawn(step, &self.settings, args, executor);
                    fold.deferred += 1;
                    return step.cancel;
                }
                run_step(step, &self.settings, args)
            }
        };
        fold.result = Some(match fold.result.take() {
            None => result,
            Some(previous) => match &self.result {
                Some(combine) => combine(previous, result),
                None => result,
            },
        });
        step.cancel
    }
}

/// Runs one step's handler (guards already checked), enforcing its time
/// bound if it has one.
pub(crate) fn run_step<A, R>(step: &Step<A, R>, settings: &Settings<A, R>, args: &A) -> R {
    match step.extra.as_deref() {
        Some(
            extra @ Extra {
                quantum: Some(quantum),
                ..
            },
        ) => run_timed(step, extra, *quantum, settings, args),
        _ => step.call.run(args),
    }
}

#[inline(never)]
#[cold]
fn run_timed<A, R>(
    step: &Step<A, R>,
    extra: &Extra<A, R>,
    quantum: Micros,
    settings: &Settings<A, R>,
    args: &A,
) -> R {
    let bounds = settings.time_bounds.get();
    let Some(clock) = bounds.clock() else {
        // Installing an ephemeral binding requires a clock, and clocks are
        // never removed; run untimed if that ever changes.
        return step.call.run(args);
    };
    let started = clock.now();
    let deadline = started.saturating_add(quantum);
    let ticket = bounds.enter(CallRecord {
        event: &settings.event,
        binding: extra.id,
        installer: extra.installer,
        started,
        deadline,
        stats: &extra.stats,
        on_overrun: settings.on_overrun.as_ref(),
    });
    let result = step.call.run(args);
    let ended = clock.now();
    let reported_by_timer = ticket.is_some_and(|ticket| bounds.leave(ticket));
    if ended > deadline && !reported_by_timer {
        extra
            .stats
            .overruns
            .fetch_add(1, core::sync::atomic::Ordering::Relaxed);
        if let Some(on_overrun) = &settings.on_overrun {
            on_overrun(&crate::time_bounds::Overrun {
                event: Arc::clone(&settings.event),
                binding: extra.id,
                installer: extra.installer,
                started,
                deadline,
                observed_at: ended,
                detected_by: crate::time_bounds::Detection::Return,
            });
        }
    }
    result
}

/// Queues one whole dispatch of an asynchronous event, with the table of
/// the raise.
pub(crate) fn defer_dispatch<A: Clone + Send + 'static, R: 'static>(
    table: Table<A, R>,
    args: &A,
    executor: &dyn Executor,
) {
    let args = args.clone();
    executor.spawn(Box::new(move || {
        let _result = table.dispatch(&args, true);
    }));
}

/// Queues one asynchronous handler call.
pub(crate) fn spawn_step<A: Clone + Send + 'static, R: 'static>(
    step: &Step<A, R>,
    settings: &Arc<Settings<A, R>>,
    args: &A,
    executor: &dyn Executor,
) {
    let step = step.clone();
    let settings = Arc::clone(settings);
    let args = args.clone();
    executor.spawn(Box::new(move || {
        let _result = run_step(&step, &settings, &args);
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
        assert!(hashes.len() > 2048, "{} distinct buckets", hashes.len());
    }
}
