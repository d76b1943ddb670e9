//! The loader's state and its two operations, load and unload, with every
//! undo path a guard.

use alloc::string::{String, ToString};
use alloc::vec::Vec;
use core::ops::Range;

use dispatcher::{Principal, PrincipalIssuer};
use domains::{Domain, DomainId, DomainRegistry, Limits, Object, attribution};
use spindle_package::Kind;
use spindle_sdk::ExtensionContext;

use crate::catalogue::{Catalogue, CatalogueEntry, CatalogueError};
use crate::crates;
use crate::error::{LoadError, MissingReason, MissingSymbol, UnloadError};
use crate::heap::{AllocatorShims, HeapEntries};
use crate::pipeline;
use crate::platform::{EntryPoints, ImageRange, InitFailure, MapError, MapRequest, Platform};
use crate::policy::{self, PublicPart, PublicSizes, SPIN_PUBLIC};
use crate::report::{
    CatalogueListing, CatalogueRow, Component, DomainExports, DomainListing, DomainRow,
    ExtensionInfo, LoadReport, LoadedInfo, UnloadReport,
};

/// Stage 1, as the configuration asks: always the signature check, except
/// in a fuzzing build told to skip it.
fn verify<'a>(
    entry: &'a CatalogueEntry,
    config: &Config,
) -> Result<pipeline::Verified<'a>, LoadError> {
    #[cfg(fuzzing)]
    if config.fuzzing_skips_signature {
        return Ok(pipeline::Verified::assume_verified(
            &entry.name,
            entry.object(),
        ));
    }
    pipeline::verify(entry, &config.public_key)
}

/// The loader's fixed settings.
#[derive(Clone, Debug)]
pub struct Config {
    /// The build's Ed25519 public key: every object must be signed by it.
    pub public_key: [u8; 32],
    /// Page size.
    pub page: u64,
    /// Most extensions loaded at once (room is reserved up front so that a
    /// load and an unload leave the heap exactly as it was).
    pub max_loaded: usize,
    /// Objects that can be pushed at run time besides the ramdisk's.
    pub max_pushed: usize,
    /// The kernel's interface fingerprints (`spindle_sdk::INTERFACES`).
    pub interfaces: &'static [(&'static str, u64)],
    /// Limits for parsing objects.
    pub limits: Limits,
    /// Skip the signature check, so that mutated objects reach the parser.
    /// Exists only in fuzzing builds (cargo-fuzz sets `--cfg fuzzing`; the
    /// kernel is never built with it).
    #[cfg(fuzzing)]
    pub fuzzing_skips_signature: bool,
}

impl Config {
    /// The kernel's settings: 4 KiB pages, 32 extensions, 16 pushed
    /// objects, this SDK's fingerprints, the linker's default limits.
    pub fn new(public_key: [u8; 32]) -> Self {
        Self {
            public_key,
            page: 4096,
            max_loaded: 32,
            max_pushed: 16,
            interfaces: &spindle_sdk::INTERFACES,
            limits: Limits::default(),
            #[cfg(fuzzing)]
            fuzzing_skips_signature: false,
        }
    }
}

struct Loaded<M> {
    name: String,
    domain: DomainId,
    context: ExtensionContext,
    entry: EntryPoints,
    mapping: M,
    report: LoadReport,
    heap: Option<usize>,
}

/// An unloaded extension whose handlers were still referenced: its memory
/// is kept until [`Loader::collect_retained`] finds them gone.
struct Retained<M> {
    name: String,
    principal: Principal,
    mapping: M,
    range: Range<u64>,
    heap: Option<usize>,
}

/// The extension loader. See the [crate docs](crate).
pub struct Loader<P: Platform> {
    platform: P,
    config: Config,
    principals: &'static PrincipalIssuer,
    catalogue: Catalogue,
    /// Every kernel symbol: only to explain failures, never linked against.
    kernel: Domain,
    /// The allocator shims' names, rebound per extension to its heap.
    shims: AllocatorShims,
    public_sizes: PublicSizes,
    /// `SpinPublic` and one domain per loaded extension. Its dependency
    /// edges (which domain imports from which) are the extensions'
    /// dependencies.
    domains: DomainRegistry,
    loaded: Vec<Loaded<P::Mapping>>,
    retained: Vec<Retained<P::Mapping>>,
}

