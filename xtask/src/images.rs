//! Disk images: the kernel and its ramdisk written into bootable BIOS and
//! UEFI images by the `bootloader` crate's `DiskImageBuilder`, wrapped in
//! the `image-builder` tool (`xtask/image-builder`).
//!
//! * [`make_images`] (`image`, `run`, `test`): both images, every extension
//!   and test fixture in the ramdisk.
//! * [`make_bench_image`] (`bench`): a BIOS image whose ramdisk holds only
//!   the extensions the benchmark suites load
//!   ([`spindle_package::bench_set`]), under `target/spindle/PROFILE/bench/`.
//!   On a fresh clone it also skips the UEFI boot stage: the image builder
//!   is then built without it, in its own target directory.

use std::path::{Path, PathBuf};
use std::process::Command;

use spindle_package::bench_set;
use xtask::qemu::Images;
use xtask::workspace;

use crate::extensions::{self, Outputs, Selection};
use crate::{Failure, cargo_beside, llvm_objcopy, profile_dir, run_checked, side_by_side};

/// Where the benchmark image and its ramdisk go, under the profile's
/// directory.
const BENCH_SUBDIR: &str = "bench";

/// Target directory of the bootloader image builder, apart from the
/// workspace's: its build (the `bootloader` crate's build script compiles
/// the BIOS and UEFI boot stages, each with `-Zbuild-std`) then runs beside
/// the kernel's, which holds the lock on `target/debug` for its build
/// scripts and proc macros. `cargo xtask check` lints it here too, so the
/// boot stages are compiled once.
pub fn image_builder_target_dir() -> PathBuf {
    workspace::target_dir().join("image-builder")
}

/// Target directory of the image builder without UEFI support (see
/// [`bench_image_builder`]).
fn bios_image_builder_target_dir() -> PathBuf {
    workspace::target_dir().join("image-builder-bios")
}

/// Builds (once; cargo caches it) the tool that wraps the bootloader's
/// `DiskImageBuilder`, and returns its path.
///
/// In the dev profile (optimised for size here, fast enough to write two
/// disk images), in [`image_builder_target_dir`], at a lower CPU priority
/// than the kernel's build it runs beside ([`cargo_beside`]).
pub fn image_builder() -> Result<PathBuf, Failure> {
    build_image_builder(&image_builder_target_dir(), &[], "BIOS and UEFI")
}

/// The image builder for the benchmark image, which is BIOS only: the full
/// one if it was built already (no new compile), otherwise one built
/// without the `uefi` feature, which spares compiling the UEFI boot stage
/// (about 110 of 370 CPU-seconds of the image builder's first build).
fn bench_image_builder() -> Result<PathBuf, Failure> {
    if builder_path(&image_builder_target_dir()).exists() {
        return image_builder();
    }
    build_image_builder(
        &bios_image_builder_target_dir(),
        &["--no-default-features"],
        "BIOS",
    )
}

fn builder_path(target_dir: &Path) -> PathBuf {
    target_dir.join("debug").join("image-builder")
}

fn build_image_builder(
    target_dir: &Path,
    features: &[&str],
    stages: &str,
) -> Result<PathBuf, Failure> {
    let path = builder_path(target_dir);
    if !path.exists() {
        eprintln!(
            "xtask: building the bootloader image builder beside the kernel; the first build \
             (or `cargo xtask check`) compiles the {stages} boot stages with -Zbuild-std, \
             a few minutes, cached afterwards"
        );
    }
    let mut cmd = cargo_beside();
    cmd.args(["build", "--package", "image-builder"])
        .args(features)
        .arg("--target-dir")
        .arg(target_dir);
    if path.exists() {
        cmd.arg("--quiet");
    }
    run_checked(&mut cmd)?;
    Ok(path)
}

/// Builds the kernel and writes both disk images.
///
/// The image gets a copy of the kernel without DWARF (`--strip-debug`; the
/// symbol table stays, extensions are linked against it): the BIOS loader
/// reads the kernel through real-mode disk calls, which under TCG costs
/// about 0.6 s per MiB. The full ELF stays in `target/` for gdb.
/// Returns the images and the full (unstripped) kernel ELF, for gdb.
///
/// The image builder is built on another thread, beside the kernel and the
/// extensions (each in its own target directory).
pub fn make_images(release: bool) -> Result<(Images, PathBuf), Failure> {
    let (outputs, builder) =
        side_by_side(|| extensions::build(release, Selection::All), image_builder);
    let outputs = outputs?;
    let builder = builder?;
    let images = Images::in_target_dir(&workspace::target_dir(), release);
    write_images(&builder, &outputs, &images.bios, Some(&images.uefi))?;
    record_kernel(release, &outputs.kernel)?;
    Ok((images, outputs.kernel))
}

/// Builds the kernel with only the extensions the benchmark suites load
/// and writes a BIOS image of it; returns the image's path.
pub fn make_bench_image(release: bool) -> Result<PathBuf, Failure> {
    let selection = Selection::Only {
        names: &bench_set::ALL,
        subdir: BENCH_SUBDIR,
    };
    let (outputs, builder) = side_by_side(
        || extensions::build(release, selection),
        bench_image_builder,
    );
    let outputs = outputs?;
    let builder = builder?;
    let image = workspace::target_dir()
        .join("spindle")
        .join(profile_dir(release))
        .join(BENCH_SUBDIR)
        .join("spindle-bios.img");
    write_images(&builder, &outputs, &image, None)?;
    record_kernel(release, &outputs.kernel)?;
    Ok(image)
}

/// Strips the kernel and runs the image builder.
fn write_images(
    builder: &Path,
    outputs: &Outputs,
    bios: &Path,
    uefi: Option<&Path>,
) -> Result<(), Failure> {
    let dir = bios.parent().expect("images live in a directory");
    std::fs::create_dir_all(dir).map_err(|e| Failure::new(format!("{}: {e}", dir.display())))?;
    let kernel = dir.join("spindle-kernel.stripped");
    strip_debug(&outputs.kernel, &kernel)?;
    let mut cmd = Command::new(builder);
    cmd.arg("--ramdisk").arg(&outputs.ramdisk);
    cmd.arg("--kernel").arg(&kernel).arg("--bios").arg(bios);
    if let Some(uefi) = uefi {
        cmd.arg("--uefi").arg(uefi);
    }
    run_checked(&mut cmd)
}

/// Writes `kernel` without its DWARF to `stripped`, as the images carry it
/// (the symbol table stays: extensions link against it and `push` compares
/// its hash with the running kernel's).
pub fn strip_debug(kernel: &Path, stripped: &Path) -> Result<(), Failure> {
    run_checked(
        Command::new(llvm_objcopy()?)
            .arg("--strip-debug")
            .arg(kernel)
            .arg(stripped),
    )
}

/// Records the kernel ELF the last build made, for `cargo xtask gdb`, which
/// must not rebuild under a running kernel.
fn record_kernel(release: bool, kernel: &Path) -> Result<(), Failure> {
    let record = xtask::gdb::kernel_path_record(&workspace::target_dir(), profile_dir(release));
    std::fs::write(&record, kernel.as_os_str().as_encoded_bytes())
        .map_err(|e| Failure::new(format!("{}: {e}", record.display())))
}
