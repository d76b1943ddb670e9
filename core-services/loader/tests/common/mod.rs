//! Shared machinery for the loader's tests: real extension-shaped objects
//! compiled by the pinned rustc for the kernel's target, a signed
//! catalogue, a stand-in kernel symbol table, and a [`Platform`] that
//! records what the loader asks of it instead of mapping memory.
#![allow(dead_code)]

use std::cell::RefCell;
use std::collections::HashMap;
use std::fmt::Write as _;
use std::ops::Range;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::rc::Rc;
use std::sync::{Mutex, OnceLock};

use dispatcher::{Decision, Event, EventAuthority, Principal, PrincipalId, PrincipalIssuer};
use domains::{Domain, SegmentKind};
use extension_heap::{Account, Released, SlotsFull};
use loader::{
    Catalogue, Config, EntryPoints, HeapEntries, ImageRange, InitFailure, Loader, MapError,
    MapRequest, Panic, Platform,
};
use spindle_package::{Kind, NewEntry, Ramdisk, RamdiskWriter};
use spindle_sdk::{ExtensionContext, ExtensionError};
use virt_addr::{RangeId, RangeTable, Zone};

/// The kernel's target.
pub const TARGET: &str = "x86_64-unknown-none";
/// The test build's signing key.
pub const SECRET: [u8; 32] = [7; 32];
/// Another key, for objects signed by someone else.
pub const OTHER_SECRET: [u8; 32] = [9; 32];

/// Public symbols of the stand-in kernel (legacy-mangled, so that the
/// policy attributes them to their crates) and its addresses.
pub const PUBLIC_RAISE: &str = "_ZN10dispatcher5event5raise17h0123456789abcdefE";
pub const KERNEL_SECRET: &str = "_ZN14spindle_kernel6secret17h0123456789abcdefE";
pub const MEMSET: &str = "memset";
pub const RAISE_ADDRESS: u64 = 0xffff_ffff_8010_0000;
pub const SECRET_ADDRESS: u64 = 0xffff_ffff_8020_0000;
pub const MEMSET_ADDRESS: u64 = 0xffff_ffff_8030_0000;

/// Where the kernel maps extensions.
pub const REGION: Range<u64> = 0xffff_ffff_9000_0000..0xffff_ffff_f000_0000;

/// The allocator shim, as an unmangled kernel would name it.
pub const RUST_ALLOC: &str = "__rust_alloc";
pub const ALLOC_ADDRESS: u64 = 0xffff_ffff_8040_0000;
/// Where the test platform's heap entry points are (slot k's at + k * 0x100).
pub const HEAP_ENTRIES: u64 = 0xffff_ffff_8050_0000;

/// The stand-in kernel with an allocator shim too.
pub fn kernel_domain_with_allocator() -> Domain {
    Domain::from_exports(
        "Kernel",
        [
            (PUBLIC_RAISE, RAISE_ADDRESS),
            (KERNEL_SECRET, SECRET_ADDRESS),
            (MEMSET, MEMSET_ADDRESS),
            (RUST_ALLOC, ALLOC_ADDRESS),
        ],
    )
}

/// The kernel's symbol table, as `Domain::create_from_module` would make it.
pub fn kernel_domain() -> Domain {
    Domain::from_exports(
        "Kernel",
        [
            (PUBLIC_RAISE, RAISE_ADDRESS),
            (KERNEL_SECRET, SECRET_ADDRESS),
            (MEMSET, MEMSET_ADDRESS),
        ],
    )
}

/// The process's principal issuer (one per process).
pub fn issuer() -> &'static PrincipalIssuer {
    static ISSUER: OnceLock<PrincipalIssuer> = OnceLock::new();
    ISSUER.get_or_init(|| PrincipalIssuer::take().expect("the tests take it first"))
}

