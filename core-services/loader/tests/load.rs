//! The loader on real objects: every stage, every refusal, and that a
//! refused load leaves nothing behind (no mapping, no range, no domain, no
//! binding).

mod common;

use common::*;
use domains::SegmentKind;
use loader::{
    CatalogueEntry, CatalogueError, Config, LoadError, Loader, MapError, MissingReason,
    ObjectBytes, Origin, UnloadError,
};
use spindle_package::{Kind, VerifyError};
use spindle_sdk::{DescriptorError, ExtensionDescriptor};

/// Nothing of any load is left: no mapping, no range, no extension domain,
/// no extra binding on the test event.
fn assert_clean(loader: &Loader<TestPlatform>) {
    assert!(
        loader.platform().mapped.is_empty(),
        "{:x?}",
        loader.platform().mapped
    );
    assert!(
        loader.platform().reserved().is_empty(),
        "{:x?}",
        loader.platform().reserved()
    );
    let listing = loader.catalogue_listing();
    assert_eq!(listing.region_used_bytes, 0);
    assert_eq!(listing.loaded, 0);
    assert!(loader.domain_listing().extensions.is_empty());
}

fn basic() -> Vec<u8> {
    compile(&Fixture::new("basic"))
}

#[test]
fn descriptor_layout_matches_the_sdk() {
    let object = basic();
    let parsed = domains::Object::parse(&object, &domains::Limits::default()).unwrap();
    let bytes = parsed
        .section_bytes(spindle_sdk::DESCRIPTOR_SECTION)
        .unwrap();
    assert_eq!(bytes.len(), ExtensionDescriptor::SIZE);
    let descriptor = spindle_sdk::RawDescriptor::parse(bytes).unwrap();
    assert_eq!(descriptor.name, "basic");
    assert_eq!(descriptor.mismatch(&spindle_sdk::INTERFACES), None);
}

#[test]
fn a_real_object_is_verified_linked_mapped_w_xor_x_initialised_and_unloaded() {
    let mut loader = loader(vec![Item::signed("basic", basic())]);
    let report = loader.load("basic").expect("loads");

    // Linked into the region, page-aligned, segments inside the range.
    assert!(REGION.start <= report.range.start && report.range.end <= REGION.end);
    assert_eq!(report.range.start % 4096, 0);
    for segment in &report.segments {
        assert!(segment.start >= report.range.start && segment.end <= report.range.end);
    }
    assert_eq!(report.imports, 1, "public_raise");
    assert!(report.exports >= 1, "the descriptor");
    assert!(report.relocations >= 3, "call + init + exit");
    assert_eq!(report.components[0].name, "basic");
    assert_eq!(report.components[0].version, "0.1.0");
    assert!(report.cycles.total() > 0);

    // Mapped once, for its principal, with the linked segments.
    let platform = loader.platform();
    assert_eq!(platform.maps.len(), 1);
    let mapped = &platform.maps[0];
    assert_eq!(mapped.owner, "basic");
    assert_eq!(mapped.range, report.range);
    // Its range was reserved for its principal before it was linked.
    let reserved = platform.reserved();
    assert_eq!(reserved.len(), 1);
    assert_eq!(reserved[0].owner_name, "basic");
    assert_eq!(reserved[0].base..reserved[0].end(), report.range);
    assert_eq!(
        mapped.segments.iter().map(|(k, _)| *k).collect::<Vec<_>>(),
        [SegmentKind::Text, SegmentKind::ReadOnly, SegmentKind::Data]
    );
    assert_eq!(platform.calls, ["init basic"]);

    let info = loader.info("basic").unwrap();
    let loaded = info.loaded.expect("loaded");
    assert_eq!(loaded.principal, "basic");
    assert_eq!(loaded.report, report);
    assert!(loaded.depends_on.is_empty() && loaded.used_by.is_empty());
    let listing = loader.domain_listing();
    assert_eq!(listing.extensions.len(), 1);
    assert_eq!(listing.extensions[0].sources, ["SpinPublic"]);

    let unload = loader.unload("basic").expect("unloads");
    assert!(unload.exit_called);
    assert_eq!(loader.platform().calls, ["init basic", "exit basic"]);
    assert_clean(&loader);
    // And again: the range and the domain name are free.
    assert_eq!(loader.load("basic").unwrap().range, report.range);
}

