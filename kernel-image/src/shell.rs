//! The serial-console shell.
//!
//! Line based, so it can be typed at or driven through a pipe: every input
//! byte is echoed, `\r`, `\n` and `\r\n` all end a line, backspace edits. After
//! each command the prompt `spindle> ` is printed again; that prompt is what
//! `cargo xtask run` and the integration tests wait for before sending the
//! next line.

use alloc::string::String;
use alloc::vec::Vec;

use crate::arch::{probe, qemu, serial};
use crate::memory::{self, frames, heap};
use crate::{clock, print, println};

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
    let mut line = String::new();
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
        clock::tsc_hz() / 1_000_000
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

/// Runs one command line.
pub fn execute(line: &str) {
    let words: Vec<&str> = line.split_whitespace().collect();
    let Some((&name, args)) = words.split_first() else {
        return;
    };
    match COMMANDS.iter().find(|c| c.name == name) {
        Some(command) => {
            if let Err(message) = (command.run)(args) {
                println!("error: {message} (usage: {})", command.usage);
            }
        }
        None => println!("error: unknown command '{name}' (type 'help' for the list)"),
    }
}

fn help(_: &[&str]) -> Result<(), String> {
    for command in COMMANDS {
        println!("  {:<18} {}", command.usage, command.help);
    }
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
    let micros = clock::uptime_ns() / 1000;
    println!(
        "up {}.{:06} s, {} timer ticks at {} Hz (APIC timer input {} kHz)",
        micros / 1_000_000,
        micros % 1_000_000,
        clock::ticks(),
        crate::arch::apic::TIMER_HZ,
        clock::apic_timer_hz() / 1000
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
