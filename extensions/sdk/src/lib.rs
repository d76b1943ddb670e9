//! The Spindle extension SDK: everything an extension crate may use, and
//! the one macro that makes a crate an extension.
//!
//! An extension is an ordinary `#![no_std]` crate that depends on this one
//! only, forbids `unsafe`, and declares itself with [`extension!`]:
//!
//! ```ignore
//! #![no_std]
//! #![forbid(unsafe_code)]
//! use spindle_sdk::{ExtensionContext, ExtensionError};
//!
//! fn init(ctx: &ExtensionContext) -> Result<(), ExtensionError> { Ok(()) }
//! fn exit(ctx: &ExtensionContext) {}
//!
//! spindle_sdk::extension!(init: init, exit: exit);
//! ```
//!
//! The build (`cargo xtask`) compiles it with `-F unsafe-code` against the
//! allowed crates only and signs the object; the kernel's loader checks the
//! signature, reads the [`ExtensionDescriptor`] the macro placed in the
//! `.spindle_ext` section, compares its interface fingerprints with its own,
//! links the object against the `SpinPublic` domain, and calls `init` with a
//! context holding the extension's [`Principal`](dispatcher::Principal): the
//! identity under which it installs handlers. On unload (or if `init` fails)
//! the kernel calls `exit`, revokes every binding the principal still has,
//! and frees the extension's memory.
#![cfg_attr(not(test), no_std)]
#![forbid(unsafe_code)]
#![warn(missing_docs)]

extern crate alloc;

use alloc::string::String;
use core::fmt;
use core::mem::offset_of;

pub use {clock, console, dispatcher, phys_addr, spin, strand, translation, virt_addr};

/// Logging for extensions, through the kernel's `log` facade.
///
/// The `log` crate itself is not public to extensions: its `set_max_level`
/// is a safe setter of kernel state, so an extension naming it fails to
/// load. These macros go through one SDK function instead:
/// `spindle_sdk::log::info!("{} frames", n)` logs at info level with the
/// extension's module path as target.
pub mod log {
    use core::fmt;

    /// How important a message is.
    #[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
    pub enum Level {
        /// Something failed.
        Error,
        /// Something looks wrong.
        Warn,
        /// Normal operation.
        Info,
        /// For developers.
        Debug,
        /// Very detailed.
        Trace,
    }

    /// Logs one message (what the macros expand to).
    #[doc(hidden)]
    #[inline(never)]
    pub fn __log(level: Level, target: &str, args: fmt::Arguments<'_>) {
        let level = match level {
            Level::Error => ::log::Level::Error,
            Level::Warn => ::log::Level::Warn,
            Level::Info => ::log::Level::Info,
            Level::Debug => ::log::Level::Debug,
            Level::Trace => ::log::Level::Trace,
        };
        ::log::log!(target: target, level, "{args}");
    }

    pub use crate::{
        __sdk_log_debug as debug, __sdk_log_error as error, __sdk_log_info as info,
        __sdk_log_trace as trace, __sdk_log_warn as warn,
    };
}

/// `spindle_sdk::log::error!`: logs at error level.
#[doc(hidden)]
#[macro_export]
macro_rules! __sdk_log_error {
    ($($arg:tt)+) => {
        $crate::log::__log(
            $crate::log::Level::Error,
            ::core::module_path!(),
            ::core::format_args!($($arg)+),
        )
    };
}

/// `spindle_sdk::log::warn!`: logs at warn level.
#[doc(hidden)]
#[macro_export]
macro_rules! __sdk_log_warn {
    ($($arg:tt)+) => {
        $crate::log::__log(
            $crate::log::Level::Warn,
            ::core::module_path!(),
            ::core::format_args!($($arg)+),
        )
    };
}

/// `spindle_sdk::log::info!`: logs at info level.
#[doc(hidden)]
#[macro_export]
macro_rules! __sdk_log_info {
    ($($arg:tt)+) => {
        $crate::log::__log(
            $crate::log::Level::Info,
            ::core::module_path!(),
            ::core::format_args!($($arg)+),
        )
    };
}

/// `spindle_sdk::log::debug!`: logs at debug level.
#[doc(hidden)]
#[macro_export]
macro_rules! __sdk_log_debug {
    ($($arg:tt)+) => {
        $crate::log::__log(
            $crate::log::Level::Debug,
            ::core::module_path!(),
            ::core::format_args!($($arg)+),
        )
    };
}

