//! Multi-crate bundles, really run: an "extension" crate and a library
//! crate it depends on, compiled separately by the pinned rustc, bundled
//! the way the build bundles extensions with their crates.io dependencies
//! (`spindle_package::bundle`: a crate list, then one object per crate),
//! linked by `domains` as one unit, mapped into this process and called.
//!
//! What they show: the library's code links inside the unit; its elements
//! of a distributed slice and the extension's are bounded by the
//! linker-defined `__start_`/`__stop_` symbols; a domain exporting only
//! the extension's crate keeps the library private, so two extensions
//! carrying the same library neither clash nor share its state.

mod common;

use std::path::PathBuf;

use common::*;
use domains::{CrateFilter, Domain, Error, Limits, LinkOptions, Object, combine, resolve_all};
use spindle_package::bundle::{CrateRecord, Role, Trust, write_bundle};

/// Mirrors `Table` in `fixtures/bundle_ext.rs`.
#[repr(C)]
struct Table {
    magic: u64,
    bump: fn() -> u64,
    scaled: fn(u64) -> u64,
    largest: fn(&[u64]) -> Option<u64>,
    slice: fn() -> (u64, u64),
}

const MAGIC: u64 = 0x4255_4e44_4c45;

/// The one object of an rlib built with one codegen unit.
fn object_of(rlib: &[u8]) -> Vec<u8> {
    let archive = goblin::archive::Archive::parse(rlib).unwrap();
    let member = archive
        .members()
        .into_iter()
        .find(|m| m.ends_with(".o"))
        .expect("an object member");
    archive.extract(member, rlib).unwrap().to_vec()
}

/// `bundle_dep` as an rlib on disk (for `--extern`) and its object.
fn dep() -> (PathBuf, Vec<u8>) {
    let mut b = Build::new(fixture("bundle_dep.rs"), "bundle_dep");
    b.rlib = true;
    let rlib = compile(&b);
    let path = out_dir().join("libbundle_dep.rlib");
    std::fs::write(&path, rlib).unwrap();
    (path, object_of(rlib))
}

/// A bundle of the extension crate `name` (from `bundle_ext.rs`) and the
/// `bundle_dep` it carries.
fn bundle(name: &'static str) -> Vec<u8> {
    let (dep_path, dep_object) = dep();
    let extern_flag: &'static str =
        Box::leak(format!("bundle_dep={}", dep_path.display()).into_boxed_str());
    let flags: &'static [&'static str] = Box::leak(Box::new(["--extern", extern_flag]));
    let mut b = Build::new(fixture("bundle_ext.rs"), name);
    b.rlib = true;
    b.flags = flags;
    let ext_object = object_of(compile(&b));
    let ext_member = format!("{name}-0.1.0.o");
    write_bundle(
        &[
            CrateRecord::new(Role::Extension, name, "0.1.0"),
            CrateRecord::new(Role::Carried(Trust::Safe), "bundle_dep", "0.1.0"),
        ],
        &[
            (&ext_member, &ext_object),
            ("bundle_dep-0.1.0.o", &dep_object),
        ],
    )
}

/// A linked, mapped bundle and its domain.
struct Loaded {
    _mapping: Mapping,
    domain: Domain,
    table: &'static Table,
}

fn load(bytes: &'static [u8], name: &str, exported: &CrateFilter<'_>) -> Loaded {
    let object = Object::parse(bytes, &Limits::default()).unwrap();
    assert_eq!(
        object.members().collect::<Vec<_>>(),
        [format!("{name}-0.1.0.o").as_str(), "bundle_dep-0.1.0.o"]
    );
    let mut domain = Domain::create_exporting(name, &object, exported).unwrap();
    resolve_all(&[&host_public()], &mut domain).unwrap_or_else(|e| panic!("{e}"));
    let (mapping, image) = map_and_link(
        &object,
        &domain,
        ImagePlacement::Far,
        LinkOptions::default(),
    );
    domain.place(&image).unwrap();
    let table = image.symbol("BUNDLE_TABLE").expect("table");
    // SAFETY: BUNDLE_TABLE lies in the live mapping (kept in `Loaded`),
    // laid out as the fixture's #[repr(C)] Table by the same rustc, its fn
    // pointers relocated to the mapped text. The reference does not outlive
    // the test that holds the mapping.
    let table: &'static Table = unsafe { &*(table as *const Table) };
    assert_eq!(table.magic, MAGIC);
    Loaded {
        _mapping: mapping,
        domain,
        table,
    }
}

