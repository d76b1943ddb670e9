//! The trust policy for extensions' crates.io dependencies, end to end:
//! throw-away extension crates are built for the kernel's target through
//! the real gate (this xtask binary as cargo's `RUSTC_WRAPPER`, with the
//! plan `xtask::trust` computes from cargo's unit graph, the lock file and
//! a vetted list), each in its own workspace and target directory under
//! `target/spindle/trust-tests/` (cargo does not know the plan, so one
//! scenario's artifacts must not be reused by the next).
//!
//! The dependencies are tiny crates the repository's lock already has:
//! `stable_deref_trait` 1.2.1 (uses `unsafe`) and `crc-catalog` 2.5.0
//! (safe), plus a local crate whose only `unsafe` is inside a
//! `macro_rules!` body, which the lint cannot see.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::Command;

use xtask::trust::{self, Lockfile, Member, Refusal, UnitGraph, VettedList};

const TARGET: &str = "x86_64-unknown-none";
const UNSAFE_CRATE: &str = "stable_deref_trait";
const UNSAFE_VERSION: &str = "1.2.1";

fn root() -> PathBuf {
    xtask::workspace::root()
}

fn locked_checksum(name: &str, version: &str) -> String {
    let lock =
        Lockfile::parse(&std::fs::read_to_string(root().join("Cargo.lock")).unwrap()).unwrap();
    lock.checksum(name, version)
        .unwrap_or_else(|| panic!("{name} {version} is not in Cargo.lock"))
        .to_owned()
}

/// A throw-away workspace with one extension crate, `probe`, whose
/// dependencies are `deps` (Cargo.toml lines) and whose source is `lib`.
struct Scenario {
    dir: PathBuf,
}

impl Scenario {
    fn new(name: &str, deps: &str, lib: &str) -> Scenario {
        let dir = root().join("target/spindle/trust-tests").join(name);
        let _ = std::fs::remove_dir_all(dir.join("probe"));
        std::fs::create_dir_all(dir.join("probe/src")).unwrap();
        std::fs::write(
            dir.join("Cargo.toml"),
            "[workspace]\nresolver = \"3\"\nmembers = [\"probe\"]\n",
        )
        .unwrap();
        std::fs::copy(root().join("Cargo.lock"), dir.join("Cargo.lock")).unwrap();
        std::fs::write(
            dir.join("probe/Cargo.toml"),
            format!(
                "[package]\nname = \"probe\"\nversion = \"0.1.0\"\nedition = \"2024\"\npublish = false\n\n\
                 [package.metadata.spindle]\nkind = \"extension\"\n\n[dependencies]\n{deps}\n"
            ),
        )
        .unwrap();
        std::fs::write(dir.join("probe/src/lib.rs"), format!("#![no_std]\n{lib}\n")).unwrap();
        Scenario { dir }
    }

    /// A local library crate `macro-lib` beside the workspace (its own
    /// workspace root, not a member: a path dependency like any library).
    fn with_local_lib(self, lib: &str) -> Scenario {
        let lib_dir = self.dir.with_extension("macro-lib");
        std::fs::create_dir_all(lib_dir.join("src")).unwrap();
        std::fs::write(
            lib_dir.join("Cargo.toml"),
            "[package]\nname = \"macro-lib\"\nversion = \"0.1.0\"\nedition = \"2021\"\n\n[workspace]\n",
        )
        .unwrap();
        std::fs::write(lib_dir.join("src/lib.rs"), lib).unwrap();
        self
    }

    fn cargo(&self) -> Command {
        let mut cmd = Command::new(env!("CARGO"));
        cmd.current_dir(&self.dir)
            .env("CARGO_TARGET_DIR", self.dir.join("target"))
            .env_remove("RUSTFLAGS")
            .env_remove("RUSTC_WRAPPER")
            .env_remove("RUSTC_WORKSPACE_WRAPPER");
        cmd
    }

