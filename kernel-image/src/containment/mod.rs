//! The containment boundary: where the kernel calls code that may panic and
//! must survive it (an extension's `init`, its handlers), a panic unwinds
//! back to the boundary instead of stopping the machine.
//!
//! [`catch`] runs a closure inside a catch frame. The panic handler
//! ([`crate::panic`]) starts an unwind only when the current context has a
//! catch frame ([`may_unwind`]) and the panic can unwind; the unwinder
//! (the `unwinding` crate, with the kernel's own unwind tables and every
//! loaded extension's registered at load) then runs the destructors of every
//! frame between the panic and the boundary, and [`catch`] returns
//! [`Panicked`] with the message and location, copied into the record so
//! that nothing points into the (possibly unloaded) code that panicked.
//!
//! Two kinds of catch frame: [`catch`] takes any panic (a strand's entry,
//! an extension's `init`/`exit`, the kernel's own tests), while
//! [`faults::call_extensions`] sits where the kernel calls into code that
//! may run extensions (a raise of a kernel event, a strand running an
//! extension's code) and takes only panics that have an extension frame on
//! the stack: the panic handler walks the stack first ([`begin_unwind`])
//! and a kernel bug under such a frame stays fatal, with its backtrace.
//!
//! Contexts: unwinding cannot cross an interrupt frame, so an interrupt or
//! exception handler runs with its own catch depth of zero
//! ([`InterruptContext`]); a panic there stops the machine unless the
//! handler itself opened a catch frame (the timer opens one around the
//! `Clock.Tick` raise).

pub mod capture_stack;
pub mod faults;
pub mod interrupt_stack;
pub mod watchdog;

use alloc::boxed::Box;
use core::cell::Cell;
use core::fmt::{self, Write};
use core::panic::PanicInfo;

use crate::debug::backtrace::Backtrace;

/// Longest panic message kept (longer ones are cut).
const MESSAGE_CAPACITY: usize = 240;
/// Longest source path kept.
const FILE_CAPACITY: usize = 120;
/// Longest extension name kept.
pub const NAME_CAPACITY: usize = 64;

/// Text in a fixed buffer: formatting into it never allocates and never
/// fails; what does not fit is dropped.
#[derive(Clone)]
pub struct FixedText<const N: usize> {
    bytes: [u8; N],
    len: usize,
    truncated: bool,
}

impl<const N: usize> FixedText<N> {
    /// Empty text.
    pub const fn new() -> Self {
        Self {
            bytes: [0; N],
            len: 0,
            truncated: false,
        }
    }

    /// The text (whole UTF-8 characters only).
    pub fn as_str(&self) -> &str {
        match core::str::from_utf8(&self.bytes[..self.len]) {
            Ok(text) => text,
            Err(e) => core::str::from_utf8(&self.bytes[..e.valid_up_to()]).unwrap_or(""),
        }
    }
}

impl<const N: usize> Default for FixedText<N> {
    fn default() -> Self {
        Self::new()
    }
}

impl<const N: usize> Write for FixedText<N> {
    fn write_str(&mut self, s: &str) -> fmt::Result {
        let room = N - self.len;
        let mut take = s.len().min(room);
        while !s.is_char_boundary(take) {
            take -= 1;
        }
        self.bytes[self.len..self.len + take].copy_from_slice(&s.as_bytes()[..take]);
        self.len += take;
        if take < s.len() {
            self.truncated = true;
        }
        Ok(())
    }
}

impl<const N: usize> fmt::Display for FixedText<N> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())?;
        if self.truncated {
            f.write_str("...")?;
        }
        Ok(())
    }
}

impl<const N: usize> fmt::Debug for FixedText<N> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Debug::fmt(self.as_str(), f)
    }
}

/// A panic caught at a boundary: its message and where it was raised.
#[derive(Clone)]
pub struct Panicked {
    /// The panic message.
    pub message: FixedText<MESSAGE_CAPACITY>,
    /// Source file, line and column of the panic, if known.
    pub file: FixedText<FILE_CAPACITY>,
    /// Line of the panic (0 if unknown).
    pub line: u32,
    /// Column of the panic (0 if unknown).
    pub column: u32,
    /// The loaded extension that owns the innermost extension frame on the
    /// panicking stack, if any (see [`faults::culprit`]).
    pub culprit: Option<FixedText<NAME_CAPACITY>>,
    /// Where the panic was raised, captured before unwinding.
    pub backtrace: Option<Backtrace>,
}