/// An event extensions' `init` installs on in these tests.
pub fn test_event() -> &'static Event<u64, ()> {
    static EVENT: OnceLock<(Event<u64, ()>, EventAuthority<u64, ()>)> = OnceLock::new();
    &EVENT
        .get_or_init(|| {
            let kernel = issuer().issue("kernel");
            let (event, authority) = Event::<u64, ()>::builder("Test.Loader")
                .original(|_| ())
                .declare(&kernel)
                .expect("declared once");
            authority.set_authorizer(|_| Decision::Allow);
            (event, authority)
        })
        .0
}

/// How a fixture's source differs from a well-formed extension.
#[derive(Clone, Debug, Default)]
pub struct Fixture {
    /// Crate name (and, unless `descriptor_name` is set, descriptor name).
    pub name: &'static str,
    /// Name written into the descriptor, if not `name`.
    pub descriptor_name: Option<&'static str>,
    /// Fingerprint of interface `i` changed (`Some(i)`).
    pub stale_interface: Option<usize>,
    /// No descriptor at all.
    pub no_descriptor: bool,
    /// The descriptor's `init` points into read-only data, not code.
    pub init_in_data: bool,
    /// `init` calls a kernel-internal function.
    pub imports_internal: bool,
    /// `init` calls a function nobody provides.
    pub imports_unknown: bool,
    /// Exports `provider_value`.
    pub provides: bool,
    /// `init` calls `provider_value`.
    pub consumes: bool,
    /// `init` calls the allocator shim `__rust_alloc`.
    pub allocates: bool,
    /// Extra rustc flags.
    pub flags: &'static [&'static str],
}

impl Fixture {
    pub fn new(name: &'static str) -> Self {
        Self {
            name,
            ..Self::default()
        }
    }
}

/// The fixture's source: a `no_std` crate with an extension descriptor laid
/// out exactly as `spindle_sdk::ExtensionDescriptor` (checked by
/// `descriptor_layout_matches_the_sdk`).
pub fn source(f: &Fixture) -> String {
    let mut s = String::from(
        "#![no_std]\n#![allow(dead_code, static_mut_refs)]\n\
         #[repr(C)] pub struct InterfaceRef { pub name: [u8; 24], pub fingerprint: u64 }\n\
         #[repr(C)] pub struct Descriptor { pub magic: [u8; 8], pub layout: u32, pub interface_count: u32, \
         pub name: [u8; 48], pub version: [u8; 24], pub interfaces: [InterfaceRef; 16], \
         pub init: InitField, pub exit: fn(&u8) }\n\
         const fn padded<const N: usize>(text: &str) -> [u8; N] { let b = text.as_bytes(); \
         let mut out = [0u8; N]; let mut i = 0; while i < b.len() { out[i] = b[i]; i += 1; } out }\n\
         const NONE: InterfaceRef = InterfaceRef { name: [0; 24], fingerprint: 0 };\n",
    );
    writeln!(
        s,
        "unsafe extern \"Rust\" {{ #[link_name = \"{PUBLIC_RAISE}\"] fn public_raise(); \
         #[link_name = \"{KERNEL_SECRET}\"] fn kernel_secret(); }}"
    )
    .unwrap();
    s.push_str(
        "unsafe extern \"C\" { fn nobody_has_this(); }\n\
         static mut SINK: u64 = 0;\n\
         pub fn fixture_init(_: &u8) {\n unsafe { public_raise(); }\n",
    );
    if f.imports_internal {
        s.push_str(" unsafe { kernel_secret(); }\n");
    }
    if f.imports_unknown {
        s.push_str(" unsafe { nobody_has_this(); }\n");
    }
    if f.consumes {
        s.push_str(" unsafe { SINK = provider_value(); }\n");
    }
    if f.allocates {
        s.push_str(" unsafe { rust_alloc(); }\n");
    }
    s.push_str("}\npub fn fixture_exit(_: &u8) { unsafe { SINK = 0; } }\n");
    if f.consumes {
        s.push_str("unsafe extern \"C\" { fn provider_value() -> u64; }\n");
    }
    if f.allocates {
        writeln!(
            s,
            "unsafe extern \"Rust\" {{ #[link_name = \"{RUST_ALLOC}\"] fn rust_alloc(); }}"
        )
        .unwrap();
    }
    if f.provides {
        s.push_str("#[unsafe(no_mangle)] pub extern \"C\" fn provider_value() -> u64 { 42 }\n");
    }
    if f.init_in_data {
        s.push_str("pub type InitField = &'static u64;\nstatic NOT_CODE: u64 = 7;\nconst INIT: InitField = &NOT_CODE;\n");
    } else {
        s.push_str("pub type InitField = fn(&u8);\nconst INIT: InitField = fixture_init;\n");
    }
    if !f.no_descriptor {
        let name = f.descriptor_name.unwrap_or(f.name);
        let mut interfaces = String::new();
        for (i, (iface, fp)) in spindle_sdk::INTERFACES.iter().enumerate() {
            let fp = if f.stale_interface == Some(i) {
                fp ^ 0x5a
            } else {
                *fp
            };
            write!(
                interfaces,
                "interfaces[{i}] = InterfaceRef {{ name: padded(\"{iface}\"), fingerprint: {fp} }};"
            )
            .unwrap();
        }
        write!(
            s,
            "#[unsafe(no_mangle)] #[unsafe(link_section = \".spindle_ext\")]\n\
             pub static SPINDLE_EXTENSION_DESCRIPTOR: Descriptor = {{\n\
             let mut interfaces = [NONE; 16]; {interfaces}\n\
             Descriptor {{ magic: *b\"SPNDLEXT\", layout: {layout}, interface_count: {count}, \
             name: padded(\"{name}\"), version: padded(\"0.1.0\"), interfaces, init: INIT, exit: fixture_exit }} }};\n",
            layout = spindle_sdk::DESCRIPTOR_LAYOUT,
            count = spindle_sdk::INTERFACES.len(),
        )
        .unwrap();
    }
    s
}