    /// The policy for this workspace and `vetted`.
    fn plan(&self, vetted: &str) -> Result<trust::TrustPlan, Vec<Refusal>> {
        let out = self
            .cargo()
            .args(["build", "--target", TARGET, "-p", "probe"])
            .args(["--unit-graph", "-Z", "unstable-options"])
            .output()
            .unwrap();
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
        let graph = UnitGraph::parse(&String::from_utf8_lossy(&out.stdout)).unwrap();
        let probe_id = graph
            .units
            .iter()
            .find(|u| u.package.name == "probe")
            .unwrap()
            .package
            .id
            .clone();
        let members = BTreeMap::from([(
            probe_id,
            Member {
                name: "probe".into(),
                extension: true,
                allow: Vec::new(),
            },
        )]);
        let lock = Lockfile::parse(&std::fs::read_to_string(self.dir.join("Cargo.lock")).unwrap())
            .unwrap();
        let vetted = VettedList::parse(vetted).unwrap();
        trust::plan(&trust::Inputs {
            graph: &graph,
            kernel_graph: &UnitGraph::default(),
            members: &members,
            lock: &lock,
            vetted: &vetted,
            target: TARGET,
        })
    }

    /// Builds the probe through the gate under `plan`; (success, stderr).
    fn build(&self, plan: &trust::TrustPlan) -> (bool, String) {
        let plan_file = self.dir.join("wrapper-plan.txt");
        std::fs::write(
            &plan_file,
            trust::wrapper_plan(
                plan,
                &BTreeMap::new(),
                Path::new("extensions/vetted.toml"),
                &self.dir.join("stamps"),
            ),
        )
        .unwrap();
        let out = self
            .cargo()
            .args(["build", "--target", TARGET, "-p", "probe"])
            .env("RUSTC_WRAPPER", env!("CARGO_BIN_EXE_xtask"))
            .env("SPINDLE_WRAPPER_PLAN", &plan_file)
            .output()
            .unwrap();
        (
            out.status.success(),
            String::from_utf8_lossy(&out.stderr).into_owned(),
        )
    }
}

fn vetted_entry(name: &str, version: &str, checksum: &str) -> String {
    format!(
        "[[crate]]\nname = \"{name}\"\nversion = \"{version}\"\nchecksum = \"{checksum}\"\n\
         vetted-by = \"test\"\nreason = \"test\"\n"
    )
}

const USES_UNSAFE_CRATE: &str =
    "stable_deref_trait = { version = \"=1.2.1\", default-features = false }";
const USES_IT: &str = "pub fn probe() -> usize { core::mem::size_of::<&dyn stable_deref_trait::StableDeref<Target = u8>>() }";

#[test]
fn a_vetted_crate_with_unsafe_builds_and_is_carried_as_vetted() {
    let s = Scenario::new(
        "vetted",
        USES_UNSAFE_CRATE,
        "pub use stable_deref_trait::StableDeref;",
    );
    let checksum = locked_checksum(UNSAFE_CRATE, UNSAFE_VERSION);
    let plan = s
        .plan(&vetted_entry(UNSAFE_CRATE, UNSAFE_VERSION, &checksum))
        .unwrap();
    assert!(plan.checked.is_empty(), "{:?}", plan.checked);
    let crates: Vec<String> = plan.extensions[0]
        .crates
        .iter()
        .map(|c| c.to_string())
        .collect();
    assert_eq!(
        crates,
        [
            "extension\tprobe\t0.1.0",
            "carries\tstable_deref_trait\t1.2.1\tvetted"
        ]
    );
    let (ok, stderr) = s.build(&plan);
    assert!(ok, "{stderr}");
}

#[test]
fn an_unvetted_safe_crate_builds_under_the_forbid() {
    let s = Scenario::new(
        "safe",
        "crc-catalog = \"=2.5.0\"",
        "pub fn width() -> u8 { crc_catalog::CRC_32_ISO_HDLC.width }",
    );
    let plan = s.plan("").unwrap();
    assert_eq!(
        plan.checked
            .iter()
            .map(|c| c.package.to_string())
            .collect::<Vec<_>>(),
        ["crc-catalog 2.5.0"]
    );
    let (ok, stderr) = s.build(&plan);
    assert!(ok, "{stderr}");
    // The gate stamped its verdict on the artifact it checked.
    let stamps: Vec<String> = std::fs::read_dir(s.dir.join("stamps"))
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    assert!(
        stamps.iter().any(|s| s.starts_with("libcrc_catalog-"))
            && stamps.iter().any(|s| s.starts_with("libprobe-")),
        "{stamps:?}"
    );
}

