//! The README's loop, end to end, in a temporary copy of the workspace:
//! `cargo xtask new-extension greeter`, `cargo xtask run` (kept running),
//! `cargo xtask push greeter`, `greeter` at the prompt, an edit,
//! `cargo xtask push greeter --replace`, the new answer, `ext unload
//! greeter` — no reboot, no hand-edited file.
//!
//! The copy lives beside the workspace (`.NAME.push-workflow` next to the
//! workspace directory `NAME`, removed afterwards), with its own target
//! directory `target/push-workflow/target` seeded from the workspace's
//! each time, so nothing of the real workspace is touched. Beside it,
//! because cargo identifies crates outside a workspace (the standard
//! library `-Zbuild-std` compiles) by their path relative to the
//! workspace root: at the same depth the copy reuses the seeded builds of
//! `core`, `alloc` and everything that depends on them (with the signing
//! key and the trusted-compiler gate's stamps), and compiles only what
//! really differs: the new extension.

use std::io::{Read, Write};
use std::path::{Path, PathBuf};
use std::process::{Child, ChildStdin, Command, Output, Stdio};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

/// First build of the copy (its workspace crates, the kernel, every
/// extension) on a busy 2-core machine.
const FIRST_BUILD: Duration = Duration::from_secs(1800);
const STEP: Duration = Duration::from_secs(600);

fn cargo() -> Command {
    Command::new(std::env::var("CARGO").unwrap_or_else(|_| "cargo".into()))
}

fn run_checked(cmd: &mut Command) {
    let status = cmd.status().unwrap_or_else(|e| panic!("{cmd:?}: {e}"));
    assert!(status.success(), "{cmd:?} failed: {status}");
}

/// The copy of the workspace, removed when dropped.
struct WorkspaceCopy {
    ws: PathBuf,
}

impl Drop for WorkspaceCopy {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.ws);
    }
}

/// Where the copy goes: beside the workspace if its parent is writable
/// (see the module docs), else under the target directory.
fn copy_location(root: &Path, real_target: &Path) -> PathBuf {
    if let (Some(parent), Some(name)) = (root.parent(), root.file_name()) {
        let beside = parent.join(format!(".{}.push-workflow", name.to_string_lossy()));
        let _ = std::fs::remove_dir_all(&beside);
        if std::fs::create_dir_all(&beside).is_ok() {
            return beside;
        }
    }
    let fallback = real_target.join("push-workflow").join("ws");
    let _ = std::fs::remove_dir_all(&fallback);
    std::fs::create_dir_all(&fallback).unwrap();
    fallback
}

/// The copy and its target directory.
fn prepare_copy() -> (WorkspaceCopy, PathBuf) {
    let root = xtask::workspace::root();
    let real_target = xtask::workspace::target_dir();
    let ws = copy_location(&root, &real_target);
    let target = real_target.join("push-workflow").join("target");
    for entry in std::fs::read_dir(&root).unwrap() {
        let path = entry.unwrap().path();
        let name = path.file_name().unwrap();
        if name == "target" || name == ".git" {
            continue;
        }
        run_checked(Command::new("cp").arg("-a").arg(&path).arg(&ws));
    }
    let _ = std::fs::remove_dir_all(ws.join("extensions/greeter"));
    // Seeded afresh each time from the workspace's current builds (the
    // dev profile's, which the loop uses, the image builder's included:
    // its first build compiles the boot stages), the signing key (the
    // kernel embeds it) and the trusted-compiler gate's stamps for the
    // builds.
    let _ = std::fs::remove_dir_all(&target);
    for dir in [
        "debug",
        "image-builder/debug",
        "x86_64-unknown-none/debug",
        "spindle/keys",
        "spindle/debug/gate",
    ] {
        seed(&real_target.join(dir), &target.join(dir));
    }
    (WorkspaceCopy { ws }, target)
}

/// Copies the builds of a profile directory `from` to `to`: everything
/// but the incremental caches (the copy's own crates would not use them).
fn seed(from: &Path, to: &Path) {
    let Ok(entries) = std::fs::read_dir(from) else {
        return;
    };
    std::fs::create_dir_all(to).unwrap();
    for entry in entries {
        let path = entry.unwrap().path();
        if path.file_name().is_some_and(|name| name == "incremental") {
            continue;
        }
        run_checked(
            Command::new("cp")
                .args(["-a", "--reflink=auto"])
                .arg(&path)
                .arg(to),
        );
    }
}

fn xtask_in(ws: &Path, target: &Path, args: &[&str]) -> Command {
    let mut cmd = cargo();
    cmd.current_dir(ws)
        .env("CARGO_TARGET_DIR", target)
        .arg("xtask")
        .args(args);
    cmd
}

/// `cargo xtask run`, piped: lines written are fed to the shell one per
/// prompt; everything it prints is collected.
struct Run {
    child: Child,
    stdin: ChildStdin,
    output: Arc<Mutex<String>>,
    mark: usize,
}

