//! Bounds-checked access to ELF64 little-endian x86-64 files, on top of
//! goblin's record parsers.
//!
//! goblin decodes headers, section headers, symbols and relocations; this
//! module checks every offset and size against the input *before* asking
//! goblin to read, so that malformed input turns into an [`Error`] naming the
//! structure, never into a panic or an out-of-bounds read.

use alloc::format;
use alloc::string::{String, ToString};
use alloc::vec::Vec;

use goblin::container::{Container, Ctx, Endian};
use goblin::elf::header::{self, Header};
use goblin::elf::section_header::{SHN_XINDEX, SHT_NOBITS, SectionHeader};
use goblin::elf::sym::{Sym, Symtab};

use crate::error::{Error, Result};

/// Size of an ELF64 file header.
pub(crate) const EHDR_SIZE: u64 = 64;
/// Size of an ELF64 section header.
pub(crate) const SHDR_SIZE: u64 = 64;
/// Size of an ELF64 symbol.
pub(crate) const SYM_SIZE: u64 = 24;
/// Size of an ELF64 RELA record.
pub(crate) const RELA_SIZE: u64 = 24;

/// The decoding context: 64-bit, little-endian.
pub(crate) fn ctx() -> Ctx {
    Ctx::new(Container::Big, Endian::Little)
}

/// `bytes[offset..offset + size]`, or a [`Error::Truncated`] naming `what`.
pub(crate) fn slice<'a>(
    bytes: &'a [u8],
    offset: u64,
    size: u64,
    what: &'static str,
) -> Result<&'a [u8]> {
    let truncated = || Error::Truncated {
        what,
        offset,
        size,
        len: bytes.len() as u64,
    };
    let start = usize::try_from(offset).map_err(|_| truncated())?;
    let len = usize::try_from(size).map_err(|_| truncated())?;
    let end = start.checked_add(len).ok_or_else(truncated)?;
    bytes.get(start..end).ok_or_else(truncated)
}

/// Whether `bytes` starts with the ELF magic.
pub(crate) fn is_elf(bytes: &[u8]) -> bool {
    bytes.get(..4) == Some(&header::ELFMAG[..])
}

/// Reads and checks the file header: ELF64, little-endian, version 1,
/// x86-64. `e_type` is left to the caller.
pub(crate) fn read_header(bytes: &[u8]) -> Result<Header> {
    let ident = slice(bytes, 0, EHDR_SIZE, "ELF header")?;
    if !is_elf(ident) {
        return Err(Error::NotElf);
    }
    let check = |field: &'static str, value: u8, want: u8, expected: &'static str| {
        if value == want {
            Ok(())
        } else {
            Err(Error::BadHeader {
                field,
                value: u64::from(value),
                expected,
            })
        }
    };
    // The slice above is EHDR_SIZE (64) bytes long, so indices 4..=6 exist.
    let (class, data, version) = match ident.get(4..7) {
        Some(&[c, d, v]) => (c, d, v),
        _ => return Err(Error::NotElf),
    };
    check("e_ident[EI_CLASS]", class, header::ELFCLASS64, "ELFCLASS64")?;
    check(
        "e_ident[EI_DATA]",
        data,
        header::ELFDATA2LSB,
        "ELFDATA2LSB (little-endian)",
    )?;
    check(
        "e_ident[EI_VERSION]",
        version,
        header::EV_CURRENT,
        "EV_CURRENT",
    )?;
    let h = goblin::elf::Elf::parse_header(bytes).map_err(|e| Error::Parse {
        what: "ELF header",
        message: e.to_string(),
    })?;
    if h.e_machine != header::EM_X86_64 {
        return Err(Error::BadHeader {
            field: "e_machine",
            value: u64::from(h.e_machine),
            expected: "EM_X86_64",
        });
    }
    Ok(h)
}

/// The section header table, checked to lie inside the file, plus the
/// index of the section-name string table.
pub(crate) struct SectionTable {
    /// All section headers, index 0 included.
    pub headers: Vec<SectionHeader>,
    /// Index of the section-name string table (0 if none).
    pub shstrndx: usize,
}

