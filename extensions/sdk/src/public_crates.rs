//! The crates extensions link against from the running kernel.
//!
//! The loader composes the `SpinPublic` domain from the kernel's symbols of
//! these crates; the build (`cargo xtask`) reads the same list for its
//! trust policy and its audit of kernel-only functions. It lives here, in
//! the crate every extension builds against, so neither needs the other.

/// Crates whose symbols make up `SpinPublic`, the domain extensions are
/// linked against: the Rust runtime, the public interfaces, and the crates
/// whose generic code those interfaces instantiate inside extensions (a
/// generic function of the dispatcher monomorphised in an extension calls
/// hashbrown's internals, say).
///
/// Every crate listed here is reachable by extensions: any `pub fn` in it
/// that only the kernel may call must take a `dispatcher::KernelCapability`
/// (the xtask test `kernel_only` checks the in-tree ones against a reviewed
/// list). `log` is deliberately absent: its `set_max_level` is a safe,
/// kernel-only setter, so extensions log through the SDK's wrappers.
pub const SPIN_PUBLIC_CRATES: &[&str] = &[
    "core",
    "alloc",
    "compiler_builtins",
    "unwind",
    "dispatcher",
    "spindle_sdk",
    "console",
    "clock",
    "strand",
    "phys_addr",
    "virt_addr",
    "translation",
    "spin",
    "lock_api",
    "scopeguard",
    "hashbrown",
    "foldhash",
    "allocator_api2",
    "equivalent",
];
