//! The read side of raises: read sections with no locked instruction,
//! published tables, and their reclamation after a grace period. This is
//! the dispatcher's only module with `unsafe`; the crate docs argue its
//! soundness ("Why a raise is safe without reference counting").
//!
//! * A **reader context** is what runs one thing at a time: a host thread,
//!   or a kernel CPU (whose strands park and resume their read state when
//!   they switch, see [`park`]). Each has a [`ReaderCell`]: its raise
//!   nesting depth and the number of outermost raises it has finished,
//!   packed in one word that only its own context writes, with a plain
//!   (relaxed) load and store.
//! * A raise runs in a **read section** ([`read`]): it stores depth + 1 in
//!   its cell, then (after a fence the writer's barrier pairs with) loads
//!   the event's table pointer ([`Published::get`]), runs the table, and
//!   stores the old depth back when the [`ReadGuard`] drops (also during an
//!   unwind). A raise that reads no table (the original handler alone)
//!   only takes a nesting level ([`nested`]): the depth store, without the
//!   fence. Contexts whose writers have no heavy barrier are marked
//!   [`FENCED`] in the word and take a full fence on an out-of-line path.
//! * Handlers are reached through [`Pinned`]: an `Arc` with its value's
//!   address beside it.
//! * A writer replaces the table with one atomic swap
//!   (`Published::replace`), runs the **heavy barrier** (host Linux:
//!   `membarrier(PRIVATE_EXPEDITED)`, which makes every thread's earlier
//!   stores visible; one kernel CPU: a compiler fence; Miri and loom: a
//!   `SeqCst` fence, with a `SeqCst` fence on the read side too), and puts
//!   the old table on the retired list.
//! * **Grace period**: a retired table is freed once every reader context
//!   has been seen outside any read section that could have started before
//!   the swap: its depth was 0, or its count of finished outermost raises
//!   moved on, and on the kernel no strand is parked inside a raise.
//!   [`try_reclaim`] checks without waiting (after every update);
//!   [`synchronize`] waits a
//!   bounded time for the other threads (revocation, alive counts).

#![allow(unsafe_code)]

use alloc::boxed::Box;
use alloc::sync::Arc;
use alloc::vec::Vec;
use core::marker::PhantomData;
use core::ptr::NonNull;

#[cfg(not(loom))]
use core::sync::atomic::{AtomicBool, AtomicPtr, AtomicU64, AtomicUsize, Ordering, fence};
#[cfg(loom)]
use loom::sync::atomic::{AtomicBool, AtomicPtr, AtomicU64, AtomicUsize, Ordering, fence};

/// Raises nested deeper than this fail with
/// [`RaiseError::TooDeep`](crate::RaiseError::TooDeep) before calling
/// anything: a handler that raises its own event forever gets an error, not
/// a stack overflow.
pub const MAX_RAISE_DEPTH: u64 = 64;

/// Low bits of a cell's word: the nesting depth (bits 0-6) and [`FENCED`]
/// (bit 7); the rest counts finished outermost read sections.
const DEPTH_BITS: u32 = 8;
const LOW_MASK: u64 = (1 << DEPTH_BITS) - 1;
const DEPTH_MASK: u64 = 0x7f;
/// Set in a context's word when its read sections need a full fence after
/// the depth store (the writers have no heavy barrier for it: a host
/// without `membarrier`, or Miri and loom). Being above every depth below
/// [`MAX_RAISE_DEPTH`], it sends the context's raises to the out-of-line
/// path through the same compare as the depth limit.
const FENCED: u64 = 0x80;
const FINISHED_ONE: u64 = 1 << DEPTH_BITS;
const _: () = assert!(MAX_RAISE_DEPTH <= DEPTH_MASK && MAX_RAISE_DEPTH <= FENCED);

/// One reader context's read state; see the [module docs](self).
pub struct ReaderCell {
    /// `finished << 8 | FENCED? | depth`, written only by the owning
    /// context.
    word: AtomicU64,
    /// Nested interrupt handlers the context is in (kernel-marked).
    interrupts: AtomicU64,
    /// Host: whether a thread owns the cell (cells are recycled).
    #[cfg(not(target_os = "none"))]
    in_use: AtomicBool,
}

impl ReaderCell {
    #[cfg(not(loom))]
    const fn new() -> Self {
        ReaderCell {
            word: AtomicU64::new(0),
            interrupts: AtomicU64::new(0),
            #[cfg(not(target_os = "none"))]
            in_use: AtomicBool::new(false),
        }
    }

    #[cfg(loom)]
    fn new() -> Self {
        ReaderCell {
            word: AtomicU64::new(FENCED),
            interrupts: AtomicU64::new(0),
            #[cfg(not(target_os = "none"))]
            in_use: AtomicBool::new(false),
        }
    }

    /// Current raise nesting depth of the context.
    pub(crate) fn depth(&self) -> u64 {
        self.word.load(Ordering::Relaxed) & DEPTH_MASK
    }

    /// Whether the context is in an interrupt handler.
    pub(crate) fn in_interrupt(&self) -> bool {
        self.interrupts.load(Ordering::Relaxed) > 0
    }
}

/// A raise nested deeper than [`MAX_RAISE_DEPTH`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct TooDeep;

