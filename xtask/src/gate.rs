//! The trusted-compiler gate: xtask run as cargo's `RUSTC_WRAPPER` for the
//! kernel-and-extensions build, applying the plan that
//! [`xtask::trust`] computed (see there for the policy).
//!
//! For every compilation for the kernel target it looks the crate up in
//! the plan:
//!
//! * an **extension crate** gets `-F unsafe-code` (the source cannot lift
//!   it) and `-C codegen-units=1`, may name in `--extern` only what the plan
//!   allows (the SDK, its extension dependencies, its crates.io
//!   dependencies, the sysroot), and its sources must be free of `unsafe`;
//! * a **crate that must prove itself safe** (an unvetted dependency of an
//!   extension) is compiled with `-F unsafe-code`, its lints uncapped
//!   (cargo caps a dependency's lints at `allow`, which would silence the
//!   forbid) and warnings off, and its sources must be free of `unsafe`;
//!   failing either, the build fails with a message naming the crate, its
//!   version, the extensions that depend on it, and how to vet it;
//! * anything else (the kernel's crates, vetted crates, the sysroot) is
//!   compiled as cargo asked.
//!
//! Each verdict is recorded as a stamp named after the artifact
//! ([`trust::stamp_name`]). After the build, xtask checks that every
//! extension and every checked crate it bundles has one: an artifact that
//! cargo found fresh from a build outside the gate is rebuilt through it.

use std::path::{Path, PathBuf};
use std::process::Command;

use xtask::trust;

use crate::KERNEL_TARGET;

/// Crates `-Zbuild-std` links every kernel-target crate against.
const SYSROOT_CRATES: [&str; 3] = ["core", "alloc", "compiler_builtins"];

/// Verdict written into an extension crate's stamp.
pub const STAMP_EXTENSION: &str = "extension";
/// Verdict written into a checked crate's stamp.
pub const STAMP_SAFE: &str = "safe";

/// The parts of the plan file the wrapper reads.
#[derive(Default)]
struct Plan {
    vetted: Option<PathBuf>,
    stamps: Option<PathBuf>,
    /// crate, allowed externs, extra flags.
    extensions: Vec<(String, Vec<String>, Vec<String>)>,
    /// package, version, crate, checksum, used by, vetted versions.
    checked: Vec<[String; 6]>,
}

impl Plan {
    fn read(path: &Path) -> Plan {
        let text = std::fs::read_to_string(path).unwrap_or_default();
        let mut plan = Plan::default();
        for line in text.lines() {
            let fields: Vec<&str> = line.split('\t').collect();
            match fields[..] {
                ["@vetted", path] => plan.vetted = Some(path.into()),
                ["@stamps", path] => plan.stamps = Some(path.into()),
                ["@check", a, b, c, d, e, f] => {
                    plan.checked.push([a, b, c, d, e, f].map(str::to_owned));
                }
                [name, ..] if !name.starts_with('@') && !name.is_empty() => {
                    let list = |i: usize, sep: char| -> Vec<String> {
                        fields
                            .get(i)
                            .map(|f| {
                                f.split(sep)
                                    .filter(|s| !s.is_empty())
                                    .map(String::from)
                                    .collect()
                            })
                            .unwrap_or_default()
                    };
                    plan.extensions
                        .push((name.to_owned(), list(1, ','), list(2, ' ')));
                }
                _ => {}
            }
        }
        plan
    }
}

/// The value after `flag` (`--flag value`), or after `flag=`/`prefix` in
/// a `-C name=value` pair.
fn arg_value<'a>(args: &'a [String], flag: &str) -> Option<&'a str> {
    args.windows(2)
        .find(|w| w[0] == flag)
        .map(|w| w[1].as_str())
}

fn codegen_option<'a>(args: &'a [String], name: &str) -> Option<&'a str> {
    let prefix = format!("{name}=");
    args.windows(2)
        .find_map(|w| (w[0] == "-C").then(|| w[1].strip_prefix(&prefix)).flatten())
        .or_else(|| {
            args.iter()
                .find_map(|a| a.strip_prefix("-C").and_then(|a| a.strip_prefix(&prefix)))
        })
}

