//! Built-in commands about contained extension faults.

use alloc::string::String;

use super::Command;
use crate::containment::faults;
use crate::println;

pub const COMMANDS: &[Command] = &[Command {
    name: "faults",
    usage: "faults",
    help: "extension faults contained since boot (the latest few)",
    run: list,
}];

fn list(_: &[&str]) -> Result<(), String> {
    println!(
        "{} extension fault(s) contained since boot",
        faults::count()
    );
    for summary in faults::history() {
        println!(
            "  {:<20} {:<16} {}",
            summary.extension.as_str(),
            summary.site,
            summary.reason
        );
    }
    Ok(())
}
