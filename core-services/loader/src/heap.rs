//! Each extension's heap: the allocator imports bound, for that extension
//! alone, to the entry points of a heap the kernel gives it.
//!
//! An extension's object imports the allocator shims rustc emits
//! (`__rustc::__rust_alloc`, `__rust_alloc_zeroed`, `__rust_realloc`; their
//! mangled names depend on the compiler build, so they are found in the
//! kernel's own symbol table, [`AllocatorShims::find`]). Before resolving
//! against `SpinPublic`, the loader asks the [`Platform`](crate::Platform)
//! for a heap ([`HeapEntries`]) and puts a small domain exporting those
//! names at the heap's addresses *first* among the sources
//! ([`AllocatorShims::domain`]): the first source exporting a name wins, so
//! this extension's allocations go to its heap and everything else
//! resolves as before. `__rust_dealloc` stays the kernel's: the kernel
//! routes a freed block to its heap by address.
//!
//! Only the kernel implements `Platform` and constructs a `Loader`:
//! extensions cannot reach this hook.

use alloc::format;
use alloc::string::String;

use domains::Domain;

/// A heap the platform gave a loading extension: its slot and the
/// addresses its allocator imports bind to.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct HeapEntries {
    /// The platform's number for the heap.
    pub slot: usize,
    /// For `__rust_alloc`.
    pub alloc: u64,
    /// For `__rust_alloc_zeroed`.
    pub alloc_zeroed: u64,
    /// For `__rust_realloc`.
    pub realloc: u64,
}

/// The mangled names of the allocator shims, as the kernel defines them.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct AllocatorShims {
    /// `__rustc::__rust_alloc`.
    pub alloc: Option<String>,
    /// `__rustc::__rust_alloc_zeroed`.
    pub alloc_zeroed: Option<String>,
    /// `__rustc::__rust_realloc`.
    pub realloc: Option<String>,
}

/// Which shim a (mangled or plain) symbol name is, if any.
fn shim_of(name: &str) -> Option<&'static str> {
    const SHIMS: [&str; 3] = ["__rust_alloc", "__rust_alloc_zeroed", "__rust_realloc"];
    let plain = SHIMS.iter().find(|s| name == **s);
    if plain.is_some() {
        return plain.copied();
    }
    // v0 mangling: `..._7___rustc12___rust_alloc`; the cheap suffix test
    // first, then the demangled name decides.
    let candidate = SHIMS
        .iter()
        .find(|s| name.starts_with("_R") && name.ends_with(*s))?;
    let demangled = format!("{:#}", rustc_demangle::demangle(name));
    (demangled == format!("__rustc::{candidate}")).then_some(*candidate)
}

impl AllocatorShims {
    /// Finds the shims among `kernel`'s exports.
    pub fn find(kernel: &Domain) -> Self {
        let mut shims = Self::default();
        for (name, _) in kernel.exports() {
            let slot = match shim_of(name) {
                Some("__rust_alloc") => &mut shims.alloc,
                Some("__rust_alloc_zeroed") => &mut shims.alloc_zeroed,
                Some("__rust_realloc") => &mut shims.realloc,
                _ => continue,
            };
            *slot = Some(name.into());
        }
        shims
    }

    /// A placed domain named `NAME.heap` exporting the shims at `heap`'s
    /// entry points: resolved first, it binds `NAME`'s allocator imports
    /// to its own heap.
    pub fn domain(&self, name: &str, heap: &HeapEntries) -> Domain {
        let symbols = [
            (self.alloc.as_deref(), heap.alloc),
            (self.alloc_zeroed.as_deref(), heap.alloc_zeroed),
            (self.realloc.as_deref(), heap.realloc),
        ];
        Domain::from_exports(
            &format!("{name}.heap"),
            symbols
                .into_iter()
                .filter_map(|(symbol, address)| symbol.map(|s| (s, address))),
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn shims_are_recognised_mangled_or_plain_and_nothing_else() {
        assert_eq!(
            shim_of("_RNvCsfdYgyGz23Lv_7___rustc12___rust_alloc"),
            Some("__rust_alloc")
        );
        assert_eq!(
            shim_of("_RNvCsfdYgyGz23Lv_7___rustc14___rust_realloc"),
            Some("__rust_realloc")
        );
        assert_eq!(
            shim_of("_RNvCsfdYgyGz23Lv_7___rustc19___rust_alloc_zeroed"),
            Some("__rust_alloc_zeroed")
        );
        assert_eq!(shim_of("__rust_alloc"), Some("__rust_alloc"));
        // The kernel's dealloc routes by address: it is never rebound.
        assert_eq!(
            shim_of("_RNvCsfdYgyGz23Lv_7___rustc14___rust_dealloc"),
            None
        );
        // A function of some crate that merely ends the same way.
        assert_eq!(shim_of("_RNvCs1234_5mycrate12___rust_alloc"), None);
    }

    #[test]
    fn the_heap_domain_exports_the_shims_at_the_heap_entry_points() {
        let shims = AllocatorShims {
            alloc: Some("_RNvCsX_7___rustc12___rust_alloc".into()),
            alloc_zeroed: None,
            realloc: Some("_RNvCsX_7___rustc14___rust_realloc".into()),
        };
        let heap = HeapEntries {
            slot: 3,
            alloc: 0x1000,
            alloc_zeroed: 0x2000,
            realloc: 0x3000,
        };
        let domain = shims.domain("hello", &heap);
        assert_eq!(domain.name(), "hello.heap");
        assert_eq!(domain.export_count(), 2);
        assert_eq!(
            domain.address_of("_RNvCsX_7___rustc12___rust_alloc"),
            Some(0x1000)
        );
        assert_eq!(
            domain.address_of("_RNvCsX_7___rustc14___rust_realloc"),
            Some(0x3000)
        );
    }
}
