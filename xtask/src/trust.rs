//! The trust policy for extensions' crates.io dependencies: SPIN's
//! trusted-compiler rule, applied to every crate an extension carries.
//!
//! An extension may depend on crates.io libraries. Every such crate is
//! compiled by the build itself, in the one cargo invocation that builds
//! the kernel (same toolchain, flags, panic strategy and code model), and
//! is then either
//!
//! * **vetted**: listed in `extensions/vetted.toml` with its version and the
//!   checksum Cargo.lock records for it, and who vetted it and why; or
//! * **safe**: compiled under `-F unsafe-code` with lints uncapped, and
//!   free of the `unsafe` keyword (and of `no_mangle`, `export_name`,
//!   `link_section`, `global_asm`) anywhere in the files it is compiled
//!   from. The second check closes what the lint cannot see: unsafe code in
//!   the body of a `macro_rules!` macro is reported nowhere, neither where
//!   it is defined (not expanded there) nor where it is used (lints are
//!   silent in another crate's macro output).
//!
//! A procedural macro writes code into the crates that use it, where the
//! lint cannot see it either: it must be vetted. A crate that is the very
//! compilation the kernel links, and is one of the kernel's public crates
//! (`SpinPublic`: `spin`, `hashbrown`, ...), is *imported* rather than
//! carried: its code is already the kernel's. Any other crate the kernel
//! also uses (`x86_64`, `sha2`, ...) gets no pass for that: an extension
//! depending on it carries its own copy, checked like any other. And since
//! kernel and extensions share one cargo build, an extension may not
//! change how a kernel crate is compiled (cargo would unify its features
//! into the kernel's copy): that is refused before anything is compiled.
//!
//! This module computes the policy from cargo's unit graph (`cargo build
//! --unit-graph`: exactly the compilations the build will run), the lock
//! file and the vetted list, and writes it for the rustc wrapper
//! (`extensions::rustc_wrapper`), which applies it crate by crate.

use std::collections::{BTreeMap, BTreeSet};
use std::fmt;
use std::path::Path;

use serde_json::Value;
use spindle_package::bundle::{CrateRecord, Provider, Role, Trust};

/// The crates whose symbols make up the kernel's public domain
/// (`SpinPublic`): a dependency that is the kernel's own compilation of one
/// of them is imported, not carried.
pub use spindle_sdk::SPIN_PUBLIC_CRATES as PUBLIC_CRATES;

/// Where the vetted list lives, relative to the workspace root.
pub const VETTED_FILE: &str = "extensions/vetted.toml";

/// Identifiers that mark unsafe code in a crate's sources (see the module
/// docs): the keyword, and the attributes and macro that are unsafe
/// without it in older editions.
pub const UNSAFE_TOKENS: &[&str] = &[
    "unsafe",
    "no_mangle",
    "export_name",
    "link_section",
    "global_asm",
];

/// A package as cargo names it in the unit graph and in its messages.
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct PackageId {
    /// The whole id, as cargo spells it.
    pub id: String,
    /// Package name.
    pub name: String,
    /// Version.
    pub version: String,
}

impl PackageId {
    /// Parses cargo's package id spec: `SOURCE#NAME@VERSION`, or
    /// `SOURCE#VERSION` when the name is the last path segment.
    pub fn parse(id: &str) -> Option<Self> {
        let (source, fragment) = id.rsplit_once('#')?;
        let (name, version) = match fragment.split_once('@') {
            Some((name, version)) => (name.to_owned(), version.to_owned()),
            None => (
                source.trim_end_matches('/').rsplit('/').next()?.to_owned(),
                fragment.to_owned(),
            ),
        };
        Some(Self {
            id: id.to_owned(),
            name,
            version,
        })
    }

    /// From the crates.io registry (the only source Cargo.lock checksums).
    pub fn is_registry(&self) -> bool {
        self.id.starts_with("registry+") || self.id.starts_with("sparse+")
    }

    /// Part of the standard library (`-Zbuild-std` units).
    pub fn is_sysroot(&self) -> bool {
        self.id.contains("/lib/rustlib/src/rust/library/")
    }
}

impl fmt::Display for PackageId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} {}", self.name, self.version)
    }
}

/// One compilation of cargo's unit graph.
#[derive(Clone, Debug)]
pub struct Unit {
    /// Its package.
    pub package: PackageId,
    /// Crate name (`--crate-name`).
    pub crate_name: String,
    /// Target kinds (`lib`, `proc-macro`, `custom-build`, `bin`...).
    pub kinds: Vec<String>,
    /// `None` for the host.
    pub platform: Option<String>,
    /// `build`, `run-custom-build`, ...
    pub mode: String,
    /// Enabled features.
    pub features: Vec<String>,
    /// Dependencies: (unit index, extern crate name).
    pub deps: Vec<(usize, String)>,
}

