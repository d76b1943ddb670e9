//! `cargo xtask test`: every tier, one tally.
//!
//! 1. host unit tests (`cargo test` on the host crates);
//! 2. the in-kernel suite, booted with the command line `ktest`, under BIOS
//!    and under UEFI, each with a time limit;
//! 3. the integration tests in `tests/`, which boot the kernel and drive its
//!    shell (they get the image paths through `SPINDLE_*_IMAGE`).
//!
//! Ends with what failed (each failed in-kernel test's line, each
//! integration test's panic location and message) and one line
//! `N passed, M failed` summing all tiers, so the end of a long log says
//! what went wrong. A tier that cannot even run (a compile error, a hung or
//! crashed boot) counts as one failure, so it can never look like a pass.

use std::io::{BufRead, BufReader};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use xtask::qemu::{Firmware, KernelExit, QemuOptions, Session, SessionError};

use crate::images::make_images;
use crate::{Failure, cargo, scratch_dir, setup};

/// Crates left out of tier 1 besides the extensions: the kernel, the image
/// builder, and the integration tests.
const HOST_EXCLUDES: &[&str] = &["kernel-image", "image-builder", "spindle-tests"];

/// Time limit for one boot of the in-kernel suite.
const KTEST_TIME_LIMIT: Duration = Duration::from_secs(180);

#[derive(Default, Clone, Copy)]
struct Count {
    passed: u64,
    failed: u64,
}

pub fn run(release: bool, uefi: bool) -> Result<(), Failure> {
    setup::ensure_toolchain()?;
    setup::ensure_qemu()?;
    setup::ensure_gdb()?;
    let started = Instant::now();
    let mut tiers: Vec<(String, Count)> = Vec::new();
    let mut failures = Failures::default();

    banner("host unit tests");
    let mut cmd = cargo();
    cmd.args(["test", "--workspace", "--no-fail-fast"]);
    for package in HOST_EXCLUDES {
        cmd.args(["--exclude", package]);
    }
    // Extensions are kernel-target crates (each defines the exported
    // descriptor symbol, so two cannot be linked into one host binary);
    // the in-kernel and integration tiers test them.
    for package in crate::extensions::discover()? {
        cmd.args(["--exclude", &package.name]);
    }
    tiers.push(("host unit tests".into(), cargo_test(cmd, &mut failures)));

    banner("kernel images");
    let (images, kernel) = make_images(release)?;
    let mut firmwares = vec![Firmware::Bios];
    if uefi {
        firmwares.push(Firmware::Uefi);
    }
    // One boot after the other: the suite has tests bounded in time (timer
    // rates, sleeps, the watchdog) that a second QEMU competing for the
    // cores of a slow machine would make depend on the machine.
    for firmware in firmwares {
        banner(&format!("in-kernel tests ({firmware})"));
        let (count, output) = kernel_suite(images.for_firmware(firmware), firmware);
        print!("{output}");
        failures.note_all(&format!("{firmware}"), &output);
        tiers.push((format!("in-kernel tests ({firmware})"), count));
    }

    banner("integration tests");
    let nextest = has_nextest();
    let mut cmd = cargo();
    if nextest {
        // One process per test, scheduled over all files at once (a file
        // with one long test does not leave a core idle).
        cmd.args([
            "nextest",
            "run",
            "--package",
            "spindle-tests",
            "--no-fail-fast",
        ]);
    } else {
        println!("(cargo-nextest not found: the files run one after the other)");
        cmd.args(["test", "--package", "spindle-tests", "--no-fail-fast"]);
    }
    if release {
        cmd.arg("--release");
    }
    cmd.env("SPINDLE_BIOS_IMAGE", &images.bios)
        .env("SPINDLE_UEFI_IMAGE", &images.uefi);
    cmd.env("SPINDLE_SCRATCH_DIR", scratch_dir());
    // For the debugging tests: the kernel ELF with DWARF and the
    // extensions' unstripped objects.
    cmd.env("SPINDLE_KERNEL_ELF", &kernel).env(
        "SPINDLE_OBJECTS_DIR",
        images.bios.parent().expect("images live in a directory"),
    );
    let summary = if nextest {
        Summary::Stderr
    } else {
        Summary::Stdout
    };
    tiers.push((
        "integration tests".into(),
        cargo_test_reading(cmd, summary, &mut failures),
    ));
    if nextest {
        // nextest does not run doc tests; the harness crate's are few.
        let mut doc = cargo();
        doc.args(["test", "--package", "spindle-tests", "--doc"]);
        tiers.push((
            "integration doc tests".into(),
            cargo_test(doc, &mut failures),
        ));
    }

    failures.print();
    println!();
    let mut total = Count::default();
    for (name, count) in &tiers {
        println!(
            "  {name:<28} {:>4} passed, {:>3} failed",
            count.passed, count.failed
        );
        total.passed += count.passed;
        total.failed += count.failed;
    }
    println!("  ({:.0} s)", started.elapsed().as_secs_f64());
    println!("{} passed, {} failed", total.passed, total.failed);
    if total.failed == 0 {
        Ok(())
    } else {
        Err(Failure::new(format!("{} test(s) failed", total.failed)))
    }
}