impl Run {
    fn start(ws: &Path, target: &Path) -> Self {
        let mut child = xtask_in(ws, target, &["run", "--timeout", "3600"])
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .spawn()
            .expect("cargo xtask run starts");
        let stdin = child.stdin.take().unwrap();
        let mut stdout = child.stdout.take().unwrap();
        let output = Arc::new(Mutex::new(String::new()));
        let sink = output.clone();
        std::thread::spawn(move || {
            let mut buf = [0u8; 4096];
            while let Ok(n) = stdout.read(&mut buf) {
                if n == 0 {
                    break;
                }
                sink.lock()
                    .unwrap()
                    .push_str(&String::from_utf8_lossy(&buf[..n]));
            }
        });
        Self {
            child,
            stdin,
            output,
            mark: 0,
        }
    }

    /// Waits until the output since the mark contains `needle`; returns it.
    fn wait_for(&mut self, needle: &str, timeout: Duration) -> String {
        let deadline = Instant::now() + timeout;
        loop {
            {
                let output = self.output.lock().unwrap();
                if let Some(at) = output[self.mark..].find(needle) {
                    let end = self.mark + at + needle.len();
                    let text = output[self.mark..end].to_owned();
                    self.mark = end;
                    return text;
                }
            }
            assert!(
                Instant::now() < deadline,
                "no {needle:?} in time; output:\n{}",
                self.output.lock().unwrap()
            );
            std::thread::sleep(Duration::from_millis(100));
        }
    }

    /// Sends a line and returns what the kernel printed until the next prompt.
    fn command(&mut self, line: &str) -> String {
        writeln!(self.stdin, "{line}").unwrap();
        self.stdin.flush().unwrap();
        // The kernel echoes the line, then ends it with `\r\n`.
        self.wait_for(&format!("{line}\r\n"), STEP);
        self.wait_for(xtask::qemu::PROMPT, STEP)
    }
}

impl Run {
    /// `shutdown`, and waits for `cargo xtask run` to end (QEMU with it).
    fn shutdown(&mut self) {
        writeln!(self.stdin, "shutdown").unwrap();
        self.stdin.flush().unwrap();
        let deadline = Instant::now() + STEP;
        while Instant::now() < deadline {
            if let Ok(Some(status)) = self.child.try_wait() {
                assert!(status.success(), "cargo xtask run ended with {status}");
                return;
            }
            std::thread::sleep(Duration::from_millis(100));
        }
        panic!("the kernel did not shut down");
    }
}

impl Drop for Run {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn push(ws: &Path, target: &Path, args: &[&str]) -> (Output, Duration) {
    let started = Instant::now();
    let mut all = vec!["push"];
    all.extend_from_slice(args);
    let output = xtask_in(ws, target, &all)
        .output()
        .expect("cargo xtask push runs");
    (output, started.elapsed())
}

fn stdout(output: &Output) -> String {
    String::from_utf8_lossy(&output.stdout).into_owned()
}

#[test]
fn scaffold_run_push_use_edit_replace_unload() {
    let (copy, target) = prepare_copy();
    let ws = copy.ws.clone();
    run_checked(&mut xtask_in(&ws, &target, &["new-extension", "greeter"]));
    let lib = ws.join("extensions/greeter/src/lib.rs");
    assert!(lib.exists());

    // `cargo xtask run` in one terminal...
    let mut run = Run::start(&ws, &target);
    run.wait_for(xtask::qemu::PROMPT, FIRST_BUILD);
    let unknown = run.command("greeter");
    assert!(
        unknown.contains("error: unknown command 'greeter'"),
        "{unknown}"
    );

    // ... `cargo xtask push greeter` in another.
    let (out, first) = push(&ws, &target, &["greeter"]);
    assert!(out.status.success(), "push failed:\n{}", stdout(&out));
    let text = stdout(&out);
    assert!(text.contains("kernel: loaded greeter: received "), "{text}");
    let answer = run.command("greeter");
    assert!(answer.contains("greeter here"), "{answer}");

    // Edit, push again with --replace, see the new behaviour.
    let source = std::fs::read_to_string(&lib).unwrap();
    std::fs::write(
        &lib,
        source.replace("\"greeter here\"", "\"greeter, edited\""),
    )
    .unwrap();
    let (out, warm) = push(&ws, &target, &["greeter", "--replace"]);
    let text = stdout(&out);
    assert!(out.status.success(), "push --replace failed:\n{text}");
    assert!(
        text.contains("kernel: replaced and loaded greeter: "),
        "{text}"
    );
    let answer = run.command("greeter");
    assert!(answer.contains("greeter, edited"), "{answer}");
    let list = run.command("ext list");
    assert!(
        list.lines()
            .any(|l| l.starts_with("greeter ") && l.contains("pushed") && l.contains("loaded at")),
        "{list}"
    );

    // Without --replace the same push is refused, on both sides.
    let (out, _) = push(&ws, &target, &["greeter"]);
    assert_eq!(out.status.code(), Some(1));
    assert!(
        stdout(&out).contains(
            "kernel: greeter: 'greeter' is loaded (push with --replace to unload and replace it)"
        ),
        "{}",
        stdout(&out)
    );

    let unload = run.command("ext unload greeter");
    assert!(unload.contains("unloaded greeter"), "{unload}");
    let gone = run.command("greeter");
    assert!(gone.contains("error: unknown command 'greeter'"), "{gone}");
    run.shutdown();
    eprintln!(
        "push timings: first {:.1} s, after an edit {:.1} s",
        first.as_secs_f64(),
        warm.as_secs_f64()
    );
}
