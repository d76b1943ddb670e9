//! One ELF member of a link unit, read and validated: its header, its
//! sections (bounds, limits, alignment, class, overlaps), its symbols and
//! its relocations. [`super::Object::parse`] reads each member with
//! [`parse_member`], then unifies the members into one unit.

use alloc::string::{String, ToString};
use alloc::vec::Vec;

use goblin::elf::header::ET_REL;
use goblin::elf::reloc::RelocSection;
use goblin::elf::section_header::{
    SHF_ALLOC, SHF_EXECINSTR, SHF_TLS, SHF_WRITE, SHN_ABS, SHN_COMMON, SHN_LORESERVE, SHN_UNDEF,
    SHN_XINDEX, SHT_FINI_ARRAY, SHT_INIT_ARRAY, SHT_NOBITS, SHT_PREINIT_ARRAY, SHT_REL, SHT_RELA,
    SHT_SYMTAB, SectionHeader,
};
use goblin::elf::sym::{
    STB_GLOBAL, STB_LOCAL, STB_WEAK, STT_FILE, STT_GNU_IFUNC, STT_SECTION, STT_TLS,
};

use super::{Def, Limits, Member, Reloc, RelocGroup, Section, SectionClass, Symbol};
use crate::elf;
use crate::error::{Error, Result};
use crate::reloc::{self, RelocKind};

/// Parses one ELF member. `file` is its index inside the unit.
pub(super) fn parse_member<'a>(
    name: &str,
    bytes: &'a [u8],
    file: u32,
    limits: &Limits,
) -> Result<Member<'a>> {
    let header = elf::read_header(bytes)?;
    if header.e_type != ET_REL {
        return Err(Error::BadHeader {
            field: "e_type",
            value: u64::from(header.e_type),
            expected: "ET_REL (a relocatable object)",
        });
    }
    let table = elf::read_sections(bytes, &header, limits.max_sections)?;
    let names = elf::section_names(bytes, &table)?;
    let headers = &table.headers;
    let layout = FileLayout {
        bytes,
        headers,
        names: &names,
    };
    let (sections, symtab_index) = parse_sections(&layout, header.e_shoff, limits)?;
    let symbols = match symtab_index {
        Some(idx) => parse_symbols(bytes, headers, &names, &sections, idx, file, limits)?,
        None => Vec::new(),
    };
    let mut relocations = Relocations::default();
    for (i, sh) in headers.iter().enumerate() {
        if sh.sh_type == SHT_RELA || sh.sh_type == SHT_REL {
            relocations.parse_section(&layout, i, &sections, &symbols, symtab_index, limits)?;
        }
    }
    check_unloaded_references(&relocations, &symbols, &sections, &names)?;
    Ok(Member {
        name: name.to_string(),
        sections,
        symbols,
        relocs: relocations.relocs,
        groups: relocations.groups,
    })
}

/// The parts of a member's file that every step reads.
struct FileLayout<'f, 'a> {
    bytes: &'a [u8],
    headers: &'f [SectionHeader],
    names: &'f [&'a str],
}

/// Sections: bounds, sizes against the limits, alignment, class, and that
/// no two overlap in the file (nor the ELF header or the section header
/// table at `shoff`). Returns them, in header order, and the index of the
/// symbol table if there is one.
fn parse_sections<'a>(
    file: &FileLayout<'_, 'a>,
    shoff: u64,
    limits: &Limits,
) -> Result<(Vec<Section<'a>>, Option<usize>)> {
    let headers = file.headers;
    let mut sections = Vec::with_capacity(headers.len());
    let mut ranges: Vec<FileRange> = Vec::with_capacity(headers.len() + 2);
    ranges.push(FileRange {
        offset: 0,
        size: elf::EHDR_SIZE,
        what: RangeOwner::Header,
    });
    if !headers.is_empty() {
        ranges.push(FileRange {
            offset: shoff,
            size: (headers.len() as u64).saturating_mul(elf::SHDR_SIZE),
            what: RangeOwner::SectionTable,
        });
    }
    let mut symtab_index = None;
    for (i, sh) in headers.iter().enumerate() {
        if i == 0 {
            sections.push(Section {
                name: "",
                class: SectionClass::Skip,
                data: &[],
                size: 0,
                align: 1,
            });
            continue;
        }
        // The label (a copy of the name, or `#i`) is made only for an error.
        let name = file.names.get(i).copied().unwrap_or("");
        let label = || elf::section_label(file.names, i);
        let align = checked_alignment(sh, label, limits)?;
        let data = elf::section_bytes_labelled(file.bytes, sh, label)?;
        if !data.is_empty() {
            ranges.push(FileRange {
                offset: sh.sh_offset,
                size: sh.sh_size,
                what: RangeOwner::Section(i),
            });
        }
        let class = section_class(sh, name, label)?;
        if sh.sh_type == SHT_SYMTAB {
            if symtab_index.is_some() {
                return Err(Error::BadSection {
                    section: label(),
                    reason: "more than one symbol table",
                });
            }
            symtab_index = Some(i);
        }
        sections.push(Section {
            name,
            class,
            data,
            size: sh.sh_size,
            align,
        });
    }
    check_overlaps(&mut ranges, file.names)?;
    Ok((sections, symtab_index))
}

