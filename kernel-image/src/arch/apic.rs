//! The local APIC (xAPIC, memory-mapped) and its timer.
//!
//! The APIC's registers are reached through the bootloader's mapping of
//! physical memory, which always covers the first 4 GiB and so the APIC page
//! at 0xfee0_0000. The timer runs in periodic mode at [`TIMER_HZ`], its rate
//! calibrated against the PIT at boot.

use core::sync::atomic::{AtomicU64, Ordering};

use x86_64::registers::model_specific::Msr;

use super::idt::{APIC_SPURIOUS_VECTOR, TIMER_VECTOR};
use crate::PHYSICAL_MEMORY_OFFSET;

/// Timer interrupts per second.
pub const TIMER_HZ: u64 = 100;

const IA32_APIC_BASE: u32 = 0x1b;
const REG_ID: usize = 0x20;
const REG_EOI: usize = 0xb0;
const REG_SPURIOUS: usize = 0xf0;
/// First of the eight in-service registers (32 vectors each, 16 bytes apart).
const REG_IN_SERVICE: usize = 0x100;
const REG_LVT_TIMER: usize = 0x320;
const REG_TIMER_INITIAL: usize = 0x380;
const REG_TIMER_CURRENT: usize = 0x390;
const REG_TIMER_DIVIDE: usize = 0x3e0;
const LVT_PERIODIC: u32 = 1 << 17;
const LVT_MASKED: u32 = 1 << 16;
const DIVIDE_BY_16: u32 = 0b0011;

/// Virtual address of the APIC register page; 0 until [`init`].
static BASE: AtomicU64 = AtomicU64::new(0);

fn register(offset: usize) -> *mut u32 {
    (BASE.load(Ordering::Relaxed) as usize + offset) as *mut u32
}

fn read(offset: usize) -> u32 {
    // SAFETY: BASE is the mapped APIC page (set by `init` before any call)
    // and `offset` is one of the aligned 32-bit register offsets above.
    unsafe { register(offset).read_volatile() }
}

fn write(offset: usize, value: u32) {
    // SAFETY: as for `read`; APIC registers accept 32-bit aligned writes.
    unsafe { register(offset).write_volatile(value) }
}

/// Calibration results.
#[derive(Clone, Copy, Debug)]
pub struct Calibration {
    /// APIC timer counts (after the divide-by-16) per second.
    pub apic_timer_hz: u64,
    /// TSC cycles per second.
    pub tsc_hz: u64,
}

/// Enables the local APIC, calibrates its timer and the TSC against the PIT,
/// and starts the periodic timer.
///
/// # Safety
/// Called once, with interrupts disabled, after the IDT is loaded with
/// handlers for [`TIMER_VECTOR`] and [`APIC_SPURIOUS_VECTOR`] and the legacy
/// PIC is masked: from here on the timer fires.
pub unsafe fn init() -> Calibration {
    // SAFETY: IA32_APIC_BASE exists on every x86_64 CPU; reading it has no
    // side effects, and setting bit 11 (global enable) keeps the base as is.
    let apic_base = unsafe {
        let mut msr = Msr::new(IA32_APIC_BASE);
        let value = msr.read() | (1 << 11);
        msr.write(value);
        value & 0x000f_ffff_ffff_f000
    };
    BASE.store(PHYSICAL_MEMORY_OFFSET + apic_base, Ordering::Relaxed);
    // Software-enable the APIC and route spurious interrupts.
    write(REG_SPURIOUS, 0x100 | u32::from(APIC_SPURIOUS_VECTOR));

    // Count down from the maximum for 10 ms of PIT time.
    write(REG_TIMER_DIVIDE, DIVIDE_BY_16);
    write(REG_LVT_TIMER, LVT_MASKED | u32::from(TIMER_VECTOR));
    let mut tsc_start = 0;
    super::pit::wait_micros(10_000, || {
        write(REG_TIMER_INITIAL, u32::MAX);
        tsc_start = super::rdtsc();
    });
    let elapsed_counts = u64::from(u32::MAX - read(REG_TIMER_CURRENT));
    let tsc_hz = (super::rdtsc() - tsc_start) * 100;
    let apic_timer_hz = elapsed_counts * 100;

    write(REG_LVT_TIMER, LVT_PERIODIC | u32::from(TIMER_VECTOR));
    write(REG_TIMER_INITIAL, (apic_timer_hz / TIMER_HZ).max(1) as u32);
    log::info!(
        "local APIC {} at {apic_base:#x}: timer {} kHz, periodic at {TIMER_HZ} Hz; TSC {} MHz",
        read(REG_ID) >> 24,
        apic_timer_hz / 1000,
        tsc_hz / 1_000_000
    );
    Calibration {
        apic_timer_hz,
        tsc_hz,
    }
}

/// Signals end of interrupt to the local APIC.
pub fn end_of_interrupt() {
    write(REG_EOI, 0);
}

/// Whether the local APIC has `vector` in service: accepted by the CPU
/// and not yet acknowledged with [`end_of_interrupt`]. False before the
/// APIC is set up.
pub fn in_service(vector: u8) -> bool {
    if BASE.load(Ordering::Relaxed) == 0 {
        return false;
    }
    let bits = read(REG_IN_SERVICE + usize::from(vector / 32) * 0x10);
    bits & (1 << (vector % 32)) != 0
}
