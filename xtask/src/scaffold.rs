//! `cargo xtask new-extension NAME`: a new extension crate from a template.
//!
//! The crate goes to `extensions/NAME/`, which the workspace's `members`
//! glob (`extensions/*`) already covers, so it builds with the next
//! `cargo xtask build`, `run` or `push` and needs no hand-edited file. The
//! template installs one guarded `Console.Line` command named after the
//! extension, uninstalls it in `exit`, and has a host test of the
//! command's text.

use std::fmt;
use std::path::{Path, PathBuf};

/// Longest extension name: the descriptor's name field
/// (`spindle_sdk::MAX_NAME`).
pub const MAX_NAME: usize = spindle_sdk::MAX_NAME;

/// Why a name cannot become a new extension.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum ScaffoldError {
    /// Empty, too long, or characters cargo refuses in a package name.
    InvalidName {
        /// The name given.
        name: String,
        /// Which rule it breaks.
        why: &'static str,
    },
    /// A Rust keyword (cargo cannot build a crate by that name).
    Keyword(String),
    /// `extensions/NAME` exists already.
    DirectoryExists(PathBuf),
    /// Another workspace package has that name.
    PackageExists(String),
    /// Writing the files failed.
    Io(String),
}

impl fmt::Display for ScaffoldError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::InvalidName { name, why } => {
                write!(f, "`{name}` is not a valid extension crate name: {why}")
            }
            Self::Keyword(name) => {
                write!(
                    f,
                    "`{name}` is a Rust keyword and cannot name a crate; choose another name"
                )
            }
            Self::DirectoryExists(dir) => write!(
                f,
                "{} already exists; choose another name (or edit that extension)",
                dir.display()
            ),
            Self::PackageExists(name) => write!(
                f,
                "the workspace already has a package named `{name}`; choose another name"
            ),
            Self::Io(message) => f.write_str(message),
        }
    }
}

/// Keywords (strict and reserved) cargo refuses as package names.
const KEYWORDS: &[&str] = &[
    "abstract", "as", "async", "await", "become", "box", "break", "const", "continue", "crate",
    "do", "dyn", "else", "enum", "extern", "false", "final", "fn", "for", "gen", "if", "impl",
    "in", "let", "loop", "macro", "match", "mod", "move", "mut", "override", "priv", "pub", "ref",
    "return", "self", "static", "struct", "super", "trait", "true", "try", "type", "typeof",
    "unsafe", "unsized", "use", "virtual", "where", "while", "yield",
];

/// Checks `name` as a crate name and as an extension name: ASCII letters,
/// digits, `-` and `_`, starting with a lowercase letter, at most
/// [`MAX_NAME`] bytes, not a keyword.
pub fn validate_name(name: &str) -> Result<(), ScaffoldError> {
    let invalid = |why| ScaffoldError::InvalidName {
        name: name.to_owned(),
        why,
    };
    let Some(first) = name.chars().next() else {
        return Err(invalid("it is empty"));
    };
    if name.len() > MAX_NAME {
        return Err(invalid(
            "longer than 48 bytes (the descriptor's name field)",
        ));
    }
    if !first.is_ascii_lowercase() {
        return Err(invalid("it must start with a lowercase ASCII letter"));
    }
    if !name
        .chars()
        .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-' || c == '_')
    {
        return Err(invalid(
            "only lowercase ASCII letters, digits, `-` and `_` are allowed",
        ));
    }
    if KEYWORDS.contains(&name.replace('-', "_").as_str()) {
        return Err(ScaffoldError::Keyword(name.to_owned()));
    }
    Ok(())
}

/// The template's `Cargo.toml`.
pub fn cargo_toml(name: &str) -> String {
    format!(
        r#"[package]
name = "{name}"
description = "Extension `{name}`: answers the shell command '{name}'."
version.workspace = true
edition.workspace = true
license.workspace = true
publish.workspace = true

[package.metadata.spindle]
kind = "extension"
autoload = false

[dependencies]
spindle-sdk.workspace = true

[lints]
workspace = true
"#
    )
}