#[test]
fn names_that_are_not_in_the_catalogue_or_loaded_twice_are_refused() {
    let mut loader = loader(vec![Item::signed("basic", basic())]);
    assert_eq!(
        loader.load("nothing"),
        Err(LoadError::NotFound("nothing".into()))
    );
    loader.load("basic").unwrap();
    assert_eq!(
        loader.load("basic"),
        Err(LoadError::AlreadyLoaded("basic".into()))
    );
    assert_eq!(
        loader.unload("nothing"),
        Err(UnloadError::NotLoaded("nothing".into()))
    );
}

#[test]
fn unsigned_tampered_and_foreign_objects_are_refused_before_parsing() {
    let object = basic();
    let mut tampered = Item::signed("tampered", object.clone());
    let mut loader = {
        let mut unsigned = Item::signed("unsigned", object.clone());
        unsigned.signed_by = None;
        let mut foreign = Item::signed("foreign", object.clone());
        foreign.signed_by = Some(OTHER_SECRET);
        // Signed, then changed: the recorded digest no longer matches.
        tampered.object = object.clone();
        loader(vec![unsigned, foreign])
    };
    assert_eq!(
        loader.load("unsigned"),
        Err(LoadError::Signature(VerifyError::Unsigned))
    );
    assert_eq!(
        loader.load("foreign"),
        Err(LoadError::Signature(VerifyError::BadSignature))
    );
    let digest = spindle_package::object_digest(&tampered.object);
    let signature = spindle_package::sign(&SECRET, "tampered", &tampered.object);
    let mut changed = tampered.object.clone();
    let last = changed.len() - 1;
    changed[last] ^= 1;
    loader
        .push(
            CatalogueEntry {
                name: "tampered".into(),
                version: "0.1.0".into(),
                kind: Kind::Extension,
                autoload: false,
                origin: Origin::Pushed,
                object: ObjectBytes::Owned(changed),
                digest,
                signature: Some(signature),
            },
            false,
        )
        .unwrap();
    assert_eq!(
        loader.load("tampered"),
        Err(LoadError::Signature(VerifyError::DigestMismatch))
    );
    assert!(loader.platform().maps.is_empty());
    assert_clean(&loader);
}

#[test]
fn malformed_objects_are_refused_by_the_parser() {
    let object = basic();
    let garbage: Vec<u8> = (0..4096u32)
        .map(|i| (i.wrapping_mul(2_654_435_761) >> 13) as u8)
        .collect();
    let mut loader = loader(vec![
        Item::signed("truncated", object[..object.len() / 2].to_vec()),
        Item::signed("garbage", garbage),
    ]);
    for name in ["truncated", "garbage"] {
        match loader.load(name) {
            Err(LoadError::Object(_)) => {}
            other => panic!("{name}: {other:?}"),
        }
    }
    assert_clean(&loader);
}

