//! The kernel's capability: proof, checked by the compiler, that the caller
//! is the kernel.
//!
//! Some operations of the public crates (the dispatcher, the core services)
//! change state that only the kernel may change: where console output goes,
//! which executor runs asynchronous handlers, the clock that bounds
//! ephemeral handlers. Each takes a [`KernelCapability`] argument. The type
//! has a private field, so code outside this crate cannot construct one;
//! the only way to obtain it is [`PrincipalIssuer::kernel_capability`],
//! and the one `PrincipalIssuer` is taken by the kernel at boot, before any
//! extension runs (Tock's capability pattern, with a value instead of an
//! `unsafe` marker trait, because extensions are safe Rust: they can
//! neither name a private field nor take the issuer).
//!
//! Rule for the kernel: keep the capability in kernel-internal state only;
//! never store it where a public crate (and so an extension) can reach it.

use core::fmt;

use crate::PrincipalIssuer;

/// Proof that the holder is the kernel. See the [module docs](self).
#[derive(Clone, Copy)]
pub struct KernelCapability {
    _private: (),
}

impl PrincipalIssuer {
    /// The kernel's capability, for the kernel-only operations of the
    /// public crates.
    pub fn kernel_capability(&self) -> KernelCapability {
        KernelCapability { _private: () }
    }
}

impl fmt::Debug for KernelCapability {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("KernelCapability")
    }
}
