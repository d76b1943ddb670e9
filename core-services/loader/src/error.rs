//! Why a load or an unload was refused. Every variant names the check,
//! symbol, section or relocation that failed; the kernel keeps running.

use alloc::string::String;
use alloc::vec::Vec;
use core::fmt;

use spindle_package::VerifyError;
use spindle_sdk::DescriptorError;

use crate::platform::{MapError, Panic};

/// One import the loader could not resolve, with what it knows about it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct MissingSymbol {
    /// Mangled name.
    pub name: String,
    /// Crate it belongs to, if the name says.
    pub owner: Option<String>,
    /// Why it is missing.
    pub reason: MissingReason,
}

/// Where a missing symbol could have come from.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum MissingReason {
    /// The kernel has it, but in a crate outside `SpinPublic`.
    KernelInternal,
    /// An available extension exports it, but that extension is not loaded.
    ExtensionNotLoaded(String),
    /// It belongs to a crate that this extension carries privately
    /// (`extension`): private dependencies are never exported. The
    /// importer must depend on the crate itself.
    CarriedPrivately(String),
    /// A linker-defined section bound (`__start_X`, `__stop_X`) for a
    /// section `X` the object does not have.
    SectionBound(String),
    /// Nothing provides it.
    Unknown,
}

/// Why `ext load` failed. Nothing of the extension stays behind.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum LoadError {
    /// No extension of that name in the catalogue.
    NotFound(String),
    /// It is loaded already.
    AlreadyLoaded(String),
    /// As many extensions as the loader has room for are loaded.
    TooMany {
        /// The limit.
        max: usize,
    },
    /// The signature check failed (unsigned, modified, wrong key).
    Signature(VerifyError),
    /// The object is not a valid ELF relocatable object, or breaks a limit.
    Object(domains::Error),
    /// The object has no `.spindle_ext` section.
    MissingDescriptor,
    /// The bundle's crate list is malformed.
    Bundle(spindle_package::bundle::BundleError),
    /// The descriptor is malformed.
    Descriptor(DescriptorError),
    /// The descriptor names another extension than the manifest.
    NameMismatch {
        /// Name in the manifest (and signature).
        manifest: String,
        /// Name in the descriptor.
        descriptor: String,
    },
    /// Built against interface sources other than the kernel's.
    Fingerprint {
        /// Interface crate.
        interface: String,
        /// Fingerprint in the extension.
        found: u64,
        /// The kernel's, if it has that interface.
        expected: Option<u64>,
    },
    /// Imports that no permitted domain provides.
    Unresolved {
        /// Domains searched.
        searched: Vec<String>,
        /// Every missing symbol.
        symbols: Vec<MissingSymbol>,
    },
    /// Linking failed (unsupported or overflowing relocation, ...).
    Link(domains::Error),
    /// No free range of the extension address region is large enough.
    AddressSpaceFull {
        /// Bytes the image needs.
        bytes: u64,
    },
    /// The kernel could not map the image.
    Map(MapError),
    /// The extension's domain could not be registered (its name is taken
    /// by another domain, such as `SpinPublic`).
    Domain(domains::Error),
    /// The descriptor's entry point does not lie in the extension's code.
    BadEntryPoint {
        /// Which function.
        which: &'static str,
        /// Its address.
        address: u64,
    },
    /// `init` returned an error.
    InitFailed(String),
    /// `init` panicked; the panic unwound back to the platform's call.
    InitPanicked(Panic),
    /// No heap slot is free for the extension.
    NoHeap(extension_heap::SlotsFull),
}

