//! Domain operations: create, resolve, combine, the registry, create-from-module.

use alloc::string::ToString;
use alloc::vec::Vec;

use super::*;

/// An extension-like object: exports `ext_fn`, imports the given names.
fn ext_object(exported: &str, imports: &[&str]) -> Vec<u8> {
    let mut b = ObjBuilder::new();
    let t = b.text(".text.e", &[0xc3; 16]);
    let d = b.data(".data.e", &alloc::vec![0; 8 * imports.len().max(1)]);
    b.global_fn(exported, t, 0);
    for (i, n) in imports.iter().enumerate() {
        let s = b.undefined(n);
        b.reloc(d, 8 * i as u64, s, R_64, 0);
    }
    b.build()
}

#[test]
fn create_lists_exports_and_imports() {
    let obj = ext_object("ext_fn", &["memcpy", "kfn"]);
    let object = Object::parse(&obj, &Limits::default()).unwrap();
    let d = Domain::create("ext", &object).unwrap();
    assert_eq!(d.name(), "ext");
    assert!(!d.is_placed());
    assert_eq!(d.export_count(), 1);
    assert!(d.lookup("ext_fn").is_some());
    assert_eq!(d.address_of("ext_fn"), None, "not placed yet");
    assert_eq!(d.unresolved().collect::<Vec<_>>(), ["memcpy", "kfn"]);
    assert!(!d.is_resolved());
}

#[test]
fn resolve_is_partial_and_resolve_all_is_all_or_nothing() {
    let obj = ext_object("ext_fn", &["memcpy", "kfn", "other"]);
    let object = Object::parse(&obj, &Limits::default()).unwrap();
    let public = Domain::from_exports("SpinPublic", [("memcpy", 0x1000)]);
    let internal = Domain::from_exports("KernelInternal", [("kfn", 0x2000)]);

    // all-or-nothing: two names missing, both listed, nothing bound.
    let mut d = Domain::create("ext", &object).unwrap();
    let err = resolve_all(&[&public], &mut d).unwrap_err();
    match &err {
        Error::Unresolved {
            target,
            searched,
            symbols,
        } => {
            assert_eq!(target, "ext");
            assert_eq!(searched, &["SpinPublic".to_string()]);
            let names: Vec<_> = symbols.iter().map(|s| s.name.as_str()).collect();
            assert_eq!(names, ["kfn", "other"]);
        }
        other => panic!("{other:?}"),
    }
    let msg = err.to_string();
    assert!(
        msg.contains("SpinPublic") && msg.contains("`kfn`") && msg.contains("`other`"),
        "{msg}"
    );
    assert_eq!(d.unresolved().count(), 3, "nothing was bound");

    // partial: binds what the source has.
    let stats = resolve(&public, &mut d).unwrap();
    assert_eq!(
        stats,
        ResolveStats {
            resolved: 1,
            unresolved: 2
        }
    );
    let stats = resolve(&internal, &mut d).unwrap();
    assert_eq!(
        stats,
        ResolveStats {
            resolved: 1,
            unresolved: 1
        }
    );
    assert_eq!(
        d.sources().collect::<Vec<_>>(),
        ["SpinPublic", "KernelInternal"]
    );
    assert!(d.depends_on(public.id()) && d.depends_on(internal.id()));

    // Linking fails while `other` is unresolved, naming it and the sources.
    let plan = object.plan(&LinkOptions::default()).unwrap();
    match plan.link(BASES, &d) {
        Err(Error::Unresolved {
            target,
            searched,
            symbols,
        }) => {
            assert_eq!(target, "ext");
            assert_eq!(searched, ["SpinPublic", "KernelInternal"]);
            assert_eq!(symbols.len(), 1);
            assert_eq!(symbols[0].name, "other");
        }
        other => panic!("{other:?}"),
    }

    // unresolve is the inverse of resolve.
    assert_eq!(unresolve(&internal, &mut d), 1);
    assert!(!d.depends_on(internal.id()));
    assert_eq!(d.sources().collect::<Vec<_>>(), ["SpinPublic"]);
    assert_eq!(d.unresolved().collect::<Vec<_>>(), ["kfn", "other"]);

    // With every name available, resolve_all binds all and link works.
    let rest = Domain::from_exports("rest", [("other", 0x3000), ("kfn", 0x2000)]);
    let stats = resolve_all(&[&public, &rest], &mut d).unwrap();
    assert_eq!(
        stats,
        ResolveStats {
            resolved: 2,
            unresolved: 0
        }
    );
    assert!(d.is_resolved());
    let img = plan.link(BASES, &d).unwrap();
    let data = section_addr(&img, ".data.e");
    assert_eq!(field64(&img, data), 0x1000);
    assert_eq!(field64(&img, data + 8), 0x2000);
    assert_eq!(field64(&img, data + 16), 0x3000);
}

