//! What the loader tells the shell: data, never text. The shell formats
//! it (`ext load`, `ext list`, `ext info`, `domains`, `domain`).

use alloc::string::String;
use alloc::vec::Vec;
use core::fmt;
use core::ops::Range;

use spindle_package::{Digest256, Kind};

use crate::catalogue::Origin;
use crate::platform::Panic;

/// Cycle counts of one load, stage by stage (the platform's cycle unit).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct LoadCycles {
    /// Signature check (BLAKE3 + Ed25519).
    pub verify: u64,
    /// ELF parsing and validation, descriptor checks.
    pub parse: u64,
    /// Domain creation and symbol resolution.
    pub resolve: u64,
    /// Layout, relocation, placing the exports, entry-point checks.
    pub link: u64,
    /// Frames, copies and page mappings.
    pub map: u64,
    /// The extension's `init`.
    pub init: u64,
}

impl LoadCycles {
    /// All stages.
    pub fn total(&self) -> u64 {
        self.verify + self.parse + self.resolve + self.link + self.map + self.init
    }
}

impl fmt::Display for LoadCycles {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "{} cycles (verify {}, parse {}, resolve {}, link {}, map {}, init {})",
            self.total(),
            self.verify,
            self.parse,
            self.resolve,
            self.link,
            self.map,
            self.init
        )
    }
}

/// One crate an extension carries or imports, with its version, from the
/// signed crate list of its bundle (for a plain object: the extension's
/// own, from its descriptor).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Component {
    /// Crate (package) name.
    pub name: String,
    /// Its version.
    pub version: String,
    /// What it is to the extension: itself, carried (vetted or safe), or
    /// imported (from the kernel or another extension).
    pub role: spindle_package::bundle::Role,
}

/// What a load did.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct LoadReport {
    /// Cycle counts.
    pub cycles: LoadCycles,
    /// Cycles to copy the object's bytes once, measured just before: the
    /// baseline the load is compared with.
    pub baseline_copy_cycles: u64,
    /// Imports resolved.
    pub imports: usize,
    /// Exports.
    pub exports: usize,
    /// Relocations applied.
    pub relocations: u64,
    /// GOT slots.
    pub got_slots: usize,
    /// Far-call stubs.
    pub stubs: usize,
    /// Segment ranges: text, rodata, data (+bss).
    pub segments: [Range<u64>; 3],
    /// The whole image's range (page-aligned).
    pub range: Range<u64>,
    /// Unwind tables (`.eh_frame` sections) the image carries.
    pub unwind_tables: usize,
    /// The crates the extension carries.
    pub components: Vec<Component>,
}

impl LoadReport {
    /// The load's cost in copies of the object.
    pub fn baseline_ratio(&self) -> f64 {
        self.cycles.total() as f64 / self.baseline_copy_cycles.max(1) as f64
    }

    /// Pages the image occupies.
    pub fn pages(&self, page: u64) -> u64 {
        (self.range.end - self.range.start) / page.max(1)
    }
}

/// What an unload did.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct UnloadReport {
    /// Whether the extension's `exit` ran (not for a failed extension).
    pub exit_called: bool,
    /// `exit` panicked (the unload went on).
    pub exit_panicked: Option<Panic>,
    /// Bindings still installed after `exit` that revocation removed.
    pub revoked: usize,
    /// What became of its heap, if it had one of its own.
    pub heap: Option<extension_heap::Released>,
}

/// One row of `ext list`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct CatalogueRow {
    /// Name.
    pub name: String,
    /// Extension or fixture.
    pub kind: Kind,
    /// Object size.
    pub bytes: usize,
    /// Version from the manifest.
    pub version: String,
    /// Whether the manifest carries a signature (not yet checked).
    pub signed: bool,
    /// Ramdisk or pushed.
    pub origin: Origin,
    /// Where it is mapped, if loaded.
    pub loaded_at: Option<Range<u64>>,
}

/// `ext list`: the catalogue and the region's use.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct CatalogueListing {
    /// Every object.
    pub rows: Vec<CatalogueRow>,
    /// Extensions loaded.
    pub loaded: usize,
    /// Bytes of address space the images of loaded and retained extensions
    /// hold.
    pub region_used_bytes: u64,
    /// Extensions whose handlers were still referenced when they were
    /// unloaded: their memory is kept.
    pub retained: Vec<String>,
}

/// `ext info` of a loaded extension.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct LoadedInfo {
    /// Its principal's name.
    pub principal: String,
    /// Binding objects of the principal still alive.
    pub live_binding_objects: usize,
    /// What the load did.
    pub report: LoadReport,
    /// Loaded extensions it imports from.
    pub depends_on: Vec<String>,
    /// Loaded extensions that import from it.
    pub used_by: Vec<String>,
    /// Its heap's figures, if it has one of its own.
    pub heap: Option<extension_heap::Account>,
}

/// `ext info NAME`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ExtensionInfo {
    /// Name.
    pub name: String,
    /// Version from the manifest.
    pub version: String,
    /// Extension or fixture.
    pub kind: Kind,
    /// Ramdisk or pushed.
    pub origin: Origin,
    /// Object size.
    pub bytes: usize,
    /// BLAKE3 digest recorded by the build.
    pub digest: Digest256,
    /// Present if loaded.
    pub loaded: Option<LoadedInfo>,
    /// The crates it carries and imports (its signed crate list; read
    /// after checking the signature when it is not loaded), or why they
    /// cannot be shown.
    pub crates: Result<Vec<Component>, String>,
}

/// One extension's domain in `domains`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct DomainRow {
    /// Domain (= extension) name.
    pub name: String,
    /// Exports.
    pub exports: usize,
    /// Imports.
    pub imports: usize,
    /// Domains it resolved against.
    pub sources: Vec<String>,
}

/// `domains`: the kernel's domains and one per loaded extension.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct DomainListing {
    /// Exports of `Kernel` (every kernel symbol; never linked against).
    pub kernel_exports: usize,
    /// Exports of `RustRuntime`.
    pub runtime_exports: usize,
    /// Exports of `SpinInterfaces`.
    pub interface_exports: usize,
    /// Exports of `SpinPublic`.
    pub spin_public_exports: usize,
    /// Crates of `RustRuntime`.
    pub runtime_crates: &'static [&'static str],
    /// Loaded extensions' domains, in load order.
    pub extensions: Vec<DomainRow>,
}

/// `domain NAME [FILTER]`: a domain's exports, demangled and sorted.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct DomainExports {
    /// Domain name.
    pub name: String,
    /// (demangled name, address), sorted by name, filtered.
    pub symbols: Vec<(String, u64)>,
}
