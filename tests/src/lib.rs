//! Integration-test harness: boots the Spindle image built by
//! `cargo xtask test` under QEMU and talks to its shell.
//!
//! The images' paths come from `SPINDLE_BIOS_IMAGE` / `SPINDLE_UEFI_IMAGE`,
//! which `cargo xtask test` sets; run the tests through it (a plain
//! `cargo test -p spindle-tests` cannot build the kernel, because cargo holds
//! its build lock while tests run).

use std::path::PathBuf;
use std::time::Duration;

pub use xtask::gdb::GdbTarget;
pub use xtask::qemu::{Firmware, KernelExit, PipedOutcome, QemuOptions, Session, SessionError};

/// Time allowed from QEMU start to the first prompt (UEFI firmware is slow under TCG).
pub const BOOT_TIMEOUT: Duration = Duration::from_secs(120);
/// Time allowed for one shell command.
pub const COMMAND_TIMEOUT: Duration = Duration::from_secs(30);

/// The image for `firmware`, from the environment `cargo xtask test` sets.
pub fn image(firmware: Firmware) -> PathBuf {
    let var = match firmware {
        Firmware::Bios => "SPINDLE_BIOS_IMAGE",
        Firmware::Uefi => "SPINDLE_UEFI_IMAGE",
    };
    let path = std::env::var_os(var).map(PathBuf::from).unwrap_or_else(|| {
        panic!("{var} is not set: run the integration tests with `cargo xtask test`")
    });
    assert!(path.exists(), "{var}={} does not exist", path.display());
    path
}

/// QEMU options for booting `firmware`'s image with default settings.
pub fn options(firmware: Firmware) -> QemuOptions {
    let scratch = std::env::var_os("SPINDLE_SCRATCH_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(std::env::temp_dir);
    QemuOptions::new(image(firmware), firmware, scratch)
}

/// Boots and waits for the first prompt; returns the session and the boot output.
pub fn boot_with(options: &QemuOptions) -> (Session, String) {
    let mut session = Session::spawn(options, false).expect("QEMU starts");
    match session.wait_for_prompt(BOOT_TIMEOUT) {
        Ok(banner) => (session, banner),
        Err(e) => panic!(
            "no prompt after boot: {e}\n--- console ---\n{}",
            session.output()
        ),
    }
}

/// Boots `firmware`'s image with default options.
pub fn boot(firmware: Firmware) -> (Session, String) {
    boot_with(&options(firmware))
}

/// Runs one command; panics with the console transcript if it does not
/// return to the prompt.
pub fn command(session: &mut Session, line: &str) -> String {
    match session.command(line, COMMAND_TIMEOUT) {
        Ok(output) => output,
        Err(e) => panic!(
            "`{line}` did not return to the prompt: {e}\n--- console ---\n{}",
            session.output()
        ),
    }
}

/// The first number that follows `label` in `text`.
pub fn number_after(text: &str, label: &str) -> Option<u64> {
    let rest = &text[text.find(label)? + label.len()..];
    let digits: String = rest
        .trim_start()
        .chars()
        .take_while(char::is_ascii_digit)
        .collect();
    digits.parse().ok()
}

/// The number just before `label` in `text` (e.g. "55181 free" -> 55181).
pub fn number_before(text: &str, label: &str) -> Option<u64> {
    let head = &text[..text.find(label)?];
    let digits: String = head
        .trim_end()
        .chars()
        .rev()
        .take_while(char::is_ascii_digit)
        .collect();
    digits.chars().rev().collect::<String>().parse().ok()
}

/// A TCP port on 127.0.0.1 that was free a moment ago (for QEMU's gdb
/// stub, so that parallel runs do not collide on 1234).
pub fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .expect("a free port on 127.0.0.1")
}

/// What gdb needs to debug the kernel `cargo xtask test` built, on `port`:
/// the kernel ELF and the extensions' unstripped objects, from the
/// environment `cargo xtask test` sets.
pub fn gdb_target(port: u16) -> GdbTarget {
    let var = |name: &str| {
        std::env::var_os(name)
            .map(PathBuf::from)
            .unwrap_or_else(|| {
                panic!("{name} is not set: run the integration tests with `cargo xtask test`")
            })
    };
    GdbTarget {
        kernel: var("SPINDLE_KERNEL_ELF"),
        objects: var("SPINDLE_OBJECTS_DIR"),
        port,
    }
}

/// The `frames:` and `heap:` lines of `mem`: what a test compares with
/// a baseline to show nothing leaked.
pub fn memory_figures(mem: &str) -> (String, String) {
    let line = |prefix: &str| {
        mem.lines()
            .find(|l| l.trim_start().starts_with(prefix))
            .unwrap_or_else(|| panic!("no {prefix} line in:\n{mem}"))
            .trim()
            .to_owned()
    };
    (line("frames:"), line("heap:"))
}

/// Boots the BIOS image, feeds `input` to the shell a line at a time (as
/// `cargo xtask run` does from a pipe), and returns the console output;
/// panics with it unless the kernel exits cleanly within `timeout`.
pub fn run_script(input: &str, timeout: Duration) -> String {
    let (outcome, output) = xtask::qemu::run_piped(
        &options(Firmware::Bios),
        std::io::Cursor::new(input),
        timeout,
        false,
    )
    .expect("QEMU runs");
    assert_eq!(
        outcome,
        PipedOutcome::Exited(KernelExit::Success),
        "{output}"
    );
    output
}
