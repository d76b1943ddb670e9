//! Extension faults: the boundary at each place the kernel hands control to
//! code that may run an extension, and what happens to an extension whose
//! code panicked there.
//!
//! **The boundary sits at the kernel's entries into extension code**, not
//! around each binding: the raise of a kernel event (`Console.Line` by the
//! shell, `Clock.Tick` by the timer interrupt, the strand service's signals
//! and `Sched.PickNext` by the scheduler), a strand's entry (an extension's
//! strand, or a kernel strand running an asynchronous handler), and an
//! extension's `init` and `exit` (the loader's own boundary). The raise path
//! itself is untouched: no per-binding wrapper, no per-call bookkeeping,
//! nothing paid when nothing panics beyond one catch frame per kernel raise
//! site (inlined: a compare, a counter increment and decrement, and the
//! call under `catch_unwind` made as an `invoke` with a landing pad).
//!
//! **The culprit is found from the stack, not from the binding.** Before
//! unwinding, the panic handler walks the stack with the unwind tables
//! ([`crate::debug::backtrace`]) and names the loaded extension that owns
//! the innermost frame in an extension's image ([`culprit`]). That frame is
//! the extension whose code was running when the panic began: its own
//! `panic!`, or a kernel function (`unwrap`, an index check, an allocation)
//! it called. A panic with no extension frame on the stack is a kernel bug
//! and stays fatal, with its backtrace, exactly as without the boundary.
//! An extension that raises another extension's event whose handler panics
//! is not blamed: the innermost extension frame belongs to the handler.
//!
//! **Containment** ([`call_extensions`]): the panic unwinds to the
//! boundary, running the destructors of every frame in between (the
//! dispatcher's plan references, locks' guards, the extension's own
//! values); the raise returns [`ExtensionFailed`]; a report (extension,
//! site, message, location, symbolised backtrace, formatted at once while
//! the extension's symbols are still registered) is queued; the extension
//! is unloaded as failed — its `exit` is not called, its principal is
//! revoked (every binding), its strands are killed and reaped, the kernel
//! waits for raises in progress to drop its handlers, then its image is
//! unmapped and its frames freed ([`handle_pending`]). Unloading needs
//! thread context, so it runs right after the raise in the shell, and in an
//! asynchronous job (a kernel strand) when the fault was in an interrupt or
//! in another strand ([`kick`]). Extensions that import from the failed one
//! are unloaded first, with their `exit`.

use alloc::boxed::Box;
use alloc::collections::VecDeque;
use alloc::string::String;
use core::fmt::{self, Write};
use core::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering};

use x86_64::instructions::interrupts;

use super::{FixedText, NAME_CAPACITY, Panicked, Takes, catch_as, catches_everything};
use crate::debug::backtrace::Backtrace;
use crate::debug::extensions::try_snapshot;
use crate::println;

/// How many contained faults `faults` lists.
const HISTORY: usize = 8;
/// Longest reason kept in the history.
const REASON_CAPACITY: usize = 200;

/// A raise (or another entry into extension code) abandoned because an
/// extension's code panicked under it. One pointer, so that the result of
/// a boundary is hardly larger than the result it wraps: every caller
/// moves it, and the error is rare.
#[derive(Clone, Debug)]
pub struct ExtensionFailed(Box<Failure>);

#[derive(Clone, Debug)]
struct Failure {
    extension: FixedText<NAME_CAPACITY>,
    site: &'static str,
}

impl ExtensionFailed {
    fn new(extension: FixedText<NAME_CAPACITY>, site: &'static str) -> Self {
        Self(Box::new(Failure { extension, site }))
    }

    /// The extension blamed.
    pub fn extension(&self) -> &str {
        self.0.extension.as_str()
    }

    /// Where the kernel had called in (`Console.Line`, `Clock.Tick`, ...).
    pub fn site(&self) -> &'static str {
        self.0.site
    }
}

impl fmt::Display for ExtensionFailed {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "extension '{}' failed during {}",
            self.0.extension, self.0.site
        )
    }
}