impl Panicked {
    /// The record of a panic, copied out of `info`.
    pub fn from_info(info: &PanicInfo<'_>) -> Self {
        let mut record = Self {
            message: FixedText::new(),
            file: FixedText::new(),
            line: 0,
            column: 0,
            culprit: None,
            backtrace: None,
        };
        let _ = write!(record.message, "{}", info.message());
        if let Some(location) = info.location() {
            let _ = record.file.write_str(location.file());
            record.line = location.line();
            record.column = location.column();
        }
        record
    }
}

impl fmt::Debug for Panicked {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Panicked")
            .field("message", &self.message)
            .field("file", &self.file)
            .field("line", &self.line)
            .field("column", &self.column)
            .field("culprit", &self.culprit)
            .finish_non_exhaustive()
    }
}

impl fmt::Display for Panicked {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "panicked at {}:{}:{}: {}",
            self.file, self.line, self.column, self.message
        )
    }
}

/// Per-CPU containment state.
pub struct ContainmentState {
    /// Catch frames open in the current context (see the module docs).
    depth: Cell<usize>,
    /// Of those, the frames that take any panic ([`catch`]).
    catch_all: Cell<usize>,
    /// Timer ticks that found this context in extension code since its
    /// outermost extension-fault frame opened (see [`watchdog`]).
    extension_samples: Cell<u32>,
}

impl ContainmentState {
    /// No catch frame open.
    pub const fn new() -> Self {
        Self {
            depth: Cell::new(0),
            catch_all: Cell::new(0),
            extension_samples: Cell::new(0),
        }
    }
}

impl Default for ContainmentState {
    fn default() -> Self {
        Self::new()
    }
}

/// This CPU's state. One CPU today; interrupts save and restore the depth
/// around their handlers, so a plain cell is enough.
#[inline(always)]
fn state() -> &'static ContainmentState {
    static CPU0: CpuLocal = CpuLocal(ContainmentState::new());
    &CPU0.0
}

struct CpuLocal(ContainmentState);

// SAFETY: the state is only touched by the CPU it belongs to (one CPU
// today), and every handler that interrupts a use restores what it changed
// before returning (`InterruptContext`), so accesses never overlap.
unsafe impl Sync for CpuLocal {}

/// Whether a panic raised now may unwind: a catch frame is open in the
/// current context.
pub fn may_unwind() -> bool {
    state().depth.get() > 0
}

/// Whether a frame that takes any panic is open in the current context.
fn catches_everything() -> bool {
    state().catch_all.get() > 0
}

/// What a catch frame takes.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Takes {
    /// Any panic.
    Everything,
    /// Panics with an extension frame on the stack.
    ExtensionFaults,
}

/// Closes the catch frame it opened when dropped, also during an unwind.
struct Frame(Takes);

impl Frame {
    #[inline(always)]
    fn open(takes: Takes) -> Self {
        let state = state();
        let depth = state.depth.get();
        if takes == Takes::ExtensionFaults && depth == state.catch_all.get() {
            // A new call into extensions: the watchdog starts counting.
            state.extension_samples.set(0);
        }
        // Depths are bounded by the stack (a frame per level), so they
        // cannot overflow; wrapping arithmetic keeps the check (and its
        // branch) off the boundary.
        state.depth.set(depth.wrapping_add(1));
        if takes == Takes::Everything {
            state.catch_all.set(state.catch_all.get().wrapping_add(1));
        }
        Frame(takes)
    }
}

impl Drop for Frame {
    #[inline(always)]
    fn drop(&mut self) {
        let state = state();
        state.depth.set(state.depth.get().wrapping_sub(1));
        if self.0 == Takes::Everything {
            state.catch_all.set(state.catch_all.get().wrapping_sub(1));
        }
    }
}

/// Runs `f`; a panic inside it unwinds back here and is returned as
/// [`Panicked`]. After a panic (which disables interrupts) they are enabled
/// again if they were enabled on entry.
pub fn catch<R>(f: impl FnOnce() -> R) -> Result<R, Box<Panicked>> {
    catch_as(
        Takes::Everything,
        x86_64::instructions::interrupts::are_enabled(),
        f,
    )
}

/// Runs `f` in a catch frame of kind `takes`, entered with interrupts
/// enabled (`interrupts`) or not: the flag restored after a panic. The
/// caller reads it (one `pushfq`) or knows it.
#[inline(always)]
fn catch_as<R>(takes: Takes, interrupts: bool, f: impl FnOnce() -> R) -> Result<R, Box<Panicked>> {
    let result = {
        let _frame = Frame::open(takes);
        unwinding::panic::catch_unwind(f)
    };
    match result {
        Ok(value) => Ok(value),
        Err(payload) => Err(caught(payload, interrupts)),
    }
}

