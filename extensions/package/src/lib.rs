//! Extension packaging: how extension objects travel from the build to the
//! kernel, and how the kernel knows they came from the trusted build.
//!
//! SPIN trusted its compiler; Spindle trusts its build pipeline. `cargo
//! xtask` compiles every extension with `-F unsafe-code` against the allowed
//! crates only, then signs the object with an Ed25519 key that the build
//! generates and keeps in `target/` (the secret never leaves it). The kernel
//! embeds only the public key and refuses any object whose signature does
//! not verify — before parsing a single byte of it.
//!
//! # Ramdisk format
//!
//! The bootloader hands the kernel one ramdisk: a text header and manifest
//! followed by the objects.
//!
//! ```text
//! SPINDLE-RAMDISK 1\n
//! manifest-bytes 312\n
//! name=hello version=0.1.0 kind=extension autoload=no offset=4096 size=23456 blake3=<64 hex> signature=<128 hex | ->\n
//! ...                                      (one line per object)
//! <objects, at the given offsets from the start, 16-byte aligned>
//! ```
//!
//! The manifest is plain text so that `strings` shows it. Its fields are
//! not trusted: the signature covers the extension's name and the BLAKE3
//! digest of its bytes ([`signing_message`]); `autoload` and `kind` are policy.
#![cfg_attr(not(test), no_std)]
#![forbid(unsafe_code)]
#![warn(missing_docs)]

extern crate alloc;

pub mod bench_set;
pub mod bundle;
pub mod deflated;
pub mod push;

use alloc::format;
use alloc::string::String;
use alloc::vec::Vec;
use core::fmt;

use ed25519_dalek::{Signature, Signer, SigningKey, VerifyingKey};

/// First line of every ramdisk.
pub const MAGIC: &str = "SPINDLE-RAMDISK 1\n";
/// Domain separator of the signed message.
const SIGNING_CONTEXT: &[u8] = b"spindle-extension-v2\0";
/// Objects start at offsets that are multiples of this.
const OBJECT_ALIGN: usize = 16;

/// A 256-bit BLAKE3 digest.
pub type Digest256 = [u8; 32];

/// What an object is for.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Kind {
    /// A regular extension.
    Extension,
    /// A deliberately bad object used by the tests (malformed, hostile, ...).
    Fixture,
}

impl Kind {
    fn as_str(self) -> &'static str {
        match self {
            Self::Extension => "extension",
            Self::Fixture => "fixture",
        }
    }
}

/// One object in the ramdisk, as the manifest describes it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Entry<'a> {
    /// Extension name (also its domain's name).
    pub name: &'a str,
    /// Its version.
    pub version: &'a str,
    /// Regular extension or test fixture.
    pub kind: Kind,
    /// Load at boot.
    pub autoload: bool,
    /// The object's bytes (ELF relocatable).
    pub object: &'a [u8],
    /// [`object_digest`] of the object as recorded at build time.
    pub digest: Digest256,
    /// Ed25519 signature of [`signing_message`], if the object was signed.
    pub signature: Option<[u8; 64]>,
}

/// A malformed ramdisk.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum FormatError {
    /// The first line is not [`MAGIC`].
    BadMagic,
    /// The header or a manifest line is malformed; says which and why.
    BadManifest(String),
    /// An entry's bytes lie outside the ramdisk.
    ObjectOutOfBounds {
        /// The entry.
        name: String,
    },
    /// Two entries have the same name.
    DuplicateName(String),
}

impl fmt::Display for FormatError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::BadMagic => write!(f, "not a Spindle ramdisk (bad magic)"),
            Self::BadManifest(why) => write!(f, "bad ramdisk manifest: {why}"),
            Self::ObjectOutOfBounds { name } => {
                write!(f, "object of '{name}' lies outside the ramdisk")
            }
            Self::DuplicateName(name) => write!(f, "two ramdisk entries are named '{name}'"),
        }
    }
}

/// Why an object's signature check failed.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum VerifyError {
    /// The manifest carries no signature for it.
    Unsigned,
    /// Its bytes no longer hash to the digest the build recorded.
    DigestMismatch,
    /// The signature does not verify under the kernel's public key.
    BadSignature,
    /// The embedded public key is not a valid Ed25519 point.
    BadPublicKey,
}

impl fmt::Display for VerifyError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Self::Unsigned => "object is not signed",
            Self::DigestMismatch => {
                "object was modified after it was built (BLAKE3 digest mismatch)"
            }
            Self::BadSignature => "signature does not verify with the kernel's build key",
            Self::BadPublicKey => "the kernel's public key is invalid",
        })
    }
}

