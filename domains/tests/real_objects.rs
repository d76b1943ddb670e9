//! Real objects, really run: fixture crates compiled by the pinned rustc,
//! linked by `domains` against symbols taken from this test process's own
//! `.symtab` (the kernel's `create_from_module` path), mapped W^X into this
//! process and called.

mod common;

use std::collections::BTreeSet;
use std::hint::black_box;

use common::*;
use domains::{
    CrateFilter, Domain, Error, LinkOptions, LinkedImage, Object, RelocKind, Resolver, resolve_all,
};

/// Mirrors `Table` in `fixtures/ext_basic.rs`.
#[repr(C)]
struct Table {
    magic: u64,
    add: fn(u64, u64) -> u64,
    bump: fn(u64) -> u64,
    hits: fn(u64) -> u64,
    fib: fn(u64) -> u64,
    greet: fn(u32, &str) -> String,
    collections: fn(u64) -> u64,
    div128: fn(u128, u128) -> (u128, u128),
    shapes: fn(u64) -> (u64, String),
}

const MAGIC: u64 = 0x5350_494e_444c_4521;

/// Keeps in this executable what the fixtures import from core/alloc, so
/// the linker's garbage collection does not drop it. Each line touches
/// one import through ordinary code.
#[inline(never)]
fn keep_runtime_linked() -> u64 {
    let mut acc = 0u64;
    let a: u128 = black_box(u128::MAX / 3);
    let b: u128 = black_box(7);
    acc += (a / b) as u64 + (a % b) as u64; // __udivti3, __umodti3
    let s = format!(
        "{}{:x}{}{:>5}",
        black_box(3u32),
        black_box(255u32),
        black_box("s"),
        1u64
    );
    acc += s.len() as u64; // format_inner, Display/LowerHex for u32, str
    let o: Option<u64> = black_box(Some(1));
    acc += o.expect("some"); // expect_failed
    acc += black_box(Some(2u64)).unwrap(); // unwrap_failed
    let v: Vec<u64> = (0..black_box(10)).collect();
    acc += v[black_box(3)..black_box(6)].iter().sum::<u64>(); // slice_index_fail
    acc += black_box(100u64) / black_box(7u64); // panic_const_div_by_zero
    let mut m = std::collections::BTreeMap::new();
    m.insert(black_box(1u64), black_box(2u64));
    acc += m.len() as u64;
    acc
}

fn host_object(flags: &'static [&'static str], rlib: bool, cgu: u32) -> Object<'static> {
    let mut b = Build::new(fixture("ext_basic.rs"), "ext_basic");
    b.flags = flags;
    b.rlib = rlib;
    b.cgu = cgu;
    Object::parse(compile(&b), &domains::Limits::default()).expect("parse fixture")
}

