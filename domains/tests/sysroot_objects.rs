//! The toolchain's own rlibs (core, alloc, compiler_builtins) for the host
//! and for `x86_64-unknown-none`: large real objects that must parse, plan
//! and link (against a stand-in kernel), and whose every Rust symbol must be
//! attributable to a crate.

mod common;

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::process::Command;

use common::*;
use domains::{FnResolver, Limits, LinkOptions, Mangling, Object, Owner, attribute};

fn sysroot_rlib(target: &str, krate: &str) -> Vec<u8> {
    let out = Command::new(rustc())
        .current_dir(env!("CARGO_MANIFEST_DIR"))
        .args(["--print", "sysroot"])
        .output()
        .expect("rustc --print sysroot");
    let root = PathBuf::from(String::from_utf8(out.stdout).unwrap().trim());
    let dir = root.join("lib/rustlib").join(target).join("lib");
    let prefix = format!("lib{krate}-");
    let path = std::fs::read_dir(&dir)
        .unwrap()
        .map(|e| e.unwrap().path())
        .find(|p| {
            let n = p.file_name().unwrap().to_string_lossy();
            n.starts_with(&prefix) && n.ends_with(".rlib")
        })
        .unwrap_or_else(|| panic!("no {prefix}*.rlib in {}", dir.display()));
    std::fs::read(path).unwrap()
}

fn big_limits() -> Limits {
    Limits {
        max_input_size: 1 << 30,
        max_image_size: 1 << 30,
        max_section_size: 1 << 28,
        max_objects: 4096,
        ..Limits::default()
    }
}

const TARGETS: [&str; 2] = ["x86_64-unknown-linux-gnu", "x86_64-unknown-none"];

#[test]
fn runtime_rlibs_parse_plan_and_link() {
    for target in TARGETS {
        for krate in ["core", "alloc", "compiler_builtins"] {
            let bytes = sysroot_rlib(target, krate);
            let object = Object::parse(&bytes, &big_limits())
                .unwrap_or_else(|e| panic!("{target}/{krate}: {e}"));
            let plan = object.plan(&LinkOptions::default()).unwrap();
            let bases = plan.contiguous_bases(0xffff_8000_4000_0000, PAGE).unwrap();
            // A stand-in kernel 1 GiB below the image: calls reach it
            // directly, so no stub is needed but every kind is exercised.
            let imports: BTreeMap<String, u64> = object
                .imports()
                .enumerate()
                .map(|(i, imp)| (imp.name.to_string(), 0xffff_8000_0000_0000 + 16 * i as u64))
                .collect();
            let resolver = FnResolver::new("kernel", |n| imports.get(n).copied());
            let image = plan
                .link(bases, &resolver)
                .unwrap_or_else(|e| panic!("{target}/{krate}: {e}"));
            let kinds: Vec<_> = image
                .stats()
                .relocations()
                .filter(|(_, n)| *n > 0)
                .map(|(k, n)| (k.name(), n))
                .collect();
            println!(
                "{target:26} {krate:18} members={:3} relocs={:6} exports={:5} imports={:4} {kinds:?}",
                object.members().count(),
                object.relocation_count(),
                image.exports().len(),
                image.imports().len()
            );
            assert!(image.stats().total_relocations() > 100);
            // compiler_builtins defines everything with hidden visibility.
            if krate != "compiler_builtins" {
                assert!(image.exports().len() > 10);
            } else {
                assert_eq!(image.exports().len(), 0);
                assert!(object.global_definitions().count() > 100);
            }
        }
    }
}

#[test]
fn every_rust_symbol_of_the_runtime_is_attributed() {
    for target in TARGETS {
        for krate in ["core", "alloc"] {
            let bytes = sysroot_rlib(target, krate);
            let object = Object::parse(&bytes, &big_limits()).unwrap();
            let mut owners: BTreeMap<&str, usize> = BTreeMap::new();
            let names = object.exports().chain(object.imports().map(|i| i.name));
            for name in names {
                let a = attribute(name);
                if a.mangling == Mangling::None {
                    continue;
                }
                match a.owner {
                    Owner::Crate(c) => *owners.entry(c).or_default() += 1,
                    Owner::Unknown => panic!("{target}/{krate}: no owner for {name}"),
                }
            }
            println!("{target}/{krate}: exported/imported symbols by owner: {owners:?}");
            // Most of a crate's exports are its own.
            let own = owners.get(krate).copied().unwrap_or(0);
            assert!(own * 2 > owners.values().sum::<usize>(), "{owners:?}");
        }
    }
}

#[test]
fn compiler_builtins_unmangled_exports_are_recognised() {
    for target in TARGETS {
        let bytes = sysroot_rlib(target, "compiler_builtins");
        let object = Object::parse(&bytes, &big_limits()).unwrap();
        let mut seen = 0;
        // Its symbols are hidden, so not exports: look at all definitions.
        for name in object.global_definitions() {
            if attribute(name).mangling != Mangling::None
                || name.starts_with("anon.")
                || name.starts_with("DW.ref.")
                || name == "__compilerrt_abort_impl"
            {
                continue;
            }
            assert!(
                domains::attribution::is_compiler_builtin(name),
                "{target}: {name} not recognised as compiler_builtins"
            );
            assert_eq!(attribute(name).owner, Owner::Crate("compiler_builtins"));
            seen += 1;
        }
        println!("{target}: {seen} unmangled compiler_builtins exports recognised");
        assert!(seen > 100, "{seen}");
    }
}
