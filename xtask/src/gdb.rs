//! `cargo xtask gdb`: gdb attached to a kernel that QEMU runs with its gdb
//! stub (`cargo xtask run --gdb`), with the kernel's symbols at their
//! run-time addresses and the extensions' symbols kept in step with loads
//! and unloads by `xtask/gdb/spindle.py`.
//!
//! The kernel is a position-independent executable linked at 0 and loaded
//! at [`KERNEL_LOAD_ADDRESS`], so its symbols are loaded with
//! `symbol-file -o`. Under TCG (what xtask uses unless KVM really works)
//! QEMU's stub implements software breakpoints itself, so `break
//! kernel_main` works before the kernel is even in memory; under KVM use
//! `hbreak` until the kernel has started.

use std::path::{Path, PathBuf};
use std::process::Command;

/// Where the bootloader loads the kernel (`BOOTLOADER_CONFIG.mappings.kernel_base`
/// in kernel-image/src/main.rs); the kernel ELF is linked at 0.
pub const KERNEL_LOAD_ADDRESS: u64 = 0xffff_ffff_8000_0000;

/// The TCP port QEMU's gdb stub listens on unless told otherwise.
pub const DEFAULT_PORT: u16 = 1234;

/// The gdb helper script shipped in the repository.
pub fn script() -> PathBuf {
    crate::workspace::root().join("xtask/gdb/spindle.py")
}

/// The file in which a build records the path of the kernel ELF it made
/// (with DWARF) for `profile` ("debug" or "release").
pub fn kernel_path_record(target_dir: &Path, profile: &str) -> PathBuf {
    target_dir
        .join("spindle")
        .join(profile)
        .join("kernel-elf.path")
}

/// What a gdb session needs.
#[derive(Clone, Debug)]
pub struct GdbTarget {
    /// The kernel ELF with its DWARF.
    pub kernel: PathBuf,
    /// Where the extensions' unstripped objects (`NAME.debug.o`) are.
    pub objects: PathBuf,
    /// The gdb stub's TCP port on 127.0.0.1.
    pub port: u16,
}

impl GdbTarget {
    /// The gdb command: kernel symbols at their run-time addresses, the
    /// helper script, attached to the stub, extension symbols loaded and
    /// followed; then `extra` (e.g. `--batch -ex ...`).
    pub fn command(&self, extra: &[String]) -> Command {
        let mut cmd = Command::new("gdb");
        cmd.arg("-q");
        for setup in self.setup_commands() {
            cmd.args(["-ex", &setup]);
        }
        cmd.args(extra);
        cmd
    }

    /// The gdb commands that set a session up, in order.
    pub fn setup_commands(&self) -> Vec<String> {
        vec![
            "set pagination off".into(),
            "set confirm off".into(),
            // QEMU may still be starting: retry the connection for a while.
            "set tcp connect-timeout 30".into(),
            // A breakpoint on an extension's function waits for its load.
            "set breakpoint pending on".into(),
            format!(
                "symbol-file -o {KERNEL_LOAD_ADDRESS:#x} {}",
                self.kernel.display()
            ),
            format!("source {}", script().display()),
            format!("target remote 127.0.0.1:{}", self.port),
            format!("spindle-symbols {}", self.objects.display()),
        ]
    }

    /// The same session as one shell command line, for hints.
    pub fn shell_line(&self) -> String {
        let mut line = String::from("gdb -q");
        for setup in self.setup_commands() {
            line.push_str(&format!(" -ex '{setup}'"));
        }
        line
    }
}
