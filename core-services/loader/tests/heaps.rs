//! Each extension's heap: the loader takes one from the platform before
//! resolving, binds the extension's allocator imports to it (a domain
//! searched before `SpinPublic`), reports it in `ext info`, gives it back at
//! unload or when the load fails, and refuses a load when none is free.

mod common;

use common::*;
use extension_heap::{Account, Released, SlotsFull};
use loader::LoadError;

fn allocating(name: &'static str) -> Item {
    Item::signed(
        name,
        compile(&Fixture {
            allocates: true,
            ..Fixture::new(name)
        }),
    )
}

#[test]
fn allocator_imports_bind_to_the_extensions_own_heap_until_unload() {
    let mut loader = loader_with_heaps(2, vec![allocating("alloc")]);
    let report = loader.load("alloc").expect("loads");
    assert_eq!(report.imports, 2, "public_raise and __rust_alloc");
    // SpinPublic exports __rust_alloc too (see the next test): the heap's
    // domain, searched first, took it, and SpinPublic the rest.
    let mut sources = loader.domain_listing().extensions[0].sources.clone();
    sources.sort();
    assert_eq!(sources, ["SpinPublic", "alloc.heap"]);
    let info = loader.info("alloc").unwrap().loaded.unwrap();
    assert_eq!(info.heap, Some(Account::new(4 << 20)));
    let unloaded = loader.unload("alloc").unwrap();
    assert_eq!(unloaded.heap, Some(Released::Freed));
    assert_eq!(
        loader.platform().heap_calls,
        ["take alloc 0", "release alloc 0"]
    );
}

#[test]
fn without_heaps_the_allocator_import_resolves_against_the_kernel() {
    let mut loader = loader_with_heaps(0, vec![allocating("alloc")]);
    loader.load("alloc").expect("loads");
    assert_eq!(
        loader.domain_listing().extensions[0].sources,
        ["SpinPublic"]
    );
    assert_eq!(loader.unload("alloc").unwrap().heap, None);
}

#[test]
fn a_load_is_refused_when_every_heap_is_taken_and_a_failed_load_gives_its_heap_back() {
    let mut loader = loader_with_heaps(
        1,
        vec![
            allocating("first"),
            allocating("second"),
            allocating("third"),
        ],
    );
    loader.load("first").expect("loads");
    assert_eq!(
        loader.load("second").unwrap_err(),
        LoadError::NoHeap(SlotsFull { slots: 1, kept: 0 })
    );
    assert_eq!(
        LoadError::NoHeap(SlotsFull { slots: 1, kept: 0 }).to_string(),
        "no heap for it: all 1 extension heaps are in use (0 kept for unloaded extensions)"
    );
    assert!(!loader.is_loaded("second"));
    assert_eq!(loader.platform().mapped.len(), 1, "only first's image");
    loader.unload("first").unwrap();
    loader
        .platform_mut()
        .init
        .insert("third".into(), InitBehaviour::InstallThenFail("no"));
    assert!(matches!(
        loader.load("third"),
        Err(LoadError::InitFailed(_))
    ));
    assert_eq!(
        loader.platform().heap_calls,
        [
            "take first 0",
            "release first 0",
            "take third 0",
            "release third 0"
        ]
    );
    assert!(loader.platform().heaps.iter().all(Option::is_none));
}

#[test]
fn a_heap_kept_at_unload_is_reported() {
    let mut loader = loader_with_heaps(2, vec![allocating("leaky")]);
    loader.platform_mut().heaps_leak = true;
    loader.load("leaky").expect("loads");
    assert_eq!(
        loader.unload("leaky").unwrap().heap,
        Some(Released::Kept {
            bytes: 4000,
            blocks: 2
        })
    );
}
