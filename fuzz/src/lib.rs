//! The fuzz targets' shared harness: a loader whose signature check is
//! skipped (the loader's `fuzzing_skips_signature`, compiled only under
//! `--cfg fuzzing`), a stand-in kernel symbol table, and a [`Platform`]
//! that checks what the loader asks of it instead of mapping memory.
//!
//! Every load runs the whole host-side pipeline — crate list, parse,
//! descriptor, domain, resolve against `SpinPublic` (composed by the real
//! policy), plan, range reservation, link, place, entry points, map — and,
//! when it succeeds, the unload. The harness then checks that nothing is
//! left behind: no mapping, no range, no domain.

use std::cell::RefCell;
use std::ops::Range;
use std::rc::Rc;
use std::sync::OnceLock;

use dispatcher::{Principal, PrincipalId, PrincipalIssuer};
use domains::{Domain, Limits, Object};
use loader::{
    Catalogue, CatalogueEntry, Config, EntryPoints, ImageRange, InitFailure, Loader, MapError,
    MapRequest, ObjectBytes, Origin, Panic, Platform,
};
use spindle_package::Kind;
use spindle_sdk::{ExtensionContext, RawDescriptor};
use virt_addr::{RangeId, RangeTable, Zone};

/// Where the harness's loader places images.
pub const REGION: Range<u64> = 0xffff_ffff_9000_0000..0xffff_ffff_a000_0000;

/// Base of the stand-in kernel's symbol addresses.
const KERNEL_BASE: u64 = 0xffff_ffff_8000_0000;

/// The process's principal issuer.
fn issuer() -> &'static PrincipalIssuer {
    static ISSUER: OnceLock<PrincipalIssuer> = OnceLock::new();
    ISSUER.get_or_init(|| PrincipalIssuer::take().expect("the harness takes it first"))
}

/// The harness's address space: the VirtAddr service's range table with
/// [`REGION`] as its image zone.
type Ranges = Rc<RefCell<RangeTable<PrincipalId>>>;

/// A platform that records mappings and checks the loader's promises: an
/// image fits its range, ranges never overlap, entry points lie in a mapped
/// text segment, and every mapping and range is undone exactly once.
pub struct CheckingPlatform {
    ranges: Ranges,
    mapped: Vec<Range<u64>>,
}

impl Default for CheckingPlatform {
    fn default() -> Self {
        Self {
            ranges: Rc::new(RefCell::new(RangeTable::with_zones(0..0, REGION))),
            mapped: Vec::new(),
        }
    }
}

/// A range reserved by [`CheckingPlatform`]: freed when dropped.
pub struct CheckedRange {
    id: RangeId,
    addresses: Range<u64>,
    ranges: Ranges,
}

impl ImageRange for CheckedRange {
    fn addresses(&self) -> Range<u64> {
        self.addresses.clone()
    }
}

impl Drop for CheckedRange {
    fn drop(&mut self) {
        self.ranges
            .borrow_mut()
            .free(self.id)
            .expect("a range is freed once");
    }
}

/// A mapping handed out by [`CheckingPlatform`].
pub struct CheckedMapping(CheckedRange);

impl CheckingPlatform {
    /// Whether no range is reserved and nothing is mapped.
    pub fn is_clean(&self) -> bool {
        self.mapped.is_empty() && self.ranges.borrow().all().is_empty()
    }

    fn check_entry(&self, entry: &EntryPoints) {
        let text = entry.text();
        assert!(text.contains(&entry.init()) && text.contains(&entry.exit()));
        assert!(
            self.mapped
                .iter()
                .any(|r| r.start <= text.start && text.end <= r.end),
            "entry points {entry:x?} outside every mapped image"
        );
    }
}

impl Platform for CheckingPlatform {
    type Mapping = CheckedMapping;
    type Range = CheckedRange;

    fn reserve(&mut self, owner: &Principal, bytes: u64) -> Result<CheckedRange, MapError> {
        let pages = bytes.div_ceil(virt_addr::PAGE_SIZE);
        let info = self
            .ranges
            .borrow_mut()
            .allocate_in(Zone::Image, owner.id(), owner.name(), pages)
            .map_err(|_| MapError::AddressSpaceFull { bytes })?;
        Ok(CheckedRange {
            id: info.id,
            addresses: info.base..info.end(),
            ranges: self.ranges.clone(),
        })
    }

    fn map(
        &mut self,
        request: &MapRequest<'_>,
        reserved: CheckedRange,
    ) -> Result<CheckedMapping, MapError> {
        let range = request.range.clone();
        assert_eq!(range, reserved.addresses(), "linked for another range");
        assert!(REGION.start <= range.start && range.end <= REGION.end);
        assert!(
            !self
                .mapped
                .iter()
                .any(|r| r.start < range.end && range.start < r.end),
            "{range:x?} overlaps a mapped image"
        );
        for segment in request.image.segments().iter() {
            let s = segment.range();
            assert!(
                s.is_empty() || (range.start <= s.start && s.end <= range.end),
                "segment {s:x?} outside its range {range:x?}"
            );
        }
        self.mapped.push(range);
        Ok(CheckedMapping(reserved))
    }

