//! The extension build pipeline: SPIN's "trusted compiler", as a build.
//!
//! 1. Extension crates are found through their `[package.metadata.spindle]`
//!    table (`kind = "extension" | "fixture"`, optional `autoload`,
//!    `allow-crates`, `rustflags`).
//! 2. The trust policy for their dependencies is computed from cargo's unit
//!    graph, Cargo.lock and `extensions/vetted.toml` ([`xtask::trust`]):
//!    which crates.io crates each extension carries, which it imports from
//!    the kernel or other extensions, which must prove themselves safe while
//!    compiling. Kernel-internal dependencies, unvetted procedural macros,
//!    vetted crates whose checksum changed and changes to how kernel crates
//!    are compiled are refused here, before anything is compiled.
//! 3. The kernel and every extension (with their dependencies) are built in
//!    **one** cargo invocation and profile, so the symbol hashes of the
//!    crates they share agree. xtask is cargo's `RUSTC_WRAPPER` for that
//!    build and applies the policy to each compilation (`gate`): extension
//!    crates get `-F unsafe-code`, `-C codegen-units=1` and an `--extern`
//!    allow-list; unvetted dependencies must compile under `-F unsafe-code`
//!    and be free of `unsafe`. Every verdict is stamped on the artifact, and
//!    an artifact without one (built outside the gate) is rebuilt.
//! 4. Each extension becomes a bundle (`spindle_package::bundle`): its
//!    crate list (itself, the crates it carries, the crates it imports,
//!    with versions), its object and one object per carried crate, each
//!    taken out of its rlib and stripped of DWARF. The bundle is signed with
//!    the build's Ed25519 key (`target/spindle/keys/`, generated once; the
//!    secret never leaves that directory; the kernel embeds the public key),
//!    so the crate list is covered by the signature.
//! 5. Test fixtures for the loader's bad-input checks are derived from the
//!    object of `counter`, the smallest extension (unsigned, tampered, stale
//!    fingerprint, truncated, garbage, oversized and overlapping sections).
//! 6. Everything goes into the ramdisk with its manifest.

use std::collections::BTreeMap;
use std::io::{BufRead, BufReader, Read};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

use serde_json::Value;
use spindle_package::bundle::write_bundle;
use spindle_package::{Kind, NewEntry, RamdiskWriter, object_digest, sign};
use spindle_sdk::{ExtensionDescriptor, InterfaceRef};
use xtask::trust::{self, TrustPlan};
use xtask::workspace;

use crate::gate::{STAMP_EXTENSION, STAMP_SAFE, has_stamp};
use crate::{Failure, KERNEL_BUILD_STD, KERNEL_TARGET, cargo, profile_dir};

/// The extension the bad-input fixtures are derived from: the smallest one,
/// since the BIOS loader reads the whole ramdisk at boot.
const FIXTURE_BASE: &str = "counter";

/// Environment variable naming the wrapper's plan file.
pub const WRAPPER_PLAN_ENV: &str = "SPINDLE_WRAPPER_PLAN";
/// Environment variable carrying the public key, 64 hexadecimal digits
/// (read by kernel-image's build.rs, which embeds it).
pub const PUBLIC_KEY_ENV: &str = "SPINDLE_PUBLIC_KEY";

/// An extension crate of the workspace.
#[derive(Clone, Debug)]
pub struct ExtensionPackage {
    /// Package name (also the extension's name).
    pub name: String,
    /// Extension or fixture.
    pub kind: Kind,
    /// Load at boot.
    pub autoload: bool,
    /// Kernel-internal crates it may depend on anyway (`allow-crates`, for
    /// fixtures that the loader must refuse).
    pub allow: Vec<String>,
    /// Extra rustc flags from its metadata (fixtures only).
    pub rustflags: Vec<String>,
}