/// `spindle_sdk::log::trace!`: logs at trace level.
#[doc(hidden)]
#[macro_export]
macro_rules! __sdk_log_trace {
    ($($arg:tt)+) => {
        $crate::log::__log(
            $crate::log::Level::Trace,
            ::core::module_path!(),
            ::core::format_args!($($arg)+),
        )
    };
}

mod public_crates;
pub use public_crates::SPIN_PUBLIC_CRATES;

/// What extensions usually import.
pub mod prelude {
    pub use crate::{ExtensionContext, ExtensionError};
    pub use console::{Line, Reply, print, println};
    pub use dispatcher::{Binding, Event, EventAuthority, Principal};
}

/// Section the descriptor lives in.
pub const DESCRIPTOR_SECTION: &str = ".spindle_ext";
/// Exported symbol of the descriptor.
pub const DESCRIPTOR_SYMBOL: &str = "SPINDLE_EXTENSION_DESCRIPTOR";
/// First bytes of every descriptor.
pub const DESCRIPTOR_MAGIC: [u8; 8] = *b"SPNDLEXT";
/// Version of the descriptor's layout.
pub const DESCRIPTOR_LAYOUT: u32 = 2;
/// Longest extension name.
pub const MAX_NAME: usize = 48;
/// Longest version string.
pub const MAX_VERSION: usize = 24;
/// Longest interface name.
pub const MAX_INTERFACE_NAME: usize = 24;
/// Most interfaces one extension can name.
pub const MAX_INTERFACES: usize = 16;

const fn fingerprint(decimal: &str) -> u64 {
    match u64::from_str_radix(decimal, 10) {
        Ok(value) => value,
        Err(_) => panic!("build.rs emits decimal fingerprints"),
    }
}

/// The interfaces this SDK was built against and their fingerprints (see
/// `build.rs`). The kernel links the same crates, so it holds the same
/// table; an extension whose table differs was built against other sources.
pub const INTERFACES: [(&str, u64); 8] = [
    (
        "spindle-sdk",
        fingerprint(env!("SPINDLE_FINGERPRINT_SPINDLE_SDK")),
    ),
    (
        "dispatcher",
        fingerprint(env!("SPINDLE_FINGERPRINT_DISPATCHER")),
    ),
    ("console", fingerprint(env!("SPINDLE_FINGERPRINT_CONSOLE"))),
    ("clock", fingerprint(env!("SPINDLE_FINGERPRINT_CLOCK"))),
    ("strand", fingerprint(env!("SPINDLE_FINGERPRINT_STRAND"))),
    (
        "phys-addr",
        fingerprint(env!("SPINDLE_FINGERPRINT_PHYS_ADDR")),
    ),
    (
        "virt-addr",
        fingerprint(env!("SPINDLE_FINGERPRINT_VIRT_ADDR")),
    ),
    (
        "translation",
        fingerprint(env!("SPINDLE_FINGERPRINT_TRANSLATION")),
    ),
];

/// Why `init` refused to start.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ExtensionError {
    message: String,
}

impl ExtensionError {
    /// An error with a message for the operator.
    pub fn new(message: impl Into<String>) -> Self {
        Self {
            message: message.into(),
        }
    }

    /// The message.
    pub fn message(&self) -> &str {
        &self.message
    }
}

impl fmt::Display for ExtensionError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.message)
    }
}

impl From<dispatcher::InstallError> for ExtensionError {
    fn from(e: dispatcher::InstallError) -> Self {
        Self::new(alloc::format!("install refused: {e}"))
    }
}

/// What the kernel hands an extension's `init` and `exit`.
pub struct ExtensionContext {
    principal: dispatcher::Principal,
}

impl ExtensionContext {
    /// A context for the extension running as `principal`. Only the kernel
    /// can mint principals, so only the kernel can make a useful context.
    pub fn new(principal: dispatcher::Principal) -> Self {
        Self { principal }
    }

    /// The extension's identity: install handlers with it.
    pub fn principal(&self) -> &dispatcher::Principal {
        &self.principal
    }

    /// The extension's name.
    pub fn name(&self) -> &str {
        self.principal.name()
    }
}

/// An extension's entry point.
pub type InitFn = fn(&ExtensionContext) -> Result<(), ExtensionError>;
/// An extension's exit routine.
pub type ExitFn = fn(&ExtensionContext);