impl Unit {
    fn is(&self, kind: &str) -> bool {
        self.kinds.iter().any(|k| k == kind)
    }
}

/// Cargo's unit graph (`cargo build --unit-graph -Z unstable-options`).
#[derive(Clone, Debug, Default)]
pub struct UnitGraph {
    /// Every unit.
    pub units: Vec<Unit>,
}

impl UnitGraph {
    /// Parses cargo's JSON.
    pub fn parse(json: &str) -> Result<Self, String> {
        let value: Value = serde_json::from_str(json).map_err(|e| format!("unit graph: {e}"))?;
        let mut units = Vec::new();
        for u in value["units"].as_array().ok_or("unit graph: no units")? {
            let id = u["pkg_id"].as_str().unwrap_or_default();
            let package = PackageId::parse(id).ok_or_else(|| format!("package id {id:?}"))?;
            let strings = |v: &Value| -> Vec<String> {
                v.as_array()
                    .into_iter()
                    .flatten()
                    .filter_map(|s| s.as_str().map(str::to_owned))
                    .collect()
            };
            units.push(Unit {
                package,
                crate_name: u["target"]["name"]
                    .as_str()
                    .unwrap_or_default()
                    .replace('-', "_"),
                kinds: strings(&u["target"]["kind"]),
                platform: u["platform"].as_str().map(str::to_owned),
                mode: u["mode"].as_str().unwrap_or_default().to_owned(),
                features: strings(&u["features"]),
                deps: u["dependencies"]
                    .as_array()
                    .into_iter()
                    .flatten()
                    .filter_map(|d| {
                        Some((
                            usize::try_from(d["index"].as_u64()?).ok()?,
                            d["extern_crate_name"].as_str()?.to_owned(),
                        ))
                    })
                    .collect(),
            });
        }
        Ok(Self { units })
    }

    /// Units reachable from `root` (itself included).
    pub fn closure(&self, root: usize) -> BTreeSet<usize> {
        let mut seen = BTreeSet::new();
        let mut stack = vec![root];
        while let Some(i) = stack.pop() {
            if seen.insert(i) {
                stack.extend(self.units[i].deps.iter().map(|(d, _)| *d));
            }
        }
        seen
    }
}

/// `name version -> checksum` from a Cargo.lock.
#[derive(Clone, Debug, Default)]
pub struct Lockfile {
    checksums: BTreeMap<(String, String), String>,
}

impl Lockfile {
    /// Parses a Cargo.lock.
    pub fn parse(text: &str) -> Result<Self, String> {
        let doc: toml_edit::DocumentMut = text.parse().map_err(|e| format!("Cargo.lock: {e}"))?;
        let mut checksums = BTreeMap::new();
        if let Some(packages) = doc.get("package").and_then(|p| p.as_array_of_tables()) {
            for p in packages {
                let field = |k: &str| p.get(k).and_then(|v| v.as_str()).map(str::to_owned);
                if let (Some(name), Some(version), Some(checksum)) =
                    (field("name"), field("version"), field("checksum"))
                {
                    checksums.insert((name, version), checksum);
                }
            }
        }
        Ok(Self { checksums })
    }

    /// The checksum of a registry package.
    pub fn checksum(&self, name: &str, version: &str) -> Option<&str> {
        self.checksums
            .get(&(name.to_owned(), version.to_owned()))
            .map(String::as_str)
    }
}

/// One entry of the vetted list.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct VettedCrate {
    /// Package name.
    pub name: String,
    /// Exact version.
    pub version: String,
    /// SHA-256 of the `.crate` file, as Cargo.lock records it.
    pub checksum: String,
    /// Who reviewed it.
    pub vetted_by: String,
    /// Why its `unsafe` is acceptable in the kernel.
    pub reason: String,
}

/// The vetted list (`extensions/vetted.toml`).
#[derive(Clone, Debug, Default)]
pub struct VettedList {
    /// Its entries.
    pub crates: Vec<VettedCrate>,
}

impl VettedList {
    /// Parses the list: `[[crate]]` tables with `name`, `version`,
    /// `checksum`, `vetted-by` and `reason`, all required.
    pub fn parse(text: &str) -> Result<Self, String> {
        let doc: toml_edit::DocumentMut = text.parse().map_err(|e| format!("{e}"))?;
        let mut crates = Vec::new();
        if let Some(entries) = doc.get("crate").and_then(|c| c.as_array_of_tables()) {
            for (i, e) in entries.iter().enumerate() {
                let field = |k: &str| -> Result<String, String> {
                    e.get(k)
                        .and_then(|v| v.as_str())
                        .filter(|s| !s.trim().is_empty())
                        .map(str::to_owned)
                        .ok_or_else(|| format!("[[crate]] #{} has no `{k}`", i + 1))
                };
                crates.push(VettedCrate {
                    name: field("name")?,
                    version: field("version")?,
                    checksum: field("checksum")?,
                    vetted_by: field("vetted-by")?,
                    reason: field("reason")?,
                });
            }
        }
        Ok(Self { crates })
    }

