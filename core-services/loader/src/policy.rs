//! The public-domain policy: which of the kernel's symbols extensions may
//! link against.
//!
//! SPIN composes its public domain; so does Spindle:
//! `SpinPublic = Combine(RustRuntime, SpinInterfaces)`. `RustRuntime` holds
//! `core`, `alloc`, `compiler_builtins` and the unwinding ABI; `SpinInterfaces` the dispatcher,
//! the SDK, the core services' interfaces, and the crates whose generic code
//! those interfaces instantiate inside extensions. Everything else in the
//! kernel (the kernel crate, this loader, the linker, the package verifier,
//! the allocator, arch glue, the `log` facade with its setters) is internal.
//!
//! A symbol is public only if *every* crate it names is public (the strict
//! filter): `RawVec<spindle_kernel::..>::grow_one`, owned by `alloc`, stays
//! internal. Ambiguous names (two different kernel symbols with one
//! unmangled name) are left out.

use domains::{CrateFilter, Domain, attribution};

/// Crates whose symbols make up `SpinPublic` (defined by the SDK, where
/// the build's trust policy reads the same list).
pub use spindle_sdk::SPIN_PUBLIC_CRATES;

/// Crates of the Rust runtime part of `SpinPublic` (`unwind` is the
/// pseudo-crate of `rust_eh_personality` and `_Unwind_Resume`, which code
/// built with `-C panic=unwind` calls; see `domains::attribution`).
pub const RUNTIME_CRATES: &[&str] = &["core", "alloc", "compiler_builtins", "unwind"];

/// Name of the domain extensions resolve against.
pub const SPIN_PUBLIC: &str = "SpinPublic";
/// Name of the runtime part of [`SPIN_PUBLIC`].
pub const RUST_RUNTIME: &str = "RustRuntime";
/// Name of the interfaces part of [`SPIN_PUBLIC`].
pub const SPIN_INTERFACES: &str = "SpinInterfaces";

/// Whether a public symbol belongs to the `RustRuntime` part (by its owning
/// crate).
pub fn is_runtime_symbol(name: &str) -> bool {
    matches!(attribution::attribute(name).owner, attribution::Owner::Crate(owner) if RUNTIME_CRATES.contains(&owner))
}

/// Which part of `SpinPublic` a view shows.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum PublicPart {
    /// All of it.
    All,
    /// `RustRuntime`.
    Runtime,
    /// `SpinInterfaces`.
    Interfaces,
}

impl PublicPart {
    /// The part a domain name denotes, if it is one of the three.
    pub fn from_name(name: &str) -> Option<Self> {
        match name {
            SPIN_PUBLIC => Some(Self::All),
            RUST_RUNTIME => Some(Self::Runtime),
            SPIN_INTERFACES => Some(Self::Interfaces),
            _ => None,
        }
    }

    /// Whether `symbol` (a `SpinPublic` export) is in this part.
    pub fn contains(self, symbol: &str) -> bool {
        match self {
            Self::All => true,
            Self::Runtime => is_runtime_symbol(symbol),
            Self::Interfaces => !is_runtime_symbol(symbol),
        }
    }
}

/// The sizes of `SpinPublic`'s two parts (the parts themselves are views of
/// the combination, by owning crate).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct PublicSizes {
    /// Exports of `RustRuntime`.
    pub runtime: usize,
    /// Exports of `SpinInterfaces`.
    pub interfaces: usize,
}