/// `cargo metadata` for the workspace's own packages.
pub fn cargo_metadata() -> Result<Value, Failure> {
    let out = cargo()
        .args(["metadata", "--format-version", "1", "--no-deps"])
        .stderr(Stdio::inherit())
        .output()
        .map_err(|e| Failure::new(format!("cargo metadata: {e}")))?;
    serde_json::from_slice(&out.stdout)
        .map_err(|e| Failure::new(format!("cargo metadata output: {e}")))
}

/// Finds the workspace's extension crates.
pub fn discover() -> Result<Vec<ExtensionPackage>, Failure> {
    let metadata = cargo_metadata()?;
    let packages = metadata["packages"].as_array().cloned().unwrap_or_default();
    let mut found = Vec::new();
    for package in &packages {
        let spindle = &package["metadata"]["spindle"];
        if spindle.is_null() {
            continue;
        }
        let name = package["name"].as_str().unwrap_or_default().to_owned();
        let kind = match spindle["kind"].as_str() {
            Some("extension") => Kind::Extension,
            Some("fixture") => Kind::Fixture,
            other => {
                return Err(Failure::new(format!(
                    "{name}: metadata.spindle.kind must be \"extension\" or \"fixture\", not {other:?}"
                )));
            }
        };
        let strings = |key: &str| -> Vec<String> {
            spindle[key]
                .as_array()
                .map(|a| {
                    a.iter()
                        .filter_map(|v| v.as_str().map(str::to_owned))
                        .collect()
                })
                .unwrap_or_default()
        };
        found.push(ExtensionPackage {
            name,
            kind,
            autoload: spindle["autoload"].as_bool().unwrap_or(false),
            allow: strings("allow-crates")
                .iter()
                .map(|c| c.replace('-', "_"))
                .collect(),
            rustflags: strings("rustflags"),
        });
    }
    found.sort_by(|a, b| a.name.cmp(&b.name));
    Ok(found)
}

/// Where build products live.
pub struct Outputs {
    /// The kernel ELF with debug info.
    pub kernel: PathBuf,
    /// The ramdisk as the boot image carries it, deflated
    /// (`spindle_package::deflated`); the plain `ramdisk.img` beside it is
    /// for host tools.
    pub ramdisk: PathBuf,
}

fn keys_dir() -> PathBuf {
    workspace::target_dir().join("spindle").join("keys")
}

/// The build's signing key, created on first use: (secret, public key).
fn signing_key() -> Result<([u8; 32], [u8; 32]), Failure> {
    let dir = keys_dir();
    let secret_path = dir.join("ed25519.secret");
    let io = |e: std::io::Error| Failure::new(format!("signing key in {}: {e}", dir.display()));
    if !secret_path.exists() {
        std::fs::create_dir_all(&dir).map_err(io)?;
        let mut secret = [0u8; 32];
        std::fs::File::open("/dev/urandom")
            .and_then(|mut f| f.read_exact(&mut secret))
            .map_err(io)?;
        write_private(&secret_path, &secret).map_err(io)?;
        eprintln!(
            "xtask: generated a new extension signing key in {}",
            dir.display()
        );
    }
    let bytes = std::fs::read(&secret_path).map_err(io)?;
    let secret: [u8; 32] = bytes
        .try_into()
        .map_err(|_| Failure::new(format!("{} is not 32 bytes", secret_path.display())))?;
    Ok((secret, spindle_package::public_key(&secret)))
}

#[cfg(unix)]
fn write_private(path: &Path, bytes: &[u8]) -> std::io::Result<()> {
    use std::io::Write;
    use std::os::unix::fs::OpenOptionsExt;
    std::fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(0o600)
        .open(path)?
        .write_all(bytes)
}

/// What one gated build of kernel and extensions produced.
struct Compiled {
    secret: [u8; 32],
    packages: Vec<ExtensionPackage>,
    plan: TrustPlan,
    artifacts: Artifacts,
    out_dir: PathBuf,
}

/// A signed extension bundle, ready to push.
pub struct SignedBundle {
    /// Extension name.
    pub name: String,
    /// Its version.
    pub version: String,
    /// The bundle (its object and the objects of the crates it carries).
    pub bundle: Vec<u8>,
    /// [`spindle_package::object_digest`] of the bundle.
    pub digest: spindle_package::Digest256,
    /// The build's signature over name and digest.
    pub signature: [u8; 64],
    /// The kernel ELF it was built with.
    pub kernel: PathBuf,
}

