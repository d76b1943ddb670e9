//! Extensions loaded into the running kernel through the shell: load, use,
//! unload, dependencies, and every kind of bad input the loader must refuse
//! while the kernel keeps running.

use spindle_tests::*;

#[test]
fn hello_loads_answers_and_unloads_leaving_memory_as_it_was() {
    let (mut session, _) = boot(Firmware::Bios);
    let before = memory_figures(&command(&mut session, "mem"));
    let list = command(&mut session, "ext list");
    assert!(
        list.contains("hello") && list.contains("available"),
        "{list}"
    );

    let load = command(&mut session, "ext load hello");
    assert!(load.contains("hello: loaded"), "init did not run:\n{load}");
    assert!(
        load.contains("loaded hello:") && load.contains("cycles"),
        "{load}"
    );
    let list = command(&mut session, "ext list");
    assert!(
        list.lines()
            .any(|l| l.starts_with("hello ") && l.contains("loaded at 0xffffffff9")),
        "{list}"
    );

    let answer = command(&mut session, "hello");
    assert!(
        answer.contains("Hello from the hello extension!"),
        "{answer}"
    );
    let answer = command(&mut session, "hello spindle");
    assert!(
        answer.contains("Hello, spindle! (from the hello extension)"),
        "{answer}"
    );

    let unload = command(&mut session, "ext unload hello");
    assert!(
        unload.contains("hello: goodbye") && unload.contains("unloaded hello"),
        "{unload}"
    );
    let gone = command(&mut session, "hello");
    assert!(
        gone.contains("error: unknown command 'hello'"),
        "handler still installed:\n{gone}"
    );
    let after = memory_figures(&command(&mut session, "mem"));
    assert_eq!(after, before, "memory not back to its pre-load figures");
}

#[test]
fn load_and_unload_twice_in_a_row() {
    let (mut session, _) = boot(Firmware::Bios);
    for round in 0..2 {
        let load = command(&mut session, "ext load hello");
        assert!(load.contains("loaded hello:"), "round {round}: {load}");
        assert!(
            command(&mut session, "hello").contains("Hello from"),
            "round {round}"
        );
        let again = command(&mut session, "ext load hello");
        assert!(again.contains("'hello' is already loaded"), "{again}");
        assert!(
            command(&mut session, "ext unload hello").contains("unloaded hello"),
            "round {round}"
        );
    }
    let not_loaded = command(&mut session, "ext unload hello");
    assert!(not_loaded.contains("'hello' is not loaded"), "{not_loaded}");
}

#[test]
fn counter_client_needs_counter_and_pins_it() {
    let (mut session, _) = boot(Firmware::Bios);
    let early = command(&mut session, "ext load counter-client");
    assert!(early.contains("cannot load counter-client"), "{early}");
    assert!(
        early.contains("counter::increment")
            && early.contains("exported by extension 'counter', which is not loaded"),
        "{early}"
    );

    assert!(command(&mut session, "ext load counter").contains("loaded counter:"));
    assert!(command(&mut session, "ext load counter-client").contains("loaded counter-client:"));
    assert!(command(&mut session, "count").contains("counter is now 1"));
    assert!(command(&mut session, "count 41").contains("counter is now 42"));
    let domains = command(&mut session, "domains");
    assert!(
        domains
            .lines()
            .any(|l| l.starts_with("counter-client") && l.contains("counter")),
        "{domains}"
    );

    let pinned = command(&mut session, "ext unload counter");
    assert!(
        pinned.contains("'counter' is in use by counter-client"),
        "{pinned}"
    );
    assert!(
        command(&mut session, "count").contains("counter is now 43"),
        "counter was unloaded anyway"
    );

    assert!(command(&mut session, "ext unload counter-client").contains("unloaded counter-client"));
    let unload = command(&mut session, "ext unload counter");
    assert!(
        unload.contains("counter: unloaded at 43") && unload.contains("unloaded counter"),
        "{unload}"
    );
}

#[test]
fn alloc_demo_computes_through_the_got_and_compiler_builtins() {
    let (mut session, _) = boot(Firmware::Bios);
    let load = command(&mut session, "ext load alloc-demo");
    assert!(load.contains("alloc-demo: self-check passed"), "{load}");
    let out = command(&mut session, "alloc-demo");
    for expected in [
        "sum of squares 1..1000 = 333833500",
        "word counts: the=3 fox=1 distinct=9",
        "= 295990753005022285406951330066 rem 601125746",
        "shapes: square 12=144, rectangle 3x7=21",
    ] {
        assert!(out.contains(expected), "missing {expected:?} in:\n{out}");
    }
    let info = command(&mut session, "ext info alloc-demo");
    assert!(
        info.contains("GOT slots") && info.contains("relocations applied"),
        "{info}"
    );
}

