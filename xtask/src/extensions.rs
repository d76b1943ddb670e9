//! The extension build pipeline: SPIN's "trusted compiler", as a build.
//!
//! 1. Extension crates are found through their `[package.metadata.spindle]`
//!    table (`kind = "extension" | "fixture"`, optional `autoload`,
//!    `allow-crates`, `rustflags`).
//! 2. The kernel and every extension are built in **one** cargo invocation
//!    and profile, so the symbol hashes of the crates they share agree.
//!    xtask is cargo's `RUSTC_WORKSPACE_WRAPPER` for that build: for an
//!    extension crate it adds `-F unsafe-code` (which the source cannot
//!    override) and `-C codegen-units=1` (one object per crate), and it
//!    refuses any `--extern` other than `spindle_sdk` and the extension's
//!    own extension dependencies.
//! 3. Each extension's object is taken out of its rlib and signed with the
//!    build's Ed25519 key (`target/spindle/keys/`, generated once; the
//!    secret never leaves that directory; the kernel embeds the public key).
//! 4. Test fixtures for the loader's bad-input checks are derived from
//!    `counter`, the smallest extension (unsigned, tampered, stale
//!    fingerprint, truncated, garbage, oversized and overlapping sections).
//! 5. Everything goes into the ramdisk with its manifest.

use std::collections::BTreeMap;
use std::io::{BufRead, BufReader, Read};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

use serde_json::Value;
use spindle_package::{Kind, NewEntry, RamdiskWriter, sha256, sign};
use spindle_sdk::{ExtensionDescriptor, InterfaceRef};
use xtask::workspace;

use crate::{Failure, KERNEL_BUILD_STD, KERNEL_TARGET, cargo, profile_dir};

/// The extension the bad-input fixtures are derived from: the smallest one,
/// since the BIOS loader reads the whole ramdisk at boot.
const FIXTURE_BASE: &str = "counter";

/// Crates `-Zbuild-std` links every kernel-target crate against.
const SYSROOT_CRATES: [&str; 3] = ["core", "alloc", "compiler_builtins"];

/// Environment variable naming the wrapper's plan file.
pub const WRAPPER_PLAN_ENV: &str = "SPINDLE_WRAPPER_PLAN";
/// Environment variable naming the public key file (read by kernel-image's build.rs).
pub const PUBLIC_KEY_ENV: &str = "SPINDLE_PUBLIC_KEY_FILE";

/// An extension crate of the workspace.
#[derive(Clone, Debug)]
pub struct ExtensionPackage {
    /// Package name (also the extension's name).
    pub name: String,
    /// Extension or fixture.
    pub kind: Kind,
    /// Load at boot.
    pub autoload: bool,
    /// Crate names it may link against (`--extern`), beyond `spindle_sdk`.
    pub allowed_crates: Vec<String>,
    /// Extra rustc flags from its metadata (fixtures only).
    pub rustflags: Vec<String>,
}

