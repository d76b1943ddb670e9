//! Where things are: the workspace root and cargo's target directory.

use std::path::{Path, PathBuf};
use std::process::Command;

/// The workspace root (the parent of `xtask/`).
///
/// Run by `cargo xtask` (`cargo run`), xtask takes it from the manifest
/// directory cargo gives the process, not from the one it was compiled
/// in: cargo reuses a build of xtask for a copy or a move of the workspace
/// at the same depth (it identifies the crate by its path relative to the
/// root), and that build must act on the workspace it runs for.
pub fn root() -> PathBuf {
    root_from(
        std::env::var("CARGO_PKG_NAME").ok().as_deref(),
        std::env::var_os("CARGO_MANIFEST_DIR")
            .as_deref()
            .map(Path::new),
    )
}

/// [`root`] from the run-time `CARGO_PKG_NAME` and `CARGO_MANIFEST_DIR`:
/// the latter's parent if the package cargo runs is xtask, else (a library
/// user, or xtask run by cargo as another crate's compiler wrapper) the
/// compile-time one.
fn root_from(package: Option<&str>, manifest_dir: Option<&Path>) -> PathBuf {
    let manifest_dir = match (package, manifest_dir) {
        (Some("xtask"), Some(dir)) => dir,
        _ => Path::new(env!("CARGO_MANIFEST_DIR")),
    };
    manifest_dir
        .parent()
        .expect("xtask lives in the workspace root")
        .to_path_buf()
}

/// Cargo's target directory: `$CARGO_TARGET_DIR` if set, as cargo itself
/// resolves it (`cargo metadata`), else `<root>/target`.
pub fn target_dir() -> PathBuf {
    if let Some(dir) = std::env::var_os("CARGO_TARGET_DIR") {
        let dir = PathBuf::from(dir);
        return if dir.is_absolute() {
            dir
        } else {
            root().join(dir)
        };
    }
    let cargo = std::env::var("CARGO").unwrap_or_else(|_| "cargo".into());
    let metadata = Command::new(cargo)
        .args(["metadata", "--format-version", "1", "--no-deps"])
        .current_dir(root())
        .output();
    if let Ok(out) = metadata {
        let text = String::from_utf8_lossy(&out.stdout);
        if let Some(rest) = text.split("\"target_directory\":\"").nth(1)
            && let Some(end) = rest.find('"')
        {
            return PathBuf::from(&rest[..end]);
        }
    }
    root().join("target")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_root_is_that_of_the_xtask_cargo_runs() {
        let built_in = Path::new(env!("CARGO_MANIFEST_DIR")).parent().unwrap();
        assert_eq!(
            root_from(Some("xtask"), Some(Path::new("/elsewhere/ws/xtask"))),
            Path::new("/elsewhere/ws")
        );
        // Run as the compiler wrapper of another crate, or by a library
        // user: the compile-time root.
        assert_eq!(
            root_from(
                Some("spindle-sdk"),
                Some(Path::new("/elsewhere/ws/extensions/sdk"))
            ),
            built_in
        );
        assert_eq!(root_from(None, None), built_in);
    }
}