/// `xtask` run as cargo's `RUSTC_WRAPPER`: `args` are the rustc path
/// followed by its arguments. Returns the exit code.
pub fn rustc_wrapper(plan_path: &Path, args: Vec<String>) -> i32 {
    let Some((rustc, rest)) = args.split_first() else {
        eprintln!("xtask wrapper: no rustc given");
        return 2;
    };
    let mut rest = rest.to_vec();
    let for_kernel = arg_value(&rest, "--target") == Some(KERNEL_TARGET);
    let crate_name = arg_value(&rest, "--crate-name").map(str::to_owned);
    if !for_kernel || crate_name.is_none() {
        return run(rustc, &rest);
    }
    let crate_name = crate_name.unwrap_or_default();
    let plan = Plan::read(plan_path);
    // Cargo tells rustc which package it compiles.
    let package = std::env::var("CARGO_PKG_NAME").unwrap_or_default();
    let version = std::env::var("CARGO_PKG_VERSION").unwrap_or_default();

    if let Some((name, allowed, flags)) = plan.extensions.iter().find(|e| e.0 == crate_name) {
        // `--extern [OPTIONS:]NAME[=PATH]`; build-std adds the sysroot
        // crates as `noprelude:core=...` and the like.
        let externs = rest.windows(2).filter(|w| w[0] == "--extern").map(|w| {
            let name = w[1].split('=').next().unwrap_or("");
            name.rsplit(':').next().unwrap_or(name).to_owned()
        });
        for dependency in externs {
            if !allowed.contains(&dependency) && !SYSROOT_CRATES.contains(&dependency.as_str()) {
                eprintln!(
                    "error: extension crate `{name}` may not link against `{dependency}`: extensions may use only {} (see [package.metadata.spindle])",
                    allowed.join(", ")
                );
                return 1;
            }
        }
        rest.extend(["-F", "unsafe-code", "-C", "codegen-units=1"].map(String::from));
        rest.extend(flags.iter().cloned());
        let status = run(rustc, &rest);
        if status != 0 {
            return status;
        }
        let found = scan(&rest, &crate_name);
        if !found.is_empty() {
            eprintln!(
                "error: extension crate `{name}` contains unsafe code: {}\n  extensions are safe Rust, macro bodies included",
                locations(&found)
            );
            return 1;
        }
        stamp(&plan, &rest, &crate_name, STAMP_EXTENSION);
        return 0;
    }

    let Some(check) = plan
        .checked
        .iter()
        .find(|c| c[0] == package && c[1] == version && c[2] == crate_name)
    else {
        return run(rustc, &rest);
    };
    // Uncap the lints (cargo passes `--cap-lints allow` for dependencies,
    // which would cap the forbid too), forbid unsafe code, silence
    // warnings.
    if let Some(i) = rest.iter().position(|a| a == "--cap-lints") {
        rest.drain(i..(i + 2).min(rest.len()));
    }
    rest.retain(|a| !a.starts_with("--cap-lints="));
    rest.extend(["-F", "unsafe-code", "-A", "warnings"].map(String::from));
    let (status, errors) = run_showing_first_errors(rustc, &rest, SHOWN_ERRORS);
    if status != 0 {
        let shown = if errors > SHOWN_ERRORS {
            format!("the first {SHOWN_ERRORS} of its {errors} errors are above")
        } else {
            "see above".to_owned()
        };
        eprintln!(
            "{}",
            unvetted_message(
                check,
                &plan,
                &format!("does not compile under -F unsafe-code ({shown})")
            )
        );
        return status;
    }
    let found = scan(&rest, &crate_name);
    if !found.is_empty() {
        eprintln!(
            "{}",
            unvetted_message(
                check,
                &plan,
                &format!("uses unsafe code: {}", locations(&found))
            )
        );
        return 1;
    }
    stamp(&plan, &rest, &crate_name, STAMP_SAFE);
    0
}

/// Errors of a failing dependency shown before the gate's message.
const SHOWN_ERRORS: usize = 3;

/// Runs rustc, passing its diagnostics (JSON, one per line, as cargo asks
/// for them) through to cargo, except errors past the first `shown`.
/// Returns the exit code and the number of errors (the closing "aborting
/// due to N errors" not counted).
fn run_showing_first_errors(rustc: &str, args: &[String], shown: usize) -> (i32, usize) {
    use std::io::{BufRead, BufReader, Write};
    let child = Command::new(rustc)
        .args(args)
        .stderr(std::process::Stdio::piped())
        .spawn();
    let mut child = match child {
        Ok(child) => child,
        Err(e) => {
            eprintln!("xtask wrapper: running {rustc}: {e}");
            return (1, 0);
        }
    };
    let mut errors = 0;
    let mut stderr = std::io::stderr().lock();
    if let Some(pipe) = child.stderr.take() {
        for line in BufReader::new(pipe).lines().map_while(Result::ok) {
            let diagnostic: Option<serde_json::Value> = serde_json::from_str(&line).ok();
            let error = diagnostic
                .as_ref()
                .filter(|d| d["$message_type"] == "diagnostic" && d["level"] == "error");
            if let Some(d) = error {
                let summary = d["message"]
                    .as_str()
                    .is_some_and(|m| m.starts_with("aborting due to"));
                if !summary {
                    errors += 1;
                    if errors > shown {
                        continue;
                    }
                }
            }
            let _ = writeln!(stderr, "{line}");
        }
    }
    let status = child.wait().map_or(1, |s| s.code().unwrap_or(1));
    (status, errors)
}