impl fmt::Display for LoadError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::NotFound(name) => {
                write!(f, "no extension '{name}' in the catalogue (see 'ext list')")
            }
            Self::AlreadyLoaded(name) => write!(f, "'{name}' is already loaded"),
            Self::TooMany { max } => {
                write!(f, "{max} extensions are loaded, the most the loader holds")
            }
            Self::Signature(e) => write!(f, "signature check failed: {e}"),
            Self::Object(e) => write!(f, "bad object: {e}"),
            Self::MissingDescriptor => write!(
                f,
                "missing descriptor: the object has no {} section (did the crate invoke spindle_sdk::extension!?)",
                spindle_sdk::DESCRIPTOR_SECTION
            ),
            Self::Descriptor(e) => write!(f, "bad descriptor: {e}"),
            Self::NameMismatch {
                manifest,
                descriptor,
            } => {
                write!(
                    f,
                    "descriptor names '{descriptor}' but the signed manifest entry is '{manifest}'"
                )
            }
            Self::Fingerprint {
                interface,
                found,
                expected: Some(expected),
            } => write!(
                f,
                "interface fingerprint mismatch for '{interface}': extension built against {found:#018x}, kernel has {expected:#018x} (rebuild the extension)"
            ),
            Self::Fingerprint {
                interface,
                found,
                expected: None,
            } => {
                write!(
                    f,
                    "extension needs interface '{interface}' ({found:#018x}), which this kernel does not provide"
                )
            }
            Self::Unresolved { searched, symbols } => {
                write!(
                    f,
                    "{} unresolved symbol(s) (searched {}):",
                    symbols.len(),
                    searched.join(", ")
                )?;
                for symbol in symbols {
                    let owner = symbol.owner.as_deref().unwrap_or("?");
                    write!(
                        f,
                        "\n    {:#} [crate {owner}]",
                        rustc_demangle::demangle(&symbol.name)
                    )?;
                    match &symbol.reason {
                        MissingReason::KernelInternal => {
                            write!(f, ": kernel-internal symbol, not exported to extensions")?
                        }
                        MissingReason::ExtensionNotLoaded(provider) => write!(
                            f,
                            ": exported by extension '{provider}', which is not loaded"
                        )?,
                        MissingReason::CarriedPrivately(carrier) => write!(
                            f,
                            ": private to extension '{carrier}', which carries that crate (depend on it yourself)"
                        )?,
                        MissingReason::SectionBound(section) => write!(
                            f,
                            ": linker-defined bound of section '{section}', which the object does not have"
                        )?,
                        MissingReason::Unknown => {
                            write!(f, ": not provided by the kernel or any extension")?
                        }
                    }
                }
                Ok(())
            }
            Self::Bundle(e) => write!(f, "bundle: {e}"),
            Self::Link(e) => write!(f, "link failed: {e}"),
            Self::AddressSpaceFull { bytes } => write!(
                f,
                "out of memory: no free {bytes}-byte range in the extension address region"
            ),
            Self::Map(e) => write!(f, "out of memory: {e}"),
            Self::Domain(e) => write!(f, "domain refused: {e}"),
            Self::BadEntryPoint { which, address } => {
                write!(
                    f,
                    "descriptor's {which} function ({address:#x}) is not in the extension's code"
                )
            }
            Self::InitFailed(message) => write!(f, "init failed: {message}"),
            Self::InitPanicked(panicked) => write!(f, "init {panicked}"),
            Self::NoHeap(full) => write!(f, "no heap for it: {full}"),
        }
    }
}

/// Why `ext unload` failed.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum UnloadError {
    /// Not loaded.
    NotLoaded(String),
    /// Loaded extensions import its symbols.
    InUse {
        /// The extension.
        name: String,
        /// Who depends on it.
        dependents: Vec<String>,
    },
    /// Some of its handlers are still referenced by raises in progress; its
    /// memory is kept until they finish.
    BindingsStillAlive {
        /// The extension.
        name: String,
        /// How many of its bindings the unload revoked (as
        /// [`UnloadReport::revoked`](crate::UnloadReport::revoked) says of an
        /// unload that completes).
        revoked: usize,
        /// How many binding objects.
        alive: usize,
    },
}

impl fmt::Display for UnloadError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::NotLoaded(name) => write!(f, "'{name}' is not loaded"),
            Self::InUse { name, dependents } => {
                write!(
                    f,
                    "'{name}' is in use by {} (unload them first)",
                    dependents.join(", ")
                )
            }
            Self::BindingsStillAlive {
                name,
                revoked,
                alive,
            } => write!(
                f,
                "'{name}' unloaded ({revoked} binding(s) revoked) but {alive} handler object(s) are still referenced by raises in progress; memory kept"
            ),
        }
    }
}