#[test]
fn descriptors_are_checked_before_linking() {
    let mut no_descriptor = Fixture::new("no-descriptor");
    no_descriptor.no_descriptor = true;
    let mut stale = Fixture::new("stale");
    stale.stale_interface = Some(1);
    let mut misnamed = Fixture::new("misnamed");
    misnamed.descriptor_name = Some("someone-else");
    let mut bad_magic = basic();
    let at = section_offset(&bad_magic, spindle_sdk::DESCRIPTOR_SECTION);
    bad_magic[at] = b'X';
    let mut loader = loader(vec![
        Item::signed("no-descriptor", compile(&no_descriptor)),
        Item::signed("stale", compile(&stale)),
        Item::signed("misnamed", compile(&misnamed)),
        Item::signed("bad-magic", bad_magic),
    ]);
    assert_eq!(
        loader.load("no-descriptor"),
        Err(LoadError::MissingDescriptor)
    );
    assert_eq!(
        loader.load("stale"),
        Err(LoadError::Fingerprint {
            interface: "dispatcher".into(),
            found: spindle_sdk::INTERFACES[1].1 ^ 0x5a,
            expected: Some(spindle_sdk::INTERFACES[1].1),
        })
    );
    assert_eq!(
        loader.load("misnamed"),
        Err(LoadError::NameMismatch {
            manifest: "misnamed".into(),
            descriptor: "someone-else".into(),
        })
    );
    assert_eq!(
        loader.load("bad-magic"),
        Err(LoadError::Descriptor(DescriptorError::BadMagic))
    );
    assert!(loader.platform().maps.is_empty());
    assert_clean(&loader);
}

/// File offset of a section's contents.
fn section_offset(object: &[u8], name: &str) -> usize {
    let elf = goblin::elf::Elf::parse(object).unwrap();
    let section = elf
        .section_headers
        .iter()
        .find(|s| elf.shdr_strtab.get_at(s.sh_name) == Some(name))
        .unwrap();
    section.sh_offset as usize
}

#[test]
fn each_missing_symbol_is_explained() {
    let mut internal = Fixture::new("internal");
    internal.imports_internal = true;
    let mut unknown = Fixture::new("unknown");
    unknown.imports_unknown = true;
    let mut loader = loader(vec![
        Item::signed("internal", compile(&internal)),
        Item::signed("unknown", compile(&unknown)),
    ]);
    let Err(LoadError::Unresolved { searched, symbols }) = loader.load("internal") else {
        panic!("internal loaded");
    };
    assert_eq!(searched, ["SpinPublic"]);
    assert_eq!(symbols.len(), 1);
    assert_eq!(symbols[0].name, KERNEL_SECRET);
    assert_eq!(symbols[0].owner.as_deref(), Some("spindle_kernel"));
    assert_eq!(symbols[0].reason, MissingReason::KernelInternal);
    let message = loader.load("internal").unwrap_err().to_string();
    assert!(
        message.contains("spindle_kernel::secret") && message.contains("kernel-internal symbol"),
        "{message}"
    );

    let Err(LoadError::Unresolved { symbols, .. }) = loader.load("unknown") else {
        panic!("unknown loaded");
    };
    assert_eq!(symbols[0].name, "nobody_has_this");
    assert_eq!(symbols[0].owner, None);
    assert_eq!(symbols[0].reason, MissingReason::Unknown);
    assert_clean(&loader);
}

#[test]
fn dependencies_are_typed_and_pin_the_provider() {
    let mut provider = Fixture::new("provider");
    provider.provides = true;
    let mut consumer = Fixture::new("consumer");
    consumer.consumes = true;
    let mut loader = loader(vec![
        Item::signed("provider", compile(&provider)),
        Item::signed("consumer", compile(&consumer)),
    ]);
    let Err(LoadError::Unresolved { symbols, .. }) = loader.load("consumer") else {
        panic!("consumer loaded without its provider");
    };
    assert_eq!(symbols[0].name, "provider_value");
    assert_eq!(
        symbols[0].reason,
        MissingReason::ExtensionNotLoaded("provider".into())
    );

    loader.load("provider").unwrap();
    loader.load("consumer").unwrap();
    assert_eq!(loader.dependencies("consumer"), ["provider"]);
    assert_eq!(loader.dependents("provider"), ["consumer"]);
    assert!(loader.dependents("consumer").is_empty());
    let info = loader.info("provider").unwrap().loaded.unwrap();
    assert_eq!(info.used_by, ["consumer"]);
    assert_eq!(
        loader.domain_listing().extensions[1].sources,
        ["SpinPublic", "provider"]
    );

    assert_eq!(
        loader.unload("provider"),
        Err(UnloadError::InUse {
            name: "provider".into(),
            dependents: vec!["consumer".into()],
        })
    );
    assert!(loader.is_loaded("provider"));
    loader.unload("consumer").unwrap();
    loader.unload("provider").unwrap();
    assert_clean(&loader);
}

