//! Bundles: an extension and the crates it carries, as one signed object.
//!
//! An extension that depends on crates.io libraries is shipped as a GNU
//! `ar` archive that the run-time linker (`domains`) links as one unit:
//!
//! ```text
//! !<arch>
//! spindle-crates          the crate list (text, below); always the first member
//! //                      GNU long-name table, when a member name is long
//! stats-0.1.0.o           the extension's own object
//! heapless-0.9.4.o        one object per crate it carries
//! libm-0.2.16.o           ...
//! ```
//!
//! The crate list says which crates the object carries and which it
//! imports, with their versions, one tab-separated line each:
//!
//! ```text
//! extension  stats        0.1.0
//! carries    heapless     0.9.4   vetted
//! carries    crc          3.4.0   safe
//! imports    spindle-sdk  0.1.0   kernel
//! imports    counter      0.1.0   extension
//! ```
//!
//! `vetted`: listed in the repository's vetted list (`extensions/vetted.toml`);
//! `safe`: compiled under `-F unsafe-code` and free of `unsafe`;
//! `kernel`: linked from the kernel's public domain; `extension`: from
//! another extension's domain. The list lives *inside* the signed bytes, so
//! what `ext info` shows is covered by the signature, unlike the ramdisk
//! manifest. An extension with no crates to carry may still be a plain ELF
//! object (no list).

use alloc::format;
use alloc::string::{String, ToString};
use alloc::vec::Vec;
use core::fmt;

/// Name of the crate-list member.
pub const CRATE_LIST_MEMBER: &str = "spindle-crates";
/// Largest crate list accepted.
pub const MAX_CRATE_LIST: usize = 64 << 10;
/// Most crates one list may name.
pub const MAX_CRATES: usize = 512;

const AR_MAGIC: &[u8] = b"!<arch>\n";
const HEADER: usize = 60;

/// How a carried crate earned its place.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Trust {
    /// Listed, with version and checksum, in the vetted list.
    Vetted,
    /// Compiled under `-F unsafe-code`, no `unsafe` in its sources.
    Safe,
}

/// Where an imported crate's code lives at run time.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Provider {
    /// The kernel's public domain (`SpinPublic`).
    Kernel,
    /// Another extension's domain (it must be loaded first).
    Extension,
}

/// What a crate is to the bundle.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Role {
    /// The extension's own crate.
    Extension,
    /// Linked into the extension's domain, private to it.
    Carried(Trust),
    /// Linked against, not carried.
    Imported(Provider),
}

/// One line of the crate list.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct CrateRecord {
    /// Its role.
    pub role: Role,
    /// Package name.
    pub name: String,
    /// Version.
    pub version: String,
}

impl CrateRecord {
    /// A record.
    pub fn new(role: Role, name: &str, version: &str) -> Self {
        Self {
            role,
            name: name.to_string(),
            version: version.to_string(),
        }
    }
}

impl fmt::Display for CrateRecord {
    /// The list's line format, without the newline.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let (role, detail) = match self.role {
            Role::Extension => ("extension", None),
            Role::Carried(Trust::Vetted) => ("carries", Some("vetted")),
            Role::Carried(Trust::Safe) => ("carries", Some("safe")),
            Role::Imported(Provider::Kernel) => ("imports", Some("kernel")),
            Role::Imported(Provider::Extension) => ("imports", Some("extension")),
        };
        write!(f, "{role}\t{}\t{}", self.name, self.version)?;
        if let Some(detail) = detail {
            write!(f, "\t{detail}")?;
        }
        Ok(())
    }
}

/// A malformed bundle.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum BundleError {
    /// The archive's structure is broken (a header, a size, a name).
    Archive(&'static str),
    /// An archive without the crate list as its first member.
    NoCrateList,
    /// The crate list is too long or names too many crates.
    TooLarge,
    /// A line of the crate list is malformed (1-based line number).
    BadLine(usize),
}

impl fmt::Display for BundleError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Archive(what) => write!(f, "malformed bundle archive: {what}"),
            Self::NoCrateList => {
                write!(f, "archive has no {CRATE_LIST_MEMBER} member first")
            }
            Self::TooLarge => write!(
                f,
                "crate list exceeds {MAX_CRATE_LIST} bytes or {MAX_CRATES} crates"
            ),
            Self::BadLine(n) => write!(f, "crate list line {n} is malformed"),
        }
    }
}