/// The loaded extension owning the innermost extension frame of
/// `backtrace`, if any. `None` too if the debug registry is being changed
/// at this moment (then the panic is treated as the kernel's).
pub fn culprit(backtrace: &Backtrace) -> Option<FixedText<NAME_CAPACITY>> {
    let registry = try_snapshot()?;
    backtrace.lookup_addresses().find_map(|address| {
        registry.find(address).map(|frame| {
            let mut name = FixedText::new();
            let _ = name.write_str(frame.name);
            name
        })
    })
}

/// Runs `f`, which may call into extensions, at the boundary `site`. A
/// panic in an extension's code unwinds back here: the extension is
/// reported and queued for unloading, and the caller gets
/// [`ExtensionFailed`]; the caller then calls [`handle_pending`] from
/// thread context. Any other panic is not taken (see the module docs).
#[inline]
pub fn call_extensions<R>(site: &'static str, f: impl FnOnce() -> R) -> Result<R, ExtensionFailed> {
    boundary(site, interrupts::are_enabled(), f)
}

/// [`call_extensions`] for a caller that runs with interrupts enabled (the
/// shell's commands): the boundary does not read the flag it restores after
/// a panic (`pushfq`, a helper call under TCG). The caller checks its claim where that is cheap (the shell,
/// once per command, in debug builds).
#[inline]
pub fn call_extensions_interruptible<R>(
    site: &'static str,
    f: impl FnOnce() -> R,
) -> Result<R, ExtensionFailed> {
    boundary(site, true, f)
}

#[inline(always)]
fn boundary<R>(
    site: &'static str,
    interrupts: bool,
    f: impl FnOnce() -> R,
) -> Result<R, ExtensionFailed> {
    match catch_as(Takes::ExtensionFaults, interrupts, f) {
        Ok(value) => Ok(value),
        Err(panicked) => Err(contain(site, panicked)),
    }
}

/// [`call_extensions`] for a caller that cannot unload (an interrupt
/// handler, the scheduler): a fault is left to an asynchronous job, which
/// the next [`kick`] queues.
#[inline]
pub fn call_extensions_deferred<R>(
    site: &'static str,
    f: impl FnOnce() -> R,
) -> Result<R, ExtensionFailed> {
    let result = call_extensions(site, f);
    if result.is_err() {
        JOB_WANTED.store(true, Ordering::Release);
    }
    result
}

/// Handles a panic caught at an extension boundary: a kernel panic is
/// passed on to the catch frame that takes it (or is fatal).
#[cold]
#[inline(never)]
fn contain(site: &'static str, panicked: Box<Panicked>) -> ExtensionFailed {
    if panicked.culprit.is_none() {
        if catches_everything() {
            super::resume_unwind(panicked.clone());
        }
        crate::panic::fatal_caught(&panicked);
    }
    report(site, &panicked)
}

/// Records a panic whose culprit is known: the report is formatted now
/// and the extension queued for unloading. Returns what the caller of the
/// boundary is told. Safe in interrupt context (allocates, never waits).
pub fn report(site: &'static str, panicked: &Panicked) -> ExtensionFailed {
    let extension = panicked.culprit.clone().unwrap_or_default();
    let failed = ExtensionFailed::new(extension.clone(), site);
    FAULTS.fetch_add(1, Ordering::Relaxed);
    if !mark_failed(&extension) {
        // Failed already: reported once, and its unload is on its way.
        return failed;
    }
    let mut reason = FixedText::new();
    let _ = write!(reason, "{panicked}");
    // Interrupts off while the debug registry is held for the symbols.
    interrupts::without_interrupts(|| {
        let mut text = String::new();
        let _ = writeln!(text, "{failed}: {panicked}");
        if let Some(backtrace) = &panicked.backtrace {
            let _ = backtrace.print(&mut text);
        }
        let mut pending = PENDING.lock();
        if !pending.iter().any(|f| f.extension == extension.as_str()) {
            pending.push_back(Fault {
                extension: String::from(extension.as_str()),
                report: text,
            });
        }
        let mut history = HISTORY_LOG.lock();
        let slot = (history.total % HISTORY as u64) as usize;
        history.entries[slot] = Some(Summary {
            extension,
            site,
            reason,
        });
        history.total += 1;
    });
    failed
}

