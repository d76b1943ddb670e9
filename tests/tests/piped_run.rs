//! `cargo xtask run` with piped input: the same code path, called directly.

use std::io::Cursor;
use std::time::Duration;

use spindle_tests::*;

/// Runs the BIOS image with `input` piped in, exactly as `cargo xtask run` does.
fn run_piped(input: &'static str) -> (PipedOutcome, String) {
    xtask::qemu::run_piped(
        &options(Firmware::Bios),
        Cursor::new(input),
        Duration::from_secs(60),
        false,
    )
    .expect("QEMU runs")
}

#[test]
fn piped_script_runs_to_shutdown() {
    let (outcome, output) = run_piped("help\nmem\nuptime\nshutdown\n");
    assert_eq!(
        outcome,
        PipedOutcome::Exited(KernelExit::Success),
        "{output}"
    );
    // Every line reached the kernel, in order, once.
    let order: Vec<usize> = [
        "spindle> help",
        "spindle> mem",
        "spindle> uptime",
        "spindle> shutdown",
    ]
    .iter()
    .map(|cmd| {
        output
            .find(cmd)
            .unwrap_or_else(|| panic!("{cmd} missing in:\n{output}"))
    })
    .collect();
    assert!(
        order.windows(2).all(|w| w[0] < w[1]),
        "commands out of order:\n{output}"
    );
}

#[test]
fn piped_input_without_shutdown_ends_the_run() {
    let (outcome, output) = run_piped("uptime\n");
    assert_eq!(outcome, PipedOutcome::InputEnded, "{output}");
    assert!(output.contains("timer ticks"), "{output}");
}
