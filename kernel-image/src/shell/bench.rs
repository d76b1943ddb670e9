//! The `bench` command: the in-kernel benchmark suites.

use alloc::string::String;

use super::{Command, defer};

pub const COMMANDS: &[Command] = &[Command {
    name: "bench",
    usage: "bench [SUITE]",
    help: "run the in-kernel benchmarks (all suites, or one)",
    run: bench,
}];

/// Checks the suite name now; runs the suites once the command's raise has
/// returned (they load and unload extensions, see [`defer`]).
fn bench(args: &[&str]) -> Result<(), String> {
    let suites = match args {
        [] => crate::bench::select(None)?,
        [suite] => crate::bench::select(Some(suite))?,
        _ => return Err("expected at most one suite name".into()),
    };
    defer(move || crate::bench::run(&suites));
    Ok(())
}
