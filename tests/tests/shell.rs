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

#[test]
fn peek_at_an_unmapped_address_reports_the_fault() {
    let (mut session, _) = boot(Firmware::Bios);
    let out = command(&mut session, "peek 0x5555dead0000");
    assert!(out.contains("page fault (address 0x5555dead0000"), "{out}");
    let out = command(&mut session, "peek nothex");
    assert!(
        out.contains("error: 'nothex' is not a hexadecimal address"),
        "{out}"
    );
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