#[test]
fn unsupported_relocations_are_refused_at_link_time() {
    let mut large = Fixture::new("large");
    large.flags = &["-Ccode-model=large", "-Crelocation-model=pic"];
    let mut loader = loader(vec![Item::signed("large", compile(&large))]);
    match loader.load("large") {
        // The parser validates every relocation, so it refuses the object
        // before a domain is created; the error names the relocation.
        Err(LoadError::Object(domains::Error::UnsupportedRelocation { type_name, .. })) => {
            assert_eq!(type_name, "R_X86_64_GOTPC64");
        }
        other => panic!("{other:?}"),
    }
    assert_clean(&loader);
}

#[test]
fn an_entry_point_outside_the_code_is_refused_before_anything_is_mapped() {
    let mut fixture = Fixture::new("data-entry");
    fixture.init_in_data = true;
    let mut loader = loader(vec![Item::signed("data-entry", compile(&fixture))]);
    match loader.load("data-entry") {
        Err(LoadError::BadEntryPoint {
            which: "init",
            address,
        }) => {
            assert!(REGION.contains(&address));
        }
        other => panic!("{other:?}"),
    }
    assert!(loader.platform().maps.is_empty(), "mapped before checking");
    assert!(loader.platform().calls.is_empty());
    assert_clean(&loader);
}

#[test]
fn a_full_region_and_a_failed_mapping_give_everything_back() {
    let mut loader = loader(vec![Item::signed("basic", basic())]);
    *loader.platform_mut() = TestPlatform::with_image_zone(REGION.start..REGION.start + 4096);
    match loader.load("basic") {
        Err(LoadError::AddressSpaceFull { bytes }) => assert!(bytes > 4096),
        other => panic!("{other:?}"),
    }
    assert_clean(&loader);

    let mut loader = common::loader(vec![Item::signed("basic", basic())]);
    loader.platform_mut().fail_map = Some(MapError::OutOfFrames { pages: 3 });
    assert_eq!(
        loader.load("basic"),
        Err(LoadError::Map(MapError::OutOfFrames { pages: 3 }))
    );
    assert_clean(&loader);
    assert!(loader.platform().calls.is_empty(), "init ran unmapped");
    // The domain name was given back too.
    loader.platform_mut().fail_map = None;
    loader.load("basic").unwrap();
}

#[test]
fn a_failed_init_revokes_its_bindings_and_unmaps() {
    let mut loader = loader(vec![Item::signed(
        "init-fails",
        compile(&Fixture::new("init-fails")),
    )]);
    loader.platform_mut().init.insert(
        "init-fails".into(),
        InitBehaviour::InstallThenFail("no device"),
    );
    test_event();
    let before = dispatcher::registry::bindings_of("Test.Loader")
        .unwrap()
        .len();
    assert_eq!(
        loader.load("init-fails"),
        Err(LoadError::InitFailed("no device".into()))
    );
    assert_eq!(
        dispatcher::registry::bindings_of("Test.Loader")
            .unwrap()
            .len(),
        before,
        "the binding init installed is still there"
    );
    assert_eq!(loader.platform().maps.len(), 1);
    assert_clean(&loader);
}

