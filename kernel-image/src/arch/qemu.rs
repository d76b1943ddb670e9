//! QEMU's paravirtual devices: the `isa-debug-exit` device (ends the run with
//! a status) and `fw_cfg` (carries the kernel command line).

use alloc::string::String;
use alloc::vec;

use x86_64::instructions::port::Port;

/// What the kernel tells QEMU when it stops. QEMU exits with `(code << 1) | 1`,
/// so `Success` becomes status 33 and `Failure` 35; xtask maps them back.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[repr(u32)]
pub enum ExitCode {
    /// Clean shutdown or all tests passed.
    Success = 0x10,
    /// Panic or failed tests.
    Failure = 0x11,
}

/// Stops the machine through `isa-debug-exit` (port 0xf4).
pub fn exit(code: ExitCode) -> ! {
    // SAFETY: port 0xf4 is the isa-debug-exit device that xtask always
    // configures; writing to it terminates QEMU.
    unsafe { Port::<u32>::new(0xf4).write(code as u32) };
    // Without the device (e.g. other hypervisors), park the CPU.
    loop {
        x86_64::instructions::interrupts::disable();
        x86_64::instructions::hlt();
    }
}

const FW_CFG_SELECTOR: u16 = 0x510;
const FW_CFG_DATA: u16 = 0x511;
const FW_CFG_SIGNATURE: u16 = 0x0000;
const FW_CFG_FILE_DIR: u16 = 0x0019;
/// Name of the fw_cfg file xtask puts the command line in.
const CMDLINE_FILE: &[u8] = b"opt/spindle/cmdline";

fn fw_cfg_read(selector: u16, buffer: &mut [u8]) {
    let mut select: Port<u16> = Port::new(FW_CFG_SELECTOR);
    let mut data: Port<u8> = Port::new(FW_CFG_DATA);
    // SAFETY: 0x510/0x511 are QEMU's fw_cfg selector and data ports; on
    // machines without fw_cfg the reads return 0xff and the signature check
    // below fails before anything is trusted.
    unsafe {
        select.write(selector);
        for byte in buffer {
            *byte = data.read();
        }
    }
}

fn fw_cfg_continue(buffer: &mut [u8]) {
    let mut data: Port<u8> = Port::new(FW_CFG_DATA);
    for byte in buffer {
        // SAFETY: as in fw_cfg_read; continues reading the selected item.
        *byte = unsafe { data.read() };
    }
}

/// The kernel command line passed by xtask through fw_cfg
/// (`-fw_cfg name=opt/spindle/cmdline,string=...`), if any.
pub fn fw_cfg_cmdline() -> Option<String> {
    let mut signature = [0u8; 4];
    fw_cfg_read(FW_CFG_SIGNATURE, &mut signature);
    if &signature != b"QEMU" {
        return None;
    }
    let mut count = [0u8; 4];
    fw_cfg_read(FW_CFG_FILE_DIR, &mut count);
    for _ in 0..u32::from_be_bytes(count) {
        // Each entry: size (u32 BE), select (u16 BE), reserved (u16), name[56].
        let mut entry = [0u8; 64];
        fw_cfg_continue(&mut entry);
        let name = &entry[8..];
        let name = &name[..name.iter().position(|&b| b == 0).unwrap_or(name.len())];
        if name == CMDLINE_FILE {
            let size = u32::from_be_bytes([entry[0], entry[1], entry[2], entry[3]]) as usize;
            let select = u16::from_be_bytes([entry[4], entry[5]]);
            let mut contents = vec![0u8; size.min(4096)];
            fw_cfg_read(select, &mut contents);
            return Some(
                String::from_utf8_lossy(&contents)
                    .trim_end_matches('\0')
                    .into(),
            );
        }
    }
    None
}