/// Resolves, links, maps and runs the basic fixture; returns the image's
/// link statistics and whether it was far from the executable.
fn run_basic(
    object: &Object<'_>,
    placement: ImagePlacement,
    options: LinkOptions,
) -> (LinkedImage, bool) {
    assert!(keep_runtime_linked() > 0);
    let public = host_public();
    let mut domain = Domain::create("ext_basic", object).unwrap();
    resolve_all(&[&public], &mut domain).unwrap_or_else(|e| panic!("{e}"));
    let (mapping, image) = map_and_link(object, &domain, placement, options);
    let table_addr = image.symbol("FIXTURE_TABLE").expect("descriptor symbol");
    // The loader reads the descriptor out of the image first.
    assert_eq!(image.read_u64(table_addr).unwrap(), MAGIC);
    // SAFETY: `table_addr` points at FIXTURE_TABLE inside the live,
    // mapped image; its layout is the fixture's #[repr(C)] Table, compiled
    // by the same rustc, and its fn pointers were relocated to the mapped
    // text.
    let t: &Table = unsafe { &*(table_addr as *const Table) };
    assert_eq!(t.magic, MAGIC);

    // Plain arithmetic.
    assert_eq!((t.add)(5, 7), 22);
    assert_eq!(
        (t.add)(u64::MAX, 4),
        u64::MAX.wrapping_mul(3).wrapping_add(4)
    );
    // Statics in .data (initialised to 40) and .bss (zeroed), mutated.
    assert_eq!((t.hits)(3), 0);
    assert_eq!((t.bump)(3), 43);
    assert_eq!((t.bump)(11), 54);
    assert_eq!((t.hits)(3), 2);
    assert_eq!((t.hits)(4), 0);
    // Calls between functions of the object.
    assert_eq!((t.fib)(50), 12_586_269_025);
    // &'static str, formatting into a String through alloc.
    let who = String::from("tester");
    assert_eq!(
        (t.greet)(21, &who),
        "hello from the fixture: tester #21 [   42|15]"
    );
    // Vec and BTreeMap growth.
    let expected = {
        let v: Vec<u64> = (0..1000u64).map(|x| x * x).collect();
        let mut m = std::collections::BTreeMap::<u64, Vec<u64>>::new();
        for x in &v {
            m.entry(x % 7).or_default().push(*x);
        }
        let longest = m.values().map(Vec::len).max().unwrap() as u64;
        m.len() as u64 * 1_000_000 + longest * 1_000 + v.iter().sum::<u64>() % 1000
    };
    assert_eq!((t.collections)(1000), expected);
    // u128 division through compiler_builtins' __udivti3.
    let a = 0x1234_5678_9abc_def0_1122_3344_5566_7788u128;
    assert_eq!(
        (t.div128)(a, 0x1_0000_0001),
        (a / 0x1_0000_0001, a % 0x1_0000_0001)
    );
    // Trait objects: vtables in .data.rel.ro, relocated at link time.
    let (area, names) = (t.shapes)(5);
    assert_eq!(area, 2 + 4 + 12 + 16 + 30);
    assert_eq!(names, "rect,square,rect,square,rect");
    let far = is_far(&image);
    drop(mapping);
    (image, far)
}

/// Imports more than 2 GiB away from the image's text.
fn far_imports(image: &LinkedImage) -> u32 {
    let text = i128::from(image.segment(domains::SegmentKind::Text).base);
    image
        .imports()
        .iter()
        .filter(|i| (i128::from(i.address) - text).abs() >= 1 << 31)
        .count() as u32
}

fn kinds(image: &LinkedImage) -> BTreeSet<&'static str> {
    image
        .stats()
        .relocations()
        .filter(|(_, n)| *n > 0)
        .map(|(k, _)| k.name())
        .collect()
}

#[test]
fn default_pic_object_runs_far_from_the_executable() {
    let object = host_object(&[], false, 1);
    let (image, far) = run_basic(&object, ImagePlacement::Far, LinkOptions::default());
    assert!(
        far,
        "mmap placed the image within 2 GiB; the test expects it far"
    );
    let s = image.stats();
    // Default pic objects reach imports through the GOT.
    assert!(s.count(RelocKind::GotPcRel) > 0);
    assert!(s.got_slots > 0);
    assert_eq!(s.relaxed, 0);
    assert!(
        s.count(RelocKind::Abs64) > 0,
        "vtables and fn-pointer table"
    );
    println!("default pic, far: {:?} {:?}", kinds(&image), s);
}

#[test]
fn plt_object_calls_imports_through_stubs_when_far() {
    let object = host_object(&["-Zplt=yes", "-Zrelax-elf-relocations=yes"], false, 1);
    let (image, far) = run_basic(&object, ImagePlacement::Far, LinkOptions::default());
    assert!(far);
    let s = image.stats();
    assert!(s.count(RelocKind::Plt32) > 0);
    assert!(s.stub_calls > 0, "far PLT32 calls must use stubs: {s:?}");
    // Stubs serve exactly the imports out of range (all of this
    // executable's; libc's may be near an mmap'd image).
    assert!(
        s.stubs_used > 0 && s.stubs_used <= far_imports(&image),
        "{s:?}"
    );
    println!("plt, far: {:?} {:?}", kinds(&image), s);
}

