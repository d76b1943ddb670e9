//! The serial shell, driven through stdin/stdout as a user would.

use spindle_tests::*;

#[test]
fn help_lists_every_command() {
    let (mut session, banner) = boot(Firmware::Bios);
    assert!(banner.contains("Spindle"), "banner missing: {banner}");
    let help = command(&mut session, "help");
    for name in ["help", "mem", "uptime", "peek", "log", "panic", "shutdown"] {
        assert!(
            help.lines().any(|l| l.trim_start().starts_with(name)),
            "help does not list {name}:\n{help}"
        );
    }
}

#[test]
fn mem_figures_match_the_machine() {
    let mut options = options(Firmware::Bios);
    options.memory_mib = 192;
    let (mut session, _) = boot_with(&options);
    let mem = command(&mut session, "mem");
    let ram = number_before(&mem, "MiB RAM").expect("RAM figure");
    assert!(
        (176..=192).contains(&ram),
        "-m 192 but the memory map has {ram} MiB:\n{mem}"
    );
    let usable = number_after(&mem, "frames:").expect("usable frames");
    let used = number_before(&mem, "used,").expect("used frames");
    let free = number_before(&mem, "free (").expect("free frames");
    assert_eq!(used + free, usable, "frames do not add up:\n{mem}");
    assert!(
        usable * 4096 <= 192 << 20,
        "more usable frames than RAM:\n{mem}"
    );
    let heap_kib = number_after(&mem, "heap:").expect("heap size");
    assert!(heap_kib >= 4096, "heap is only {heap_kib} KiB");
}

#[test]
fn unknown_command_is_an_error_and_the_shell_goes_on() {
    let (mut session, _) = boot(Firmware::Bios);
    let out = command(&mut session, "frobnicate --now");
    assert!(out.contains("error: unknown command 'frobnicate'"), "{out}");
    let out = command(&mut session, "uptime");
    assert!(out.contains("up "), "shell did not recover: {out}");
}

#[test]
fn uptime_advances() {
    let (mut session, _) = boot(Firmware::Bios);
    let first = command(&mut session, "uptime");
    std::thread::sleep(std::time::Duration::from_millis(300));
    let second = command(&mut session, "uptime");
    let ticks = |s: &str| number_before(s, "timer ticks").expect("tick count");
    assert!(
        ticks(&second) > ticks(&first),
        "ticks did not advance: {first} / {second}"
    );
}

/// The lines `peek ADDR` printed (the echoed command and prompt left out).
fn peek(session: &mut Session, address: u64) -> String {
    let out = command(session, &format!("peek {address:#x}"));
    out.lines()
        .map(str::trim)
        .filter(|l| !l.is_empty() && !l.starts_with("peek ") && !l.starts_with("spindle>"))
        .collect::<Vec<_>>()
        .join("\n")
}

