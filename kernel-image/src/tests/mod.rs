//! In-kernel tests (run by a `ktest` boot; see [`crate::ktest`]).

mod arch;
mod clock;
mod containment;
mod debug;
mod events;
mod extension_heap;
mod loader;
mod memory;
mod memory_services;
mod strands;
