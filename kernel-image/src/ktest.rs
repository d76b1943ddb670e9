//! The in-kernel test runner.
//!
//! Tests are functions marked `#[ktest]` anywhere in the kernel; the
//! attribute places a [`KernelTest`] in the `spindle_ktests` link section.
//! A boot with the command line `ktest` (or `ktest=FILTER`) runs every
//! registered test whose path contains FILTER, prints one line per test and a
//! summary, and exits QEMU with success only if all passed. The protocol,
//! parsed by `cargo xtask test`:
//!
//! ```text
//! ktest: running 7 tests
//! ktest: run kernel_image::tests::arch::breakpoint_returns
//! ktest: ok kernel_image::tests::arch::breakpoint_returns (12 us)
//! ktest: run kernel_image::tests::memory::heap_sizes
//! ktest: FAILED kernel_image::tests::memory::heap_sizes: heap used 24 != 0 at src/tests/memory.rs:40
//! ktest: result: 6 passed, 1 failed, 0 not run
//! ```
//!
//! A test that panics is reported as failed, followed by the summary with the
//! remaining tests counted as not run (the kernel has no unwinding yet).

use alloc::string::String;
use alloc::vec::Vec;
use core::panic::Location;
use core::sync::atomic::{AtomicUsize, Ordering};

use crate::println;

/// A registered test. `repr(C)` because the runner reads the descriptors
/// out of a link section.
#[repr(C)]
pub struct KernelTest {
    /// The function's name.
    pub name: &'static str,
    /// `module_path!()` where it is defined.
    pub module: &'static str,
    /// The test body.
    pub run: fn() -> KtestResult,
}

/// Why a test failed.
#[derive(Debug)]
pub struct KtestFailure {
    /// What went wrong.
    pub message: String,
    /// Where the failing check is.
    pub location: &'static Location<'static>,
}

/// What a test returns.
pub type KtestResult = Result<(), KtestFailure>;

impl KtestFailure {
    /// A failure at the caller's location.
    #[track_caller]
    pub fn new(message: String) -> Self {
        Self {
            message,
            location: Location::caller(),
        }
    }
}

/// Fails the test with a message unless the condition holds.
#[macro_export]
macro_rules! ensure {
    ($cond:expr, $($arg:tt)+) => {
        if !$cond {
            return Err($crate::ktest::KtestFailure::new(alloc::format!($($arg)+)));
        }
    };
    ($cond:expr) => {
        $crate::ensure!($cond, "assertion failed: {}", stringify!($cond))
    };
}

/// Fails the test unless the two values are equal.
#[macro_export]
macro_rules! ensure_eq {
    ($left:expr, $right:expr $(,)?) => {{
        let (left, right) = (&$left, &$right);
        $crate::ensure!(
            *left == *right,
            "{} == {} failed: {:?} != {:?}",
            stringify!($left),
            stringify!($right),
            left,
            right
        );
    }};
}

// SAFETY: the linker defines both symbols (bounds of the `spindle_ktests`
// section, which exists because `#[ktest]` emits at least one descriptor);
// they are declared as bytes and only their addresses are used.
unsafe extern "C" {
    static __start_spindle_ktests: u8;
    static __stop_spindle_ktests: u8;
}

/// Every registered test, sorted by path.
pub fn registry() -> Vec<&'static KernelTest> {
    let start = (&raw const __start_spindle_ktests).cast::<KernelTest>();
    let stop = (&raw const __stop_spindle_ktests).cast::<KernelTest>();
    let count = (stop as usize - start as usize) / size_of::<KernelTest>();
    // SAFETY: the linker defines the two symbols around the
    // `spindle_ktests` section, which holds only `KernelTest` statics emitted
    // by `#[ktest]` (each aligned and sized as the type), and is never written.
    let tests = unsafe { core::slice::from_raw_parts(start, count) };
    let mut tests: Vec<_> = tests.iter().collect();
    tests.sort_by_key(|t| (t.module, t.name));
    tests
}

/// The test filter from the command line: `Some("")` for `ktest`,
/// `Some(f)` for `ktest=f`, `None` when not in test mode.
pub fn mode_from_cmdline(cmdline: Option<&str>) -> Option<&str> {
    cmdline?
        .split_whitespace()
        .find_map(|word| match word.split_once('=') {
            Some(("ktest", filter)) => Some(filter),
            None if word == "ktest" => Some(""),
            _ => None,
        })
}

/// Counts of a run.
#[derive(Clone, Copy, Debug, Default)]
pub struct Outcome {
    /// Tests that returned `Ok`.
    pub passed: usize,
    /// Tests that returned `Err` or panicked.
    pub failed: usize,
}

impl Outcome {
    /// Whether every test passed (and at least one ran).
    pub fn all_passed(&self) -> bool {
        self.failed == 0 && self.passed > 0
    }
}

static SELECTED: AtomicUsize = AtomicUsize::new(0);
static FINISHED: AtomicUsize = AtomicUsize::new(0);
static PASSED: AtomicUsize = AtomicUsize::new(0);
static RUNNING: AtomicUsize = AtomicUsize::new(0);

/// Runs every test whose `module::name` contains `filter`.
pub fn run_all(filter: &str) -> Outcome {
    let tests: Vec<_> = registry()
        .into_iter()
        .filter(|t| {
            filter.is_empty() || alloc::format!("{}::{}", t.module, t.name).contains(filter)
        })
        .collect();
    SELECTED.store(tests.len(), Ordering::SeqCst);
    println!("ktest: running {} tests", tests.len());
    let mut outcome = Outcome::default();
    for test in tests {
        RUNNING.store(1, Ordering::SeqCst);
        let path = alloc::format!("{}::{}", test.module, test.name);
        println!("ktest: run {path}");
        let start = crate::time::uptime_ns();
        let result = (test.run)();
        let micros = (crate::time::uptime_ns() - start) / 1000;
        RUNNING.store(0, Ordering::SeqCst);
        match result {
            Ok(()) => {
                outcome.passed += 1;
                println!("ktest: ok {path} ({micros} us)");
            }
            Err(failure) => {
                outcome.failed += 1;
                println!(
                    "ktest: FAILED {path}: {} at {}",
                    failure.message, failure.location
                );
            }
        }
        PASSED.store(outcome.passed, Ordering::SeqCst);
        FINISHED.fetch_add(1, Ordering::SeqCst);
    }
    println!(
        "ktest: result: {} passed, {} failed, 0 not run",
        outcome.passed, outcome.failed
    );
    outcome
}

/// Called by the panic handler: reports the running test as failed.
pub fn on_panic() {
    if RUNNING.load(Ordering::SeqCst) == 0 {
        return;
    }
    let finished = FINISHED.load(Ordering::SeqCst);
    let passed = PASSED.load(Ordering::SeqCst);
    let selected = SELECTED.load(Ordering::SeqCst);
    println!("ktest: FAILED (panic in the test above)");
    println!(
        "ktest: result: {passed} passed, {} failed, {} not run",
        finished - passed + 1,
        selected - finished - 1
    );
}