#[test]
fn placed_extension_domains_resolve_other_extensions() {
    // counter exports `counter_get`; client imports it.
    let counter_bytes = ext_object("counter_get", &[]);
    let counter_obj = Object::parse(&counter_bytes, &Limits::default()).unwrap();
    let mut counter = Domain::create("counter", &counter_obj).unwrap();
    let client_bytes = ext_object("client_main", &["counter_get"]);
    let client_obj = Object::parse(&client_bytes, &Limits::default()).unwrap();
    let mut client = Domain::create("client", &client_obj).unwrap();

    // Not placed yet: cannot be a source.
    assert_eq!(
        resolve(&counter, &mut client),
        Err(Error::NotPlaced {
            domain: "counter".to_string()
        })
    );
    let cimg = counter_obj
        .plan(&LinkOptions::default())
        .unwrap()
        .link(BASES, &counter)
        .unwrap();
    counter.place(&cimg).unwrap();
    assert_eq!(counter.address_of("counter_get"), Some(BASES.text));
    resolve_all(&[&counter], &mut client).unwrap();
    let other_bases = SegmentBases {
        text: 0x50_0000,
        rodata: 0x60_0000,
        data: 0x70_0000,
    };
    let img = client_obj
        .plan(&LinkOptions::default())
        .unwrap()
        .link(other_bases, &client)
        .unwrap();
    assert_eq!(field64(&img, other_bases.data), BASES.text);
}

#[test]
fn combine_unions_exports_and_refuses_conflicts() {
    let a = Domain::from_exports("a", [("x", 1), ("shared", 7)]);
    let b = Domain::from_exports("b", [("y", 2), ("shared", 7)]);
    let c = combine("ab", &a, &b).unwrap();
    assert_eq!(c.name(), "ab");
    assert_eq!(c.export_count(), 3);
    assert_eq!(c.address_of("x"), Some(1));
    assert_eq!(c.address_of("y"), Some(2));
    assert_eq!(c.address_of("shared"), Some(7));
    assert_ne!(c.id(), a.id());
    let bad = Domain::from_exports("bad", [("x", 99)]);
    assert_eq!(
        combine("abad", &a, &bad).unwrap_err(),
        Error::DuplicateExport {
            symbol: "x".to_string(),
            first: "a".to_string(),
            second: "bad".to_string()
        }
    );
    // Combining needs placed domains.
    let obj = ext_object("e", &[]);
    let object = Object::parse(&obj, &Limits::default()).unwrap();
    let unplaced = Domain::create("unplaced", &object).unwrap();
    assert!(matches!(
        combine("x", &a, &unplaced),
        Err(Error::NotPlaced { .. })
    ));
}

#[test]
fn registry_refuses_to_destroy_a_domain_in_use() {
    let mut reg = DomainRegistry::new();
    reg.insert(Domain::from_exports("SpinPublic", [("memcpy", 0x10)]))
        .unwrap();
    let obj = ext_object("e", &["memcpy"]);
    let object = Object::parse(&obj, &Limits::default()).unwrap();
    reg.insert(Domain::create("ext", &object).unwrap()).unwrap();
    assert!(matches!(
        reg.insert(Domain::from_exports("ext", [])),
        Err(Error::DomainExists { .. })
    ));
    assert_eq!(
        reg.resolve("SpinPublic", "ext").unwrap(),
        ResolveStats {
            resolved: 1,
            unresolved: 0
        }
    );
    assert_eq!(reg.dependents("SpinPublic"), ["ext"]);
    match reg.destroy("SpinPublic") {
        Err(Error::DomainInUse { domain, dependents }) => {
            assert_eq!(domain, "SpinPublic");
            assert_eq!(dependents, ["ext"]);
        }
        other => panic!("{other:?}"),
    }
    assert_eq!(reg.unresolve("SpinPublic", "ext").unwrap(), 1);
    assert!(reg.dependents("SpinPublic").is_empty());
    let d = reg.destroy("SpinPublic").unwrap();
    assert_eq!(d.name(), "SpinPublic");
    assert!(reg.get("SpinPublic").is_none());
    assert!(matches!(
        reg.resolve("SpinPublic", "ext"),
        Err(Error::NoSuchDomain { .. })
    ));
    // combine through the registry.
    reg.insert(Domain::from_exports("a", [("x", 1)])).unwrap();
    reg.insert(Domain::from_exports("b", [("y", 2)])).unwrap();
    reg.combine("ab", "a", "b").unwrap();
    assert_eq!(reg.get("ab").unwrap().export_count(), 2);
    assert_eq!(reg.len(), 4);
    reg.destroy("ext").unwrap().destroy();
    assert_eq!(reg.len(), 3);
}

