//! Built-in commands about the dispatcher: events and their handlers.

use alloc::string::String;
use alloc::vec::Vec;

use super::Command;
use crate::println;

pub const COMMANDS: &[Command] = &[
    Command {
        name: "events",
        usage: "events",
        help: "every event: owner, bindings, raises",
        run: events,
    },
    Command {
        name: "handlers",
        usage: "handlers EVENT",
        help: "an event's bindings in dispatch order",
        run: handlers,
    },
];

fn events(_: &[&str]) -> Result<(), String> {
    let mut events = dispatcher::registry::events();
    events.sort_by(|a, b| a.name.cmp(&b.name));
    println!(
        "{:<24} {:<12} {:>8} {:>12}",
        "EVENT", "OWNER", "BINDINGS", "RAISES"
    );
    for event in events {
        println!(
            "{:<24} {:<12} {:>8} {:>12}",
            event.name, event.owner_name, event.bindings, event.raises
        );
    }
    Ok(())
}

fn handlers(args: &[&str]) -> Result<(), String> {
    let [name] = args else {
        return Err("expected an event name".into());
    };
    let bindings = dispatcher::registry::bindings_of(name)
        .ok_or_else(|| alloc::format!("no event '{name}'"))?;
    println!(
        "{:<4} {:<10} {:<16} {:<7} {:>6} {:>7} {:>10} {:>8}  OPTIONS",
        "RANK", "BINDING", "INSTALLER", "POSITION", "GUARDS", "IMPOSED", "CALLS", "OVERRUNS"
    );
    for binding in bindings {
        let id = if binding.id == dispatcher::BindingId::ORIGINAL {
            String::from("original")
        } else {
            alloc::format!("#{}", binding.id.as_u64())
        };
        let o = &binding.options;
        let mut options = Vec::new();
        if o.cancel {
            options.push(String::from("cancel"));
        }
        if let Some(key) = o.key {
            options.push(alloc::format!("key={key}"));
        }
        if o.asynchronous {
            options.push(String::from("async"));
        }
        if let Some(q) = binding.quantum {
            options.push(alloc::format!("ephemeral({q})"));
        }
        if !binding.enabled {
            options.push(String::from("disabled"));
        }
        if !o.placement.before.is_empty() || !o.placement.after.is_empty() {
            options.push(String::from("constrained"));
        }
        println!(
            "{:<4} {:<10} {:<16} {:<7} {:>6} {:>7} {:>10} {:>8}  {}",
            binding.rank,
            id,
            binding.installer_name,
            alloc::format!("{:?}", o.placement.position),
            o.guards,
            binding.imposed_guards,
            binding.calls,
            binding.overruns,
            options.join(",")
        );
    }
    Ok(())
}