/// The `rustc` of the toolchain that built this test.
fn rustc() -> PathBuf {
    let sibling = PathBuf::from(env!("CARGO")).with_file_name("rustc");
    if sibling.exists() {
        sibling
    } else {
        PathBuf::from("rustc")
    }
}

/// Compiles a fixture for the kernel's target (once per process per
/// configuration) and returns the object.
pub fn compile(f: &Fixture) -> Vec<u8> {
    static CACHE: OnceLock<Mutex<HashMap<String, Vec<u8>>>> = OnceLock::new();
    let src = source(f);
    let key = format!("{src}{:?}", f.flags);
    let mut cache = CACHE
        .get_or_init(Default::default)
        .lock()
        .unwrap_or_else(|p| p.into_inner());
    if let Some(bytes) = cache.get(&key) {
        return bytes.clone();
    }
    let dir = Path::new(env!("CARGO_TARGET_TMPDIR"))
        .join("loader-fixtures")
        .join(format!("{:016x}", fnv(&key)));
    std::fs::create_dir_all(&dir).unwrap();
    let src_path = dir.join("fixture.rs");
    std::fs::write(&src_path, &src).unwrap();
    let object = dir.join("fixture.o");
    let out = Command::new(rustc())
        .args([
            "--edition=2024",
            "--crate-type=lib",
            "--emit=obj",
            "--target",
            TARGET,
        ])
        .args([
            "-Copt-level=2",
            "-Cpanic=abort",
            "-Ccodegen-units=1",
            "-Cdebuginfo=0",
        ])
        .arg("--crate-name")
        .arg(f.name.replace('-', "_"))
        .args(f.flags)
        .arg("-o")
        .arg(&object)
        .arg(&src_path)
        .output()
        .expect("run rustc");
    assert!(
        out.status.success(),
        "rustc failed for {}:\n{}",
        f.name,
        String::from_utf8_lossy(&out.stderr)
    );
    let bytes = std::fs::read(&object).unwrap();
    cache.insert(key, bytes.clone());
    bytes
}

