//! Domains: SPIN's named symbol namespaces, and their operations.
//!
//! A [`Domain`] holds **exports** (name → address) and **imports**
//! (undefined names, each either unresolved or bound to an address taken
//! from some source domain). The operations follow SPIN (Bershad et al.,
//! SOSP'95, §3):
//!
//! * [`Domain::create`]: a domain from an object: its exports (no
//!   addresses until [`Domain::place`]) and its imports.
//! * [`Domain::create_from_module`]: a domain holding a module's symbols,
//!   read from a linked ELF's `.symtab` and filtered by crate.
//! * [`resolve`]: bind the target's unresolved imports that the source
//!   exports. **Partial** by design (SPIN's Resolve): a target is usually
//!   resolved against several sources in turn. Returns counts.
//! * [`resolve_all`]: **all or nothing** against a list of sources: if any
//!   non-weak import stays unresolved, nothing is bound and the error lists
//!   every missing name and every domain searched.
//! * [`combine`]: a new domain whose exports are the union of two domains'
//!   exports (a name exported by both at the same address is kept once;
//!   at different addresses it is an error). A combined domain has no
//!   imports: it is a namespace to resolve against.
//! * [`unresolve`]: the inverse of `resolve`: unbinds every import the
//!   target took from the source.
//! * [`Domain::destroy`] (and [`DomainRegistry::destroy`](crate::DomainRegistry::destroy),
//!   which refuses while other domains import from it).
//!
//! Linking ([`LinkPlan::link`](crate::LinkPlan::link)) takes the target domain as
//! its [`Resolver`]: an object links only against what its domain was
//! resolved to, so a symbol outside the domains searched (a kernel-internal
//! one) fails to link, and the error names it.

use alloc::string::{String, ToString};
use alloc::vec::Vec;
use core::sync::atomic::{AtomicU64, Ordering};

use crate::attribution::CrateFilter;
use crate::error::{Error, Result, UnresolvedSymbol};
use crate::link::{LinkedImage, Resolver};
use crate::module::{self, Export, SymbolBinding, SymbolKind};
use crate::object::Object;
use crate::symtab::SymbolTable;

/// A process-unique domain identity (never reused).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct DomainId(u64);

impl DomainId {
    fn fresh() -> DomainId {
        static NEXT: AtomicU64 = AtomicU64::new(1);
        DomainId(NEXT.fetch_add(1, Ordering::Relaxed))
    }

    /// The raw number.
    pub fn get(self) -> u64 {
        self.0
    }
}

/// Where an import was bound.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct ImportBinding {
    /// The address.
    pub address: u64,
    /// The domain that exported it.
    pub source: DomainId,
}

#[derive(Clone, Copy, Debug)]
struct ImportState {
    weak: bool,
    binding: Option<ImportBinding>,
}

/// A view of one import.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct ImportInfo<'d> {
    /// Symbol name.
    pub name: &'d str,
    /// May stay unresolved (links as 0).
    pub weak: bool,
    /// Where it is bound, if resolved.
    pub binding: Option<ImportBinding>,
}

/// Counts returned by [`resolve`] and [`resolve_all`].
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct ResolveStats {
    /// Imports bound by this call.
    pub resolved: usize,
    /// Imports still unresolved afterwards (weak ones included).
    pub unresolved: usize,
}

/// A named symbol namespace. See the [module documentation](self).
///
/// Invariants: export and import names are unique; when `placed` is false
/// every export address is 0 and the domain cannot be a resolution source;
/// every import binding's `source` appears in `sources`.
#[derive(Clone, Debug)]
pub struct Domain {
    id: DomainId,
    name: String,
    exports: SymbolTable<Export>,
    placed: bool,
    imports: SymbolTable<ImportState>,
    sources: Vec<(DomainId, String)>,
}

impl Domain {
    fn empty(name: &str, exports: SymbolTable<Export>, placed: bool) -> Domain {
        Domain {
            id: DomainId::fresh(),
            name: name.to_string(),
            exports,
            placed,
            imports: SymbolTable::default(),
            sources: Vec::new(),
        }
    }

    /// SPIN's `Create`: a domain for `object`, exporting its global
    /// definitions (default/protected visibility) and importing its
    /// undefined symbols. Export addresses are unknown until the object is
    /// linked and [`Domain::place`] is called.
    pub fn create(name: &str, object: &Object<'_>) -> Result<Domain> {
        Self::create_exporting(name, object, &CrateFilter::all())
    }