/// Builds kernel and extensions exactly as [`build`] does (one cargo
/// invocation through the gate, so the kernel is the one a `run` boots),
/// and signs only the bundle of extension `name`.
pub fn build_one(release: bool, name: &str) -> Result<SignedBundle, Failure> {
    let compiled = compile(release, Selection::All)?;
    let package = compiled
        .packages
        .iter()
        .find(|p| p.name == name && p.kind == Kind::Extension)
        .ok_or_else(|| {
            Failure::new(format!(
                "no extension `{name}` in the workspace (create one with `cargo xtask new-extension {name}`)"
            ))
        })?;
    let (version, bundle, _) = bundle_of(
        package,
        &compiled.plan,
        &compiled.artifacts,
        &compiled.out_dir,
    )?;
    Ok(SignedBundle {
        name: name.to_owned(),
        version,
        digest: object_digest(&bundle),
        signature: sign(&compiled.secret, name, &bundle),
        bundle,
        kernel: compiled.artifacts.kernel,
    })
}

/// Which extensions a build compiles and packs into its ramdisk.
#[derive(Clone, Copy, Debug)]
pub enum Selection<'a> {
    /// Every extension and test fixture of the workspace; the ramdisk goes
    /// to `target/spindle/PROFILE/`.
    All,
    /// Only these (and no test fixture but those derived from
    /// [`FIXTURE_BASE`], which must be among them); the ramdisk goes to
    /// `target/spindle/PROFILE/SUBDIR/`, so that it never replaces the full
    /// one.
    Only {
        /// Extension names.
        names: &'a [&'a str],
        /// Where the ramdisk goes, under the profile's directory.
        subdir: &'a str,
    },
}

/// Builds kernel and extensions in one cargo invocation through the
/// trusted-compiler gate, bundles and signs the extensions and writes the
/// ramdisk.
pub fn build(release: bool, selection: Selection<'_>) -> Result<Outputs, Failure> {
    let Compiled {
        secret,
        packages,
        plan,
        artifacts,
        out_dir,
    } = compile(release, selection)?;
    let ramdisk_dir = match selection {
        Selection::All => out_dir.clone(),
        Selection::Only { subdir, .. } => out_dir.join(subdir),
    };
    std::fs::create_dir_all(&ramdisk_dir)
        .map_err(|e| Failure::new(format!("{}: {e}", ramdisk_dir.display())))?;
    let mut writer = RamdiskWriter::new();
    let mut fixture_base = None;
    for package in &packages {
        let (version, bundle, object) = bundle_of(package, &plan, &artifacts, &out_dir)?;
        if package.name == FIXTURE_BASE {
            fixture_base = Some(object);
        }
        writer.add(NewEntry {
            name: &package.name,
            version: &version,
            kind: package.kind,
            autoload: package.autoload,
            digest: object_digest(&bundle),
            signature: Some(sign(&secret, &package.name, &bundle)),
            object: bundle,
        });
    }
    let base = fixture_base.ok_or_else(|| {
        Failure::new(format!(
            "the {FIXTURE_BASE} extension is missing (fixtures derive from it)"
        ))
    })?;
    for fixture in derived_fixtures(&base, &secret)? {
        writer.add(fixture);
    }
    let plain = writer.finish();
    let write = |name: &str, bytes: &[u8]| {
        let path = ramdisk_dir.join(name);
        std::fs::write(&path, bytes)
            .map(|()| path.clone())
            .map_err(|e| Failure::new(format!("{}: {e}", path.display())))
    };
    write("ramdisk.img", &plain)?;
    let ramdisk = write(
        "ramdisk.deflated",
        &spindle_package::deflated::deflate(&plain),
    )?;
    Ok(Outputs {
        kernel: artifacts.kernel,
        ramdisk,
    })
}

