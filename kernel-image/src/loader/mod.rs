//! The extension loader: SPIN's dynamic linking of modules into the running
//! kernel, with domains as the unit of name visibility.
//!
//! At boot the loader reads the ramdisk's manifest and builds two domains
//! from the kernel's own ELF symbol table: `Kernel` (every symbol, used only
//! to explain failures) and `SpinPublic` (the Rust runtime, the dispatcher,
//! the SDK and the core services' interfaces: what extensions may link
//! against). Loading an extension then:
//!
//! 1. checks the Ed25519 signature of the object (nothing else is trusted
//!    before);
//! 2. parses and validates the ELF object;
//! 3. reads the descriptor from the unlinked `.spindle_ext` section and
//!    checks its name and interface fingerprints;
//! 4. creates the extension's domain and resolves it against `SpinPublic`
//!    and the domains of loaded extensions (SPIN's Resolve), recording which
//!    of those it depends on;
//! 5. links it for an address range in the extension region and maps it W^X;
//! 6. calls its `init` with a context holding a fresh principal.
//!
//! Any failure undoes every earlier step: the principal's bindings are
//! revoked, frames and addresses given back, the domain dropped. Unloading
//! is refused while another loaded extension depends on the extension;
//! otherwise it calls `exit`, revokes the principal, waits for raises in
//! progress to let go of its handlers, and frees everything.

pub mod crates;
mod error;
pub mod memory;

use alloc::string::{String, ToString};
use alloc::vec::Vec;

use domains::{CrateFilter, Domain, Limits, LinkOptions, Object, SegmentKind, attribution};
use spindle_package::{Kind, Ramdisk};
use spindle_sdk::{ExitFn, ExtensionContext, ExtensionDescriptor, InitFn, RawDescriptor};

pub use error::{LoadError, MissingReason, MissingSymbol, UnloadError};
use memory::{Mapping, RegionAllocator};

use crate::arch::rdtsc;
use crate::boot_data;
use crate::events;

/// Crates whose symbols make up `SpinPublic`: the Rust runtime, the public
/// interfaces, and the crates whose generic code those interfaces
/// instantiate inside extensions (a generic function of the dispatcher
/// monomorphised in an extension calls hashbrown's internals, say).
/// Everything else in the kernel (the kernel crate itself, the loader's
/// linker and package verifier, the allocator, arch glue) is internal.
pub const SPIN_PUBLIC_CRATES: &[&str] = &[
    "core",
    "alloc",
    "compiler_builtins",
    "unwind",
    "dispatcher",
    "spindle_sdk",
    "console",
    "clock",
    "spin",
    "log",
    "lock_api",
    "scopeguard",
    "hashbrown",
    "foldhash",
    "allocator_api2",
    "equivalent",
];

/// The public key of the build that signed the extensions.
static PUBLIC_KEY: &[u8; 32] = include_bytes!(concat!(env!("OUT_DIR"), "/extension-signing.pub"));

/// Most extensions loaded at once (space is reserved up front so that a
/// load and unload leave the heap exactly as it was).
const MAX_LOADED: usize = 32;

/// Cycle counts of one load, phase by phase.
#[derive(Clone, Copy, Debug, Default)]
pub struct LoadCycles {
    /// Signature check (SHA-256 + Ed25519).
    pub verify: u64,
    /// ELF parsing and validation, descriptor checks.
    pub parse: u64,
    /// Domain creation and symbol resolution.
    pub resolve: u64,
    /// Layout and relocation.
    pub link: u64,
    /// Frames, copies and page mappings.
    pub map: u64,
    /// The extension's `init`.
    pub init: u64,
}

impl LoadCycles {
    /// All phases.
    pub fn total(&self) -> u64 {
        self.verify + self.parse + self.resolve + self.link + self.map + self.init
    }
}

impl core::fmt::Display for LoadCycles {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
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

impl LoadReport {
    /// The load's cost in copies of the object (see `baseline_copy_cycles`).
    pub fn baseline_ratio(&self) -> f64 {
        self.cycles.total() as f64 / self.baseline_copy_cycles.max(1) as f64
    }
}

/// What a load did, for `ext info` and the shell's report.
#[derive(Clone, Debug, Default)]
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
    /// GOT slots and far-call stubs.
    pub got_slots: usize,
    /// Far-call stubs.
    pub stubs: usize,
    /// Segment sizes (text, rodata, data) in bytes.
    pub segment_sizes: [u64; 3],
    /// Segment base addresses (text, rodata, data).
    pub segment_bases: [u64; 3],
}

