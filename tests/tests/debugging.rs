//! Debugging: symbolised backtraces on panic (in the kernel and in an
//! extension), and gdb through `cargo xtask gdb`'s code path stopping in
//! the kernel and in a loaded extension's handler.

use std::io::{BufRead, BufReader};
use std::process::Stdio;
use std::sync::mpsc;
use std::time::Duration;

use spindle_tests::*;

/// Asserts that `names` appear in `text` in this order.
fn assert_in_order(text: &str, names: &[&str]) {
    let mut from = 0;
    for name in names {
        match text[from..].find(name) {
            Some(at) => from += at + name.len(),
            None => panic!("{name} missing (or out of order) after byte {from} in:\n{text}"),
        }
    }
}

/// The backtrace part of a panic's output.
fn backtrace(output: &str) -> &str {
    let start = output
        .find("backtrace (kernel image at 0xffffffff80000000, most recent call first):")
        .unwrap_or_else(|| panic!("no backtrace in:\n{output}"));
    &output[start..]
}

#[test]
fn a_kernel_panic_prints_the_call_chain_from_kernel_main_to_the_panic() {
    let (mut session, _) = boot(Firmware::Bios);
    session.send_line("panic").unwrap();
    let (exit, output) = session.wait_exit(COMMAND_TIMEOUT).expect("QEMU exits");
    assert_eq!(exit, KernelExit::Failure, "{output}");
    let trace = backtrace(&output);
    // Innermost first: the panic machinery, the command, the shell, main.
    assert_in_order(
        trace,
        &[
            "rust_begin_unwind+0x",
            "core::panicking::panic_fmt+0x",
            "spindle_kernel::shell::system::panic+0x",
            "spindle_kernel::shell::",
            "spindle_kernel::kernel_main+0x",
            "(end: ",
        ],
    );
    // Every frame is named.
    let frames: Vec<&str> = trace
        .lines()
        .filter(|l| {
            l.trim_start()
                .chars()
                .next()
                .is_some_and(|c| c.is_ascii_digit())
        })
        .collect();
    assert!(frames.len() >= 5, "{trace}");
    assert!(
        frames.iter().all(|l| !l.contains("  ?")),
        "an unnamed frame:\n{trace}"
    );
    // The host adds source lines from the unstripped kernel, as `cargo
    // xtask run` does.
    let lines = xtask::symbolize::kernel_source_lines(&output, &gdb_target(0).kernel)
        .expect("the kernel ELF reads");
    assert!(
        lines.contains(": at kernel-image/src/shell/system.rs:"),
        "{lines}"
    );
}

#[test]
fn a_panic_in_an_extension_handler_is_contained_and_names_the_extension_and_its_functions() {
    let (mut session, _) = boot(Firmware::Bios);
    let load = command(&mut session, "ext load panic-in-handler");
    assert!(load.contains("loaded panic-in-handler"), "{load}");
    let output = command(&mut session, "panic-in-handler now");
    // Contained: the raise is abandoned, the extension reported and unloaded.
    assert!(
        output.contains(
            "error: 'panic-in-handler' abandoned: extension 'panic-in-handler' failed during Console.Line"
        ),
        "{output}"
    );
    assert!(
        output.contains("deliberate panic in a Console.Line handler (1 argument(s))"),
        "{output}"
    );
    let trace = backtrace(&output);
    assert_in_order(
        trace,
        &[
            "panic_in_handler::detonate+0x",
            "[panic-in-handler +0x",
            "panic_in_handler::on_command+0x",
            "[panic-in-handler +0x",
            "dispatcher::",
            "spindle_kernel::shell::",
            "spindle_kernel::kernel_main+0x",
            "extension 'panic-in-handler' unloaded (failed): 1 binding(s) revoked",
        ],
    );
    let list = command(&mut session, "ext list");
    assert!(!list.contains("panic-in-handler  loaded"), "{list}");
    let again = command(&mut session, "panic-in-handler now");
    assert!(
        again.contains("error: unknown command 'panic-in-handler'"),
        "{again}"
    );
    session.send_line("shutdown").unwrap();
    let (exit, output) = session.wait_exit(COMMAND_TIMEOUT).expect("QEMU exits");
    assert_eq!(exit, KernelExit::Success, "{output}");
}