#[test]
fn plt_object_calls_imports_directly_when_near() {
    let object = host_object(&["-Zplt=yes", "-Zrelax-elf-relocations=yes"], false, 1);
    let (image, far) = run_basic(&object, ImagePlacement::Near, LinkOptions::default());
    assert!(!far);
    let s = image.stats();
    // Only imports that really are far (libc's memcpy/memmove, in a shared
    // library) need a stub; the executable's own functions are called
    // directly.
    assert!(s.stubs_used <= far_imports(&image), "{s:?}");
    assert!(s.stubs_used < s.stubs_reserved, "{s:?}");
    assert!(
        s.relaxed > 0,
        "in-range REX_GOTPCRELX should be relaxed: {s:?}"
    );
    println!("plt, near: {:?} {:?}", kinds(&image), s);
}

#[test]
fn relaxable_gotpcrelx_object_runs_near_without_relaxation_too() {
    let object = host_object(&["-Zrelax-elf-relocations=yes"], false, 1);
    let (image, _) = run_basic(
        &object,
        ImagePlacement::Near,
        LinkOptions { relax_got: false },
    );
    let s = image.stats();
    assert!(s.count(RelocKind::GotPcRelX) > 0);
    assert_eq!(s.relaxed, 0);
    let (image, _) = run_basic(&object, ImagePlacement::Near, LinkOptions::default());
    assert!(image.stats().relaxed > 0);
    println!("relaxed, near: {:?} {:?}", kinds(&image), image.stats());
}

#[test]
fn rlib_with_one_codegen_unit_runs() {
    let object = host_object(&[], true, 1);
    assert_eq!(object.members().count(), 1, "rmeta skipped, one object");
    run_basic(&object, ImagePlacement::Far, LinkOptions::default());
}

#[test]
fn rlib_with_several_codegen_units_is_linked_as_one_unit_and_runs() {
    let object = host_object(&[], true, 4);
    assert!(object.members().count() > 1, "expected several .o members");
    // Cross-member references are internal: not imports.
    let imports: Vec<_> = object.imports().map(|i| i.name).collect();
    assert!(
        imports.iter().all(|n| !n.contains("9ext_basic")),
        "intra-crate symbols leaked into imports: {imports:?}"
    );
    run_basic(&object, ImagePlacement::Far, LinkOptions::default());
}

#[test]
fn legacy_mangled_object_runs() {
    let object = host_object(
        &["-Csymbol-mangling-version=legacy", "-Zunstable-options"],
        false,
        1,
    );
    let (image, _) = run_basic(&object, ImagePlacement::Far, LinkOptions::default());
    // The fixture's own functions (one section each) carry legacy names.
    assert!(
        image
            .sections()
            .iter()
            .any(|s| s.name.contains("_ZN9ext_basic")),
        "no legacy-mangled section names"
    );
}

#[test]
fn own_symbol_table_matches_the_running_process() {
    // The load bias from /proc/self/maps, applied to the .symtab value of
    // a function of this test, gives the address the function really has.
    let all = process_domain("process", &CrateFilter::all());
    // A Rust function of this crate, found by attribution and demangling.
    let this = keep_runtime_linked as fn() -> u64 as *const () as u64;
    let found = all
        .exports()
        .find(|(n, _)| {
            format!("{:#}", rustc_demangle::demangle(n)) == "real_objects::keep_runtime_linked"
        })
        .map(|(_, e)| e.address);
    assert_eq!(found, Some(this));
    assert!(all.export_count() > 1000, "{}", all.export_count());
}

#[test]
fn public_domain_is_drawn_by_crate() {
    let public = process_domain("public", &CrateFilter::crates(HOST_PUBLIC));
    let all = process_domain("process", &CrateFilter::all());
    assert!(public.export_count() > 100);
    assert!(public.export_count() < all.export_count());
    for (name, _) in public.exports() {
        let owner = domains::attribute(name).owner;
        assert!(
            matches!(owner, domains::Owner::Crate(c) if HOST_PUBLIC.contains(&c)),
            "{name} attributed to {owner:?}"
        );
    }
    // This crate's and the domains crate's symbols are not public.
    assert!(
        public
            .exports()
            .all(|(n, _)| !format!("{:#}", rustc_demangle::demangle(n)).starts_with("domains::"))
    );
    assert!(
        all.exports()
            .any(|(n, _)| format!("{:#}", rustc_demangle::demangle(n)).starts_with("domains::"))
    );
    // The allocator shim belongs to `alloc`.
    assert!(
        public
            .exports()
            .any(|(n, _)| n.ends_with("7___rustc12___rust_alloc")),
        "__rustc::__rust_alloc should be public"
    );
    // compiler_builtins' hidden symbols are local in a linked executable
    // and still accepted.
    assert_eq!(
        public.lookup("__udivti3").map(|e| e.binding),
        Some(domains::SymbolBinding::Local)
    );
}