/// One raise's nesting level in its context: entering it stores depth + 1
/// in the context's cell, dropping it (also during an unwind) stores the
/// word it restores. Not `Send`: it belongs to the context that entered it.
struct Level {
    cell: &'static ReaderCell,
    /// The word stored when the level ends.
    restore: u64,
    _not_send: PhantomData<*const ()>,
}

impl Level {
    /// One more level in `cell`'s context, without a read section (no
    /// fence, and the finished count does not move when it ends).
    #[inline(always)]
    fn enter(cell: &'static ReaderCell) -> Result<Level, TooDeep> {
        let before = cell.word.load(Ordering::Relaxed);
        if before & LOW_MASK >= MAX_RAISE_DEPTH && before & DEPTH_MASK >= MAX_RAISE_DEPTH {
            return Err(TooDeep);
        }
        cell.word.store(before + 1, Ordering::Relaxed);
        Ok(Level {
            cell,
            restore: before,
            _not_send: PhantomData,
        })
    }
}

impl Drop for Level {
    #[inline(always)]
    fn drop(&mut self) {
        self.cell.word.store(self.restore, Ordering::Relaxed);
    }
}

/// An open read section: a [`Level`] entered with the read side's half of
/// the asymmetric fence after the depth store, which orders it before the
/// table load (a compiler fence; a full fence in a [`FENCED`] context, on
/// the out-of-line path). Ending an outermost section moves the context's
/// finished count on. Only [`read`] (and tests) open one; [`Published::get`]
/// takes it as proof.
pub(crate) struct ReadGuard {
    _level: Level,
}

impl ReadGuard {
    #[inline(always)]
    fn open(cell: &'static ReaderCell) -> Result<ReadGuard, TooDeep> {
        let before = cell.word.load(Ordering::Relaxed);
        if before & LOW_MASK >= MAX_RAISE_DEPTH {
            return Self::open_slow(cell, before);
        }
        cell.word.store(before + 1, Ordering::Relaxed);
        core::sync::atomic::compiler_fence(Ordering::SeqCst);
        Ok(Self::opened(cell, before))
    }

    /// [`open`](Self::open) past the limit, or in a [`FENCED`] context.
    #[cold]
    #[inline(never)]
    fn open_slow(cell: &'static ReaderCell, before: u64) -> Result<ReadGuard, TooDeep> {
        if before & DEPTH_MASK >= MAX_RAISE_DEPTH {
            return Err(TooDeep);
        }
        cell.word.store(before + 1, Ordering::Relaxed);
        fence(Ordering::SeqCst);
        Ok(Self::opened(cell, before))
    }

    #[inline(always)]
    fn opened(cell: &'static ReaderCell, before: u64) -> ReadGuard {
        let restore = if before & DEPTH_MASK == 0 {
            before + FINISHED_ONE
        } else {
            before
        };
        ReadGuard {
            _level: Level {
                cell,
                restore,
                _not_send: PhantomData,
            },
        }
    }
}

impl Drop for ReadGuard {
    #[inline(always)]
    fn drop(&mut self) {
        // Every read of the table happens before the store that ends the
        // section (the level's drop, right after; the reclaimer's acquire
        // fence pairs with this).
        fence(Ordering::Release);
    }
}

/// Runs `f` one raise nesting level deeper in the current context, without
/// a read section: for raises that read no published table (an event's
/// original handler alone). Past [`MAX_RAISE_DEPTH`] it runs `too_deep`
/// instead. The reclaimer, which treats any depth above 0 as a possibly
/// open section, may only wait longer.
///
/// (Both paths produce the caller's `T` directly: a `Result<T, _>`
/// wrapped around a raise's own `Result` is assembled in memory byte by
/// byte and read back whole, which stalls store forwarding.)
#[inline(always)]
pub(crate) fn nested<T>(f: impl FnOnce() -> T, too_deep: impl FnOnce() -> T) -> T {
    let run = |cell| match Level::enter(cell) {
        Ok(_level) => f(),
        Err(TooDeep) => too_deep(),
    };
    match context::owned() {
        Some(cell) => run(cell),
        None => context::lent(run),
    }
}

/// Runs `f` inside a read section (one raise nesting level deeper) in the
/// current context; `f` may read published values through the section.
/// Past [`MAX_RAISE_DEPTH`] it runs `too_deep` instead.
#[inline(always)]
pub(crate) fn read<T>(f: impl FnOnce(&ReadGuard) -> T, too_deep: impl FnOnce() -> T) -> T {
    let run = |cell| match ReadGuard::open(cell) {
        Ok(section) => f(&section),
        Err(TooDeep) => too_deep(),
    };
    match context::owned() {
        Some(cell) => run(cell),
        None => context::lent(run),
    }
}

/// Opens a read section held by the returned guard (tests hold sections
/// across other steps; their threads always own a cell).
#[cfg(test)]
pub(crate) fn enter() -> Result<ReadGuard, TooDeep> {
    ReadGuard::open(context::current().0)
}

/// The writer's half: after it, every reader context's store that preceded
/// its table load is visible, or that load sees the new table.
fn heavy_barrier() {
    fence(Ordering::SeqCst);
    #[cfg(not(any(miri, loom, target_os = "none")))]
    host::membarrier();
}

