//! Debugging support: symbolised backtraces, and what a debugger needs to
//! know about loaded extensions.
//!
//! * [`symbols`]: address-to-function indexes. The kernel's is built once at
//!   boot from its own `.symtab` (the ELF file the bootloader hands over);
//!   each extension's is built at load from its object's symbols (local ones
//!   included) at the addresses the linker placed them.
//! * [`extensions`]: the registry of loaded extensions for debugging: their
//!   symbol indexes and unwind tables for backtraces, and the table a
//!   debugger reads (`SPINDLE_DEBUG_EXTENSIONS`, refreshed through the hook
//!   function `spindle_debug_extensions_changed`; see `xtask/gdb/spindle.py`).
//! * [`unwind`]: a stack walker driven by the unwind tables (`.eh_frame`),
//!   bounded, allocation-free and lock-free except for one try-lock.
//! * [`backtrace`]: [`backtrace::Backtrace`], a call chain captured into a
//!   fixed buffer and printed with function names and offsets.
//!
//! Nothing here may make a panic worse: the panic path allocates nothing,
//! takes no lock it could wait on, and falls back to plain addresses when
//! the symbols are unavailable (before [`init`], or while the extension
//! registry is being changed).

pub mod backtrace;
pub mod extensions;
pub mod symbols;
pub mod unwind;

/// Builds the kernel's symbol index and finds its unwind tables. Until this
/// has run, backtraces print plain addresses.
pub fn init() {
    let elf = crate::boot_data::kernel_elf();
    let start = crate::arch::rdtsc();
    match symbols::KernelImage::from_elf(elf.bytes, elf.load_bias) {
        Ok(image) if image.functions.is_empty() => {
            log::warn!("debug: the kernel's symbol table has no functions");
        }
        Ok(image) => {
            let functions = image.functions.len();
            symbols::set_kernel(image);
            log::info!(
                "debug: kernel symbol index ({functions} functions) built in {} k cycles",
                (crate::arch::rdtsc() - start) / 1000
            );
        }
        Err(e) => log::warn!("debug: no kernel symbols for backtraces: {e}"),
    }
}