#[test]
fn handlers_and_domains_show_the_loaded_extension() {
    let (mut session, _) = boot(Firmware::Bios);
    command(&mut session, "ext load hello");
    let handlers = command(&mut session, "handlers Console.Line");
    let hello_row = handlers
        .lines()
        .find(|l| l.contains(" hello "))
        .unwrap_or_else(|| panic!("{handlers}"));
    // One guard of its own (the command word) and one imposed by the kernel's
    // authorizer (built-in names stay the kernel's).
    let columns: Vec<&str> = hello_row.split_whitespace().collect();
    assert_eq!(&columns[4..6], ["1", "1"], "{hello_row}");
    assert!(
        handlers.contains("original") && handlers.contains("kernel"),
        "{handlers}"
    );

    let domain = command(&mut session, "domain hello");
    assert!(
        domain.contains("hello::init") && domain.contains("SPINDLE_EXTENSION_DESCRIPTOR"),
        "{domain}"
    );
    let spin_public = command(&mut session, "domain SpinPublic Event");
    assert!(spin_public.contains("dispatcher"), "{spin_public}");
    let internal = command(&mut session, "domain SpinPublic loader");
    assert!(
        internal.contains("0 exports"),
        "kernel-internal loader symbols leak into SpinPublic:\n{internal}"
    );
}

/// Loads a bad object; asserts the refusal message and that the kernel is
/// still fine (the shell answers, memory as before).
fn refused(fixture: &str, expected: &[&str]) {
    let (mut session, _) = boot(Firmware::Bios);
    let before = memory_figures(&command(&mut session, "mem"));
    let out = command(&mut session, &format!("ext load {fixture}"));
    assert!(
        out.contains(&format!("error: cannot load {fixture}:")),
        "{fixture} was not refused:\n{out}"
    );
    for part in expected {
        assert!(out.contains(part), "{fixture}: missing {part:?} in:\n{out}");
    }
    assert!(
        command(&mut session, "ext list").contains(fixture),
        "kernel stopped answering"
    );
    let after = memory_figures(&command(&mut session, "mem"));
    assert_eq!(after, before, "{fixture}: a refused load changed memory");
}

#[test]
fn unsigned_object_is_refused() {
    refused(
        "unsigned",
        &["signature check failed: object is not signed"],
    );
}

#[test]
fn tampered_object_is_refused() {
    refused(
        "tampered",
        &["modified after it was built (BLAKE3 digest mismatch)"],
    );
}

#[test]
fn wrong_interface_fingerprint_is_refused() {
    refused(
        "stale-fingerprint",
        &[
            "interface fingerprint mismatch for 'dispatcher'",
            "rebuild the extension",
        ],
    );
}

#[test]
fn kernel_internal_symbol_is_refused_by_name() {
    refused(
        "internal-symbol",
        &[
            "Object>::parse",
            "[crate domains]",
            "kernel-internal symbol",
        ],
    );
}

#[test]
fn unsupported_relocation_is_refused_by_name() {
    refused(
        "large-model",
        &["unsupported relocation R_X86_64_GOTPC64", ".ltext."],
    );
}

#[test]
fn truncated_object_is_refused() {
    refused("truncated", &["bad object: truncated input"]);
}

#[test]
fn garbage_is_refused() {
    refused("garbage", &["neither an ELF object nor an ar archive"]);
}

#[test]
fn oversized_section_is_refused() {
    refused("oversized-section", &["max_section_size exceeded"]);
}

#[test]
fn overlapping_sections_are_refused() {
    refused(
        "overlapping-sections",
        &["overlap in the file", ".spindle_ext"],
    );
}

#[test]
fn missing_descriptor_is_refused() {
    refused("no-descriptor", &["missing descriptor", ".spindle_ext"]);
}

#[test]
fn failing_init_is_undone_completely() {
    let (mut session, _) = boot(Firmware::Bios);
    let before = memory_figures(&command(&mut session, "mem"));
    let out = command(&mut session, "ext load init-fails");
    assert!(out.contains("init failed: refusing to start"), "{out}");
    // The handler its init installed is gone...
    let probe = command(&mut session, "init-fails-probe");
    assert!(
        probe.contains("unknown command 'init-fails-probe'"),
        "{probe}"
    );
    let handlers = command(&mut session, "handlers Console.Line");
    assert!(!handlers.contains("init-fails"), "{handlers}");
    // ...and so is every byte and frame it had.
    assert_eq!(memory_figures(&command(&mut session, "mem")), before);
    assert!(command(&mut session, "ext list").contains("0 loaded"));
}

#[test]
fn unknown_extension_is_reported() {
    let (mut session, _) = boot(Firmware::Bios);
    let out = command(&mut session, "ext load nope");
    assert!(
        out.contains("no extension 'nope' in the catalogue"),
        "{out}"
    );
}

#[test]
fn a_panic_in_init_is_contained_and_undone_completely() {
    let (mut session, _) = boot(Firmware::Bios);
    let before = memory_figures(&command(&mut session, "mem"));
    let out = command(&mut session, "ext load panic-in-init");
    assert!(
        out.contains("error: cannot load panic-in-init: init panicked at")
            && out.contains("panic-in-init/src/lib.rs")
            && out.contains("deliberate panic in init (scratch sum 130816)"),
        "{out}"
    );
    let probe = command(&mut session, "panic-in-init-probe");
    assert!(
        probe.contains("unknown command 'panic-in-init-probe'"),
        "{probe}"
    );
    assert_eq!(memory_figures(&command(&mut session, "mem")), before);
    // The kernel goes on serving: another extension loads and answers.
    assert!(command(&mut session, "ext load hello").contains("loaded hello"));
    assert!(command(&mut session, "hello").contains("Hello from the hello extension!"));
    assert!(command(&mut session, "ext unload hello").contains("unloaded hello"));
    assert_eq!(memory_figures(&command(&mut session, "mem")), before);
}
