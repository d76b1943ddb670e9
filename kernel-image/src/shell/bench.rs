//! The `bench` command: the in-kernel benchmark suites.

use alloc::string::String;

use super::Command;
use crate::println;

pub const COMMANDS: &[Command] = &[Command {
    name: "bench",
    usage: "bench [SUITE]",
    help: "run the in-kernel benchmarks (all suites, or one)",
    run: bench,
}];

fn bench(args: &[&str]) -> Result<(), String> {
    let suite = match args {
        [] => None,
        [suite] => Some(String::from(*suite)),
        _ => return Err("expected at most one suite name".into()),
    };
    // Outside the raise that carried the command: the containment suite
    // loads, faults and unloads extensions, and an unload inside a raise
    // waits for that raise to let go of the extension's handlers.
    super::defer(move || {
        if let Err(message) = crate::bench::run(suite.as_deref()) {
            println!("error: {message} (usage: {})", COMMANDS[0].usage);
        }
    });
    Ok(())
}
