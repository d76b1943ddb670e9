//! The 8254 programmable interval timer, used once at boot as a reference
//! clock to calibrate the local-APIC timer and the TSC.

use x86_64::instructions::port::Port;

/// The PIT's input clock in Hz.
pub const PIT_HZ: u64 = 1_193_182;

/// Busy-waits `micros` microseconds (at most ~54 ms) on PIT channel 2,
/// calling `start` as the countdown begins and returning when it ends.
pub fn wait_micros(micros: u64, start: impl FnOnce()) {
    let count = (PIT_HZ * micros / 1_000_000).clamp(1, 0xffff) as u16;
    let mut gate: Port<u8> = Port::new(0x61);
    let mut command: Port<u8> = Port::new(0x43);
    let mut channel2: Port<u8> = Port::new(0x42);
    // SAFETY: 0x42/0x43/0x61 are the PIT channel-2 data, PIT command and
    // system-control ports; channel 2 only drives the (unused) speaker gate.
    unsafe {
        // Gate high, speaker off.
        let value = gate.read();
        gate.write((value & !0x02) | 0x01);
        // Channel 2, lobyte/hibyte, mode 0 (interrupt on terminal count), binary.
        command.write(0b1011_0000);
        channel2.write(count as u8);
        channel2.write((count >> 8) as u8);
        start();
        // Bit 5 of port 0x61 mirrors channel 2's output, which goes high at
        // terminal count.
        while gate.read() & 0x20 == 0 {
            core::hint::spin_loop();
        }
    }
}
