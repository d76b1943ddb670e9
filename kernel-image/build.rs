//! Link settings for the Spindle kernel binary.

fn main() {
    let target_os = std::env::var("CARGO_CFG_TARGET_OS").unwrap_or_default();
    if target_os == "none" {
        // Keep every section of every object the kernel links: extensions
        // are linked against the running kernel's symbol table, so code that
        // the kernel itself never calls must still be there.
        println!("cargo:rustc-link-arg-bins=--no-gc-sections");
    }
    println!("cargo:rerun-if-changed=build.rs");
}
