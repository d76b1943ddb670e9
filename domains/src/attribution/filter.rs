//! [`CrateFilter`]: which symbols a crate-filtered domain takes.

use super::{Owner, attribute, for_each_crate, v0_owner};

/// Which symbols a crate-filtered domain takes. See the module
/// documentation for how symbols are attributed.
#[derive(Clone, Copy, Debug)]
pub struct CrateFilter<'f> {
    crates: Option<&'f [&'f str]>,
    strict: bool,
}

impl<'f> CrateFilter<'f> {
    /// Every named symbol, whatever its crate (a domain for the whole
    /// kernel).
    pub fn all() -> Self {
        CrateFilter {
            crates: None,
            strict: false,
        }
    }

    /// Symbols owned by one of `crates`. `compiler_builtins` and `alloc` in
    /// the list take the unmangled builtins and allocator shims.
    pub fn crates(crates: &'f [&'f str]) -> Self {
        CrateFilter {
            crates: Some(crates),
            strict: false,
        }
    }

    /// Also require every crate *mentioned* in the symbol (generic
    /// arguments, self types, traits) to be in the list.
    pub fn strict(mut self, strict: bool) -> Self {
        self.strict = strict;
        self
    }

    /// Whether this is [`CrateFilter::all`].
    pub fn is_all(&self) -> bool {
        self.crates.is_none()
    }

    /// Whether `symbol` passes the filter.
    pub fn accepts(&self, symbol: &str) -> bool {
        self.accepts_bytes(symbol.as_bytes())
    }

    /// [`CrateFilter::accepts`] on the raw bytes of a name (v0 names are
    /// judged without UTF-8 validation; others must be UTF-8 to pass).
    pub fn accepts_bytes(&self, symbol: &[u8]) -> bool {
        let Some(list) = self.crates else {
            return true;
        };
        let owner_listed = match symbol.strip_prefix(b"_R") {
            Some(body) => v0_owner(body).is_some_and(|o| list.iter().any(|c| c.as_bytes() == o)),
            None => match core::str::from_utf8(symbol).map(|s| attribute(s).owner) {
                Ok(Owner::Crate(o)) => list.contains(&o),
                _ => false,
            },
        };
        if !owner_listed {
            return false;
        }
        if !self.strict {
            return true;
        }
        let Ok(text) = core::str::from_utf8(symbol) else {
            return false;
        };
        let mut all_in = true;
        let complete = for_each_crate(text, |c| {
            // `__rustc` only ever appears as the allocator-shim path, which
            // the owner check above already mapped to `alloc`.
            if c != "__rustc" && !list.contains(&c) {
                all_in = false;
            }
        });
        complete && all_in
    }
}