/// Reads the section header table of `bytes`, refusing more than
/// `max_sections` entries.
pub(crate) fn read_sections(bytes: &[u8], h: &Header, max_sections: u64) -> Result<SectionTable> {
    if h.e_shoff == 0 {
        return Ok(SectionTable {
            headers: Vec::new(),
            shstrndx: 0,
        });
    }
    if u64::from(h.e_shentsize) != SHDR_SIZE {
        return Err(Error::BadHeader {
            field: "e_shentsize",
            value: u64::from(h.e_shentsize),
            expected: "64",
        });
    }
    // Section 0 holds the real count / string-table index when they
    // overflow the header fields.
    let first = slice(bytes, h.e_shoff, SHDR_SIZE, "section header table")?;
    let zero: SectionHeader = SectionHeader::parse_from(first, 0, 1, ctx())
        .map_err(|e| Error::Parse {
            what: "section header",
            message: e.to_string(),
        })?
        .into_iter()
        .next()
        .ok_or(Error::Truncated {
            what: "section header table",
            offset: h.e_shoff,
            size: SHDR_SIZE,
            len: bytes.len() as u64,
        })?;
    let count = if h.e_shnum == 0 {
        zero.sh_size
    } else {
        u64::from(h.e_shnum)
    };
    if count > max_sections {
        return Err(Error::LimitExceeded {
            limit: "max_sections",
            context: "section header table".to_string(),
            value: count,
            max: max_sections,
        });
    }
    let table_size = count.checked_mul(SHDR_SIZE).ok_or(Error::Truncated {
        what: "section header table",
        offset: h.e_shoff,
        size: u64::MAX,
        len: bytes.len() as u64,
    })?;
    let table = slice(bytes, h.e_shoff, table_size, "section header table")?;
    let count_usize = usize::try_from(count).map_err(|_| Error::LimitExceeded {
        limit: "max_sections",
        context: "section header table".to_string(),
        value: count,
        max: max_sections,
    })?;
    let headers = if count_usize == 0 {
        Vec::new()
    } else {
        SectionHeader::parse_from(table, 0, count_usize, ctx()).map_err(|e| Error::Parse {
            what: "section header table",
            message: e.to_string(),
        })?
    };
    let shstrndx = if u32::from(h.e_shstrndx) == SHN_XINDEX {
        zero.sh_link as usize
    } else {
        usize::from(h.e_shstrndx)
    };
    if shstrndx != 0 && shstrndx >= headers.len() {
        return Err(Error::BadHeader {
            field: "e_shstrndx",
            value: shstrndx as u64,
            expected: "a valid section index",
        });
    }
    Ok(SectionTable { headers, shstrndx })
}

/// The file bytes of a section (empty for `SHT_NOBITS`).
pub(crate) fn section_bytes<'a>(
    bytes: &'a [u8],
    sh: &SectionHeader,
    name: &str,
) -> Result<&'a [u8]> {
    section_bytes_labelled(bytes, sh, || name.to_string())
}

/// [`section_bytes`], with the section's label for the error made only
/// when there is one.
pub(crate) fn section_bytes_labelled<'a>(
    bytes: &'a [u8],
    sh: &SectionHeader,
    label: impl FnOnce() -> String,
) -> Result<&'a [u8]> {
    if sh.sh_type == SHT_NOBITS || sh.sh_size == 0 {
        return Ok(&[]);
    }
    slice(bytes, sh.sh_offset, sh.sh_size, "section").map_err(|_| Error::SectionOutOfBounds {
        section: label(),
        offset: sh.sh_offset,
        size: sh.sh_size,
        len: bytes.len() as u64,
    })
}

/// The bytes of the NUL-terminated string at `offset` inside `table`
/// (without the NUL), and whether they are all ASCII.
///
/// Returns `None` if `offset` is outside the table or the string runs off
/// its end without a NUL. Scans eight bytes at a time: the kernel runs this
/// for every symbol of its own `.symtab` at boot.
pub(crate) fn cstr_bytes(table: &[u8], offset: usize) -> Option<(&[u8], bool)> {
    const LO: u64 = 0x0101_0101_0101_0101;
    const HI: u64 = 0x8080_8080_8080_8080;
    let tail = table.get(offset..)?;
    let mut high = 0u64;
    let mut i = 0;
    for chunk in tail.as_chunks::<8>().0 {
        let w = u64::from_le_bytes(*chunk);
        // Non-zero iff some byte of `w` is zero.
        if w.wrapping_sub(LO) & !w & HI != 0 {
            break;
        }
        high |= w;
        i += 8;
    }
    let rest = tail.get(i..)?;
    let len = i + rest.iter().position(|&b| b == 0)?;
    let s = tail.get(..len)?;
    let rest_high = s.get(i..)?.iter().fold(0u8, |a, &b| a | b);
    Some((s, high & HI == 0 && rest_high & 0x80 == 0))
}

/// The NUL-terminated UTF-8 string at `offset` inside `table`.
///
/// Returns `None` if `offset` is outside the table, the string runs off its
/// end without a NUL, or it is not UTF-8.
pub(crate) fn cstr(table: &[u8], offset: usize) -> Option<&str> {
    let (bytes, _) = cstr_bytes(table, offset)?;
    core::str::from_utf8(bytes).ok()
}

/// Name for section `index` in error messages: its name if readable, else
/// `#index`.
pub(crate) fn section_label(names: &[&str], index: usize) -> String {
    match names.get(index) {
        Some(n) if !n.is_empty() => (*n).to_string(),
        _ => format!("#{index}"),
    }
}

/// A symbol table with its string table, both checked to lie in the file.
pub(crate) struct SymbolTableRef<'a> {
    /// goblin's lazy view of the symbols.
    pub syms: Symtab<'a>,
    /// The linked string table's bytes.
    pub strtab: &'a [u8],
    /// File offset of the string table.
    pub strtab_offset: u64,
    /// Name of the string table section, for errors.
    pub strtab_name: String,
}

