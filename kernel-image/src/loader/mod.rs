//! The kernel's side of the extension loader.
//!
//! The policy — the pipeline, `SpinPublic`, the dependencies, every undo
//! path — is the `loader` crate (host-tested, `forbid(unsafe_code)`). This
//! module supplies what needs the machine ([`KernelPlatform`]): an image's
//! range, frames and W^X mappings through the VirtAddr, PhysAddr and
//! Translation services, owned by the extension's principal ([`memory`]), the one
//! cast from the loader's checked entry addresses to `init`/`exit`, a
//! bounded wait for raises in progress, and the TSC. At boot it builds the
//! `Kernel` domain from the kernel's own symbol table, reads the ramdisk
//! into the catalogue and loads the extensions marked `autoload`.

pub mod churn;
pub mod memory;

use alloc::boxed::Box;
use alloc::string::String;
use alloc::vec::Vec;
use core::sync::atomic::{AtomicBool, Ordering};

use ::extension_heap::{Account, Released, SlotsFull};
use dispatcher::Principal;
use domains::{CrateFilter, Domain};
use loader::{
    Catalogue, Config, EntryPoints, HeapEntries, InitFailure, Loader, MapError, MapRequest, Panic,
    Platform,
};
use spindle_package::Ramdisk;
use spindle_sdk::{ExitFn, ExtensionContext, InitFn};

pub use loader::{LoadError, LoadReport, UnloadError, UnloadReport};

use crate::arch::rdtsc;
use crate::boot_data;
use crate::events;
use crate::memory::extension_heap as heaps;

/// The public key of the build that signed the extensions.
static PUBLIC_KEY: &[u8; 32] = include_bytes!(concat!(env!("OUT_DIR"), "/extension-signing.pub"));

/// How long the kernel waits for raises in progress to let go of an
/// unloaded extension's handlers before it keeps the memory for later
/// collection. Generous: under an emulator on a busy host a strand parked
/// inside a raise may wait seconds of wall-clock time for its next turn.
const RELEASE_WAIT_NS: u64 = 5_000_000_000;

/// The machine's side of loading.
pub struct KernelPlatform;

impl KernelPlatform {
    /// The extension's `init` as a function pointer.
    fn init_fn(entry: &EntryPoints) -> InitFn {
        // SAFETY: `EntryPoints` is made only by the loader crate, after
        // checking that the address is the relocated `init` field of the
        // descriptor of a signed object built against this kernel's SDK
        // (its fingerprints matched, so the field has type `InitFn`), and
        // that it lies in the image's text segment; the loader calls
        // `call_init` only while that image is mapped executable.
        unsafe { core::mem::transmute::<u64, InitFn>(entry.init()) }
    }

    /// The extension's `exit` as a function pointer.
    fn exit_fn(entry: &EntryPoints) -> ExitFn {
        // SAFETY: as for `init_fn`, for the descriptor's `exit: ExitFn`.
        unsafe { core::mem::transmute::<u64, ExitFn>(entry.exit()) }
    }
}

impl Platform for KernelPlatform {
    type Mapping = memory::Mapping;
    type Range = memory::ImageRange;

    fn reserve(&mut self, owner: &Principal, bytes: u64) -> Result<memory::ImageRange, MapError> {
        memory::reserve(owner, bytes)
    }

    fn map(
        &mut self,
        request: &MapRequest<'_>,
        range: memory::ImageRange,
    ) -> Result<memory::Mapping, MapError> {
        memory::map_image(request, range)
    }

    /// Unmaps the image, then takes back whatever the extension still
    /// held in the memory services (ranges and frames it never returned,
    /// whoever holds the capabilities now).
    fn unmap(&mut self, owner: &Principal, mapping: memory::Mapping) {
        memory::unmap_image(mapping);
        let (ranges, frames) = crate::memory::services::release_owner(owner.id());
        if ranges > 0 || frames > 0 {
            log::info!(
                "{}: took back {ranges} range(s) and {frames} frame(s) it still held",
                owner.name()
            );
        }
    }

    fn call_init(
        &mut self,
        entry: &EntryPoints,
        context: &ExtensionContext,
    ) -> Result<(), InitFailure> {
        // A panic in `init` unwinds back here and fails the load like an
        // error would.
        match crate::containment::catch(|| Self::init_fn(entry)(context)) {
            Ok(Ok(())) => Ok(()),
            Ok(Err(error)) => Err(InitFailure::Error(error)),
            Err(panicked) => Err(InitFailure::Panic(panic_record(&panicked))),
        }
    }

    fn call_exit(&mut self, entry: &EntryPoints, context: &ExtensionContext) -> Result<(), Panic> {
        crate::containment::catch(|| Self::exit_fn(entry)(context))
            .map_err(|panicked| panic_record(&panicked))
    }