impl<P: Platform> Loader<P> {
    /// A loader over `catalogue`, resolving extensions against the
    /// `SpinPublic` domain composed from `kernel` (the kernel's own symbol
    /// table, see [`policy`]); `principals` mints each extension's identity.
    pub fn new(
        platform: P,
        config: Config,
        principals: &'static PrincipalIssuer,
        kernel: Domain,
        catalogue: Catalogue,
    ) -> Self {
        let (spin_public, public_sizes) = policy::compose_spin_public(&kernel);
        let mut domains = DomainRegistry::new();
        // The registry is empty: the name cannot be taken.
        let _ = domains.insert(spin_public);
        let shims = AllocatorShims::find(&kernel);
        Self {
            shims,
            platform,
            loaded: Vec::with_capacity(config.max_loaded),
            retained: Vec::new(),
            config,
            principals,
            catalogue,
            kernel,
            public_sizes,
            domains,
        }
    }

    /// The platform.
    pub fn platform(&self) -> &P {
        &self.platform
    }

    /// The platform, mutably.
    pub fn platform_mut(&mut self) -> &mut P {
        &mut self.platform
    }

    /// The catalogue.
    pub fn catalogue(&self) -> &Catalogue {
        &self.catalogue
    }

    /// Adds an object to the catalogue (a live push). Replacing an entry
    /// is refused while an extension of that name is loaded: unload it
    /// first.
    pub fn push(
        &mut self,
        entry: CatalogueEntry,
        replace: bool,
    ) -> Result<Option<CatalogueEntry>, CatalogueError> {
        if replace && self.is_loaded(&entry.name) {
            return Err(CatalogueError::Loaded(entry.name));
        }
        self.catalogue.push(entry, replace)
    }

    /// Takes a catalogue entry out again (a pushed object whose load
    /// failed). Refused while an extension of that name is loaded.
    pub fn withdraw(&mut self, name: &str) -> Result<Option<CatalogueEntry>, CatalogueError> {
        if self.is_loaded(name) {
            return Err(CatalogueError::Loaded(name.into()));
        }
        Ok(self.catalogue.remove(name))
    }

    /// Whether `name` is loaded.
    pub fn is_loaded(&self, name: &str) -> bool {
        self.loaded.iter().any(|l| l.name == name)
    }

