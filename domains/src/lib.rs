//! Run-time linking of Spindle extensions, and SPIN's domains.
//!
//! Extensions are separately compiled Rust crates, delivered as ELF64
//! x86-64 relocatable objects or rlibs. This crate turns such an object
//! into a *linked image*: three byte buffers (text, read-only data, data)
//! relocated for base addresses the kernel chose, plus the export table the
//! loader needs. It never touches memory it does not own and contains no
//! `unsafe`: the kernel maps the buffers (text RX, rodata R, data RW; all
//! but text NX) and calls into them.
//!
//! Symbol visibility is controlled by [`Domain`]s, named namespaces after
//! SPIN (Bershad et al., SOSP'95): an extension's undefined symbols are
//! resolved only against the domains the loader names (e.g. `SpinPublic`:
//! core, alloc, compiler_builtins, the dispatcher and the public service
//! interfaces), so an extension naming a kernel-internal symbol fails to
//! link, and the error names the symbol.
//!
//! # How the kernel loader uses it
//!
//! ```no_run
//! use domains::{CrateFilter, Domain, LinkOptions, Limits, Object, SegmentKind, resolve_all};
//! # fn kernel_alloc(_: domains::SegmentSpec) -> u64 { 0 }
//! # fn main() -> Result<(), domains::Error> {
//! # let (kernel_elf, load_bias, ext_bytes): (&'static [u8], u64, &[u8]) = (&[], 0, &[]);
//! // At boot, once: the public domain from the kernel's own .symtab (the
//! // ELF stays mapped, so names are borrowed from it, not copied).
//! const PUBLIC: &[&str] = &["core", "alloc", "compiler_builtins", "dispatcher"];
//! let spin_public = Domain::create_from_static_module(
//!     "SpinPublic", kernel_elf, load_bias, &CrateFilter::crates(PUBLIC))?;
//!
//! // Per extension: parse and validate everything first.
//! let object = Object::parse(ext_bytes, &Limits::default())?;
//! let mut domain = Domain::create("hello", &object)?;
//! // All or nothing; the error lists every missing symbol.
//! resolve_all(&[&spin_public], &mut domain)?;
//! // Sizes and alignments, then memory.
//! let plan = object.plan(&LinkOptions::default())?;
//! let bases = domains::SegmentBases {
//!     text: kernel_alloc(plan.segment(SegmentKind::Text)),
//!     rodata: kernel_alloc(plan.segment(SegmentKind::ReadOnly)),
//!     data: kernel_alloc(plan.segment(SegmentKind::Data)),
//! };
//! let image = plan.link(bases, &domain)?;
//! domain.place(&image)?; // now other extensions can resolve against it
//! // Copy image.segment(k).bytes to image.segment(k).base, map W^X, then
//! // read the descriptor:
//! let desc = image.require_symbol("__spindle_extension")?; // MissingSymbol if absent
//! let _first_word = image.read_u64(desc)?;
//! # Ok(()) }
//! ```
//!
//! # Modules
//!
//! * [`object`]: parsing and validation ([`Object`], [`Limits`]).
//! * [`layout`]: segments, GOT and stubs ([`LinkPlan`]).
//! * [`link`]: relocation ([`LinkPlan::link`], [`LinkedImage`], [`Resolver`]).
//! * [`reloc`]: relocation kinds and arithmetic.
//! * [`domain`]: [`Domain`] and SPIN's operations.
//! * [`domain_registry`]: [`DomainRegistry`], which refuses to destroy a domain in
//!   use.
//! * [`attribution`]: which crate a (mangled) symbol belongs to.
//! * [`bounds`]: linker-defined `__start_SECTION` / `__stop_SECTION`.
#![cfg_attr(not(test), no_std)]
#![forbid(unsafe_code)]
#![warn(missing_docs)]

extern crate alloc;

pub mod attribution;
pub mod bounds;
pub mod domain;
pub mod domain_registry;
mod elf;
mod error;
pub mod layout;
pub mod link;
mod module;
pub mod object;
pub mod reloc;
mod symtab;

#[cfg(test)]
mod testelf;
#[cfg(test)]
mod tests;

pub use attribution::{Attribution, CrateFilter, Mangling, Owner, attribute};
pub use domain::{
    Domain, DomainId, Exports, ImportBinding, ImportInfo, ResolveStats, combine, resolve,
    resolve_all, unresolve,
};
pub use domain_registry::DomainRegistry;
pub use error::{Error, Result, UnresolvedSymbol};
pub use layout::{LinkOptions, LinkPlan, SegmentBases, SegmentKind, SegmentSpec};
pub use link::{
    FnResolver, LinkStats, LinkedImage, PlacedFunction, PlacedSection, ResolvedImport, Resolver,
    Segment,
};
pub use module::{Export, SymbolBinding, SymbolKind};
pub use object::{Import, Limits, Object};
pub use reloc::RelocKind;
