//! Least privilege, checked: every entry point of the crates extensions
//! link against has been reviewed, and the kernel-only ones take the
//! kernel's capability.
//!
//! An extension starts with nothing but its `ExtensionContext`. What it can
//! reach "from nothing" in a public crate is a `pub` free function, a `pub`
//! associated function without a receiver (a constructor), or a `pub
//! static`; everything else needs a value one of those returned. So this
//! test reads the sources of the in-tree crates of `SPIN_PUBLIC_CRATES`,
//! lists exactly those items, and compares them with [`REVIEWED`]:
//!
//! * an entry point that is not listed fails the test: decide whether an
//!   extension may call it; if only the kernel may, give it a
//!   `dispatcher::KernelCapability` parameter; then list it here;
//! * an entry point listed as [`Access::Kernel`] must take a
//!   `KernelCapability`, and one that takes it must be listed so;
//! * a listed entry point that no longer exists fails too (keep the list
//!   true).
//!
//! The external crates of `SPIN_PUBLIC_CRATES` were reviewed by hand:
//! `core`, `alloc`, `compiler_builtins`, `spin`, `lock_api`, `scopeguard`,
//! `hashbrown`, `foldhash`, `allocator_api2` and `equivalent` have no safe
//! setter of process-wide state (`log` has one, `set_max_level`, and is
//! therefore not public: extensions log through `spindle_sdk::log`).

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use quote::ToTokens;
use syn::visit::Visit;

/// Who may call an entry point.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Access {
    /// Any extension: it changes no kernel state, or only state the caller
    /// owns.
    Extension,
    /// The kernel only: it takes a `KernelCapability`.
    Kernel,
}

use Access::{Extension, Kernel};