fn fnv(s: &str) -> u64 {
    s.bytes().fold(0xcbf2_9ce4_8422_2325, |h, b| {
        (h ^ u64::from(b)).wrapping_mul(0x100_0000_01b3)
    })
}

/// One catalogue entry to build.
pub struct Item {
    pub name: &'static str,
    pub object: Vec<u8>,
    pub kind: Kind,
    /// Signed with [`SECRET`] (`Some(SECRET)`), another key, or unsigned.
    pub signed_by: Option<[u8; 32]>,
}

impl Item {
    /// A signed extension.
    pub fn signed(name: &'static str, object: Vec<u8>) -> Self {
        Self {
            name,
            object,
            kind: Kind::Extension,
            signed_by: Some(SECRET),
        }
    }
}

/// A catalogue read from a real ramdisk image holding `items`.
pub fn catalogue(items: Vec<Item>) -> Catalogue {
    let mut writer = RamdiskWriter::new();
    for item in items {
        writer.add(NewEntry {
            name: item.name,
            version: "0.1.0",
            kind: item.kind,
            autoload: false,
            digest: spindle_package::object_digest(&item.object),
            signature: item
                .signed_by
                .map(|key| spindle_package::sign(&key, item.name, &item.object)),
            object: item.object,
        });
    }
    let bytes: &'static [u8] = Box::leak(writer.finish().into_boxed_slice());
    Catalogue::from_ramdisk(&Ramdisk::parse(bytes).expect("valid ramdisk"), 4)
}

/// The loader's configuration in these tests.
pub fn config() -> Config {
    Config::new(spindle_package::public_key(&SECRET))
}

/// A loader over `items` with the default configuration.
pub fn loader(items: Vec<Item>) -> Loader<TestPlatform> {
    loader_with(config(), items)
}

/// A loader over `items`.
pub fn loader_with(config: Config, items: Vec<Item>) -> Loader<TestPlatform> {
    Loader::new(
        TestPlatform::default(),
        config,
        issuer(),
        kernel_domain(),
        catalogue(items),
    )
}

/// A loader whose platform has `slots` heaps, over a kernel with an
/// allocator shim.
pub fn loader_with_heaps(slots: usize, items: Vec<Item>) -> Loader<TestPlatform> {
    let platform = TestPlatform {
        heaps: vec![None; slots],
        ..TestPlatform::default()
    };
    Loader::new(
        platform,
        config(),
        issuer(),
        kernel_domain_with_allocator(),
        catalogue(items),
    )
}

/// What an extension's `init` does in the test platform.
#[derive(Clone, Debug)]
pub enum InitBehaviour {
    /// Returns `Ok`.
    Succeed,
    /// Installs a handler on [`test_event`], then fails with this message.
    InstallThenFail(&'static str),
    /// Installs a handler, then panics with this message (as the kernel's
    /// platform reports a caught panic).
    InstallThenPanic(&'static str),
}

/// One `map` request, as recorded.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Mapped {
    pub owner: String,
    pub range: Range<u64>,
    pub segments: Vec<(SegmentKind, Range<u64>)>,
    pub unwind_tables: Vec<u64>,
}

/// The test platform's address space: the VirtAddr service's range table,
/// with [`REGION`] as its image zone (as in the kernel), shared with the
/// ranges it handed out so that dropping one frees it.
pub type Ranges = Rc<RefCell<RangeTable<PrincipalId>>>;

/// A platform that records instead of mapping.
pub struct TestPlatform {
    /// The image zone's ranges.
    pub ranges: Ranges,
    /// Every successful `map`, in order.
    pub maps: Vec<Mapped>,
    /// Ranges currently mapped.
    pub mapped: Vec<Range<u64>>,
    /// `map` fails with this, if set.
    pub fail_map: Option<MapError>,
    /// `init` behaviour by extension name (default: succeed).
    pub init: HashMap<String, InitBehaviour>,
    /// "init NAME" / "exit NAME", in call order, with the entry addresses
    /// checked against the mapped ranges.
    pub calls: Vec<String>,
    /// `wait_for_release` reports a raise still holding a handler.
    pub stall_release: bool,
    /// `exit` panics with this message.
    pub exit_panics: Option<&'static str>,
    /// Heap slots and who holds each (none: no heaps of their own).
    pub heaps: Vec<Option<String>>,
    /// "take NAME k" / "release NAME k", in call order.
    pub heap_calls: Vec<String>,
    /// Heaps are released with 4000 bytes in 2 blocks still live.
    pub heaps_leak: bool,
    ticks: std::cell::Cell<u64>,
}

impl Default for TestPlatform {
    fn default() -> Self {
        Self::with_image_zone(REGION)
    }
}

/// A range reserved by [`TestPlatform::reserve`]: freed when dropped.
pub struct TestRange {
    id: RangeId,
    addresses: Range<u64>,
    ranges: Ranges,
}

impl std::fmt::Debug for TestRange {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "TestRange({:x?})", self.addresses)
    }
}