/// A child process killed if the test ends early.
struct KillOnDrop(std::process::Child);

impl Drop for KillOnDrop {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// gdb's output, line by line, from a reader thread.
fn collect_lines(stream: impl std::io::Read + Send + 'static) -> mpsc::Receiver<String> {
    let (sender, receiver) = mpsc::channel();
    std::thread::spawn(move || {
        for line in BufReader::new(stream).lines().map_while(Result::ok) {
            if sender.send(line).is_err() {
                break;
            }
        }
    });
    receiver
}

#[test]
fn gdb_stops_at_kernel_main_and_at_an_extension_handler_and_names_every_frame() {
    let port = free_port();
    let mut options = options(Firmware::Bios);
    options.gdb = true;
    options.gdb_port = port;
    let mut session = Session::spawn(&options, false).expect("QEMU starts");
    // The session `cargo xtask gdb -- ARGS` runs, in batch mode.
    let script: Vec<String> = [
        "-nx",
        "--batch",
        "-ex",
        "hbreak kernel_main",
        "-ex",
        "continue",
        "-ex",
        "bt",
        "-ex",
        "delete",
        "-ex",
        "break hello::greet",
        "-ex",
        "continue",
        "-ex",
        "bt",
        "-ex",
        "spindle-extensions",
        "-ex",
        "detach",
    ]
    .map(String::from)
    .to_vec();
    let mut gdb = KillOnDrop(
        gdb_target(port)
            .command(&script)
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .expect("gdb starts"),
    );
    let lines = collect_lines(gdb.0.stdout.take().expect("piped"));
    let errors = collect_lines(gdb.0.stderr.take().expect("piped"));

    // gdb stops the kernel at kernel_main, then lets it boot.
    let boot = session
        .wait_for_prompt(BOOT_TIMEOUT * 2)
        .unwrap_or_else(|e| {
            panic!(
                "no prompt under gdb: {e}\n--- gdb ---\n{}",
                lines.try_iter().collect::<Vec<_>>().join("\n")
            )
        });
    assert!(boot.contains("Spindle"), "{boot}");
    let load = command(&mut session, "ext load hello");
    assert!(load.contains("hello: loaded"), "{load}");
    // Stops at the breakpoint; the answer comes once gdb has detached.
    let answer = session
        .command("hello", Duration::from_secs(120))
        .unwrap_or_else(|e| panic!("`hello` under gdb: {e}"));
    assert!(
        answer.contains("Hello from the hello extension!"),
        "{answer}"
    );
    let status = gdb.0.wait().expect("gdb exits");
    let output: Vec<String> = lines.try_iter().collect();
    let output = output.join("\n");
    let errors: Vec<String> = errors.try_iter().collect();
    assert!(
        status.success(),
        "gdb failed: {status}\n{output}\n{}",
        errors.join("\n")
    );
    assert_in_order(
        &output,
        &[
            // The kernel's breakpoint, from the first instruction on.
            "Breakpoint 1, ",
            "kernel_main (boot_info=",
            "at kernel-image/src/main.rs:",
            // The extension's symbols follow its load.
            "spindle: symbols of hello (",
            // Its handler, by name, and every frame down to main.
            "Breakpoint 2, hello::greet (line=",
            "at extensions/hello/src/lib.rs:",
            "#0  hello::greet",
            "dispatcher::event::EventInner<console::Line, console::Reply>::raise",
            "spindle_kernel::shell::",
            "spindle_kernel::kernel_main",
            "hello                0xffffffff9",
            "symbols loaded",
            "detached",
        ],
    );
    let frames: Vec<&str> = output
        .lines()
        .skip_while(|l| !l.starts_with("Breakpoint 2"))
        .filter(|l| l.starts_with('#'))
        .collect();
    assert!(frames.len() >= 5, "{output}");
    assert!(
        frames.iter().all(|f| !f.contains(" in ?? ")),
        "an unnamed frame:\n{output}"
    );
    session.send_line("shutdown").unwrap();
    let (exit, _) = session.wait_exit(COMMAND_TIMEOUT).expect("QEMU exits");
    assert_eq!(exit, KernelExit::Success);
}