    /// [`Domain::create`] exporting only some definitions: Rust-mangled
    /// names that `exported` accepts, and unmangled names defined by the
    /// unit's first member. The rest stay private to the unit: they link
    /// the unit's own references, and nothing outside can import them.
    ///
    /// An extension that carries its dependencies (a bundle: its object
    /// first, then theirs, linked as one unit) exports its own crate's
    /// symbols and its own unmangled ones (its descriptor):
    /// `CrateFilter::crates(&["stats"])`. Two extensions carrying the same
    /// crate then never offer its names, and a third cannot reach into
    /// their private copies.
    pub fn create_exporting(
        name: &str,
        object: &Object<'_>,
        exported: &CrateFilter<'_>,
    ) -> Result<Domain> {
        let full = |_| Error::LimitExceeded {
            limit: "symbol table size",
            context: name.to_string(),
            value: u64::from(u32::MAX),
            max: u64::from(u32::MAX),
        };
        let mut exports = SymbolTable::with_capacity(object.exports.len(), 0);
        for (member, sym) in object.export_symbols_by_member() {
            let offered = if crate::attribution::is_rust_mangled(sym.name) {
                exported.accepts(sym.name)
            } else {
                exported.is_all() || member == 0
            };
            if !offered {
                continue;
            }
            let e = Export {
                address: 0,
                size: sym.size,
                kind: module::kind_of(sym.kind),
                binding: module::binding_of(sym.bind),
                ambiguous: false,
            };
            exports.upsert(sym.name, e, |_, _| {}).map_err(full)?;
        }
        let mut d = Domain::empty(name, exports, false);
        d.imports = SymbolTable::with_capacity(object.imports.len(), 0);
        for imp in &object.imports {
            let st = ImportState {
                weak: imp.weak,
                binding: None,
            };
            d.imports.upsert(imp.name, st, |_, _| {}).map_err(full)?;
        }
        Ok(d)
    }

    /// SPIN's `CreateFromModule`: a domain holding the symbols of a linked
    /// module, taken from its ELF `.symtab` (`elf` is the whole file, e.g.
    /// the kernel ELF found through BootInfo), relocated by `load_bias`
    /// (added with wrapping), and kept only if `filter` accepts them (see
    /// [`attribution`](crate::attribution) for how symbols are attributed to
    /// crates). The domain is placed and has no imports.
    ///
    /// Local symbols are accepted (in a linked kernel, `memcpy` and
    /// `__rust_alloc` are local). For duplicate names see
    /// [`Export::ambiguous`].
    pub fn create_from_module(
        name: &str,
        elf: &[u8],
        load_bias: u64,
        filter: &CrateFilter<'_>,
    ) -> Result<Domain> {
        let exports = module::module_exports(elf, None, load_bias, filter)?;
        Ok(Domain::empty(name, exports, true))
    }

    /// [`Domain::create_from_module`] for an ELF file that lives for ever
    /// (the kernel's own image, reached through the physical-memory
    /// mapping): symbol names are referenced in its string table instead of
    /// being copied, which makes building the index cheaper and smaller.
    pub fn create_from_static_module(
        name: &str,
        elf: &'static [u8],
        load_bias: u64,
        filter: &CrateFilter<'_>,
    ) -> Result<Domain> {
        let exports = module::module_exports(elf, Some(elf), load_bias, filter)?;
        Ok(Domain::empty(name, exports, true))
    }

    /// A placed domain exporting exactly `symbols` (name, address): for
    /// hand-picked providers. A name given twice keeps its first address.
    pub fn from_exports<'n>(
        name: &str,
        symbols: impl IntoIterator<Item = (&'n str, u64)>,
    ) -> Domain {
        let mut exports = SymbolTable::default();
        for (n, address) in symbols {
            let e = Export {
                address,
                size: 0,
                kind: SymbolKind::Other,
                binding: SymbolBinding::Global,
                ambiguous: false,
            };
            // Only fails past 4 GiB of names.
            let _ = exports.upsert(n, e, |_, _| {});
        }
        Domain::empty(name, exports, true)
    }

    /// Gives the exports of a domain made by [`Domain::create`] the
    /// addresses they got in `image`, the linked form of its object.
    pub fn place(&mut self, image: &LinkedImage) -> Result<()> {
        let mut missing = Vec::new();
        for i in 0..self.exports.len() {
            let Some((name, _)) = self.exports.at(i) else {
                continue;
            };
            match image.symbol(name) {
                Some(addr) => {
                    if let Some(e) = self.exports.at_mut(i) {
                        e.address = addr;
                    }
                }
                None => missing.push(UnresolvedSymbol {
                    name: name.to_string(),
                    ambiguous: false,
                }),
            }
        }
        if !missing.is_empty() {
            return Err(Error::Unresolved {
                target: self.name.clone(),
                searched: alloc::vec!["linked image".to_string()],
                symbols: missing,
            });
        }
        self.placed = true;
        Ok(())
    }

