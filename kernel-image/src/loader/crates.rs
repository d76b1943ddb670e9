//! The crates an extension carries or imports, from its bundle's crate
//! list (inside the signed bytes, so covered by the signature), and the
//! rule for what an extension's domain exports.
//!
//! **Choice** (see ARCHITECTURE.md): an extension carries its crates.io
//! dependencies privately, linked into its own domain as one unit and freed
//! with it. Its domain exports its own crate's symbols only, so two
//! extensions carrying the same crate (at one version or two) never offer
//! the same names, and neither shares the other's copy or its statics.

use alloc::format;
use alloc::string::String;
use alloc::vec::Vec;

use domains::CrateFilter;
use spindle_package::bundle::{CrateRecord, Provider, Role, Trust};

/// The crate whose symbols the extension `name` exports: its own (the
/// crate list's `extension` line, or the extension's name).
pub fn own_crate(crates: &[CrateRecord], name: &str) -> String {
    crates
        .iter()
        .find(|c| c.role == Role::Extension)
        .map_or(name, |c| c.name.as_str())
        .replace('-', "_")
}

/// Whether an extension whose own crate is `own` exports `symbol`.
pub fn exports(own: &str, symbol: &str) -> bool {
    CrateFilter::crates(&[own]).accepts(symbol)
}

/// One line per crate for `ext info`: name, version, what it is to the
/// extension.
pub fn describe(crates: &[CrateRecord]) -> Vec<String> {
    crates
        .iter()
        .map(|c| {
            let role = match c.role {
                Role::Extension => "the extension itself",
                Role::Carried(Trust::Vetted) => "carried (vetted)",
                Role::Carried(Trust::Safe) => "carried (safe: built under -F unsafe-code)",
                Role::Imported(Provider::Kernel) => "imported from the kernel (SpinPublic)",
                Role::Imported(Provider::Extension) => "imported from that extension",
            };
            format!("{:<20} {:<10} {role}", c.name, c.version)
        })
        .collect()
}
