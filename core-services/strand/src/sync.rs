//! Synchronisation built on the service's block and wake: a blocking
//! [`Mutex`], a [`Condvar`] and a counting [`Semaphore`]. All safe code.
//!
//! **The protocol.** A waiter puts its id on the primitive's wait list,
//! re-checks the condition, and blocks ([`crate::block`]). Whoever changes
//! the condition takes a waiter off the list and wakes it. Blocking has
//! pending-wakeup semantics (like `thread::park`): a wake that arrives
//! between the re-check and the block makes the block return at once, so
//! no wakeup is lost; in exchange a waiter may wake spuriously, which is
//! why every wait loops on its condition. A waiter that stops waiting
//! without being woken (it got the lock on the re-check) takes itself off
//! the list, so no later wake is spent on it while another strand waits.
//!
//! The data of a [`Mutex`] sits in a `spin::Mutex` that is only ever
//! *tried*, never spun on: contention blocks the strand instead, so a
//! strand holding the lock can be preempted without the others burning
//! their quanta.
//!
//! Blocking operations return [`StrandError::CannotBlock`] where blocking
//! is impossible (interrupt handlers, interrupts disabled).
//!
//! **Sharing data with handlers that run in interrupt context** (the
//! `Strand.*` signals, `Sched.PickNext`, `Clock.Tick`): the handler uses
//! `spin::Mutex::try_lock` and gives up (passes, skips) if the lock is
//! taken, because the holder may be the very strand it interrupted.
//! Extensions get no lock that disables interrupts: code that can turn
//! interrupts off can no longer be preempted or stopped by the timer. The
//! service's own short critical sections use one internally (`IrqLock`).

use alloc::collections::VecDeque;
use core::ops::{Deref, DerefMut};

use crate::error::StrandError;
use crate::id::{BlockReason, StrandId};
use crate::service::{self, platform};

/// A spin lock that disables interrupts while it is held, so that the
/// wait lists and permit counts can be used from strands and from
/// interrupt handlers (a semaphore released by an interrupt) without the
/// interrupt spinning forever on a lock its own CPU holds. Crate-internal:
/// held only across a few instructions of this module.
pub(crate) struct IrqLock<T> {
    inner: spin::Mutex<T>,
}

/// Access to the data of an [`IrqLock`]; interrupts are restored when it
/// is dropped.
pub(crate) struct IrqLockGuard<'a, T> {
    guard: Option<spin::MutexGuard<'a, T>>,
    were_enabled: bool,
}

impl<T> IrqLock<T> {
    /// A lock around `value`.
    pub(crate) const fn new(value: T) -> Self {
        Self {
            inner: spin::Mutex::new(value),
        }
    }

    /// Disables interrupts and takes the lock.
    pub(crate) fn lock(&self) -> IrqLockGuard<'_, T> {
        let were_enabled = platform().is_ok_and(|p| p.interrupts_disable());
        IrqLockGuard {
            guard: Some(self.inner.lock()),
            were_enabled,
        }
    }
}

impl<T> Deref for IrqLockGuard<'_, T> {
    type Target = T;

    fn deref(&self) -> &T {
        match &self.guard {
            Some(guard) => guard,
            None => unreachable!("the guard is only taken by drop"),
        }
    }
}

impl<T> DerefMut for IrqLockGuard<'_, T> {
    fn deref_mut(&mut self) -> &mut T {
        match &mut self.guard {
            Some(guard) => guard,
            None => unreachable!("the guard is only taken by drop"),
        }
    }
}

impl<T> Drop for IrqLockGuard<'_, T> {
    fn drop(&mut self) {
        // Unlock first, then let interrupts in: an interrupt arriving in
        // between must find the lock free.
        drop(self.guard.take());
        if let Ok(platform) = platform() {
            platform.interrupts_restore(self.were_enabled);
        }
    }
}

/// Strands waiting on one primitive, in arrival order.
struct WaitList {
    waiters: IrqLock<VecDeque<StrandId>>,
}

impl WaitList {
    const fn new() -> Self {
        Self {
            waiters: IrqLock::new(VecDeque::new()),
        }
    }

    fn add(&self, id: StrandId) {
        let mut waiters = self.waiters.lock();
        if !waiters.contains(&id) {
            waiters.push_back(id);
        }
    }

    fn remove(&self, id: StrandId) {
        self.waiters.lock().retain(|&w| w != id);
    }

    /// Wakes the first waiter that still exists; returns whether one was.
    fn wake_one(&self) -> bool {
        loop {
            let Some(id) = self.waiters.lock().pop_front() else {
                return false;
            };
            if service::platform().is_ok_and(|p| p.wake(id).is_ok()) {
                return true;
            }
            // The waiter was killed meanwhile: try the next one.
        }
    }

    fn wake_all(&self) -> usize {
        let waiters = core::mem::take(&mut *self.waiters.lock());
        waiters
            .into_iter()
            .filter(|&id| service::platform().is_ok_and(|p| p.wake(id).is_ok()))
            .count()
    }

    fn len(&self) -> usize {
        self.waiters.lock().len()
    }
}

/// The current strand, if it may block.
fn blocking_strand() -> Result<StrandId, StrandError> {
    let platform = platform()?;
    if !platform.can_block() {
        return Err(StrandError::CannotBlock);
    }
    platform.current().ok_or(StrandError::CannotBlock)
}