struct Loaded {
    name: String,
    /// Its crate list (empty for a plain object).
    crates: Vec<spindle_package::bundle::CrateRecord>,
    domain: Domain,
    context: ExtensionContext,
    exit: ExitFn,
    mapping: Mapping,
    depends_on: Vec<String>,
    report: LoadReport,
}

/// The loader's state.
pub struct Loader {
    ramdisk: Ramdisk<'static>,
    kernel: Domain,
    public: PublicDomains,
    loaded: Vec<Loaded>,
    region: RegionAllocator,
    index_build_ns: u64,
    compose_ns: u64,
}

static LOADER: spin::Mutex<Option<Loader>> = spin::Mutex::new(None);

/// Crates of the Rust runtime part of `SpinPublic`.
const RUNTIME_CRATES: &[&str] = &["core", "alloc", "compiler_builtins", "unwind"];

/// The domain extensions link against, composed as in SPIN:
/// `SpinPublic = Combine(RustRuntime, SpinInterfaces)`. Only the
/// combination is kept; the parts are views of it by owning crate
/// ([`is_runtime_symbol`]), listed with the sizes they had.
struct PublicDomains {
    /// Exports of `RustRuntime`: `core`, `alloc`, `compiler_builtins`.
    runtime_exports: usize,
    /// Exports of `SpinInterfaces`: the dispatcher, the SDK, the core
    /// services' interfaces, and the crates whose generic code they
    /// instantiate.
    interface_exports: usize,
    /// The combination: what extensions are resolved against.
    spin_public: Domain,
}

/// Whether a public symbol belongs to the `RustRuntime` part.
fn is_runtime_symbol(name: &str) -> bool {
    matches!(attribution::attribute(name).owner, attribution::Owner::Crate(owner) if RUNTIME_CRATES.contains(&owner))
}

impl PublicDomains {
    /// Splits the kernel's symbols (one pass over the `Kernel` domain, no
    /// second scan of the ELF) into the runtime and interface domains, then
    /// combines them. A symbol is public only if *every* crate it names is
    /// in [`SPIN_PUBLIC_CRATES`] (so `RawVec<spindle_kernel::..>::grow_one`,
    /// owned by `alloc`, stays kernel-internal); it goes to the runtime or
    /// the interfaces by its owning crate. Ambiguous names are left out.
    fn from_kernel(kernel: &Domain) -> Self {
        let public = CrateFilter::crates(SPIN_PUBLIC_CRATES).strict(true);
        let mut runtime = Vec::new();
        let mut interfaces = Vec::new();
        for (name, export) in kernel.exports() {
            if export.ambiguous || !public.accepts(name) {
                continue;
            }
            if is_runtime_symbol(name) {
                runtime.push((name, export.address));
            } else {
                interfaces.push((name, export.address));
            }
        }
        let runtime = Domain::from_exports("RustRuntime", runtime);
        let interfaces = Domain::from_exports("SpinInterfaces", interfaces);
        let spin_public = domains::combine("SpinPublic", &runtime, &interfaces)
            .expect("the two parts are disjoint: each symbol went to one");
        Self {
            runtime_exports: runtime.export_count(),
            interface_exports: interfaces.export_count(),
            spin_public,
        }
    }
}

/// Builds the kernel's domains and reads the ramdisk's manifest.
pub fn init() {
    let elf = boot_data::kernel_elf();
    let start = crate::time::uptime_ns();
    let kernel =
        Domain::create_from_static_module("Kernel", elf.bytes, elf.load_bias, &CrateFilter::all())
            .expect("the kernel's own symbol table is valid");
    let index_build_ns = crate::time::uptime_ns() - start;
    let public = PublicDomains::from_kernel(&kernel);
    let compose_ns = crate::time::uptime_ns() - start - index_build_ns;
    let ramdisk = match boot_data::ramdisk().map(Ramdisk::parse) {
        Some(Ok(ramdisk)) => ramdisk,
        Some(Err(e)) => {
            log::error!("ramdisk unreadable, no extensions available: {e}");
            Ramdisk::default()
        }
        None => Ramdisk::default(),
    };
    log::info!(
        "loader: kernel symbol index ({} symbols) built in {} us; SpinPublic = RustRuntime ({}) + SpinInterfaces ({}) = {} symbols, composed in {} us; {} objects in the ramdisk",
        kernel.export_count(),
        index_build_ns / 1000,
        public.runtime_exports,
        public.interface_exports,
        public.spin_public.export_count(),
        compose_ns / 1000,
        ramdisk.entries().len()
    );
    *LOADER.lock() = Some(Loader {
        ramdisk,
        kernel,
        public,
        loaded: Vec::with_capacity(MAX_LOADED),
        region: RegionAllocator::with_capacity(MAX_LOADED),
        index_build_ns,
        compose_ns,
    });
    let autoload: Vec<String> = with(|l| {
        l.ramdisk
            .entries()
            .iter()
            .filter(|e| e.autoload)
            .map(|e| e.name.to_string())
            .collect()
    });
    for name in autoload {
        match load(&name) {
            Ok(report) => log::info!("autoloaded {name} in {} cycles", report.cycles.total()),
            Err(e) => log::error!("autoload of {name} failed: {e}"),
        }
    }
}