/// The template's `src/lib.rs`.
pub fn lib_rs(name: &str) -> String {
    format!(
        r#"//! `{name}`: a Spindle extension. It adds the shell command `{name}` by
//! installing a guarded handler on `Console.Line`, and removes it again
//! when it is unloaded.
#![cfg_attr(not(test), no_std)]
#![forbid(unsafe_code)]

extern crate alloc;

use alloc::string::String;

use spindle_sdk::console::println;
use spindle_sdk::prelude::*;
use spindle_sdk::spin::Mutex;

/// The shell command this extension answers.
const COMMAND_NAME: &str = "{name}";

/// The installed handler, kept so that `exit` can uninstall it.
static COMMAND: Mutex<Option<Binding<Line, Reply>>> = Mutex::new(None);

/// What the command prints for `line`.
fn answer(line: &Line) -> String {{
    let mut text = String::from("{name} here");
    for word in line.args() {{
        text.push(' ');
        text.push_str(word);
    }}
    text
}}

fn on_command(line: &Line) -> Reply {{
    println!("{{}}", answer(line));
    Reply::Handled
}}

fn init(ctx: &ExtensionContext) -> Result<(), ExtensionError> {{
    let binding = spindle_sdk::console::line_event()
        .binding(on_command)
        .guard(|line| line.command() == COMMAND_NAME)
        .install(ctx.principal())?;
    *COMMAND.lock() = Some(binding);
    Ok(())
}}

fn exit(_ctx: &ExtensionContext) {{
    if let Some(binding) = COMMAND.lock().take() {{
        // Already gone only if the kernel revoked it first.
        let _ = binding.uninstall();
    }}
}}

spindle_sdk::extension!(init: init, exit: exit);

#[cfg(test)]
mod tests {{
    use super::*;

    #[test]
    fn the_command_answers_with_its_arguments() {{
        assert_eq!(answer(&Line::new(COMMAND_NAME)), "{name} here");
        assert_eq!(answer(&Line::new("{name} a b")), "{name} here a b");
    }}
}}
"#
    )
}

/// Creates `extensions_dir/NAME` from the template, refusing a bad name,
/// an existing directory, or a name in `existing_packages`. Returns the
/// new crate's directory.
pub fn create(
    extensions_dir: &Path,
    name: &str,
    existing_packages: &[String],
) -> Result<PathBuf, ScaffoldError> {
    validate_name(name)?;
    let dir = extensions_dir.join(name);
    if dir.exists() {
        return Err(ScaffoldError::DirectoryExists(dir));
    }
    if existing_packages.iter().any(|p| p == name) {
        return Err(ScaffoldError::PackageExists(name.to_owned()));
    }
    let io = |path: &Path, e: std::io::Error| ScaffoldError::Io(format!("{}: {e}", path.display()));
    let src = dir.join("src");
    std::fs::create_dir_all(&src).map_err(|e| io(&src, e))?;
    let manifest = dir.join("Cargo.toml");
    std::fs::write(&manifest, cargo_toml(name)).map_err(|e| io(&manifest, e))?;
    let lib = src.join("lib.rs");
    std::fs::write(&lib, lib_rs(name)).map_err(|e| io(&lib, e))?;
    Ok(dir)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_follow_cargo_and_the_descriptor() {
        assert_eq!(validate_name("greeter"), Ok(()));
        assert_eq!(validate_name("my-ext_2"), Ok(()));
        assert!(matches!(
            validate_name(""),
            Err(ScaffoldError::InvalidName {
                why: "it is empty",
                ..
            })
        ));
        assert!(matches!(
            validate_name("2fast"),
            Err(ScaffoldError::InvalidName {
                why: "it must start with a lowercase ASCII letter",
                ..
            })
        ));
        assert!(matches!(
            validate_name("a b"),
            Err(ScaffoldError::InvalidName {
                why: "only lowercase ASCII letters, digits, `-` and `_` are allowed",
                ..
            })
        ));
        assert!(matches!(
            validate_name(&"a".repeat(49)),
            Err(ScaffoldError::InvalidName { .. })
        ));
        assert_eq!(
            validate_name("self"),
            Err(ScaffoldError::Keyword("self".into()))
        );
    }

    #[test]
    fn create_refuses_existing_directories_and_packages() {
        let dir = std::env::temp_dir().join(format!("spindle-scaffold-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).unwrap();
        let made = create(&dir, "greeter", &[]).unwrap();
        assert!(made.join("Cargo.toml").exists());
        let lib = std::fs::read_to_string(made.join("src/lib.rs")).unwrap();
        assert!(lib.contains("const COMMAND_NAME: &str = \"greeter\";"));
        assert_eq!(
            create(&dir, "greeter", &[]),
            Err(ScaffoldError::DirectoryExists(dir.join("greeter")))
        );
        assert_eq!(
            create(&dir, "loader", &["loader".into()]),
            Err(ScaffoldError::PackageExists("loader".into()))
        );
        let _ = std::fs::remove_dir_all(&dir);
    }
}