fn banner(title: &str) {
    println!("\n==== {title} ====");
}

/// Runs a `cargo test` command, echoing its output, and sums its
/// `test result:` lines. A run that fails without any failed test (a build
/// error) counts as one failure.
fn cargo_test(cmd: Command, failures: &mut Failures) -> Count {
    cargo_test_reading(cmd, Summary::Stdout, failures)
}

/// Where a test runner prints its results.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Summary {
    /// libtest (`cargo test`).
    Stdout,
    /// nextest (its progress and summary).
    Stderr,
}

/// [`cargo_test`], reading the summaries from `summary`.
fn cargo_test_reading(mut cmd: Command, summary: Summary, failures: &mut Failures) -> Count {
    let mut count = Count::default();
    let child = match summary {
        Summary::Stdout => cmd.stdout(Stdio::piped()),
        Summary::Stderr => cmd.stderr(Stdio::piped()),
    }
    .spawn();
    let mut child = match child {
        Ok(child) => child,
        Err(e) => {
            eprintln!("xtask: cannot start cargo test: {e}");
            return Count {
                passed: 0,
                failed: 1,
            };
        }
    };
    let lines: Box<dyn std::io::Read> = match summary {
        Summary::Stdout => Box::new(child.stdout.take().expect("stdout is piped")),
        Summary::Stderr => Box::new(child.stderr.take().expect("stderr is piped")),
    };
    let mut lines = BufReader::new(lines).lines().map_while(Result::ok);
    while let Some(line) = lines.next() {
        println!("{line}");
        if is_panic_location(&line) {
            // The first line of the message follows its location.
            let message = lines.next().unwrap_or_default();
            println!("{message}");
            failures.note(format!("{}\n      {}", line.trim(), message.trim()));
        } else if let Some(test) = failed_test(&line) {
            failures.note(test.to_string());
        }
        if let Some((passed, failed)) = parse_cargo_result(&line) {
            count.passed += passed;
            count.failed += failed;
        }
    }
    let success = child.wait().is_ok_and(|s| s.success());
    if !success && count.failed == 0 {
        eprintln!("xtask: cargo test failed before reporting a failed test (build error?)");
        count.failed = 1;
    }
    count
}

/// Lines of the test runs that say what failed, printed again at the end.
#[derive(Default)]
struct Failures {
    lines: Vec<String>,
}

impl Failures {
    /// At most this many characters of one line are kept.
    const LINE_LIMIT: usize = 400;

    fn note(&mut self, line: String) {
        let mut line = line;
        if line.len() > Self::LINE_LIMIT {
            let mut end = Self::LINE_LIMIT;
            while !line.is_char_boundary(end) {
                end -= 1;
            }
            line.truncate(end);
            line.push_str(" [...]");
        }
        // nextest names a failed test when it fails and again in its summary.
        if !self.lines.contains(&line) {
            self.lines.push(line);
        }
    }

    /// Notes the failure lines of a kernel transcript (`ktest: FAILED`,
    /// the xtask's own notes on the boot), each prefixed with `tag`.
    fn note_all(&mut self, tag: &str, transcript: &str) {
        for line in transcript.lines().map(str::trim) {
            if line.starts_with("ktest: FAILED") || line.starts_with("xtask: ") {
                self.note(format!("({tag}) {line}"));
            }
        }
    }

    fn print(&self) {
        if self.lines.is_empty() {
            return;
        }
        banner("what failed");
        for line in &self.lines {
            println!("  {line}");
        }
    }
}

