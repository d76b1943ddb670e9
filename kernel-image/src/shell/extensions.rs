//! Built-in commands about extensions and symbol domains. The loader
//! returns data; this file prints it.

use alloc::string::String;

use extension_heap::Released;
use loader::{CatalogueListing, DomainExports, DomainListing, ExtensionInfo, LoadedInfo, Origin};
use spindle_package::Kind;
use spindle_package::bundle::{Provider, Role, Trust};

use super::{Command, defer};
use crate::loader::memory::PAGE;
use crate::println;

pub const COMMANDS: &[Command] = &[
    Command {
        name: "ext",
        usage: "ext list | load NAME | unload NAME | info NAME | churn CYCLES",
        help: "extensions in the catalogue: list, load, unload, describe; load/unload churn",
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

/// Exports `domain` shows before asking for a filter.
const SHOWN_EXPORTS: usize = 40;

fn ext(args: &[&str]) -> Result<(), String> {
    match args {
        ["list"] | [] => {
            print_catalogue(&crate::loader::with(|l| l.catalogue_listing()));
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
                Ok(report) => {
                    if let Some(panic) = &report.exit_panicked {
                        println!("{name}: exit {panic}; unloaded it anyway");
                    }
                    if report.revoked > 0 {
                        println!(
                            "{name}: revoked {} binding(s) left installed by exit",
                            report.revoked
                        );
                    }
                    print_heap_release(&name, report.heap);
                    println!("unloaded {name}");
                }
                Err(e) => println!("error: cannot unload {name}: {e}"),
            });
            Ok(())
        }
        ["info", name] => match crate::loader::with(|l| l.info(name)) {
            Some(info) => {
                print_info(&info);
                Ok(())
            }
            None => Err(alloc::format!("no extension '{name}' in the catalogue")),
        },
        ["churn", cycles] => {
            let cycles: u64 = cycles
                .parse()
                .map_err(|_| alloc::format!("'{cycles}' is not a number of cycles"))?;
            defer(move || super::churn::run(cycles));
            Ok(())
        }
        _ => Err("expected list, load NAME, unload NAME, info NAME or churn CYCLES".into()),
    }
}

fn kind_name(kind: Kind) -> &'static str {
    match kind {
        Kind::Extension => "extension",
        Kind::Fixture => "fixture",
    }
}

fn origin_name(origin: Origin) -> &'static str {
    match origin {
        Origin::Ramdisk => "ramdisk",
        Origin::Pushed => "pushed",
    }
}

/// `ext list`.
fn print_catalogue(listing: &CatalogueListing) {
    println!(
        "{:<18} {:<9} {:>9} {:<7} {:<6} {:<7} STATE",
        "NAME", "KIND", "BYTES", "VERSION", "SIGNED", "ORIGIN"
    );
    for row in &listing.rows {
        let state = match &row.loaded_at {
            Some(range) => alloc::format!(
                "loaded at {:#x} ({} pages)",
                range.start,
                (range.end - range.start) / PAGE
            ),
            None => String::from("available"),
        };
        println!(
            "{:<18} {:<9} {:>9} {:<7} {:<6} {:<7} {state}",
            row.name,
            kind_name(row.kind),
            row.bytes,
            row.version,
            if row.signed { "yes" } else { "no" },
            origin_name(row.origin)
        );
    }
    println!(
        "{} loaded, {} KiB of extension address space in use",
        listing.loaded,
        listing.region_used_bytes / 1024
    );
    if !listing.retained.is_empty() {
        println!(
            "memory kept for unloaded extensions whose handlers raises in progress still hold: {}",
            listing.retained.join(", ")
        );
    }
}

fn list_or_dash(names: &[String]) -> String {
    if names.is_empty() {
        String::from("-")
    } else {
        names.join(", ")
    }
}

/// `ext info NAME`.
fn print_info(info: &ExtensionInfo) {
    let digest: String = info
        .digest
        .iter()
        .take(8)
        .map(|b| alloc::format!("{b:02x}"))
        .collect();
    println!(
        "{} {} ({}, {}), {} bytes, blake3 {digest}...",
        info.name,
        info.version,
        kind_name(info.kind),
        origin_name(info.origin),
        info.bytes
    );
    match &info.crates {
        Ok(crates) => {
            println!("crates (listed inside the signed object):");
            for c in crates {
                println!("  {:<20} {:<10} {}", c.name, c.version, role_text(c.role));
            }
        }
        Err(why) => println!("crates: {why}"),
    }
    let Some(loaded) = &info.loaded else {
        println!("state: available (not loaded)");
        return;
    };
    let r = &loaded.report;
    println!(
        "state: loaded at {:#x}..{:#x}, principal '{}' with {} live binding object(s)",
        r.range.start, r.range.end, loaded.principal, loaded.live_binding_objects
    );
    let size = |i: usize| r.segments[i].end - r.segments[i].start;
    println!(
        "segments: text {} B (RX), rodata {} B (R), data+bss {} B (RW); {} GOT slots, {} far-call stubs; {} unwind table(s) registered",
        size(0),
        size(1),
        size(2),
        r.got_slots,
        r.stubs,
        r.unwind_tables
    );
    println!(
        "symbols: {} imports, {} exports, {} relocations applied",
        r.imports, r.exports, r.relocations
    );
    println!("load: {}", r.cycles);
    println!(
        "baseline: copying the object once took {} cycles (load = {:.1}x)",
        r.baseline_copy_cycles,
        r.baseline_ratio()
    );
    print_memory(loaded);
    println!("depends on: {}", list_or_dash(&loaded.depends_on));
    println!("used by: {}", list_or_dash(&loaded.used_by));
}