/// Builds a fixture that calls `symbol` (a mangled name) through an
/// `extern "Rust"` declaration.
fn caller_of(symbol: &str, tag: &str) -> Object<'static> {
    let src = format!(
        "#![no_std]\n\
         unsafe extern \"Rust\" {{\n    #[link_name = \"{symbol}\"]\n    fn target() -> u64;\n}}\n\
         #[inline(never)]\npub fn call() -> u64 {{\n    // SAFETY: test fixture.\n    unsafe {{ target() }}\n}}\n"
    );
    let path = out_dir().join(format!("caller_{tag}.rs"));
    std::fs::write(&path, src).unwrap();
    let b = Build::new(path, "caller");
    Object::parse(compile(&b), &domains::Limits::default()).unwrap()
}

#[test]
fn kernel_internal_symbol_is_refused_by_the_public_domain() {
    let all = process_domain("process", &CrateFilter::all());
    let internal = all
        .exports()
        .find(|(n, e)| {
            e.kind == domains::SymbolKind::Function
                && n.starts_with("_R")
                && domains::attribute(n).owner == domains::Owner::Crate("domains")
        })
        .map(|(n, _)| n.to_string())
        .expect("a function of the domains crate in this executable");
    let object = caller_of(&internal, "internal");
    assert!(object.imports().any(|i| i.name == internal));

    let public = host_public();
    let mut domain = Domain::create("intruder", &object).unwrap();
    let err = resolve_all(&[&public], &mut domain).unwrap_err();
    match &err {
        Error::Unresolved {
            target,
            searched,
            symbols,
        } => {
            assert_eq!(target, "intruder");
            assert_eq!(searched, &["SpinPublic".to_string()]);
            assert!(symbols.iter().any(|s| s.name == internal), "{err}");
        }
        other => panic!("{other:?}"),
    }
    let msg = err.to_string();
    assert!(
        msg.contains(&internal) && msg.contains("crate domains"),
        "{msg}"
    );

    // Linking straight against the public exports fails the same way.
    let plan = object.plan(&LinkOptions::default()).unwrap();
    let bases = plan.contiguous_bases(0x10_0000, PAGE).unwrap();
    assert!(matches!(
        plan.link(bases, &domains::Exports(&public)),
        Err(Error::Unresolved { .. })
    ));
    // With the whole process as source, it links.
    let mut domain = Domain::create("trusted", &object).unwrap();
    resolve_all(&[&all], &mut domain).unwrap();
    let image = plan.link(bases, &domain).unwrap();
    assert_eq!(image.imports().len(), 1);
    assert_eq!(Some(image.imports()[0].address), all.address_of(&internal));
}

#[test]
fn missing_runtime_symbols_are_all_listed_with_the_domain_searched() {
    // This fixture uses float formatting and Unicode case mapping that this
    // executable does not contain (the static linker dropped them).
    let b = Build::new(fixture("ext_missing.rs"), "ext_missing");
    let object = Object::parse(compile(&b), &domains::Limits::default()).unwrap();
    let public = host_public();
    let expected: BTreeSet<String> = object
        .imports()
        .filter(|i| !i.weak && public.address_of(i.name).is_none())
        .map(|i| i.name.to_string())
        .collect();
    assert!(
        !expected.is_empty(),
        "the fixture was meant to need symbols this executable lacks"
    );
    let mut domain = Domain::create("ext_missing", &object).unwrap();
    match resolve_all(&[&public], &mut domain) {
        Err(Error::Unresolved {
            target,
            searched,
            symbols,
        }) => {
            assert_eq!(target, "ext_missing");
            assert_eq!(searched, ["SpinPublic"]);
            let got: BTreeSet<String> = symbols.iter().map(|s| s.name.clone()).collect();
            assert_eq!(got, expected);
            let err = Error::Unresolved {
                target,
                searched,
                symbols,
            };
            let msg = err.to_string();
            for name in &expected {
                assert!(msg.contains(name.as_str()), "{name} missing from: {msg}");
            }
            println!("{msg}");
        }
        other => panic!("expected Unresolved, got {other:?}"),
    }
    // Nothing was bound: all-or-nothing.
    assert_eq!(domain.unresolved().count(), object.imports().count());
    assert_eq!(domain.name(), Resolver::name(&domain));
}