/// Every entry point of the in-tree public crates, reviewed.
const REVIEWED: &[(&str, Access)] = &[
    // The clock service: reading is public; the tick accounting (the
    // original handler of Clock.Tick), the rate and publishing the event
    // are the kernel's. `tick_event` hands out the install right only.
    ("clock::account_tick", Kernel),
    ("clock::hz", Extension),
    ("clock::publish_tick_event", Kernel),
    ("clock::set_hz", Kernel),
    ("clock::tick_event", Extension),
    ("clock::ticks", Extension),
    // The console service: printing and installing commands are public;
    // where output goes and publishing the event are the kernel's.
    ("console::Line::new", Extension),
    ("console::line_event", Extension),
    ("console::publish_line_event", Kernel),
    ("console::set_sink", Kernel),
    ("console::write_fmt", Extension),
    ("console::write_str", Extension),
    // The dispatcher: declaring one's own events, building impositions and
    // time-bound tables for them, reading the registry. `take` returns
    // `None` once the kernel has taken the issuer at boot, before any
    // extension runs. The process-wide executor and clock, and the timer
    // hook, are the kernel's.
    (
        "dispatcher::authorize::<Imposition as Default>::default",
        Extension,
    ),
    ("dispatcher::authorize::Imposition::new", Extension),
    ("dispatcher::error::<InstallError as From>::from", Extension),
    ("dispatcher::event::Event::builder", Extension),
    ("dispatcher::event::Event::declare", Extension),
    ("dispatcher::executor::set_global_executor", Kernel),
    ("dispatcher::principal::PrincipalIssuer::take", Extension),
    ("dispatcher::public_event::PublicEvent::new", Extension),
    // Observing events by name (a guard-only binding through the owner's
    // authorizer) and the install right of Dispatcher.EventDeclared are
    // public; publishing that event is the kernel's.
    ("dispatcher::observe::declared_event", Extension),
    ("dispatcher::observe::observable_events", Extension),
    ("dispatcher::observe::observe", Extension),
    ("dispatcher::observe::publish_declared_event", Kernel),
    ("dispatcher::read_side::InterruptScope::enter", Kernel),
    ("dispatcher::read_side::in_interrupt", Extension),
    ("dispatcher::read_side::park", Kernel),
    ("dispatcher::read_side::raise_depth", Extension),
    // Waits (bounded) for raises in progress so retired tables can be freed;
    // changes no state anyone else relies on.
    ("dispatcher::read_side::synchronize", Extension),
    ("dispatcher::registry::bindings_of", Extension),
    ("dispatcher::registry::event_info", Extension),
    ("dispatcher::registry::events", Extension),
    // Rebuilds every event's table from kernel code (so no table lives in
    // an unloaded extension's heap); the kernel's alone.
    ("dispatcher::registry::republish_all", Kernel),
    (
        "dispatcher::time_bounds::<TimeBounds as Default>::default",
        Extension,
    ),
    ("dispatcher::time_bounds::TimeBounds::new", Extension),
    ("dispatcher::time_bounds::TimeBounds::with_clock", Extension),
    ("dispatcher::time_bounds::check_overruns", Kernel),
    ("dispatcher::time_bounds::global", Kernel),
    ("dispatcher::time_bounds::set_clock", Kernel),
    // The strand service. A strand acts on itself (yield, block, sleep) or
    // through a capability it was handed (methods, not listed); it spawns
    // and registers a policy under its own principal. Reading the table is
    // public. Raising the service's events, installing its platform, and
    // killing by id (any strand, or all of a principal's) are the kernel's.
    // Building an authorizer, a table or a queue of one's own changes
    // nothing in the kernel's.
    ("strand::events::ask_policy", Kernel),
    ("strand::events::events", Extension),
    ("strand::events::pick_authorizer", Extension),
    ("strand::events::publish_events", Kernel),
    ("strand::events::raise", Kernel),
    ("strand::events::round_robin", Extension),
    ("strand::events::signal_authorizer", Extension),
    ("strand::events::signal_original", Extension),
    ("strand::id::PolicyId::from_u32", Extension),
    ("strand::id::StrandId::from_u64", Extension),
    ("strand::queue::RunQueue::new", Extension),
    ("strand::service::Builder::new", Extension),
    ("strand::service::block", Extension),
    ("strand::service::can_block", Extension),
    ("strand::service::current", Extension),
    ("strand::service::current_waker", Extension),
    ("strand::service::info", Extension),
    ("strand::service::join_any", Kernel),
    ("strand::service::kill", Kernel),
    ("strand::service::kill_owned_by", Kernel),
    ("strand::service::list", Extension),
    ("strand::service::now_ns", Extension),
    ("strand::service::policies", Extension),
    ("strand::service::policy_named", Extension),
    ("strand::service::policy_of_principal", Extension),
    ("strand::service::register_policy", Extension),
    ("strand::service::retire_policy_of", Kernel),
    ("strand::service::set_platform", Kernel),
    ("strand::service::sleep", Extension),
    ("strand::service::sleep_until_ns", Extension),
    ("strand::service::yield_now", Extension),
    ("strand::sync::<Condvar as Default>::default", Extension),
    ("strand::sync::Condvar::new", Extension),
    ("strand::sync::Mutex::new", Extension),
    ("strand::sync::Semaphore::new", Extension),
    (
        "strand::table::<StrandTable as Default>::default",
        Extension,
    ),
    ("strand::table::StrandTable::new", Extension),
    // The memory services. Allocating frames and ranges happens under the
    // caller's own principal; mapping needs the capabilities for both the
    // frames and the range; reading the books (owners, ranges, mappings,
    // fault counts, one's own repossession vector) grants nothing. The
    // platforms, publishing and the fault path, reclaiming, releasing an
    // unloaded owner, the watermark and reading anyone's vector are the
    // kernel's. Building a ledger, a bitmap, a reclaim plan or a range or
    // mapping table of one's own changes nothing in the kernel's.
    ("phys_addr::bitmap::FrameBitmap::try_new", Extension),
    ("phys_addr::bitmap::FrameBitmap::words_needed", Extension),
    ("phys_addr::bitmap::FrameNumber::containing", Extension),
    ("phys_addr::error::<PhysError as From>::from", Extension),
    ("phys_addr::events::events", Extension),
    ("phys_addr::events::publish_events", Kernel),
    ("phys_addr::events::reclaim_authorizer", Extension),
    ("phys_addr::events::repossessed_authorizer", Extension),
    ("phys_addr::events::signal_authorizer", Extension),
    ("phys_addr::ledger::Ledger::new", Extension),
    ("phys_addr::reclaim::Reclaim::plan", Extension),
    ("phys_addr::service::Attributes::new", Extension),
    ("phys_addr::service::allocate", Extension),
    ("phys_addr::service::held_by", Extension),
    ("phys_addr::service::owners", Extension),
    ("phys_addr::service::reclaim", Kernel),
    ("phys_addr::service::release_owner", Kernel),
    ("phys_addr::service::repossession_vector", Extension),
    ("phys_addr::service::repossession_vector_of", Kernel),
    ("phys_addr::service::set_platform", Kernel),
    ("phys_addr::service::set_watermark", Kernel),
    ("phys_addr::service::stats", Extension),
    ("phys_addr::service::watermark", Extension),
    ("virt_addr::service::allocate", Extension),
    ("virt_addr::service::allocate_image", Kernel),
    ("virt_addr::service::lookup", Extension),
    ("virt_addr::service::range", Extension),
    ("virt_addr::service::ranges", Extension),
    ("virt_addr::service::release_owner", Kernel),
    ("virt_addr::service::set_platform", Kernel),
    ("virt_addr::table::RangeTable::new", Extension),
    ("virt_addr::table::RangeTable::with_zones", Extension),
    (
        "translation::error::<TranslationError as From>::from",
        Extension,
    ),
    ("translation::events::bad_address_authorizer", Extension),
    ("translation::events::events", Extension),
    ("translation::events::publish_events", Kernel),
    ("translation::events::range_owner_authorizer", Extension),
    ("translation::service::add_mapping", Extension),
    ("translation::service::examine_mapping", Extension),
    ("translation::service::fault_counts", Extension),
    ("translation::service::handle_fault", Kernel),
    ("translation::service::mapping_count", Extension),
    ("translation::service::mappings_of", Extension),
    ("translation::service::protect", Extension),
    ("translation::service::protect_range", Extension),
    ("translation::service::range_of", Extension),
    ("translation::service::remove_mapping", Extension),
    ("translation::service::set_platform", Kernel),
    ("translation::service::unmap_frames", Kernel),
    ("translation::service::unmap_range", Kernel),
    (
        "translation::table::<MappingTable as Default>::default",
        Extension,
    ),
    ("translation::table::MappingTable::new", Extension),
    // The SDK: values an extension builds for itself. A context holds a
    // principal the caller already has; a descriptor is inert data.
    ("spindle_sdk::<ExtensionError as From>::from", Extension),
    ("spindle_sdk::ExtensionContext::new", Extension),
    ("spindle_sdk::ExtensionDescriptor::new", Extension),
    ("spindle_sdk::ExtensionError::new", Extension),
    ("spindle_sdk::RawDescriptor::parse", Extension),
    ("spindle_sdk::log::__log", Extension),
];