/// Whether `line` is the location line of a Rust panic message
/// (`thread 'name' panicked at file:line:column:`).
fn is_panic_location(line: &str) -> bool {
    let line = line.trim_start();
    line.starts_with("thread '") && line.contains("' panicked at ")
}

/// The name of the test a runner reports failed on `line`: libtest's
/// `test name ... FAILED`, nextest's `FAIL [ 1.2s] (3/79) crate::file name`
/// (or `TIMEOUT`, `ABORT`).
fn failed_test(line: &str) -> Option<&str> {
    let trimmed = line.trim();
    if let Some(name) = trimmed
        .strip_prefix("test ")
        .and_then(|rest| rest.strip_suffix(" ... FAILED"))
    {
        return Some(name);
    }
    let rest = ["FAIL [", "TIMEOUT [", "ABORT [", "SIGSEGV ["]
        .iter()
        .find_map(|status| trimmed.strip_prefix(status))?;
    // `  23.9s] ( 3/79) crate::file name`: the name follows the counter.
    let after_time = rest.split_once(']')?.1.trim_start();
    let name = match after_time.strip_prefix('(') {
        Some(counted) => counted.split_once(')')?.1,
        None => after_time,
    };
    Some(name.trim())
}

/// Whether `cargo nextest` runs.
fn has_nextest() -> bool {
    cargo()
        .args(["nextest", "--version"])
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .is_ok_and(|s| s.success())
}

/// Parses libtest's `test result: ok. 7 passed; 0 failed; ...` and
/// nextest's `Summary [ 12.3s] 9 tests run: 7 passed, 2 failed, 0 skipped`.
fn parse_cargo_result(line: &str) -> Option<(u64, u64)> {
    let rest = match line.strip_prefix("test result: ") {
        Some(rest) => rest,
        None => {
            let summary = line.trim_start().strip_prefix("Summary [")?;
            let rest = summary.split_once(" run: ")?.1;
            let number_before = |word: &str| -> Option<u64> {
                let words: Vec<&str> = rest.split([' ', ',']).filter(|w| !w.is_empty()).collect();
                let index = words.iter().position(|w| *w == word)?;
                words.get(index.checked_sub(1)?)?.parse().ok()
            };
            // Every outcome nextest counts apart from passing is a failure.
            let failed: u64 = ["failed", "timed", "aborted"]
                .iter()
                .filter_map(|w| number_before(w))
                .sum();
            return Some((number_before("passed")?, failed));
        }
    };
    let number_before = |word: &str| -> Option<u64> {
        let words: Vec<&str> = rest.split([' ', ';']).filter(|w| !w.is_empty()).collect();
        let index = words.iter().position(|w| *w == word)?;
        words.get(index.checked_sub(1)?)?.parse().ok()
    };
    Some((number_before("passed")?, number_before("failed")?))
}

/// Parses the kernel's `ktest: result: P passed, F failed, N not run`.
fn parse_ktest_result(output: &str) -> Option<(u64, u64, u64)> {
    let line = output
        .lines()
        .rev()
        .find_map(|l| l.trim().strip_prefix("ktest: result: "))?;
    let mut numbers = line.split(',').map(|part| {
        part.split_whitespace()
            .next()
            .and_then(|n| n.parse::<u64>().ok())
    });
    Some((numbers.next()??, numbers.next()??, numbers.next()??))
}

/// Boots one image in test mode; tests that did not run count as failed.
/// Returns the count and the transcript (the console, then what went
/// wrong).
fn kernel_suite(image: &std::path::Path, firmware: Firmware) -> (Count, String) {
    let mut notes = String::new();
    let count = kernel_suite_noting(image, firmware, &mut notes);
    (count, notes)
}

