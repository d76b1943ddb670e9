//! Extensions that carry crates.io libraries: `stats` (libm and heapless,
//! both vetted) and `checksum` (crc, safe; heapless too). Each carries its
//! own copies in its own domain, so the two load and unload in any order;
//! `ext info` lists the crates from the signed crate list; an extension
//! that reaches into a crate another one carries is refused by name.

use spindle_tests::*;

/// The `NAME VERSION ROLE` line of `crate` in `ext info` output.
fn crate_line<'a>(info: &'a str, krate: &str) -> &'a str {
    info.lines()
        .skip_while(|l| !l.starts_with("crates (listed inside the signed object):"))
        .map(str::trim)
        .find(|l| l.split_whitespace().next() == Some(krate))
        .unwrap_or_else(|| panic!("no line for {krate} in:\n{info}"))
}

#[test]
fn stats_computes_with_its_libraries_and_lists_them() {
    let (mut session, _) = boot(Firmware::Bios);
    let before = memory_figures(&command(&mut session, "mem"));
    let load = command(&mut session, "ext load stats");
    assert!(load.contains("stats: loaded"), "{load}");
    let out = command(&mut session, "stats 3 1 4 1 5 9 2 6");
    assert!(
        out.contains("n 8  min 1  max 9  mean 3.875  median 3.5  stddev 2.571  geomean 2.995"),
        "{out}"
    );
    let out = command(&mut session, "stats 2 x");
    assert!(out.contains("stats: 'x' is not a number"), "{out}");
    let many = format!("stats {}", "1 ".repeat(65));
    let out = command(&mut session, &many);
    assert!(out.contains("stats: at most 64 numbers"), "{out}");

    let info = command(&mut session, "ext info stats");
    assert!(
        info.contains("crates (listed inside the signed object):"),
        "{info}"
    );
    for (krate, version, role) in [
        ("stats", "0.1.0", "the extension itself"),
        ("libm", "0.2.16", "carried (vetted)"),
        ("heapless", "0.9.4", "carried (vetted)"),
        ("hash32", "0.3.1", "carried (vetted)"),
        ("byteorder", "1.5.0", "carried (vetted)"),
        ("stable_deref_trait", "1.2.1", "carried (vetted)"),
        (
            "spindle-sdk",
            "0.1.0",
            "imported from the kernel (SpinPublic)",
        ),
    ] {
        let line = crate_line(&info, krate);
        assert_eq!(line.split_whitespace().nth(1), Some(version), "{line}");
        assert!(line.ends_with(role), "{krate}: {line}");
    }
    // One unwind table per object of the bundle that has code (all but
    // stable_deref_trait's): a panic in library code unwinds like one in
    // the extension's own.
    assert!(info.contains("5 unwind table(s) registered"), "{info}");
    // The domain exports the extension's own crate (and its descriptor) only.
    let domain = command(&mut session, "domain stats");
    assert!(domain.contains("domain stats: 4 exports"), "{domain}");
    assert!(
        !domain.contains("libm") && !domain.contains("heapless"),
        "{domain}"
    );

    let unload = command(&mut session, "ext unload stats");
    assert!(unload.contains("unloaded stats"), "{unload}");
    let gone = command(&mut session, "stats 1");
    assert!(gone.contains("error: unknown command 'stats'"), "{gone}");
    assert_eq!(memory_figures(&command(&mut session, "mem")), before);
}

#[test]
fn checksum_uses_a_safe_crate_that_needs_no_vetting() {
    let (mut session, _) = boot(Firmware::Bios);
    command(&mut session, "ext load checksum");
    let out = command(&mut session, "checksum 123456789");
    // The CRC catalogue's check values.
    assert!(
        out.contains("crc-32/iso-hdlc 0xcbf43926  crc-16/ibm-sdlc 0x906e  (9 bytes)"),
        "{out}"
    );
    command(&mut session, "checksum hello world");
    let recent = command(&mut session, "checksum");
    assert!(
        recent.contains("crc-32 0xcbf43926  (9 bytes)")
            && recent.contains("crc-32 0x0d4a1185  (11 bytes)"),
        "{recent}"
    );
    let info = command(&mut session, "ext info checksum");
    assert!(
        crate_line(&info, "crc").ends_with("carried (safe: built under -F unsafe-code)"),
        "{info}"
    );
    assert!(
        crate_line(&info, "crc-catalog").contains("carried (safe"),
        "{info}"
    );
    assert!(
        crate_line(&info, "heapless").ends_with("carried (vetted)"),
        "{info}"
    );
}

/// Loads `stats` and `checksum`, which both carry heapless, uses both,
/// unloads them in `order`, and checks memory is back where it was.
fn load_both_unload_in(order: [&str; 2]) {
    let (mut session, _) = boot(Firmware::Bios);
    let before = memory_figures(&command(&mut session, "mem"));
    for name in ["stats", "checksum"] {
        let out = command(&mut session, &format!("ext load {name}"));
        assert!(out.contains(&format!("{name}: loaded")), "{out}");
    }
    assert!(command(&mut session, "stats 1 2 3").contains("n 3  min 1  max 3"));
    assert!(command(&mut session, "checksum abc").contains("crc-32/iso-hdlc 0x352441c2"));
    // Neither depends on the other: each carries its own heapless.
    let info = command(&mut session, "ext info checksum");
    assert!(
        info.contains("depends on: -") && info.contains("used by: -"),
        "{info}"
    );
    let out = command(&mut session, &format!("ext unload {}", order[0]));
    assert!(out.contains(&format!("unloaded {}", order[0])), "{out}");
    // The other still works after the first is gone.
    let still = match order[1] {
        "stats" => command(&mut session, "stats 4 4").contains("n 2  min 4  max 4"),
        _ => command(&mut session, "checksum abc").contains("0x352441c2"),
    };
    assert!(still, "{} stopped working", order[1]);
    let out = command(&mut session, &format!("ext unload {}", order[1]));
    assert!(out.contains(&format!("unloaded {}", order[1])), "{out}");
    assert_eq!(
        memory_figures(&command(&mut session, "mem")),
        before,
        "memory not back after unloading {order:?}"
    );
}

#[test]
fn extensions_sharing_a_dependency_unload_first_loaded_first() {
    load_both_unload_in(["stats", "checksum"]);
}

#[test]
fn extensions_sharing_a_dependency_unload_last_loaded_first() {
    load_both_unload_in(["checksum", "stats"]);
}

#[test]
fn reaching_into_a_crate_another_extension_carries_is_refused() {
    let (mut session, _) = boot(Firmware::Bios);
    let before = memory_figures(&command(&mut session, "mem"));
    for step in ["without stats", "with stats loaded"] {
        if step == "with stats loaded" {
            command(&mut session, "ext load stats");
        }
        let out = command(&mut session, "ext load private-import");
        assert!(
            out.contains("error: cannot load private-import: 1 unresolved symbol(s)")
                && out.contains("libm::math::exp::exp [crate libm]")
                && out.contains("private to extension 'stats', which carries that crate"),
            "{step}: {out}"
        );
    }
    command(&mut session, "ext unload stats");
    assert_eq!(memory_figures(&command(&mut session, "mem")), before);
}
