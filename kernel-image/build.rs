//! Link settings for the Spindle kernel binary, and the extension-signing
//! public key it embeds.

use std::path::PathBuf;

/// Set by `cargo xtask`: the build's Ed25519 public key (32 raw bytes).
const PUBLIC_KEY_ENV: &str = "SPINDLE_PUBLIC_KEY_FILE";

fn main() {
    let target_os = std::env::var("CARGO_CFG_TARGET_OS").unwrap_or_default();
    if target_os == "none" {
        // Keep every section of every object the kernel links: extensions
        // are linked against the running kernel's symbol table, so code that
        // the kernel itself never calls must still be there.
        println!("cargo:rustc-link-arg-bins=--no-gc-sections");
    }
    println!("cargo:rerun-if-changed=build.rs");

    // Without xtask (e.g. clippy) there is no key: embed zeros, which is not
    // a valid Ed25519 point, so every extension is refused with a clear
    // "kernel built without a signing key" error.
    println!("cargo:rerun-if-env-changed={PUBLIC_KEY_ENV}");
    let key = match std::env::var_os(PUBLIC_KEY_ENV) {
        Some(path) => {
            println!("cargo:rerun-if-changed={}", PathBuf::from(&path).display());
            let bytes = std::fs::read(&path).unwrap_or_else(|e| panic!("{PUBLIC_KEY_ENV}: {e}"));
            assert_eq!(bytes.len(), 32, "{PUBLIC_KEY_ENV} must hold 32 bytes");
            bytes
        }
        None => vec![0; 32],
    };
    let out = PathBuf::from(std::env::var_os("OUT_DIR").expect("set by cargo")).join("extension-signing.pub");
    std::fs::write(out, key).expect("OUT_DIR is writable");
}