    /// Names of the loaded extensions, in load order.
    pub fn loaded_names(&self) -> impl Iterator<Item = &str> + '_ {
        self.loaded.iter().map(|l| l.name.as_str())
    }

    /// Names of the catalogue's extensions marked for loading at boot.
    pub fn autoload_names(&self) -> Vec<String> {
        self.catalogue
            .entries()
            .iter()
            .filter(|e| e.autoload)
            .map(|e| e.name.clone())
            .collect()
    }

    /// Loads the extension `name` from the catalogue: verify → parse and
    /// check the descriptor → resolve → link, place and check the entry
    /// points → map (W^X, owned by a fresh principal) → `init`. Any failure
    /// undoes every step taken (guards), and the error says which check
    /// failed. Retained memory whose handlers are free by now is collected
    /// first ([`Loader::collect_retained`]).
    pub fn load(&mut self, name: &str) -> Result<LoadReport, LoadError> {
        self.collect_retained();
        if self.catalogue.get(name).is_none() {
            return Err(LoadError::NotFound(name.into()));
        }
        if self.is_loaded(name) {
            return Err(LoadError::AlreadyLoaded(name.into()));
        }
        if self.loaded.len() >= self.config.max_loaded {
            return Err(LoadError::TooMany {
                max: self.config.max_loaded,
            });
        }
        let heap = self.platform.take_heap(name).map_err(LoadError::NoHeap)?;
        let result = self.load_with_heap(name, heap);
        if result.is_err()
            && let Some(heap) = heap
            && !self.retained.iter().any(|r| r.heap == Some(heap.slot))
        {
            self.platform.release_heap(name, heap.slot);
        }
        result
    }

    /// [`Loader::load`] once the heap is taken: its allocator imports are
    /// resolved against `heap` first.
    fn load_with_heap(
        &mut self,
        name: &str,
        heap: Option<HeapEntries>,
    ) -> Result<LoadReport, LoadError> {
        let Self {
            platform,
            config,
            principals,
            catalogue,
            kernel,
            shims,
            domains,
            loaded,
            retained,
            ..
        } = self;
        let entry = catalogue
            .get(name)
            .ok_or_else(|| LoadError::NotFound(name.into()))?;
        let mut report = LoadReport {
            baseline_copy_cycles: copy_baseline(&*platform, entry.object()),
            ..LoadReport::default()
        };

        // 1. Trust: the signature, before anything else is read.
        let t = platform.cycles();
        let verified = verify(entry, config)?;
        report.cycles.verify = platform.cycles().saturating_sub(t);

        // 2. Parse; read and check the descriptor.
        let t = platform.cycles();
        report.components = crates::components(verified.object()).map_err(LoadError::Bundle)?;
        let inspected = pipeline::inspect(verified, &config.limits, config.interfaces)?;
        if report.components.is_empty() {
            report.components = alloc::vec![Component {
                name: inspected.descriptor.name.clone(),
                version: inspected.descriptor.version.clone(),
                role: spindle_package::bundle::Role::Extension,
            }];
        }
        report.cycles.parse = platform.cycles().saturating_sub(t);

        // 3. Resolve against SpinPublic, then the loaded extensions in load
        //    order (the first source exporting a name wins). The domain
        //    exports the extension's own crate: what it carries stays
        //    private to it.
        let t = platform.cycles();
        let mut domain = crates::domain(name, &inspected.object, &report.components)
            .map_err(LoadError::Object)?;
        {
            let heap_domain = heap.map(|heap| shims.domain(name, &heap));
            let mut sources: Vec<&Domain> = Vec::with_capacity(2 + loaded.len());
            sources.extend(heap_domain.as_ref());
            sources.extend(domains.get(SPIN_PUBLIC));
            sources.extend(loaded.iter().filter_map(|l| domains.get(&l.name)));
            domains::resolve_all(&sources, &mut domain)
                .map_err(|e| diagnose(e, kernel, catalogue, loaded, &config.limits))?;
        }
        report.imports = domain.imports().len();
        report.cycles.resolve = platform.cycles().saturating_sub(t);

        // 4. Lay out, reserve a range for the extension's principal (it
        //    owns the image's memory), link for it, place, check the entry
        //    points. Dropping the range on a later failure gives it back.
        let t = platform.cycles();
        let plan = pipeline::plan(&inspected.object)?;
        let span = plan.contiguous_span(config.page).map_err(LoadError::Link)?;
        let principal = principals.issue(name);
        let range = platform.reserve(&principal, span).map_err(|e| match e {
            MapError::AddressSpaceFull { bytes } => LoadError::AddressSpaceFull { bytes },
            other => LoadError::Map(other),
        })?;
        let linked = pipeline::link(&plan, range.addresses().start, config.page, &mut domain)?;
        report.range = range.addresses();
        report.exports = domain.export_count();
        report.relocations = linked.image.stats().total_relocations();
        report.got_slots = plan.got_slots();
        report.stubs = plan.stub_slots();
        report.segments = linked.image.segments().clone().map(|s| s.range());
        report.unwind_tables = linked.image.unwind_tables().count();
        report.cycles.link = platform.cycles().saturating_sub(t);
        // Its exports become visible to later loads only once registered;
        // the guard unregisters it if a later step fails.
        let registered = RegisteredDomain::insert(domains, domain)?;

        // 5. Map into the range, owned by the extension's principal.
        let t = platform.cycles();
        let mut mapped = MappedImage::map(
            platform,
            principal.clone(),
            &MapRequest {
                owner: &principal,
                range: &report.range,
                image: &linked.image,
            },
            range,
        )?;
        let entry_points = linked.entry;
        drop(linked.image);
        report.cycles.map = mapped.platform().cycles().saturating_sub(t);

        // 6. Run init.
        let context = ExtensionContext::new(principal);
        let t = mapped.platform().cycles();
        let result = mapped.platform().call_init(&entry_points, &context);
        report.cycles.init = mapped.platform().cycles().saturating_sub(t);
        if let Err(failure) = result {
            let principal = context.principal().clone();
            principals.revoke(&principal);
            drop(context);
            if !mapped.platform().wait_for_release(&principal) {
                // A raise still holds one of its handlers: keep the memory.
                retained.push(Retained {
                    name: name.to_string(),
                    principal,
                    mapping: mapped.commit(),
                    range: report.range.clone(),
                    heap: heap.map(|h| h.slot),
                });
            }
            return Err(match failure {
                InitFailure::Error(error) => LoadError::InitFailed(error.message().into()),
                InitFailure::Panic(panic) => LoadError::InitPanicked(panic),
            });
        }
        loaded.push(Loaded {
            name: name.to_string(),
            domain: registered.commit(),
            context,
            entry: entry_points,
            mapping: mapped.commit(),
            report: report.clone(),
            heap: heap.map(|h| h.slot),
        });
        Ok(report)
    }

    /// Unloads `name`: refused while another loaded extension imports from
    /// it; otherwise calls its `exit`, revokes its principal (every binding
    /// it still has), waits for raises in progress to let go of its
    /// handlers, unmaps it and gives its range back.
    pub fn unload(&mut self, name: &str) -> Result<UnloadReport, UnloadError> {
        self.unload_with(name, true)
    }

    /// Unloads a *failed* extension (one that panicked or overran): the same
    /// as [`Loader::unload`] but its `exit` is not called. Extensions that
    /// import from it must be unloaded first ([`UnloadError::InUse`] lists
    /// them).
    pub fn unload_failed(&mut self, name: &str) -> Result<UnloadReport, UnloadError> {
        self.unload_with(name, false)
    }

    fn unload_with(&mut self, name: &str, call_exit: bool) -> Result<UnloadReport, UnloadError> {
        self.collect_retained();
        let index = self
            .loaded
            .iter()
            .position(|l| l.name == name)
            .ok_or_else(|| UnloadError::NotLoaded(name.into()))?;
        let dependents = self.dependents(name);
        if !dependents.is_empty() {
            return Err(UnloadError::InUse {
                name: name.into(),
                dependents,
            });
        }
        let Loaded {
            name,
            context,
            entry,
            mapping,
            report,
            heap,
            ..
        } = self.loaded.remove(index);
        // A panic in `exit` does not stop the unload: a failing exit cannot
        // keep an extension loaded.
        let exit_panicked = if call_exit {
            self.platform.call_exit(&entry, &context).err()
        } else {
            None
        };
        let principal = context.principal().clone();
        let revocation = self.principals.revoke(&principal);
        drop(context);
        // Nothing imports from it (checked above), so this cannot be refused.
        let _ = self.domains.destroy(&name);
        if !self.platform.wait_for_release(&principal) {
            let alive = principal.alive_binding_objects();
            self.retained.push(Retained {
                name: name.clone(),
                principal,
                mapping,
                range: report.range,
                heap,
            });
            return Err(UnloadError::BindingsStillAlive {
                name,
                revoked: revocation.uninstalled,
                alive,
            });
        }
        self.platform.unmap(&principal, mapping);
        let heap = heap.map(|slot| self.platform.release_heap(&name, slot));
        Ok(UnloadReport {
            exit_called: call_exit,
            exit_panicked,
            revoked: revocation.uninstalled,
            heap,
        })
    }

    /// Whether memory of unloaded extensions is retained because raises
    /// in progress still held their handlers when they were unloaded.
    pub fn has_retained(&self) -> bool {
        !self.retained.is_empty()
    }

    /// Frees the memory of retained extensions whose handlers are no longer
    /// referenced; returns how many were freed. Every load and unload
    /// calls it first; the kernel also calls it from a background job
    /// while anything is retained.
    pub fn collect_retained(&mut self) -> usize {
        let mut freed = 0;
        let mut index = 0;
        while index < self.retained.len() {
            if self.retained[index].principal.alive_binding_objects() > 0 {
                index += 1;
                continue;
            }
            let retained = self.retained.swap_remove(index);
            self.platform.unmap(&retained.principal, retained.mapping);
            if let Some(slot) = retained.heap {
                self.platform.release_heap(&retained.name, slot);
            }
            freed += 1;
        }
        if self.retained.is_empty() {
            // Its buffer too: memory figures after an unload that had to
            // wait are then those of one that did not.
            self.retained = Vec::new();
        }
        freed
    }

    /// Loaded extensions that import from `name`, in load order.
    pub fn dependents(&self, name: &str) -> Vec<String> {
        let importers = self.domains.dependents(name);
        self.loaded
            .iter()
            .filter(|l| importers.contains(&l.name.as_str()))
            .map(|l| l.name.clone())
            .collect()
    }

    /// Loaded extensions `name` imports from, in load order.
    pub fn dependencies(&self, name: &str) -> Vec<String> {
        let Some(domain) = self.domains.get(name) else {
            return Vec::new();
        };
        self.loaded
            .iter()
            .filter(|l| l.name != name && domain.depends_on(l.domain))
            .map(|l| l.name.clone())
            .collect()
    }

    /// `ext list`.
    pub fn catalogue_listing(&self) -> CatalogueListing {
        let rows = self
            .catalogue
            .entries()
            .iter()
            .map(|e| CatalogueRow {
                name: e.name.clone(),
                kind: e.kind,
                bytes: e.object().len(),
                version: e.version.clone(),
                signed: e.signature.is_some(),
                origin: e.origin,
                loaded_at: self
                    .loaded
                    .iter()
                    .find(|l| l.name == e.name)
                    .map(|l| l.report.range.clone()),
            })
            .collect();
        CatalogueListing {
            rows,
            loaded: self.loaded.len(),
            region_used_bytes: self
                .loaded
                .iter()
                .map(|l| &l.report.range)
                .chain(self.retained.iter().map(|r| &r.range))
                .map(|r| r.end - r.start)
                .sum(),
            retained: self.retained.iter().map(|r| r.name.clone()).collect(),
        }
    }

    /// `ext info NAME`, or `None` if the catalogue has no such object.
    pub fn info(&self, name: &str) -> Option<ExtensionInfo> {
        let entry = self.catalogue.get(name)?;
        let loaded = self.loaded.iter().find(|l| l.name == name).map(|l| {
            let principal = l.context.principal();
            LoadedInfo {
                principal: principal.name().to_string(),
                live_binding_objects: principal.alive_binding_objects(),
                report: l.report.clone(),
                depends_on: self.dependencies(name),
                used_by: self.dependents(name),
                heap: l.heap.and_then(|slot| self.platform.heap_usage(slot)),
            }
        });
        let crates = match &loaded {
            Some(l) => Ok(l.report.components.clone()),
            None => entry
                .verify(&self.config.public_key)
                .map_err(|e| alloc::format!("not shown: {e}"))
                .and_then(|()| {
                    crates::components(entry.object()).map_err(|e| alloc::format!("{e}"))
                }),
        };
        Some(ExtensionInfo {
            name: entry.name.clone(),
            version: entry.version.clone(),
            kind: entry.kind,
            origin: entry.origin,
            bytes: entry.object().len(),
            digest: entry.digest,
            loaded,
            crates,
        })
    }

    /// `domains`.
    pub fn domain_listing(&self) -> DomainListing {
        DomainListing {
            kernel_exports: self.kernel.export_count(),
            runtime_exports: self.public_sizes.runtime,
            interface_exports: self.public_sizes.interfaces,
            spin_public_exports: self
                .domains
                .get(SPIN_PUBLIC)
                .map_or(0, Domain::export_count),
            runtime_crates: policy::RUNTIME_CRATES,
            extensions: self
                .loaded
                .iter()
                .filter_map(|l| self.domains.get(&l.name))
                .map(|d| DomainRow {
                    name: d.name().to_string(),
                    exports: d.export_count(),
                    imports: d.imports().len(),
                    sources: d.sources().map(str::to_string).collect(),
                })
                .collect(),
        }
    }

    /// `domain NAME [FILTER]`: the exports of `Kernel`, `SpinPublic` (or
    /// one of its two parts) or a loaded extension, demangled, sorted and
    /// filtered by `filter` (a substring of the demangled name).
    pub fn domain_exports(&self, name: &str, filter: Option<&str>) -> Option<DomainExports> {
        let (domain, part) = match PublicPart::from_name(name) {
            Some(part) => (self.domains.get(SPIN_PUBLIC)?, part),
            None if name == self.kernel.name() => (&self.kernel, PublicPart::All),
            None => (
                self.domains.get(name).filter(|_| self.is_loaded(name))?,
                PublicPart::All,
            ),
        };
        let mut symbols: Vec<(String, u64)> = domain
            .exports()
            .filter(|(symbol, _)| part.contains(symbol))
            .map(|(symbol, export)| {
                (
                    alloc::format!("{:#}", rustc_demangle::demangle(symbol)),
                    export.address,
                )
            })
            .filter(|(shown, _)| filter.is_none_or(|f| shown.contains(f)))
            .collect();
        symbols.sort();
        Some(DomainExports {
            name: name.to_string(),
            symbols,
        })
    }
}