#[test]
fn resolve_all_prefers_earlier_sources_and_flags_ambiguity() {
    let obj = ext_object("e", &["dup"]);
    let object = Object::parse(&obj, &Limits::default()).unwrap();
    let first = Domain::from_exports("first", [("dup", 1)]);
    let second = Domain::from_exports("second", [("dup", 2)]);
    let mut d = Domain::create("e", &object).unwrap();
    resolve_all(&[&first, &second], &mut d).unwrap();
    assert_eq!(d.imports().next().unwrap().binding.unwrap().address, 1);
    assert_eq!(
        d.imports().next().unwrap().binding.unwrap().source,
        first.id()
    );
}

#[test]
fn create_from_module_reads_symtab_with_bias_and_flags_ambiguous_names() {
    // A stand-in "kernel" ELF: two local `helper`s at different addresses,
    // a global, a local Rust symbol of a public crate, an internal one.
    let mut b = ObjBuilder::new();
    let t = b.text(".text", &[0xc3; 64]);
    b.symbol("helper", t, 0x10, STB_LOCAL, STT_FUNC);
    b.symbol("helper", t, 0x20, STB_LOCAL, STT_FUNC);
    b.symbol("memcpy", t, 0x30, STB_LOCAL, STT_FUNC);
    b.symbol("_RNvNtCs1_4core3fmt5write", t, 0x34, STB_LOCAL, STT_FUNC);
    b.symbol("_RNvCs2_12kernel_image4boot", t, 0x38, STB_GLOBAL, STT_FUNC);
    b.section_symbol(t);
    let elf = b.build();
    let bias = 0xffff_8000_0000_0000;
    let kernel = Domain::create_from_module("kernel", &elf, bias, &CrateFilter::all()).unwrap();
    // The borrowing variant sees the same table.
    let leaked: &'static [u8] = alloc::boxed::Box::leak(elf.clone().into_boxed_slice());
    let borrowed =
        Domain::create_from_static_module("kernel", leaked, bias, &CrateFilter::all()).unwrap();
    let a: Vec<_> = kernel.exports().map(|(n, e)| (n.to_string(), *e)).collect();
    let b: Vec<_> = borrowed
        .exports()
        .map(|(n, e)| (n.to_string(), *e))
        .collect();
    assert_eq!(a, b);
    assert!(borrowed.memory() < kernel.memory());
    assert_eq!(kernel.export_count(), 4);
    assert!(kernel.lookup("helper").unwrap().ambiguous);
    assert_eq!(kernel.address_of("helper"), None);
    assert_eq!(kernel.address_of("memcpy"), Some(bias + 0x30));
    assert_eq!(
        kernel.lookup("memcpy").unwrap().binding,
        SymbolBinding::Local
    );
    let public = Domain::create_from_module(
        "SpinPublic",
        &elf,
        bias,
        &CrateFilter::crates(&["core", "compiler_builtins"]),
    )
    .unwrap();
    let mut names: Vec<_> = public.exports().map(|(n, _)| n.to_string()).collect();
    names.sort();
    assert_eq!(names, ["_RNvNtCs1_4core3fmt5write", "memcpy"]);

    let obj = ext_object("e", &["helper", "memcpy", "_RNvCs2_12kernel_image4boot"]);
    let object = Object::parse(&obj, &Limits::default()).unwrap();
    let mut d = Domain::create("e", &object).unwrap();
    match resolve_all(&[&public, &kernel], &mut d) {
        Err(Error::Unresolved {
            symbols, searched, ..
        }) => {
            assert_eq!(searched, ["SpinPublic", "kernel"]);
            assert_eq!(
                symbols,
                [UnresolvedSymbol {
                    name: "helper".to_string(),
                    ambiguous: true
                }]
            );
        }
        other => panic!("{other:?}"),
    }
    // Against the public domain alone, the internal symbol is missing too.
    match resolve_all(&[&public], &mut d) {
        Err(Error::Unresolved { symbols, .. }) => {
            let names: Vec<_> = symbols.iter().map(|s| s.name.as_str()).collect();
            assert_eq!(names, ["helper", "_RNvCs2_12kernel_image4boot"]);
        }
        other => panic!("{other:?}"),
    }
    // A stripped module has no symbol table.
    let mut stripped = ObjBuilder::new().build();
    let symtab = section_index(&stripped, ".symtab");
    set_shdr(&mut stripped, symtab, 4, 4, 1); // SHT_PROGBITS
    assert_eq!(
        Domain::create_from_module("k", &stripped, 0, &CrateFilter::all()).unwrap_err(),
        Error::NoSymbolTable
    );
}
