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
//! Contexts: unwinding cannot cross an interrupt frame, so an interrupt or
//! exception handler runs with its own catch depth of zero
//! ([`InterruptContext`]); a panic there stops the machine unless the
//! handler itself opened a catch frame.

use alloc::boxed::Box;
use core::cell::Cell;
use core::fmt::{self, Write};
use core::panic::PanicInfo;

/// Longest panic message kept (longer ones are cut).
const MESSAGE_CAPACITY: usize = 240;
/// Longest source path kept.
const FILE_CAPACITY: usize = 120;

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
#[derive(Clone, Debug)]
pub struct Panicked {
    /// The panic message.
    pub message: FixedText<MESSAGE_CAPACITY>,
    /// Source file, line and column of the panic, if known.
    pub file: FixedText<FILE_CAPACITY>,
    /// Line of the panic (0 if unknown).
    pub line: u32,
    /// Column of the panic (0 if unknown).
    pub column: u32,
}

impl Panicked {
    /// The record of a panic, copied out of `info`.
    pub fn from_info(info: &PanicInfo<'_>) -> Self {
        let mut record = Self {
            message: FixedText::new(),
            file: FixedText::new(),
            line: 0,
            column: 0,
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
}

impl ContainmentState {
    /// No catch frame open.
    pub const fn new() -> Self {
        Self {
            depth: Cell::new(0),
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

/// Closes the catch frame it opened when dropped, also during an unwind.
struct Frame;

impl Frame {
    fn open() -> Self {
        let depth = &state().depth;
        depth.set(depth.get() + 1);
        Frame
    }
}

impl Drop for Frame {
    fn drop(&mut self) {
        let depth = &state().depth;
        depth.set(depth.get() - 1);
    }
}

/// Runs `f`; a panic inside it unwinds back here and is returned as
/// [`Panicked`]. Interrupts are re-enabled afterwards if they were enabled
/// on entry (a panic may have left them off).
pub fn catch<R>(f: impl FnOnce() -> R) -> Result<R, Box<Panicked>> {
    let interrupts = x86_64::instructions::interrupts::are_enabled();
    let result = {
        let _frame = Frame::open();
        unwinding::panic::catch_unwind(f)
    };
    if interrupts {
        x86_64::instructions::interrupts::enable();
    }
    result.map_err(|payload| match payload.downcast::<Panicked>() {
        Ok(record) => record,
        Err(_) => {
            let mut message = FixedText::new();
            let _ = message.write_str("panic with a foreign payload");
            Box::new(Panicked {
                message,
                file: FixedText::new(),
                line: 0,
                column: 0,
            })
        }
    })
}

/// Starts unwinding for the panic described by `info`. Returns only if no
/// catch frame took it (then the caller stops the machine).
pub fn begin_unwind(info: &PanicInfo<'_>) {
    let record: Box<Panicked> = Box::new(Panicked::from_info(info));
    let _code = unwinding::panic::begin_panic(record);
}

/// The catch depth of a strand while another runs: catch frames belong to
/// a strand, not to the CPU. The scheduler takes it when it switches a
/// strand out ([`StrandDepth::save`]) and gives it back when the strand
/// resumes; a new strand starts with none ([`StrandDepth::NONE`]).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct StrandDepth(usize);

impl StrandDepth {
    /// A strand with no catch frame open.
    pub const NONE: StrandDepth = StrandDepth(0);

    /// The running strand's depth, as it is switched out.
    pub fn save() -> Self {
        Self(state().depth.get())
    }

    /// Makes this the depth of the strand that now runs.
    pub fn restore(self) {
        state().depth.set(self.0);
    }
}

/// Held by an interrupt or exception handler: the interrupted context's
/// catch frames are out of reach (unwinding cannot cross the interrupt
/// frame), so the handler starts with none and the old depth comes back
/// when it returns.
pub struct InterruptContext {
    saved: usize,
}

impl InterruptContext {
    /// Enters handler context.
    pub fn enter() -> Self {
        Self {
            saved: state().depth.replace(0),
        }
    }
}

impl Drop for InterruptContext {
    fn drop(&mut self) {
        state().depth.set(self.saved);
    }
}