fn with<R>(f: impl FnOnce(&mut Loader) -> R) -> R {
    f(LOADER.lock().as_mut().expect("loader::init ran at boot"))
}

/// Loads the extension `name` from the ramdisk.
pub fn load(name: &str) -> Result<LoadReport, LoadError> {
    with(|loader| loader.load(name))
}

/// Unloads the extension `name`.
pub fn unload(name: &str) -> Result<(), UnloadError> {
    with(|loader| loader.unload(name))
}

impl Loader {
    fn load(&mut self, name: &str) -> Result<LoadReport, LoadError> {
        let entry = self
            .ramdisk
            .get(name)
            .cloned()
            .ok_or_else(|| LoadError::NotFound(name.into()))?;
        if self.loaded.iter().any(|l| l.name == name) {
            return Err(LoadError::AlreadyLoaded(name.into()));
        }
        let mut report = LoadReport {
            baseline_copy_cycles: copy_baseline(entry.object),
            ..LoadReport::default()
        };

        // 1. Trust: the signature, before anything else.
        let t = rdtsc();
        entry.verify(PUBLIC_KEY).map_err(LoadError::Signature)?;
        report.cycles.verify = rdtsc() - t;
        let records = spindle_package::bundle::crate_list(entry.object)
            .map_err(LoadError::Bundle)?
            .unwrap_or_default();

        // 2-3. Parse; read and check the descriptor before linking.
        let t = rdtsc();
        let object = Object::parse(entry.object, &Limits::default()).map_err(LoadError::Object)?;
        let descriptor_bytes = object
            .section_bytes(spindle_sdk::DESCRIPTOR_SECTION)
            .ok_or(LoadError::MissingDescriptor)?;
        let descriptor = RawDescriptor::parse(descriptor_bytes).map_err(LoadError::Descriptor)?;
        if let Some((interface, found, expected)) = descriptor.mismatch(&spindle_sdk::INTERFACES) {
            return Err(LoadError::Fingerprint {
                interface,
                found,
                expected,
            });
        }
        if descriptor.name != name {
            return Err(LoadError::NameMismatch {
                manifest: name.into(),
                descriptor: descriptor.name,
            });
        }
        report.cycles.parse = rdtsc() - t;

        // 4. Resolve against SpinPublic and the loaded extensions.
        let t = rdtsc();
        // Its own crate's symbols only: the crates it carries stay private.
        let own_crate = crates::own_crate(&records, name);
        let own = [own_crate.as_str()];
        let mut domain = Domain::create_exporting(name, &object, &CrateFilter::crates(&own))
            .map_err(LoadError::Object)?;
        {
            let mut sources: Vec<&Domain> = Vec::with_capacity(1 + self.loaded.len());
            sources.push(&self.public.spin_public);
            sources.extend(self.loaded.iter().map(|l| &l.domain));
            if let Err(e) = domains::resolve_all(&sources, &mut domain) {
                return Err(self.diagnose(e));
            }
        }
        let depends_on: Vec<String> = self
            .loaded
            .iter()
            .filter(|l| domain.depends_on(l.domain.id()))
            .map(|l| l.name.clone())
            .collect();
        report.imports = object.imports().len();
        report.cycles.resolve = rdtsc() - t;

        // 5. Lay out, allocate, link, map.
        let t = rdtsc();
        let plan = object
            .plan(&LinkOptions::default())
            .map_err(LoadError::Link)?;
        let span = plan
            .contiguous_span(memory::PAGE)
            .map_err(LoadError::Link)?;
        let range = self
            .region
            .allocate(span)
            .ok_or(LoadError::OutOfMemory("extension address region is full"))?;
        let linked = plan
            .contiguous_bases(range.start, memory::PAGE)
            .and_then(|bases| plan.link(bases, &domain))
            .and_then(|image| domain.place(&image).map(|()| image));
        let image = match linked {
            Ok(image) => image,
            Err(e) => {
                self.region.release(&range);
                return Err(LoadError::Link(e));
            }
        };
        report.cycles.link = rdtsc() - t;
        let entry_points = entry_points(&image);
        let t = rdtsc();
        let mapping = match memory::map_image(&image, range.clone()) {
            Ok(mapping) => mapping,
            Err(what) => {
                self.region.release(&range);
                return Err(LoadError::OutOfMemory(what));
            }
        };
        report.cycles.map = rdtsc() - t;
        report.exports = domain.export_count();
        report.relocations = image.stats().total_relocations();
        report.got_slots = plan.got_slots();
        report.stubs = plan.stub_slots();
        for (i, kind) in [SegmentKind::Text, SegmentKind::ReadOnly, SegmentKind::Data]
            .into_iter()
            .enumerate()
        {
            report.segment_sizes[i] = image.segment(kind).bytes.len() as u64;
            report.segment_bases[i] = image.segment(kind).base;
        }
        let (init, exit) = match entry_points {
            Ok(points) => points,
            Err(e) => {
                memory::unmap_image(mapping);
                self.region.release(&range);
                return Err(e);
            }
        };
        drop(image);

        // 6. Run init under a fresh principal.
        let principal = events::authority().issuer.issue(name);
        let context = ExtensionContext::new(principal);
        let t = rdtsc();
        // A panic in `init` unwinds back here and fails the load like an
        // error would.
        let result = match crate::containment::catch(|| init(&context)) {
            Ok(Ok(())) => Ok(()),
            Ok(Err(e)) => Err(LoadError::InitFailed(e.message().into())),
            Err(panicked) => Err(LoadError::InitPanicked(panicked)),
        };
        report.cycles.init = rdtsc() - t;
        if let Err(error) = result {
            let principal = context.principal().clone();
            let revocation = events::authority().issuer.revoke(&principal);
            log::info!(
                "{name}: init did not complete; undoing the load (revoked {} binding(s))",
                revocation.uninstalled
            );
            drop(context);
            if wait_for_bindings(&|| principal.alive_binding_objects()) {
                memory::unmap_image(mapping);
                self.region.release(&range);
            } else {
                log::error!(
                    "{name}: handlers still referenced after a failed init; its memory is kept"
                );
            }
            return Err(error);
        }
        self.loaded.push(Loaded {
            name: name.into(),
            crates: records,
            domain,
            context,
            exit,
            mapping,
            depends_on,
            report: report.clone(),
        });
        Ok(report)
    }