    /// Before the image goes: the strands the extension spawned are killed
    /// and reaped (their code is in the image), its scheduling policy is
    /// retired (its strands go back to round-robin), and then raises in
    /// progress get a bounded time to let go of its handlers.
    fn wait_for_release(&mut self, principal: &Principal) -> bool {
        stop_strands_and_policy(principal);
        let deadline = crate::time::uptime_ns() + RELEASE_WAIT_NS;
        while principal.alive_binding_objects() > 0 {
            if crate::time::uptime_ns() > deadline {
                return false;
            }
            // Let the strands holding them run (and return).
            if crate::strands::sleep_ticks(1).is_err() {
                x86_64::instructions::hlt();
            }
        }
        true
    }

    fn cycles(&self) -> u64 {
        rdtsc()
    }

    fn take_heap(&mut self, _name: &str) -> Result<Option<HeapEntries>, SlotsFull> {
        let slot = heaps::take(heaps::DEFAULT_QUOTA)?;
        Ok(heaps::entries(slot).map(|e| HeapEntries {
            slot,
            alloc: e.alloc,
            alloc_zeroed: e.alloc_zeroed,
            realloc: e.realloc,
        }))
    }

    /// Once retired tables are freed (a grace period), a heap that still
    /// has live blocks gets the event tables the extension's code compiled
    /// (its install and uninstall instantiate the dispatcher's generic code
    /// in its object, so they were allocated from its heap) compiled again
    /// by the kernel, and another grace period; then the heap is released.
    fn release_heap(&mut self, name: &str, slot: usize) -> Released {
        dispatcher::read_side::synchronize();
        if heaps::usage(slot).is_some_and(|heap| !heap.is_empty()) {
            dispatcher::registry::republish_all(events::capability());
            dispatcher::read_side::synchronize();
        }
        let released = heaps::release(slot);
        if let Released::Kept { bytes, blocks } = released {
            log::debug!("{name}: heap kept ({bytes} bytes in {blocks} blocks)");
        }
        released
    }

    fn heap_usage(&self, slot: usize) -> Option<Account> {
        heaps::usage(slot)
    }
}

/// Undoes what an extension may have left in the strand service: its
/// strands are killed and reaped, and its scheduling policy is retired.
fn stop_strands_and_policy(principal: &Principal) {
    let capability = events::capability();
    let name = principal.name();
    let killed = strand::service::kill_owned_by(capability, principal.id());
    for &id in &killed {
        // Gone already is just as good.
        let _ = strand::service::join_any(capability, id);
    }
    if !killed.is_empty() {
        log::info!("{name}: killed {} strand(s) it left running", killed.len());
    }
    let moved = strand::service::retire_policy_of(capability, principal.id());
    if moved > 0 {
        log::info!("{name}: its policy's {moved} strand(s) went back to round-robin");
    }
}

/// The loader's copy of a caught panic.
fn panic_record(panicked: &crate::containment::Panicked) -> Panic {
    Panic {
        message: alloc::format!("{}", panicked.message),
        file: String::from(panicked.file.as_str()),
        line: panicked.line,
        column: panicked.column,
    }
}

/// What building the domains cost at boot, for `domains`.
#[derive(Clone, Copy, Debug, Default)]
pub struct BootFigures {
    /// Indexing the kernel's `.symtab` into the `Kernel` domain.
    pub index_build_ns: u64,
    /// Composing `SpinPublic` from it.
    pub compose_ns: u64,
}

static LOADER: spin::Mutex<Option<Loader<KernelPlatform>>> = spin::Mutex::new(None);
static BOOT_FIGURES: spin::Once<BootFigures> = spin::Once::new();

/// Builds the kernel's domains, reads the ramdisk's manifest into the
/// catalogue and loads the extensions marked `autoload`.
///
/// # Panics
/// If the kernel's own symbol table is malformed (a broken build).
pub fn init() {
    let elf = boot_data::kernel_elf();
    let start = crate::time::uptime_ns();
    let kernel =
        Domain::create_from_static_module("Kernel", elf.bytes, elf.load_bias, &CrateFilter::all())
            .expect("the kernel's own symbol table is valid");
    let index_build_ns = crate::time::uptime_ns() - start;
    let ramdisk = match boot_data::ramdisk().map(Ramdisk::parse) {
        Some(Ok(ramdisk)) => ramdisk,
        Some(Err(e)) => {
            log::error!("ramdisk unreadable, no extensions available: {e}");
            Ramdisk::default()
        }
        None => Ramdisk::default(),
    };
    let config = Config::new(*PUBLIC_KEY);
    let catalogue = Catalogue::from_ramdisk(&ramdisk, config.max_pushed);
    let kernel_symbols = kernel.export_count();
    let start = crate::time::uptime_ns();
    let loader = Loader::new(
        KernelPlatform,
        config,
        &events::authority().issuer,
        kernel,
        catalogue,
    );
    let compose_ns = crate::time::uptime_ns() - start;
    let listing = loader.domain_listing();
    log::info!(
        "loader: kernel symbol index ({kernel_symbols} symbols) built in {} us; SpinPublic = RustRuntime ({}) + SpinInterfaces ({}) = {} symbols, composed in {} us; {} objects in the ramdisk",
        index_build_ns / 1000,
        listing.runtime_exports,
        listing.interface_exports,
        listing.spin_public_exports,
        compose_ns / 1000,
        loader.catalogue().entries().len()
    );
    let autoload: Vec<String> = loader.autoload_names();
    BOOT_FIGURES.call_once(|| BootFigures {
        index_build_ns,
        compose_ns,
    });
    *LOADER.lock() = Some(loader);
    for name in autoload {
        match load(&name) {
            Ok(report) => log::info!("autoloaded {name} in {} cycles", report.cycles.total()),
            Err(e) => log::error!("autoload of {name} failed: {e}"),
        }
    }
    // The tables as an unload leaves them (compiled from scratch by the
    // kernel): the figures `mem` shows after a load and an unload are the
    // boot's.
    dispatcher::registry::republish_all(events::capability());
}

