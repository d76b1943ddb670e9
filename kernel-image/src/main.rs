//! The Spindle kernel: the bootable binary that brings up the hardware, owns
//! the address space, and wires the core services, the dispatcher and the
//! extension loader together.
//!
//! This is one of the few crates allowed to use `unsafe` (port I/O, page
//! tables, descriptor tables, interrupt frames); every `unsafe` block carries
//! a `// SAFETY:` comment. Boot flow (see ARCHITECTURE.md):
//!
//! 1. serial console and logger, so everything after can report;
//! 2. GDT + TSS (IST stacks), IDT (every CPU exception);
//! 3. memory: physical-memory mapping, frame allocator, page tables, heap;
//! 4. the dispatcher: the kernel's principal, `Clock.Tick` and `Console.Line`;
//! 5. interrupts: legacy PIC remapped and masked, local APIC timer calibrated
//!    against the PIT;
//! 6. strands: the boot context becomes the strand that later runs the
//!    shell (or the tests); the idle strand, the reaper and the executor of
//!    asynchronous handlers start; interrupts on, so preemption begins;
//! 7. the loader: the `SpinPublic` domain from the kernel's own symbol table,
//!    the ramdisk's manifest, autoloaded extensions;
//! 8. the mode from the QEMU `fw_cfg` command line: `ktest` runs the
//!    in-kernel test suite and exits; otherwise the shell starts.
#![no_std]
#![no_main]
#![feature(abi_x86_interrupt)]
#![feature(panic_can_unwind)]
#![feature(alloc_error_handler)]
#![warn(missing_docs)]

extern crate alloc;

mod arch;
mod bench;
mod boot_data;
mod containment;
mod cpu;
mod debug;
mod events;
mod ktest;
mod loader;
mod logger;
mod memory;
mod panic;
mod push;
mod shell;
mod strands;
mod tests;
mod time;
mod unwind_tables;

use bootloader_api::config::{BootloaderConfig, Mapping};
use bootloader_api::{BootInfo, entry_point};

/// Virtual address where the bootloader maps all of physical memory.
pub const PHYSICAL_MEMORY_OFFSET: u64 = 0xffff_8000_0000_0000;
/// Virtual address of the kernel image (top 2 GiB, as `code-model=kernel` wants).
pub const KERNEL_BASE: u64 = 0xffff_ffff_8000_0000;

/// How the bootloader lays out the address space for us.
///
/// The bootloader's own dynamic mappings (boot info, kernel stack, ramdisk)
/// are confined to `[0xffff_a000_0000_0000, 0xffff_c000_0000_0000)`, so the
/// kernel owns the rest: the heap and the extension region are fixed (see
/// [`memory::layout`]).
pub static BOOTLOADER_CONFIG: BootloaderConfig = {
    let mut config = BootloaderConfig::new_default();
    config.mappings.physical_memory = Some(Mapping::FixedAddress(PHYSICAL_MEMORY_OFFSET));
    config.mappings.kernel_base = Mapping::FixedAddress(KERNEL_BASE);
    config.mappings.dynamic_range_start = Some(0xffff_a000_0000_0000);
    config.mappings.dynamic_range_end = Some(0xffff_c000_0000_0000);
    config.kernel_stack_size = 256 * 1024;
    config
};

entry_point!(kernel_main, config = &BOOTLOADER_CONFIG);

fn kernel_main(boot_info: &'static mut BootInfo) -> ! {
    let boot_info: &BootInfo = boot_info;
    arch::serial::init();
    arch::fpu::enable();
    logger::init();
    log::info!("Spindle {} booting", env!("CARGO_PKG_VERSION"));
    // SAFETY: once, on the boot CPU; interrupts are disabled from the
    // bootloader until `interrupts::enable` below.
    unsafe { arch::gdt::init() };
    // SAFETY: the GDT and TSS (with the IST stacks) were loaded just above.
    unsafe { arch::idt::init() };
    // SAFETY: `boot_info` is the bootloader's, this runs once, and nothing
    // has allocated yet.
    unsafe { memory::init(boot_info) };
    // SAFETY: `boot_info` is the bootloader's for this boot.
    unsafe { boot_data::init(boot_info) };
    debug::init();
    events::init();
    memory::services::init();
    console::set_sink(events::capability(), |text| {
        arch::serial::write_bytes(text.as_bytes())
    });
    arch::pic::remap_and_mask();
    // SAFETY: once, interrupts still disabled, the IDT has the timer and
    // spurious handlers, and the PIC was masked just above.
    unsafe { time::init() };
    containment::interrupt_stack::init();
    containment::capture_stack::init();
    let cmdline = arch::qemu::fw_cfg_cmdline();
    let test_filter = ktest::mode_from_cmdline(cmdline.as_deref());
    // From here on the boot context is a strand: the shell's, or the test
    // runner's.
    // SAFETY: once, from the boot context on the boot stack, interrupts
    // still disabled, after events::init and time::init.
    unsafe {
        strands::init(if test_filter.is_some() {
            "ktest"
        } else {
            "shell"
        })
    };
    x86_64::instructions::interrupts::enable();
    loader::init();
    if test_filter.is_none() {
        push::init();
    }
    log::info!("boot complete in {} ms", time::uptime_ns() / 1_000_000);

    if let Some(filter) = test_filter {
        let outcome = ktest::run_all(filter);
        arch::qemu::exit(if outcome.all_passed() {
            arch::qemu::ExitCode::Success
        } else {
            arch::qemu::ExitCode::Failure
        });
    }
    shell::run()
}
