//! Arbitrary bytes as a boot ramdisk: the manifest's parser, each entry's
//! signature check (which must refuse any entry the fuzzer changed), then
//! every entry loaded in manifest order with the check skipped — so
//! extensions that import from one another meet — and unloaded.
#![no_main]

use libfuzzer_sys::fuzz_target;
use loader::{Catalogue, CatalogueEntry, ObjectBytes, Origin};
use spindle_fuzz::{load_all_then_unload, loader, stand_in_kernel};
use spindle_package::Ramdisk;

/// The key the build signs the seeds' ramdisk with is unknown here: any
/// key will do, verification runs for its parsing and refusals.
const PUBLIC_KEY: [u8; 32] = [0x5a; 32];

fuzz_target!(|bytes: &[u8]| {
    let Ok(ramdisk) = Ramdisk::parse(bytes) else {
        return;
    };
    let mut catalogue = Catalogue::with_capacity(ramdisk.entries().len());
    for e in ramdisk.entries() {
        let _ = e.verify(&PUBLIC_KEY);
        let entry = CatalogueEntry {
            name: e.name.to_string(),
            version: e.version.to_string(),
            kind: e.kind,
            autoload: e.autoload,
            origin: Origin::Ramdisk,
            object: ObjectBytes::Owned(e.object.to_vec()),
            digest: e.digest,
            signature: e.signature,
        };
        catalogue
            .push(entry, false)
            .expect("names are unique and room was made");
    }
    let names: Vec<String> = catalogue.entries().iter().map(|e| e.name.clone()).collect();
    let kernel = stand_in_kernel(catalogue.entries().iter().map(|e| e.object()));
    let mut loader = loader(kernel, catalogue);
    load_all_then_unload(&mut loader, &names);
});