/// One entry point found in the sources.
#[derive(Debug)]
struct Found {
    takes_capability: bool,
    file: PathBuf,
}

fn workspace_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .expect("xtask lives in the workspace")
        .to_path_buf()
}

/// Source directories of the in-tree crates among `SPIN_PUBLIC_CRATES`,
/// found through each workspace package's manifest.
fn public_crate_sources() -> Vec<(String, PathBuf)> {
    let root = workspace_root();
    let mut found = Vec::new();
    for dir in workspace_package_dirs(&root) {
        let manifest = std::fs::read_to_string(dir.join("Cargo.toml")).unwrap();
        let Some(name) = manifest
            .lines()
            .find_map(|l| l.strip_prefix("name = \""))
            .and_then(|rest| rest.strip_suffix('"'))
        else {
            continue;
        };
        let crate_name = name.replace('-', "_");
        if spindle_sdk::SPIN_PUBLIC_CRATES.contains(&crate_name.as_str()) {
            found.push((crate_name, dir.join("src")));
        }
    }
    found.sort();
    found
}

/// Every directory with a Cargo.toml up to two levels below the root
/// (the workspace's member globs are that deep).
fn workspace_package_dirs(root: &Path) -> Vec<PathBuf> {
    let mut dirs = Vec::new();
    let mut stack = vec![(root.to_path_buf(), 0)];
    while let Some((dir, depth)) = stack.pop() {
        let Ok(entries) = std::fs::read_dir(&dir) else {
            continue;
        };
        for entry in entries.flatten() {
            let path = entry.path();
            let name = entry.file_name();
            if !path.is_dir() || name == "target" || name.to_string_lossy().starts_with('.') {
                continue;
            }
            if path.join("Cargo.toml").exists() {
                dirs.push(path.clone());
            }
            if depth < 2 {
                stack.push((path, depth + 1));
            }
        }
    }
    dirs
}

