//! A stack walker driven by the unwind tables: from a register state it
//! finds each caller's return address with the `.eh_frame` rules the
//! compiler emitted (the kernel's through its `.eh_frame_hdr` search table,
//! an extension's through the debug registry), the same information the
//! unwinder uses to run destructors.
//!
//! **Choice: our own walk over gimli rather than the unwinder's
//! `_Unwind_Backtrace`.** The unwinder looks every address up in its frame
//! registry under a spin lock, which a panic inside a registration (or in
//! an interrupt that arrived mid-unwind) would hold for ever; it can only
//! start from the current context, while a fault handler needs a walk from
//! the interrupted context's registers; and it allocates nothing but offers
//! no bound on the stack reads. This walker takes no lock but the debug
//! registry's try-lock, reads a stack word only after checking in the page
//! tables (read directly, without the paging lock) that it is mapped, stops
//! at a depth limit, and stops when the stack pointer stops growing or an
//! address has no unwind information: the entry of a strand, the
//! bootloader's call of `kernel_main`. Frame pointers were the other way:
//! they would cost a register and two instructions in every function of
//! the kernel and of every extension, while the unwind tables are already
//! there (built with `panic=unwind`).

use core::ops::Range;

use gimli::{
    BaseAddresses, CfaRule, EhFrame, EhFrameHdr, NativeEndian, Register, RegisterRule,
    UnwindContext, UnwindSection, UnwindTableRow, X86_64,
};

use super::extensions::Registry;
use super::symbols::KernelImage;
use crate::PHYSICAL_MEMORY_OFFSET;

type Slice = gimli::EndianSlice<'static, NativeEndian>;

/// The registers a walk needs: the program counter, the stack pointer, and
/// the callee-saved registers a frame's rules may restore.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Registers {
    /// Instruction pointer.
    pub rip: u64,
    /// Stack pointer.
    pub rsp: u64,
    /// Frame pointer (callee-saved).
    pub rbp: u64,
    /// Callee-saved.
    pub rbx: u64,
    /// Callee-saved.
    pub r12: u64,
    /// Callee-saved.
    pub r13: u64,
    /// Callee-saved.
    pub r14: u64,
    /// Callee-saved.
    pub r15: u64,
}

impl Registers {
    fn get(&self, register: Register) -> Option<u64> {
        Some(match register {
            X86_64::RSP => self.rsp,
            X86_64::RBP => self.rbp,
            X86_64::RBX => self.rbx,
            X86_64::R12 => self.r12,
            X86_64::R13 => self.r13,
            X86_64::R14 => self.r14,
            X86_64::R15 => self.r15,
            X86_64::RA => self.rip,
            _ => return None,
        })
    }

    fn slot(&mut self, register: Register) -> Option<&mut u64> {
        Some(match register {
            X86_64::RBP => &mut self.rbp,
            X86_64::RBX => &mut self.rbx,
            X86_64::R12 => &mut self.r12,
            X86_64::R13 => &mut self.r13,
            X86_64::R14 => &mut self.r14,
            X86_64::R15 => &mut self.r15,
            _ => return None,
        })
    }
}

/// The registers at the point of the call, inside the caller's frame: the
/// walk's first step then yields the caller's caller.
#[inline(always)]
pub fn here() -> Registers {
    let mut regs = Registers::default();
    // SAFETY: only reads registers into outputs; no memory is touched and
    // the stack is not used. `rbx` and `rbp` cannot be asm operands, so they
    // are copied with `mov`.
    unsafe {
        core::arch::asm!(
            "lea {rip}, [rip]",
            "mov {rsp}, rsp",
            "mov {rbp}, rbp",
            "mov {rbx}, rbx",
            rip = out(reg) regs.rip,
            rsp = out(reg) regs.rsp,
            rbp = out(reg) regs.rbp,
            rbx = out(reg) regs.rbx,
            options(nomem, nostack, preserves_flags),
        );
        core::arch::asm!(
            "mov {r12}, r12",
            "mov {r13}, r13",
            "mov {r14}, r14",
            "mov {r15}, r15",
            r12 = out(reg) regs.r12,
            r13 = out(reg) regs.r13,
            r14 = out(reg) regs.r14,
            r15 = out(reg) regs.r15,
            options(nomem, nostack, preserves_flags),
        );
    }
    regs
}

