//! Link-only tests of fixtures built for the kernel's target,
//! `x86_64-unknown-none`, with every code-generation variant the build
//! could use: each must link, and the relocation kinds seen are reported.

mod common;

use std::collections::BTreeMap;

use common::*;
use domains::{
    Error, FnResolver, Limits, LinkOptions, LinkedImage, Object, SegmentBases, SegmentKind,
};

const TARGET: &str = "x86_64-unknown-none";
const MAGIC: u64 = 0x5350_494e_444c_4521;

/// A stand-in for the kernel's symbol table: every import gets a distinct
/// 16-byte-aligned address starting at `base`.
fn fake_kernel(object: &Object<'_>, base: u64) -> BTreeMap<String, u64> {
    object
        .imports()
        .enumerate()
        .map(|(i, imp)| (imp.name.to_string(), base + 16 * i as u64))
        .collect()
}

fn build(flags: &'static [&'static str], rlib: bool) -> &'static [u8] {
    let mut b = Build::new(fixture("ext_basic.rs"), "ext_basic");
    b.target = Some(TARGET);
    b.flags = flags;
    b.rlib = rlib;
    compile(&b)
}

/// Links `bytes` with text at `text_base` and imports at `kernel_base`,
/// then checks the descriptor: its magic and every function pointer in it
/// (filled by R_X86_64_64) point into the text segment.
fn link_checked(bytes: &[u8], text_base: u64, kernel_base: u64) -> LinkedImage {
    let object = Object::parse(bytes, &Limits::default()).expect("parse");
    let kernel = fake_kernel(&object, kernel_base);
    let plan = object.plan(&LinkOptions::default()).unwrap();
    let bases = plan.contiguous_bases(text_base, PAGE).unwrap();
    let resolver = FnResolver::new("kernel", |n| kernel.get(n).copied());
    let image = plan
        .link(bases, &resolver)
        .unwrap_or_else(|e| panic!("{e}"));
    let table = image.symbol("FIXTURE_TABLE").expect("descriptor");
    assert_eq!(image.read_u64(table).unwrap(), MAGIC);
    let text = image.segment(SegmentKind::Text).range();
    for i in 1..=8 {
        let f = image.read_u64(table + 8 * i).unwrap();
        assert!(
            text.contains(&f),
            "fn pointer {i} = {f:#x} outside text {text:x?}"
        );
    }
    // Every import the image records got the fake kernel's address.
    for imp in image.imports() {
        assert_eq!(Some(&imp.address), kernel.get(&imp.name));
    }
    image
}

fn kinds(image: &LinkedImage) -> Vec<(&'static str, u32)> {
    image
        .stats()
        .relocations()
        .filter(|(_, n)| *n > 0)
        .map(|(k, n)| (k.name(), n))
        .collect()
}

/// Top 2 GiB, where the kernel code model lives.
const HIGH_TEXT: u64 = 0xffff_ffff_c000_0000;
const HIGH_KERNEL: u64 = 0xffff_ffff_8010_0000;
/// The higher half, but outside the top 2 GiB (a PIE kernel anywhere).
const HIGHER_HALF_TEXT: u64 = 0xffff_8000_4000_0000;
const HIGHER_HALF_KERNEL: u64 = 0xffff_8000_0020_0000;

#[test]
fn every_relocation_kind_of_the_kernel_target_links() {
    let variants: &[(&str, &'static [&'static str], bool, u64, u64)] = &[
        (
            "pic (default)",
            &[],
            false,
            HIGHER_HALF_TEXT,
            HIGHER_HALF_KERNEL,
        ),
        ("pic, far kernel", &[], false, HIGHER_HALF_TEXT, HIGH_KERNEL),
        ("pic rlib", &[], true, HIGH_TEXT, HIGH_KERNEL),
        (
            "pic, relaxed GOTPCRELX",
            &["-Zrelax-elf-relocations=yes"],
            false,
            HIGH_TEXT,
            HIGH_KERNEL,
        ),
        (
            "pic, -Zplt=yes",
            &["-Zplt=yes"],
            false,
            HIGHER_HALF_TEXT,
            HIGH_KERNEL,
        ),
        (
            "static, kernel code model",
            &["-Crelocation-model=static"],
            false,
            HIGH_TEXT,
            HIGH_KERNEL,
        ),
        (
            "static, small code model",
            &["-Crelocation-model=static", "-Ccode-model=small"],
            false,
            0x40_0000,
            0x1000_0000,
        ),
    ];
    let mut seen: BTreeMap<&str, u32> = BTreeMap::new();
    for (name, flags, rlib, text, kernel) in variants {
        let image = link_checked(build(flags, *rlib), *text, *kernel);
        let k = kinds(&image);
        println!(
            "{name:28} {k:?} got={} stubs={}/{} relaxed={}",
            image.stats().got_slots,
            image.stats().stubs_used,
            image.stats().stubs_reserved,
            image.stats().relaxed
        );
        for (kind, n) in k {
            *seen.entry(kind).or_default() += n;
        }
    }
    println!("all kinds seen for {TARGET}: {seen:?}");
    for want in [
        "R_X86_64_64",
        "R_X86_64_PC32",
        "R_X86_64_PLT32",
        "R_X86_64_GOTPCREL",
        "R_X86_64_GOTPCRELX",
        "R_X86_64_REX_GOTPCRELX",
        "R_X86_64_32S",
    ] {
        assert!(seen.contains_key(want), "{want} never seen: {seen:?}");
    }
}

#[test]
fn static_kernel_model_needs_the_top_two_gigabytes() {
    // 32S fields hold sign-extended addresses: linking the static
    // kernel-model object below the top 2 GiB must overflow, naming the
    // relocation.
    let bytes = build(&["-Crelocation-model=static"], false);
    let object = Object::parse(bytes, &Limits::default()).unwrap();
    let kernel = fake_kernel(&object, HIGH_KERNEL);
    let plan = object.plan(&LinkOptions::default()).unwrap();
    let bases = plan.contiguous_bases(HIGHER_HALF_TEXT, PAGE).unwrap();
    let resolver = FnResolver::new("kernel", |n| kernel.get(n).copied());
    match plan.link(bases, &resolver) {
        Err(Error::RelocationOverflow { type_name, .. }) => {
            assert!(
                type_name == "R_X86_64_32S" || type_name == "R_X86_64_PC32",
                "{type_name}"
            );
        }
        other => panic!("expected an overflow, got {:?}", other.map(|_| ())),
    }
}

#[test]
fn large_code_model_is_refused_with_the_relocation_named() {
    // The large code model addresses the GOT with GOTOFF64/GOTPC64, which
    // this linker does not implement: the error must say so.
    let bytes = build(&["-Ccode-model=large"], false);
    match Object::parse(bytes, &Limits::default()) {
        Err(Error::UnsupportedRelocation {
            type_name, section, ..
        }) => {
            assert!(type_name.starts_with("R_X86_64_"), "{type_name}");
            assert!(!section.is_empty());
            println!("large code model: {type_name} in {section}");
        }
        Ok(object) => {
            // If rustc ever emits only supported kinds here, it must link.
            let kernel = fake_kernel(&object, HIGH_KERNEL);
            let plan = object.plan(&LinkOptions::default()).unwrap();
            let bases: SegmentBases = plan.contiguous_bases(HIGH_TEXT, PAGE).unwrap();
            let resolver = FnResolver::new("kernel", |n| kernel.get(n).copied());
            plan.link(bases, &resolver).unwrap();
        }
        Err(other) => panic!("{other}"),
    }
}
