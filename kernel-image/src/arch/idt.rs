//! Interrupt descriptor table: a handler for every CPU exception, the timer
//! and the spurious vectors.
//!
//! Exceptions the kernel cannot recover from print their vector, name, error
//! code and RIP (and, for page faults, the faulting address from CR2) and
//! panic, which ends the run with a failure status. Three are recoverable: a
//! breakpoint returns, a page fault or general-protection fault raised by a
//! [`super::probe`] access resumes at the probe's fixup, and a strand that overflows its stack into
//! its guard page is stopped (see [`crate::strands::overflow`]) while the
//! others keep running.

use core::sync::atomic::{AtomicU64, Ordering};

use spin::LazyLock as Lazy;
use x86_64::registers::control::Cr2;
use x86_64::structures::idt::{InterruptDescriptorTable, InterruptStackFrame, PageFaultErrorCode};

use super::gdt;

/// Vector of the local-APIC timer.
pub const TIMER_VECTOR: u8 = 0x20;
/// Vector the local APIC delivers spurious interrupts to.
pub const APIC_SPURIOUS_VECTOR: u8 = 0xff;
/// First vector of the (masked) legacy PIC after remapping.
pub const PIC_BASE_VECTOR: u8 = 0x30;

static BREAKPOINTS: AtomicU64 = AtomicU64::new(0);
static SPURIOUS: AtomicU64 = AtomicU64::new(0);

/// Number of breakpoint exceptions handled since boot.
pub fn breakpoint_count() -> u64 {
    BREAKPOINTS.load(Ordering::Relaxed)
}

/// Number of spurious interrupts (APIC or PIC) seen since boot.
pub fn spurious_count() -> u64 {
    SPURIOUS.load(Ordering::Relaxed)
}

fn fatal(vector: u8, name: &str, frame: &InterruptStackFrame, error_code: Option<u64>) -> ! {
    // The interrupted context's catch frames are beyond the exception frame.
    let _context = crate::containment::InterruptContext::enter();
    match error_code {
        Some(code) => panic!(
            "CPU exception {vector} ({name}), error code {code:#x}, RIP {:#x}, RSP {:#x}",
            frame.instruction_pointer.as_u64(),
            frame.stack_pointer.as_u64()
        ),
        None => panic!(
            "CPU exception {vector} ({name}), RIP {:#x}, RSP {:#x}",
            frame.instruction_pointer.as_u64(),
            frame.stack_pointer.as_u64()
        ),
    }
}

/// Defines fatal handlers for exceptions without an error code.
macro_rules! fatal_handlers {
    ($($fn_name:ident => $vector:literal, $name:literal;)*) => {$(
        extern "x86-interrupt" fn $fn_name(frame: InterruptStackFrame) {
            fatal($vector, $name, &frame, None)
        }
    )*};
}

/// Defines fatal handlers for exceptions that push an error code.
macro_rules! fatal_handlers_with_code {
    ($($fn_name:ident => $vector:literal, $name:literal;)*) => {$(
        extern "x86-interrupt" fn $fn_name(frame: InterruptStackFrame, code: u64) {
            fatal($vector, $name, &frame, Some(code))
        }
    )*};
}

fatal_handlers! {
    divide_error => 0, "divide error";
    debug => 1, "debug";
    nmi => 2, "non-maskable interrupt";
    overflow => 4, "overflow";
    bound_range => 5, "bound range exceeded";
    invalid_opcode => 6, "invalid opcode";
    device_not_available => 7, "device not available";
    x87_floating_point => 16, "x87 floating point";
    simd_floating_point => 19, "SIMD floating point";
    virtualization => 20, "virtualization";
    hv_injection => 28, "hypervisor injection";
}

fatal_handlers_with_code! {
    invalid_tss => 10, "invalid TSS";
    segment_not_present => 11, "segment not present";
    stack_segment => 12, "stack-segment fault";
    alignment_check => 17, "alignment check";
    control_protection => 21, "control protection";
    vmm_communication => 29, "VMM communication";
    security => 30, "security exception";
}

extern "x86-interrupt" fn breakpoint(frame: InterruptStackFrame) {
    BREAKPOINTS.fetch_add(1, Ordering::Relaxed);
    log::debug!("breakpoint at {:#x}", frame.instruction_pointer.as_u64());
}

