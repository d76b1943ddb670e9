//! Idempotent set-up: the pinned toolchain's components and target, QEMU
//! and OVMF, and gdb for `cargo xtask gdb`.
//!
//! rustup will not install the pinned toolchain on demand here
//! (`RUSTUP_AUTO_INSTALL=0`), and a missing toolchain stops `cargo` before
//! xtask can even run: `rustup toolchain install` in the workspace root (or
//! `.ci/run`) does that step. Everything after it is checked here, on every
//! xtask invocation, and installed when missing.

use std::process::{Command, Stdio};

use crate::{Failure, run_checked};

/// Components and targets the workspace needs, from `rust-toolchain.toml`.
struct Pinned {
    channel: String,
    components: Vec<String>,
    targets: Vec<String>,
}

fn read_pinned() -> Result<Pinned, Failure> {
    let path = xtask::workspace::root().join("rust-toolchain.toml");
    let text = std::fs::read_to_string(&path)
        .map_err(|e| Failure::new(format!("{}: {e}", path.display())))?;
    let value = |key: &str| -> Option<String> {
        text.lines()
            .find(|l| l.trim_start().starts_with(key) && l.contains('='))
            .map(|l| {
                l.split_once('=')
                    .map(|(_, v)| v.trim().to_owned())
                    .unwrap_or_default()
            })
    };
    let list = |key: &str| -> Vec<String> {
        value(key)
            .map(|v| {
                v.trim_matches(['[', ']'])
                    .split(',')
                    .map(|s| s.trim().trim_matches('"').to_owned())
                    .filter(|s| !s.is_empty())
                    .collect()
            })
            .unwrap_or_default()
    };
    let channel = value("channel")
        .map(|v| v.trim_matches('"').to_owned())
        .ok_or_else(|| Failure::new("rust-toolchain.toml has no channel"))?;
    Ok(Pinned {
        channel,
        components: list("components"),
        targets: list("targets"),
    })
}

fn rustup_list(channel: &str, what: &[&str]) -> Result<String, Failure> {
    let out = Command::new("rustup")
        .args(what)
        .args(["--installed", "--toolchain", channel])
        .stderr(Stdio::inherit())
        .output()
        .map_err(|e| Failure::new(format!("running rustup: {e}")))?;
    if !out.status.success() {
        return Err(Failure::new(format!(
            "toolchain {channel} is not installed: run `rustup toolchain install` in {}",
            xtask::workspace::root().display()
        )));
    }
    Ok(String::from_utf8_lossy(&out.stdout).into_owned())
}

/// Adds any component or target of the pinned toolchain that is missing.
pub fn ensure_toolchain() -> Result<(), Failure> {
    let pinned = read_pinned()?;
    let installed = rustup_list(&pinned.channel, &["component", "list"])?;
    // `rustup component list` names components with the host triple
    // (`rust-src` is the exception) and llvm-tools-preview as `llvm-tools`.
    let has_component = |name: &str| {
        let name = name.strip_suffix("-preview").unwrap_or(name);
        installed
            .lines()
            .any(|l| l == name || l.starts_with(&format!("{name}-")))
    };
    let missing: Vec<&String> = pinned
        .components
        .iter()
        .filter(|c| !has_component(c))
        .collect();
    if !missing.is_empty() {
        eprintln!("xtask: adding toolchain components {missing:?}");
        let mut cmd = Command::new("rustup");
        cmd.args(["component", "add", "--toolchain", &pinned.channel])
            .args(missing.iter().map(|s| s.as_str()));
        run_checked(&mut cmd)?;
    }
    let targets = rustup_list(&pinned.channel, &["target", "list"])?;
    for target in &pinned.targets {
        if !targets.lines().any(|l| l == target) {
            eprintln!("xtask: adding target {target}");
            run_checked(Command::new("rustup").args([
                "target",
                "add",
                "--toolchain",
                &pinned.channel,
                target,
            ]))?;
        }
    }
    Ok(())
}

fn have_qemu() -> bool {
    Command::new("qemu-system-x86_64")
        .arg("--version")
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .is_ok_and(|s| s.success())
}

fn is_root() -> bool {
    Command::new("id")
        .arg("-u")
        .output()
        .is_ok_and(|o| String::from_utf8_lossy(&o.stdout).trim() == "0")
}

/// Makes sure `qemu-system-x86_64` and OVMF are present; installs Debian's
/// packages when running as root, otherwise says what to run.
pub fn ensure_qemu() -> Result<(), Failure> {
    let have_ovmf = std::path::Path::new(xtask::qemu::OVMF_CODE).exists();
    if have_qemu() && have_ovmf {
        return Ok(());
    }
    install_packages(&["qemu-system-x86", "ovmf"], "QEMU or OVMF")?;
    if have_qemu() {
        Ok(())
    } else {
        Err(Failure::new(
            "qemu-system-x86_64 is still not runnable after installing",
        ))
    }
}

fn have_gdb() -> bool {
    Command::new("gdb")
        .arg("--version")
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .is_ok_and(|s| s.success())
}

/// Makes sure `gdb` (with Python, as Debian's `gdb` package has it) is
/// present; installs it like QEMU.
pub fn ensure_gdb() -> Result<(), Failure> {
    if have_gdb() {
        return Ok(());
    }
    install_packages(&["gdb"], "gdb")?;
    if have_gdb() {
        Ok(())
    } else {
        Err(Failure::new("gdb is still not runnable after installing"))
    }
}

/// Installs Debian packages when running as root (running `apt-get update`
/// first if the install fails); otherwise says what to run.
fn install_packages(packages: &[&str], what: &str) -> Result<(), Failure> {
    if !is_root() {
        return Err(Failure::new(format!(
            "{what} is missing; install with:\n    sudo apt-get install -y {}",
            packages.join(" ")
        )));
    }
    eprintln!("xtask: installing {} (Debian packages)", packages.join(" "));
    let install = || {
        Command::new("apt-get")
            .args(["install", "-y", "--no-install-recommends"])
            .args(packages)
            .env("DEBIAN_FRONTEND", "noninteractive")
            .status()
            .is_ok_and(|s| s.success())
    };
    if !install() {
        run_checked(
            Command::new("apt-get")
                .arg("update")
                .env("DEBIAN_FRONTEND", "noninteractive"),
        )?;
        if !install() {
            return Err(Failure::new(format!(
                "apt-get install {} failed",
                packages.join(" ")
            )));
        }
    }
    Ok(())
}