/// The gated cargo build of the kernel and the selected extensions.
fn compile(release: bool, selection: Selection<'_>) -> Result<Compiled, Failure> {
    let (secret, public_key) = signing_key()?;
    let public_key_hex: String = public_key.iter().map(|b| format!("{b:02x}")).collect();
    let packages = select(discover()?, selection)?;
    let out_dir = workspace::target_dir()
        .join("spindle")
        .join(profile_dir(release));
    std::fs::create_dir_all(&out_dir)
        .map_err(|e| Failure::new(format!("{}: {e}", out_dir.display())))?;

    let plan = trust_plan(&packages, release)?;
    let stamps = out_dir.join("gate");
    let plan_path = out_dir.join("wrapper-plan.txt");
    let flags: BTreeMap<String, String> = packages
        .iter()
        .map(|p| (p.name.clone(), p.rustflags.join(" ")))
        .collect();
    let vetted = workspace::root().join(trust::VETTED_FILE);
    std::fs::write(
        &plan_path,
        trust::wrapper_plan(&plan, &flags, &vetted, &stamps),
    )
    .map_err(|e| Failure::new(format!("{}: {e}", plan_path.display())))?;

    let mut artifacts = cargo_build(&packages, release, &plan_path, &public_key_hex)?;
    let stale = unstamped(&plan, &artifacts, &stamps);
    if !stale.is_empty() {
        eprintln!(
            "xtask: {} crate(s) were built outside the trusted-compiler gate; rebuilding them through it",
            stale.len()
        );
        for files in &stale {
            for file in files {
                let _ = std::fs::remove_file(file);
            }
        }
        artifacts = cargo_build(&packages, release, &plan_path, &public_key_hex)?;
        if let Some(files) = unstamped(&plan, &artifacts, &stamps).first() {
            return Err(Failure::new(format!(
                "{} has no verdict of the trusted-compiler gate",
                files
                    .first()
                    .map_or_else(String::new, |f| f.display().to_string())
            )));
        }
    }

    Ok(Compiled {
        secret,
        packages,
        plan,
        artifacts,
        out_dir,
    })
}

/// The packages `selection` names; an error names any it lacks.
fn select(
    packages: Vec<ExtensionPackage>,
    selection: Selection<'_>,
) -> Result<Vec<ExtensionPackage>, Failure> {
    let Selection::Only { names, .. } = selection else {
        return Ok(packages);
    };
    if let Some(missing) = names
        .iter()
        .find(|name| !packages.iter().any(|p| p.name == **name))
    {
        return Err(Failure::new(format!(
            "no extension `{missing}` in the workspace"
        )));
    }
    Ok(packages
        .into_iter()
        .filter(|p| names.contains(&p.name.as_str()))
        .collect())
}

/// The bundle of `package`: its version, the bundle, and its own
/// stripped object.
fn bundle_of(
    package: &ExtensionPackage,
    plan: &TrustPlan,
    artifacts: &Artifacts,
    out_dir: &Path,
) -> Result<(String, Vec<u8>, Vec<u8>), Failure> {
    let extension = plan
        .extensions
        .iter()
        .find(|e| e.name == package.name)
        .ok_or_else(|| Failure::new(format!("{}: not in the trust plan", package.name)))?;
    // `NAME.debug.o` stays beside the ramdisk for gdb (`spindle-symbols`).
    let object = stripped_object(
        artifacts,
        &extension.package,
        &out_dir.join(format!("{}.o", package.name)),
    )?;
    // One member per crate, named after it (errors name the member).
    let mut members = vec![(
        format!("{}-{}.o", extension.package.name, extension.package.version),
        object.clone(),
    )];
    for carried in &extension.carried {
        members.push((
            format!("{}-{}.o", carried.name, carried.version),
            stripped_object(
                artifacts,
                carried,
                &out_dir
                    .join("objects")
                    .join(format!("{}-{}.o", carried.name, carried.version)),
            )?,
        ));
    }
    let members: Vec<(&str, &[u8])> = members
        .iter()
        .map(|(name, bytes)| (name.as_str(), bytes.as_slice()))
        .collect();
    let bundle = write_bundle(&extension.crates, &members);
    Ok((extension.package.version.clone(), bundle, object))
}