/// The boot-time costs of the domains.
pub fn boot_figures() -> BootFigures {
    BOOT_FIGURES.get().copied().unwrap_or_default()
}

/// Runs `f` on the loader.
///
/// # Panics
/// Before [`init`] (boot runs it before the shell and the tests).
pub fn with<R>(f: impl FnOnce(&mut Loader<KernelPlatform>) -> R) -> R {
    f(LOADER.lock().as_mut().expect("loader::init ran at boot"))
}

/// The shell's load or unload in progress, named for a push that
/// arrives meanwhile.
static IN_PROGRESS: spin::Mutex<Option<String>> = spin::Mutex::new(None);

/// Runs `f` on the loader unless a load or unload holds it: brief holders
/// (listings) get a few ticks to let go; otherwise the error names the
/// operation in progress, if known.
pub fn try_with<R>(f: impl FnOnce(&mut Loader<KernelPlatform>) -> R) -> Result<R, Option<String>> {
    for _ in 0..5 {
        if let Some(mut loader) = LOADER.try_lock() {
            return Ok(f(loader.as_mut().expect("loader::init ran at boot")));
        }
        if let Some(what) = IN_PROGRESS.lock().clone() {
            return Err(Some(what));
        }
        if crate::strands::sleep_ticks(1).is_err() {
            x86_64::instructions::hlt();
        }
    }
    Err(IN_PROGRESS.lock().clone())
}

/// Runs `f` on the loader, recording `what` as the operation in progress;
/// if that left memory retained, queues its collection.
fn with_in_progress<R>(what: String, f: impl FnOnce(&mut Loader<KernelPlatform>) -> R) -> R {
    let (result, retained) = with(|loader| {
        *IN_PROGRESS.lock() = Some(what);
        let result = f(loader);
        *IN_PROGRESS.lock() = None;
        (result, loader.has_retained())
    });
    if retained {
        collect_retained_later();
    }
    result
}

/// Whether the background collection of retained memory is queued.
static COLLECTOR_QUEUED: AtomicBool = AtomicBool::new(false);

/// Ticks between two collection attempts.
const COLLECT_EVERY_TICKS: u64 = 10;

/// Makes sure memory retained by an unload (raises in progress still held
/// the extension's handlers, see [`UnloadError::BindingsStillAlive`]) is
/// freed once they let go, even if no further load or unload comes to do
/// it: a kernel strand retries every few ticks while anything is retained.
/// Thread context only.
pub fn collect_retained_later() {
    if COLLECTOR_QUEUED.swap(true, Ordering::AcqRel) {
        return;
    }
    crate::strands::run_later(Box::new(|| {
        loop {
            if crate::strands::sleep_ticks(COLLECT_EVERY_TICKS).is_err() {
                x86_64::instructions::hlt();
            }
            let left = try_with(|loader| {
                let freed = loader.collect_retained();
                if freed > 0 {
                    log::info!(
                        "loader: freed the memory of {freed} unloaded extension(s) once their handlers were let go"
                    );
                }
                loader.has_retained()
            });
            if left == Ok(false) {
                break;
            }
        }
        COLLECTOR_QUEUED.store(false, Ordering::Release);
        // Retained after the last look, before the flag was cleared.
        if try_with(|loader| loader.has_retained()) != Ok(false) {
            collect_retained_later();
        }
    }));
}

/// The public key extensions must be signed with.
pub fn public_key() -> &'static [u8; 32] {
    PUBLIC_KEY
}

/// Loads the extension `name` from the catalogue.
pub fn load(name: &str) -> Result<LoadReport, LoadError> {
    with_in_progress(alloc::format!("ext load {name}"), |loader| {
        loader.load(name)
    })
}

/// Unloads the extension `name`.
pub fn unload(name: &str) -> Result<UnloadReport, UnloadError> {
    with_in_progress(alloc::format!("ext unload {name}"), |loader| {
        loader.unload(name)
    })
}