/// The crate list as text.
pub fn crate_list_text(crates: &[CrateRecord]) -> String {
    crates.iter().map(|c| format!("{c}\n")).collect()
}

/// Parses a crate list.
pub fn parse_crate_list(text: &[u8]) -> Result<Vec<CrateRecord>, BundleError> {
    if text.len() > MAX_CRATE_LIST {
        return Err(BundleError::TooLarge);
    }
    let text = core::str::from_utf8(text).map_err(|_| BundleError::BadLine(1))?;
    let mut crates = Vec::new();
    for (i, line) in text.lines().enumerate().filter(|(_, l)| !l.is_empty()) {
        if crates.len() == MAX_CRATES {
            return Err(BundleError::TooLarge);
        }
        let bad = BundleError::BadLine(i + 1);
        let fields: Vec<&str> = line.split('\t').collect();
        let role = match fields[..] {
            ["extension", _, _] => Role::Extension,
            ["carries", _, _, "vetted"] => Role::Carried(Trust::Vetted),
            ["carries", _, _, "safe"] => Role::Carried(Trust::Safe),
            ["imports", _, _, "kernel"] => Role::Imported(Provider::Kernel),
            ["imports", _, _, "extension"] => Role::Imported(Provider::Extension),
            _ => return Err(bad),
        };
        let (name, version) = (fields[1], fields[2]);
        if name.is_empty() || version.is_empty() {
            return Err(bad);
        }
        crates.push(CrateRecord::new(role, name, version));
    }
    Ok(crates)
}

/// Writes a bundle: the crate list, then `objects` (name, bytes) in order.
/// Names longer than 15 bytes go through a GNU long-name table.
pub fn write_bundle(crates: &[CrateRecord], objects: &[(&str, &[u8])]) -> Vec<u8> {
    let list = crate_list_text(crates);
    let mut long_names = String::new();
    let mut header_names = Vec::with_capacity(objects.len());
    for (name, _) in objects {
        if name.len() <= 15 {
            header_names.push(format!("{name}/"));
        } else {
            header_names.push(format!("/{}", long_names.len()));
            long_names.push_str(name);
            long_names.push_str("/\n");
        }
    }
    let mut out = AR_MAGIC.to_vec();
    push_member(&mut out, &format!("{CRATE_LIST_MEMBER}/"), list.as_bytes());
    if !long_names.is_empty() {
        push_member(&mut out, "//", long_names.as_bytes());
    }
    for (header_name, (_, bytes)) in header_names.iter().zip(objects) {
        push_member(&mut out, header_name, bytes);
    }
    out
}

fn push_member(out: &mut Vec<u8>, name: &str, data: &[u8]) {
    // name(16) mtime(12) uid(6) gid(6) mode(8) size(10) magic(2); the
    // long-name table's header leaves mtime..mode blank, as GNU ar does.
    let header = if name == "//" {
        format!("{name:<16}{:<32}{:<10}`\n", "", data.len())
    } else {
        format!(
            "{name:<16}{:<12}{:<6}{:<6}{:<8}{:<10}`\n",
            0,
            0,
            0,
            644,
            data.len()
        )
    };
    debug_assert_eq!(header.len(), HEADER);
    out.extend_from_slice(header.as_bytes());
    out.extend_from_slice(data);
    if out.len() % 2 == 1 {
        out.push(b'\n');
    }
}

