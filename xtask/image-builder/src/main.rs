//! Spindle's disk-image builder: a thin command-line wrapper around the
//! `bootloader` crate's [`DiskImageBuilder`].
//!
//! It lives in its own binary so that `cargo xtask` starts instantly: the
//! `bootloader` crate's build script compiles the four BIOS stages and the UEFI
//! loader with `-Zbuild-std`, which takes minutes on a cold cache. xtask builds
//! this tool once (showing cargo's progress), caches it under `target/`, and
//! runs it for every image.
//!
//! Usage: `image-builder --kernel K [--ramdisk R] [--bios OUT] [--uefi OUT]`
//! (`--uefi` needs the default feature `uefi`).

use std::path::{Path, PathBuf};
use std::process::ExitCode;

use bootloader::{BootConfig, DiskImageBuilder};

fn main() -> ExitCode {
    match run(std::env::args().skip(1).collect()) {
        Ok(()) => ExitCode::SUCCESS,
        Err(message) => {
            eprintln!("image-builder: {message}");
            ExitCode::FAILURE
        }
    }
}

fn run(args: Vec<String>) -> Result<(), String> {
    let mut kernel = None;
    let mut ramdisk = None;
    let mut bios = None;
    let mut uefi = None;
    let mut iter = args.into_iter();
    while let Some(flag) = iter.next() {
        let mut value = || {
            iter.next()
                .map(PathBuf::from)
                .ok_or_else(|| format!("{flag} needs a path"))
        };
        match flag.as_str() {
            "--kernel" => kernel = Some(value()?),
            "--ramdisk" => ramdisk = Some(value()?),
            "--bios" => bios = Some(value()?),
            "--uefi" => uefi = Some(value()?),
            other => return Err(format!("unknown argument {other:?}")),
        }
    }
    let kernel = kernel.ok_or("--kernel is required")?;
    let mut builder = DiskImageBuilder::new(kernel);
    if let Some(ramdisk) = ramdisk {
        builder.set_ramdisk(ramdisk);
    }
    // The bootloader's own log lines cost boot time under TCG and clutter the
    // console; Spindle prints its own boot log.
    let mut config = BootConfig::default();
    config.frame_buffer_logging = false;
    config.serial_logging = false;
    builder.set_boot_config(&config);
    if let Some(path) = bios {
        builder
            .create_bios_image(&path)
            .map_err(|e| format!("BIOS image {}: {e:#}", path.display()))?;
    }
    if let Some(path) = uefi {
        create_uefi_image(&builder, &path)?;
    }
    Ok(())
}

#[cfg(feature = "uefi")]
fn create_uefi_image(builder: &DiskImageBuilder, path: &Path) -> Result<(), String> {
    builder
        .create_uefi_image(path)
        .map_err(|e| format!("UEFI image {}: {e:#}", path.display()))
}

#[cfg(not(feature = "uefi"))]
fn create_uefi_image(_builder: &DiskImageBuilder, path: &Path) -> Result<(), String> {
    Err(format!(
        "UEFI image {}: this image builder was built without the `uefi` feature",
        path.display()
    ))
}