/// A section's size against the limit, and its alignment: a power of two
/// (0 means 1) within the limit.
fn checked_alignment(
    sh: &SectionHeader,
    label: impl Fn() -> String,
    limits: &Limits,
) -> Result<u64> {
    if sh.sh_size > limits.max_section_size {
        return Err(Error::LimitExceeded {
            limit: "max_section_size",
            context: label(),
            value: sh.sh_size,
            max: limits.max_section_size,
        });
    }
    let align = match sh.sh_addralign {
        0 | 1 => 1,
        a if a.is_power_of_two() => a,
        a => {
            return Err(Error::BadAlignment {
                section: label(),
                align: a,
            });
        }
    };
    if align > limits.max_alignment {
        return Err(Error::LimitExceeded {
            limit: "max_alignment",
            context: label(),
            value: align,
            max: limits.max_alignment,
        });
    }
    Ok(align)
}

/// A member's relocations, and the runs of them that patch one section.
#[derive(Default)]
struct Relocations {
    relocs: Vec<Reloc>,
    groups: Vec<RelocGroup>,
}

impl Relocations {
    /// Reads relocation section `index` (`SHT_RELA` or `SHT_REL`): skipped
    /// if it patches an unloaded section; otherwise its header is checked
    /// (RELA, linked to the symbol table, 24-byte entries, within the
    /// limit) and every entry (symbol index, type, offset inside the
    /// patched section) before it is recorded.
    fn parse_section(
        &mut self,
        file: &FileLayout<'_, '_>,
        index: usize,
        sections: &[Section<'_>],
        symbols: &[Symbol<'_>],
        symtab_index: Option<usize>,
        limits: &Limits,
    ) -> Result<()> {
        let sh = &file.headers[index];
        let label = || elf::section_label(file.names, index);
        let target = sh.sh_info as usize;
        let Some(target_sec) = sections.get(target).filter(|_| target != 0) else {
            return Err(Error::BadSection {
                section: label(),
                reason: "sh_info does not name a section to relocate",
            });
        };
        if target_sec.class == SectionClass::Skip {
            // Relocations of debug info and other unloaded sections.
            return Ok(());
        }
        if sh.sh_type == SHT_REL {
            return Err(Error::UnsupportedSection {
                section: label(),
                reason: "SHT_REL relocations (without addends) are not used on x86-64",
            });
        }
        if Some(sh.sh_link as usize) != symtab_index {
            return Err(Error::BadSection {
                section: label(),
                reason: "sh_link does not name the symbol table",
            });
        }
        if sh.sh_entsize != elf::RELA_SIZE || !sh.sh_size.is_multiple_of(elf::RELA_SIZE) {
            return Err(Error::BadSection {
                section: label(),
                reason: "RELA entry size is not 24 or size not a multiple of it",
            });
        }
        let count = sh.sh_size / elf::RELA_SIZE;
        let total = (self.relocs.len() as u64).saturating_add(count);
        if total > limits.max_relocations {
            return Err(Error::LimitExceeded {
                limit: "max_relocations",
                context: label(),
                value: total,
                max: limits.max_relocations,
            });
        }
        let data = elf::section_bytes_labelled(file.bytes, sh, label)?;
        if data.is_empty() {
            return Ok(());
        }
        let table = RelocSection::parse(data, 0, data.len(), true, elf::ctx()).map_err(|e| {
            Error::Parse {
                what: "relocation section",
                message: e.to_string(),
            }
        })?;
        let start = self.relocs.len();
        let target_label = || elf::section_label(file.names, target);
        for n in 0..table.len() {
            let Some(r) = table.get(n) else { break };
            let sym = symbols
                .get(r.r_sym)
                .ok_or_else(|| Error::SymbolIndexOutOfRange {
                    section: label(),
                    relocation: n as u64,
                    index: r.r_sym as u64,
                    count: symbols.len() as u64,
                })?;
            let kind =
                RelocKind::from_raw(r.r_type).ok_or_else(|| Error::UnsupportedRelocation {
                    r_type: r.r_type,
                    type_name: reloc::type_name(r.r_type),
                    section: target_label(),
                    symbol: sym.name.to_string(),
                })?;
            if kind == RelocKind::None {
                continue;
            }
            let width = kind.width();
            let fits = r
                .r_offset
                .checked_add(width)
                .is_some_and(|end| end <= target_sec.size);
            if !fits || target_sec.class == SectionClass::Bss {
                return Err(Error::RelocationOutOfSection {
                    section: target_label(),
                    offset: r.r_offset,
                    width,
                    size: if target_sec.class == SectionClass::Bss {
                        0
                    } else {
                        target_sec.size
                    },
                });
            }
            if sym.def == Def::Null && r.r_sym != 0 {
                return Err(Error::UnsupportedSymbol {
                    symbol: sym.name.to_string(),
                    reason: "a file symbol cannot be relocated against",
                });
            }
            self.relocs.push(Reloc {
                offset: r.r_offset,
                kind,
                // r_sym < symbols.len() <= max_symbols, which fits u32 by the
                // check in parse_symbols.
                sym: u32::try_from(r.r_sym).unwrap_or(u32::MAX),
                addend: r.r_addend.unwrap_or(0),
            });
        }
        if self.relocs.len() > start {
            self.groups.push(RelocGroup {
                section: u32::try_from(target).unwrap_or(u32::MAX),
                start,
                end: self.relocs.len(),
            });
        }
        Ok(())
    }
}

/// Refuses a relocation against a symbol defined in an unloaded section
/// (debug info, say): there would be no address to give it.
fn check_unloaded_references(
    relocations: &Relocations,
    symbols: &[Symbol<'_>],
    sections: &[Section<'_>],
    names: &[&str],
) -> Result<()> {
    for g in &relocations.groups {
        for r in relocations.relocs.get(g.start..g.end).unwrap_or(&[]) {
            if let Some(sym) = symbols.get(r.sym as usize)
                && let Def::Section { section, .. } = sym.def
                && let Some(s) = sections.get(section as usize)
                && s.class == SectionClass::Skip
            {
                return Err(Error::ReferenceToUnloadedSection {
                    symbol: sym.name.to_string(),
                    section: elf::section_label(names, section as usize),
                });
            }
        }
    }
    Ok(())
}

/// Classifies a section by its flags and type.
fn section_class(
    sh: &SectionHeader,
    name: &str,
    label: impl Fn() -> String,
) -> Result<SectionClass> {
    let flags = sh.sh_flags;
    if flags & u64::from(SHF_ALLOC) == 0 {
        return Ok(SectionClass::Skip);
    }
    if flags & u64::from(SHF_TLS) != 0 {
        return Err(Error::Tls { name: label() });
    }
    if matches!(
        sh.sh_type,
        SHT_INIT_ARRAY | SHT_FINI_ARRAY | SHT_PREINIT_ARRAY
    ) {
        return Err(Error::UnsupportedSection {
            section: label(),
            reason: "constructors/destructors are never run by the loader",
        });
    }
    let write = flags & u64::from(SHF_WRITE) != 0;
    let exec = flags & u64::from(SHF_EXECINSTR) != 0;
    Ok(match (write, exec) {
        (true, true) => {
            return Err(Error::UnsupportedSection {
                section: label(),
                reason: "writable and executable (W^X)",
            });
        }
        (false, true) => SectionClass::Text,
        (true, false) if sh.sh_type == SHT_NOBITS => SectionClass::Bss,
        (true, false) if name == ".data.rel.ro" || name.starts_with(".data.rel.ro.") => {
            SectionClass::RelRo
        }
        (true, false) => SectionClass::Data,
        (false, false) if sh.sh_type == goblin::elf::section_header::SHT_X86_64_UNWIND => {
            SectionClass::Unwind
        }
        (false, false) if sh.sh_type == SHT_NOBITS => SectionClass::Bss,
        (false, false) => SectionClass::ReadOnly,
    })
}

/// What a [`FileRange`] of a member's file holds.
#[derive(Clone, Copy)]
enum RangeOwner {
    Header,
    SectionTable,
    Section(usize),
}

/// Bytes of a member's file that one structure occupies.
struct FileRange {
    offset: u64,
    size: u64,
    what: RangeOwner,
}

impl FileRange {
    fn label(&self, names: &[&str]) -> String {
        match self.what {
            RangeOwner::Header => "ELF header".to_string(),
            RangeOwner::SectionTable => "section header table".to_string(),
            RangeOwner::Section(i) => elf::section_label(names, i),
        }
    }
}

/// Fails if any two file ranges overlap. Zero-length ranges never overlap.
fn check_overlaps(ranges: &mut [FileRange], names: &[&str]) -> Result<()> {
    ranges.sort_unstable_by_key(|r| (r.offset, r.size));
    let mut prev: Option<&FileRange> = None;
    for r in ranges.iter() {
        if r.size == 0 {
            continue;
        }
        if let Some(p) = prev {
            // p.offset + p.size was bounds-checked against the file length
            // already, except for the header table whose size saturates.
            if p.offset.saturating_add(p.size) > r.offset {
                return Err(Error::SectionsOverlap {
                    first: p.label(names),
                    second: r.label(names),
                });
            }
        }
        prev = Some(r);
    }
    Ok(())
}

/// Reads and validates the member's symbols. Undefined globals get
/// `Def::Import(u32::MAX)` as a placeholder, fixed by [`unify`](super::unify).
fn parse_symbols<'a>(
    bytes: &'a [u8],
    headers: &[SectionHeader],
    names: &[&'a str],
    sections: &[Section<'a>],
    index: usize,
    file: u32,
    limits: &Limits,
) -> Result<Vec<Symbol<'a>>> {
    let table = elf::open_symtab(
        bytes,
        headers,
        names,
        index,
        limits.max_symbols.min(u64::from(u32::MAX)),
    )?;
    let mut out = Vec::with_capacity(table.len());
    for i in 0..table.len() {
        let Some(sym) = table.get(i) else { break };
        let bind = sym.st_bind();
        let kind = sym.st_type();
        let visibility = sym.st_visibility();
        let shndx = sym.st_shndx;
        let mut name = table.name(&sym)?;
        if kind == STT_SECTION
            && let Some(n) = names.get(shndx)
        {
            name = n;
        }
        let label = || {
            if name.is_empty() {
                alloc::format!("#{i}")
            } else {
                name.to_string()
            }
        };
        if i == 0 {
            out.push(Symbol {
                name: "",
                def: Def::Null,
                bind,
                visibility,
                kind,
                size: 0,
            });
            continue;
        }
        if kind == STT_TLS {
            return Err(Error::Tls { name: label() });
        }
        if kind == STT_GNU_IFUNC {
            return Err(Error::UnsupportedSymbol {
                symbol: label(),
                reason: "indirect functions (STT_GNU_IFUNC)",
            });
        }
        if !matches!(bind, STB_LOCAL | STB_GLOBAL | STB_WEAK) {
            return Err(Error::UnsupportedSymbol {
                symbol: label(),
                reason: "binding other than local, global or weak",
            });
        }
        let shndx_u32 = u32::try_from(shndx).unwrap_or(u32::MAX);
        let def = if kind == STT_FILE {
            Def::Null
        } else if shndx_u32 == SHN_UNDEF {
            if bind == STB_LOCAL {
                return Err(Error::UnsupportedSymbol {
                    symbol: label(),
                    reason: "undefined local symbol",
                });
            }
            Def::Import(u32::MAX)
        } else if shndx_u32 == SHN_ABS {
            Def::Absolute(sym.st_value)
        } else if shndx_u32 == SHN_COMMON {
            return Err(Error::Common { symbol: label() });
        } else if shndx_u32 == SHN_XINDEX {
            return Err(Error::UnsupportedSymbol {
                symbol: label(),
                reason: "extended section indices (SHN_XINDEX)",
            });
        } else if shndx_u32 >= SHN_LORESERVE {
            return Err(Error::BadSymbolSection {
                symbol: label(),
                shndx: shndx as u64,
            });
        } else {
            let Some(sec) = sections.get(shndx).filter(|_| shndx != 0) else {
                return Err(Error::BadSymbolSection {
                    symbol: label(),
                    shndx: shndx as u64,
                });
            };
            if sym.st_value > sec.size {
                return Err(Error::SymbolOutOfSection {
                    symbol: label(),
                    section: elf::section_label(names, shndx),
                    value: sym.st_value,
                });
            }
            Def::Section {
                file,
                section: shndx_u32,
                offset: sym.st_value,
            }
        };
        out.push(Symbol {
            name,
            def,
            bind,
            visibility,
            kind,
            size: sym.st_size,
        });
    }
    Ok(out)
}