/// The crate list of a bundle: `Ok(None)` if `bytes` is not an archive
/// (a plain object carries no list), the parsed list if its first member
/// is one, an error otherwise.
pub fn crate_list(bytes: &[u8]) -> Result<Option<Vec<CrateRecord>>, BundleError> {
    let Some(rest) = bytes.strip_prefix(AR_MAGIC) else {
        return Ok(None);
    };
    let header = rest
        .get(..HEADER)
        .ok_or(BundleError::Archive("truncated member header"))?;
    if &header[58..60] != b"`\n" {
        return Err(BundleError::Archive("bad member header"));
    }
    let name = core::str::from_utf8(&header[..16])
        .map_err(|_| BundleError::Archive("member name is not UTF-8"))?
        .trim_end();
    if name.strip_suffix('/') != Some(CRATE_LIST_MEMBER) {
        return Err(BundleError::NoCrateList);
    }
    let size: usize = core::str::from_utf8(&header[48..58])
        .ok()
        .and_then(|s| s.trim().parse().ok())
        .ok_or(BundleError::Archive("bad member size"))?;
    if size > MAX_CRATE_LIST {
        return Err(BundleError::TooLarge);
    }
    let data = rest
        .get(HEADER..HEADER + size)
        .ok_or(BundleError::Archive("member runs past the end"))?;
    parse_crate_list(data).map(Some)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sample() -> Vec<CrateRecord> {
        alloc::vec![
            CrateRecord::new(Role::Extension, "stats", "0.1.0"),
            CrateRecord::new(Role::Carried(Trust::Vetted), "heapless", "0.9.4"),
            CrateRecord::new(Role::Carried(Trust::Safe), "crc", "3.4.0"),
            CrateRecord::new(Role::Imported(Provider::Kernel), "spindle-sdk", "0.1.0"),
            CrateRecord::new(Role::Imported(Provider::Extension), "counter", "0.1.0"),
        ]
    }

    #[test]
    fn the_crate_list_round_trips_through_a_bundle() {
        let objects: [(&str, &[u8]); 2] = [
            ("stats-0.1.0.o", b"\x7fELF one"),
            ("a-very-long-crate-name-1.2.3.o", b"\x7fELF two!"),
        ];
        let bytes = write_bundle(&sample(), &objects);
        assert_eq!(crate_list(&bytes), Ok(Some(sample())));
        assert_eq!(
            crate_list_text(&sample()).lines().nth(1),
            Some("carries\theapless\t0.9.4\tvetted")
        );
        // Every member at an even offset, each header well-formed.
        let mut at = AR_MAGIC.len();
        let mut names = Vec::new();
        while at < bytes.len() {
            let header = &bytes[at..at + HEADER];
            assert_eq!(&header[58..], b"`\n");
            names.push(
                String::from_utf8_lossy(&header[..16])
                    .trim_end()
                    .to_string(),
            );
            let size: usize = String::from_utf8_lossy(&header[48..58])
                .trim()
                .parse()
                .unwrap();
            at += HEADER + size + (size % 2);
        }
        assert_eq!(names, ["spindle-crates/", "//", "stats-0.1.0.o/", "/0"]);
    }

    #[test]
    fn a_plain_object_has_no_list() {
        assert_eq!(crate_list(b"\x7fELF\x02\x01\x01"), Ok(None));
    }

    #[test]
    fn malformed_lists_and_archives_are_refused() {
        let good = write_bundle(&sample(), &[("x.o", b"x")]);
        // An archive whose first member is something else.
        let mut other = good.clone();
        other[8..8 + CRATE_LIST_MEMBER.len()].copy_from_slice(b"spindle-crateZ");
        assert_eq!(crate_list(&other), Err(BundleError::NoCrateList));
        // A size past the end.
        let mut long = good.clone();
        long[8 + 48..8 + 58].copy_from_slice(b"9999      ");
        assert_eq!(
            crate_list(&long),
            Err(BundleError::Archive("member runs past the end"))
        );
        assert_eq!(
            crate_list(&good[..20]),
            Err(BundleError::Archive("truncated member header"))
        );
        // Lines: unknown role, missing trust, empty name.
        for (text, line) in [
            ("extension\ta\t1\nowns\tb\t2\tvetted\n", 2),
            ("carries\tb\t2\n", 1),
            ("imports\t\t1\tkernel\n", 1),
            ("carries\tb\t2\tmaybe\n", 1),
        ] {
            assert_eq!(
                parse_crate_list(text.as_bytes()),
                Err(BundleError::BadLine(line)),
                "{text:?}"
            );
        }
        let many = "extension\ta\t1\n".repeat(MAX_CRATES + 1);
        assert_eq!(
            parse_crate_list(many.as_bytes()),
            Err(BundleError::TooLarge)
        );
    }
}