    /// Reads the list from `path`; a missing file is an empty list.
    pub fn read(path: &Path) -> Result<Self, String> {
        match std::fs::read_to_string(path) {
            Ok(text) => Self::parse(&text).map_err(|e| format!("{}: {e}", path.display())),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(Self::default()),
            Err(e) => Err(format!("{}: {e}", path.display())),
        }
    }

    /// The entry for exactly this version.
    pub fn get(&self, name: &str, version: &str) -> Option<&VettedCrate> {
        self.crates
            .iter()
            .find(|c| c.name == name && c.version == version)
    }

    /// Versions of `name` the list vets.
    pub fn versions(&self, name: &str) -> Vec<&str> {
        self.crates
            .iter()
            .filter(|c| c.name == name)
            .map(|c| c.version.as_str())
            .collect()
    }
}

/// A workspace package, as the policy needs to know it.
#[derive(Clone, Debug)]
pub struct Member {
    /// Package name.
    pub name: String,
    /// An extension (or fixture) crate.
    pub extension: bool,
    /// For a fixture: workspace crates it may depend on anyway
    /// (`allow-crates`), so that the loader's own checks refuse it.
    pub allow: Vec<String>,
}

/// What the build must check while compiling: a crate that must prove
/// itself safe.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Checked {
    /// The package.
    pub package: PackageId,
    /// Its crate name.
    pub crate_name: String,
    /// Its checksum in Cargo.lock (`-` if it is not from the registry).
    pub checksum: String,
    /// The extensions that carry it.
    pub used_by: Vec<String>,
    /// Other versions of it that the vetted list vets.
    pub vetted_versions: Vec<String>,
}

/// One extension's place in the policy.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ExtensionTrust {
    /// Package name.
    pub name: String,
    /// Its package id.
    pub package: PackageId,
    /// Crate name.
    pub crate_name: String,
    /// `--extern` names it may use.
    pub allowed_externs: Vec<String>,
    /// Its crate list (itself, what it carries, what it imports).
    pub crates: Vec<CrateRecord>,
    /// Package ids of the crates it carries, for bundling.
    pub carried: Vec<PackageId>,
}

/// The policy for one build.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct TrustPlan {
    /// Per extension.
    pub extensions: Vec<ExtensionTrust>,
    /// Crates to check at compile time.
    pub checked: Vec<Checked>,
}

/// Why a build is refused before anything is compiled.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Refusal {
    /// An extension depends on a workspace crate that is not public.
    KernelInternal {
        /// The extension.
        extension: String,
        /// The crate.
        krate: String,
    },
    /// A vetted crate's checksum differs from Cargo.lock's.
    ChecksumMismatch {
        /// The crate.
        package: PackageId,
        /// What the vetted list says.
        vetted: String,
        /// What Cargo.lock says (`-`: none, not a registry crate).
        locked: String,
    },
    /// A procedural macro that is not vetted.
    UnvettedProcMacro {
        /// The extension.
        extension: String,
        /// The macro crate.
        package: PackageId,
    },
    /// An extension changes the features of a crate the kernel links.
    KernelCrateChanged {
        /// The crate.
        package: PackageId,
        /// Features the extensions add.
        added: Vec<String>,
        /// Extensions whose dependencies reach it.
        extensions: Vec<String>,
    },
}

impl fmt::Display for Refusal {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Refusal::KernelInternal { extension, krate } => write!(
                f,
                "extension `{extension}` depends on `{krate}`, a kernel-internal crate: extensions \
                 may link only against spindle-sdk, other extensions and crates.io libraries"
            ),
            Refusal::ChecksumMismatch {
                package,
                vetted,
                locked,
            } => write!(
                f,
                "`{package}` is vetted in {VETTED_FILE} with checksum {vetted}, but Cargo.lock has \
                 {locked}: this is not the source that was vetted. Review the new source and \
                 update the entry's checksum, or restore the vetted source"
            ),
            Refusal::UnvettedProcMacro { extension, package } => write!(
                f,
                "extension `{extension}` uses the procedural macro `{package}`, which is not \
                 vetted: a procedural macro writes code into the crates that use it, where \
                 `-F unsafe-code` cannot see it. Review it and add it to {VETTED_FILE} \
                 (see README, \"Vetting a crate\")"
            ),
            Refusal::KernelCrateChanged {
                package,
                added,
                extensions,
            } => write!(
                f,
                "extensions [{}] change how the kernel's dependency `{package}` is compiled \
                 (features {} added): kernel and extensions share one build, so cargo would \
                 compile the kernel's copy with them. Depend on it with the kernel's features",
                extensions.join(", "),
                added
                    .iter()
                    .map(|a| format!("+{a}"))
                    .collect::<Vec<_>>()
                    .join(" ")
            ),
        }
    }
}