/// Cycles to copy `bytes` once into a fresh buffer: the baseline a load is
/// compared with.
fn copy_baseline<P: Platform>(platform: &P, bytes: &[u8]) -> u64 {
    let t = platform.cycles();
    let copy = bytes.to_vec();
    let cycles = platform.cycles().saturating_sub(t);
    core::hint::black_box(&copy);
    cycles
}

/// Explains an unresolved-symbols error: kernel-internal symbols and
/// symbols of extensions that are not loaded are named as such.
fn diagnose<M>(
    error: domains::Error,
    kernel: &Domain,
    catalogue: &Catalogue,
    loaded: &[Loaded<M>],
    limits: &Limits,
) -> LoadError {
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
            } else if kernel.lookup(&symbol.name).is_some() {
                MissingReason::KernelInternal
            } else {
                provider_of(&symbol.name, catalogue, loaded, limits)
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

/// An extension of the catalogue that defines `symbol`: one that exports
/// it but is not loaded, or one that carries its crate privately.
fn provider_of<M>(
    symbol: &str,
    catalogue: &Catalogue,
    loaded: &[Loaded<M>],
    limits: &Limits,
) -> Option<MissingReason> {
    catalogue
        .entries()
        .iter()
        .filter(|e| e.kind == Kind::Extension)
        .find_map(|e| {
            let object = Object::parse(e.object(), limits).ok()?;
            if !object.global_definitions().any(|x| x == symbol) {
                return None;
            }
            let components = crates::components(e.object()).unwrap_or_default();
            let exported = crates::domain(&e.name, &object, &components)
                .is_ok_and(|d| d.lookup(symbol).is_some());
            if !exported {
                Some(MissingReason::CarriedPrivately(e.name.clone()))
            } else if !loaded.iter().any(|l| l.name == e.name) {
                Some(MissingReason::ExtensionNotLoaded(e.name.clone()))
            } else {
                None
            }
        })
}

/// A domain registered for a load in progress: unregistered on drop unless
/// committed.
struct RegisteredDomain<'r> {
    registry: &'r mut DomainRegistry,
    name: Option<String>,
    id: DomainId,
}