/// Most extensions marked failed and not yet unloaded at once.
const MAX_FAILED: usize = 8;

/// Extensions marked failed, until their unload is over.
static FAILED: spin::Mutex<[Option<FixedText<NAME_CAPACITY>>; MAX_FAILED]> =
    spin::Mutex::new([const { None }; MAX_FAILED]);
/// How many entries of [`FAILED`] are taken (read first, without the lock).
static FAILED_COUNT: AtomicUsize = AtomicUsize::new(0);

/// Marks `extension` failed; false if it was already.
fn mark_failed(extension: &FixedText<NAME_CAPACITY>) -> bool {
    interrupts::without_interrupts(|| {
        let mut failed = FAILED.lock();
        if failed
            .iter()
            .flatten()
            .any(|f| f.as_str() == extension.as_str())
        {
            return false;
        }
        if let Some(free) = failed.iter_mut().find(|f| f.is_none()) {
            *free = Some(extension.clone());
            FAILED_COUNT.fetch_add(1, Ordering::Release);
        }
        true
    })
}

/// Clears the mark once `extension` is unloaded.
fn unmark_failed(extension: &str) {
    interrupts::without_interrupts(|| {
        let mut failed = FAILED.lock();
        for entry in failed.iter_mut() {
            if entry.as_ref().is_some_and(|f| f.as_str() == extension) {
                *entry = None;
                FAILED_COUNT.fetch_sub(1, Ordering::Release);
            }
        }
    });
}

/// Whether the extension `name` failed and awaits its unload. The kernel's
/// authorizers impose this as a guard on every extension binding of the
/// kernel's events, so a failed extension's handlers stop being called at
/// once, in any context, before the unload revokes them: one atomic load
/// while no extension is failed.
pub fn is_failed(name: &str) -> bool {
    if FAILED_COUNT.load(Ordering::Acquire) == 0 {
        return false;
    }
    interrupts::without_interrupts(|| FAILED.lock().iter().flatten().any(|f| f.as_str() == name))
}

/// A fault waiting for its extension to be unloaded.
struct Fault {
    extension: String,
    report: String,
}

/// One line of `faults`.
#[derive(Clone)]
pub struct Summary {
    /// The extension blamed.
    pub extension: FixedText<NAME_CAPACITY>,
    /// Where the kernel had called in.
    pub site: &'static str,
    /// The panic message and location.
    pub reason: FixedText<REASON_CAPACITY>,
}

struct History {
    entries: [Option<Summary>; HISTORY],
    total: u64,
}

static PENDING: spin::Mutex<VecDeque<Fault>> = spin::Mutex::new(VecDeque::new());
static HISTORY_LOG: spin::Mutex<History> = spin::Mutex::new(History {
    entries: [const { None }; HISTORY],
    total: 0,
});
static FAULTS: AtomicU64 = AtomicU64::new(0);
static JOB_QUEUED: AtomicBool = AtomicBool::new(false);
/// A fault was reported where nobody will unload: [`kick`] queues a job.
static JOB_WANTED: AtomicBool = AtomicBool::new(false);

/// Faults contained since boot.
pub fn count() -> u64 {
    FAULTS.load(Ordering::Relaxed)
}

/// The latest contained faults, oldest first.
pub fn history() -> alloc::vec::Vec<Summary> {
    interrupts::without_interrupts(|| {
        let history = HISTORY_LOG.lock();
        let first = history.total.saturating_sub(HISTORY as u64);
        (first..history.total)
            .filter_map(|n| history.entries[(n % HISTORY as u64) as usize].clone())
            .collect()
    })
}