#[test]
fn an_unvetted_crate_with_unsafe_fails_the_build_naming_it_and_how_to_vet_it() {
    let s = Scenario::new("unvetted", USES_UNSAFE_CRATE, USES_IT);
    let plan = s.plan("").unwrap();
    let (ok, stderr) = s.build(&plan);
    assert!(!ok, "an unvetted unsafe crate was accepted");
    let checksum = locked_checksum(UNSAFE_CRATE, UNSAFE_VERSION);
    for expected in [
        "error: `stable_deref_trait 1.2.1`, a dependency of extension(s) `probe`, is not vetted and does not compile under -F unsafe-code",
        "requested on the command line with `-F unsafe-code`",
        "to vet it, review its source in ",
        "name = \"stable_deref_trait\"",
        "version = \"1.2.1\"",
        &format!("checksum = \"{checksum}\""),
    ] {
        assert!(
            stderr.contains(expected),
            "missing {expected:?} in:\n{stderr}"
        );
    }
}

#[test]
fn a_vetted_crate_at_another_version_is_unvetted() {
    let s = Scenario::new("wrong-version", USES_UNSAFE_CRATE, USES_IT);
    let plan = s
        .plan(&vetted_entry(UNSAFE_CRATE, "1.2.0", "0000"))
        .unwrap();
    assert_eq!(plan.checked[0].vetted_versions, ["1.2.0"]);
    let (ok, stderr) = s.build(&plan);
    assert!(!ok, "a crate vetted at another version was accepted");
    assert!(
        stderr.contains("`stable_deref_trait 1.2.1`, a dependency of extension(s) `probe`, is not vetted")
            && stderr.contains(
                "extensions/vetted.toml vets stable_deref_trait 1.2.0 only: another version must be vetted again"
            ),
        "{stderr}"
    );
}

#[test]
fn a_vetted_crate_with_another_checksum_is_refused_before_building() {
    let s = Scenario::new("wrong-checksum", USES_UNSAFE_CRATE, USES_IT);
    let refusals = s
        .plan(&vetted_entry(UNSAFE_CRATE, UNSAFE_VERSION, "0123abcd"))
        .unwrap_err();
    match &refusals[..] {
        [
            Refusal::ChecksumMismatch {
                package,
                vetted,
                locked,
            },
        ] => {
            assert_eq!(package.to_string(), "stable_deref_trait 1.2.1");
            assert_eq!(vetted, "0123abcd");
            assert_eq!(*locked, locked_checksum(UNSAFE_CRATE, UNSAFE_VERSION));
        }
        other => panic!("{other:?}"),
    }
    assert!(
        refusals[0]
            .to_string()
            .contains("this is not the source that was vetted"),
        "{}",
        refusals[0]
    );
}

#[test]
fn unsafe_code_hidden_in_a_macro_body_is_found() {
    // The lint never sees this `unsafe`: not in macro_lib (the macro is not
    // expanded there), not in the probe (another crate's macro output).
    let s = Scenario::new(
        "macro-hole",
        "macro-lib = { path = \"../../macro-hole.macro-lib\" }",
        "pub fn probe(x: &u32) -> u32 { macro_lib::read!(x) }",
    )
    .with_local_lib(
        "#![no_std]\n#[macro_export]\nmacro_rules! read {\n    ($p:expr) => {\n        unsafe { core::ptr::read($p) }\n    };\n}\n",
    );
    let plan = s.plan("").unwrap();
    let (ok, stderr) = s.build(&plan);
    assert!(!ok, "unsafe code in a macro body was accepted");
    assert!(
        stderr.contains(
            "error: `macro-lib 0.1.0`, a dependency of extension(s) `probe`, is not vetted and uses unsafe code: `unsafe` at src/lib.rs:5"
        ),
        "{stderr}"
    );
}