impl<'r> RegisteredDomain<'r> {
    fn insert(registry: &'r mut DomainRegistry, domain: Domain) -> Result<Self, LoadError> {
        let name = domain.name().to_string();
        let id = registry.insert(domain).map_err(LoadError::Domain)?;
        Ok(Self {
            registry,
            name: Some(name),
            id,
        })
    }

    fn commit(mut self) -> DomainId {
        self.name = None;
        self.id
    }
}

impl Drop for RegisteredDomain<'_> {
    fn drop(&mut self) {
        if let Some(name) = self.name.take() {
            // Registered a moment ago by this load: nothing imports from it.
            let _ = self.registry.destroy(&name);
        }
    }
}

/// An image mapped for a load in progress: unmapped on drop unless
/// committed. Gives access to the platform meanwhile.
struct MappedImage<'p, P: Platform> {
    platform: &'p mut P,
    owner: Principal,
    mapping: Option<P::Mapping>,
}

impl<'p, P: Platform> MappedImage<'p, P> {
    fn map(
        platform: &'p mut P,
        owner: Principal,
        request: &MapRequest<'_>,
        range: P::Range,
    ) -> Result<Self, LoadError> {
        let mapping = platform.map(request, range).map_err(LoadError::Map)?;
        Ok(Self {
            platform,
            owner,
            mapping: Some(mapping),
        })
    }

    fn platform(&mut self) -> &mut P {
        self.platform
    }

    fn commit(mut self) -> P::Mapping {
        match self.mapping.take() {
            Some(mapping) => mapping,
            // `mapping` is `Some` from `map` until `commit` or drop.
            None => unreachable!("a MappedImage is committed once"),
        }
    }
}

impl<P: Platform> Drop for MappedImage<'_, P> {
    fn drop(&mut self) {
        if let Some(mapping) = self.mapping.take() {
            self.platform.unmap(&self.owner, mapping);
        }
    }
}