#[test]
fn memory_a_raise_still_uses_is_retained_then_collected() {
    let mut loader = loader(vec![Item::signed("held", compile(&Fixture::new("held")))]);
    loader.load("held").unwrap();
    loader.platform_mut().stall_release = true;
    match loader.unload("held") {
        Err(
            e @ UnloadError::BindingsStillAlive {
                revoked: 0,
                alive: 0,
                ..
            },
        ) => assert_eq!(
            e.to_string(),
            "'held' unloaded (0 binding(s) revoked) but 0 handler object(s) are still referenced by raises in progress; memory kept"
        ),
        other => panic!("{other:?}"),
    }
    let listing = loader.catalogue_listing();
    assert_eq!(listing.retained, ["held"]);
    assert_eq!(listing.loaded, 0);
    assert!(
        listing.region_used_bytes > 0,
        "a retained image keeps its range"
    );
    assert_eq!(loader.platform().mapped.len(), 1);
    loader.platform_mut().stall_release = false;
    assert_eq!(loader.collect_retained(), 1);
    assert!(loader.catalogue_listing().retained.is_empty());
    assert_clean(&loader);
}

#[test]
fn the_next_load_collects_memory_retained_by_an_unload() {
    let mut loader = loader(vec![
        Item::signed("held", compile(&Fixture::new("held"))),
        Item::signed("next", compile(&Fixture::new("next"))),
    ]);
    loader.load("held").unwrap();
    loader.platform_mut().stall_release = true;
    assert!(matches!(
        loader.unload("held"),
        Err(UnloadError::BindingsStillAlive { .. })
    ));
    assert!(loader.has_retained());
    loader.platform_mut().stall_release = false;
    loader.load("next").unwrap();
    assert!(!loader.has_retained(), "the load collected it");
    assert_eq!(loader.catalogue_listing().retained.len(), 0);
    assert_eq!(loader.platform().mapped.len(), 1, "only `next` is mapped");
    loader.unload("next").unwrap();
    assert_clean(&loader);
}

#[test]
fn a_failed_extension_is_unloaded_without_its_exit() {
    let mut loader = loader(vec![Item::signed(
        "crashed",
        compile(&Fixture::new("crashed")),
    )]);
    loader.load("crashed").unwrap();
    let report = loader.unload_failed("crashed").unwrap();
    assert!(!report.exit_called);
    assert_eq!(loader.platform().calls, ["init crashed"]);
    assert_clean(&loader);
}

#[test]
fn an_extension_cannot_take_a_kernel_domain_name() {
    let mut loader = loader(vec![Item::signed(
        "SpinPublic",
        compile(&Fixture::new("SpinPublic")),
    )]);
    assert_eq!(
        loader.load("SpinPublic"),
        Err(LoadError::Domain(domains::Error::DomainExists {
            domain: "SpinPublic".into()
        }))
    );
    assert!(loader.platform().maps.is_empty());
    assert_clean(&loader);
}

#[test]
fn the_number_of_loaded_extensions_is_bounded() {
    let config = Config {
        max_loaded: 1,
        ..config()
    };
    let mut loader = loader_with(
        config,
        vec![
            Item::signed("one", compile(&Fixture::new("one"))),
            Item::signed("two", compile(&Fixture::new("two"))),
        ],
    );
    loader.load("one").unwrap();
    assert_eq!(loader.load("two"), Err(LoadError::TooMany { max: 1 }));
}

#[test]
fn unwind_tables_are_handed_to_the_platform_for_registration() {
    let mut fixture = Fixture::new("unwinds");
    fixture.flags = &["-Cforce-unwind-tables=yes"];
    let mut loader = loader(vec![Item::signed("unwinds", compile(&fixture))]);
    let report = loader.load("unwinds").unwrap();
    assert_eq!(report.unwind_tables, 1);
    let tables = &loader.platform().maps[0].unwind_tables;
    assert_eq!(tables.len(), 1);
    assert!(report.segments[1].contains(&tables[0]), "in read-only data");
}