/// Everything the policy is computed from.
pub struct Inputs<'a> {
    /// The unit graph of the whole build (kernel and extensions).
    pub graph: &'a UnitGraph,
    /// The unit graph of the kernel alone.
    pub kernel_graph: &'a UnitGraph,
    /// Workspace packages by package id.
    pub members: &'a BTreeMap<String, Member>,
    /// The lock file.
    pub lock: &'a Lockfile,
    /// The vetted list.
    pub vetted: &'a VettedList,
    /// The kernel's target triple.
    pub target: &'a str,
}

/// Computes the policy, or every reason to refuse the build.
pub fn plan(inputs: &Inputs<'_>) -> Result<TrustPlan, Vec<Refusal>> {
    let graph = inputs.graph;
    let on_target = |u: &Unit| u.platform.as_deref() == Some(inputs.target) && u.mode == "build";
    let kernel_root = graph
        .units
        .iter()
        .position(|u| u.package.name == "kernel-image" && u.is("bin") && on_target(u));
    let kernel: BTreeSet<usize> = kernel_root.map(|r| graph.closure(r)).unwrap_or_default();
    let mut refusals = Vec::new();
    let mut checked: BTreeMap<PackageId, Checked> = BTreeMap::new();
    let mut extensions = Vec::new();

    for unit in &graph.units {
        let Some(member) = inputs.members.get(&unit.package.id) else {
            continue;
        };
        if !member.extension || !unit.is("lib") || !on_target(unit) {
            continue;
        }
        let mut trust = ExtensionTrust {
            name: member.name.clone(),
            package: unit.package.clone(),
            crate_name: unit.crate_name.clone(),
            allowed_externs: Vec::new(),
            crates: vec![CrateRecord::new(
                Role::Extension,
                &unit.package.name,
                &unit.package.version,
            )],
            carried: Vec::new(),
        };
        let mut stack: Vec<usize> = Vec::new();
        for (d, extern_name) in &unit.deps {
            let dep = &graph.units[*d];
            if dep.package.is_sysroot() || dep.is("custom-build") {
                continue;
            }
            trust.allowed_externs.push(extern_name.clone());
            match inputs.members.get(&dep.package.id) {
                Some(m) if m.name == "spindle-sdk" => trust.crates.push(CrateRecord::new(
                    Role::Imported(Provider::Kernel),
                    &dep.package.name,
                    &dep.package.version,
                )),
                Some(m) if m.extension => trust.crates.push(CrateRecord::new(
                    Role::Imported(Provider::Extension),
                    &dep.package.name,
                    &dep.package.version,
                )),
                Some(_) if member.allow.contains(&dep.crate_name) => {
                    trust.crates.push(CrateRecord::new(
                        Role::Imported(Provider::Kernel),
                        &dep.package.name,
                        &dep.package.version,
                    ));
                }
                Some(m) => {
                    trust.allowed_externs.pop();
                    refusals.push(Refusal::KernelInternal {
                        extension: member.name.clone(),
                        krate: m.name.clone(),
                    });
                }
                None => stack.push(*d),
            }
        }
        // The library crates it reaches.
        let mut seen = BTreeSet::new();
        while let Some(i) = stack.pop() {
            if !seen.insert(i) {
                continue;
            }
            let lib = &graph.units[i];
            if lib.package.is_sysroot() || lib.is("custom-build") {
                continue;
            }
            let package = &lib.package;
            if let Some(m) = inputs.members.get(&package.id) {
                refusals.push(Refusal::KernelInternal {
                    extension: member.name.clone(),
                    krate: m.name.clone(),
                });
                continue;
            }
            let locked = inputs
                .lock
                .checksum(&package.name, &package.version)
                .filter(|_| package.is_registry())
                .unwrap_or("-");
            let vetted = inputs.vetted.get(&package.name, &package.version);
            if let Some(v) = vetted
                && v.checksum != locked
            {
                refusals.push(Refusal::ChecksumMismatch {
                    package: package.clone(),
                    vetted: v.checksum.clone(),
                    locked: locked.to_owned(),
                });
                continue;
            }
            if lib.is("proc-macro") {
                if vetted.is_none() {
                    refusals.push(Refusal::UnvettedProcMacro {
                        extension: member.name.clone(),
                        package: package.clone(),
                    });
                }
                // It runs on the build machine; nothing of it is carried.
                continue;
            }
            if kernel.contains(&i) && PUBLIC_CRATES.contains(&lib.crate_name.as_str()) {
                trust.crates.push(CrateRecord::new(
                    Role::Imported(Provider::Kernel),
                    &package.name,
                    &package.version,
                ));
                continue;
            }
            let role = if vetted.is_some() {
                Role::Carried(Trust::Vetted)
            } else {
                let entry = checked.entry(package.clone()).or_insert_with(|| Checked {
                    package: package.clone(),
                    crate_name: lib.crate_name.clone(),
                    checksum: locked.to_owned(),
                    used_by: Vec::new(),
                    vetted_versions: inputs
                        .vetted
                        .versions(&package.name)
                        .into_iter()
                        .map(str::to_owned)
                        .collect(),
                });
                entry.used_by.push(member.name.clone());
                Role::Carried(Trust::Safe)
            };
            trust
                .crates
                .push(CrateRecord::new(role, &package.name, &package.version));
            trust.carried.push(package.clone());
            stack.extend(lib.deps.iter().map(|(d, _)| *d));
        }
        trust.crates[1..].sort_by(|a, b| {
            (role_rank(a.role), &a.name, &a.version).cmp(&(role_rank(b.role), &b.name, &b.version))
        });
        trust.carried.sort();
        extensions.push(trust);
    }
    refusals.extend(kernel_changes(inputs, &extensions));
    if refusals.is_empty() {
        extensions.sort_by(|a, b| a.name.cmp(&b.name));
        Ok(TrustPlan {
            extensions,
            checked: checked.into_values().collect(),
        })
    } else {
        refusals.dedup();
        Err(refusals)
    }
}

