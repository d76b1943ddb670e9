//! Built-in commands about extensions and symbol domains.

use alloc::string::String;

use super::{Command, defer};
use crate::println;

pub const COMMANDS: &[Command] = &[
    Command {
        name: "ext",
        usage: "ext list | load NAME | unload NAME | info NAME",
        help: "extensions in the ramdisk: list, load, unload, describe",
        run: ext,
    },
    Command {
        name: "domains",
        usage: "domains",
        help: "every symbol domain and its size",
        run: domains,
    },
    Command {
        name: "domain",
        usage: "domain NAME [FILTER]",
        help: "a domain's exports (those containing FILTER)",
        run: domain,
    },
];

fn ext(args: &[&str]) -> Result<(), String> {
    match args {
        ["list"] | [] => {
            crate::loader::list();
            Ok(())
        }
        ["load", name] => {
            let name = String::from(*name);
            defer(move || match crate::loader::load(&name) {
                Ok(report) => println!(
                    "loaded {name}: {}; {:.1}x copying the object once",
                    report.cycles,
                    report.baseline_ratio()
                ),
                Err(e) => println!("error: cannot load {name}: {e}"),
            });
            Ok(())
        }
        ["unload", name] => {
            let name = String::from(*name);
            defer(move || match crate::loader::unload(&name) {
                Ok(()) => println!("unloaded {name}"),
                Err(e) => println!("error: cannot unload {name}: {e}"),
            });
            Ok(())
        }
        ["info", name] => crate::loader::info(name),
        _ => Err("expected list, load NAME, unload NAME or info NAME".into()),
    }
}

fn domains(_: &[&str]) -> Result<(), String> {
    crate::loader::list_domains();
    Ok(())
}

fn domain(args: &[&str]) -> Result<(), String> {
    match args {
        [name] => crate::loader::show_domain(name, None),
        [name, filter] => crate::loader::show_domain(name, Some(filter)),
        _ => Err("expected a domain name and an optional filter".into()),
    }
}