/// The trust policy for this build, or the refusals, printed.
fn trust_plan(packages: &[ExtensionPackage], release: bool) -> Result<TrustPlan, Failure> {
    let graph = unit_graph(packages, release)?;
    let kernel_graph = unit_graph(&[], release)?;
    let metadata = cargo_metadata()?;
    let mut members = BTreeMap::new();
    for p in metadata["packages"].as_array().into_iter().flatten() {
        let (Some(id), Some(name)) = (p["id"].as_str(), p["name"].as_str()) else {
            continue;
        };
        let extension = packages.iter().find(|e| e.name == name);
        members.insert(
            id.to_owned(),
            trust::Member {
                name: name.to_owned(),
                extension: extension.is_some(),
                allow: extension.map(|e| e.allow.clone()).unwrap_or_default(),
            },
        );
    }
    let root = workspace::root();
    let lock = std::fs::read_to_string(root.join("Cargo.lock"))
        .map_err(|e| Failure::new(format!("Cargo.lock: {e}")))
        .and_then(|text| trust::Lockfile::parse(&text).map_err(Failure::new))?;
    let vetted = trust::VettedList::read(&root.join(trust::VETTED_FILE)).map_err(Failure::new)?;
    trust::plan(&trust::Inputs {
        graph: &graph,
        kernel_graph: &kernel_graph,
        members: &members,
        lock: &lock,
        vetted: &vetted,
        target: KERNEL_TARGET,
    })
    .map_err(|refusals| {
        for refusal in &refusals {
            eprintln!("error: {refusal}");
        }
        Failure::new(format!(
            "the trust policy for extensions' dependencies refused the build ({} error(s) above)",
            refusals.len()
        ))
    })
}

/// `cargo build` for the kernel target with `--package` for the kernel
/// and each of `packages`.
fn kernel_build_command(packages: &[ExtensionPackage], release: bool) -> Command {
    let mut cmd = cargo();
    cmd.args([
        "build",
        "--target",
        KERNEL_TARGET,
        "--package",
        "kernel-image",
    ])
    .args(KERNEL_BUILD_STD);
    for package in packages {
        cmd.args(["--package", &package.name]);
    }
    if release {
        cmd.arg("--release");
    }
    cmd
}

/// Cargo's unit graph of the build of the kernel and `packages`.
fn unit_graph(packages: &[ExtensionPackage], release: bool) -> Result<trust::UnitGraph, Failure> {
    let out = kernel_build_command(packages, release)
        .args(["--unit-graph", "-Z", "unstable-options"])
        .stderr(Stdio::inherit())
        .output()
        .map_err(|e| Failure::new(format!("cargo build --unit-graph: {e}")))?;
    if !out.status.success() {
        return Err(Failure::new("cargo build --unit-graph failed"));
    }
    trust::UnitGraph::parse(&String::from_utf8_lossy(&out.stdout)).map_err(Failure::new)
}

/// What the cargo build produced.
struct Artifacts {
    /// The kernel ELF.
    kernel: PathBuf,
    /// Kernel-target libraries: package id -> files (the rlib first).
    libs: BTreeMap<String, Vec<PathBuf>>,
}