#[test]
fn attribution_parses_every_rust_symbol_of_this_executable() {
    // Every v0 and legacy name in a real executable must parse; where the
    // demangled form starts with a plain path (`krate::...`), the owner is
    // that path's crate. Trait impls (`<T as Trait>::f`) are checked for
    // parsing only: their crate is not visible in the demangled text.
    let all = process_domain("process", &CrateFilter::all());
    let (mut v0, mut legacy, mut checked) = (0, 0, 0);
    for (name, _) in all.exports() {
        let a = domains::attribute(name);
        let rust = match a.mangling {
            domains::Mangling::V0 => {
                v0 += 1;
                true
            }
            domains::Mangling::Legacy => {
                legacy += 1;
                true
            }
            domains::Mangling::None => false,
        };
        if !rust {
            continue;
        }
        let domains::Owner::Crate(owner) = a.owner else {
            panic!("no owner for {name} ({})", rustc_demangle::demangle(name));
        };
        let mut mentioned = Vec::new();
        assert!(
            domains::attribution::for_each_crate(name, |c| mentioned.push(c.to_string())),
            "{name}"
        );
        let pretty = format!("{:#}", rustc_demangle::demangle(name));
        if let Some((first, _)) = pretty.split_once("::")
            && !first.starts_with('<')
            && !first.contains(['<', ' ', '['])
        {
            let first = if first == "__rustc" && owner == "alloc" {
                "alloc"
            } else {
                first
            };
            assert_eq!(owner, first, "{name} = {pretty}");
            checked += 1;
        }
    }
    println!(
        "{v0} v0 and {legacy} legacy names parsed, {checked} owners checked against demangled paths"
    );
    assert!(v0 > 1000, "{v0}");
    assert!(checked > 500, "{checked}");
}

#[test]
fn placed_functions_name_the_code_the_image_runs() {
    let object = host_object(&[], false, 1);
    let public = host_public();
    let mut domain = Domain::create("ext_basic", &object).unwrap();
    resolve_all(&[&public], &mut domain).unwrap_or_else(|e| panic!("{e}"));
    let options = LinkOptions::default();
    let (mapping, image) = map_and_link(&object, &domain, ImagePlacement::Far, options);
    let plan = object.plan(&options).unwrap();
    // Without linking, the plan places the sections where the link did.
    assert_eq!(plan.placed_sections(image.bases()), image.sections());

    let functions = plan.placed_functions(image.bases());
    // The image carries the same map.
    assert_eq!(image.functions().collect::<Vec<_>>(), functions);
    assert!(
        functions.windows(2).all(|w| w[0].address <= w[1].address),
        "not sorted by address"
    );
    let text = image.segment(domains::SegmentKind::Text).range();
    assert!(functions.iter().all(|f| text.contains(&f.address)));
    let table_addr = image.symbol("FIXTURE_TABLE").expect("descriptor symbol");
    // SAFETY: as in `run_basic`: FIXTURE_TABLE in the live mapped image.
    let t: &Table = unsafe { &*(table_addr as *const Table) };
    // `fib` and `add` are private (local symbols): found all the same, at
    // the addresses the relocated function pointers hold.
    for (name, pointer) in [
        ("ext_basic::fib", t.fib as usize as u64),
        ("ext_basic::add", t.add as usize as u64),
    ] {
        let found = functions
            .iter()
            .find(|f| format!("{:#}", rustc_demangle::demangle(f.name)) == name)
            .unwrap_or_else(|| panic!("{name} not among the placed functions"));
        assert_eq!(found.address, pointer, "{name}");
        assert!(found.size > 0, "{name} has no size");
    }
    drop(mapping);
}
