//! Link settings for the Spindle kernel binary, and the extension-signing
//! public key it embeds.

use std::path::PathBuf;

/// Set by `cargo xtask`: the build's Ed25519 public key, 64 hexadecimal
/// digits (its value, not a file's path, so that a copy of the workspace
/// signing with the same key reuses this build).
const PUBLIC_KEY_ENV: &str = "SPINDLE_PUBLIC_KEY";

fn main() {
    let target_os = std::env::var("CARGO_CFG_TARGET_OS").unwrap_or_default();
    if target_os == "none" {
        // Keep every section of every object the kernel links: extensions
        // are linked against the running kernel's symbol table, so code that
        // the kernel itself never calls must still be there.
        println!("cargo:rustc-link-arg-bins=--no-gc-sections");
        // The unwinder finds the kernel's own unwind tables through
        // `__GNU_EH_FRAME_HDR` (rustc passes --eh-frame-hdr) and bounds the
        // kernel's text with `__executable_start`..`__etext`; lld defines
        // `_etext` but not those two names.
        println!("cargo:rustc-link-arg-bins=--defsym=__etext=_etext");
        println!("cargo:rustc-link-arg-bins=--defsym=__GNU_EH_FRAME_HDR=ADDR(.eh_frame_hdr)");
        keep_compiler_builtins();
    }
    println!("cargo:rerun-if-changed=build.rs");

    // Without xtask (e.g. clippy) there is no key: embed zeros, which is not
    // a valid Ed25519 point, so every extension is refused with a clear
    // "kernel built without a signing key" error.
    println!("cargo:rerun-if-env-changed={PUBLIC_KEY_ENV}");
    let key = match std::env::var(PUBLIC_KEY_ENV) {
        Ok(hex) => {
            assert!(
                hex.len() == 64 && hex.bytes().all(|b| b.is_ascii_hexdigit()),
                "{PUBLIC_KEY_ENV} must be 64 hexadecimal digits"
            );
            (0..32)
                .map(|i| u8::from_str_radix(&hex[2 * i..2 * i + 2], 16).expect("checked above"))
                .collect()
        }
        Err(_) => vec![0; 32],
    };
    let out = PathBuf::from(std::env::var_os("OUT_DIR").expect("set by cargo"))
        .join("extension-signing.pub");
    std::fs::write(out, key).expect("OUT_DIR is writable");
}

/// compiler_builtins is built with one object per function, so the linker
/// would take only the routines the kernel itself calls; extensions need the
/// others (u128 division, soft-float arithmetic, ...). Name each of its
/// global symbols as undefined, which makes the linker take them all.
fn keep_compiler_builtins() {
    let rustc = std::env::var("RUSTC").unwrap_or_else(|_| "rustc".into());
    let target = std::env::var("TARGET").expect("set by cargo");
    let sysroot = std::process::Command::new(&rustc)
        .args(["--print", "sysroot"])
        .output()
        .expect("rustc --print sysroot");
    let lib_dir = PathBuf::from(String::from_utf8_lossy(&sysroot.stdout).trim())
        .join("lib/rustlib")
        .join(&target)
        .join("lib");
    let rlib = std::fs::read_dir(&lib_dir)
        .unwrap_or_else(|e| panic!("{}: {e}", lib_dir.display()))
        .filter_map(|e| e.ok().map(|e| e.path()))
        .find(|p| {
            p.file_name()
                .and_then(|n| n.to_str())
                .is_some_and(|n| n.starts_with("libcompiler_builtins-") && n.ends_with(".rlib"))
        })
        .unwrap_or_else(|| panic!("no compiler_builtins rlib in {}", lib_dir.display()));
    println!("cargo:rerun-if-changed={}", rlib.display());
    let bytes = std::fs::read(&rlib).expect("readable rlib");
    let archive =
        goblin::archive::Archive::parse(&bytes).expect("compiler_builtins rlib is an archive");
    let mut symbols: Vec<&str> = archive
        .summarize()
        .into_iter()
        .flat_map(|(_, _, symbols)| symbols)
        .collect();
    symbols.sort_unstable();
    symbols.dedup();
    for symbol in symbols {
        println!("cargo:rustc-link-arg-bins=--undefined={symbol}");
    }
}