/// A table published to raises: an atomic pointer to an immutable boxed
/// value, replaced whole under the writer lock (which guards the writer's
/// state `W`) and freed after a grace period.
pub(crate) struct Published<T: Send + 'static, W> {
    ptr: AtomicPtr<T>,
    writer: spin::Mutex<W>,
    _owns: PhantomData<Box<T>>,
}

impl<T: Send + 'static, W> Published<T, W> {
    pub(crate) fn new(value: Box<T>, writer: W) -> Self {
        Published {
            ptr: AtomicPtr::new(Box::into_raw(value)),
            writer: spin::Mutex::new(writer),
            _owns: PhantomData,
        }
    }

    /// The current value, valid while `guard`'s section is open.
    #[inline(always)]
    pub(crate) fn get<'a>(&'a self, _guard: &'a ReadGuard) -> &'a T {
        let ptr = self.ptr.load(Ordering::Acquire);
        // SAFETY: `ptr` came from `Box::into_raw` (in `new` or
        // `Writer::replace`) and is freed only by `Drop` of `self` (which
        // cannot run while `&'a self` is borrowed) or by reclamation after
        // it was swapped out. Reclamation frees it only after seeing this
        // context outside the section `_guard` holds open (its depth below
        // the section's, or its count of finished outermost raises moved
        // on, or, for the caller's own context, depth 0), and that section
        // was opened (depth stored, fenced) before this load: by the
        // barrier argument in the crate docs, either this load saw the
        // swap's new value or the reclaimer sees the open section. The
        // value is never mutated after publication, so shared access is
        // sound; the reference lives no longer than the guard.
        unsafe { &*ptr }
    }

    /// Takes the writer lock (spins).
    pub(crate) fn lock(&self) -> Writer<'_, T, W> {
        Writer {
            published: self,
            state: self.writer.lock(),
        }
    }
}

/// The writer lock of a [`Published`], with the writer's state.
pub(crate) struct Writer<'a, T: Send + 'static, W> {
    published: &'a Published<T, W>,
    state: spin::MutexGuard<'a, W>,
}

impl<T: Send + 'static, W> Writer<'_, T, W> {
    /// Publishes `next` and retires the old value; call [`try_reclaim`]
    /// after releasing the lock.
    pub(crate) fn replace(&mut self, next: Box<T>) {
        let old = self
            .published
            .ptr
            .swap(Box::into_raw(next), Ordering::AcqRel);
        heavy_barrier();
        DOMAIN.retire(Retired {
            ptr: old.cast(),
            free: free::<T>,
        });
    }
}

impl<T: Send + 'static, W> core::ops::Deref for Writer<'_, T, W> {
    type Target = W;
    fn deref(&self) -> &W {
        &self.state
    }
}

impl<T: Send + 'static, W> core::ops::DerefMut for Writer<'_, T, W> {
    fn deref_mut(&mut self) -> &mut W {
        &mut self.state
    }
}

impl<T: Send + 'static, W> Drop for Published<T, W> {
    fn drop(&mut self) {
        let ptr = self.ptr.load(Ordering::Acquire);
        // SAFETY: `&mut self` means no reader holds a reference from `get`
        // and no `Writer` exists (both borrow `self`); the pointer came
        // from `Box::into_raw` and was not swapped out (swapped-out values
        // belong to the retired list), so this is its only owner.
        drop(unsafe { Box::from_raw(ptr) });
    }
}

/// An `Arc<T>` with the address of its value kept beside it. Reaching a
/// `dyn` value through an `Arc` computes its offset in the allocation from
/// the vtable's alignment on every call; raises reach handlers through
/// this instead: one load of the address.
pub(crate) struct Pinned<T: ?Sized> {
    ptr: NonNull<T>,
    arc: Arc<T>,
}

impl<T: ?Sized> Pinned<T> {
    pub(crate) fn new(arc: Arc<T>) -> Self {
        Pinned {
            ptr: NonNull::from(&*arc),
            arc,
        }
    }

    /// The `Arc` itself.
    pub(crate) fn arc(&self) -> &Arc<T> {
        &self.arc
    }
}

impl<T: ?Sized> core::ops::Deref for Pinned<T> {
    type Target = T;

    #[inline(always)]
    fn deref(&self) -> &T {
        // SAFETY: `ptr` is the address of `arc`'s value, taken from a
        // shared reference in `new`. `arc` lives as long as `self` and an
        // `Arc`'s value never moves, so the value outlives the returned
        // reference; only shared references are made from `ptr`, as the
        // `Arc`'s own `Deref` would (the value is never reached mutably
        // while an `Arc` to it exists elsewhere: `Pinned` gives none out
        // mutably).
        unsafe { self.ptr.as_ref() }
    }
}

impl<T: ?Sized> Clone for Pinned<T> {
    fn clone(&self) -> Self {
        Pinned {
            ptr: self.ptr,
            arc: Arc::clone(&self.arc),
        }
    }
}

// SAFETY: a `Pinned<T>` is an `Arc<T>` and a pointer used only as that
// `Arc`'s `Deref`; it may cross threads exactly when `Arc<T>` may.
unsafe impl<T: ?Sized + Send + Sync> Send for Pinned<T> {}
// SAFETY: as for `Send`.
unsafe impl<T: ?Sized + Send + Sync> Sync for Pinned<T> {}

