//! The serial-console shell.
//!
//! Line based, so it can be typed at or driven through a pipe: every input
//! byte is echoed, `\r`, `\n` and `\r\n` all end a line, backspace edits. After
//! each command the prompt `spindle> ` is printed again; that prompt is what
//! `cargo xtask run` and the integration tests wait for before sending the
//! next line.
//!
//! Every line is raised as the `Console.Line` event. The built-in commands
//! are that event's original handler ([`builtin_commands`]); extensions add
//! commands by installing handlers. The line is an unknown command only if
//! no handler handled it.

use alloc::string::String;
use alloc::vec::Vec;

use console::{Line, Reply};

use crate::arch::{probe, qemu, serial};
use crate::memory::{self, frames, heap};
use crate::{print, println, time};

/// The prompt, exactly as printed.
pub const PROMPT: &str = "spindle> ";

/// Longest accepted input line; further bytes are dropped.
const MAX_LINE: usize = 1024;

/// One shell command.
struct Command {
    name: &'static str,
    usage: &'static str,
    help: &'static str,
    run: fn(&[&str]) -> Result<(), String>,
}

const COMMANDS: &[Command] = &[
    Command {
        name: "help",
        usage: "help",
        help: "list commands",
        run: help,
    },
    Command {
        name: "mem",
        usage: "mem",
        help: "physical frames and heap: total, used, free",
        run: mem,
    },
    Command {
        name: "uptime",
        usage: "uptime",
        help: "time since boot and timer ticks",
        run: uptime,
    },
    Command {
        name: "peek",
        usage: "peek ADDR",
        help: "read 8 bytes at a virtual address (faults are caught)",
        run: peek,
    },
    Command {
        name: "log",
        usage: "log LEVEL",
        help: "set the log level (error, warn, info, debug, trace, off)",
        run: log_level,
    },
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
    Command {
        name: "panic",
        usage: "panic",
        help: "panic the kernel (proves the panic path)",
        run: panic,
    },
    Command {
        name: "shutdown",
        usage: "shutdown",
        help: "stop the machine cleanly (exit status 0)",
        run: shutdown,
    },
];

/// Prints the banner and runs the read-eval loop forever.
pub fn run() -> ! {
    banner();
    let mut reader = LineReader::default();
    // Full size from the start: a buffer that grew with the input would
    // make `mem` report the growth as if something had leaked.
    let mut line = String::with_capacity(MAX_LINE);
    loop {
        print!("{PROMPT}");
        reader.read_line(&mut line);
        execute(&line);
    }
}

fn banner() {
    let boot = memory::boot_memory();
    println!();
    println!(
        "Spindle {} -- a SPIN-style extensible kernel for x86_64",
        env!("CARGO_PKG_VERSION")
    );
    println!(
        "firmware {}, {} MiB RAM, timer {} Hz, TSC {} MHz",
        memory::firmware_name(),
        boot.ram_bytes >> 20,
        crate::arch::apic::TIMER_HZ,
        time::tsc_hz() / 1_000_000
    );
    println!("Type 'help' for commands.");
}

/// Line editor state that outlives one line: whether the previous line
/// ended in `\r`, so that the `\n` of a `\r\n` pair is not an empty line.
#[derive(Default)]
struct LineReader {
    last_was_cr: bool,
}

impl LineReader {
    /// Reads one line into `line` (without the terminator), echoing as it goes.
    fn read_line(&mut self, line: &mut String) {
        line.clear();
        loop {
            let Some(byte) = serial::try_read_byte() else {
                // Nothing waiting: sleep until the next interrupt (the timer
                // guarantees one within 1/TIMER_HZ s).
                x86_64::instructions::hlt();
                continue;
            };
            match byte {
                b'\n' if self.last_was_cr => self.last_was_cr = false,
                b'\r' | b'\n' => {
                    self.last_was_cr = byte == b'\r';
                    println!();
                    return;
                }
                0x08 | 0x7f => {
                    self.last_was_cr = false;
                    if line.pop().is_some() {
                        print!("\x08 \x08");
                    }
                }
                0x20..=0x7e => {
                    self.last_was_cr = false;
                    if line.len() < MAX_LINE {
                        line.push(byte as char);
                        serial::write_bytes(&[byte]);
                    }
                }
                _ => self.last_was_cr = false,
            }
        }
    }
}

/// Work a built-in command leaves for after the raise that carried it.
type Deferred = alloc::boxed::Box<dyn FnOnce() + Send>;

/// At most one deferred action per line (an `Option`, not a queue, so that
/// running commands leaves no allocation behind).
static DEFERRED: spin::Mutex<Option<Deferred>> = spin::Mutex::new(None);