impl ExtensionPackage {
    fn crate_name(&self) -> String {
        self.name.replace('-', "_")
    }
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
    let extension_names: Vec<String> = packages
        .iter()
        .filter(|p| !p["metadata"]["spindle"].is_null())
        .filter_map(|p| p["name"].as_str().map(str::to_owned))
        .collect();
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
        let mut allowed_crates = vec!["spindle_sdk".to_owned()];
        allowed_crates.extend(strings("allow-crates").iter().map(|c| c.replace('-', "_")));
        // Other extensions it depends on may be linked against.
        for dep in package["dependencies"].as_array().into_iter().flatten() {
            if let Some(dep_name) = dep["name"].as_str()
                && extension_names.iter().any(|n| n == dep_name)
            {
                allowed_crates.push(dep_name.replace('-', "_"));
            }
        }
        found.push(ExtensionPackage {
            name,
            kind,
            autoload: spindle["autoload"].as_bool().unwrap_or(false),
            allowed_crates,
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
    /// The ramdisk.
    pub ramdisk: PathBuf,
}

fn keys_dir() -> PathBuf {
    workspace::target_dir().join("spindle").join("keys")
}

/// The build's signing key, created on first use: (secret, public-key file).
fn signing_key() -> Result<([u8; 32], PathBuf), Failure> {
    let dir = keys_dir();
    let secret_path = dir.join("ed25519.secret");
    let public_path = dir.join("ed25519.public");
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
    let public = spindle_package::public_key(&secret);
    if std::fs::read(&public_path).ok().as_deref() != Some(&public[..]) {
        std::fs::write(&public_path, public).map_err(io)?;
    }
    Ok((secret, public_path))
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

/// Builds kernel and extensions in one cargo invocation, signs the
/// extensions and writes the ramdisk.
pub fn build(release: bool) -> Result<Outputs, Failure> {
    let (secret, public_key_file) = signing_key()?;
    let packages = discover()?;
    let out_dir = workspace::target_dir()
        .join("spindle")
        .join(profile_dir(release));
    std::fs::create_dir_all(&out_dir)
        .map_err(|e| Failure::new(format!("{}: {e}", out_dir.display())))?;

    // The wrapper's plan: crate name, allowed externs, extra flags.
    let plan_path = out_dir.join("wrapper-plan.txt");
    let plan: String = packages
        .iter()
        .map(|p| {
            format!(
                "{}\t{}\t{}\n",
                p.crate_name(),
                p.allowed_crates.join(","),
                p.rustflags.join(" ")
            )
        })
        .collect();
    std::fs::write(&plan_path, plan)
        .map_err(|e| Failure::new(format!("{}: {e}", plan_path.display())))?;

    let wrapper = wrapper_executable()?;
    let mut cmd = cargo();
    cmd.args([
        "build",
        "--target",
        KERNEL_TARGET,
        "--message-format=json-render-diagnostics",
        "--package",
        "kernel-image",
    ])
    .args(KERNEL_BUILD_STD);
    for package in &packages {
        cmd.args(["--package", &package.name]);
    }
    if release {
        cmd.arg("--release");
    }
    cmd.env("RUSTC_WORKSPACE_WRAPPER", &wrapper)
        .env(WRAPPER_PLAN_ENV, &plan_path)
        .env(PUBLIC_KEY_ENV, &public_key_file)
        .stdout(Stdio::piped());
    let mut child = cmd
        .spawn()
        .map_err(|e| Failure::new(format!("cargo build: {e}")))?;
    let mut rlibs: BTreeMap<String, PathBuf> = BTreeMap::new();
    let mut kernel = None;
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
        let name = message["target"]["name"].as_str().unwrap_or_default();
        let files = message["filenames"].as_array().cloned().unwrap_or_default();
        let files = files.iter().filter_map(|f| f.as_str().map(PathBuf::from));
        if name == "spindle-kernel" {
            kernel = message["executable"].as_str().map(PathBuf::from);
        } else if let Some(package) = packages
            .iter()
            .find(|p| p.crate_name() == name.replace('-', "_"))
            && let Some(rlib) = files
                .into_iter()
                .find(|f| f.extension().is_some_and(|e| e == "rlib"))
        {
            rlibs.insert(package.name.clone(), rlib);
        }
    }
    let status = child
        .wait()
        .map_err(|e| Failure::new(format!("cargo build: {e}")))?;
    if !status.success() {
        return Err(Failure::new("building the kernel and extensions failed"));
    }
    let kernel = kernel.ok_or_else(|| Failure::new("cargo reported no kernel executable"))?;

    let mut writer = RamdiskWriter::new();
    let mut fixture_base = None;
    for package in &packages {
        let rlib = rlibs
            .get(&package.name)
            .ok_or_else(|| Failure::new(format!("cargo reported no rlib for {}", package.name)))?;
        let object = strip_debug(
            &object_from_rlib(rlib)?,
            &out_dir.join(format!("{}.o", package.name)),
        )?;
        if package.name == FIXTURE_BASE {
            fixture_base = Some(object.clone());
        }
        let version = env!("CARGO_PKG_VERSION");
        writer.add(NewEntry {
            name: &package.name,
            version,
            kind: package.kind,
            autoload: package.autoload,
            sha256: sha256(&object),
            signature: Some(sign(&secret, &package.name, &object)),
            object,
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
    let ramdisk = out_dir.join("ramdisk.img");
    std::fs::write(&ramdisk, writer.finish())
        .map_err(|e| Failure::new(format!("{}: {e}", ramdisk.display())))?;
    Ok(Outputs { kernel, ramdisk })
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
        sha256: sha256(&object),
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

/// `xtask` run as cargo's `RUSTC_WORKSPACE_WRAPPER`: `args` are the rustc
/// path followed by its arguments. Returns rustc's exit code.
pub fn rustc_wrapper(plan_path: &Path, args: Vec<String>) -> i32 {
    let Some((rustc, rest)) = args.split_first() else {
        eprintln!("xtask wrapper: no rustc given");
        return 2;
    };
    let mut rest = rest.to_vec();
    let crate_name = rest
        .windows(2)
        .find(|w| w[0] == "--crate-name")
        .map(|w| w[1].clone());
    let for_kernel = rest
        .windows(2)
        .any(|w| w[0] == "--target" && w[1] == KERNEL_TARGET);
    let plan = std::fs::read_to_string(plan_path).unwrap_or_default();
    let entry = plan
        .lines()
        .map(|l| l.split('\t').collect::<Vec<_>>())
        .find(|f| Some(f[0]) == crate_name.as_deref());
    if let (Some(fields), true) = (entry, for_kernel) {
        let name = fields[0];
        let allowed: Vec<&str> = fields
            .get(1)
            .map(|a| a.split(',').collect())
            .unwrap_or_default();
        // `--extern [OPTIONS:]NAME[=PATH]`; build-std adds the sysroot
        // crates as `noprelude:core=...` and the like.
        let externs = rest.windows(2).filter(|w| w[0] == "--extern").map(|w| {
            let name = w[1].split('=').next().unwrap_or("");
            name.rsplit(':').next().unwrap_or(name).to_owned()
        });
        for dependency in externs {
            if !allowed.contains(&dependency.as_str())
                && !SYSROOT_CRATES.contains(&dependency.as_str())
            {
                eprintln!(
                    "error: extension crate `{name}` may not link against `{dependency}`: extensions may use only {} (see [package.metadata.spindle])",
                    allowed.join(", ")
                );
                return 1;
            }
        }
        rest.extend(["-F", "unsafe-code", "-C", "codegen-units=1"].map(String::from));
        rest.extend(
            fields
                .get(2)
                .map(|f| f.split_whitespace().map(String::from).collect::<Vec<_>>())
                .unwrap_or_default(),
        );
    }
    match Command::new(rustc).args(&rest).status() {
        Ok(status) => status.code().unwrap_or(1),
        Err(e) => {
            eprintln!("xtask wrapper: running {rustc}: {e}");
            1
        }
    }
}
