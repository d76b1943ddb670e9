//! Arbitrary bytes as one extension object (an ELF relocatable object or a
//! bundle), through the whole host-side load pipeline and the unload.
//! Seeds: the signed objects of the built ramdisk (`seeds`).
#![no_main]

use libfuzzer_sys::fuzz_target;
use loader::Catalogue;
use spindle_fuzz::{descriptor_name, entry, load_all_then_unload, loader, stand_in_kernel};

fuzz_target!(|object: &[u8]| {
    let name = descriptor_name(object, "fuzzed");
    let mut catalogue = Catalogue::with_capacity(1);
    catalogue
        .push(entry(&name, object), false)
        .expect("an empty catalogue has room");
    let mut loader = loader(stand_in_kernel([object]), catalogue);
    load_all_then_unload(&mut loader, &[name]);
});