impl ImageRange for TestRange {
    fn addresses(&self) -> Range<u64> {
        self.addresses.clone()
    }
}

impl Drop for TestRange {
    fn drop(&mut self) {
        self.ranges
            .borrow_mut()
            .free(self.id)
            .expect("a range is freed once");
    }
}

/// The test platform's mapping: the range it holds.
#[derive(Debug)]
pub struct TestMapping {
    range: TestRange,
}

impl TestPlatform {
    /// A platform whose image zone is `zone`.
    pub fn with_image_zone(zone: Range<u64>) -> Self {
        Self {
            ranges: Rc::new(RefCell::new(RangeTable::with_zones(0..0, zone))),
            maps: Vec::new(),
            mapped: Vec::new(),
            fail_map: None,
            init: HashMap::new(),
            calls: Vec::new(),
            stall_release: false,
            exit_panics: None,
            ticks: std::cell::Cell::new(0),
            heaps: Vec::new(),
            heap_calls: Vec::new(),
            heaps_leak: false,
        }
    }

    /// The ranges reserved now.
    pub fn reserved(&self) -> Vec<virt_addr::RangeInfo<PrincipalId>> {
        self.ranges.borrow().all()
    }

    fn check_mapped(&self, entry: &EntryPoints) {
        assert!(
            self.mapped
                .iter()
                .any(|r| r.contains(&entry.init()) && r.contains(&entry.exit())),
            "entry points {entry:?} outside every mapped image"
        );
    }
}

impl Platform for TestPlatform {
    type Mapping = TestMapping;
    type Range = TestRange;

    fn reserve(&mut self, owner: &Principal, bytes: u64) -> Result<TestRange, MapError> {
        let pages = bytes.div_ceil(virt_addr::PAGE_SIZE);
        let info = self
            .ranges
            .borrow_mut()
            .allocate_in(Zone::Image, owner.id(), owner.name(), pages)
            .map_err(|_| MapError::AddressSpaceFull { bytes })?;
        Ok(TestRange {
            id: info.id,
            addresses: info.base..info.end(),
            ranges: self.ranges.clone(),
        })
    }

    fn map(&mut self, request: &MapRequest<'_>, range: TestRange) -> Result<TestMapping, MapError> {
        if let Some(error) = self.fail_map.clone() {
            return Err(error);
        }
        assert_eq!(
            *request.range,
            range.addresses(),
            "linked for another range"
        );
        let owner = self.ranges.borrow().get(range.id).map(|r| r.owner);
        assert_eq!(
            owner,
            Some(request.owner.id()),
            "the range is not the image owner's"
        );
        assert!(
            !self
                .mapped
                .iter()
                .any(|r| r.start < request.range.end && request.range.start < r.end),
            "range {:x?} overlaps a mapped image",
            request.range
        );
        self.maps.push(Mapped {
            owner: request.owner.name().to_string(),
            range: request.range.clone(),
            segments: request
                .image
                .segments()
                .iter()
                .map(|s| (s.kind, s.range()))
                .collect(),
            unwind_tables: request.image.unwind_tables().collect(),
        });
        self.mapped.push(request.range.clone());
        Ok(TestMapping { range })
    }