/// The digest an object is recorded and signed under: BLAKE3 of `bytes`.
///
/// BLAKE3 rather than SHA-256 because the kernel hashes the whole object
/// at every load: without SIMD (the kernel target has none) it takes about
/// a third of SHA-256's instructions per byte.
pub fn object_digest(bytes: &[u8]) -> Digest256 {
    blake3::hash(bytes).into()
}

/// The message an extension's signature covers: a context string, the
/// extension's name, and the digest of its object.
pub fn signing_message(name: &str, digest: &Digest256) -> Vec<u8> {
    let mut message = Vec::with_capacity(SIGNING_CONTEXT.len() + name.len() + 1 + 32);
    message.extend_from_slice(SIGNING_CONTEXT);
    message.extend_from_slice(name.as_bytes());
    message.push(0);
    message.extend_from_slice(digest);
    message
}

/// The public key matching a 32-byte Ed25519 secret key.
pub fn public_key(secret: &[u8; 32]) -> [u8; 32] {
    SigningKey::from_bytes(secret).verifying_key().to_bytes()
}

/// Signs `object` as extension `name` (build side).
pub fn sign(secret: &[u8; 32], name: &str, object: &[u8]) -> [u8; 64] {
    let key = SigningKey::from_bytes(secret);
    key.sign(&signing_message(name, &object_digest(object)))
        .to_bytes()
}

impl Entry<'_> {
    /// Checks, in this order, that the entry is signed, that its bytes still
    /// hash to the recorded digest, and that the signature verifies under
    /// `public_key`. Nothing else about the object is trusted before this.
    pub fn verify(&self, public_key: &[u8; 32]) -> Result<(), VerifyError> {
        let signature = self.signature.ok_or(VerifyError::Unsigned)?;
        let digest = object_digest(self.object);
        if digest != self.digest {
            return Err(VerifyError::DigestMismatch);
        }
        let key = VerifyingKey::from_bytes(public_key).map_err(|_| VerifyError::BadPublicKey)?;
        key.verify_strict(
            &signing_message(self.name, &digest),
            &Signature::from_bytes(&signature),
        )
        .map_err(|_| VerifyError::BadSignature)
    }
}

/// A parsed ramdisk: the entries, borrowing the ramdisk's bytes.
#[derive(Clone, Debug, Default)]
pub struct Ramdisk<'a> {
    entries: Vec<Entry<'a>>,
}

impl<'a> Ramdisk<'a> {
    /// Parses and bounds-checks the header and manifest.
    pub fn parse(bytes: &'a [u8]) -> Result<Self, FormatError> {
        let rest = bytes
            .strip_prefix(MAGIC.as_bytes())
            .ok_or(FormatError::BadMagic)?;
        let header_end = rest
            .iter()
            .position(|&b| b == b'\n')
            .ok_or_else(|| bad("no manifest-bytes line"))?;
        let header =
            core::str::from_utf8(&rest[..header_end]).map_err(|_| bad("header is not UTF-8"))?;
        let manifest_len: usize = header
            .strip_prefix("manifest-bytes ")
            .and_then(|n| n.parse().ok())
            .ok_or_else(|| bad("expected 'manifest-bytes N'"))?;
        let manifest = rest
            .get(header_end + 1..)
            .and_then(|m| m.get(..manifest_len))
            .ok_or_else(|| bad("manifest runs past the end"))?;
        let manifest = core::str::from_utf8(manifest).map_err(|_| bad("manifest is not UTF-8"))?;
        let mut entries: Vec<Entry<'a>> = Vec::new();
        for (number, line) in manifest
            .lines()
            .enumerate()
            .filter(|(_, l)| !l.trim().is_empty())
        {
            let entry = parse_line(bytes, line)
                .map_err(|why| bad(&format!("line {}: {why}", number + 1)))??;
            if entries.iter().any(|e| e.name == entry.name) {
                return Err(FormatError::DuplicateName(entry.name.into()));
            }
            entries.push(entry);
        }
        Ok(Self { entries })
    }

    /// All entries, in manifest order.
    pub fn entries(&self) -> &[Entry<'a>] {
        &self.entries
    }

    /// The entry called `name`.
    pub fn get(&self, name: &str) -> Option<&Entry<'a>> {
        self.entries.iter().find(|e| e.name == name)
    }
}

fn bad(why: &str) -> FormatError {
    FormatError::BadManifest(why.into())
}

