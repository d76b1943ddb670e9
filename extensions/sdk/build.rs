//! Computes the fingerprints of the interfaces an extension is built
//! against: a 64-bit FNV-1a hash over the source files of each interface
//! crate (paths and contents, in sorted order). Any change to an interface
//! crate changes its fingerprint, so an extension built against other
//! sources is refused at load time even where mangled names would still
//! match (a changed field type keeps its symbol names). Conservative, like
//! the SVH of an rlib; crate-granular, unlike Linux's per-symbol modversions.

use std::path::{Path, PathBuf};

/// Interface crates and their source directories, relative to this crate.
const INTERFACES: [(&str, &str); 8] = [
    ("spindle-sdk", "src"),
    ("dispatcher", "../../dispatcher/src"),
    ("console", "../../core-services/console/src"),
    ("clock", "../../core-services/clock/src"),
    ("strand", "../../core-services/strand/src"),
    ("phys-addr", "../../core-services/phys-addr/src"),
    ("virt-addr", "../../core-services/virt-addr/src"),
    ("translation", "../../core-services/translation/src"),
];

fn main() {
    let manifest_dir = PathBuf::from(std::env::var("CARGO_MANIFEST_DIR").expect("set by cargo"));
    for (name, relative) in INTERFACES {
        let dir = manifest_dir.join(relative);
        // Relative to this crate (cargo accepts that), so that the
        // instruction is the same wherever the workspace lies and a copy of
        // it can reuse this build.
        println!("cargo:rerun-if-changed={relative}");
        let mut files = Vec::new();
        collect(&dir, &mut files);
        files.sort();
        let mut hash = Fnv::new();
        for file in &files {
            let relative_path = file.strip_prefix(&dir).expect("collected below dir");
            hash.write(relative_path.to_string_lossy().as_bytes());
            hash.write(&std::fs::read(file).expect("readable source file"));
        }
        let key = name.to_uppercase().replace('-', "_");
        println!("cargo:rustc-env=SPINDLE_FINGERPRINT_{key}={}", hash.0);
    }
}

fn collect(dir: &Path, out: &mut Vec<PathBuf>) {
    let entries = std::fs::read_dir(dir).unwrap_or_else(|e| panic!("{}: {e}", dir.display()));
    for entry in entries {
        let path = entry.expect("directory entry").path();
        if path.is_dir() {
            collect(&path, out);
        } else if path.extension().is_some_and(|e| e == "rs") {
            out.push(path);
        }
    }
}

struct Fnv(u64);

impl Fnv {
    fn new() -> Self {
        Self(0xcbf2_9ce4_8422_2325)
    }

    fn write(&mut self, bytes: &[u8]) {
        for &byte in bytes {
            self.0 = (self.0 ^ u64::from(byte)).wrapping_mul(0x0100_0000_01b3);
        }
        // Separator, so that ("ab","c") and ("a","bc") differ.
        self.0 = (self.0 ^ 0xff).wrapping_mul(0x0100_0000_01b3);
    }
}