fn kernel_suite_noting(image: &std::path::Path, firmware: Firmware, notes: &mut String) -> Count {
    use std::fmt::Write as _;
    let mut options = QemuOptions::new(image, firmware, scratch_dir());
    options.cmdline = Some("ktest".into());
    let mut session = match Session::spawn(&options, false) {
        Ok(session) => session,
        Err(e) => {
            let _ = writeln!(notes, "xtask: cannot start QEMU: {e}");
            return Count {
                passed: 0,
                failed: 1,
            };
        }
    };
    let (exit, output) = match session.wait_exit(KTEST_TIME_LIMIT) {
        Ok((exit, _)) => (Some(exit), session.output()),
        Err(SessionError::Timeout(_)) => {
            let _ = writeln!(
                notes,
                "xtask: in-kernel tests ({firmware}) still running after {} s: killed",
                KTEST_TIME_LIMIT.as_secs()
            );
            session.kill();
            (None, session.output())
        }
        Err(e) => {
            let _ = writeln!(notes, "xtask: {e}");
            (None, session.output())
        }
    };
    let problems = std::mem::take(notes);
    notes.push_str(&output);
    notes.push_str(&problems);
    match parse_ktest_result(&output) {
        Some((passed, failed, not_run)) => {
            let mut count = Count {
                passed,
                failed: failed + not_run,
            };
            let consistent = (count.failed == 0) == (exit == Some(KernelExit::Success));
            if !consistent {
                let _ = writeln!(
                    notes,
                    "xtask: kernel summary and exit status disagree ({exit:?}); counting a failure"
                );
                count.failed += 1;
            }
            count
        }
        None => {
            let _ = writeln!(
                notes,
                "xtask: no ktest summary from the {firmware} boot ({exit:?})"
            );
            Count {
                passed: 0,
                failed: 1,
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_libtest_summaries() {
        assert_eq!(
            parse_cargo_result("test result: ok. 7 passed; 0 failed; 1 ignored; 0 measured"),
            Some((7, 0))
        );
        assert_eq!(
            parse_cargo_result("test result: FAILED. 3 passed; 2 failed; 0 ignored"),
            Some((3, 2))
        );
        assert_eq!(parse_cargo_result("running 7 tests"), None);
        assert_eq!(
            parse_cargo_result(
                "     Summary [ 640.123s] 79 tests run: 77 passed, 1 failed, 1 timed out, 0 skipped"
            ),
            Some((77, 2))
        );
        assert_eq!(
            parse_cargo_result("     Summary [   1.000s] 3 tests run: 3 passed, 0 skipped"),
            Some((3, 0))
        );
    }

    #[test]
    fn names_failed_tests_of_both_runners() {
        assert_eq!(
            failed_test("test tests::parses ... FAILED"),
            Some("tests::parses")
        );
        assert_eq!(failed_test("test tests::parses ... ok"), None);
        assert_eq!(
            failed_test(
                "        FAIL [  23.900s] ( 3/79) spindle-tests::containment a_panic_is_contained"
            ),
            Some("spindle-tests::containment a_panic_is_contained")
        );
        assert_eq!(
            failed_test("     TIMEOUT [ 600.001s] (9/79) spindle-tests::push slow"),
            Some("spindle-tests::push slow")
        );
        assert_eq!(
            failed_test("        PASS [  23.900s] ( 3/79) spindle-tests::containment ok"),
            None
        );
        assert!(is_panic_location(
            "thread 'a_panic_is_contained' panicked at tests/tests/containment.rs:140:5:"
        ));
        assert!(!is_panic_location("the kernel panicked at boot"));
    }

    #[test]
    fn failure_notes_keep_the_kernel_lines_and_cut_long_ones() {
        let mut failures = Failures::default();
        failures.note_all(
            "BIOS",
            "ktest: ok a (1 us)\r\nktest: FAILED b: 3 != 4 at x.rs:1\r\nxtask: no ktest summary\n",
        );
        failures.note("x".repeat(1000));
        failures.note("(BIOS) xtask: no ktest summary".into());
        assert_eq!(failures.lines.len(), 3);
        assert_eq!(
            failures.lines[0],
            "(BIOS) ktest: FAILED b: 3 != 4 at x.rs:1"
        );
        assert_eq!(failures.lines[1], "(BIOS) xtask: no ktest summary");
        assert_eq!(
            failures.lines[2].len(),
            Failures::LINE_LIMIT + " [...]".len()
        );
    }

    #[test]
    fn parses_the_kernel_summary_last_occurrence() {
        let out = "ktest: running 3 tests\r\nktest: result: 2 passed, 1 failed, 0 not run\r\n";
        assert_eq!(parse_ktest_result(out), Some((2, 1, 0)));
        assert_eq!(
            parse_ktest_result("ktest: result: 1 passed, 1 failed, 5 not run"),
            Some((1, 1, 5))
        );
        assert_eq!(parse_ktest_result("KERNEL PANIC at x"), None);
    }
}