/// Parses one manifest line. The outer error is a syntax problem (reported
/// with the line number), the inner one a bounds problem.
fn parse_line<'a>(
    bytes: &'a [u8],
    line: &'a str,
) -> Result<Result<Entry<'a>, FormatError>, String> {
    let field = |key: &str| -> Result<&'a str, String> {
        line.split_whitespace()
            .find_map(|kv| {
                kv.split_once('=')
                    .filter(|(k, _)| *k == key)
                    .map(|(_, v)| v)
            })
            .ok_or_else(|| format!("missing field '{key}'"))
    };
    let number = |key: &str| -> Result<usize, String> {
        field(key)?
            .parse()
            .map_err(|_| format!("field '{key}' is not a number"))
    };
    let name = field("name")?;
    if name.is_empty()
        || !name
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
    {
        return Err(format!("bad name '{name}'"));
    }
    let kind = match field("kind")? {
        "extension" => Kind::Extension,
        "fixture" => Kind::Fixture,
        other => return Err(format!("unknown kind '{other}'")),
    };
    let autoload = match field("autoload")? {
        "yes" => true,
        "no" => false,
        other => return Err(format!("autoload must be yes or no, not '{other}'")),
    };
    let digest = hex_array::<32>(field("blake3")?).ok_or("blake3 is not 64 hex digits")?;
    let signature = match field("signature")? {
        "-" => None,
        hex => Some(hex_array::<64>(hex).ok_or("signature is not 128 hex digits")?),
    };
    let (offset, size) = (number("offset")?, number("size")?);
    let object = offset
        .checked_add(size)
        .and_then(|end| bytes.get(offset..end));
    Ok(match object {
        Some(object) => Ok(Entry {
            name,
            version: field("version")?,
            kind,
            autoload,
            object,
            digest,
            signature,
        }),
        None => Err(FormatError::ObjectOutOfBounds { name: name.into() }),
    })
}

fn hex_array<const N: usize>(hex: &str) -> Option<[u8; N]> {
    if hex.len() != 2 * N {
        return None;
    }
    let mut out = [0u8; N];
    for (i, byte) in out.iter_mut().enumerate() {
        *byte = u8::from_str_radix(hex.get(2 * i..2 * i + 2)?, 16).ok()?;
    }
    Some(out)
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

/// Builds a ramdisk (build side).
#[derive(Default)]
pub struct RamdiskWriter {
    lines: Vec<(String, Vec<u8>)>,
}

/// What to put in one manifest line.
pub struct NewEntry<'a> {
    /// Extension name.
    pub name: &'a str,
    /// Its version.
    pub version: &'a str,
    /// Extension or fixture.
    pub kind: Kind,
    /// Load at boot.
    pub autoload: bool,
    /// The object.
    pub object: Vec<u8>,
    /// The digest to record (normally `object_digest(&object)`; a fixture
    /// may record a different one to simulate tampering).
    pub digest: Digest256,
    /// The signature, or `None` for an unsigned object.
    pub signature: Option<[u8; 64]>,
}

impl RamdiskWriter {
    /// An empty ramdisk.
    pub fn new() -> Self {
        Self::default()
    }

    /// Adds one object.
    pub fn add(&mut self, entry: NewEntry<'_>) {
        let signature = entry.signature.map_or_else(|| "-".into(), |s| hex(&s));
        let line = format!(
            "name={} version={} kind={} autoload={} offset={{offset}} size={} blake3={} signature={}\n",
            entry.name,
            entry.version,
            entry.kind.as_str(),
            if entry.autoload { "yes" } else { "no" },
            entry.object.len(),
            hex(&entry.digest),
            signature
        );
        self.lines.push((line, entry.object));
    }

    /// Lays out the ramdisk. Offsets are fixed-width so the manifest's size
    /// does not depend on them.
    pub fn finish(self) -> Vec<u8> {
        let width = 12;
        let manifest_len: usize = self
            .lines
            .iter()
            .map(|(l, _)| l.len() - "{offset}".len() + width)
            .sum();
        let header = format!("{MAGIC}manifest-bytes {manifest_len}\n");
        let mut offset = (header.len() + manifest_len).next_multiple_of(OBJECT_ALIGN);
        let mut manifest = String::new();
        let mut placed = Vec::new();
        for (line, object) in &self.lines {
            manifest.push_str(&line.replace("{offset}", &format!("{offset:0width$}")));
            placed.push((offset, object));
            offset = (offset + object.len()).next_multiple_of(OBJECT_ALIGN);
        }
        let mut out = Vec::with_capacity(offset);
        out.extend_from_slice(header.as_bytes());
        out.extend_from_slice(manifest.as_bytes());
        for (at, object) in placed {
            out.resize(at, 0);
            out.extend_from_slice(object);
        }
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const SECRET: [u8; 32] = [7; 32];

    fn entry(name: &str, object: &[u8], signed: bool) -> NewEntry<'static> {
        NewEntry {
            name: Box::leak(name.to_owned().into_boxed_str()),
            version: "1.2.3",
            kind: Kind::Extension,
            autoload: false,
            object: object.to_vec(),
            digest: object_digest(object),
            signature: signed.then(|| sign(&SECRET, name, object)),
        }
    }