fn role_rank(role: Role) -> u8 {
    match role {
        Role::Extension => 0,
        Role::Carried(_) => 1,
        Role::Imported(_) => 2,
    }
}

/// Kernel crates whose features the extensions change.
fn kernel_changes(inputs: &Inputs<'_>, extensions: &[ExtensionTrust]) -> Vec<Refusal> {
    let mut out = Vec::new();
    for k in &inputs.kernel_graph.units {
        let Some(full) = inputs.graph.units.iter().find(|u| {
            u.package.id == k.package.id
                && u.crate_name == k.crate_name
                && u.platform == k.platform
                && u.mode == k.mode
                && u.kinds == k.kinds
        }) else {
            continue;
        };
        let added: Vec<String> = full
            .features
            .iter()
            .filter(|f| !k.features.contains(f))
            .cloned()
            .collect();
        if added.is_empty() {
            continue;
        }
        let users = extensions
            .iter()
            .filter(|e| {
                e.carried.contains(&k.package)
                    || e.crates
                        .iter()
                        .any(|c| c.name == k.package.name && c.version == k.package.version)
            })
            .map(|e| e.name.clone())
            .collect();
        out.push(Refusal::KernelCrateChanged {
            package: k.package.clone(),
            added,
            extensions: users,
        });
    }
    out
}

/// What the rustc wrapper needs, as lines of text:
///
/// * `CRATE\tALLOWED,EXTERNS\tEXTRA FLAGS` per extension crate (the format
///   the build has always used);
/// * `@check\tPACKAGE\tVERSION\tCRATE\tCHECKSUM\tUSED,BY\tVETTED,VERSIONS`
///   per crate that must prove itself safe;
/// * `@vetted\tPATH` (for messages) and `@stamps\tDIR` (where the wrapper
///   records each verdict, see [`stamp_name`]).
pub fn wrapper_plan(
    plan: &TrustPlan,
    extra_flags: &BTreeMap<String, String>,
    vetted_file: &Path,
    stamps: &Path,
) -> String {
    let mut out = format!(
        "@vetted\t{}\n@stamps\t{}\n",
        vetted_file.display(),
        stamps.display()
    );
    for e in &plan.extensions {
        out.push_str(&format!(
            "{}\t{}\t{}\n",
            e.crate_name,
            e.allowed_externs.join(","),
            extra_flags.get(&e.name).map_or("", String::as_str)
        ));
    }
    for c in &plan.checked {
        out.push_str(&format!(
            "@check\t{}\t{}\t{}\t{}\t{}\t{}\n",
            c.package.name,
            c.package.version,
            c.crate_name,
            c.checksum,
            c.used_by.join(","),
            c.vetted_versions.join(",")
        ));
    }
    out
}

/// The stamp the wrapper leaves for a crate it checked: the artifact's
/// file stem (`libheapless-1a2b3c4d`), which names the exact compilation.
pub fn stamp_name(crate_name: &str, extra_filename: &str) -> String {
    format!("lib{crate_name}{extra_filename}")
}

