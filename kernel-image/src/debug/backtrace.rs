//! Backtraces: a call chain captured into a fixed buffer, then printed with
//! demangled function names and offsets, and the extension each frame
//! belongs to.
//!
//! Capturing and printing are separate, so that a fault that is contained
//! (the kernel survives it) can capture where it happened, unwind, and
//! print afterwards; print before the extension is unloaded, or its frames
//! lose their names. The panic handler does both at once.
//!
//! The format, one frame a line (`cargo xtask run` adds `at FILE:LINE`
//! lines from the unstripped ELF files on the host; the kernel carries no
//! DWARF):
//!
//! ```text
//! backtrace (kernel image at 0xffffffff80000000, most recent call first):
//!    0: 0xffffffff80012345  spindle_kernel::panic::panic+0x5d
//!    ...
//!    6: 0xffffffff90000b31  hello::greet+0x21  [hello +0xb31]
//!   (end: no unwind information for 0xffffffff8000a0f0)
//! ```

use core::fmt::{self, Write};

use super::extensions::{Registry, try_snapshot};
use super::symbols;
use super::unwind::{self, Registers, StopReason};

/// Most frames kept.
pub const MAX_FRAMES: usize = 64;

/// A captured call chain (addresses only; see the module docs).
#[derive(Clone)]
pub struct Backtrace {
    frames: [u64; MAX_FRAMES],
    len: usize,
    /// Whether `frames[0]` is an instruction address (a fault's) rather
    /// than a return address.
    starts_at_instruction: bool,
    stop: StopReason,
}

impl Backtrace {
    /// The chain of calls that led to the caller of this function, the
    /// caller first.
    #[inline(never)]
    pub fn capture() -> Self {
        Self::walk(unwind::here(), false)
    }

    /// The chain starting at an interrupted context (e.g. the registers an
    /// exception saved): `registers.rip` first, then its callers.
    pub fn from_registers(registers: Registers) -> Self {
        Self::walk(registers, true)
    }

    /// A chain of return addresses recorded elsewhere (at most
    /// [`MAX_FRAMES`] are kept), to print them symbolised.
    pub fn from_return_addresses(addresses: &[u64]) -> Self {
        let mut frames = [0; MAX_FRAMES];
        let len = addresses.len().min(MAX_FRAMES);
        frames[..len].copy_from_slice(&addresses[..len]);
        Self {
            frames,
            len,
            starts_at_instruction: false,
            stop: if addresses.len() > MAX_FRAMES {
                StopReason::DepthLimit
            } else {
                StopReason::EndOfStack
            },
        }
    }

    fn walk(start: Registers, include_start: bool) -> Self {
        let mut frames = [0; MAX_FRAMES];
        let snapshot = try_snapshot();
        let (len, stop) = unwind::walk(
            start,
            include_start,
            symbols::kernel(),
            snapshot.as_deref(),
            &mut frames,
        );
        Self {
            frames,
            len,
            starts_at_instruction: include_start,
            stop,
        }
    }

    /// Each frame's address as it is symbolised (a return address one
    /// byte back, inside its call instruction), innermost first.
    pub fn lookup_addresses(&self) -> impl Iterator<Item = u64> + '_ {
        (0..self.len).map(|index| self.lookup_address(index))
    }

    /// Why the walk ended.
    pub fn stop_reason(&self) -> StopReason {
        self.stop
    }

    /// The address to symbolise frame `index` with: a return address is
    /// looked up one byte back, inside the call instruction.
    fn lookup_address(&self, index: usize) -> u64 {
        let address = self.frames[index];
        if index == 0 && self.starts_at_instruction {
            address
        } else {
            address.saturating_sub(1)
        }
    }

    /// Prints the chain, one frame a line, symbolised where possible.
    /// Allocates nothing; the extension registry is only tried, never
    /// waited for.
    pub fn print(&self, out: &mut dyn Write) -> fmt::Result {
        let kernel = symbols::kernel();
        let snapshot = try_snapshot();
        match kernel {
            Some(k) => writeln!(
                out,
                "backtrace (kernel image at {:#x}, most recent call first):",
                k.load_bias
            )?,
            None => writeln!(
                out,
                "backtrace (no kernel symbols yet, most recent call first):"
            )?,
        }
        for index in 0..self.len {
            let address = self.frames[index];
            write!(out, "  {index:>2}: {address:#018x}  ")?;
            describe(
                out,
                address,
                self.lookup_address(index),
                kernel,
                snapshot.as_deref(),
            )?;
            writeln!(out)?;
        }
        let shown = match self.stop {
            StopReason::NoUnwindInfo(_) | StopReason::EndOfStack => "end",
            _ => "stopped",
        };
        writeln!(out, "  ({shown}: {})", self.stop)
    }
}

/// Writes what is known about `address` (resolved at `lookup`).
fn describe(
    out: &mut dyn Write,
    address: u64,
    lookup: u64,
    kernel: Option<&symbols::KernelImage>,
    extensions: Option<&Registry>,
) -> fmt::Result {
    let offset_from = |resolved: symbols::Resolved<'_>| address - (lookup - resolved.offset);
    if let Some(kernel) = kernel
        && kernel.text.contains(&lookup)
    {
        return match kernel.functions.lookup(lookup) {
            Some(f) => write!(
                out,
                "{:#}+{:#x}",
                rustc_demangle::demangle(f.name),
                offset_from(f)
            ),
            None => out.write_str("?"),
        };
    }
    let Some(registry) = extensions else {
        return out.write_str("? (extension symbols unavailable: registry locked)");
    };
    match registry.find(lookup) {
        Some(frame) => {
            match frame.function {
                Some(f) => write!(
                    out,
                    "{:#}+{:#x}",
                    rustc_demangle::demangle(f.name),
                    offset_from(f)
                )?,
                None => out.write_str("?")?,
            }
            write!(
                out,
                "  [{} +{:#x}]",
                frame.name,
                frame.image_offset + (address - lookup)
            )
        }
        None => out.write_str("? (not in the kernel or a loaded extension)"),
    }
}

impl fmt::Display for Backtrace {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        self.print(f)
    }
}
