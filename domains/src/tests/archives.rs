//! Archives: several objects linked as one unit.

use alloc::vec::Vec;

use super::*;

/// `a.o`: calls `shared` (defined in `b.o`) and `ext` (an import); defines
/// a weak `maybe`.
fn member_a() -> Vec<u8> {
    let mut b = ObjBuilder::new();
    let t = b.text(".text.a", &[0xe8, 0, 0, 0, 0, 0xe8, 0, 0, 0, 0, 0xc3]);
    let shared = b.undefined("shared");
    let ext = b.undefined("ext");
    b.symbol("maybe", t, 10, STB_WEAK, STT_FUNC);
    b.global_fn("entry_a", t, 0);
    b.reloc(t, 1, shared, R_PLT32, -4);
    b.reloc(t, 6, ext, R_PLT32, -4);
    b.build()
}

/// `b.o`: defines `shared` (hidden, as rustc does across codegen units)
/// and a strong `maybe`.
fn member_b() -> Vec<u8> {
    let mut b = ObjBuilder::new();
    let t = b.text(".text.b", &[0x90, 0x90, 0xc3, 0xc3]);
    let s = b.global_fn("shared", t, 1);
    b.hidden(s);
    b.global_fn("maybe", t, 2);
    b.build()
}

#[test]
fn archive_members_are_linked_as_one_unit() {
    let (a, bb) = (member_a(), member_b());
    let rmeta = b"rust metadata, not an object".to_vec();
    let archive = ar(&[("lib.rmeta", &rmeta), ("a.o", &a), ("b.o", &bb)]);
    let object = Object::parse(&archive, &Limits::default()).unwrap();
    assert_eq!(object.members().collect::<Vec<_>>(), ["a.o", "b.o"]);
    // `shared` is resolved inside the unit; only `ext` is imported.
    assert_eq!(
        object.imports().map(|i| i.name).collect::<Vec<_>>(),
        ["ext"]
    );
    // Hidden `shared` is not exported; the strong `maybe` wins over the weak.
    let mut exports: Vec<_> = object.exports().collect();
    exports.sort();
    assert_eq!(exports, ["entry_a", "maybe"]);
    let img = link(&archive, BASES, &[("ext", BASES.text + 0x1000)]).unwrap();
    let ta = section_addr(&img, ".text.a");
    let tb = section_addr(&img, ".text.b");
    assert_eq!(rip_target(&img, ta + 1), tb + 1);
    assert_eq!(img.symbol("maybe"), Some(tb + 2));
}

#[test]
fn archive_duplicate_strong_definitions_are_refused() {
    let b1 = member_b();
    let archive = ar(&[("b1.o", &b1), ("b2.o", &b1)]);
    match Object::parse(&archive, &Limits::default()) {
        Err(Error::DuplicateSymbol {
            symbol,
            first,
            second,
        }) => {
            assert_eq!(symbol, "shared");
            assert_eq!((first.as_str(), second.as_str()), ("b1.o", "b2.o"));
        }
        other => panic!("{other:?}"),
    }
}

#[test]
fn archive_without_objects_or_with_bad_members_is_refused() {
    let rmeta = b"meta".to_vec();
    assert_eq!(
        Object::parse(&ar(&[("lib.rmeta", &rmeta)]), &Limits::default()).unwrap_err(),
        Error::NoObjectInArchive
    );
    // A `.o` member that is not ELF is skipped; a broken ELF one fails.
    let broken = {
        let mut o = sample_object();
        o.truncate(100);
        o
    };
    assert!(Object::parse(&ar(&[("x.o", &broken)]), &Limits::default()).is_err());
    // A member whose size runs past the end of the archive.
    let mut a = ar(&[("a.o", &member_a())]);
    let size_field = 8 + 48;
    a[size_field..size_field + 10].copy_from_slice(b"9999999999");
    assert!(Object::parse(&a, &Limits::default()).is_err());
    // Too many members.
    let m = member_b();
    let many: Vec<(&str, &[u8])> = alloc::vec![("m.o", &m[..]); 3];
    let limits = Limits {
        max_objects: 2,
        ..Limits::default()
    };
    assert!(matches!(
        Object::parse(&ar(&many), &limits),
        Err(Error::LimitExceeded {
            limit: "max_objects",
            ..
        })
    ));
}

proptest::proptest! {
    #![proptest_config(proptest::prelude::ProptestConfig::with_cases(256))]
    /// Corrupted archives never panic either.
    #[test]
    fn corrupted_archives_never_panic(
        edits in proptest::collection::vec((0usize..4096, proptest::prelude::any::<u8>()), 1..8)
    ) {
        let (a, b) = (member_a(), member_b());
        let mut archive = ar(&[("lib.rmeta", b"meta"), ("a.o", &a), ("b.o", &b)]);
        let n = archive.len();
        for (at, v) in edits {
            archive[at % n] = v;
        }
        if let Ok(o) = Object::parse(&archive, &Limits::default())
            && let Ok(plan) = o.plan(&LinkOptions::default())
            && let Ok(bases) = plan.contiguous_bases(0x10_0000, 4096)
        {
            let _ = plan.link(bases, &FnResolver::new("r", |_| Some(0x20_0000)));
        }
    }
}

proptest::proptest! {
    #![proptest_config(proptest::prelude::ProptestConfig::with_cases(256))]
    /// A corrupted module ELF never panics `create_from_module`.
    #[test]
    fn corrupted_modules_never_panic(
        edits in proptest::collection::vec((0usize..2048, proptest::prelude::any::<u8>()), 1..8)
    ) {
        let mut elf = sample_object();
        let n = elf.len();
        for (at, v) in edits {
            elf[at % n] = v;
        }
        let _ = Domain::create_from_module("k", &elf, 0, &CrateFilter::all());
        let _ = Domain::create_from_module("k", &elf, 0, &CrateFilter::crates(&["core"]).strict(true));
    }

    /// Attribution never panics on arbitrary names.
    #[test]
    fn attribution_never_panics(name in "(_R|_ZN|__)?[A-Za-z0-9_$.]{0,80}") {
        let _ = attribute(&name);
        let _ = attribution::for_each_crate(&name, |_| {});
        let _ = CrateFilter::crates(&["core"]).strict(true).accepts(&name);
    }
}
