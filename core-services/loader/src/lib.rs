//! The extension loader: SPIN's dynamic linking of modules into the running
//! kernel, with domains as the unit of name visibility — the policy, without
//! the hardware.
//!
//! # A load, step by step
//!
//! [`Loader::load`] takes an object from the [`Catalogue`] (the boot
//! ramdisk's objects, and objects pushed at run time) and:
//!
//! 1. **verify** — checks its Ed25519 signature over its name and the
//!    BLAKE3 digest of its bytes before reading anything else ([`pipeline::verify`]);
//! 2. **parse** — validates the ELF object (`domains::Object::parse`),
//!    reads the descriptor from the *unlinked* `.spindle_ext` section and
//!    checks its name and interface fingerprints ([`pipeline::inspect`]);
//! 3. **resolve** — takes a heap for the extension from the platform
//!    ([`heap`]: its allocator imports bind to it), creates the extension's
//!    domain and resolves it, all or nothing, against `SpinPublic` (composed by the [`policy`]) and the
//!    loaded extensions' domains; every missing symbol is explained
//!    (kernel-internal, exported by an extension that is not loaded, or
//!    unknown);
//! 4. **link** — lays the object out, issues the extension's principal and
//!    asks the [`Platform`] to reserve an address range for it
//!    ([`Platform::reserve`]; in the kernel, a VirtAddr range of the image
//!    zone owned by that principal), relocates for that range, places the
//!    domain's exports and checks that `init` and `exit` lie in the text
//!    segment ([`pipeline::link`]) — all before anything is mapped;
//! 5. **map** — the [`Platform`] maps the image W^X into the range on
//!    behalf of the principal, which owns its memory;
//! 6. **init** — the platform calls `init` with an `ExtensionContext`
//!    holding that principal.
//!
//! Every step that takes something has a guard that gives it back if a
//! later step fails: the range (the platform's, given back when dropped),
//! the registered domain, the mapping; a failed `init` revokes the principal and waits for
//! its bindings before unmapping.
//!
//! # Dependencies
//!
//! The domains live in a `domains::DomainRegistry`: an extension depends on
//! the loaded extensions its domain resolved against, and the registry's
//! import edges are that relation ([`Loader::dependents`],
//! [`Loader::dependencies`]). Unloading an extension others import from is
//! refused; [`Loader::unload`] calls `exit`, revokes the principal, waits
//! for raises in progress to drop its handlers, unmaps and releases;
//! [`Loader::unload_failed`] does the same without calling `exit`, for an
//! extension that failed.
//!
//! # What the kernel supplies
//!
//! The [`Platform`] trait: mapping and unmapping an image's pages on behalf
//! of an owner, the one cast from checked addresses to `init`/`exit`, a
//! bounded wait, a cycle counter. The crate itself is
//! `forbid(unsafe_code)`, `no_std` + `alloc`, and tested on the host with
//! real objects (`tests/`) and fuzzed (`fuzz/`).
//!
//! # What the shell gets
//!
//! Data, never text: [`LoadReport`], [`CatalogueListing`],
//! [`ExtensionInfo`], [`DomainListing`], [`DomainExports`], and typed
//! errors ([`LoadError`], [`UnloadError`]) whose `Display` names the check,
//! symbol, section or relocation that failed.
#![cfg_attr(not(test), no_std)]
#![forbid(unsafe_code)]
#![warn(missing_docs)]

extern crate alloc;

pub mod catalogue;
pub mod crates;
mod error;
pub mod heap;
mod loader;
pub mod pipeline;
pub mod platform;
pub mod policy;
pub mod report;

pub use catalogue::{Catalogue, CatalogueEntry, CatalogueError, ObjectBytes, Origin};
pub use error::{LoadError, MissingReason, MissingSymbol, UnloadError};
pub use heap::{AllocatorShims, HeapEntries};
pub use loader::{Config, Loader};
pub use platform::{EntryPoints, ImageRange, InitFailure, MapError, MapRequest, Panic, Platform};
pub use policy::{SPIN_PUBLIC_CRATES, compose_spin_public};
pub use report::{
    CatalogueListing, CatalogueRow, Component, DomainExports, DomainListing, DomainRow,
    ExtensionInfo, LoadCycles, LoadReport, LoadedInfo, UnloadReport,
};