/// Where a crate's sources use one of [`UNSAFE_TOKENS`]: (1-based line,
/// token). Comments, strings and character literals are skipped; raw
/// identifiers (`r#unsafe`) are not the keyword.
pub fn find_unsafe(source: &str) -> Vec<(usize, &'static str)> {
    let bytes = source.as_bytes();
    let mut found = Vec::new();
    let mut line = 1;
    let mut i = 0;
    let count_lines =
        |from: usize, to: usize| bytes[from..to].iter().filter(|&&b| b == b'\n').count();
    while i < bytes.len() {
        let b = bytes[i];
        let rest = &bytes[i..];
        if b == b'\n' {
            line += 1;
            i += 1;
        } else if rest.starts_with(b"//") {
            while i < bytes.len() && bytes[i] != b'\n' {
                i += 1;
            }
        } else if rest.starts_with(b"/*") {
            let start = i;
            let mut depth = 0;
            while i < bytes.len() {
                if bytes[i..].starts_with(b"/*") {
                    depth += 1;
                    i += 2;
                } else if bytes[i..].starts_with(b"*/") {
                    depth -= 1;
                    i += 2;
                    if depth == 0 {
                        break;
                    }
                } else {
                    i += 1;
                }
            }
            line += count_lines(start, i.min(bytes.len()));
        } else if let Some(end) = raw_string_end(bytes, i) {
            line += count_lines(i, end);
            i = end;
        } else if b == b'"' {
            let start = i;
            i += 1;
            while i < bytes.len() && bytes[i] != b'"' {
                i += if bytes[i] == b'\\' { 2 } else { 1 };
            }
            i += 1;
            line += count_lines(start, i.min(bytes.len()));
        } else if b == b'\'' {
            // A character literal ('a', '\n', '\u{..}') or a lifetime ('a).
            if rest.get(1) == Some(&b'\\') {
                i += 2;
                while i < bytes.len() && bytes[i] != b'\'' {
                    i += 1;
                }
                i += 1;
            } else if let Some(c) = source[i + 1..].chars().next()
                && source[i + 1 + c.len_utf8()..].starts_with('\'')
            {
                i += 2 + c.len_utf8();
            } else {
                i += 1;
            }
        } else if b == b'_' || b.is_ascii_alphabetic() {
            let start = i;
            while i < bytes.len() && (bytes[i] == b'_' || bytes[i].is_ascii_alphanumeric()) {
                i += 1;
            }
            let word = &source[start..i];
            let raw = start >= 2 && &bytes[start - 2..start] == b"r#";
            if !raw && let Some(token) = UNSAFE_TOKENS.iter().find(|t| **t == word) {
                found.push((line, *token));
            }
        } else {
            i += 1;
        }
    }
    found
}