    fn unload(&mut self, name: &str) -> Result<(), UnloadError> {
        let index = self
            .loaded
            .iter()
            .position(|l| l.name == name)
            .ok_or_else(|| UnloadError::NotLoaded(name.into()))?;
        let dependents: Vec<String> = self
            .loaded
            .iter()
            .filter(|l| l.depends_on.iter().any(|d| d == name))
            .map(|l| l.name.clone())
            .collect();
        if !dependents.is_empty() {
            return Err(UnloadError::InUse {
                name: name.into(),
                dependents,
            });
        }
        let extension = self.loaded.remove(index);
        // A panic in `exit` unwinds back here; the unload goes on (revoke,
        // wait, free), so a failing exit cannot keep an extension loaded.
        if let Err(panicked) = crate::containment::catch(|| (extension.exit)(&extension.context)) {
            crate::println!("{name}: exit {panicked}; unloading it anyway");
        }
        let principal = extension.context.principal().clone();
        let revocation = events::authority().issuer.revoke(&principal);
        if revocation.uninstalled > 0 {
            log::info!(
                "{name}: revoked {} binding(s) left installed by exit",
                revocation.uninstalled
            );
        }
        drop(extension.context);
        if !wait_for_bindings(&|| principal.alive_binding_objects()) {
            let alive = principal.alive_binding_objects();
            // Keep the memory (leak it deliberately) rather than free code
            // that a raise may still call.
            core::mem::forget(extension.mapping);
            return Err(UnloadError::BindingsStillAlive {
                name: name.into(),
                alive,
            });
        }
        drop(principal);
        let range = extension.mapping.range.clone();
        memory::unmap_image(extension.mapping);
        self.region.release(&range);
        drop(extension.domain);
        Ok(())
    }

