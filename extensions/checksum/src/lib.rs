//! `checksum`: CRC-32 and CRC-16 of text typed at the shell, with the
//! crates.io `crc` crate (safe Rust: it builds under `-F unsafe-code`, so it
//! needs no vetting), remembering the last results in a `heapless`
//! history buffer — a dependency it shares with `stats`. Each extension
//! carries its own copy in its own domain: they load and unload in any
//! order.
//!
//! ```text
//! spindle> checksum 123456789
//! crc-32/iso-hdlc 0xcbf43926  crc-16/ibm-sdlc 0x906e  (9 bytes)
//! ```
#![no_std]
#![forbid(unsafe_code)]

use crc::{CRC_16_IBM_SDLC, CRC_32_ISO_HDLC, Crc};
use heapless::HistoryBuf;
use spindle_sdk::prelude::*;
use spindle_sdk::spin::Mutex;

/// CRC-32 as in Ethernet, zip and PNG.
pub const CRC32: Crc<u32> = Crc::<u32>::new(&CRC_32_ISO_HDLC);
/// CRC-16 as in HDLC and X.25.
pub const CRC16: Crc<u16> = Crc::<u16>::new(&CRC_16_IBM_SDLC);

/// How many results `checksum` alone lists.
pub const HISTORY: usize = 4;

/// Recent (CRC-32, length) results, oldest first.
static RECENT: Mutex<HistoryBuf<(u32, usize), HISTORY>> = Mutex::new(HistoryBuf::new());

/// The installed handler, kept so that `exit` can uninstall it.
static COMMAND: Mutex<Option<Binding<Line, Reply>>> = Mutex::new(None);

fn command(line: &Line) -> Reply {
    // The text after the command word, as typed.
    let text = line.text().trim_start();
    let text = text[line.command().len()..].trim_start();
    if text.is_empty() {
        let recent = RECENT.lock();
        if recent.is_empty() {
            println!("usage: checksum TEXT (CRC-32 and CRC-16 of TEXT)");
        }
        for (crc, len) in recent.oldest_ordered() {
            println!("crc-32 {crc:#010x}  ({len} bytes)");
        }
        return Reply::Handled;
    }
    let crc32 = CRC32.checksum(text.as_bytes());
    let crc16 = CRC16.checksum(text.as_bytes());
    RECENT.lock().write((crc32, text.len()));
    println!(
        "crc-32/iso-hdlc {crc32:#010x}  crc-16/ibm-sdlc {crc16:#06x}  ({} bytes)",
        text.len()
    );
    Reply::Handled
}

fn init(ctx: &ExtensionContext) -> Result<(), ExtensionError> {
    let binding = spindle_sdk::console::line_event()
        .binding(command)
        .guard(|line| line.command() == "checksum")
        .install(ctx.principal())?;
    *COMMAND.lock() = Some(binding);
    println!("checksum: loaded; try 'checksum 123456789'");
    Ok(())
}

fn exit(_ctx: &ExtensionContext) {
    if let Some(binding) = COMMAND.lock().take() {
        let _ = binding.uninstall();
    }
}

spindle_sdk::extension!(init: init, exit: exit);