/// The build itself, with xtask as cargo's `RUSTC_WRAPPER`.
fn cargo_build(
    packages: &[ExtensionPackage],
    release: bool,
    plan_path: &Path,
    public_key_hex: &str,
) -> Result<Artifacts, Failure> {
    let wrapper = wrapper_executable()?;
    let mut cmd = kernel_build_command(packages, release);
    cmd.arg("--message-format=json-render-diagnostics")
        .env("RUSTC_WRAPPER", &wrapper)
        .env_remove("RUSTC_WORKSPACE_WRAPPER")
        .env(WRAPPER_PLAN_ENV, plan_path)
        .env(PUBLIC_KEY_ENV, public_key_hex)
        .stdout(Stdio::piped());
    let mut child = cmd
        .spawn()
        .map_err(|e| Failure::new(format!("cargo build: {e}")))?;
    let mut libs = BTreeMap::new();
    let mut kernel = None;
    let target_dir = format!("/{KERNEL_TARGET}/");
    for line in BufReader::new(child.stdout.take().expect("piped"))
        .lines()
        .map_while(Result::ok)
    {
        let Ok(message) = serde_json::from_str::<Value>(&line) else {
            continue;
        };
        if message["reason"] != "compiler-artifact" {
            continue;
        }
        if message["target"]["name"] == "spindle-kernel" {
            kernel = message["executable"].as_str().map(PathBuf::from);
            continue;
        }
        let mut files: Vec<PathBuf> = message["filenames"]
            .as_array()
            .into_iter()
            .flatten()
            .filter_map(|f| f.as_str())
            .filter(|f| f.contains(&target_dir))
            .map(PathBuf::from)
            .collect();
        files.sort_by_key(|f| f.extension().is_none_or(|e| e != "rlib"));
        if files
            .first()
            .is_some_and(|f| f.extension().is_some_and(|e| e == "rlib"))
            && let Some(id) = message["package_id"].as_str()
        {
            libs.insert(id.to_owned(), files);
        }
    }
    let status = child
        .wait()
        .map_err(|e| Failure::new(format!("cargo build: {e}")))?;
    if !status.success() {
        return Err(Failure::new("building the kernel and extensions failed"));
    }
    let kernel = kernel.ok_or_else(|| Failure::new("cargo reported no kernel executable"))?;
    Ok(Artifacts { kernel, libs })
}

/// The artifacts (rlib and siblings) of extensions and checked crates
/// that carry no verdict of the gate.
fn unstamped(plan: &TrustPlan, artifacts: &Artifacts, stamps: &Path) -> Vec<Vec<PathBuf>> {
    let wanted = plan
        .extensions
        .iter()
        .map(|e| (&e.package, STAMP_EXTENSION))
        .chain(plan.checked.iter().map(|c| (&c.package, STAMP_SAFE)));
    wanted
        .filter_map(|(package, verdict)| {
            let files = artifacts.libs.get(&package.id)?;
            (!has_stamp(stamps, files.first()?, verdict)).then(|| files.clone())
        })
        .collect()
}

/// The object of `package`'s rlib, without DWARF; the stripped copy is
/// written to `scratch`, the unstripped one beside it (`.debug.o`).
fn stripped_object(
    artifacts: &Artifacts,
    package: &trust::PackageId,
    scratch: &Path,
) -> Result<Vec<u8>, Failure> {
    let rlib = artifacts
        .libs
        .get(&package.id)
        .and_then(|files| files.first())
        .ok_or_else(|| Failure::new(format!("cargo reported no rlib for {package}")))?;
    if let Some(dir) = scratch.parent() {
        std::fs::create_dir_all(dir)
            .map_err(|e| Failure::new(format!("{}: {e}", dir.display())))?;
    }
    strip_debug(&object_from_rlib(rlib)?, scratch)
}

/// This program, copied to a fixed path under `target/` for cargo to run as
/// the rustc wrapper. Cargo may relink `target/debug/xtask` while it runs (a
/// `cargo test` of xtask builds its binary with other features, as the
/// host tier of `cargo xtask test` does); the copy, made from the running
/// image, stays valid.
fn wrapper_executable() -> Result<PathBuf, Failure> {
    let io = |what: &Path, e: std::io::Error| Failure::new(format!("{}: {e}", what.display()));
    let running = Path::new("/proc/self/exe");
    let image = std::fs::read(running).map_err(|e| io(running, e))?;
    let dir = workspace::target_dir().join("spindle").join("bin");
    let path = dir.join("xtask-rustc-wrapper");
    if std::fs::read(&path).ok().as_deref() != Some(&image[..]) {
        std::fs::create_dir_all(&dir).map_err(|e| io(&dir, e))?;
        let partial = dir.join(format!("xtask-rustc-wrapper.{}", std::process::id()));
        std::fs::write(&partial, &image).map_err(|e| io(&partial, e))?;
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            std::fs::set_permissions(&partial, std::fs::Permissions::from_mode(0o755))
                .map_err(|e| io(&partial, e))?;
        }
        std::fs::rename(&partial, &path).map_err(|e| io(&path, e))?;
    }
    Ok(path)
}