/// Frees a retired `Box<T>`.
///
/// # Safety
/// `ptr` came from `Box::<T>::into_raw`, no reference to it exists any more,
/// and it is freed once.
unsafe fn free<T>(ptr: *mut ()) {
    // SAFETY: the caller's contract.
    drop(unsafe { Box::from_raw(ptr.cast::<T>()) });
}

/// A swapped-out value waiting for its grace period.
struct Retired {
    ptr: *mut (),
    free: unsafe fn(*mut ()),
}

// SAFETY: a `Retired` owns a `Box<T>` with `T: Send` (enforced by
// `Published::replace`), so it may be freed on any thread.
unsafe impl Send for Retired {}

impl Drop for Retired {
    fn drop(&mut self) {
        // SAFETY: `Retired`s are dropped only after a grace period (by
        // `Domain::reclaim`), when no read section that could see the value
        // is open; `ptr` and `free` were paired in `Published::replace`.
        unsafe { (self.free)(self.ptr) }
    }
}

#[cfg(not(loom))]
type Lock<T> = spin::Mutex<T>;
#[cfg(loom)]
type Lock<T> = loom::sync::Mutex<T>;

/// The retired list and the reader contexts to check.
struct Domain {
    retired: Lock<Vec<Retired>>,
    /// Whether `retired` is non-empty (read without the lock).
    pending: AtomicBool,
    /// Strands switched out inside a raise (kernel), or contexts parked
    /// with [`park`].
    parked: AtomicUsize,
}

impl Domain {
    #[cfg(not(loom))]
    const fn new() -> Self {
        Domain {
            retired: Lock::new(Vec::new()),
            pending: AtomicBool::new(false),
            parked: AtomicUsize::new(0),
        }
    }

    fn retire(&self, retired: Retired) {
        let mut list = lock(&self.retired);
        list.push(retired);
        self.pending.store(true, Ordering::Relaxed);
    }

    /// Frees every retired value whose grace period is over; waits for
    /// other contexts up to `patience` rounds. Drops values outside the
    /// lock (their destructors may publish again).
    fn reclaim(&self, patience: usize) {
        let Some(mut list) = try_lock(&self.retired) else {
            return;
        };
        if list.is_empty() {
            return;
        }
        if !self.grace_period_over(patience) {
            return;
        }
        fence(Ordering::Acquire);
        let ready = core::mem::take(&mut *list);
        self.pending.store(false, Ordering::Relaxed);
        drop(list);
        drop(ready);
    }

    /// Whether every context was seen outside every read section that was
    /// open when this call started. Values in the retired list were
    /// swapped out and fenced before, so they are then unreachable.
    fn grace_period_over(&self, patience: usize) -> bool {
        let (me, _) = context::current_if_any();
        if me.is_some_and(|cell| cell.depth() > 0) {
            // The caller is inside a raise that may use a retired table.
            return false;
        }
        if self.parked.load(Ordering::Relaxed) > 0 {
            return false;
        }
        let mut over = true;
        context::for_each(|cell| {
            if !over || me.is_some_and(|me| core::ptr::eq(me, cell)) {
                return;
            }
            let seen = cell.word.load(Ordering::Relaxed);
            if seen & DEPTH_MASK == 0 {
                return;
            }
            let mut rounds = 0;
            loop {
                let now = cell.word.load(Ordering::Relaxed);
                if now & DEPTH_MASK == 0 || now >> DEPTH_BITS != seen >> DEPTH_BITS {
                    return;
                }
                if rounds >= patience {
                    over = false;
                    return;
                }
                rounds += 1;
                context::pause();
            }
        });
        over
    }
}

#[cfg(not(loom))]
fn lock<T>(lock: &Lock<T>) -> spin::MutexGuard<'_, T> {
    lock.lock()
}
#[cfg(not(loom))]
fn try_lock<T>(lock: &Lock<T>) -> Option<spin::MutexGuard<'_, T>> {
    lock.try_lock()
}
#[cfg(loom)]
fn lock<T>(lock: &Lock<T>) -> loom::sync::MutexGuard<'_, T> {
    lock.lock().unwrap()
}
#[cfg(loom)]
fn try_lock<T>(lock: &Lock<T>) -> Option<loom::sync::MutexGuard<'_, T>> {
    lock.try_lock().ok()
}

#[cfg(not(loom))]
static DOMAIN: Domain = Domain::new();
#[cfg(loom)]
loom::lazy_static! {
    static ref DOMAIN: Domain = Domain {
        retired: Lock::new(Vec::new()),
        pending: AtomicBool::new(false),
        parked: AtomicUsize::new(0),
    };
}

/// Frees retired tables whose grace period is over, without waiting.
/// Callable anywhere (it only `try_lock`s).
pub(crate) fn try_reclaim() {
    DOMAIN.reclaim(0);
}

/// Like [`try_reclaim`], but waits a bounded time for other threads'
/// raises in progress to finish. Call from thread context.
pub(crate) fn synchronize() {
    DOMAIN.reclaim(SYNCHRONIZE_ROUNDS);
}

#[cfg(any(miri, loom))]
const SYNCHRONIZE_ROUNDS: usize = 50;
#[cfg(not(any(miri, loom)))]
const SYNCHRONIZE_ROUNDS: usize = 200_000;

