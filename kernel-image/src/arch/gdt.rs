//! Global descriptor table and task-state segment.
//!
//! The TSS gives the faults that must not run on a possibly broken stack
//! their own interrupt stacks (IST): a double fault, an NMI, a machine
//! check, and the page fault. A strand that overflows its stack faults on
//! its guard page with no stack left to push a frame on; with its own IST
//! stack the page-fault handler still runs, recognises the overflow and
//! stops the strand (see [`super::fault_stack`] for how nested page faults
//! get a stack each).

use core::cell::UnsafeCell;
use core::sync::atomic::{AtomicBool, Ordering};

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
/// IST slot of the page-fault handler's stack; its entry moves as page
/// faults nest (see [`super::fault_stack`]).
pub const PAGE_FAULT_IST: u16 = 3;
/// IST slot of nested timer interrupts: those that arrive during a
/// `Clock.Tick` raise (see [`super::idt::load_for_tick_raise`]). Its stack
/// is set at boot with the interrupt stack.
pub const NESTED_TICK_IST: u16 = 4;

const IST_STACK_SIZE: usize = 16 * 1024;

/// One interrupt stack; 16-byte aligned as the ABI wants. Only the CPU
/// writes to it (when it delivers an exception on this IST slot).
#[repr(C, align(16))]
struct IstStack(UnsafeCell<[u8; IST_STACK_SIZE]>);

// SAFETY: Rust code never reads or writes the stack's bytes; it only takes
// the address once, to put it in the TSS.
unsafe impl Sync for IstStack {}

/// Three fixed stacks, and the page fault's stack for early boot (until
/// [`set_interrupt_stack`] moves it to one with a guard page).
static IST_STACKS: [IstStack; 4] = [const { IstStack(UnsafeCell::new([0; IST_STACK_SIZE])) }; 4];

/// The task-state segment. The CPU reads its IST entries when it delivers
/// an exception; the page-fault entry is rewritten at run time, so the TSS
/// lives in an `UnsafeCell` and is only ever accessed through raw pointers.
struct Tss(UnsafeCell<TaskStateSegment>);

// SAFETY: on one CPU, the only writer after boot is the page-fault handler
// (and boot code moving the page-fault stack), which runs with interrupts
// disabled; the hardware reads it only when delivering an exception.
unsafe impl Sync for Tss {}

static TSS: Tss = Tss(UnsafeCell::new(TaskStateSegment::new()));
static TSS_READY: AtomicBool = AtomicBool::new(false);

/// Fills the IST entries (once, before the GDT is built).
fn init_tss() {
    if TSS_READY.swap(true, Ordering::AcqRel) {
        return;
    }
    for (slot, index) in [DOUBLE_FAULT_IST, NMI_IST, MACHINE_CHECK_IST, PAGE_FAULT_IST]
        .into_iter()
        .enumerate()
    {
        // Only the address is taken; the stacks are written by the CPU alone.
        let start = VirtAddr::from_ptr(IST_STACKS[slot].0.get());
        // SAFETY: each IST stack is a static used by its one vector only,
        // and the GDT (so the TSS) is not loaded yet.
        unsafe { set_interrupt_stack(index, start + IST_STACK_SIZE as u64) };
    }
}

/// The page-fault IST stack of early boot: top and size.
pub fn boot_page_fault_stack() -> (VirtAddr, u64) {
    let start = VirtAddr::from_ptr(IST_STACKS[3].0.get());
    (start + IST_STACK_SIZE as u64, IST_STACK_SIZE as u64)
}

/// Points IST entry `index` (0..7) at `top`.
///
/// # Safety
/// `top` is the top of a mapped, writable stack that nothing else uses,
/// large enough for the handlers of the vectors that name entry `index`,
/// for as long as the entry points to it; no exception that uses the entry
/// can be delivered while it changes (interrupts disabled, or the entry not
/// yet in use).
pub unsafe fn set_interrupt_stack(index: u16, top: VirtAddr) {
    assert!(index < 7, "IST entry {index} does not exist (0..7)");
    let tss = TSS.0.get();
    // SAFETY: `tss` points to the static TSS; the IST array has 7 entries
    // and `index` was checked. The field is inside a packed struct, so the
    // entry is written unaligned through a raw pointer, never a reference;
    // the CPU reads the entry only at exception delivery, which our
    // caller's contract keeps away while it changes.
    unsafe {
        let entry = (&raw mut (*tss).interrupt_stack_table)
            .cast::<VirtAddr>()
            .add(usize::from(index));
        entry.write_unaligned(top);
    }
}

struct Selectors {
    code: SegmentSelector,
    data: SegmentSelector,
    tss: SegmentSelector,
}

static GDT: Lazy<(GlobalDescriptorTable, Selectors)> = Lazy::new(|| {
    let mut gdt = GlobalDescriptorTable::new();
    let code = gdt.append(Descriptor::kernel_code_segment());
    let data = gdt.append(Descriptor::kernel_data_segment());
    init_tss();
    // SAFETY: the TSS is a static, so the descriptor's base stays valid for
    // the kernel's whole life; it is only changed through raw pointers.
    let tss = gdt.append(unsafe { Descriptor::tss_segment_unchecked(TSS.0.get()) });
    (gdt, Selectors { code, data, tss })
});

/// Loads the GDT, reloads the segment registers and loads the TSS.
///
/// # Safety
/// Called once, on the boot CPU, with interrupts disabled: loading the TSS
/// again faults (its descriptor is marked busy), and code that runs
/// between the segment reloads must not take an interrupt.
pub unsafe fn init() {
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
    log::debug!("GDT and TSS loaded (IST stacks: double fault, NMI, machine check, page fault)");
}