/// The object without DWARF sections (symbols and relocations stay). The
/// ramdisk is read by the BIOS loader with real-mode disk calls, slow under
/// TCG, and debug info would make up nearly all of it. `scratch` is where
/// the stripped copy is written.
fn strip_debug(object: &[u8], scratch: &Path) -> Result<Vec<u8>, Failure> {
    let unstripped = scratch.with_extension("debug.o");
    std::fs::write(&unstripped, object)
        .map_err(|e| Failure::new(format!("{}: {e}", unstripped.display())))?;
    crate::run_checked(
        Command::new(crate::llvm_objcopy()?)
            .arg("--strip-debug")
            .arg(&unstripped)
            .arg(scratch),
    )?;
    std::fs::read(scratch).map_err(|e| Failure::new(format!("{}: {e}", scratch.display())))
}

/// The one object file of an rlib built with `codegen-units=1`.
fn object_from_rlib(rlib: &Path) -> Result<Vec<u8>, Failure> {
    let bytes =
        std::fs::read(rlib).map_err(|e| Failure::new(format!("{}: {e}", rlib.display())))?;
    let archive = goblin::archive::Archive::parse(&bytes)
        .map_err(|e| Failure::new(format!("{}: {e}", rlib.display())))?;
    let objects: Vec<&str> = archive
        .members()
        .into_iter()
        .filter(|m| m.ends_with(".o"))
        .collect();
    let [member] = objects[..] else {
        return Err(Failure::new(format!(
            "{}: expected one object, found {objects:?}",
            rlib.display()
        )));
    };
    archive
        .extract(member, &bytes)
        .map(<[u8]>::to_vec)
        .map_err(|e| Failure::new(format!("{}: {member}: {e}", rlib.display())))
}

/// File offset of a section's contents, and the section header's offset.
fn section(elf_bytes: &[u8], name: &str) -> Result<(usize, usize), Failure> {
    let elf = goblin::elf::Elf::parse(elf_bytes)
        .map_err(|e| Failure::new(format!("fixture base object: {e}")))?;
    let index = elf
        .section_headers
        .iter()
        .position(|s| elf.shdr_strtab.get_at(s.sh_name) == Some(name))
        .ok_or_else(|| Failure::new(format!("fixture base object has no {name} section")))?;
    let header = elf.header.e_shoff as usize + index * elf.header.e_shentsize as usize;
    Ok((elf.section_headers[index].sh_offset as usize, header))
}