/// The record of a panic caught by a catch frame entered with interrupts
/// `enabled` or not. The panic disabled them ([`begin_unwind`]); they are
/// enabled again if they were on at the boundary. A closure that returns
/// leaves the flag as it set it, so the boundary reads it once, on entry.
#[cold]
#[inline(never)]
fn caught(payload: Box<dyn core::any::Any + Send>, enabled: bool) -> Box<Panicked> {
    if enabled {
        x86_64::instructions::interrupts::enable();
    }
    match payload.downcast::<Panicked>() {
        Ok(record) => record,
        Err(_) => {
            let mut message = FixedText::new();
            let _ = message.write_str("panic with a foreign payload");
            Box::new(Panicked {
                message,
                file: FixedText::new(),
                line: 0,
                column: 0,
                culprit: None,
                backtrace: None,
            })
        }
    }
}

/// Starts unwinding for the panic described by `info`, after capturing
/// where it happened and which extension it happened in. Returns without
/// unwinding if only extension-fault frames are open and no extension frame
/// is on the stack (a kernel bug: the caller stops the machine), or if no
/// catch frame took it.
pub fn begin_unwind(info: &PanicInfo<'_>) {
    // No interrupt until the boundary: the unwinder's frame registry and
    // the debug registry are locked while the unwind looks frames up, and
    // a contained panic in an interrupt handler needs them too. The
    // boundary restores the interrupt flag it found.
    x86_64::instructions::interrupts::disable();
    let backtrace = Backtrace::capture();
    let culprit = faults::culprit(&backtrace);
    if culprit.is_none() && !catches_everything() {
        return;
    }
    let mut record: Box<Panicked> = Box::new(Panicked::from_info(info));
    record.culprit = culprit;
    record.backtrace = Some(backtrace);
    let _code = unwinding::panic::begin_panic(record);
}

/// Continues unwinding a caught panic towards the next catch frame out.
/// Returns only if none took it.
fn resume_unwind(record: Box<Panicked>) {
    let _code = unwinding::panic::begin_panic(record);
}

/// The catch depth of a strand while another runs: catch frames belong to
/// a strand, not to the CPU. The scheduler takes it when it switches a
/// strand out ([`StrandDepth::save`]) and gives it back when the strand
/// resumes; a new strand starts with none ([`StrandDepth::NONE`]).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct StrandDepth {
    depth: usize,
    catch_all: usize,
    extension_samples: u32,
}

impl StrandDepth {
    /// A strand with no catch frame open.
    pub const NONE: StrandDepth = StrandDepth {
        depth: 0,
        catch_all: 0,
        extension_samples: 0,
    };

    /// The running strand's depth, as it is switched out.
    pub fn save() -> Self {
        let state = state();
        Self {
            depth: state.depth.get(),
            catch_all: state.catch_all.get(),
            extension_samples: state.extension_samples.get(),
        }
    }

    /// Makes this the depth of the strand that now runs.
    pub fn restore(self) {
        let state = state();
        state.depth.set(self.depth);
        state.catch_all.set(self.catch_all);
        state.extension_samples.set(self.extension_samples);
    }

    /// Whether an extension-fault frame is open: the context is inside a
    /// kernel call into extensions (a raise, an asynchronous handler's job),
    /// whose extension code the watchdog times. A catch-everything frame
    /// alone (a strand's entry) is not such a call: a strand's own code
    /// may run for ever.
    pub fn in_extension_call(&self) -> bool {
        self.depth > self.catch_all
    }
}

/// Held by an interrupt or exception handler: the interrupted context's
/// catch frames are out of reach (unwinding cannot cross the interrupt
/// frame), so the handler starts with none and the old depth comes back
/// when it returns.
pub struct InterruptContext {
    saved: StrandDepth,
}

impl InterruptContext {
    /// Enters handler context.
    pub fn enter() -> Self {
        let saved = StrandDepth::save();
        StrandDepth::NONE.restore();
        Self { saved }
    }

    /// The interrupted context's containment state, restored on drop.
    pub fn interrupted(&mut self) -> &mut StrandDepth {
        &mut self.saved
    }
}

impl Drop for InterruptContext {
    fn drop(&mut self) {
        self.saved.restore();
    }
}