/// A mutual-exclusion lock whose waiters block instead of spinning.
pub struct Mutex<T> {
    data: spin::Mutex<T>,
    waiters: WaitList,
}

/// Access to a [`Mutex`]'s data; unlocks (and wakes a waiter) when dropped.
pub struct MutexGuard<'a, T> {
    mutex: &'a Mutex<T>,
    guard: Option<spin::MutexGuard<'a, T>>,
}

impl<T> Mutex<T> {
    /// A mutex around `value`.
    pub const fn new(value: T) -> Self {
        Self {
            data: spin::Mutex::new(value),
            waiters: WaitList::new(),
        }
    }

    /// Takes the lock without waiting.
    pub fn try_lock(&self) -> Option<MutexGuard<'_, T>> {
        self.data.try_lock().map(|guard| MutexGuard {
            mutex: self,
            guard: Some(guard),
        })
    }

    /// Takes the lock, blocking while another strand holds it.
    pub fn lock(&self) -> Result<MutexGuard<'_, T>, StrandError> {
        if let Some(guard) = self.try_lock() {
            return Ok(guard);
        }
        let me = blocking_strand()?;
        loop {
            self.waiters.add(me);
            if let Some(guard) = self.try_lock() {
                self.waiters.remove(me);
                return Ok(guard);
            }
            crate::block(BlockReason::Wait)?;
        }
    }

    /// Strands blocked on the lock.
    pub fn waiters(&self) -> usize {
        self.waiters.len()
    }
}

impl<T> Deref for MutexGuard<'_, T> {
    type Target = T;

    fn deref(&self) -> &T {
        match &self.guard {
            Some(guard) => guard,
            None => unreachable!("the guard is only taken by drop or wait"),
        }
    }
}

impl<T> DerefMut for MutexGuard<'_, T> {
    fn deref_mut(&mut self) -> &mut T {
        match &mut self.guard {
            Some(guard) => guard,
            None => unreachable!("the guard is only taken by drop or wait"),
        }
    }
}

impl<T> Drop for MutexGuard<'_, T> {
    fn drop(&mut self) {
        if self.guard.take().is_some() {
            self.mutex.waiters.wake_one();
        }
    }
}

/// A condition variable, used with a [`Mutex`].
pub struct Condvar {
    waiters: WaitList,
}

impl Default for Condvar {
    fn default() -> Self {
        Self::new()
    }
}

impl Condvar {
    /// A condition variable nobody waits on.
    pub const fn new() -> Self {
        Self {
            waiters: WaitList::new(),
        }
    }

    /// Unlocks `guard`'s mutex, waits for a notification, and locks it
    /// again. May wake spuriously: wait in a loop ([`Condvar::wait_while`]).
    pub fn wait<'a, T>(
        &self,
        mut guard: MutexGuard<'a, T>,
    ) -> Result<MutexGuard<'a, T>, StrandError> {
        let me = blocking_strand()?;
        let mutex = guard.mutex;
        // On the list before the mutex is released: a notify that follows
        // the release finds us.
        self.waiters.add(me);
        drop(guard.guard.take());
        mutex.waiters.wake_one();
        drop(guard);
        let blocked = crate::block(BlockReason::Wait);
        self.waiters.remove(me);
        blocked?;
        mutex.lock()
    }

    /// Waits until `condition` is false.
    pub fn wait_while<'a, T>(
        &self,
        mut guard: MutexGuard<'a, T>,
        mut condition: impl FnMut(&mut T) -> bool,
    ) -> Result<MutexGuard<'a, T>, StrandError> {
        while condition(&mut guard) {
            guard = self.wait(guard)?;
        }
        Ok(guard)
    }

    /// Wakes one waiter; returns whether there was one.
    pub fn notify_one(&self) -> bool {
        self.waiters.wake_one()
    }

    /// Wakes every waiter; returns how many.
    pub fn notify_all(&self) -> usize {
        self.waiters.wake_all()
    }
}

/// A counting semaphore.
pub struct Semaphore {
    permits: IrqLock<usize>,
    waiters: WaitList,
}

impl Semaphore {
    /// A semaphore with `permits` available.
    pub const fn new(permits: usize) -> Self {
        Self {
            permits: IrqLock::new(permits),
            waiters: WaitList::new(),
        }
    }

    /// Takes a permit without waiting.
    pub fn try_acquire(&self) -> bool {
        let mut permits = self.permits.lock();
        if *permits > 0 {
            *permits -= 1;
            true
        } else {
            false
        }
    }

    /// Takes a permit, blocking until one is available.
    pub fn acquire(&self) -> Result<(), StrandError> {
        if self.try_acquire() {
            return Ok(());
        }
        let me = blocking_strand()?;
        loop {
            self.waiters.add(me);
            if self.try_acquire() {
                self.waiters.remove(me);
                return Ok(());
            }
            crate::block(BlockReason::Wait)?;
        }
    }

    /// Returns a permit and wakes a waiter. May be called from interrupt
    /// handlers.
    pub fn release(&self) {
        *self.permits.lock() += 1;
        self.waiters.wake_one();
    }

    /// Permits available now.
    pub fn available(&self) -> usize {
        *self.permits.lock()
    }
}