/// Splits the kernel's symbols (one pass over the `Kernel` domain, no second
/// scan of the ELF) into `RustRuntime` and `SpinInterfaces` by the policy
/// above and combines them into `SpinPublic`.
pub fn compose_spin_public(kernel: &Domain) -> (Domain, PublicSizes) {
    let public = CrateFilter::crates(SPIN_PUBLIC_CRATES).strict(true);
    let mut runtime = alloc::vec::Vec::new();
    let mut interfaces = alloc::vec::Vec::new();
    for (name, export) in kernel.exports() {
        if export.ambiguous || !public.accepts(name) {
            continue;
        }
        if is_runtime_symbol(name) {
            runtime.push((name, export.address));
        } else {
            interfaces.push((name, export.address));
        }
    }
    let sizes = PublicSizes {
        runtime: runtime.len(),
        interfaces: interfaces.len(),
    };
    let runtime = Domain::from_exports(RUST_RUNTIME, runtime);
    let interfaces = Domain::from_exports(SPIN_INTERFACES, interfaces);
    let spin_public = match domains::combine(SPIN_PUBLIC, &runtime, &interfaces) {
        Ok(combined) => combined,
        // Each symbol went to exactly one part, so the parts are disjoint
        // and combining cannot clash; should it ever, fall back to the
        // interfaces alone rather than export a wrong address.
        Err(_) => Domain::from_exports(
            SPIN_PUBLIC,
            interfaces.exports().map(|(n, e)| (n, e.address)),
        ),
    };
    (spin_public, sizes)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Legacy-mangled names of the crates involved (the hash is arbitrary).
    const CORE_WRITE: &str = "_ZN4core3fmt5write17h0123456789abcdefE";
    const DISPATCH_RAISE: &str = "_ZN10dispatcher5event5raise17h0123456789abcdefE";
    const KERNEL_LOAD: &str = "_ZN14spindle_kernel6loader4load17h0123456789abcdefE";
    const LOG_SET_MAX: &str = "_ZN3log13set_max_level17h0123456789abcdefE";
    const MEMCPY: &str = "memcpy";

    fn kernel() -> Domain {
        Domain::from_exports(
            "Kernel",
            [
                (CORE_WRITE, 0x1000),
                (DISPATCH_RAISE, 0x2000),
                (KERNEL_LOAD, 0x3000),
                (LOG_SET_MAX, 0x4000),
                (MEMCPY, 0x5000),
            ],
        )
    }

    #[test]
    fn spin_public_keeps_the_public_crates_and_splits_by_owner() {
        let (public, sizes) = compose_spin_public(&kernel());
        assert_eq!(public.name(), SPIN_PUBLIC);
        assert_eq!(public.address_of(CORE_WRITE), Some(0x1000));
        assert_eq!(public.address_of(DISPATCH_RAISE), Some(0x2000));
        assert_eq!(public.address_of(MEMCPY), Some(0x5000));
        assert_eq!(public.address_of(KERNEL_LOAD), None, "kernel-internal");
        assert_eq!(public.address_of(LOG_SET_MAX), None, "log is internal");
        assert_eq!(
            sizes,
            PublicSizes {
                runtime: 2,
                interfaces: 1
            }
        );
        assert!(PublicPart::Runtime.contains(CORE_WRITE));
        assert!(PublicPart::Runtime.contains(MEMCPY));
        assert!(PublicPart::Interfaces.contains(DISPATCH_RAISE));
        assert!(!PublicPart::Interfaces.contains(CORE_WRITE));
        assert_eq!(
            PublicPart::from_name("RustRuntime"),
            Some(PublicPart::Runtime)
        );
        assert_eq!(PublicPart::from_name("Kernel"), None);
    }

    #[test]
    fn a_public_generic_over_a_kernel_type_stays_internal() {
        let internal =
            "_ZN4core3ptr51drop_in_place$LT$spindle_kernel..loader..Loaded$GT$17h0123456789abcdefE";
        let public = "_ZN4core3ptr42drop_in_place$LT$alloc..string..String$GT$17h0123456789abcdefE";
        let kernel = Domain::from_exports("Kernel", [(internal, 0x10), (public, 0x20)]);
        let (spin_public, sizes) = compose_spin_public(&kernel);
        assert_eq!(spin_public.address_of(internal), None);
        assert_eq!(spin_public.address_of(public), Some(0x20));
        assert_eq!(sizes.runtime, 1);
    }
}