    /// Explains an unresolved-symbols error: kernel-internal symbols and
    /// symbols of extensions that are not loaded are named as such.
    fn diagnose(&self, error: domains::Error) -> LoadError {
        let domains::Error::Unresolved {
            searched, symbols, ..
        } = error
        else {
            return LoadError::Object(error);
        };
        let symbols = symbols
            .into_iter()
            .map(|symbol| {
                let owner = match attribution::attribute(&symbol.name).owner {
                    attribution::Owner::Crate(name) => Some(name.to_string()),
                    attribution::Owner::Unknown => None,
                };
                let reason = if let Some(bound) = domains::bounds::section_bound(&symbol.name) {
                    MissingReason::SectionBound(bound.section.into())
                } else if self.kernel.lookup(&symbol.name).is_some() {
                    MissingReason::KernelInternal
                } else {
                    self.provider_of(&symbol.name)
                        .unwrap_or(MissingReason::Unknown)
                };
                MissingSymbol {
                    name: symbol.name,
                    owner,
                    reason,
                }
            })
            .collect();
        LoadError::Unresolved { searched, symbols }
    }

    /// An extension of the ramdisk that defines `symbol`: one that exports
    /// it but is not loaded, or one that carries its crate privately.
    fn provider_of(&self, symbol: &str) -> Option<MissingReason> {
        self.ramdisk
            .entries()
            .iter()
            .filter(|e| e.kind == Kind::Extension)
            .find_map(|e| {
                let object = Object::parse(e.object, &Limits::default()).ok()?;
                if !object.global_definitions().any(|x| x == symbol) {
                    return None;
                }
                let list = spindle_package::bundle::crate_list(e.object)
                    .ok()
                    .flatten()
                    .unwrap_or_default();
                if !crates::exports(&crates::own_crate(&list, e.name), symbol) {
                    Some(MissingReason::CarriedPrivately(e.name.to_string()))
                } else if !self.loaded.iter().any(|l| l.name == e.name) {
                    Some(MissingReason::ExtensionNotLoaded(e.name.to_string()))
                } else {
                    None
                }
            })
    }
}

/// Waits (at most about a second) until `alive()` reports no live binding
/// objects; raises in progress drop theirs when they return.
fn wait_for_bindings(alive: &dyn Fn() -> usize) -> bool {
    let deadline = crate::time::uptime_ns() + 1_000_000_000;
    while alive() > 0 {
        if crate::time::uptime_ns() > deadline {
            return false;
        }
        x86_64::instructions::hlt();
    }
    true
}

/// Reads the relocated `init`/`exit` addresses from the linked descriptor and
/// checks that both lie in the image's text segment.
fn entry_points(image: &domains::LinkedImage) -> Result<(InitFn, ExitFn), LoadError> {
    let descriptor = image
        .require_symbol(spindle_sdk::DESCRIPTOR_SYMBOL)
        .map_err(|_| LoadError::MissingDescriptor)?;
    let text = image.segment(SegmentKind::Text).range();
    let read = |offset: usize, which: &'static str| -> Result<u64, LoadError> {
        let address = image
            .read_u64(descriptor + offset as u64)
            .map_err(LoadError::Link)?;
        if text.contains(&address) {
            Ok(address)
        } else {
            Err(LoadError::BadEntryPoint { which, address })
        }
    };
    let init = read(ExtensionDescriptor::INIT_OFFSET, "init")?;
    let exit = read(ExtensionDescriptor::EXIT_OFFSET, "exit")?;
    // SAFETY: both addresses are the relocated values of the descriptor's
    // `init: InitFn` and `exit: ExitFn` fields and lie in the image's text,
    // which is mapped executable. The extension was compiled by this build
    // (its signature verified) against the same SDK (its fingerprints
    // matched), so the functions have exactly these Rust signatures.
    unsafe {
        Ok((
            core::mem::transmute::<u64, InitFn>(init),
            core::mem::transmute::<u64, ExitFn>(exit),
        ))
    }
}