/// Asks [`kick`] for a job: a fault was reported by [`report`] where
/// nobody will call [`handle_pending`].
pub fn want_job() {
    JOB_WANTED.store(true, Ordering::Release);
}

/// Makes sure faults reported where nobody unloads get handled from
/// thread context: queues one asynchronous job (a kernel strand) if such a
/// fault is waiting. Callable from the timer interrupt; not from inside
/// the scheduler.
pub fn kick() {
    if !JOB_WANTED.load(Ordering::Acquire) {
        return;
    }
    let waiting = interrupts::without_interrupts(|| !PENDING.lock().is_empty());
    if !waiting {
        // Handled meanwhile by a caller of `handle_pending`.
        JOB_WANTED.store(false, Ordering::Release);
        return;
    }
    if !JOB_QUEUED.swap(true, Ordering::AcqRel) {
        JOB_WANTED.store(false, Ordering::Release);
        crate::strands::run_later(Box::new(|| {
            JOB_QUEUED.store(false, Ordering::Release);
            handle_pending();
        }));
    }
}

/// Prints each pending fault's report and unloads its extension. Thread
/// context only (unloading waits for raises in progress). Returns how many
/// faults were handled.
pub fn handle_pending() -> usize {
    let mut handled = 0;
    loop {
        let fault = interrupts::without_interrupts(|| {
            let mut pending = PENDING.lock();
            let fault = pending.pop_front();
            if pending.is_empty() {
                // Leave no allocation behind.
                *pending = VecDeque::new();
            }
            fault
        });
        let Some(fault) = fault else {
            return handled;
        };
        println!("{}", fault.report.trim_end());
        drop(fault.report);
        unload_failed(&fault.extension, 0);
        unmark_failed(&fault.extension);
        handled += 1;
    }
}

/// Deepest chain of dependents unloaded before a failed extension.
const MAX_DEPENDENT_DEPTH: usize = 8;

/// Unloads the failed extension `name` (without its `exit`), after the
/// loaded extensions that import from it (with theirs).
fn unload_failed(name: &str, depth: usize) {
    for dependent in crate::loader::with(|l| l.dependents(name))
        .into_iter()
        .rev()
    {
        if depth >= MAX_DEPENDENT_DEPTH {
            break;
        }
        unload_dependent(&dependent, depth + 1);
    }
    // Each line is formatted first and printed in one piece: this may run
    // in a kernel strand while the shell prints, and the console takes its
    // lock per piece of a formatted line.
    match crate::loader::with(|l| l.unload_failed(name)) {
        Ok(report) => {
            let line = alloc::format!(
                "extension '{name}' unloaded (failed): {} binding(s) revoked, its strands stopped, its memory freed",
                report.revoked
            );
            println!("{line}");
            crate::shell::extensions::print_heap_release(name, report.heap);
        }
        // Unloaded meanwhile (a second fault of the same extension).
        Err(loader::UnloadError::NotLoaded(_)) => {}
        Err(loader::UnloadError::BindingsStillAlive { revoked, alive, .. }) => {
            let line = alloc::format!(
                "extension '{name}' unloaded (failed): {revoked} binding(s) revoked, its strands stopped; its memory is freed once raises in progress let go of {alive} handler object(s)"
            );
            println!("{line}");
            crate::loader::collect_retained_later();
        }
        Err(e) => println!("error: unloading the failed extension '{name}': {e}"),
    }
}

/// Unloads `name`, which depends on a failed extension.
fn unload_dependent(name: &str, depth: usize) {
    for dependent in crate::loader::with(|l| l.dependents(name))
        .into_iter()
        .rev()
    {
        if depth >= MAX_DEPENDENT_DEPTH {
            break;
        }
        unload_dependent(&dependent, depth + 1);
    }
    match crate::loader::unload(name) {
        Ok(_) => println!("extension '{name}' unloaded: it imports from a failed extension"),
        Err(loader::UnloadError::NotLoaded(_)) => {}
        Err(e) => println!("error: unloading '{name}', which depends on a failed extension: {e}"),
    }
}