fn leak(bytes: Vec<u8>) -> &'static [u8] {
    Box::leak(bytes.into_boxed_slice())
}

#[test]
fn a_bundle_links_its_crates_as_one_unit_and_runs() {
    let bytes = leak(bundle("bundle_ext_a"));
    let own = ["bundle_ext_a"];
    let ext = load(bytes, "bundle_ext_a", &CrateFilter::crates(&own));
    let t = ext.table;
    // The library's non-generic code, its static, and a generic instance.
    assert_eq!((t.bump)(), 1);
    assert_eq!((t.scaled)(7), 7002);
    assert_eq!((t.largest)(&[3, 9, 4]), Some(9));
    assert_eq!((t.largest)(&[]), None);
    // The slice: the library's element and the extension's two, bounded
    // by the linker.
    assert_eq!((t.slice)(), (3, 130));
    // Only the extension's own crate and its own unmangled table are
    // exported, nothing of the library.
    let exports: Vec<&str> = ext.domain.exports().map(|(n, _)| n).collect();
    assert!(exports.contains(&"BUNDLE_TABLE"), "{exports:?}");
    assert!(
        exports.iter().all(|n| !n.contains("bundle_dep")),
        "{exports:?}"
    );
}

#[test]
fn two_bundles_carrying_one_crate_keep_private_copies_and_do_not_clash() {
    let (a_bytes, b_bytes) = (leak(bundle("bundle_ext_a")), leak(bundle("bundle_ext_b")));
    let (own_a, own_b) = (["bundle_ext_a"], ["bundle_ext_b"]);
    let a = load(a_bytes, "bundle_ext_a", &CrateFilter::crates(&own_a));
    let b = load(b_bytes, "bundle_ext_b", &CrateFilter::crates(&own_b));
    // Each has its own copy of the library's static.
    assert_eq!(((a.table.bump)(), (a.table.bump)()), (1, 2));
    assert_eq!((b.table.bump)(), 1);
    assert_eq!((a.table.slice)(), (3, 130));
    assert_eq!((b.table.slice)(), (3, 130));
    // Neither offers the library's names.
    assert_eq!(library_names_offered_by_both(&a.domain, &b.domain), 0);

    // Exporting every global instead, the two offer the library's names at
    // different addresses: a clash (a third extension importing one would
    // be bound to whichever domain it searched first).
    let (c, d) = (
        load(a_bytes, "bundle_ext_a", &CrateFilter::all()),
        load(b_bytes, "bundle_ext_b", &CrateFilter::all()),
    );
    assert!(library_names_offered_by_both(&c.domain, &d.domain) > 0);
    let library = |x: &Domain| {
        Domain::from_exports(
            x.name(),
            x.exports()
                .filter(|(n, _)| n.contains("bundle_dep"))
                .map(|(n, e)| (n, e.address)),
        )
    };
    assert!(matches!(
        combine("both", &library(&c.domain), &library(&d.domain)),
        Err(Error::DuplicateExport { .. })
    ));
}

/// How many of `bundle_dep`'s names both domains export.
fn library_names_offered_by_both(x: &Domain, y: &Domain) -> usize {
    x.exports()
        .filter(|(n, _)| n.contains("bundle_dep") && y.lookup(n).is_some())
        .count()
}

#[test]
fn a_bundle_member_that_fails_to_parse_is_named() {
    let mut bytes = bundle("bundle_ext_a");
    // Truncate the library's member in place: its header keeps its size,
    // the ELF inside loses its section headers.
    let at = bytes
        .windows(4)
        .rposition(|w| w == b"\x7fELF")
        .expect("the last member's ELF header");
    bytes[at + 0x28..at + 0x30].copy_from_slice(&u64::MAX.to_le_bytes()); // e_shoff
    match Object::parse(&bytes, &Limits::default()) {
        Err(Error::InMember { member, error }) => {
            assert_eq!(member, "bundle_dep-0.1.0.o");
            assert!(matches!(*error, Error::Truncated { .. }), "{error:?}");
        }
        other => panic!("{other:?}"),
    }
}

#[test]
fn default_limits_admit_a_bundle_and_a_member_limit_names_the_member() {
    let bytes = bundle("bundle_ext_a");
    assert!(Object::parse(&bytes, &Limits::default()).is_ok());
    let one = Limits {
        max_objects: 1,
        ..Limits::default()
    };
    assert_eq!(
        Object::parse(&bytes, &one).unwrap_err(),
        Error::LimitExceeded {
            limit: "max_objects",
            context: "archive member bundle_dep-0.1.0.o".into(),
            value: 2,
            max: 1,
        }
    );
}
