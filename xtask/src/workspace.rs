//! Where things are: the workspace root and cargo's target directory.

use std::path::{Path, PathBuf};
use std::process::Command;

/// The workspace root (the parent of `xtask/`).
pub fn root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
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