/// Module path of a source file relative to `src`.
fn module_path(src: &Path, file: &Path) -> Vec<String> {
    let relative = file.strip_prefix(src).unwrap().with_extension("");
    let mut parts: Vec<String> = relative
        .components()
        .map(|c| c.as_os_str().to_string_lossy().into_owned())
        .collect();
    if matches!(parts.last().map(String::as_str), Some("lib" | "mod")) {
        parts.pop();
    }
    parts
}

fn rust_files(dir: &Path, out: &mut Vec<PathBuf>) {
    for entry in std::fs::read_dir(dir).unwrap().flatten() {
        let path = entry.path();
        if path.is_dir() {
            rust_files(&path, out);
        } else if path.extension().is_some_and(|e| e == "rs") {
            out.push(path);
        }
    }
}

fn is_cfg_test(attrs: &[syn::Attribute]) -> bool {
    attrs
        .iter()
        .any(|a| a.path().is_ident("cfg") && a.meta.to_token_stream().to_string().contains("test"))
}

fn is_pub(vis: &syn::Visibility) -> bool {
    matches!(vis, syn::Visibility::Public(_))
}

fn mentions_capability(sig: &syn::Signature) -> bool {
    sig.inputs.iter().any(|input| {
        input
            .to_token_stream()
            .to_string()
            .contains("KernelCapability")
    })
}

struct Scanner<'a> {
    path: Vec<String>,
    file: &'a Path,
    found: &'a mut BTreeMap<String, Found>,
}

impl Scanner<'_> {
    fn record(&mut self, name: String, takes_capability: bool) {
        let full = self
            .path
            .iter()
            .cloned()
            .chain([name])
            .collect::<Vec<_>>()
            .join("::");
        self.found.insert(
            full,
            Found {
                takes_capability,
                file: self.file.to_path_buf(),
            },
        );
    }
}