/// The `heap:` and `frames:` lines of `ext info`: the extension's own
/// heap, and the frames it holds — its image, its heap's pages, and what it
/// holds through the memory services.
fn print_memory(loaded: &LoadedInfo) {
    let image: u64 = loaded
        .report
        .segments
        .iter()
        .map(|s| (s.end - s.start).div_ceil(PAGE))
        .sum();
    let held: u64 = phys_addr::owners()
        .iter()
        .filter(|o| o.name == loaded.principal)
        .map(|o| o.frames)
        .sum();
    let heap_frames = match &loaded.heap {
        Some(heap) => {
            println!(
                "heap: {} bytes in {} blocks, peak {} bytes, quota {} bytes ({} mapped), {} allocation(s) refused",
                heap.used, heap.blocks, heap.peak, heap.quota, heap.mapped, heap.refused
            );
            heap.frames(PAGE)
        }
        None => {
            println!("heap: the kernel's (no heap of its own)");
            0
        }
    };
    let other = held.saturating_sub(image);
    println!(
        "frames: {image} image + {heap_frames} heap + {other} other = {}",
        image + heap_frames + other
    );
}

/// What `ext unload` (or a failed extension's unload) says about the
/// extension's heap: nothing if it was freed.
pub fn print_heap_release(name: &str, heap: Option<Released>) {
    if let Some(Released::Kept { bytes, blocks }) = heap {
        println!(
            "{bytes} bytes in {blocks} blocks still allocated from {name}'s heap: kept until freed"
        );
    }
}

/// What a crate is to the extension, for `ext info`.
fn role_text(role: Role) -> &'static str {
    match role {
        Role::Extension => "the extension itself",
        Role::Carried(Trust::Vetted) => "carried (vetted)",
        Role::Carried(Trust::Safe) => "carried (safe: built under -F unsafe-code)",
        Role::Imported(Provider::Kernel) => "imported from the kernel (SpinPublic)",
        Role::Imported(Provider::Extension) => "imported from that extension",
    }
}

fn domains(_: &[&str]) -> Result<(), String> {
    print_domains(&crate::loader::with(|l| l.domain_listing()));
    Ok(())
}

/// `domains`.
fn print_domains(listing: &DomainListing) {
    let boot = crate::loader::boot_figures();
    println!("{:<16} {:>8} {:>8}  NOTES", "DOMAIN", "EXPORTS", "IMPORTS");
    println!(
        "{:<16} {:>8} {:>8}  every kernel symbol (create-from-module, built in {} us); explains failures, never linked against",
        "Kernel",
        listing.kernel_exports,
        0,
        boot.index_build_ns / 1000
    );
    println!(
        "{:<16} {:>8} {:>8}  {}",
        "RustRuntime",
        listing.runtime_exports,
        0,
        listing.runtime_crates.join(", ")
    );
    println!(
        "{:<16} {:>8} {:>8}  the other public crates",
        "SpinInterfaces", listing.interface_exports, 0
    );
    println!(
        "{:<16} {:>8} {:>8}  = combine(RustRuntime, SpinInterfaces), composed in {} us; extensions link here",
        "SpinPublic",
        listing.spin_public_exports,
        0,
        boot.compose_ns / 1000
    );
    for row in &listing.extensions {
        println!(
            "{:<16} {:>8} {:>8}  resolved against {}",
            row.name,
            row.exports,
            row.imports,
            row.sources.join(", ")
        );
    }
}

fn domain(args: &[&str]) -> Result<(), String> {
    let (name, filter) = match args {
        [name] => (*name, None),
        [name, filter] => (*name, Some(*filter)),
        _ => return Err("expected a domain name and an optional filter".into()),
    };
    match crate::loader::with(|l| l.domain_exports(name, filter)) {
        Some(exports) => {
            print_exports(&exports, filter);
            Ok(())
        }
        None => Err(alloc::format!("no domain '{name}' (see 'domains')")),
    }
}

/// `domain NAME [FILTER]`.
fn print_exports(exports: &DomainExports, filter: Option<&str>) {
    let name = &exports.name;
    println!(
        "domain {name}: {} exports{}",
        exports.symbols.len(),
        filter
            .map(|f| alloc::format!(" matching '{f}'"))
            .unwrap_or_default()
    );
    for (symbol, address) in exports.symbols.iter().take(SHOWN_EXPORTS) {
        println!("  {address:#018x}  {symbol}");
    }
    if exports.symbols.len() > SHOWN_EXPORTS {
        println!(
            "  ... {} more (give a filter: domain {name} FILTER)",
            exports.symbols.len() - SHOWN_EXPORTS
        );
    }
}
