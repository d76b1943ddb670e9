//! Which crate a symbol belongs to, read from its mangled name.
//!
//! Domains are drawn per crate (design §5): a kernel domain such as
//! `SpinPublic` holds every symbol of a chosen set of crates. The kernel's
//! `.symtab` does not say which crate a symbol came from, so the name
//! decides. The rule:
//!
//! 1. **v0 names** (`_R...`, the default of the pinned nightly) and
//!    **legacy names** (`_ZN...E`, still used by crates built with
//!    `-C symbol-mangling-version=legacy`) are parsed; the *owner* is the
//!    crate in which the item's code is **defined**:
//!    * a free item or inherent method `a::b::f` → crate `a`;
//!    * a trait impl `<T as Trait>::m` defined by `impl Trait for T` → the
//!      crate holding the `impl` block. v0 records that crate (the impl
//!      path); legacy names do not, so for them it is the crate of `T`
//!      when `T` is a path, else the crate of `Trait` (by the orphan rule
//!      the impl lives in one of the two: `<alloc::string::String as
//!      core::fmt::Display>::fmt` → `alloc`);
//!    * a trait's provided method used for a type (`<T as Trait>::m` with
//!      no impl, v0 `Y`) → the crate defining `Trait`;
//!    * a generic instantiation `f::<T>` → the crate defining `f`. The
//!      instantiating-crate suffix of v0 names is ignored.
//! 2. Allocator shims (`__rust_alloc`, `__rust_dealloc`, `__rust_realloc`,
//!    `__rust_alloc_zeroed`, `__rust_alloc_error_handler`,
//!    `__rust_no_alloc_shim_is_unstable*`,
//!    `__rust_alloc_error_handler_should_panic*`), unmangled or v0-mangled
//!    under the `__rustc` pseudo-crate, belong to **`alloc`**: code that
//!    `alloc` inlines into an extension calls them. Every other `__rustc::`
//!    symbol (the panic handler entry, ...) belongs to crate `__rustc`.
//! 3. Unmangled names following compiler-rt's naming belong to
//!    **`compiler_builtins`**: the C memory functions (`memcpy`, `memmove`,
//!    `memset`, `memcmp`, `bcmp`, `strlen`, `wcslen`),
//!    `__<letters><2|3|4>` arithmetic helpers (`__udivti3`, `__muloti4`,
//!    `__adddf3`, `__extendhfsf2`, and `__rust_divhc3` style), the
//!    conversions `__float*` / `__fix*`, the `__atomic_*`, `__sync_*`,
//!    `__llvm_mem*`, `__rust_i128_*`, `__rust_u128_*` and `__gnu_*`
//!    families, `__rust_probestack`, and the C math functions
//!    compiler_builtins supplies on bare-metal targets (`fmod`, `sqrtf`,
//!    `floorf128`...). This matches every unmangled global that this
//!    toolchain's compiler_builtins defines, for the host and for
//!    `x86_64-unknown-none`, except its private `__compilerrt_abort_impl`
//!    (a test checks it). Linker-script symbols such as `__bss_start` or
//!    `__kernel_end` do not match (they end in a letter).
//! 4. `rust_eh_personality` and `_Unwind_Resume`, which code built with
//!    `-C panic=unwind` calls from its unwind tables and landing pads,
//!    belong to the pseudo-crate **`unwind`** ([`UNWIND_CRATE`]), as in
//!    std's `unwind` crate.
//! 5. Anything else (other `#[no_mangle]` symbols, names that fail to
//!    parse) has **no owner** and is in no crate-filtered domain.
//!
//! A [`CrateFilter`] can also require that *every* crate named in the
//! symbol (type arguments, self types, traits) be in the set
//! ([`CrateFilter::strict`]): then `core::ptr::drop_in_place::<kernel_image::Secret>`
//! is outside a public set even though `core` is in it.
//!
//! Parsing allocates nothing and borrows the crate name from the symbol.
//! [`attribute`] reads only the prefix of a v0 name that determines the
//! owner (the kernel attributes every symbol of its `.symtab` at boot);
//! [`for_each_crate`] and strict filters parse the whole name.

/// How a symbol name is mangled.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Mangling {
    /// Rust v0 (`_R`).
    V0,
    /// Rust legacy (`_ZN...E`).
    Legacy,
    /// Not a Rust mangled name.
    None,
}

/// The crate a symbol is attributed to.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Owner<'a> {
    /// A crate, by name (as in `extern crate` paths, with underscores).
    Crate(&'a str),
    /// No crate could be determined.
    Unknown,
}

/// The result of [`attribute`].
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Attribution<'a> {
    /// The mangling scheme recognised.
    pub mangling: Mangling,
    /// The owning crate.
    pub owner: Owner<'a>,
}

mod builtins;
mod filter;
mod legacy;
mod v0;

pub use builtins::{UNWIND_CRATE, is_compiler_builtin, is_unwind_abi};
pub use filter::CrateFilter;

use builtins::is_alloc_shim;
use legacy::{legacy_body, legacy_crates, legacy_owner};
use v0::v0_owner;

/// Attributes `symbol` to a crate by the rule in the module documentation.
pub fn attribute(symbol: &str) -> Attribution<'_> {
    if let Some(rest) = symbol.strip_prefix("_R") {
        let owner = v0_owner(rest.as_bytes())
            .and_then(|c| core::str::from_utf8(c).ok())
            .map_or(Owner::Unknown, Owner::Crate);
        return Attribution {
            mangling: Mangling::V0,
            owner,
        };
    }
    if let Some(owner) = legacy_owner(symbol) {
        return Attribution {
            mangling: Mangling::Legacy,
            owner,
        };
    }
    let owner = if is_alloc_shim(symbol) {
        Owner::Crate("alloc")
    } else if is_compiler_builtin(symbol) {
        Owner::Crate("compiler_builtins")
    } else if is_unwind_abi(symbol) {
        Owner::Crate(UNWIND_CRATE)
    } else {
        Owner::Unknown
    };
    Attribution {
        mangling: Mangling::None,
        owner,
    }
}

/// Whether `symbol` looks Rust-mangled (v0 `_R` or legacy `_ZN...E`),
/// without parsing it.
pub fn is_rust_mangled(symbol: &str) -> bool {
    symbol.starts_with("_R") || legacy_body(symbol).is_some()
}

/// Calls `f` with every crate named in `symbol`'s path, types and trait
/// paths (the v0 instantiating-crate suffix excepted). Returns `false` if
/// the name could not be parsed completely (then `f` may have seen only
/// some crates).
pub fn for_each_crate(symbol: &str, mut f: impl FnMut(&str)) -> bool {
    if let Some(rest) = symbol.strip_prefix("_R") {
        return v0::for_each_crate(rest.as_bytes(), &mut f);
    }
    if let Some(body) = legacy_body(symbol) {
        legacy_crates(body, &mut f);
        return true;
    }
    match attribute(symbol).owner {
        Owner::Crate(c) => {
            f(c);
            true
        }
        Owner::Unknown => false,
    }
}

#[cfg(test)]
mod tests;
