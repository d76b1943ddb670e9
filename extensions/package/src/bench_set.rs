//! The extensions the kernel's benchmark suites load (`bench` in the
//! shell). `cargo xtask bench` builds and packs only these into the ramdisk
//! of the image it boots, so that a benchmark run does not compile the
//! other extensions and test fixtures; the kernel's suites name them
//! through these constants, so the two cannot drift apart.

/// Calls into the kernel from an extension in a loop (the `baseline`
/// suite's protected in-kernel call).
pub const CALLER: &str = "bench-call";
/// Calls a kernel function from a `Console.Line` handler (the
/// `containment` suite's extension-to-kernel call).
pub const KERNEL_CALLS: &str = "kernel-calls";
/// Panics in its handler (the `containment` suite's contained fault).
pub const PANIC_IN_HANDLER: &str = "panic-in-handler";
/// The `loading` suite's subjects: (size class, extension).
pub const LOADED: [(&str, &str); 3] = [
    ("small", "counter"),
    ("medium", "hello"),
    ("large", "event-source"),
];

/// Every extension the suites load.
pub const ALL: [&str; 6] = [
    CALLER,
    KERNEL_CALLS,
    PANIC_IN_HANDLER,
    LOADED[0].1,
    LOADED[1].1,
    LOADED[2].1,
];
