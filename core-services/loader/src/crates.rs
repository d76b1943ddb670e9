//! The crates an extension carries or imports, from its bundle's crate
//! list (inside the signed bytes, so covered by the signature), and the
//! rule for what an extension's domain exports.
//!
//! An extension carries its crates.io dependencies privately, linked into
//! its own domain as one unit and freed with it (ARCHITECTURE.md,
//! "Dependencies from crates.io"). Its domain exports its own crate's
//! symbols only, so two extensions carrying the same crate (at one version
//! or two) never offer the same names, and neither shares the other's copy
//! or its statics.

use alloc::string::String;
use alloc::vec::Vec;

use domains::{CrateFilter, Domain, Object};
use spindle_package::bundle::{self, BundleError, Role};

use crate::report::Component;

/// The crate list of a (verified) object: one [`Component`] per line, or
/// nothing for a plain object, which carries no list.
pub fn components(object: &[u8]) -> Result<Vec<Component>, BundleError> {
    Ok(bundle::crate_list(object)?
        .unwrap_or_default()
        .into_iter()
        .map(|c| Component {
            name: c.name,
            version: c.version,
            role: c.role,
        })
        .collect())
}

/// The crate whose symbols the extension `name` exports: its own (the
/// crate list's `extension` line, or the extension's name).
pub fn own_crate(components: &[Component], name: &str) -> String {
    components
        .iter()
        .find(|c| c.role == Role::Extension)
        .map_or(name, |c| c.name.as_str())
        .replace('-', "_")
}

/// The domain of extension `name` (whose crate list is `components`) for
/// `object`: it exports the extension's own crate and its own unmangled
/// symbols, never the crates it carries (`Domain::create_exporting`).
pub fn domain(
    name: &str,
    object: &Object<'_>,
    components: &[Component],
) -> Result<Domain, domains::Error> {
    let own_crate = own_crate(components, name);
    let own = [own_crate.as_str()];
    Domain::create_exporting(name, object, &CrateFilter::crates(&own))
}