/// An interface and the fingerprint the extension was built against.
#[repr(C)]
#[derive(Clone, Copy)]
pub struct InterfaceRef {
    /// Crate name, NUL-padded.
    pub name: [u8; MAX_INTERFACE_NAME],
    /// Its fingerprint.
    pub fingerprint: u64,
}

/// The descriptor [`extension!`] places in the `.spindle_ext` section.
///
/// Everything but `init` and `exit` is plain bytes, so the loader can read
/// and check it in the *unlinked* object ([`RawDescriptor::parse`]): name,
/// version and fingerprints are verified before a single byte is linked.
/// `init`/`exit` are filled in by relocations at link time.
#[repr(C)]
pub struct ExtensionDescriptor {
    /// [`DESCRIPTOR_MAGIC`].
    pub magic: [u8; 8],
    /// [`DESCRIPTOR_LAYOUT`].
    pub layout: u32,
    /// How many entries of `interfaces` are used.
    pub interface_count: u32,
    /// Extension name, NUL-padded.
    pub name: [u8; MAX_NAME],
    /// Version, NUL-padded.
    pub version: [u8; MAX_VERSION],
    /// Interfaces and fingerprints.
    pub interfaces: [InterfaceRef; MAX_INTERFACES],
    /// Entry point.
    pub init: InitFn,
    /// Exit routine.
    pub exit: ExitFn,
}

const fn padded<const N: usize>(text: &str) -> [u8; N] {
    let bytes = text.as_bytes();
    assert!(
        bytes.len() <= N,
        "name or version too long for the descriptor"
    );
    let mut out = [0u8; N];
    let mut i = 0;
    while i < bytes.len() {
        out[i] = bytes[i];
        i += 1;
    }
    out
}

impl ExtensionDescriptor {
    /// A descriptor for `name`/`version` naming this SDK's [`INTERFACES`].
    pub const fn new(name: &str, version: &str, init: InitFn, exit: ExitFn) -> Self {
        let mut interfaces = [InterfaceRef {
            name: [0; MAX_INTERFACE_NAME],
            fingerprint: 0,
        }; MAX_INTERFACES];
        let mut i = 0;
        while i < INTERFACES.len() {
            interfaces[i] = InterfaceRef {
                name: padded(INTERFACES[i].0),
                fingerprint: INTERFACES[i].1,
            };
            i += 1;
        }
        Self {
            magic: DESCRIPTOR_MAGIC,
            layout: DESCRIPTOR_LAYOUT,
            interface_count: INTERFACES.len() as u32,
            name: padded(name),
            version: padded(version),
            interfaces,
            init,
            exit,
        }
    }

    /// Size of the descriptor in bytes.
    pub const SIZE: usize = size_of::<Self>();
    /// Offset of `init` (the loader reads the relocated address there).
    pub const INIT_OFFSET: usize = offset_of!(Self, init);
    /// Offset of `exit`.
    pub const EXIT_OFFSET: usize = offset_of!(Self, exit);
}

/// Declares the crate an extension: places its [`ExtensionDescriptor`]
/// (name and version from Cargo, the given init and exit functions, this
/// SDK's interface fingerprints) in the `.spindle_ext` section under the
/// exported symbol [`DESCRIPTOR_SYMBOL`].
#[macro_export]
macro_rules! extension {
    (init: $init:path, exit: $exit:path $(,)?) => {
        #[doc(hidden)]
        #[unsafe(no_mangle)]
        #[unsafe(link_section = ".spindle_ext")]
        pub static SPINDLE_EXTENSION_DESCRIPTOR: $crate::ExtensionDescriptor =
            $crate::ExtensionDescriptor::new(
                env!("CARGO_PKG_NAME"),
                env!("CARGO_PKG_VERSION"),
                $init,
                $exit,
            );
    };
}

/// A descriptor read from raw (unrelocated) bytes.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct RawDescriptor {
    /// Extension name.
    pub name: String,
    /// Version.
    pub version: String,
    /// (interface name, fingerprint) pairs.
    pub interfaces: alloc::vec::Vec<(String, u64)>,
}

/// Why descriptor bytes were refused.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum DescriptorError {
    /// Fewer bytes than a descriptor.
    Truncated {
        /// Bytes present.
        len: usize,
    },
    /// The magic is wrong.
    BadMagic,
    /// A layout this kernel does not know.
    UnknownLayout(u32),
    /// A name, version or interface name is not NUL-padded UTF-8.
    BadString(&'static str),
    /// More interfaces than fit.
    TooManyInterfaces(u32),
}