/// Why a walk stopped.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum StopReason {
    /// An address without unwind information: the outermost frame (a
    /// strand's entry, the bootloader's call of `kernel_main`), or code
    /// the kernel knows nothing about.
    NoUnwindInfo(u64),
    /// The frame buffer is full.
    DepthLimit,
    /// A return address of zero (the end of a stack).
    EndOfStack,
    /// A stack word the rules point at is not mapped.
    UnreadableStack(u64),
    /// The caller's stack pointer is not above the callee's.
    StackNotGrowing,
    /// A rule this walker does not evaluate (a DWARF expression).
    UnsupportedRule,
    /// The kernel's unwind tables are not known yet (before boot's
    /// `debug::init`).
    NoKernelTables,
    /// An extension's frame while the debug registry was locked: its
    /// tables could not be read.
    RegistryBusy,
    /// The unwind tables could not be parsed.
    BadTables,
}

impl core::fmt::Display for StopReason {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        match self {
            Self::NoUnwindInfo(at) => write!(f, "no unwind information for {at:#x}"),
            Self::DepthLimit => f.write_str("depth limit"),
            Self::EndOfStack => f.write_str("end of stack"),
            Self::UnreadableStack(at) => write!(f, "stack word at {at:#x} not mapped"),
            Self::StackNotGrowing => f.write_str("stack pointer did not grow"),
            Self::UnsupportedRule => f.write_str("unsupported unwind rule"),
            Self::NoKernelTables => f.write_str("kernel unwind tables not loaded yet"),
            Self::RegistryBusy => f.write_str("extension tables locked"),
            Self::BadTables => f.write_str("unreadable unwind tables"),
        }
    }
}

/// gimli's unwinding state, on the stack (no allocation).
struct OnStack;

impl gimli::UnwindContextStorage<usize> for OnStack {
    type Rules = [(Register, RegisterRule<usize>); 32];
    type Stack = [UnwindTableRow<usize, Self>; 2];
}

/// Walks the stack from `start`, writing each frame's address into
/// `frames`: `start.rip` first if `include_start`, then every return
/// address. Returns how many were written and why the walk stopped.
pub fn walk(
    start: Registers,
    include_start: bool,
    kernel: Option<&KernelImage>,
    extensions: Option<&Registry>,
    frames: &mut [u64],
) -> (usize, StopReason) {
    let Some(kernel) = kernel else {
        if include_start && let Some(slot) = frames.first_mut() {
            *slot = start.rip;
            return (1, StopReason::NoKernelTables);
        }
        return (0, StopReason::NoKernelTables);
    };
    let mut regs = start;
    let mut count = 0;
    if include_start {
        let Some(slot) = frames.get_mut(count) else {
            return (count, StopReason::DepthLimit);
        };
        *slot = regs.rip;
        count += 1;
    }
    let mut stack = MappedCache::default();
    // The start state is at an instruction; every later pc is a return
    // address, looked up one byte back (inside the call), since a call to a
    // function that never returns can be the last instruction of its own.
    let mut lookup = regs.rip;
    loop {
        let caller = match step(&regs, lookup, kernel, extensions, &mut stack) {
            Ok(caller) => caller,
            Err(reason) => return (count, reason),
        };
        if caller.rip == 0 {
            return (count, StopReason::EndOfStack);
        }
        if caller.rsp <= regs.rsp {
            return (count, StopReason::StackNotGrowing);
        }
        let Some(slot) = frames.get_mut(count) else {
            return (count, StopReason::DepthLimit);
        };
        *slot = caller.rip;
        count += 1;
        regs = caller;
        lookup = regs.rip - 1;
    }
}

/// Leaves the interrupted frame only: from `start`, an interrupted state at
/// an instruction inside an extension, follows the unwind rules for that
/// instruction one frame out and returns the caller's registers (`rip` the
/// return address into the caller, a call site whatever image it lies in;
/// `rsp` the stack pointer just after the return).
pub fn leave_interrupted_frame(
    start: Registers,
    kernel: &KernelImage,
    extensions: &Registry,
) -> Result<Registers, StopReason> {
    let mut stack = MappedCache::default();
    let caller = step(&start, start.rip, kernel, Some(extensions), &mut stack)?;
    if caller.rip == 0 {
        return Err(StopReason::EndOfStack);
    }
    if caller.rsp <= start.rsp {
        return Err(StopReason::StackNotGrowing);
    }
    Ok(caller)
}