#[test]
fn peek_of_any_address_never_panics_the_kernel() {
    let (mut session, _) = boot(Firmware::Bios);

    // Non-canonical: refused before any read.
    for address in [
        0x8000_0000_0000_0000,
        0x0000_8000_0000_0000,
        0xffff_7fff_ffff_ffff,
    ] {
        assert_eq!(
            peek(&mut session, address),
            format!(
                "error: {address:#x} is not a canonical address (bits 63-47 must be all zeros or all ones) (usage: peek ADDR)"
            )
        );
    }

    // Unmapped, in the lower half; and strand-stack slots 0-3, whose
    // bottoms are guard pages (or wholly unmapped slots).
    for address in [
        0x0000_5555_dead_0000,
        0xffff_c000_0000_0000,
        0xffff_c000_0020_0000,
        0xffff_c000_0040_0000,
        0xffff_c000_0060_0000,
    ] {
        assert_eq!(
            peek(&mut session, address),
            format!("{address:#018x}: page fault (address {address:#x}, error code 0x0)")
        );
    }

    // The last canonical lower-half bytes: the 8-byte read runs past the
    // canonical boundary. A CPU raises #GP; TCG reports the page fault of
    // the (unmapped) first page. Either is caught.
    let out = peek(&mut session, 0x7fff_ffff_fffc);
    assert!(
        out == "0x00007ffffffffffc: page fault (address 0x7ffffffffffc, error code 0x0)"
            || out == "0x00007ffffffffffc: general-protection fault (error code 0x0)",
        "{out}"
    );

    // Kernel code: `memcpy`'s address from the public domain, read twice.
    let listing = command(&mut session, "domain SpinPublic memcpy");
    let address = listing
        .lines()
        .find_map(|l| {
            let mut words = l.split_whitespace();
            let address = words.next()?.strip_prefix("0x")?;
            (words.next() == Some("memcpy")).then(|| u64::from_str_radix(address, 16).ok())?
        })
        .unwrap_or_else(|| panic!("no memcpy in:\n{listing}"));
    let first = peek(&mut session, address);
    let prefix = format!("{address:#018x}: 0x");
    assert!(
        first.starts_with(&prefix) && first.len() == prefix.len() + 16,
        "{first}"
    );
    assert_eq!(
        peek(&mut session, address),
        first,
        "code changed between two reads"
    );

    let out = command(&mut session, "peek nothex");
    assert!(
        out.contains("error: 'nothex' is not a hexadecimal address"),
        "{out}"
    );
    let out = command(&mut session, "uptime");
    assert!(out.contains("up "), "the kernel did not survive: {out}");
}

#[test]
fn panic_exits_non_zero_with_message_and_location() {
    let (mut session, _) = boot(Firmware::Bios);
    session.send_line("panic").unwrap();
    let (exit, output) = session.wait_exit(COMMAND_TIMEOUT).expect("QEMU exits");
    assert_eq!(exit, KernelExit::Failure);
    assert!(
        output.contains("KERNEL PANIC at kernel-image/src/shell/system.rs:"),
        "{output}"
    );
    assert!(
        output.contains("panic requested from the shell"),
        "{output}"
    );
}

#[test]
fn shutdown_exits_zero() {
    let (mut session, _) = boot(Firmware::Bios);
    session.send_line("shutdown").unwrap();
    let (exit, output) = session.wait_exit(COMMAND_TIMEOUT).expect("QEMU exits");
    assert_eq!(exit, KernelExit::Success, "{output}");
}

#[test]
fn uefi_boot_reaches_the_shell_and_shuts_down() {
    let (mut session, banner) = boot(Firmware::Uefi);
    assert!(banner.contains("firmware UEFI"), "{banner}");
    let mem = command(&mut session, "mem");
    assert!(
        number_before(&mem, "MiB RAM").is_some_and(|ram| ram > 200),
        "{mem}"
    );
    session.send_line("shutdown").unwrap();
    let (exit, _) = session.wait_exit(COMMAND_TIMEOUT).expect("QEMU exits");
    assert_eq!(exit, KernelExit::Success);
}

#[test]
fn events_lists_clock_tick_with_a_growing_raise_count() {
    let (mut session, _) = boot(Firmware::Bios);
    let raises = |events: &str| -> u64 {
        let row = events
            .lines()
            .find(|l| l.starts_with("Clock.Tick"))
            .unwrap_or_else(|| panic!("{events}"));
        let columns: Vec<&str> = row.split_whitespace().collect();
        assert_eq!(columns[1], "kernel", "owner: {row}");
        columns[3].parse().expect("raise count")
    };
    let first = command(&mut session, "events");
    assert!(first.contains("Console.Line"), "{first}");
    std::thread::sleep(std::time::Duration::from_millis(300));
    let second = command(&mut session, "events");
    assert!(
        raises(&second) > raises(&first),
        "Clock.Tick raises did not grow:\n{first}\n{second}"
    );
    let handlers = command(&mut session, "handlers Clock.Tick");
    assert!(
        handlers.contains("original") && handlers.contains("kernel"),
        "{handlers}"
    );
}