fn run(rustc: &str, args: &[String]) -> i32 {
    match Command::new(rustc).args(args).status() {
        Ok(status) => status.code().unwrap_or(1),
        Err(e) => {
            eprintln!("xtask wrapper: running {rustc}: {e}");
            1
        }
    }
}

/// The source files rustc read for this compilation (its dep-info file),
/// scanned for unsafe code: (file, line, token).
fn scan(args: &[String], crate_name: &str) -> Vec<(String, usize, &'static str)> {
    let (Some(out_dir), extra) = (
        arg_value(args, "--out-dir"),
        codegen_option(args, "extra-filename").unwrap_or(""),
    ) else {
        return vec![(
            "(no --out-dir: cannot find the sources)".into(),
            0,
            "unsafe",
        )];
    };
    let dep_info = Path::new(out_dir).join(format!("{crate_name}{extra}.d"));
    let Ok(text) = std::fs::read_to_string(&dep_info) else {
        return vec![(format!("{} (missing)", dep_info.display()), 0, "unsafe")];
    };
    let mut found = Vec::new();
    // Make syntax: `target: dep dep ...`, then one `dep:` line per file.
    for line in text.lines() {
        let Some(file) = line.strip_suffix(':') else {
            continue;
        };
        let file = file.replace("\\ ", " ");
        if !file.ends_with(".rs") {
            continue;
        }
        let Ok(source) = std::fs::read_to_string(&file) else {
            continue;
        };
        let manifest_dir = std::env::var("CARGO_MANIFEST_DIR").unwrap_or_default();
        let shown = Path::new(&file)
            .strip_prefix(&manifest_dir)
            .map_or_else(|_| file.clone(), |p| p.display().to_string());
        for (line, token) in trust::find_unsafe(&source) {
            found.push((shown.clone(), line, token));
        }
    }
    found
}

fn locations(found: &[(String, usize, &'static str)]) -> String {
    const SHOWN: usize = 4;
    let mut text: Vec<String> = found
        .iter()
        .take(SHOWN)
        .map(|(file, line, token)| format!("`{token}` at {file}:{line}"))
        .collect();
    if found.len() > SHOWN {
        text.push(format!("and {} more", found.len() - SHOWN));
    }
    text.join(", ")
}

fn unvetted_message(check: &[String; 6], plan: &Plan, what: &str) -> String {
    let [package, version, _, checksum, used_by, vetted_versions] = check;
    let vetted = plan.vetted.as_deref().map_or_else(
        || trust::VETTED_FILE.to_owned(),
        |p| p.display().to_string(),
    );
    let source = std::env::var("CARGO_MANIFEST_DIR").unwrap_or_default();
    let mut message = format!(
        "error: `{package} {version}`, a dependency of extension(s) {}, is not vetted and {what}\n",
        used_by
            .split(',')
            .map(|e| format!("`{e}`"))
            .collect::<Vec<_>>()
            .join(", ")
    );
    if !vetted_versions.is_empty() {
        message.push_str(&format!(
            "  {vetted} vets {package} {} only: another version must be vetted again\n",
            vetted_versions.replace(',', ", ")
        ));
    }
    message.push_str(&format!(
        "  to vet it, review its source in {source} and add to {vetted}:\n\
         \n    [[crate]]\n    name = \"{package}\"\n    version = \"{version}\"\n    checksum = \"{checksum}\"\n    \
         vetted-by = \"YOUR NAME\"\n    reason = \"what its unsafe code does, and why it is sound in the kernel\"\n"
    ));
    message
}

/// Records a verdict for this compilation's artifact.
fn stamp(plan: &Plan, args: &[String], crate_name: &str, verdict: &str) {
    let Some(dir) = &plan.stamps else { return };
    let extra = codegen_option(args, "extra-filename").unwrap_or("");
    let _ = std::fs::create_dir_all(dir);
    let _ = std::fs::write(dir.join(trust::stamp_name(crate_name, extra)), verdict);
}

/// Whether the artifact `rlib` carries the stamp `verdict` in `stamps`.
pub fn has_stamp(stamps: &Path, rlib: &Path, verdict: &str) -> bool {
    rlib.file_stem()
        .and_then(|stem| std::fs::read_to_string(stamps.join(stem)).ok())
        .is_some_and(|v| v == verdict)
}