/// Leaves extension code: from `start`, an interrupted state at an
/// instruction inside an extension, follows the unwind rules out through
/// the extension's frames (restoring callee-saved registers) to the first
/// caller whose return address is in the kernel's text, and returns that
/// caller's registers: `rip` is the return address into the kernel, `rsp`
/// the stack pointer just after the return (the return address is the
/// word below it), the callee-saved registers as the kernel frame had them.
/// Gives up after `max_frames` frames.
pub fn unwind_to_kernel(
    start: Registers,
    kernel: &KernelImage,
    extensions: &Registry,
    max_frames: usize,
) -> Result<Registers, StopReason> {
    let mut stack = MappedCache::default();
    let mut regs = start;
    let mut lookup = regs.rip;
    for _ in 0..max_frames {
        let caller = step(&regs, lookup, kernel, Some(extensions), &mut stack)?;
        if caller.rip == 0 {
            return Err(StopReason::EndOfStack);
        }
        if caller.rsp <= regs.rsp {
            return Err(StopReason::StackNotGrowing);
        }
        if kernel.text.contains(&caller.rip) {
            return Ok(caller);
        }
        regs = caller;
        lookup = regs.rip - 1;
    }
    Err(StopReason::DepthLimit)
}

/// The caller's registers, from the frame rules for `pc`.
fn step(
    regs: &Registers,
    pc: u64,
    kernel: &KernelImage,
    extensions: Option<&Registry>,
    stack: &mut MappedCache,
) -> Result<Registers, StopReason> {
    let mut context = UnwindContext::<usize, OnStack>::new_in();
    let row = if kernel.text.contains(&pc) {
        kernel_row(kernel, pc, &mut context)?
    } else {
        let registry = extensions.ok_or(StopReason::RegistryBusy)?;
        let frame = registry.find(pc).ok_or(StopReason::NoUnwindInfo(pc))?;
        extension_row(frame.unwind_tables, pc, &mut context)?
    };
    let cfa = match row.cfa() {
        CfaRule::RegisterAndOffset { register, offset } => regs
            .get(*register)
            .ok_or(StopReason::UnsupportedRule)?
            .wrapping_add_signed(*offset),
        CfaRule::Expression(_) => return Err(StopReason::UnsupportedRule),
    };
    let mut caller = *regs;
    caller.rsp = cfa;
    caller.rip = 0;
    let mut return_address = None;
    for (register, rule) in row.registers() {
        let value = match rule {
            RegisterRule::Undefined | RegisterRule::SameValue => continue,
            RegisterRule::Offset(offset) => stack.read(cfa.wrapping_add_signed(*offset))?,
            RegisterRule::ValOffset(offset) => cfa.wrapping_add_signed(*offset),
            RegisterRule::Register(other) => regs.get(*other).ok_or(StopReason::UnsupportedRule)?,
            _ => return Err(StopReason::UnsupportedRule),
        };
        if *register == X86_64::RA {
            return_address = Some(value);
        } else if let Some(slot) = caller.slot(*register) {
            *slot = value;
        }
    }
    caller.rip = return_address.ok_or(StopReason::EndOfStack)?;
    Ok(caller)
}

/// A `'static` slice over a mapped, read-only table.
///
/// # Safety
/// `range` must be mapped and unchanging for as long as the slice is used.
unsafe fn table_slice(range: &Range<u64>) -> &'static [u8] {
    let len = usize::try_from(range.end.saturating_sub(range.start)).unwrap_or(0);
    // SAFETY: forwarded from the caller.
    unsafe { core::slice::from_raw_parts(range.start as *const u8, len) }
}