extern "x86-interrupt" fn double_fault(frame: InterruptStackFrame, code: u64) -> ! {
    fatal(8, "double fault", &frame, Some(code))
}

extern "x86-interrupt" fn machine_check(frame: InterruptStackFrame) -> ! {
    fatal(18, "machine check", &frame, None)
}

extern "x86-interrupt" fn general_protection(mut frame: InterruptStackFrame, code: u64) {
    if super::probe::fixup_general_protection(&mut frame, code) {
        return;
    }
    fatal(13, "general protection fault", &frame, Some(code))
}

extern "x86-interrupt" fn page_fault(mut frame: InterruptStackFrame, code: PageFaultErrorCode) {
    // Runs on its own IST stack; first of all, give a nested fault the
    // level below this one.
    let nesting = super::fault_stack::Nesting::enter();
    let mut context = crate::containment::InterruptContext::enter();
    let address = Cr2::read_raw();
    // A probe first: `peek` of the running strand's own guard page is a
    // caught probe fault, not a stack overflow.
    if super::probe::fixup_page_fault(&mut frame, address, code.bits()) {
        return;
    }
    if crate::containment::watchdog::redirect_overflow(
        &mut frame,
        address,
        code.bits(),
        context.interrupted(),
    ) {
        return;
    }
    if crate::strands::overflow::contain(&mut frame, address, nesting.depth()) {
        return;
    }
    // A fault in a VirtAddr range: the Translation service's events.
    if crate::memory::faults::handle(&mut frame, address, code) {
        return;
    }
    panic!(
        "CPU exception 14 (page fault) at address {address:#x}, error code {:#x} ({code:?}), RIP {:#x}",
        code.bits(),
        frame.instruction_pointer.as_u64()
    );
}

/// The timer interrupt (entered through [`super::timer_entry`]).
pub fn on_timer(registers: &mut super::timer_entry::InterruptedRegisters) {
    let mut context = crate::containment::InterruptContext::enter();
    // Dispatcher writers (install, uninstall, ...) are refused in here.
    let _dispatch = dispatcher::InterruptScope::enter(crate::events::capability());
    // Acknowledge first: the handler may switch to another strand, which
    // returns from a different interrupt (or none) much later. Interrupts
    // stay disabled until this strand's `iretq`.
    super::apic::end_of_interrupt();
    let tick = crate::time::on_timer_interrupt();
    crate::containment::watchdog::on_timer(registers, context.interrupted());
    // A nested tick interrupted a `Clock.Tick` raise on the interrupt
    // stack: no switch from there.
    if tick == crate::time::Tick::Raised {
        crate::strands::preempt_point();
    }
}

extern "x86-interrupt" fn apic_spurious(_frame: InterruptStackFrame) {
    // Spurious APIC interrupts must not be acknowledged.
    SPURIOUS.fetch_add(1, Ordering::Relaxed);
}

extern "x86-interrupt" fn pic_spurious(_frame: InterruptStackFrame) {
    // Every PIC line is masked, so anything arriving here is spurious
    // (IRQ 7 / 15); a spurious PIC interrupt must not be acknowledged either.
    SPURIOUS.fetch_add(1, Ordering::Relaxed);
}

