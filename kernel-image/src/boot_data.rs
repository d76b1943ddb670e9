//! What the bootloader handed over beyond memory: the kernel's own ELF file
//! (for its symbol table) and the ramdisk (the extension objects).

use bootloader_api::BootInfo;
use phys_addr::FRAME_SIZE;
use spindle_package::FormatError;
use spindle_package::deflated::Deflated;
use x86_64::PhysAddr;
use x86_64::structures::paging::PhysFrame;

use crate::PHYSICAL_MEMORY_OFFSET;
use crate::memory::frames;

/// The kernel's ELF file and where it was loaded.
#[derive(Clone, Copy)]
pub struct KernelElf {
    /// The file's bytes (including `.symtab`).
    pub bytes: &'static [u8],
    /// Virtual address the image was loaded at: symbol value + bias = address.
    pub load_bias: u64,
}

static KERNEL_ELF: spin::Once<KernelElf> = spin::Once::new();
static RAMDISK: spin::Once<&'static [u8]> = spin::Once::new();

/// Records the kernel ELF and the ramdisk from the boot information.
///
/// # Safety
/// `boot_info` is the one the bootloader passed to the kernel for this
/// boot: its kernel file and ramdisk ranges are memory that nothing writes
/// and that stays mapped for the kernel's life.
pub unsafe fn init(boot_info: &BootInfo) {
    // SAFETY: the bootloader loaded the kernel file at physical
    // `kernel_addr` and reports its length; that memory is in a region it
    // marked as used (never handed to the frame allocator) and nobody writes
    // it, and the physical-memory mapping makes it addressable for ever.
    let bytes = unsafe {
        core::slice::from_raw_parts(
            (PHYSICAL_MEMORY_OFFSET + boot_info.kernel_addr) as *const u8,
            boot_info.kernel_len as usize,
        )
    };
    KERNEL_ELF.call_once(|| KernelElf {
        bytes,
        load_bias: boot_info.kernel_image_offset,
    });
    if let Some(addr) = boot_info.ramdisk_addr.into_option() {
        // SAFETY: the bootloader mapped the ramdisk at `addr` (virtual) for
        // `ramdisk_len` bytes, in memory it keeps reserved; it is read only.
        let carried = unsafe {
            core::slice::from_raw_parts(addr as *const u8, boot_info.ramdisk_len as usize)
        };
        match Deflated::parse(carried) {
            None => {
                RAMDISK.call_once(|| carried);
            }
            Some(header) => match header.and_then(inflate) {
                Ok(ramdisk) => {
                    RAMDISK.call_once(|| ramdisk);
                }
                Err(e) => log::error!("ramdisk unreadable, no extensions available: {e}"),
            },
        }
    }
}

/// Inflates the ramdisk into frames of its own, kept for the kernel's life
/// (the catalogue borrows its objects), and reached through the
/// physical-memory mapping.
fn inflate(header: Deflated<'_>) -> Result<&'static [u8], FormatError> {
    let started = crate::arch::rdtsc();
    let len = header.inflated_len();
    let count = (len as u64).div_ceil(FRAME_SIZE).max(1);
    let first = frames::allocate_contiguous(count).ok_or_else(|| {
        FormatError::BadManifest(alloc::format!(
            "no {count} contiguous free frames to inflate the ramdisk into"
        ))
    })?;
    // SAFETY: the frames [first, first + count) were just taken from the
    // frame allocator, so nothing else uses them; they are freed only if
    // inflating fails, after `buffer`'s last use, and otherwise kept for
    // ever. The physical-memory mapping makes them addressable and
    // writable. This is the only reference made from the address until it
    // becomes the shared one returned.
    let buffer = unsafe {
        core::slice::from_raw_parts_mut(
            (PHYSICAL_MEMORY_OFFSET + first.start_address()) as *mut u8,
            len,
        )
    };
    if let Err(e) = header.inflate_into(buffer) {
        // Nothing borrows the buffer: its frames go back.
        for n in 0..count {
            let address = PhysAddr::new(first.start_address() + n * FRAME_SIZE);
            let _ = frames::deallocate(PhysFrame::containing_address(address));
        }
        return Err(e);
    }
    log::info!(
        "ramdisk: inflated {} KiB to {} KiB in {} k cycles",
        header.deflated_len() >> 10,
        len >> 10,
        (crate::arch::rdtsc() - started) / 1000
    );
    Ok(buffer)
}

/// The kernel's ELF file.
pub fn kernel_elf() -> KernelElf {
    *KERNEL_ELF.get().expect("boot_data::init ran at boot")
}

/// The ramdisk, if the image has one.
pub fn ramdisk() -> Option<&'static [u8]> {
    RAMDISK.get().copied()
}

mod tests {
    use ktest_macros::ktest;
    use spindle_package::FormatError;
    use spindle_package::deflated::{Deflated, MAGIC, deflate};

    use super::inflate;
    use crate::ensure;
    use crate::ktest::KtestResult;
    use crate::memory::frames;

    #[ktest]
    fn a_ramdisk_that_does_not_inflate_gives_its_frames_back() -> KtestResult {
        // A real stream announced one byte short: it fills the buffer and
        // still has output, so inflating fails after writing every frame.
        let good = deflate(&[7u8; 3 * 4096]);
        let stream = &good[good
            .iter()
            .skip(MAGIC.len())
            .position(|&b| b == b'\n')
            .unwrap()
            + MAGIC.len()
            + 1..];
        let mut bytes = alloc::vec::Vec::from(MAGIC.as_bytes());
        bytes.extend_from_slice(alloc::format!("inflated-bytes {}\n", 3 * 4096 - 1).as_bytes());
        bytes.extend_from_slice(stream);
        let header = Deflated::parse(&bytes).unwrap().unwrap();
        let free_before = frames::stats().free;
        let result = inflate(header);
        ensure!(
            matches!(&result, Err(FormatError::BadManifest(why)) if why.contains("announced")),
            "expected the announced-size error, got {result:?}"
        );
        ensure!(
            frames::stats().free == free_before,
            "{} frames not given back",
            free_before - frames::stats().free
        );
        Ok(())
    }
}