impl fmt::Display for DescriptorError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Truncated { len } => {
                write!(
                    f,
                    "descriptor is {len} bytes, expected {}",
                    ExtensionDescriptor::SIZE
                )
            }
            Self::BadMagic => write!(f, "descriptor magic is not SPNDLEXT"),
            Self::UnknownLayout(v) => write!(f, "descriptor layout {v} is not {DESCRIPTOR_LAYOUT}"),
            Self::BadString(what) => write!(f, "descriptor {what} is not NUL-padded UTF-8"),
            Self::TooManyInterfaces(n) => {
                write!(f, "descriptor names {n} interfaces (max {MAX_INTERFACES})")
            }
        }
    }
}

fn padded_str(bytes: &[u8], what: &'static str) -> Result<String, DescriptorError> {
    let end = bytes.iter().position(|&b| b == 0).unwrap_or(bytes.len());
    if bytes[end..].iter().any(|&b| b != 0) {
        return Err(DescriptorError::BadString(what));
    }
    core::str::from_utf8(&bytes[..end])
        .map(String::from)
        .map_err(|_| DescriptorError::BadString(what))
}

impl RawDescriptor {
    /// Reads a descriptor from the bytes of an unlinked `.spindle_ext`
    /// section (the `init`/`exit` fields are ignored: they are relocation
    /// targets).
    pub fn parse(bytes: &[u8]) -> Result<Self, DescriptorError> {
        if bytes.len() < ExtensionDescriptor::SIZE {
            return Err(DescriptorError::Truncated { len: bytes.len() });
        }
        let u32_at = |offset: usize| {
            u32::from_le_bytes(bytes[offset..offset + 4].try_into().expect("4 bytes"))
        };
        if bytes[offset_of!(ExtensionDescriptor, magic)..][..8] != DESCRIPTOR_MAGIC {
            return Err(DescriptorError::BadMagic);
        }
        let layout = u32_at(offset_of!(ExtensionDescriptor, layout));
        if layout != DESCRIPTOR_LAYOUT {
            return Err(DescriptorError::UnknownLayout(layout));
        }
        let count = u32_at(offset_of!(ExtensionDescriptor, interface_count));
        if count as usize > MAX_INTERFACES {
            return Err(DescriptorError::TooManyInterfaces(count));
        }
        let name_at = offset_of!(ExtensionDescriptor, name);
        let version_at = offset_of!(ExtensionDescriptor, version);
        let interfaces_at = offset_of!(ExtensionDescriptor, interfaces);
        let entry = size_of::<InterfaceRef>();
        let mut interfaces = alloc::vec::Vec::new();
        for i in 0..count as usize {
            let at = interfaces_at + i * entry;
            let name = padded_str(&bytes[at..at + MAX_INTERFACE_NAME], "interface name")?;
            let fp_at = at + offset_of!(InterfaceRef, fingerprint);
            let fingerprint =
                u64::from_le_bytes(bytes[fp_at..fp_at + 8].try_into().expect("8 bytes"));
            interfaces.push((name, fingerprint));
        }
        Ok(Self {
            name: padded_str(&bytes[name_at..name_at + MAX_NAME], "name")?,
            version: padded_str(&bytes[version_at..version_at + MAX_VERSION], "version")?,
            interfaces,
        })
    }