/// If a raw (byte/C) string literal starts at `i` (`r"`, `r#"`, `br#"`,
/// `cr"`...), the index just past it.
fn raw_string_end(bytes: &[u8], i: usize) -> Option<usize> {
    if i > 0 && (bytes[i - 1] == b'_' || bytes[i - 1].is_ascii_alphanumeric()) {
        return None;
    }
    let mut j = i;
    if matches!(bytes.get(j), Some(b'b' | b'c')) {
        j += 1;
    }
    if bytes.get(j) != Some(&b'r') {
        return None;
    }
    j += 1;
    let hashes = bytes[j..].iter().take_while(|&&b| b == b'#').count();
    j += hashes;
    if bytes.get(j) != Some(&b'"') {
        return None;
    }
    j += 1;
    let closing: Vec<u8> = std::iter::once(b'"')
        .chain(std::iter::repeat_n(b'#', hashes))
        .collect();
    let end = bytes[j..]
        .windows(closing.len())
        .position(|w| w == closing.as_slice())
        .map_or(bytes.len(), |p| j + p + closing.len());
    Some(end)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn package_ids_of_every_form_parse() {
        let p = PackageId::parse(
            "registry+https://github.com/rust-lang/crates.io-index#heapless@0.9.4",
        )
        .unwrap();
        assert_eq!((p.name.as_str(), p.version.as_str()), ("heapless", "0.9.4"));
        assert!(p.is_registry() && !p.is_sysroot());
        let p = PackageId::parse("path+file:///work/extensions/hello#0.1.0").unwrap();
        assert_eq!((p.name.as_str(), p.version.as_str()), ("hello", "0.1.0"));
        let p = PackageId::parse(
            "path+file:///root/.rustup/toolchains/x/lib/rustlib/src/rust/library/core#0.0.0",
        )
        .unwrap();
        assert!(p.is_sysroot());
    }

    #[test]
    fn the_scanner_finds_unsafe_code_and_nothing_else() {
        let source = r####"
#![forbid(unsafe_code)] // unsafe in a comment
/* unsafe /* nested unsafe */ still comment */
const S: &str = "unsafe \" unsafe";
const R: &str = r#"unsafe "# ;
const C: char = '"'; const L: &'static str = "x";
fn f<'a>(x: &'a u8) -> u8 { let r#unsafe = 1; *x + r#unsafe }
macro_rules! m { () => { unsafe { core::hint::unreachable_unchecked() } } }
#[unsafe(no_mangle)]
pub extern "C" fn g() {}
"####;
        assert_eq!(
            find_unsafe(source),
            [(8, "unsafe"), (9, "unsafe"), (9, "no_mangle")]
        );
        assert_eq!(find_unsafe("fn safe() -> u32 { 1 }\n"), []);
    }

    #[test]
    fn the_vetted_list_and_the_lock_file_parse() {
        let vetted = VettedList::parse(
            r#"
[[crate]]
name = "libm"
version = "0.2.16"
checksum = "abc"
vetted-by = "someone"
reason = "why"
"#,
        )
        .unwrap();
        assert_eq!(vetted.get("libm", "0.2.16").unwrap().checksum, "abc");
        assert_eq!(vetted.versions("libm"), ["0.2.16"]);
        assert!(vetted.get("libm", "0.2.15").is_none());
        let missing = VettedList::parse("[[crate]]\nname = \"x\"\nversion = \"1\"\n").unwrap_err();
        assert_eq!(missing, "[[crate]] #1 has no `checksum`");
        let lock = Lockfile::parse(
            "version = 4\n[[package]]\nname = \"libm\"\nversion = \"0.2.16\"\nsource = \"registry+x\"\nchecksum = \"abc\"\n",
        )
        .unwrap();
        assert_eq!(lock.checksum("libm", "0.2.16"), Some("abc"));
    }

    /// One unit: package id, crate, kind, platform, features, deps.
    type UnitSpec<'a> = (
        &'a str,
        &'a str,
        &'a str,
        Option<&'a str>,
        &'a [&'a str],
        &'a [usize],
    );

    /// A unit graph from its units.
    fn graph(units: &[UnitSpec<'_>]) -> UnitGraph {
        UnitGraph {
            units: units
                .iter()
                .map(|(id, krate, kind, platform, features, deps)| Unit {
                    package: PackageId::parse(id).unwrap(),
                    crate_name: (*krate).into(),
                    kinds: vec![(*kind).into()],
                    platform: platform.map(Into::into),
                    mode: "build".into(),
                    features: features.iter().map(|f| (*f).into()).collect(),
                    deps: deps.iter().map(|&d| (d, units[d].1.to_owned())).collect(),
                })
                .collect(),
        }
    }

    const T: Option<&str> = Some("x86_64-unknown-none");
    const REG: &str = "registry+https://github.com/rust-lang/crates.io-index#";

    /// The kernel (0) links spindle-sdk (1), spin (2, public) and x86_64
    /// (3, private). The extension `ext` (4) depends on the SDK, on spin
    /// and x86_64 (the kernel's very units), on `lib` (5, which depends on
    /// `dep`, 6) and on `mac` (7, a procedural macro); `bad` (8) depends
    /// on the kernel-internal `domains` (9).
    fn sample(spin_features: &[&'static str]) -> (UnitGraph, BTreeMap<String, Member>) {
        let spin = format!("{REG}spin@0.12.3");
        let x86 = format!("{REG}x86_64@0.15.5");
        let lib = format!("{REG}lib@1.0.0");
        let dep = format!("{REG}dep@2.0.0");
        let mac = format!("{REG}mac@0.1.0");
        let g = graph(&[
            (
                "path+file:///w/kernel-image#0.1.0",
                "spindle-kernel",
                "bin",
                T,
                &[],
                &[1, 2, 3],
            ),
            (
                "path+file:///w/extensions/sdk#spindle-sdk@0.1.0",
                "spindle_sdk",
                "lib",
                T,
                &[],
                &[2],
            ),
            (&spin, "spin", "lib", T, spin_features, &[]),
            (&x86, "x86_64", "lib", T, &[], &[]),
            (
                "path+file:///w/extensions/ext#0.1.0",
                "ext",
                "lib",
                T,
                &[],
                &[1, 2, 3, 5, 7],
            ),
            (&lib, "lib", "lib", T, &[], &[6]),
            (&dep, "dep", "lib", T, &[], &[]),
            (&mac, "mac", "proc-macro", None, &[], &[]),
            (
                "path+file:///w/extensions/bad#0.1.0",
                "bad",
                "lib",
                T,
                &[],
                &[1, 9],
            ),
            (
                "path+file:///w/domains#0.1.0",
                "domains",
                "lib",
                T,
                &[],
                &[],
            ),
        ]);
        let member = |name: &str, extension: bool| Member {
            name: name.into(),
            extension,
            allow: Vec::new(),
        };
        let members = BTreeMap::from([
            (g.units[0].package.id.clone(), member("kernel-image", false)),
            (g.units[1].package.id.clone(), member("spindle-sdk", false)),
            (g.units[4].package.id.clone(), member("ext", true)),
            (g.units[8].package.id.clone(), member("bad", true)),
            (g.units[9].package.id.clone(), member("domains", false)),
        ]);
        (g, members)
    }

    fn run(
        graph: &UnitGraph,
        kernel: &UnitGraph,
        members: &BTreeMap<String, Member>,
        vetted: &str,
    ) -> Result<TrustPlan, Vec<Refusal>> {
        let lock = Lockfile::parse(
            "[[package]]\nname = \"mac\"\nversion = \"0.1.0\"\nchecksum = \"m1\"\n\
             [[package]]\nname = \"lib\"\nversion = \"1.0.0\"\nchecksum = \"l1\"\n",
        )
        .unwrap();
        plan(&Inputs {
            graph,
            kernel_graph: kernel,
            members,
            lock: &lock,
            vetted: &VettedList::parse(vetted).unwrap(),
            target: "x86_64-unknown-none",
        })
    }

    #[test]
    fn the_policy_sorts_every_dependency_and_refuses_what_it_must() {
        let (g, members) = sample(&[]);
        let refusals = run(&g, &g, &members, "").unwrap_err();
        assert_eq!(
            refusals,
            [
                Refusal::UnvettedProcMacro {
                    extension: "ext".into(),
                    package: g.units[7].package.clone(),
                },
                Refusal::KernelInternal {
                    extension: "bad".into(),
                    krate: "domains".into(),
                },
            ]
        );
        // With the macro vetted and `bad` allowed its crate (a fixture the
        // loader refuses), the plan: spin imported (the kernel's public
        // unit), x86_64 carried and checked though the kernel links it,
        // lib and its dep carried; lib vetted, the others checked.
        let mut members = members;
        members.get_mut(&g.units[8].package.id).unwrap().allow = vec!["domains".into()];
        let vetted = "[[crate]]\nname = \"mac\"\nversion = \"0.1.0\"\nchecksum = \"m1\"\nvetted-by = \"a\"\nreason = \"b\"\n\
                      [[crate]]\nname = \"lib\"\nversion = \"1.0.0\"\nchecksum = \"l1\"\nvetted-by = \"a\"\nreason = \"b\"\n";
        let plan = run(&g, &g, &members, vetted).unwrap();
        let ext = &plan.extensions[1];
        assert_eq!(ext.name, "ext");
        let lines: Vec<String> = ext.crates.iter().map(ToString::to_string).collect();
        assert_eq!(
            lines,
            [
                "extension\text\t0.1.0",
                "carries\tdep\t2.0.0\tsafe",
                "carries\tlib\t1.0.0\tvetted",
                "carries\tx86_64\t0.15.5\tsafe",
                "imports\tspin\t0.12.3\tkernel",
                "imports\tspindle-sdk\t0.1.0\tkernel",
            ]
        );
        assert_eq!(
            ext.allowed_externs,
            ["spindle_sdk", "spin", "x86_64", "lib", "mac"]
        );
        let checked: Vec<String> = plan.checked.iter().map(|c| c.package.to_string()).collect();
        assert_eq!(checked, ["dep 2.0.0", "x86_64 0.15.5"]);
        assert_eq!(
            plan.extensions[0].allowed_externs,
            ["spindle_sdk", "domains"]
        );
    }

    #[test]
    fn an_extension_changing_a_kernel_crates_features_is_refused() {
        let (kernel, members) = sample(&["lock_api"]);
        let (full, _) = sample(&["lock_api", "portable_atomic"]);
        let vetted = "[[crate]]\nname = \"mac\"\nversion = \"0.1.0\"\nchecksum = \"m1\"\nvetted-by = \"a\"\nreason = \"b\"\n";
        let mut members = members;
        members.remove(&full.units[8].package.id);
        let refusals = run(&full, &kernel, &members, vetted).unwrap_err();
        assert_eq!(
            refusals,
            [Refusal::KernelCrateChanged {
                package: full.units[2].package.clone(),
                added: vec!["portable_atomic".into()],
                extensions: vec!["ext".into()],
            }]
        );
        assert!(refusals[0].to_string().contains(
            "extensions [ext] change how the kernel's dependency `spin 0.12.3` is compiled (features +portable_atomic added)"
        ));
    }
}
