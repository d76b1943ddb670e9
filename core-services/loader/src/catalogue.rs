//! The catalogue: every extension object the kernel can load.
//!
//! Objects arrive from the boot ramdisk ([`Catalogue::from_ramdisk`],
//! borrowed: the ramdisk stays mapped for ever) or at run time
//! ([`Catalogue::push`], owned: a live push over a second channel). The
//! manifest's fields are not trusted: loading verifies each object's
//! signature over its name and digest before reading anything else.

use alloc::string::{String, ToString};
use alloc::vec::Vec;
use core::fmt;

use spindle_package::{Digest256, Entry, Kind, Ramdisk, VerifyError};

/// Where an object came from.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Origin {
    /// The boot ramdisk.
    Ramdisk,
    /// Pushed while the kernel runs.
    Pushed,
}

/// An object's bytes: borrowed from the ramdisk or owned.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum ObjectBytes {
    /// Memory that lives as long as the kernel (the ramdisk).
    Static(&'static [u8]),
    /// Received at run time.
    Owned(Vec<u8>),
}

impl ObjectBytes {
    /// The bytes.
    pub fn as_slice(&self) -> &[u8] {
        match self {
            Self::Static(bytes) => bytes,
            Self::Owned(bytes) => bytes,
        }
    }
}

/// One object of the catalogue.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct CatalogueEntry {
    /// Extension name (also its domain's name); the signature covers it.
    pub name: String,
    /// Version from the manifest.
    pub version: String,
    /// Regular extension or test fixture.
    pub kind: Kind,
    /// Load at boot.
    pub autoload: bool,
    /// Ramdisk or pushed.
    pub origin: Origin,
    /// The object (an ELF relocatable object or an archive of them).
    pub object: ObjectBytes,
    /// BLAKE3 digest of the object as recorded by the build.
    pub digest: Digest256,
    /// Ed25519 signature by the build, if signed.
    pub signature: Option<[u8; 64]>,
}

impl CatalogueEntry {
    /// An entry for a ramdisk entry (the bytes stay borrowed).
    pub fn from_ramdisk_entry(entry: &Entry<'static>) -> Self {
        Self {
            name: entry.name.to_string(),
            version: entry.version.to_string(),
            kind: entry.kind,
            autoload: entry.autoload,
            origin: Origin::Ramdisk,
            object: ObjectBytes::Static(entry.object),
            digest: entry.digest,
            signature: entry.signature,
        }
    }

    /// The object's bytes.
    pub fn object(&self) -> &[u8] {
        self.object.as_slice()
    }

    /// Checks the signature: signed, digest matches the bytes, signature
    /// verifies under `public_key` (see [`Entry::verify`]).
    pub fn verify(&self, public_key: &[u8; 32]) -> Result<(), VerifyError> {
        Entry {
            name: &self.name,
            version: &self.version,
            kind: self.kind,
            autoload: self.autoload,
            object: self.object(),
            digest: self.digest,
            signature: self.signature,
        }
        .verify(public_key)
    }
}

/// Why [`Catalogue::push`] refused an entry.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum CatalogueError {
    /// An entry of that name exists and replacing was not asked for.
    Exists(String),
    /// Replacing was asked for, but an extension of that name is loaded
    /// (unload it first).
    Loaded(String),
    /// The catalogue is full.
    Full {
        /// Its capacity.
        capacity: usize,
    },
}

impl fmt::Display for CatalogueError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Exists(name) => write!(f, "the catalogue already has '{name}'"),
            Self::Loaded(name) => write!(f, "'{name}' is loaded: unload it before replacing it"),
            Self::Full { capacity } => write!(f, "the catalogue is full ({capacity} objects)"),
        }
    }
}

/// The objects available for loading, by name.
#[derive(Clone, Debug, Default)]
pub struct Catalogue {
    entries: Vec<CatalogueEntry>,
    capacity: usize,
}

impl Catalogue {
    /// The ramdisk's objects, with room for `extra` pushed ones.
    pub fn from_ramdisk(ramdisk: &Ramdisk<'static>, extra: usize) -> Self {
        let capacity = ramdisk.entries().len() + extra;
        let mut entries = Vec::with_capacity(capacity);
        entries.extend(
            ramdisk
                .entries()
                .iter()
                .map(CatalogueEntry::from_ramdisk_entry),
        );
        Self { entries, capacity }
    }

    /// An empty catalogue with room for `capacity` objects.
    pub fn with_capacity(capacity: usize) -> Self {
        Self {
            entries: Vec::with_capacity(capacity),
            capacity,
        }
    }

    /// Adds an object. An entry of the same name is replaced only if
    /// `replace` (the old entry is returned); the caller unloads a loaded
    /// extension of that name first. Nothing is verified here: loading does.
    pub fn push(
        &mut self,
        entry: CatalogueEntry,
        replace: bool,
    ) -> Result<Option<CatalogueEntry>, CatalogueError> {
        if let Some(old) = self.entries.iter_mut().find(|e| e.name == entry.name) {
            if !replace {
                return Err(CatalogueError::Exists(entry.name));
            }
            return Ok(Some(core::mem::replace(old, entry)));
        }
        if self.entries.len() >= self.capacity {
            return Err(CatalogueError::Full {
                capacity: self.capacity,
            });
        }
        self.entries.push(entry);
        Ok(None)
    }

    /// Takes the entry called `name` out (a push whose load failed is
    /// withdrawn this way, leaving the catalogue as it was).
    pub fn remove(&mut self, name: &str) -> Option<CatalogueEntry> {
        let index = self.entries.iter().position(|e| e.name == name)?;
        Some(self.entries.remove(index))
    }

    /// The entry called `name`.
    pub fn get(&self, name: &str) -> Option<&CatalogueEntry> {
        self.entries.iter().find(|e| e.name == name)
    }

    /// Every entry, in arrival order.
    pub fn entries(&self) -> &[CatalogueEntry] {
        &self.entries
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn entry(name: &str, byte: u8) -> CatalogueEntry {
        CatalogueEntry {
            name: name.into(),
            version: "1".into(),
            kind: Kind::Extension,
            autoload: false,
            origin: Origin::Pushed,
            object: ObjectBytes::Owned(alloc::vec![byte; 4]),
            digest: [0; 32],
            signature: None,
        }
    }

    #[test]
    fn push_refuses_a_clash_unless_replacing_and_respects_capacity() {
        let mut catalogue = Catalogue::with_capacity(2);
        assert_eq!(catalogue.push(entry("a", 1), false), Ok(None));
        assert_eq!(
            catalogue.push(entry("a", 2), false),
            Err(CatalogueError::Exists("a".into()))
        );
        assert_eq!(catalogue.get("a").unwrap().object(), [1; 4]);
        assert_eq!(catalogue.push(entry("a", 3), true), Ok(Some(entry("a", 1))));
        assert_eq!(catalogue.get("a").unwrap().object(), [3; 4]);
        assert_eq!(catalogue.push(entry("b", 4), false), Ok(None));
        assert_eq!(
            catalogue.push(entry("c", 5), false),
            Err(CatalogueError::Full { capacity: 2 })
        );
        assert_eq!(catalogue.entries().len(), 2);
        assert_eq!(catalogue.remove("a"), Some(entry("a", 3)));
        assert_eq!(catalogue.remove("a"), None);
        assert_eq!(catalogue.push(entry("c", 5), false), Ok(None));
    }

    #[test]
    fn an_unsigned_entry_fails_verification_first() {
        assert_eq!(entry("a", 1).verify(&[0; 32]), Err(VerifyError::Unsigned));
    }
}
