//! The hostile corpus: extension crates under `extensions/hostile/` that are
//! wrong on purpose. They are test fixtures (`kind = "fixture"` in their
//! `[package.metadata.spindle]` table): built, signed and put in the
//! ramdisk like any extension, never autoloaded, and loaded by the
//! integration tests to show that the kernel refuses or contains each one
//! and keeps serving.
//!
//! | crate | what it does wrong | the kernel's answer |
//! |---|---|---|
//! | `no-descriptor` | has no extension descriptor | refused: missing descriptor |
//! | `init-fails` | installs a handler, then `init` returns an error | refused: init failed; the handler is revoked |
//! | `internal-symbol` | links against a kernel-internal symbol | refused: the symbol is named as kernel-internal |
//! | `large-model` | built with the large code model | refused: unsupported relocation |
//! | `bad-sched` | a scheduling policy whose every answer names a strand that does not exist or is not its own | each answer refused and counted; round-robin's choice runs; no strand lost |
//! | `sched-init-fails` | registers a scheduling policy and its handler, then fails in `init` | refused: init failed; the handler revoked and the policy retired |
//! | `panic-in-init` | panics in `init` after installing a handler | contained: the panic unwinds to the loader, which undoes the load |
//! | `panic-in-handler` | its shell command's handler panics, two calls deep | contained: the command is abandoned, the report names the extension, the panic and a backtrace through its functions; the extension is unloaded |
//! | `panic-in-tick` | its `Clock.Tick` handler panics (in the timer interrupt) once armed by the command `panic-in-tick` | contained inside the interrupt handler; reported and unloaded from a kernel strand |
//! | `panic-elsewhere` | a `Console.Line` guard panics (`panic-in-guard`); an asynchronous handler panics in its strand (`panic-in-async`) | contained at the raise / at the strand's entry; reported and unloaded |
//! | `two-faults` | arms a panicking `Clock.Tick` handler, then panics in its `Console.Line` handler: two faults in flight | both contained and reported; unloaded once |
//! | `endless-loop` | its shell command's handler loops for ever | stopped by the watchdog from the timer interrupt (forced unwind through a trampoline); unloaded |
//! | `endless-elsewhere` | its `Clock.Tick` handler loops for ever once armed by `endless-tick`; an asynchronous handler reached by `endless-async` loops for ever in its strand | the tick's raise runs with interrupts enabled, so a nested timer interrupt runs the watchdog and forces the unwind inside the interrupt; the asynchronous handler runs inside an extension boundary in its strand and is timed like a synchronous one; unloaded |
//! | `self-deadlock` | its shell command's handler locks a spin lock it already holds | stopped by the watchdog; unloaded, the lock dying with it |
//! | `unbounded-recursion` | its shell command recurses without bound | the guard page's fault is turned into a forced unwind from the kernel frame that called in (no double fault); unloaded |
//! | `overflow-in-tick` | its `Clock.Tick` handler recurses without bound on the interrupt stack once armed by the command `overflow-in-tick` | the guard page's fault is captured on a stack of its own and turned into a forced unwind to the boundary the timer opened (no double fault); reported and unloaded from a kernel strand |
//! | `recursive-raise` | its own event's handler raises that event again without bound | the dispatcher's nesting limit returns `RaiseError::TooDeep` to the innermost raise (64 deep): a typed error, no stack overflow |
//! | `slow-init` | `init` sleeps for three seconds | loads; a push arriving meanwhile is refused: a load is in progress |
//! | `alloc-until-failure` | its shell command allocates 64 KiB blocks until one fails | its heap's quota refuses the block; the allocation failure panics in its code and is contained; unloaded, its heap freed |
//! | `leak` | its shell command leaks a `Box` and a forgotten vector | at `ext unload` the bytes still allocated from its heap are reported, and the heap kept until they are freed |
//! | `private-import` | inlines a `stats` function that calls `libm`, which `stats` carries privately | refused: the symbol is named as private to `stats`, crate `libm` |
//!
//! This crate holds no code: it exists so that the workspace can find the
//! fixtures below it with one `extensions/hostile/*` glob.
#![no_std]
#![forbid(unsafe_code)]