/// Whether retired tables wait for a grace period (tests).
#[cfg(test)]
pub(crate) fn pending() -> bool {
    DOMAIN.pending.load(Ordering::Relaxed)
}

/// The current context's read state, saved when a strand is switched out
/// and restored when it resumes; see `park`.
#[derive(Debug)]
#[must_use = "a parked read state must be resumed on the same strand"]
pub struct ParkedReads {
    word: u64,
    interrupts: u64,
}

/// Saves the current context's read state (raise depth, interrupt nesting)
/// and clears it, for a strand switch; [`ParkedReads::resume`] gives it
/// back when the strand runs again. While a strand is parked inside a
/// raise, retired tables wait.
pub(crate) fn park() -> ParkedReads {
    let (cell, _) = context::current();
    let word = cell.word.load(Ordering::Relaxed);
    let interrupts = cell.interrupts.load(Ordering::Relaxed);
    if word & DEPTH_MASK > 0 {
        DOMAIN.parked.fetch_add(1, Ordering::Relaxed);
    }
    // A fresh strand starts at depth 0; the finished count carries on, so
    // that a reclaimer's snapshot of this context stays comparable.
    cell.word.store(word & !DEPTH_MASK, Ordering::Relaxed);
    cell.interrupts.store(0, Ordering::Relaxed);
    ParkedReads { word, interrupts }
}

impl ParkedReads {
    /// Gives the strand its read state back.
    pub(crate) fn resume(self) {
        let (cell, _) = context::current();
        let finished = cell.word.load(Ordering::Relaxed) & !DEPTH_MASK;
        let finished = finished.max(self.word & !DEPTH_MASK) + FINISHED_ONE;
        cell.word
            .store(finished | (self.word & DEPTH_MASK), Ordering::Relaxed);
        cell.interrupts.store(self.interrupts, Ordering::Relaxed);
        if self.word & DEPTH_MASK > 0 {
            DOMAIN.parked.fetch_sub(1, Ordering::Relaxed);
        }
    }
}

/// Marks the current context as inside an interrupt handler until dropped.
pub(crate) fn interrupt_enter() {
    let (cell, _) = context::current();
    let n = cell.interrupts.load(Ordering::Relaxed);
    cell.interrupts.store(n + 1, Ordering::Relaxed);
}

/// Ends what [`interrupt_enter`] began.
pub(crate) fn interrupt_leave() {
    let (cell, _) = context::current();
    let n = cell.interrupts.load(Ordering::Relaxed);
    cell.interrupts
        .store(n.saturating_sub(1), Ordering::Relaxed);
}

/// Whether the current context is in an interrupt handler.
pub(crate) fn in_interrupt() -> bool {
    context::current_if_any()
        .0
        .is_some_and(ReaderCell::in_interrupt)
}

/// The current context's raise depth.
pub(crate) fn depth() -> u64 {
    context::current_if_any().0.map_or(0, ReaderCell::depth)
}

/// Reader contexts on the kernel: one CPU, one cell; strands park their
/// state on switch.
#[cfg(all(target_os = "none", not(loom)))]
mod context {
    use super::ReaderCell;

    static CPU0: ReaderCell = ReaderCell::new();

    #[inline(always)]
    pub(super) fn current() -> (&'static ReaderCell, bool) {
        (&CPU0, false)
    }

    pub(super) fn current_if_any() -> (Option<&'static ReaderCell>, bool) {
        (Some(&CPU0), false)
    }

