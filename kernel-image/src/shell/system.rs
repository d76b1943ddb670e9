//! Built-in commands about the machine itself: help, memory, time, raw
//! memory reads, logging, and stopping the machine.

use alloc::string::String;
use x86_64::VirtAddr;

use super::{Command, groups};
use crate::arch::{probe, qemu};
use crate::memory::{self, frames, heap};
use crate::{println, time};

pub const COMMANDS: &[Command] = &[
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

fn help(_: &[&str]) -> Result<(), String> {
    for command in groups() {
        println!("  {:<46} {}", command.usage, command.help);
    }
    println!("Loaded extensions may add commands: see 'handlers Console.Line'.");
    Ok(())
}

fn mem(_: &[&str]) -> Result<(), String> {
    let boot = memory::boot_memory();
    let frames = frames::stats();
    let heap = heap::settled_stats();
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
    let heaps = memory::extension_heap::summary();
    println!(
        "extension heaps: {} live ({} bytes), {} kept after unload ({} bytes), {} frames",
        heaps.live, heaps.live_bytes, heaps.kept, heaps.kept_bytes, heaps.frames
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
    let raw = parse_address(address)?;
    let address = VirtAddr::try_new(raw).map_err(|_| {
        alloc::format!(
            "{raw:#x} is not a canonical address (bits 63-47 must be all zeros or all ones)"
        )
    })?;
    match probe::read_u64(address) {
        Ok(value) => println!("{raw:#018x}: {value:#018x}"),
        Err(fault) => println!("{raw:#018x}: {fault}"),
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
