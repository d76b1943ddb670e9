//! The legacy 8259 PIC pair: remapped away from the exception vectors and
//! masked, so that only the local APIC delivers interrupts.

use x86_64::instructions::port::Port;

use super::idt::PIC_BASE_VECTOR;

/// Reinitialises both PICs with vectors `PIC_BASE_VECTOR..+16` and masks every line.
pub fn remap_and_mask() {
    let mut master_cmd: Port<u8> = Port::new(0x20);
    let mut master_data: Port<u8> = Port::new(0x21);
    let mut slave_cmd: Port<u8> = Port::new(0xa0);
    let mut slave_data: Port<u8> = Port::new(0xa1);
    let mut wait_port: Port<u8> = Port::new(0x80);
    let init_sequence = [
        // ICW1: initialise, expect ICW4.
        (0x11, 0x11),
        // ICW2: vector offsets.
        (PIC_BASE_VECTOR, PIC_BASE_VECTOR + 8),
        // ICW3: slave on IRQ2 / cascade identity 2.
        (0x04, 0x02),
        // ICW4: 8086 mode.
        (0x01, 0x01),
    ];
    // SAFETY: ports 0x20/0x21/0xa0/0xa1 are the 8259 pair on PC-compatible
    // machines and 0x80 is the POST port (writes are harmless delays); this
    // runs once at boot with interrupts disabled.
    unsafe {
        for (step, (master, slave)) in init_sequence.into_iter().enumerate() {
            let (mc, sc) = if step == 0 {
                (&mut master_cmd, &mut slave_cmd)
            } else {
                (&mut master_data, &mut slave_data)
            };
            mc.write(master);
            wait_port.write(0);
            sc.write(slave);
            wait_port.write(0);
        }
        master_data.write(0xff);
        slave_data.write(0xff);
    }
    log::debug!("legacy PIC remapped to {PIC_BASE_VECTOR:#x} and masked");
}