impl<'a> SymbolTableRef<'a> {
    /// Number of symbols, entry 0 included.
    pub fn len(&self) -> usize {
        self.syms.len()
    }

    /// Symbol `index` (already bounds-checked by the caller or by `len`).
    pub fn get(&self, index: usize) -> Option<Sym> {
        self.syms.get(index)
    }

    /// The name of `sym`, or a [`Error::BadString`].
    pub fn name(&self, sym: &Sym) -> Result<&'a str> {
        cstr(self.strtab, sym.st_name).ok_or_else(|| Error::BadString {
            table: self.strtab_name.clone(),
            offset: sym.st_name as u64,
        })
    }
}

/// Opens the symbol table in section `index` of `sections`, checking entry
/// size, bounds, its linked string table and the `max_symbols` limit.
pub(crate) fn open_symtab<'a>(
    bytes: &'a [u8],
    sections: &[SectionHeader],
    names: &[&str],
    index: usize,
    max_symbols: u64,
) -> Result<SymbolTableRef<'a>> {
    let label = section_label(names, index);
    let sh = sections.get(index).ok_or_else(|| Error::BadSection {
        section: label.clone(),
        reason: "symbol table index out of range",
    })?;
    if sh.sh_entsize != SYM_SIZE {
        return Err(Error::BadSection {
            section: label,
            reason: "symbol table entry size is not 24",
        });
    }
    if sh.sh_size % SYM_SIZE != 0 {
        return Err(Error::BadSection {
            section: label,
            reason: "symbol table size is not a multiple of 24",
        });
    }
    let count = sh.sh_size / SYM_SIZE;
    if count > max_symbols {
        return Err(Error::LimitExceeded {
            limit: "max_symbols",
            context: label,
            value: count,
            max: max_symbols,
        });
    }
    let data = section_bytes(bytes, sh, &label)?;
    let link = sh.sh_link as usize;
    let str_sh = sections
        .get(link)
        .filter(|s| s.sh_type == goblin::elf::section_header::SHT_STRTAB)
        .ok_or_else(|| Error::BadSection {
            section: label.clone(),
            reason: "sh_link does not name a string table",
        })?;
    let strtab_name = section_label(names, link);
    let strtab = section_bytes(bytes, str_sh, &strtab_name)?;
    let count = usize::try_from(count).map_err(|_| Error::BadSection {
        section: label.clone(),
        reason: "symbol count does not fit in memory",
    })?;
    let syms = if count == 0 {
        Symtab::default()
    } else {
        Symtab::parse(data, 0, count, ctx()).map_err(|e| Error::Parse {
            what: "symbol table",
            message: e.to_string(),
        })?
    };
    Ok(SymbolTableRef {
        syms,
        strtab,
        strtab_offset: str_sh.sh_offset,
        strtab_name,
    })
}

/// Reads all section names through the section-name string table.
pub(crate) fn section_names<'a>(bytes: &'a [u8], table: &SectionTable) -> Result<Vec<&'a str>> {
    if table.headers.is_empty() {
        return Ok(Vec::new());
    }
    let shstr = match table.headers.get(table.shstrndx) {
        Some(sh) if table.shstrndx != 0 => section_bytes(bytes, sh, ".shstrtab")?,
        _ => &[],
    };
    table
        .headers
        .iter()
        .enumerate()
        .map(|(i, sh)| {
            if i == 0 || (sh.sh_name == 0 && shstr.is_empty()) {
                Ok("")
            } else {
                cstr(shstr, sh.sh_name).ok_or_else(|| Error::BadString {
                    table: ".shstrtab".to_string(),
                    offset: sh.sh_name as u64,
                })
            }
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cstr_bytes_finds_the_nul_at_every_position() {
        for len in 0..40 {
            let mut t: Vec<u8> = (0..len).map(|i| b'a' + (i % 26) as u8).collect();
            t.push(0);
            t.extend_from_slice(b"tail\0");
            for off in 0..=len {
                let (s, ascii) = cstr_bytes(&t, off).unwrap();
                assert_eq!(s.len(), len - off);
                assert!(ascii);
            }
            assert_eq!(cstr_bytes(&t, len + 1), Some((&b"tail"[..], true)));
        }
    }

    #[test]
    fn cstr_bytes_reports_non_ascii_and_missing_nul() {
        let t = "caf\u{e9} and more than eight bytes\0".as_bytes();
        assert_eq!(cstr_bytes(t, 0).map(|(_, a)| a), Some(false));
        assert_eq!(cstr(t, 0), Some("caf\u{e9} and more than eight bytes"));
        let late = "0123456789abcdef\u{e9}\0".as_bytes();
        assert_eq!(cstr_bytes(late, 0).map(|(_, a)| a), Some(false));
        assert_eq!(cstr_bytes(b"no terminator at all", 0), None);
        assert_eq!(cstr_bytes(b"abc\0", 5), None);
        assert_eq!(cstr(&[0xff, 0xfe, 0], 0), None);
        assert_eq!(cstr_bytes(b"abc\0", 4), None);
    }
}