fn kernel_row<'c>(
    kernel: &KernelImage,
    pc: u64,
    context: &'c mut UnwindContext<usize, OnStack>,
) -> Result<&'c UnwindTableRow<usize, OnStack>, StopReason> {
    if kernel.eh_frame_hdr.is_empty() || kernel.eh_frame.is_empty() {
        return Err(StopReason::NoKernelTables);
    }
    // SAFETY: both sections are part of the kernel image, mapped read-only
    // by the bootloader for the kernel's lifetime.
    let (hdr, frames) = unsafe {
        (
            table_slice(&kernel.eh_frame_hdr),
            table_slice(&kernel.eh_frame),
        )
    };
    let bases = BaseAddresses::default()
        .set_eh_frame_hdr(kernel.eh_frame_hdr.start)
        .set_eh_frame(kernel.eh_frame.start)
        .set_text(kernel.text.start);
    let header = EhFrameHdr::new(hdr, NativeEndian)
        .parse(&bases, 8)
        .map_err(|_| StopReason::BadTables)?;
    let eh_frame = EhFrame::new(frames, NativeEndian);
    let table = header.table().ok_or(StopReason::BadTables)?;
    let fde = table
        .fde_for_address(&eh_frame, &bases, pc, EhFrame::cie_from_offset)
        .map_err(|_| StopReason::NoUnwindInfo(pc))?;
    fde.unwind_info_for_address(&eh_frame, &bases, context, pc)
        .map_err(|_| StopReason::NoUnwindInfo(pc))
}

fn extension_row<'c>(
    tables: &[Range<u64>],
    pc: u64,
    context: &'c mut UnwindContext<usize, OnStack>,
) -> Result<&'c UnwindTableRow<usize, OnStack>, StopReason> {
    for table in tables {
        // SAFETY: the registry lists an extension's unwind tables while its
        // image is mapped, and the caller holds the registry's lock, so the
        // extension cannot be unregistered (and then unmapped) meanwhile.
        let bytes: Slice = gimli::EndianSlice::new(unsafe { table_slice(table) }, NativeEndian);
        let eh_frame = EhFrame::from(bytes);
        let bases = BaseAddresses::default().set_eh_frame(table.start);
        if let Ok(fde) = eh_frame.fde_for_address(&bases, pc, EhFrame::cie_from_offset) {
            // `context` is only borrowed by the returned row.
            return fde
                .unwind_info_for_address(&eh_frame, &bases, context, pc)
                .map_err(|_| StopReason::NoUnwindInfo(pc));
        }
    }
    Err(StopReason::NoUnwindInfo(pc))
}

/// Reads stack words after checking that their page is mapped, walking the
/// active page tables directly (the paging module's lock may be held by the
/// code that panicked); remembers the last page found mapped.
#[derive(Default)]
struct MappedCache {
    page: Option<u64>,
}

impl MappedCache {
    fn read(&mut self, address: u64) -> Result<u64, StopReason> {
        if !address.is_multiple_of(8) {
            return Err(StopReason::UnreadableStack(address));
        }
        let page = address & !0xfff;
        if self.page != Some(page) {
            if !is_mapped(address) {
                return Err(StopReason::UnreadableStack(address));
            }
            self.page = Some(page);
        }
        // SAFETY: the address is 8-aligned and its page is mapped (checked
        // just above in the active page tables); it is a stack word, read
        // once, without creating a reference.
        Ok(unsafe { core::ptr::read_volatile(address as *const u64) })
    }
}

/// Whether `address` is mapped in the active page tables, read through the
/// physical-memory mapping without any lock.
pub fn is_mapped(address: u64) -> bool {
    const PRESENT: u64 = 1;
    const HUGE: u64 = 1 << 7;
    const FRAME: u64 = 0x000f_ffff_ffff_f000;
    let (level4, _) = x86_64::registers::control::Cr3::read();
    let mut table = level4.start_address().as_u64();
    for level in (1..=4u32).rev() {
        let index = (address >> (12 + 9 * (level - 1))) & 0x1ff;
        let entry_address = PHYSICAL_MEMORY_OFFSET + table + index * 8;
        // SAFETY: `table` is the physical address of a page table (CR3, or
        // a present non-huge entry of the level above), and all physical
        // memory is mapped at PHYSICAL_MEMORY_OFFSET; an aligned u64 read of
        // an entry has no side effects.
        let entry = unsafe { core::ptr::read_volatile(entry_address as *const u64) };
        if entry & PRESENT == 0 {
            return false;
        }
        if level == 1 || (level <= 3 && entry & HUGE != 0) {
            return true;
        }
        table = entry & FRAME;
    }
    false
}