#[test]
fn a_panic_in_init_fails_the_load_and_one_in_exit_does_not_stop_the_unload() {
    let mut loader = loader(vec![
        Item::signed("panics", compile(&Fixture::new("panics"))),
        Item::signed("exit-panics", compile(&Fixture::new("exit-panics"))),
    ]);
    loader.platform_mut().init.insert(
        "panics".into(),
        InitBehaviour::InstallThenPanic("deliberate"),
    );
    test_event();
    let before = dispatcher::registry::bindings_of("Test.Loader")
        .unwrap()
        .len();
    let error = loader.load("panics").unwrap_err();
    assert_eq!(error, LoadError::InitPanicked(panic("deliberate")));
    assert_eq!(
        error.to_string(),
        "init panicked at extensions/x/src/lib.rs:7:5: deliberate"
    );
    assert_eq!(
        dispatcher::registry::bindings_of("Test.Loader")
            .unwrap()
            .len(),
        before
    );
    assert_clean(&loader);

    loader.load("exit-panics").unwrap();
    loader.platform_mut().exit_panics = Some("in exit");
    let report = loader.unload("exit-panics").unwrap();
    assert_eq!(report.exit_panicked, Some(panic("in exit")));
    assert_clean(&loader);
}

#[test]
fn domains_are_listed_as_data_for_the_shell() {
    let mut loader = loader(vec![Item::signed("basic", basic())]);
    let listing = loader.domain_listing();
    assert_eq!(listing.kernel_exports, 3);
    assert_eq!(listing.runtime_exports, 1, "memset");
    assert_eq!(listing.interface_exports, 1, "dispatcher::event::raise");
    assert_eq!(listing.spin_public_exports, 2);

    let public = loader.domain_exports("SpinPublic", None).unwrap();
    assert_eq!(
        public.symbols,
        [
            ("dispatcher::event::raise".to_string(), RAISE_ADDRESS),
            ("memset".to_string(), MEMSET_ADDRESS)
        ]
    );
    let runtime = loader.domain_exports("RustRuntime", None).unwrap();
    assert_eq!(runtime.symbols, [("memset".to_string(), MEMSET_ADDRESS)]);
    let filtered = loader.domain_exports("Kernel", Some("secret")).unwrap();
    assert_eq!(
        filtered.symbols,
        [("spindle_kernel::secret".to_string(), SECRET_ADDRESS)]
    );
    assert_eq!(loader.domain_exports("basic", None), None, "not loaded");
    loader.load("basic").unwrap();
    let own = loader.domain_exports("basic", Some("DESCRIPTOR")).unwrap();
    assert_eq!(own.symbols.len(), 1);
    let report = loader.info("basic").unwrap().loaded.unwrap().report;
    let descriptor = own.symbols[0].1;
    assert!(report.range.contains(&descriptor));
    assert!(
        !report.segments[0].contains(&descriptor),
        "the descriptor is data, not code"
    );
}

#[test]
fn pushed_objects_join_the_catalogue_and_replacing_a_loaded_one_is_refused() {
    let mut loader = loader(vec![Item::signed("basic", basic())]);
    let object = compile(&Fixture::new("pushed"));
    let entry = CatalogueEntry {
        name: "pushed".into(),
        version: "0.2.0".into(),
        kind: Kind::Extension,
        autoload: false,
        origin: Origin::Pushed,
        digest: spindle_package::object_digest(&object),
        signature: Some(spindle_package::sign(&SECRET, "pushed", &object)),
        object: ObjectBytes::Owned(object),
    };
    assert_eq!(loader.push(entry.clone(), false), Ok(None));
    assert_eq!(
        loader.push(entry.clone(), false),
        Err(CatalogueError::Exists("pushed".into()))
    );
    loader.load("pushed").unwrap();
    let rows = loader.catalogue_listing().rows;
    let row = rows.iter().find(|r| r.name == "pushed").unwrap();
    assert_eq!(row.origin, Origin::Pushed);
    assert!(row.loaded_at.is_some());
    assert_eq!(
        loader.push(entry.clone(), true),
        Err(CatalogueError::Loaded("pushed".into()))
    );
    loader.unload("pushed").unwrap();
    assert_eq!(loader.push(entry.clone(), true), Ok(Some(entry)));
}