    #[inline(always)]
    pub(super) fn owned() -> Option<&'static ReaderCell> {
        Some(&CPU0)
    }

    pub(super) fn lent<T>(f: impl FnOnce(&'static ReaderCell) -> T) -> T {
        f(&CPU0)
    }

    pub(super) fn for_each(mut f: impl FnMut(&'static ReaderCell)) {
        f(&CPU0);
    }

    pub(super) fn pause() {
        core::hint::spin_loop();
    }
}

/// Reader contexts on a host: one cell per thread, recycled when the
/// thread ends.
#[cfg(all(not(target_os = "none"), not(loom)))]
mod context {
    use alloc::boxed::Box;
    use alloc::vec::Vec;
    use core::cell::Cell;
    use core::sync::atomic::Ordering;

    use super::ReaderCell;

    /// Every cell ever made (leaked, so references are `'static`).
    static CELLS: spin::Mutex<Vec<&'static ReaderCell>> = spin::Mutex::new(Vec::new());

    std::thread_local! {
        static CURRENT: Cell<Option<&'static ReaderCell>> = const { Cell::new(None) };
        static OWNER: Owner = const { Owner };
    }

    /// Returns the thread's cell to the pool when the thread ends.
    struct Owner;

    impl Drop for Owner {
        fn drop(&mut self) {
            if let Ok(Some(cell)) = CURRENT.try_with(|current| current.take()) {
                give_back(cell);
            }
        }
    }

    #[inline(always)]
    pub(super) fn current() -> (&'static ReaderCell, bool) {
        match CURRENT.try_with(Cell::get) {
            Ok(Some(cell)) => (cell, false),
            _ => adopt(),
        }
    }

    pub(super) fn current_if_any() -> (Option<&'static ReaderCell>, bool) {
        (CURRENT.try_with(Cell::get).ok().flatten(), false)
    }

    /// The thread's cell, if it has one (the raise path's only lookup).
    #[inline(always)]
    pub(super) fn owned() -> Option<&'static ReaderCell> {
        CURRENT.try_with(Cell::get).ok().flatten()
    }

    /// Runs `f` with a cell for a thread that has none yet (it adopts one
    /// for good) or can no longer keep one (being torn down: the cell is
    /// lent for `f` and given back after it, also during an unwind).
    #[cold]
    #[inline(never)]
    pub(super) fn lent<T>(f: impl FnOnce(&'static ReaderCell) -> T) -> T {
        struct GiveBack(&'static ReaderCell);
        impl Drop for GiveBack {
            fn drop(&mut self) {
                give_back(self.0);
            }
        }
        let (cell, lent) = adopt();
        // Only a lent cell goes back (`then`, not `then_some`: dropping an
        // unused guard would give back the thread's own cell).
        let _back = lent.then(|| GiveBack(cell));
        f(cell)
    }

    /// Gives the thread a cell (from the pool, or a new one).
    #[cold]
    #[inline(never)]
    fn adopt() -> (&'static ReaderCell, bool) {
        let cell = {
            let mut cells = CELLS.lock();
            let cell = match cells
                .iter()
                .find(|cell| !cell.in_use.load(Ordering::Relaxed))
            {
                Some(&cell) => cell,
                None => {
                    let cell: &'static ReaderCell = Box::leak(Box::new(ReaderCell::new()));
                    cells.push(cell);
                    cell
                }
            };
            // Taken under the lock: two threads adopting at once must not
            // both find the same free cell.
            cell.in_use.store(true, Ordering::Relaxed);
            cell
        };
        // Without a heavy barrier (or under Miri) the thread's read
        // sections take a full fence.
        let fenced = cfg!(miri) || !super::host::expedited();
        let word = cell.word.load(Ordering::Relaxed) & !super::FENCED;
        cell.word.store(
            if fenced { word | super::FENCED } else { word },
            Ordering::Relaxed,
        );
        let owned = OWNER.try_with(|_| ()).is_ok()
            && CURRENT.try_with(|current| current.set(Some(cell))).is_ok();
        (cell, !owned)
    }

    /// Returns a cell to the pool. Its thread has ended (or its lent raise
    /// has), so no section of it is open: the depth is cleared in case a
    /// guard was leaked.
    pub(super) fn give_back(cell: &'static ReaderCell) {
        let _cells = CELLS.lock();
        let word = cell.word.load(Ordering::Relaxed);
        cell.word.store(
            (word & !super::LOW_MASK) + super::FINISHED_ONE,
            Ordering::Relaxed,
        );
        cell.interrupts.store(0, Ordering::Relaxed);
        cell.in_use.store(false, Ordering::Relaxed);
    }

    pub(super) fn for_each(mut f: impl FnMut(&'static ReaderCell)) {
        let cells = CELLS.lock();
        for &cell in cells.iter() {
            f(cell);
        }
    }

    pub(super) fn pause() {
        std::thread::yield_now();
    }
}

/// Reader contexts under loom: one cell per loom thread.
#[cfg(loom)]
mod context {
    use alloc::boxed::Box;
    use alloc::vec::Vec;
    use core::cell::Cell;

    use super::ReaderCell;

    loom::lazy_static! {
        static ref CELLS: loom::sync::Mutex<Vec<&'static ReaderCell>> =
            loom::sync::Mutex::new(Vec::new());
    }

    loom::thread_local! {
        static CURRENT: Cell<Option<&'static ReaderCell>> = Cell::new(None);
    }

    pub(super) fn current() -> (&'static ReaderCell, bool) {
        if let Some(cell) = CURRENT.with(Cell::get) {
            return (cell, false);
        }
        let cell: &'static ReaderCell = Box::leak(Box::new(ReaderCell::new()));
        CELLS.lock().unwrap().push(cell);
        CURRENT.with(|current| current.set(Some(cell)));
        (cell, false)
    }

    pub(super) fn current_if_any() -> (Option<&'static ReaderCell>, bool) {
        (CURRENT.with(Cell::get), false)
    }

    pub(super) fn owned() -> Option<&'static ReaderCell> {
        Some(current().0)
    }

    pub(super) fn lent<T>(f: impl FnOnce(&'static ReaderCell) -> T) -> T {
        f(current().0)
    }

    pub(super) fn for_each(mut f: impl FnMut(&'static ReaderCell)) {
        let cells: Vec<&'static ReaderCell> = CELLS.lock().unwrap().clone();
        for cell in cells {
            f(cell);
        }
    }

    pub(super) fn pause() {
        loom::thread::yield_now();
    }
}

/// The host's heavy barrier: `membarrier(MEMBARRIER_CMD_PRIVATE_EXPEDITED)`.
/// If the kernel refuses to register it, readers use a `SeqCst` fence
/// instead (decided once, before any thread has a cell).
#[cfg(not(any(loom, target_os = "none")))]
mod host {
    use core::sync::atomic::{AtomicBool, Ordering};

    static EXPEDITED: AtomicBool = AtomicBool::new(false);
    static DECIDED: spin::Once<()> = spin::Once::new();

    #[cfg(all(target_os = "linux", not(miri)))]
    const MEMBARRIER_CMD_PRIVATE_EXPEDITED: libc::c_long = 1 << 3;
    #[cfg(all(target_os = "linux", not(miri)))]
    const MEMBARRIER_CMD_REGISTER_PRIVATE_EXPEDITED: libc::c_long = 1 << 4;

    /// Whether writers issue `membarrier` (decides it on first use).
    #[inline(always)]
    pub(super) fn expedited() -> bool {
        if !DECIDED.is_completed() {
            decide();
        }
        EXPEDITED.load(Ordering::Relaxed)
    }

    #[cold]
    fn decide() {
        DECIDED.call_once(|| {
            #[cfg(all(target_os = "linux", not(miri)))]
            {
                // SAFETY: membarrier takes three integer arguments and
                // touches no memory of ours; registering has no other
                // effect than allowing PRIVATE_EXPEDITED later.
                let registered = unsafe {
                    libc::syscall(
                        libc::SYS_membarrier,
                        MEMBARRIER_CMD_REGISTER_PRIVATE_EXPEDITED,
                        0,
                        0,
                    )
                } == 0;
                EXPEDITED.store(registered, Ordering::Relaxed);
            }
        });
    }

    /// Makes every thread's earlier stores visible to the caller.
    pub(super) fn membarrier() {
        if !expedited() {
            return;
        }
        #[cfg(all(target_os = "linux", not(miri)))]
        {
            // SAFETY: as in `decide`; the process registered for
            // PRIVATE_EXPEDITED (`expedited()` is true only then).
            let done = unsafe {
                libc::syscall(libc::SYS_membarrier, MEMBARRIER_CMD_PRIVATE_EXPEDITED, 0, 0)
            };
            assert_eq!(done, 0, "membarrier failed after registration");
        }
    }
}

#[cfg(all(test, not(loom)))]
mod tests {
    use super::*;
    use std::sync::atomic::AtomicUsize as StdAtomicUsize;
    use std::sync::{Arc, Barrier};

    /// Counts drops, to see when a retired value is freed.
    struct Tracked(Arc<StdAtomicUsize>);

    impl Drop for Tracked {
        fn drop(&mut self) {
            self.0.fetch_add(1, Ordering::SeqCst);
        }
    }

    #[test]
    fn a_pinned_arc_reaches_its_value_while_any_clone_lives() {
        let freed = Arc::new(StdAtomicUsize::new(0));
        let value: Arc<dyn Fn() -> usize + Send + Sync> = {
            let tracked = Tracked(freed.clone());
            Arc::new(move || tracked.0.load(Ordering::SeqCst) + 1)
        };
        let pinned = Pinned::new(value);
        let clone = pinned.clone();
        drop(pinned);
        let elsewhere = std::thread::spawn(move || (*clone)()).join().unwrap();
        assert_eq!(elsewhere, 1, "not freed while the clone lived");
        assert_eq!(freed.load(Ordering::SeqCst), 1, "freed with the last clone");
    }

    #[test]
    fn a_threads_first_raise_keeps_its_cell() {
        let cells: Vec<usize> = (0..2)
            .map(|_| {
                std::thread::spawn(|| {
                    // The first raise of a thread adopts its cell on the
                    // out-of-line path.
                    assert!(nested(|| true, || false));
                    let cell = context::current_if_any().0.expect("adopted");
                    assert!(cell.in_use.load(Ordering::Relaxed), "still the thread's");
                    let again = context::current().0;
                    assert!(core::ptr::eq(cell, again));
                    // Another thread adopting now must not get this cell.
                    let other = std::thread::spawn(|| {
                        assert!(read(|_| true, || false));
                        context::current_if_any()
                            .0
                            .map(|c| c as *const ReaderCell as usize)
                    })
                    .join()
                    .unwrap()
                    .expect("adopted");
                    assert_ne!(other, cell as *const ReaderCell as usize);
                    other
                })
                .join()
                .unwrap()
            })
            .collect();
        assert_eq!(cells.len(), 2);
    }

    #[test]
    fn sections_nest_and_refuse_past_the_limit() {
        let mut guards = Vec::new();
        for depth in 0..MAX_RAISE_DEPTH {
            assert_eq!(super::depth(), depth);
            guards.push(enter().expect("within the limit"));
        }
        assert_eq!(enter().err(), Some(TooDeep));
        assert_eq!(super::depth(), MAX_RAISE_DEPTH, "a refusal changes nothing");
        // Sections close innermost first, as raises do.
        while let Some(guard) = guards.pop() {
            drop(guard);
        }
        assert_eq!(super::depth(), 0);
    }

    #[test]
    fn a_section_ends_during_an_unwind() {
        let result = std::panic::catch_unwind(|| {
            let _section = enter().unwrap();
            assert_eq!(super::depth(), 1);
            panic!("handler panicked");
        });
        assert!(result.is_err());
        assert_eq!(super::depth(), 0);
    }

    #[test]
    fn the_old_value_lives_until_a_reader_in_another_thread_leaves() {
        let freed = Arc::new(StdAtomicUsize::new(0));
        let published = Arc::new(Published::new(Box::new(Tracked(freed.clone())), ()));
        let inside = Arc::new(Barrier::new(2));
        let leave = Arc::new(Barrier::new(2));
        let reader = {
            let (published, inside, leave) = (published.clone(), inside.clone(), leave.clone());
            std::thread::spawn(move || {
                let section = enter().unwrap();
                let value = published.get(&section);
                inside.wait();
                leave.wait();
                // Still readable: the writer could not free it meanwhile.
                assert_eq!(value.0.load(Ordering::SeqCst), 0);
            })
        };
        inside.wait();
        published
            .lock()
            .replace(Box::new(Tracked(Arc::new(StdAtomicUsize::new(0)))));
        try_reclaim();
        assert_eq!(freed.load(Ordering::SeqCst), 0, "a reader is inside");
        leave.wait();
        reader.join().unwrap();
        // Each `synchronize` waits a bounded time for the other threads;
        // tests running in parallel may hold read sections across one.
        for _ in 0..100 {
            synchronize();
            if freed.load(Ordering::SeqCst) == 1 {
                break;
            }
        }
        assert_eq!(
            freed.load(Ordering::SeqCst),
            1,
            "freed after the reader left"
        );
    }

    #[test]
    fn a_writer_inside_a_raise_defers_until_the_raise_ends() {
        let freed = Arc::new(StdAtomicUsize::new(0));
        let published = Published::new(Box::new(Tracked(freed.clone())), ());
        {
            let section = enter().unwrap();
            let old = published.get(&section);
            published
                .lock()
                .replace(Box::new(Tracked(Arc::new(StdAtomicUsize::new(0)))));
            synchronize();
            assert_eq!(freed.load(Ordering::SeqCst), 0);
            assert!(pending());
            assert_eq!(old.0.load(Ordering::SeqCst), 0, "still valid");
        }
        // Outside the section now: freed by the next reclamation whose
        // grace period is over (tests running in parallel may hold read
        // sections or parked strands across one `synchronize`).
        for _ in 0..100 {
            synchronize();
            if freed.load(Ordering::SeqCst) == 1 {
                break;
            }
        }
        assert_eq!(freed.load(Ordering::SeqCst), 1);
    }

    #[test]
    fn a_parked_strand_inside_a_raise_holds_reclamation() {
        let freed = Arc::new(StdAtomicUsize::new(0));
        let published = Published::new(Box::new(Tracked(freed.clone())), ());
        let section = enter().unwrap();
        // Switched out mid-raise: the next strand starts at depth 0.
        let parked = park();
        assert_eq!(super::depth(), 0);
        published
            .lock()
            .replace(Box::new(Tracked(Arc::new(StdAtomicUsize::new(0)))));
        synchronize();
        assert_eq!(
            freed.load(Ordering::SeqCst),
            0,
            "the parked raise may use it"
        );
        parked.resume();
        assert_eq!(super::depth(), 1);
        drop(section);
        for _ in 0..100 {
            synchronize();
            if freed.load(Ordering::SeqCst) == 1 {
                break;
            }
        }
        assert_eq!(freed.load(Ordering::SeqCst), 1);
    }

    #[test]
    fn interrupt_marks_nest_and_park_with_the_strand() {
        assert!(!in_interrupt());
        interrupt_enter();
        interrupt_enter();
        assert!(in_interrupt());
        let parked = park();
        assert!(!in_interrupt(), "the next strand runs in thread context");
        parked.resume();
        interrupt_leave();
        assert!(in_interrupt());
        interrupt_leave();
        assert!(!in_interrupt());
    }
}

#[cfg(all(test, loom))]
mod loom_tests {
    use super::*;
    use loom::sync::Arc;
    use loom::sync::atomic::AtomicUsize as LoomUsize;

    /// A value whose contents a reader checks after the writer may have
    /// retired it; freeing sets `alive` to 0 first.
    struct Value {
        alive: Arc<LoomUsize>,
        payload: loom::cell::UnsafeCell<u64>,
    }

    impl Drop for Value {
        fn drop(&mut self) {
            // A write access: loom reports it if it races with a reader's
            // read access below (no happens-before from the reader's end).
            self.payload.with_mut(|p| {
                // SAFETY: `&mut self`; loom checks the access.
                unsafe { *p = 0 }
            });
            self.alive.store(0, Ordering::Relaxed);
        }
    }

    #[test]
    fn a_reader_never_sees_a_freed_table() {
        loom::model(|| {
            let first_alive = Arc::new(LoomUsize::new(1));
            let published = Arc::new(Published::new(
                Box::new(Value {
                    alive: first_alive.clone(),
                    payload: loom::cell::UnsafeCell::new(7),
                }),
                (),
            ));
            let reader = {
                let published = published.clone();
                loom::thread::spawn(move || {
                    let section = enter().unwrap();
                    let value = published.get(&section);
                    let payload = value.payload.with(|p| {
                        // SAFETY: read access, checked by loom.
                        unsafe { *p }
                    });
                    assert!(payload == 7 || payload == 8);
                    drop(section);
                })
            };
            published.lock().replace(Box::new(Value {
                alive: Arc::new(LoomUsize::new(1)),
                payload: loom::cell::UnsafeCell::new(8),
            }));
            try_reclaim();
            reader.join().unwrap();
            try_reclaim();
        });
    }
}