/// Signed (unless said otherwise) variants of a good extension object for
/// the loader's bad-input tests.
fn derived_fixtures(base: &[u8], secret: &[u8; 32]) -> Result<Vec<NewEntry<'static>>, Failure> {
    let fixture = |name: &'static str, object: Vec<u8>| NewEntry {
        name,
        version: "0.0.0",
        kind: Kind::Fixture,
        autoload: false,
        digest: object_digest(&object),
        signature: Some(sign(secret, name, &object)),
        object,
    };
    let (descriptor, _) = section(base, spindle_sdk::DESCRIPTOR_SECTION)?;
    let (text, text_header) = first_text_section(base)?;
    let mut fixtures = Vec::new();

    // Never signed.
    let mut unsigned = fixture("unsigned", base.to_vec());
    unsigned.signature = None;
    fixtures.push(unsigned);

    // Signed, then one byte of code changed.
    let mut tampered = fixture("tampered", base.to_vec());
    tampered.object[text] ^= 0xff;
    fixtures.push(tampered);

    // Built against other interface sources: one fingerprint differs (and
    // the descriptor's name matches the fixture's, so only that check fails).
    let mut stale = base.to_vec();
    let name_at = descriptor + std::mem::offset_of!(ExtensionDescriptor, name);
    stale[name_at..name_at + spindle_sdk::MAX_NAME].fill(0);
    stale[name_at..name_at + "stale-fingerprint".len()].copy_from_slice(b"stale-fingerprint");
    let fingerprint_at = descriptor
        + std::mem::offset_of!(ExtensionDescriptor, interfaces)
        + size_of::<InterfaceRef>()
        + std::mem::offset_of!(InterfaceRef, fingerprint);
    stale[fingerprint_at] ^= 0x5a;
    fixtures.push(fixture("stale-fingerprint", stale));

    // Cut in half.
    fixtures.push(fixture("truncated", base[..base.len() / 2].to_vec()));

    // Not an ELF file at all.
    let garbage: Vec<u8> = (0..4096u32)
        .map(|i| (i.wrapping_mul(2_654_435_761) >> 13) as u8)
        .collect();
    fixtures.push(fixture("garbage", garbage));

    // A section claiming far more bytes than the file has.
    let mut oversized = base.to_vec();
    let size_field = text_header + 32; // Elf64_Shdr.sh_size
    oversized[size_field..size_field + 8].copy_from_slice(&(1u64 << 40).to_le_bytes());
    fixtures.push(fixture("oversized-section", oversized));

    // The descriptor section's bytes moved on top of the code's.
    let mut overlapping = base.to_vec();
    let (_, descriptor_header) = section(base, spindle_sdk::DESCRIPTOR_SECTION)?;
    let offset_field = descriptor_header + 24; // Elf64_Shdr.sh_offset
    overlapping[offset_field..offset_field + 8].copy_from_slice(&(text as u64).to_le_bytes());
    fixtures.push(fixture("overlapping-sections", overlapping));
    Ok(fixtures)
}

fn first_text_section(elf_bytes: &[u8]) -> Result<(usize, usize), Failure> {
    let elf = goblin::elf::Elf::parse(elf_bytes)
        .map_err(|e| Failure::new(format!("fixture base object: {e}")))?;
    let index = elf
        .section_headers
        .iter()
        .position(|s| {
            s.sh_size > 0
                && elf
                    .shdr_strtab
                    .get_at(s.sh_name)
                    .is_some_and(|n| n.starts_with(".text"))
        })
        .ok_or_else(|| Failure::new("fixture base object has no text section"))?;
    let header = elf.header.e_shoff as usize + index * elf.header.e_shentsize as usize;
    Ok((elf.section_headers[index].sh_offset as usize, header))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn package(name: &str, kind: Kind) -> ExtensionPackage {
        ExtensionPackage {
            name: name.to_owned(),
            kind,
            autoload: false,
            allow: Vec::new(),
            rustflags: Vec::new(),
        }
    }

    fn workspace_packages() -> Vec<ExtensionPackage> {
        vec![
            package("counter", Kind::Extension),
            package("hello", Kind::Extension),
            package("leak", Kind::Fixture),
        ]
    }

    fn names(packages: &[ExtensionPackage]) -> Vec<&str> {
        packages.iter().map(|p| p.name.as_str()).collect()
    }

    #[test]
    fn a_selection_keeps_only_the_named_packages() {
        let only = Selection::Only {
            names: &["hello", "counter"],
            subdir: "bench",
        };
        let selected = select(workspace_packages(), only).unwrap();
        assert_eq!(names(&selected), ["counter", "hello"]);
        let all = select(workspace_packages(), Selection::All).unwrap();
        assert_eq!(names(&all), ["counter", "hello", "leak"]);
    }

    #[test]
    fn a_selection_naming_a_missing_extension_is_refused_by_name() {
        let only = Selection::Only {
            names: &["counter", "greeter"],
            subdir: "bench",
        };
        let failure = select(workspace_packages(), only).unwrap_err();
        assert!(failure.message.contains("`greeter`"), "{}", failure.message);
    }
}