/// Builds the IDT. With `nested_ticks`, the timer vector takes its own IST
/// stack ([`gdt::NESTED_TICK_IST`]); see [`load_for_tick_raise`].
fn build(nested_ticks: bool) -> InterruptDescriptorTable {
    let mut idt = InterruptDescriptorTable::new();
    idt.divide_error.set_handler_fn(divide_error);
    idt.debug.set_handler_fn(debug);
    idt.breakpoint.set_handler_fn(breakpoint);
    idt.overflow.set_handler_fn(overflow);
    idt.bound_range_exceeded.set_handler_fn(bound_range);
    idt.invalid_opcode.set_handler_fn(invalid_opcode);
    idt.device_not_available
        .set_handler_fn(device_not_available);
    idt.invalid_tss.set_handler_fn(invalid_tss);
    idt.segment_not_present.set_handler_fn(segment_not_present);
    idt.stack_segment_fault.set_handler_fn(stack_segment);
    idt.general_protection_fault
        .set_handler_fn(general_protection);
    idt.x87_floating_point.set_handler_fn(x87_floating_point);
    idt.alignment_check.set_handler_fn(alignment_check);
    idt.simd_floating_point.set_handler_fn(simd_floating_point);
    idt.virtualization.set_handler_fn(virtualization);
    idt.cp_protection_exception
        .set_handler_fn(control_protection);
    idt.hv_injection_exception.set_handler_fn(hv_injection);
    idt.vmm_communication_exception
        .set_handler_fn(vmm_communication);
    idt.security_exception.set_handler_fn(security);
    // SAFETY: the IST indices name stacks that gdt::init installed in the TSS
    // before the IDT is loaded; each stack is used by this one vector only
    // (the page fault's moves down a level while a fault is handled, see
    // fault_stack).
    unsafe {
        idt.double_fault
            .set_handler_fn(double_fault)
            .set_stack_index(gdt::DOUBLE_FAULT_IST);
        idt.non_maskable_interrupt
            .set_handler_fn(nmi)
            .set_stack_index(gdt::NMI_IST);
        idt.machine_check
            .set_handler_fn(machine_check)
            .set_stack_index(gdt::MACHINE_CHECK_IST);
        idt.page_fault
            .set_handler_fn(page_fault)
            .set_stack_index(gdt::PAGE_FAULT_IST);
    }
    // SAFETY: `timer_entry` saves every general-purpose register, calls the
    // handler on the stack it was delivered on with the C ABI (stack
    // aligned), and returns with `iretq` after restoring them: a valid
    // interrupt entry.
    let timer = unsafe {
        idt[TIMER_VECTOR].set_handler_addr(x86_64::VirtAddr::new(
            super::timer_entry::timer_entry as *const () as u64,
        ))
    };
    if nested_ticks {
        // SAFETY: this table is loaded only by `load_for_tick_raise`, whose
        // contract is that `gdt::set_interrupt_stack` has pointed the entry
        // at a stack of its own; only nested timer interrupts use it, and
        // they never nest (they run with interrupts off).
        unsafe {
            timer.set_stack_index(gdt::NESTED_TICK_IST);
        }
    }
    idt[APIC_SPURIOUS_VECTOR].set_handler_fn(apic_spurious);
    for vector in PIC_BASE_VECTOR..PIC_BASE_VECTOR + 16 {
        idt[vector].set_handler_fn(pic_spurious);
    }
    idt
}

static IDT: Lazy<InterruptDescriptorTable> = Lazy::new(|| build(false));

/// The IDT while a `Clock.Tick` raise runs with interrupts enabled on the
/// interrupt stack: a nested timer interrupt is delivered on a stack of
/// its own, so neither its frame nor its handler's frames land on the
/// interrupt stack below the raise's handlers (which may be running into
/// its guard page).
static TICK_RAISE_IDT: Lazy<InterruptDescriptorTable> = Lazy::new(|| build(true));

/// Loads the IDT.
///
/// # Safety
/// [`gdt::init`] has run on this CPU: the double-fault, NMI, machine-check
/// and page-fault handlers name IST stacks that only its TSS provides.
pub unsafe fn init() {
    // Built now, not in the first timer interrupt that needs it.
    Lazy::force(&TICK_RAISE_IDT);
    IDT.load();
    log::debug!("IDT loaded: 21 exception handlers, timer, spurious vectors");
}

/// Loads the IDT whose timer vector runs on the nested-tick stack, for a
/// `Clock.Tick` raise about to enable interrupts; [`load_after_tick_raise`]
/// loads the ordinary one back.
///
/// # Safety
/// Interrupts are disabled; [`gdt::set_interrupt_stack`] has pointed
/// [`gdt::NESTED_TICK_IST`] at a mapped stack used by nothing else; and
/// until [`load_after_tick_raise`] every timer interrupt is a nested one
/// (its handler does not switch strands and runs with interrupts off).
pub unsafe fn load_for_tick_raise() {
    TICK_RAISE_IDT.load();
}

/// Loads the ordinary IDT back after a `Clock.Tick` raise, interrupts
/// disabled again.
pub fn load_after_tick_raise() {
    IDT.load();
}
