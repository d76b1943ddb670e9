//! Memory bring-up and the kernel's address-space map.
//!
//! | range | what |
//! |---|---|
//! | `0xffff_8000_0000_0000..` | all physical memory (bootloader mapping, >= 4 GiB) |
//! | [`layout::HEAP_START`]`..` | kernel heap, sized from the memory map |
//! | `0xffff_a000_0000_0000..0xffff_c000_0000_0000` | bootloader's dynamic mappings (stack, boot info, ramdisk) |
//! | [`virt_addr::REGION`] (`0xffff_d000_0000_0000..0xffff_d100_0000_0000`) | VirtAddr data zone: what extensions allocate and map through the services |
//! | [`layout::STRAND_STACKS_START`]`..`[`layout::STRAND_STACKS_END`] | strand stacks: 2 MiB slots, each stack at the top of its slot, the rest unmapped (the guard) |
//! | [`layout::EXTENSION_HEAPS_START`]`..` (2 GiB) | extension heaps: one 64 MiB window per slot, mapped up to its quota |
//! | [`crate::KERNEL_BASE`]`..` | kernel image |
//! | [`virt_addr::IMAGE_REGION`] (`0xffff_ffff_9000_0000..0xffff_ffff_f000_0000`) | VirtAddr image zone: extension images, each a range owned by its extension |

pub mod access;
pub mod extension_heap;
pub mod faults;
pub mod frames;
pub mod heap;
pub mod paging;
pub mod services;

use bootloader_api::BootInfo;
use bootloader_api::info::MemoryRegionKind;

/// Fixed virtual ranges owned by the kernel.
pub mod layout {
    /// First byte of the kernel heap.
    pub const HEAP_START: u64 = 0xffff_9000_0000_0000;
    /// Smallest and largest heap, whatever the amount of RAM.
    pub const HEAP_MIN: u64 = 4 << 20;
    /// See [`HEAP_MIN`].
    pub const HEAP_MAX: u64 = 64 << 20;
    /// First byte of the strand-stack region (see `strands::stack`).
    pub const STRAND_STACKS_START: u64 = 0xffff_c000_0000_0000;
    /// One past the last byte of the strand-stack region (8 TiB: 4 M slots).
    pub const STRAND_STACKS_END: u64 = 0xffff_c800_0000_0000;
    /// First byte of the extension heaps' windows (see
    /// [`super::extension_heap`]): 32 windows of 64 MiB.
    pub const EXTENSION_HEAPS_START: u64 = 0xffff_c800_0000_0000;
}

/// What the memory map said at boot, for `mem`.
#[derive(Clone, Copy, Debug, Default)]
pub struct BootMemory {
    /// Bytes of RAM in the memory map (usable + bootloader-owned).
    pub ram_bytes: u64,
    /// Bytes the bootloader marked usable.
    pub usable_bytes: u64,
    /// Whether the memory map came from UEFI (otherwise BIOS E820).
    pub uefi: bool,
}

static BOOT_MEMORY: spin::Once<BootMemory> = spin::Once::new();

/// The figures recorded at boot.
pub fn boot_memory() -> BootMemory {
    BOOT_MEMORY.get().copied().unwrap_or_default()
}

/// "UEFI" or "BIOS", from the kind of memory map the bootloader passed.
pub fn firmware_name() -> &'static str {
    if boot_memory().uefi { "UEFI" } else { "BIOS" }
}

/// Sets up the frame allocator, the kernel page table and the heap.
///
/// # Safety
/// `boot_info` is the one the bootloader passed to the kernel for this boot
/// (its memory map is trusted), and this runs once, before anything
/// allocates.
pub unsafe fn init(boot_info: &BootInfo) {
    let offset = boot_info.physical_memory_offset.into_option();
    assert_eq!(
        offset,
        Some(crate::PHYSICAL_MEMORY_OFFSET),
        "bootloader did not map physical memory where configured"
    );
    let mut figures = BootMemory::default();
    for region in boot_info.memory_regions.iter() {
        let len = region.end - region.start;
        match region.kind {
            MemoryRegionKind::Usable => {
                figures.usable_bytes += len;
                figures.ram_bytes += len;
            }
            MemoryRegionKind::Bootloader => figures.ram_bytes += len,
            MemoryRegionKind::UnknownUefi(_) => figures.uefi = true,
            _ => {}
        }
    }
    BOOT_MEMORY.call_once(|| figures);
    // SAFETY: the memory map is the bootloader's (our caller's contract),
    // and this runs once.
    unsafe { frames::init(&boot_info.memory_regions) };
    // SAFETY: once, with the bootloader's table active and physical memory
    // mapped at the offset checked above.
    unsafe { paging::init() };
    let heap_size = (figures.usable_bytes / 8).clamp(layout::HEAP_MIN, layout::HEAP_MAX) & !0xfff;
    // SAFETY: the layout reserves [HEAP_START, HEAP_START + HEAP_MAX) for the
    // heap alone and nothing maps it before this; frames and paging are up.
    unsafe { heap::init(layout::HEAP_START, heap_size) };
    log::info!(
        "memory: {} MiB RAM, {} MiB usable, heap {} MiB at {:#x}",
        figures.ram_bytes >> 20,
        figures.usable_bytes >> 20,
        heap_size >> 20,
        layout::HEAP_START
    );
}