    fn unmap(&mut self, _owner: &Principal, mapping: TestMapping) {
        let before = self.mapped.len();
        self.mapped.retain(|r| *r != mapping.range.addresses());
        assert_eq!(self.mapped.len() + 1, before, "unmapped twice");
    }

    fn call_init(
        &mut self,
        entry: &EntryPoints,
        context: &ExtensionContext,
    ) -> Result<(), InitFailure> {
        self.check_mapped(entry);
        self.calls.push(format!("init {}", context.name()));
        let behaviour = self.init.get(context.name()).cloned();
        if let Some(InitBehaviour::InstallThenFail(_) | InitBehaviour::InstallThenPanic(_)) =
            behaviour
        {
            let binding = test_event()
                .binding(|_| ())
                .install(context.principal())
                .expect("the test authorizer allows");
            // The handle is a weak reference: the binding stays installed.
            drop(binding);
        }
        match behaviour {
            None | Some(InitBehaviour::Succeed) => Ok(()),
            Some(InitBehaviour::InstallThenFail(message)) => {
                Err(InitFailure::Error(ExtensionError::new(message)))
            }
            Some(InitBehaviour::InstallThenPanic(message)) => {
                Err(InitFailure::Panic(panic(message)))
            }
        }
    }

    fn call_exit(&mut self, entry: &EntryPoints, context: &ExtensionContext) -> Result<(), Panic> {
        self.check_mapped(entry);
        self.calls.push(format!("exit {}", context.name()));
        match self.exit_panics {
            Some(message) => Err(panic(message)),
            None => Ok(()),
        }
    }

    fn wait_for_release(&mut self, principal: &Principal) -> bool {
        !self.stall_release && principal.alive_binding_objects() == 0
    }

    fn cycles(&self) -> u64 {
        self.ticks.set(self.ticks.get() + 1);
        self.ticks.get()
    }

    fn take_heap(&mut self, name: &str) -> Result<Option<HeapEntries>, SlotsFull> {
        if self.heaps.is_empty() {
            return Ok(None);
        }
        let slots = self.heaps.len();
        let slot = self
            .heaps
            .iter()
            .position(Option::is_none)
            .ok_or(SlotsFull { slots, kept: 0 })?;
        self.heaps[slot] = Some(name.to_string());
        self.heap_calls.push(format!("take {name} {slot}"));
        let base = HEAP_ENTRIES + slot as u64 * 0x100;
        Ok(Some(HeapEntries {
            slot,
            alloc: base,
            alloc_zeroed: base + 0x10,
            realloc: base + 0x20,
        }))
    }

    fn release_heap(&mut self, name: &str, slot: usize) -> Released {
        assert_eq!(self.heaps[slot].as_deref(), Some(name), "slot {slot}");
        self.heaps[slot] = None;
        self.heap_calls.push(format!("release {name} {slot}"));
        if self.heaps_leak {
            Released::Kept {
                bytes: 4000,
                blocks: 2,
            }
        } else {
            Released::Freed
        }
    }

    fn heap_usage(&self, slot: usize) -> Option<Account> {
        self.heaps
            .get(slot)
            .and_then(Option::as_ref)
            .map(|_| Account::new(4 << 20))
    }
}

/// A panic record as the kernel's platform makes one.
pub fn panic(message: &str) -> Panic {
    Panic {
        message: message.into(),
        file: "extensions/x/src/lib.rs".into(),
        line: 7,
        column: 5,
    }
}