    /// SPIN's `Destroy`. Consumes the domain; imports bound *to* it in other
    /// domains keep their addresses, so unresolve them first (the
    /// [`DomainRegistry`](crate::DomainRegistry) enforces this).
    pub fn destroy(self) {}

    /// The identity.
    pub fn id(&self) -> DomainId {
        self.id
    }

    /// The name.
    pub fn name(&self) -> &str {
        &self.name
    }

    /// Whether export addresses are known.
    pub fn is_placed(&self) -> bool {
        self.placed
    }

    /// Number of exports.
    pub fn export_count(&self) -> usize {
        self.exports.len()
    }

    /// All exports, in insertion order.
    pub fn exports(&self) -> impl ExactSizeIterator<Item = (&str, &Export)> + '_ {
        self.exports.iter()
    }

    /// The export called `name` (O(1)).
    pub fn lookup(&self, name: &str) -> Option<&Export> {
        self.exports.get(name)
    }

    /// The address of export `name`: `None` if absent, ambiguous, or the
    /// domain is not placed.
    pub fn address_of(&self, name: &str) -> Option<u64> {
        if !self.placed {
            return None;
        }
        self.exports
            .get(name)
            .filter(|e| !e.ambiguous)
            .map(|e| e.address)
    }

    /// All imports with their state.
    pub fn imports(&self) -> impl ExactSizeIterator<Item = ImportInfo<'_>> + '_ {
        self.imports.iter().map(|(name, st)| ImportInfo {
            name,
            weak: st.weak,
            binding: st.binding,
        })
    }

    /// Names of imports not yet bound (weak ones included).
    pub fn unresolved(&self) -> impl Iterator<Item = &str> + '_ {
        self.imports
            .iter()
            .filter(|(_, st)| st.binding.is_none())
            .map(|(n, _)| n)
    }

    /// Whether every non-weak import is bound.
    pub fn is_resolved(&self) -> bool {
        self.imports
            .iter()
            .all(|(_, st)| st.weak || st.binding.is_some())
    }

    /// Whether some import is bound to an export of `source`.
    pub fn depends_on(&self, source: DomainId) -> bool {
        self.imports
            .iter()
            .any(|(_, st)| st.binding.is_some_and(|b| b.source == source))
    }

    /// Names of the domains this one has been resolved against, in order.
    pub fn sources(&self) -> impl Iterator<Item = &str> + '_ {
        self.sources.iter().map(|(_, n)| n.as_str())
    }

    /// Approximate heap bytes used by the tables.
    pub fn memory(&self) -> usize {
        self.exports.memory() + self.imports.memory()
    }

    fn note_source(&mut self, source: &Domain) {
        if !self.sources.iter().any(|(id, _)| *id == source.id) {
            self.sources.push((source.id, source.name.clone()));
        }
    }

    fn forget_unused_sources(&mut self) {
        let imports = &self.imports;
        self.sources.retain(|(id, _)| {
            imports
                .iter()
                .any(|(_, st)| st.binding.is_some_and(|b| b.source == *id))
        });
    }

    fn count_unresolved(&self) -> usize {
        self.imports
            .iter()
            .filter(|(_, st)| st.binding.is_none())
            .count()
    }
}

/// Looks `name` up in `source`'s exports: `Ok(address)`, `Err(true)` if
/// ambiguous, `Err(false)` if absent.
fn find_export(source: &Domain, name: &str) -> core::result::Result<u64, bool> {
    match source.exports.get(name) {
        Some(e) if e.ambiguous => Err(true),
        Some(e) => Ok(e.address),
        None => Err(false),
    }
}

fn require_placed(d: &Domain) -> Result<()> {
    if d.placed {
        Ok(())
    } else {
        Err(Error::NotPlaced {
            domain: d.name.clone(),
        })
    }
}

/// SPIN's `Resolve`: binds every unresolved import of `target` that
/// `source` exports (ambiguous exports are skipped). Partial: names the
/// source lacks stay unresolved, for another source or for the error of
/// [`resolve_all`] / [`LinkPlan::link`](crate::LinkPlan::link). Fails only if
/// `source` is not placed.
pub fn resolve(source: &Domain, target: &mut Domain) -> Result<ResolveStats> {
    require_placed(source)?;
    let mut resolved = 0;
    for st_index in 0..target.imports.len() {
        let Some((name, st)) = target.imports.at(st_index) else {
            continue;
        };
        if st.binding.is_some() {
            continue;
        }
        if let Ok(address) = find_export(source, name)
            && let Some(st) = target.imports.at_mut(st_index)
        {
            st.binding = Some(ImportBinding {
                address,
                source: source.id,
            });
            resolved += 1;
        }
    }
    if resolved > 0 {
        target.note_source(source);
    }
    Ok(ResolveStats {
        resolved,
        unresolved: target.count_unresolved(),
    })
}