/// Runs `action` once the current `Console.Line` raise has returned.
///
/// Loading and unloading extensions must happen outside the raise: unloading
/// waits until no raise holds the extension's handlers, and the raise that
/// carried the `ext unload` line holds the plan that references them.
fn defer(action: impl FnOnce() + Send + 'static) {
    *DEFERRED.lock() = Some(alloc::boxed::Box::new(action));
}

/// Runs one command line: raises `Console.Line` with it, then any work the
/// command deferred.
pub fn execute(text: &str) {
    let line = Line::new(text);
    if line.command().is_empty() {
        return;
    }
    match console::line_event().raise(&line) {
        Ok(Reply::Handled) => {}
        Ok(Reply::Unknown) => println!(
            "error: unknown command '{}' (type 'help' for the list)",
            line.command()
        ),
        Err(e) => println!("error: Console.Line could not be raised: {e:?}"),
    }
    drop(line);
    let deferred = DEFERRED.lock().take();
    if let Some(action) = deferred {
        action();
    }
}

/// The original handler of `Console.Line`: the built-in commands.
pub fn builtin_commands(line: &Line) -> Reply {
    let words: Vec<&str> = line.text().split_whitespace().collect();
    let Some((&name, args)) = words.split_first() else {
        return Reply::Unknown;
    };
    match COMMANDS.iter().find(|c| c.name == name) {
        Some(command) => {
            if let Err(message) = (command.run)(args) {
                println!("error: {message} (usage: {})", command.usage);
            }
            Reply::Handled
        }
        None => Reply::Unknown,
    }
}

/// Whether `name` is a built-in command (extensions may not take these).
pub fn is_builtin(name: &str) -> bool {
    COMMANDS.iter().any(|c| c.name == name)
}

fn help(_: &[&str]) -> Result<(), String> {
    for command in COMMANDS {
        println!("  {:<46} {}", command.usage, command.help);
    }
    println!("Loaded extensions may add commands: see 'handlers Console.Line'.");
    Ok(())
}

fn mem(_: &[&str]) -> Result<(), String> {
    let boot = memory::boot_memory();
    let frames = frames::stats();
    let heap = heap::stats();
    println!(
        "physical: {} MiB RAM in the memory map, {} MiB usable",
        boot.ram_bytes >> 20,
        boot.usable_bytes >> 20
    );
    println!(
        "frames:   {} usable, {} used, {} free (4 KiB each; {} MiB free)",
        frames.usable,
        frames.used(),
        frames.free,
        frames.free * 4 / 1024
    );
    println!(
        "heap:     {} KiB, {} bytes used, {} bytes free",
        heap.size / 1024,
        heap.used,
        heap.free
    );
    Ok(())
}

fn uptime(_: &[&str]) -> Result<(), String> {
    let micros = time::uptime_ns() / 1000;
    println!(
        "up {}.{:06} s, {} timer ticks at {} Hz (APIC timer input {} kHz)",
        micros / 1_000_000,
        micros % 1_000_000,
        time::ticks(),
        crate::arch::apic::TIMER_HZ,
        time::apic_timer_hz() / 1000
    );
    Ok(())
}

fn parse_address(text: &str) -> Result<u64, String> {
    let digits = text.strip_prefix("0x").unwrap_or(text).replace('_', "");
    u64::from_str_radix(&digits, 16)
        .map_err(|_| alloc::format!("'{text}' is not a hexadecimal address"))
}

fn peek(args: &[&str]) -> Result<(), String> {
    let [address] = args else {
        return Err("expected one address".into());
    };
    let address = parse_address(address)?;
    match probe::read_u64(address) {
        Ok(value) => println!("{address:#018x}: {value:#018x}"),
        Err(fault) => println!(
            "{address:#018x}: page fault (address {:#x}, error code {:#x})",
            fault.address, fault.error_code
        ),
    }
    Ok(())
}

fn log_level(args: &[&str]) -> Result<(), String> {
    let [level] = args else {
        return Err("expected a level".into());
    };
    let level: log::LevelFilter = level
        .parse()
        .map_err(|_| alloc::format!("unknown level '{level}'"))?;
    crate::logger::set_level(level);
    println!("log level set to {level}");
    Ok(())
}

fn panic(_: &[&str]) -> Result<(), String> {
    panic!("panic requested from the shell");
}

fn shutdown(_: &[&str]) -> Result<(), String> {
    println!("shutting down");
    qemu::exit(qemu::ExitCode::Success)
}

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
            options.push(alloc::format!("ephemeral({q} us)"));
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