/// Cycles to copy `bytes` once into a fresh buffer: the baseline a load is
/// compared with.
fn copy_baseline(bytes: &[u8]) -> u64 {
    let t = rdtsc();
    let copy = bytes.to_vec();
    let cycles = rdtsc() - t;
    core::hint::black_box(&copy);
    cycles
}

/// The address range of a loaded extension's image, and the ranges of its
/// text, read-only and data segments.
pub fn image_ranges(name: &str) -> Option<[core::ops::Range<u64>; 4]> {
    with(|loader| {
        let l = loader.loaded.iter().find(|l| l.name == name)?;
        let [text, rodata, data] = l.report.segment_bases;
        let sizes = l.report.segment_sizes;
        Some([
            l.mapping.range.clone(),
            text..text + sizes[0],
            rodata..rodata + sizes[1],
            data..data + sizes[2],
        ])
    })
}

/// Prints every object in the ramdisk and its state (`ext list`).
pub fn list() {
    with(|loader| {
        crate::println!(
            "{:<18} {:<9} {:>9} {:<7} {:<8} STATE",
            "NAME",
            "KIND",
            "BYTES",
            "VERSION",
            "SIGNED"
        );
        for entry in loader.ramdisk.entries() {
            let state = match loader.loaded.iter().find(|l| l.name == entry.name) {
                Some(l) => alloc::format!(
                    "loaded at {:#x} ({} pages)",
                    l.mapping.range.start,
                    l.mapping.pages()
                ),
                None => String::from("available"),
            };
            let kind = match entry.kind {
                Kind::Extension => "extension",
                Kind::Fixture => "fixture",
            };
            let signed = if entry.signature.is_some() {
                "yes"
            } else {
                "no"
            };
            crate::println!(
                "{:<18} {:<9} {:>9} {:<7} {:<8} {state}",
                entry.name,
                kind,
                entry.object.len(),
                entry.version,
                signed
            );
        }
        crate::println!(
            "{} loaded, {} KiB of extension address space in use",
            loader.loaded.len(),
            loader.region.used_bytes() / 1024
        );
    });
}

/// Prints what is known about one extension (`ext info`).
pub fn info(name: &str) -> Result<(), String> {
    with(|loader| {
        let entry = loader
            .ramdisk
            .get(name)
            .ok_or_else(|| alloc::format!("no extension '{name}' in the ramdisk"))?;
        let digest: String = entry
            .sha256
            .iter()
            .take(8)
            .map(|b| alloc::format!("{b:02x}"))
            .collect();
        crate::println!(
            "{name} {} ({:?}), {} bytes, sha256 {digest}...",
            entry.version,
            entry.kind,
            entry.object.len()
        );
        let loaded = loader.loaded.iter().find(|l| l.name == name);
        match crate_list(entry, loaded) {
            Ok(crates) if crates.is_empty() => {
                crate::println!("crates: (a plain object, no crate list)")
            }
            Ok(crates) => {
                crate::println!("crates (listed inside the signed object):");
                for line in self::crates::describe(&crates) {
                    crate::println!("  {line}");
                }
            }
            Err(why) => crate::println!("crates: {why}"),
        }
        match loaded {
            None => crate::println!("state: available (not loaded)"),
            Some(l) => {
                let r = &l.report;
                let c = &r.cycles;
                crate::println!(
                    "state: loaded at {:#x}..{:#x}, principal '{}' with {} live binding object(s)",
                    l.mapping.range.start,
                    l.mapping.range.end,
                    l.context.principal().name(),
                    l.context.principal().alive_binding_objects()
                );
                crate::println!(
                    "segments: text {} B (RX), rodata {} B (R), data+bss {} B (RW); {} GOT slots, {} far-call stubs; {} unwind table(s) registered",
                    r.segment_sizes[0],
                    r.segment_sizes[1],
                    r.segment_sizes[2],
                    r.got_slots,
                    r.stubs,
                    l.mapping.unwind_tables()
                );
                crate::println!(
                    "symbols: {} imports, {} exports, {} relocations applied",
                    r.imports,
                    r.exports,
                    r.relocations
                );
                crate::println!("load: {c}");
                crate::println!(
                    "baseline: copying the object once took {} cycles (load = {:.1}x)",
                    r.baseline_copy_cycles,
                    r.baseline_ratio()
                );
                let dependents: Vec<&str> = loader
                    .loaded
                    .iter()
                    .filter(|o| o.depends_on.iter().any(|d| d == name))
                    .map(|o| o.name.as_str())
                    .collect();
                crate::println!(
                    "depends on: {}",
                    if l.depends_on.is_empty() {
                        String::from("-")
                    } else {
                        l.depends_on.join(", ")
                    }
                );
                crate::println!(
                    "used by: {}",
                    if dependents.is_empty() {
                        String::from("-")
                    } else {
                        dependents.join(", ")
                    }
                );
            }
        }
        Ok(())
    })
}

