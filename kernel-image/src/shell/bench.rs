//! The `bench` command: the in-kernel benchmark suites.

use alloc::string::String;

use super::Command;

pub const COMMANDS: &[Command] = &[Command {
    name: "bench",
    usage: "bench [SUITE]",
    help: "run the in-kernel benchmarks (all suites, or one)",
    run: bench,
}];

fn bench(args: &[&str]) -> Result<(), String> {
    match args {
        [] => crate::bench::run(None),
        [suite] => crate::bench::run(Some(suite)),
        _ => Err("expected at most one suite name".into()),
    }
}