    fn unmap(&mut self, _owner: &Principal, mapping: CheckedMapping) {
        let before = self.mapped.len();
        self.mapped.retain(|r| *r != mapping.0.addresses());
        assert_eq!(self.mapped.len() + 1, before, "unmapped twice");
    }

    fn call_init(
        &mut self,
        entry: &EntryPoints,
        _context: &ExtensionContext,
    ) -> Result<(), InitFailure> {
        self.check_entry(entry);
        Ok(())
    }

    fn call_exit(&mut self, entry: &EntryPoints, _context: &ExtensionContext) -> Result<(), Panic> {
        self.check_entry(entry);
        Ok(())
    }

    fn wait_for_release(&mut self, _principal: &Principal) -> bool {
        true
    }

    fn cycles(&self) -> u64 {
        0
    }
}

/// The name an object's descriptor claims (so that real objects pass the
/// name check), or `fallback`.
pub fn descriptor_name(object: &[u8], fallback: &str) -> String {
    Object::parse(object, &Limits::default())
        .ok()
        .and_then(|o| o.section_bytes(spindle_sdk::DESCRIPTOR_SECTION))
        .and_then(|bytes| RawDescriptor::parse(bytes).ok())
        .map_or_else(|| fallback.to_string(), |d| d.name)
}

/// A stand-in kernel that defines every name the objects import, at
/// distinct addresses: the policy then decides which are public, so
/// imports of public crates resolve and the rest are explained as missing.
pub fn stand_in_kernel<'a>(objects: impl IntoIterator<Item = &'a [u8]>) -> Domain {
    let mut names: Vec<String> = Vec::new();
    for bytes in objects {
        if let Ok(object) = Object::parse(bytes, &Limits::default()) {
            names.extend(object.imports().map(|i| i.name.to_string()));
        }
    }
    names.sort();
    names.dedup();
    Domain::from_exports(
        "Kernel",
        names
            .iter()
            .enumerate()
            .map(|(i, n)| (n.as_str(), KERNEL_BASE + 16 * i as u64)),
    )
}

/// A catalogue entry for fuzzed bytes (unsigned: the harness skips the
/// check).
pub fn entry(name: &str, object: &[u8]) -> CatalogueEntry {
    CatalogueEntry {
        name: name.to_string(),
        version: "0".to_string(),
        kind: Kind::Extension,
        autoload: false,
        origin: Origin::Pushed,
        object: ObjectBytes::Owned(object.to_vec()),
        digest: [0; 32],
        signature: None,
    }
}

/// A loader over `catalogue` with the signature check skipped.
pub fn loader(kernel: Domain, catalogue: Catalogue) -> Loader<CheckingPlatform> {
    let mut config = Config::new([0; 32]);
    config.fuzzing_skips_signature = true;
    Loader::new(
        CheckingPlatform::default(),
        config,
        issuer(),
        kernel,
        catalogue,
    )
}

/// Loads every named entry in order, then unloads what loaded in reverse
/// order, and checks that nothing is left: no mapping, no extension. Errors
/// are formatted (their `Display` is what the shell prints).
/// With `SPINDLE_FUZZ_VERBOSE` set, prints each outcome (to see how far an
/// input gets: `SPINDLE_FUZZ_VERBOSE=1 cargo fuzz run TARGET FILE`).
pub fn load_all_then_unload(loader: &mut Loader<CheckingPlatform>, names: &[String]) {
    let verbose = std::env::var_os("SPINDLE_FUZZ_VERBOSE").is_some();
    let mut loaded = Vec::new();
    for name in names {
        let result = loader.load(name);
        if verbose {
            match &result {
                Ok(report) => eprintln!("{name}: loaded at {:#x?}", report.range),
                Err(error) => eprintln!("{name}: {error}"),
            }
        }
        match result {
            Ok(report) => {
                assert!(REGION.start <= report.range.start && report.range.end <= REGION.end);
                assert!(loader.info(name).is_some(), "{name} loaded without info");
                let _ = loader.domain_exports(name, None);
                loaded.push(name.clone());
            }
            Err(error) => {
                let _ = error.to_string();
                assert!(
                    !loader.is_loaded(name),
                    "failed load of {name} left it loaded"
                );
            }
        }
    }
    let _ = loader.domain_listing();
    for name in loaded.iter().rev() {
        if let Err(error) = loader.unload(name) {
            panic!("unloading {name} (nothing imports from it any more): {error}");
        }
    }
    assert_eq!(loader.loaded_names().count(), 0);
    assert!(
        loader.platform().is_clean(),
        "a mapping or a range is left behind"
    );
}