/// Resolves `target` against `sources`, searched in order (the first
/// source exporting a name wins), **all or nothing**: if any non-weak
/// import is found in none of them, `target` is left unchanged and the
/// error lists every such name (flagging those that were only found
/// ambiguous) and every domain searched.
pub fn resolve_all(sources: &[&Domain], target: &mut Domain) -> Result<ResolveStats> {
    for s in sources {
        require_placed(s)?;
    }
    let mut bindings: Vec<(usize, u64, usize)> = Vec::new();
    let mut missing = Vec::new();
    for i in 0..target.imports.len() {
        let Some((name, st)) = target.imports.at(i) else {
            continue;
        };
        if st.binding.is_some() {
            continue;
        }
        let mut ambiguous = false;
        let mut found = None;
        for (si, s) in sources.iter().enumerate() {
            match find_export(s, name) {
                Ok(a) => {
                    found = Some((a, si));
                    break;
                }
                Err(amb) => ambiguous |= amb,
            }
        }
        match found {
            Some((a, si)) => bindings.push((i, a, si)),
            None if st.weak => {}
            None => missing.push(UnresolvedSymbol {
                name: name.to_string(),
                ambiguous,
            }),
        }
    }
    if !missing.is_empty() {
        return Err(Error::Unresolved {
            target: target.name.clone(),
            searched: sources.iter().map(|s| s.name.clone()).collect(),
            symbols: missing,
        });
    }
    let resolved = bindings.len();
    for (i, address, si) in bindings {
        let Some(src) = sources.get(si) else { continue };
        if let Some(st) = target.imports.at_mut(i) {
            st.binding = Some(ImportBinding {
                address,
                source: src.id,
            });
        }
        target.note_source(src);
    }
    Ok(ResolveStats {
        resolved,
        unresolved: target.count_unresolved(),
    })
}

/// The inverse of [`resolve`]: unbinds every import of `target` bound to
/// an export of `source`. Returns how many were unbound.
pub fn unresolve(source: &Domain, target: &mut Domain) -> usize {
    let mut n = 0;
    for st in target.imports.values_mut() {
        if st.binding.is_some_and(|b| b.source == source.id) {
            st.binding = None;
            n += 1;
        }
    }
    target.forget_unused_sources();
    n
}

/// SPIN's `Combine`: a new placed domain `name` exporting the union of
/// `a`'s and `b`'s exports. A name exported by both at one address is kept
/// once; at two addresses it is [`Error::DuplicateExport`]. Both must be
/// placed. The result has no imports.
pub fn combine(name: &str, a: &Domain, b: &Domain) -> Result<Domain> {
    require_placed(a)?;
    require_placed(b)?;
    let mut exports = SymbolTable::with_capacity(a.exports.len() + b.exports.len(), 0);
    let mut conflict: Option<String> = None;
    for (n, e) in a.exports.iter().chain(b.exports.iter()) {
        let r = exports.upsert(n, *e, |existing: &mut Export, new: Export| {
            if existing.address != new.address && conflict.is_none() {
                conflict = Some(n.to_string());
            }
        });
        if r.is_err() {
            return Err(Error::LimitExceeded {
                limit: "symbol table size",
                context: name.to_string(),
                value: (a.exports.len() + b.exports.len()) as u64,
                max: u64::from(u32::MAX),
            });
        }
        if let Some(symbol) = conflict.take() {
            return Err(Error::DuplicateExport {
                symbol,
                first: a.name.clone(),
                second: b.name.clone(),
            });
        }
    }
    Ok(Domain::empty(name, exports, true))
}

impl Resolver for Domain {
    /// The address this domain's import `name` is bound to.
    fn resolve(&self, name: &str) -> Option<u64> {
        self.imports
            .get(name)
            .and_then(|st| st.binding)
            .map(|b| b.address)
    }

    fn name(&self) -> &str {
        &self.name
    }

    fn searched(&self) -> Vec<String> {
        self.sources.iter().map(|(_, n)| n.clone()).collect()
    }
}

/// A [`Resolver`] over a domain's *exports* (rather than its bound
/// imports): link an object directly against, say, `SpinPublic`.
#[derive(Clone, Copy, Debug)]
pub struct Exports<'d>(pub &'d Domain);

impl Resolver for Exports<'_> {
    fn resolve(&self, name: &str) -> Option<u64> {
        self.0.address_of(name)
    }

    /// `"object"`: the unit being linked has no domain of its own here.
    fn name(&self) -> &str {
        "object"
    }

    fn searched(&self) -> Vec<String> {
        alloc::vec![self.0.name.clone()]
    }
}