    fn two_entry_ramdisk() -> Vec<u8> {
        let mut writer = RamdiskWriter::new();
        writer.add(entry("hello", b"\x7fELF hello object", true));
        let mut fixture = entry("bad", b"garbage", false);
        fixture.kind = Kind::Fixture;
        fixture.autoload = true;
        writer.add(fixture);
        writer.finish()
    }

    #[test]
    fn round_trip_keeps_every_field() {
        let bytes = two_entry_ramdisk();
        let ramdisk = Ramdisk::parse(&bytes).unwrap();
        assert_eq!(ramdisk.entries().len(), 2);
        let hello = ramdisk.get("hello").unwrap();
        assert_eq!(hello.object, b"\x7fELF hello object");
        assert_eq!(hello.version, "1.2.3");
        assert_eq!((hello.kind, hello.autoload), (Kind::Extension, false));
        let bad = ramdisk.get("bad").unwrap();
        assert_eq!(
            (bad.kind, bad.autoload, bad.signature),
            (Kind::Fixture, true, None)
        );
        assert_eq!(bad.object, b"garbage");
        assert!(ramdisk.get("nope").is_none());
    }

    #[test]
    fn objects_are_aligned() {
        let bytes = two_entry_ramdisk();
        let ramdisk = Ramdisk::parse(&bytes).unwrap();
        for e in ramdisk.entries() {
            let offset = e.object.as_ptr() as usize - bytes.as_ptr() as usize;
            assert_eq!(offset % OBJECT_ALIGN, 0, "{} at {offset}", e.name);
        }
    }

    #[test]
    fn signed_entry_verifies_and_each_attack_is_named() {
        let public = public_key(&SECRET);
        let bytes = two_entry_ramdisk();
        let ramdisk = Ramdisk::parse(&bytes).unwrap();
        assert_eq!(ramdisk.get("hello").unwrap().verify(&public), Ok(()));
        assert_eq!(
            ramdisk.get("bad").unwrap().verify(&public),
            Err(VerifyError::Unsigned)
        );

        // Tampered: one byte of the object changed after signing.
        let mut hello = ramdisk.get("hello").unwrap().clone();
        let mut tampered = hello.object.to_vec();
        tampered[5] ^= 1;
        hello.object = &tampered;
        assert_eq!(hello.verify(&public), Err(VerifyError::DigestMismatch));

        // Tampered object with its digest recomputed: the signature fails.
        hello.digest = object_digest(&tampered);
        assert_eq!(hello.verify(&public), Err(VerifyError::BadSignature));

        // Signed by another key.
        let other = public_key(&[9; 32]);
        assert_eq!(
            ramdisk.get("hello").unwrap().verify(&other),
            Err(VerifyError::BadSignature)
        );

        // A signature is bound to the name: renaming breaks it.
        let mut renamed = ramdisk.get("hello").unwrap().clone();
        renamed.name = "hellp";
        assert_eq!(renamed.verify(&public), Err(VerifyError::BadSignature));
    }

    #[test]
    fn malformed_ramdisks_are_rejected_with_a_reason() {
        assert_eq!(Ramdisk::parse(b"ELF").err(), Some(FormatError::BadMagic));
        let bytes = two_entry_ramdisk();
        // Truncated: the second object no longer fits.
        let cut = &bytes[..bytes.len() - 3];
        assert_eq!(
            Ramdisk::parse(cut).err(),
            Some(FormatError::ObjectOutOfBounds { name: "bad".into() })
        );
        // Bad manifest length.
        let mut text = bytes.clone();
        let at = MAGIC.len() + "manifest-bytes ".len();
        text[at] = b'x';
        assert!(matches!(
            Ramdisk::parse(&text),
            Err(FormatError::BadManifest(_))
        ));
        // A missing field is named.
        let broken = String::from_utf8_lossy(&bytes).replace("kind=extension ", "");
        let err = Ramdisk::parse(broken.as_bytes()).err().unwrap();
        assert!(format!("{err}").contains("missing field 'kind'"), "{err}");
    }

    #[test]
    fn duplicate_names_are_rejected() {
        let mut writer = RamdiskWriter::new();
        writer.add(entry("twin", b"a", true));
        writer.add(entry("twin", b"b", true));
        assert_eq!(
            Ramdisk::parse(&writer.finish()).err(),
            Some(FormatError::DuplicateName("twin".into()))
        );
    }

    #[test]
    fn hex_parsing_rejects_wrong_lengths_and_digits() {
        assert_eq!(hex_array::<2>("0aff"), Some([0x0a, 0xff]));
        assert_eq!(hex_array::<2>("0af"), None);
        assert_eq!(hex_array::<2>("0afg"), None);
    }
}