impl<'ast> Visit<'ast> for Scanner<'_> {
    fn visit_item_mod(&mut self, item: &'ast syn::ItemMod) {
        if is_cfg_test(&item.attrs) {
            return;
        }
        self.path.push(item.ident.to_string());
        syn::visit::visit_item_mod(self, item);
        self.path.pop();
    }

    fn visit_item_fn(&mut self, item: &'ast syn::ItemFn) {
        if is_pub(&item.vis) && !is_cfg_test(&item.attrs) {
            self.record(item.sig.ident.to_string(), mentions_capability(&item.sig));
        }
    }

    fn visit_item_static(&mut self, item: &'ast syn::ItemStatic) {
        if is_pub(&item.vis) && !is_cfg_test(&item.attrs) {
            self.record(item.ident.to_string(), false);
        }
    }

    fn visit_item_impl(&mut self, item: &'ast syn::ItemImpl) {
        if is_cfg_test(&item.attrs) {
            return;
        }
        let syn::Type::Path(self_type) = &*item.self_ty else {
            return;
        };
        let Some(type_name) = self_type.path.segments.last().map(|s| s.ident.to_string()) else {
            return;
        };
        let type_name = match &item.trait_ {
            Some((_, trait_path, _)) => format!(
                "<{type_name} as {}>",
                trait_path
                    .segments
                    .last()
                    .map(|s| s.ident.to_string())
                    .unwrap_or_default()
            ),
            None => type_name,
        };
        for impl_item in &item.items {
            let syn::ImplItem::Fn(method) = impl_item else {
                continue;
            };
            // Trait methods are as visible as the trait; inherent ones need `pub`.
            let visible = item.trait_.is_some() || is_pub(&method.vis);
            if visible && method.sig.receiver().is_none() && !is_cfg_test(&method.attrs) {
                self.record(
                    format!("{type_name}::{}", method.sig.ident),
                    mentions_capability(&method.sig),
                );
            }
        }
    }
}

/// Every entry point of the in-tree public crates, by path.
fn entry_points() -> BTreeMap<String, Found> {
    let mut found = BTreeMap::new();
    for (crate_name, src) in public_crate_sources() {
        let mut files = Vec::new();
        rust_files(&src, &mut files);
        for file in files {
            let text = std::fs::read_to_string(&file).unwrap();
            let ast = syn::parse_file(&text).unwrap_or_else(|e| panic!("{}: {e}", file.display()));
            let mut path = vec![crate_name.clone()];
            path.extend(module_path(&src, &file));
            Scanner {
                path,
                file: &file,
                found: &mut found,
            }
            .visit_file(&ast);
        }
    }
    found
}

#[test]
fn the_public_crates_are_the_in_tree_interfaces() {
    let names: Vec<String> = public_crate_sources().into_iter().map(|(n, _)| n).collect();
    assert!(
        [
            "clock",
            "console",
            "dispatcher",
            "phys_addr",
            "spindle_sdk",
            "strand",
            "translation",
            "virt_addr"
        ]
        .iter()
        .all(|c| names.iter().any(|n| n == c)),
        "{names:?}"
    );
}

#[test]
fn every_entry_point_of_a_public_crate_is_reviewed() {
    let found = entry_points();
    let mut problems = Vec::new();
    for (path, entry) in &found {
        match REVIEWED.iter().find(|(p, _)| p == path) {
            None => problems.push(format!(
                "new entry point `{path}` ({}; takes KernelCapability: {}): may an extension call it? \
                 If only the kernel may, add a `dispatcher::KernelCapability` parameter; then list it in REVIEWED",
                entry.file.display(),
                entry.takes_capability
            )),
            Some((_, Kernel)) if !entry.takes_capability => problems.push(format!(
                "`{path}` is kernel-only but takes no KernelCapability: extensions can call it"
            )),
            Some((_, Extension)) if entry.takes_capability => problems.push(format!(
                "`{path}` takes a KernelCapability: list it as Kernel"
            )),
            Some(_) => {}
        }
    }
    for (path, _) in REVIEWED {
        if !found.contains_key(*path) {
            problems.push(format!("`{path}` is listed but no longer exists"));
        }
    }
    assert!(
        problems.is_empty(),
        "{} problem(s):\n{}\n\nfound:\n{}",
        problems.len(),
        problems.join("\n"),
        found
            .iter()
            .map(|(p, f)| format!(
                "    (\"{p}\", {}),",
                if f.takes_capability {
                    "Kernel"
                } else {
                    "Extension"
                }
            ))
            .collect::<Vec<_>>()
            .join("\n")
    );
}