/// The crate list of `entry`: the one checked at load if it is loaded,
/// else read after checking the signature.
fn crate_list(
    entry: &spindle_package::Entry<'_>,
    loaded: Option<&Loaded>,
) -> Result<Vec<spindle_package::bundle::CrateRecord>, String> {
    if let Some(l) = loaded {
        return Ok(l.crates.clone());
    }
    entry
        .verify(PUBLIC_KEY)
        .map_err(|e| alloc::format!("not shown: {e}"))?;
    spindle_package::bundle::crate_list(entry.object)
        .map(Option::unwrap_or_default)
        .map_err(|e| alloc::format!("{e}"))
}

/// Prints every domain (`domains`).
pub fn list_domains() {
    with(|loader| {
        crate::println!("{:<16} {:>8} {:>8}  NOTES", "DOMAIN", "EXPORTS", "IMPORTS");
        let p = &loader.public;
        crate::println!(
            "{:<16} {:>8} {:>8}  every kernel symbol (create-from-module, built in {} us); explains failures, never linked against",
            "Kernel",
            loader.kernel.export_count(),
            0,
            loader.index_build_ns / 1000
        );
        crate::println!(
            "{:<16} {:>8} {:>8}  {}",
            "RustRuntime",
            p.runtime_exports,
            0,
            RUNTIME_CRATES.join(", ")
        );
        crate::println!(
            "{:<16} {:>8} {:>8}  the other public crates",
            "SpinInterfaces",
            p.interface_exports,
            0
        );
        crate::println!(
            "{:<16} {:>8} {:>8}  = combine(RustRuntime, SpinInterfaces), composed in {} us; extensions link here",
            "SpinPublic",
            p.spin_public.export_count(),
            0,
            loader.compose_ns / 1000
        );
        for l in &loader.loaded {
            let sources: Vec<&str> = l.domain.sources().collect();
            crate::println!(
                "{:<16} {:>8} {:>8}  resolved against {}",
                l.name,
                l.domain.export_count(),
                l.domain.imports().len(),
                sources.join(", ")
            );
        }
    });
}

/// Prints a domain's exports, demangled, optionally filtered (`domain`).
pub fn show_domain(name: &str, filter: Option<&str>) -> Result<(), String> {
    const SHOWN: usize = 40;
    with(|loader| {
        // The two parts of SpinPublic are views of it.
        let part: Option<bool> = match name {
            "RustRuntime" => Some(true),
            "SpinInterfaces" => Some(false),
            _ => None,
        };
        let domain = match name {
            "SpinPublic" | "RustRuntime" | "SpinInterfaces" => &loader.public.spin_public,
            "Kernel" => &loader.kernel,
            other => {
                &loader
                    .loaded
                    .iter()
                    .find(|l| l.name == other)
                    .ok_or_else(|| alloc::format!("no domain '{other}' (see 'domains')"))?
                    .domain
            }
        };
        let mut exports: Vec<(String, u64)> = domain
            .exports()
            .filter(|(symbol, _)| part.is_none_or(|runtime| is_runtime_symbol(symbol) == runtime))
            .map(|(symbol, _)| {
                (
                    alloc::format!("{:#}", rustc_demangle::demangle(symbol)),
                    domain.address_of(symbol).unwrap_or(0),
                )
            })
            .filter(|(shown, _)| filter.is_none_or(|f| shown.contains(f)))
            .collect();
        exports.sort();
        crate::println!(
            "domain {name}: {} exports{}",
            exports.len(),
            filter
                .map(|f| alloc::format!(" matching '{f}'"))
                .unwrap_or_default()
        );
        for (symbol, address) in exports.iter().take(SHOWN) {
            crate::println!("  {address:#018x}  {symbol}");
        }
        if exports.len() > SHOWN {
            crate::println!(
                "  ... {} more (give a filter: domain {name} FILTER)",
                exports.len() - SHOWN
            );
        }
        Ok(())
    })
}
