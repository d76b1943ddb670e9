//! Global descriptor table and task-state segment.
//!
//! The TSS gives the faults that must not run on a possibly broken stack
//! their own interrupt stacks (IST): a double fault (e.g. after a kernel
//! stack overflow hit the guard page), an NMI and a machine check.

use core::cell::UnsafeCell;

use spin::LazyLock as Lazy;
use x86_64::VirtAddr;
use x86_64::instructions::segmentation::{CS, DS, ES, SS, Segment};
use x86_64::instructions::tables::load_tss;
use x86_64::structures::gdt::{Descriptor, GlobalDescriptorTable, SegmentSelector};
use x86_64::structures::tss::TaskStateSegment;

/// IST slot of the double-fault handler's stack.
pub const DOUBLE_FAULT_IST: u16 = 0;
/// IST slot of the NMI handler's stack.
pub const NMI_IST: u16 = 1;
/// IST slot of the machine-check handler's stack.
pub const MACHINE_CHECK_IST: u16 = 2;

const IST_STACK_SIZE: usize = 16 * 1024;

/// One interrupt stack; 16-byte aligned as the ABI wants. Only the CPU
/// writes to it (when it delivers an exception on this IST slot).
#[repr(C, align(16))]
struct IstStack(UnsafeCell<[u8; IST_STACK_SIZE]>);

// SAFETY: Rust code never reads or writes the stack's bytes; it only takes
// the address once, to put it in the TSS.
unsafe impl Sync for IstStack {}

static IST_STACKS: [IstStack; 3] = [const { IstStack(UnsafeCell::new([0; IST_STACK_SIZE])) }; 3];

static TSS: Lazy<TaskStateSegment> = Lazy::new(|| {
    let mut tss = TaskStateSegment::new();
    for (slot, index) in [DOUBLE_FAULT_IST, NMI_IST, MACHINE_CHECK_IST]
        .into_iter()
        .enumerate()
    {
        // Only the address is taken; the stacks are written by the CPU alone.
        let start = VirtAddr::from_ptr(IST_STACKS[slot].0.get());
        tss.interrupt_stack_table[index as usize] = start + IST_STACK_SIZE as u64;
    }
    tss
});

struct Selectors {
    code: SegmentSelector,
    data: SegmentSelector,
    tss: SegmentSelector,
}

static GDT: Lazy<(GlobalDescriptorTable, Selectors)> = Lazy::new(|| {
    let mut gdt = GlobalDescriptorTable::new();
    let code = gdt.append(Descriptor::kernel_code_segment());
    let data = gdt.append(Descriptor::kernel_data_segment());
    let tss = gdt.append(Descriptor::tss_segment(&TSS));
    (gdt, Selectors { code, data, tss })
});

/// Loads the GDT, reloads the segment registers and loads the TSS.
pub fn init() {
    GDT.0.load();
    let selectors = &GDT.1;
    // SAFETY: the selectors index descriptors of the GDT just loaded, which
    // lives in a static for the rest of the kernel's life.
    unsafe {
        CS::set_reg(selectors.code);
        SS::set_reg(selectors.data);
        DS::set_reg(selectors.data);
        ES::set_reg(selectors.data);
        load_tss(selectors.tss);
    }
    log::debug!("GDT and TSS loaded (IST stacks: double fault, NMI, machine check)");
}
