//! The build's trusted-compiler gate and the kernel-only capability,
//! tested by building probe extensions through the real gate.
//!
//! Each probe under `tests/probes/` is built the way `cargo xtask build`
//! builds extensions: for the kernel's target, with this xtask binary as
//! cargo's `RUSTC_WORKSPACE_WRAPPER` and a wrapper plan naming what the
//! probe may link against, in a throw-away workspace under
//! `target/spindle/gate-tests/` (its own target directory, so the first run
//! compiles the SDK for the kernel target once).

use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::{Mutex, OnceLock};

/// The kernel's target.
const TARGET: &str = "x86_64-unknown-none";
/// What `cargo xtask build` passes for that target (`KERNEL_BUILD_STD` in
/// xtask's main.rs): `core` and `alloc` rebuilt with the workspace's flags.
const BUILD_STD: [&str; 2] = [
    "-Zbuild-std=core,alloc",
    "-Zbuild-std-features=compiler-builtins-mem",
];

fn workspace_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .expect("xtask lives in the workspace")
        .to_path_buf()
}

fn gate_dir() -> PathBuf {
    workspace_root()
        .join("target")
        .join("spindle")
        .join("gate-tests")
}

/// Writes the throw-away workspace once per test process: a copy of each
/// probe with its dependency paths filled in, and the repository's lock
/// file so that dependency versions are the kernel's.
fn probe_workspace() -> &'static Path {
    static WORKSPACE: OnceLock<PathBuf> = OnceLock::new();
    WORKSPACE.get_or_init(|| {
        let root = workspace_root();
        let ws = gate_dir().join("workspace");
        let _ = std::fs::remove_dir_all(&ws);
        std::fs::create_dir_all(ws.join("probes")).unwrap();
        std::fs::write(
            ws.join("Cargo.toml"),
            "[workspace]\nresolver = \"3\"\nmembers = [\"probes/*\"]\n",
        )
        .unwrap();
        std::fs::copy(root.join("Cargo.lock"), ws.join("Cargo.lock")).unwrap();
        let probes = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/probes");
        for entry in std::fs::read_dir(&probes).unwrap().flatten() {
            let name = entry.file_name();
            let to = ws.join("probes").join(&name);
            std::fs::create_dir_all(to.join("src")).unwrap();
            let manifest = std::fs::read_to_string(entry.path().join("Cargo.toml.in"))
                .unwrap()
                .replace("@SDK@", &root.join("extensions/sdk").display().to_string())
                .replace("@DOMAINS@", &root.join("domains").display().to_string());
            std::fs::write(to.join("Cargo.toml"), manifest).unwrap();
            std::fs::copy(entry.path().join("src/lib.rs"), to.join("src/lib.rs")).unwrap();
        }
        ws
    })
}

/// What a build printed.
struct Build {
    success: bool,
    stderr: String,
}

/// Builds `probe` through the gate, allowed to link against `spindle_sdk`
/// only (the plan's format is `xtask::extensions`'s: crate, allowed
/// crates, extra flags, tab-separated).
fn build(probe: &str) -> Build {
    static ONE_AT_A_TIME: Mutex<()> = Mutex::new(());
    let _serial = ONE_AT_A_TIME.lock().unwrap_or_else(|p| p.into_inner());
    let ws = probe_workspace();
    let crate_name = probe.replace('-', "_");
    let plan = gate_dir().join(format!("{probe}.plan"));
    std::fs::write(&plan, format!("{crate_name}\tspindle_sdk\t\n")).unwrap();
    let output = Command::new(env!("CARGO"))
        .current_dir(ws)
        .args(["build", "--quiet", "--target", TARGET, "--package", probe])
        .args(BUILD_STD)
        .env("CARGO_TARGET_DIR", gate_dir().join("target"))
        .env("RUSTC_WORKSPACE_WRAPPER", env!("CARGO_BIN_EXE_xtask"))
        .env("SPINDLE_WRAPPER_PLAN", &plan)
        .env_remove("RUSTFLAGS")
        .output()
        .expect("run cargo");
    Build {
        success: output.status.success(),
        stderr: String::from_utf8_lossy(&output.stderr).into_owned(),
    }
}

/// rustc's diagnostics, one per `error` line and the lines under it.
fn errors(stderr: &str) -> Vec<String> {
    let mut blocks: Vec<String> = Vec::new();
    for line in stderr.lines() {
        if line.starts_with("error") {
            blocks.push(String::new());
        }
        if let Some(block) = blocks.last_mut() {
            block.push_str(line);
            block.push('\n');
        }
    }
    blocks
}

#[test]
fn an_extension_using_only_the_sdk_builds() {
    let build = build("sdk-only-probe");
    assert!(build.success, "the control probe failed:\n{}", build.stderr);
}

#[test]
fn an_extension_using_unsafe_fails_to_build_even_if_it_allows_it() {
    let build = build("unsafe-probe");
    assert!(!build.success, "unsafe code was accepted");
    let errors = errors(&build.stderr);
    assert!(
        errors
            .iter()
            .any(|e| e.contains("usage of an `unsafe` block")
                && e.contains("requested on the command line with `-F unsafe-code`")),
        "{}",
        build.stderr
    );
}

#[test]
fn an_extension_depending_on_another_crate_fails_to_build() {
    let build = build("foreign-dependency-probe");
    assert!(!build.success, "a kernel-internal dependency was accepted");
    assert!(
        build.stderr.contains(
            "error: extension crate `foreign_dependency_probe` may not link against `domains`: extensions may use only spindle_sdk"
        ),
        "{}",
        build.stderr
    );
}

#[test]
fn each_formerly_public_kernel_only_operation_fails_to_build_by_name() {
    let build = build("kernel-only-probe");
    assert!(!build.success, "a kernel-only operation built");
    let errors = errors(&build.stderr);
    // What each probe names, and what the compiler says about it.
    let expected: &[(&str, &str)] = &[
        ("console::set_sink(", "E0061"),
        ("console::publish_line_event(", "E0061"),
        ("clock::publish_tick_event(", "E0061"),
        ("clock::set_hz(1_000_000)", "E0061"),
        ("clock::account_tick(", "E0061"),
        ("dispatcher::set_global_executor(", "E0061"),
        ("global_executor", "E0603"),
        ("time_bounds::set_clock(", "E0061"),
        ("time_bounds::global()", "E0061"),
        ("time_bounds::check_overruns(", "E0061"),
        ("raise(&Line::new(\"shutdown\"))", "E0599"),
        ("tick.raise(&1)", "E0599"),
        ("set_max_level", "E0425"),
    ];
    let mut missing = Vec::new();
    for (name, code) in expected {
        if !errors
            .iter()
            .any(|e| e.contains(name) && e.contains(&format!("error[{code}]")))
        {
            missing.push(format!("{name} ({code})"));
        }
    }
    assert!(
        missing.is_empty(),
        "not refused by name: {missing:?}\n{}",
        build.stderr
    );
}

#[test]
fn the_kernel_capability_cannot_be_forged() {
    let build = build("forged-capability-probe");
    assert!(!build.success, "a KernelCapability was forged");
    assert!(
        errors(&build.stderr)
            .iter()
            .any(|e| e.contains("error[E0451]")
                && e.contains("field `_private` of struct `KernelCapability` is private")),
        "{}",
        build.stderr
    );
}