    /// The first interface whose fingerprint differs from `expected`'s (or
    /// that `expected` lacks), as (name, found, expected-or-None).
    pub fn mismatch(&self, expected: &[(&str, u64)]) -> Option<(String, u64, Option<u64>)> {
        self.interfaces.iter().find_map(|(name, found)| {
            let want = expected.iter().find(|(n, _)| n == name).map(|&(_, fp)| fp);
            (want != Some(*found)).then(|| (name.clone(), *found, want))
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Lays out descriptor bytes by field offsets, as the compiler does.
    fn raw_bytes(name: &str, version: &str, interfaces: &[(&str, u64)]) -> alloc::vec::Vec<u8> {
        let mut bytes = alloc::vec![0u8; ExtensionDescriptor::SIZE];
        bytes[..8].copy_from_slice(&DESCRIPTOR_MAGIC);
        bytes[offset_of!(ExtensionDescriptor, layout)..][..4]
            .copy_from_slice(&DESCRIPTOR_LAYOUT.to_le_bytes());
        bytes[offset_of!(ExtensionDescriptor, interface_count)..][..4]
            .copy_from_slice(&(interfaces.len() as u32).to_le_bytes());
        bytes[offset_of!(ExtensionDescriptor, name)..][..name.len()]
            .copy_from_slice(name.as_bytes());
        bytes[offset_of!(ExtensionDescriptor, version)..][..version.len()]
            .copy_from_slice(version.as_bytes());
        for (i, (iface, fp)) in interfaces.iter().enumerate() {
            let at = offset_of!(ExtensionDescriptor, interfaces) + i * size_of::<InterfaceRef>();
            bytes[at..at + iface.len()].copy_from_slice(iface.as_bytes());
            bytes[at + offset_of!(InterfaceRef, fingerprint)..][..8]
                .copy_from_slice(&fp.to_le_bytes());
        }
        bytes
    }

    #[test]
    fn parses_what_the_layout_says() {
        let raw = RawDescriptor::parse(&raw_bytes("hello", "0.1.0", &INTERFACES)).unwrap();
        assert_eq!(raw.name, "hello");
        assert_eq!(raw.version, "0.1.0");
        assert_eq!(raw.interfaces.len(), INTERFACES.len());
        assert_eq!(raw.mismatch(&INTERFACES), None);
    }

    #[test]
    fn a_changed_or_unknown_fingerprint_is_reported() {
        let mut stale = INTERFACES;
        stale[1].1 ^= 1;
        let raw = RawDescriptor::parse(&raw_bytes("old", "0.0.1", &stale)).unwrap();
        assert_eq!(
            raw.mismatch(&INTERFACES),
            Some(("dispatcher".into(), stale[1].1, Some(INTERFACES[1].1)))
        );
        let raw = RawDescriptor::parse(&raw_bytes("odd", "1", &[("net", 5)])).unwrap();
        assert_eq!(raw.mismatch(&INTERFACES), Some(("net".into(), 5, None)));
    }

    #[test]
    fn malformed_descriptors_are_refused() {
        let good = raw_bytes("x", "1", &INTERFACES);
        assert_eq!(
            RawDescriptor::parse(&good[..100]),
            Err(DescriptorError::Truncated { len: 100 })
        );
        let mut bad = good.clone();
        bad[0] = b'X';
        assert_eq!(RawDescriptor::parse(&bad), Err(DescriptorError::BadMagic));
        let mut bad = good.clone();
        bad[offset_of!(ExtensionDescriptor, layout)] = 9;
        assert_eq!(
            RawDescriptor::parse(&bad),
            Err(DescriptorError::UnknownLayout(9))
        );
        let mut bad = good.clone();
        bad[offset_of!(ExtensionDescriptor, interface_count)] = 99;
        assert_eq!(
            RawDescriptor::parse(&bad),
            Err(DescriptorError::TooManyInterfaces(99))
        );
        let mut bad = good;
        // A byte after the NUL padding: not a padded string.
        bad[offset_of!(ExtensionDescriptor, name) + 10] = b'z';
        assert_eq!(
            RawDescriptor::parse(&bad),
            Err(DescriptorError::BadString("name"))
        );
    }

    #[test]
    fn the_log_macros_reach_the_kernel_logger() {
        use std::sync::Mutex;
        static SEEN: Mutex<Vec<String>> = Mutex::new(Vec::new());
        struct Capture;
        impl ::log::Log for Capture {
            fn enabled(&self, _: &::log::Metadata<'_>) -> bool {
                true
            }
            fn log(&self, record: &::log::Record<'_>) {
                SEEN.lock().unwrap().push(alloc::format!(
                    "{} {} {}",
                    record.level(),
                    record.target(),
                    record.args()
                ));
            }
            fn flush(&self) {}
        }
        ::log::set_logger(&Capture).unwrap();
        ::log::set_max_level(::log::LevelFilter::Trace);
        crate::log::info!("{} frames", 3);
        crate::log::error!("bad");
        assert_eq!(
            *SEEN.lock().unwrap(),
            [
                "INFO spindle_sdk::tests 3 frames",
                "ERROR spindle_sdk::tests bad"
            ]
        );
    }

    #[test]
    fn fingerprints_differ_between_interfaces() {
        let mut seen: alloc::vec::Vec<u64> = INTERFACES.iter().map(|&(_, fp)| fp).collect();
        seen.sort();
        seen.dedup();
        assert_eq!(seen.len(), INTERFACES.len());
    }
}
