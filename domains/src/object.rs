//! Parsing and validation of relocatable objects (`ET_REL`) and rlib
//! archives.
//!
//! An [`Object`] is one *link unit*: a single ELF object, or every `*.o`
//! member of an `ar` archive (an rlib built with several codegen units)
//! linked together. Inside a unit, undefined symbols are first matched
//! against the global definitions of the unit's other members; what is left
//! are the unit's imports. Only `*.o` members are read: `lib.rmeta` (an ELF
//! wrapper around metadata) and anything else are ignored.
//!
//! Everything is validated here, before any memory is planned: header,
//! section bounds and overlaps, sizes against [`Limits`], alignments,
//! string offsets, symbol section indices and values, relocation symbol
//! indices, types and offsets. A successfully parsed `Object` can be
//! planned and linked without further input checks failing on garbage.

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
    STB_GLOBAL, STB_LOCAL, STB_WEAK, STT_FILE, STT_GNU_IFUNC, STT_SECTION, STT_TLS, STV_DEFAULT,
    STV_PROTECTED,
};
use hashbrown::HashMap;

use crate::elf;
use crate::error::{Error, Result};
use crate::reloc::{self, RelocKind};

/// Upper bounds applied while parsing, so that hostile input cannot make
/// the kernel allocate without limit. All sizes are in bytes.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Limits {
    /// Largest accepted input (object or archive).
    pub max_input_size: u64,
    /// Largest number of ELF members linked from one archive.
    pub max_objects: u64,
    /// Largest number of sections in one object.
    pub max_sections: u64,
    /// Largest single section (`sh_size`, `SHT_NOBITS` included).
    pub max_section_size: u64,
    /// Largest total of all loaded sections (the image, before GOT/stubs).
    pub max_image_size: u64,
    /// Largest number of symbols in one object.
    pub max_symbols: u64,
    /// Largest number of relocations in one object.
    pub max_relocations: u64,
    /// Largest section alignment.
    pub max_alignment: u64,
}

impl Default for Limits {
    /// Generous bounds for kernel extensions: 64 MiB input and image, 16 MiB
    /// per section, 1 Mi symbols, 4 Mi relocations, 64 KiB alignment.
    fn default() -> Self {
        Limits {
            max_input_size: 64 << 20,
            max_objects: 256,
            max_sections: 1 << 20,
            max_section_size: 16 << 20,
            max_image_size: 64 << 20,
            max_symbols: 1 << 20,
            max_relocations: 4 << 20,
            max_alignment: 64 << 10,
        }
    }
}

/// Where a section goes in the image.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum SectionClass {
    /// Not loaded (no `SHF_ALLOC`: symbol tables, debug info, comments...).
    Skip,
    /// Executable code: text segment.
    Text,
    /// Read-only data (`.rodata.*`, constants): read-only segment.
    ReadOnly,
    /// Data written only by relocation (`.data.rel.ro.*`, vtables):
    /// read-only segment.
    RelRo,
    /// Unwind tables (`SHT_X86_64_UNWIND`, `.eh_frame`): read-only segment.
    Unwind,
    /// Initialised writable data: data segment.
    Data,
    /// Zero-initialised writable data: data segment, after `Data`.
    Bss,
}

/// A section of an object, validated.
#[derive(Clone, Debug)]
pub(crate) struct Section<'a> {
    /// Name from `.shstrtab` (may be empty).
    pub name: &'a str,
    /// Where it goes.
    pub class: SectionClass,
    /// Its file bytes (empty for `SHT_NOBITS`).
    pub data: &'a [u8],
    /// `sh_size`.
    pub size: u64,
    /// Alignment: a power of two, at least 1.
    pub align: u64,
}

/// What a symbol stands for, after unit-level resolution.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub(crate) enum Def {
    /// Symbol 0, file symbols: nothing a relocation may use.
    Null,
    /// `offset` bytes into section `section` of member `file`.
    Section {
        /// Member index inside the unit.
        file: u32,
        /// Section index inside that member.
        section: u32,
        /// Offset inside the section.
        offset: u64,
    },
    /// An absolute value (`SHN_ABS`).
    Absolute(u64),
    /// The unit's import number `n` (see [`Object::imports`]).
    Import(u32),
    /// A linker-defined section bound: the start (or, with `end`, the end)
    /// of the sections named by entry `group` of the unit's bound sections.
    Bound {
        /// Index into the unit's bound sections.
        group: u32,
        /// `__stop_` rather than `__start_`.
        end: bool,
    },
}

/// A symbol of an object, validated.
#[derive(Clone, Debug)]
pub(crate) struct Symbol<'a> {
    /// Name (for section symbols, the section's name).
    pub name: &'a str,
    /// What it resolves to.
    pub def: Def,
    /// `STB_*`.
    pub bind: u8,
    /// `STV_*`.
    pub visibility: u8,
    /// `STT_*`.
    pub kind: u8,
    /// `st_size`.
    pub size: u64,
}

/// One relocation, validated against its section and symbol table.
#[derive(Clone, Copy, Debug)]
pub(crate) struct Reloc {
    /// Offset of the patched field inside the target section.
    pub offset: u64,
    /// The type.
    pub kind: RelocKind,
    /// Index into the member's symbols.
    pub sym: u32,
    /// The addend.
    pub addend: i64,
}

/// The relocations of one target section.
#[derive(Clone, Debug)]
pub(crate) struct RelocGroup {
    /// The patched section's index.
    pub section: u32,
    /// Range inside [`Member::relocs`].
    pub start: usize,
    /// End of the range.
    pub end: usize,
}

/// One ELF member of the unit.
#[derive(Clone, Debug)]
pub(crate) struct Member<'a> {
    /// Archive member name, or `"<object>"` for a plain object.
    pub name: String,
    /// Sections by index (index 0 is the null section).
    pub sections: Vec<Section<'a>>,
    /// Symbols by index.
    pub symbols: Vec<Symbol<'a>>,
    /// All relocations that patch loaded sections.
    pub relocs: Vec<Reloc>,
    /// `relocs` grouped by patched section.
    pub groups: Vec<RelocGroup>,
}

/// An undefined symbol of the unit.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Import<'a> {
    /// The symbol name, exactly as the object spells it.
    pub name: &'a str,
    /// `true` if every reference is weak: the import may stay unresolved
    /// and then has address 0.
    pub weak: bool,
}

/// A parsed, validated link unit (one object file or all objects of an
/// rlib), borrowing the input bytes.
#[derive(Clone, Debug)]
pub struct Object<'a> {
    pub(crate) members: Vec<Member<'a>>,
    pub(crate) imports: Vec<Import<'a>>,
    /// Exported definitions: `(member, symbol)` of every global or weak
    /// definition with default or protected visibility.
    pub(crate) exports: Vec<(u32, u32)>,
    /// Names of the sections whose `__start_`/`__stop_` bounds the unit
    /// references and the linker defines (see [`crate::bounds`]).
    pub(crate) bound_sections: Vec<&'a str>,
}

impl<'a> Object<'a> {
    /// Parses an ELF relocatable object or an `ar` archive (rlib) of them.
    ///
    /// Only archive members named `*.o` that are ELF files are used
    /// (`lib.rmeta`, itself an ELF wrapper, is skipped); they are all linked
    /// together as one unit, and a global symbol defined
    /// by two members is a [`Error::DuplicateSymbol`].
    pub fn parse(bytes: &'a [u8], limits: &Limits) -> Result<Object<'a>> {
        if bytes.len() as u64 > limits.max_input_size {
            return Err(Error::LimitExceeded {
                limit: "max_input_size",
                context: "input".to_string(),
                value: bytes.len() as u64,
                max: limits.max_input_size,
            });
        }
        let mut members = Vec::new();
        if elf::is_elf(bytes) {
            members.push(parse_member("<object>", bytes, 0, limits)?);
        } else if bytes.starts_with(b"!<arch>\n") {
            let archive = goblin::archive::Archive::parse(bytes).map_err(|e| Error::Parse {
                what: "ar archive",
                message: e.to_string(),
            })?;
            for i in 0..archive.len() {
                let Some(m) = archive.get_at(i) else { continue };
                // rustc wraps `lib.rmeta` in an ELF file too: take only
                // `*.o` members.
                if !m.extended_name().ends_with(".o") {
                    continue;
                }
                let data = elf::slice(bytes, m.offset, m.size() as u64, "archive member")?;
                if !elf::is_elf(data) {
                    continue;
                }
                if members.len() as u64 >= limits.max_objects {
                    return Err(Error::LimitExceeded {
                        limit: "max_objects",
                        context: alloc::format!("archive member {}", m.extended_name()),
                        value: members.len() as u64 + 1,
                        max: limits.max_objects,
                    });
                }
                let file = u32::try_from(members.len()).unwrap_or(u32::MAX);
                let member = parse_member(m.extended_name(), data, file, limits).map_err(|e| {
                    Error::InMember {
                        member: m.extended_name().to_string(),
                        error: alloc::boxed::Box::new(e),
                    }
                })?;
                members.push(member);
            }
            if members.is_empty() {
                return Err(Error::NoObjectInArchive);
            }
        } else {
            return Err(Error::NotElf);
        }
        let mut total: u64 = 0;
        for m in &members {
            for s in &m.sections {
                if s.class != SectionClass::Skip {
                    total = total.saturating_add(s.size);
                }
            }
        }
        if total > limits.max_image_size {
            return Err(Error::LimitExceeded {
                limit: "max_image_size",
                context: "loaded sections".to_string(),
                value: total,
                max: limits.max_image_size,
            });
        }
        let relocs: u64 = members.iter().map(|m| m.relocs.len() as u64).sum();
        if relocs > limits.max_relocations {
            return Err(Error::LimitExceeded {
                limit: "max_relocations",
                context: "object".to_string(),
                value: relocs,
                max: limits.max_relocations,
            });
        }
        unify(members)
    }

    /// The unit's undefined symbols, each name once, in first-reference
    /// order.
    pub fn imports(&self) -> impl ExactSizeIterator<Item = Import<'a>> + '_ {
        self.imports.iter().copied()
    }

    /// Names of the unit's exported definitions: global and weak symbols
    /// with default or protected visibility. Hidden globals (shared between
    /// the codegen units of one crate) and locals are not exported.
    pub fn exports(&self) -> impl Iterator<Item = &'a str> + '_ {
        self.export_symbols().map(|sym| sym.name)
    }

    /// The symbols behind [`Object::exports`], with the index of the
    /// member defining each.
    pub(crate) fn export_symbols_by_member(&self) -> impl Iterator<Item = (u32, &Symbol<'a>)> + '_ {
        self.exports.iter().filter_map(|&(f, s)| {
            self.members
                .get(f as usize)
                .and_then(|m| m.symbols.get(s as usize))
                .map(|sym| (f, sym))
        })
    }

    /// The symbols behind [`Object::exports`].
    pub(crate) fn export_symbols(&self) -> impl Iterator<Item = &Symbol<'a>> + '_ {
        self.exports.iter().filter_map(|&(f, s)| {
            self.members
                .get(f as usize)
                .and_then(|m| m.symbols.get(s as usize))
        })
    }

    /// Names of every global or weak definition of the unit, whatever its
    /// visibility (hidden ones included; a weak name defined by several
    /// members appears once per definition).
    pub fn global_definitions(&self) -> impl Iterator<Item = &'a str> + '_ {
        self.members.iter().flat_map(|m| {
            m.symbols
                .iter()
                .filter(|s| {
                    s.bind != STB_LOCAL && matches!(s.def, Def::Section { .. } | Def::Absolute(_))
                })
                .map(|s| s.name)
        })
    }

    /// Names of the ELF members linked into this unit.
    pub fn members(&self) -> impl Iterator<Item = &str> + '_ {
        self.members.iter().map(|m| m.name.as_str())
    }

    /// The file bytes of the unit's sections called `name`, before any
    /// relocation is applied (fields that relocations fill in read as their
    /// unrelocated value, usually 0). `None` if no member has such a section;
    /// `Some(&[])` for an empty or `SHT_NOBITS` one. If several members have
    /// one, the first is returned.
    ///
    /// This is how the loader reads an extension's plain-data descriptor
    /// before linking anything.
    pub fn section_bytes(&self, name: &str) -> Option<&'a [u8]> {
        self.members
            .iter()
            .flat_map(|m| m.sections.iter())
            .find(|s| s.name == name)
            .map(|s| s.data)
    }

    /// Number of relocations that patch loaded sections.
    pub fn relocation_count(&self) -> usize {
        self.members.iter().map(|m| m.relocs.len()).sum()
    }
}

/// Classifies a section by its flags and type.
fn section_class(sh: &SectionHeader, name: &str) -> Result<SectionClass> {
    let flags = sh.sh_flags;
    if flags & u64::from(SHF_ALLOC) == 0 {
        return Ok(SectionClass::Skip);
    }
    if flags & u64::from(SHF_TLS) != 0 {
        return Err(Error::Tls {
            name: name.to_string(),
        });
    }
    if matches!(
        sh.sh_type,
        SHT_INIT_ARRAY | SHT_FINI_ARRAY | SHT_PREINIT_ARRAY
    ) {
        return Err(Error::UnsupportedSection {
            section: name.to_string(),
            reason: "constructors/destructors are never run by the loader",
        });
    }
    let write = flags & u64::from(SHF_WRITE) != 0;
    let exec = flags & u64::from(SHF_EXECINSTR) != 0;
    Ok(match (write, exec) {
        (true, true) => {
            return Err(Error::UnsupportedSection {
                section: name.to_string(),
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

/// Parses one ELF member. `file` is its index inside the unit.
fn parse_member<'a>(name: &str, bytes: &'a [u8], file: u32, limits: &Limits) -> Result<Member<'a>> {
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

    // Sections: bounds, sizes, alignment, placement.
    let mut sections = Vec::with_capacity(headers.len());
    let mut ranges: Vec<(u64, u64, String)> = Vec::with_capacity(headers.len() + 2);
    ranges.push((0, elf::EHDR_SIZE, "ELF header".to_string()));
    if !headers.is_empty() {
        ranges.push((
            header.e_shoff,
            (headers.len() as u64).saturating_mul(elf::SHDR_SIZE),
            "section header table".to_string(),
        ));
    }
    let mut symtab_index = None;
    for (i, sh) in headers.iter().enumerate() {
        let label = elf::section_label(&names, i);
        let sec_name = names.get(i).copied().unwrap_or("");
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
        if sh.sh_size > limits.max_section_size {
            return Err(Error::LimitExceeded {
                limit: "max_section_size",
                context: label,
                value: sh.sh_size,
                max: limits.max_section_size,
            });
        }
        let align = match sh.sh_addralign {
            0 | 1 => 1,
            a if a.is_power_of_two() => a,
            a => {
                return Err(Error::BadAlignment {
                    section: label,
                    align: a,
                });
            }
        };
        if align > limits.max_alignment {
            return Err(Error::LimitExceeded {
                limit: "max_alignment",
                context: label,
                value: align,
                max: limits.max_alignment,
            });
        }
        let data = elf::section_bytes(bytes, sh, &label)?;
        if !data.is_empty() {
            ranges.push((sh.sh_offset, sh.sh_size, label.clone()));
        }
        let class = section_class(sh, &label)?;
        if sh.sh_type == SHT_SYMTAB {
            if symtab_index.is_some() {
                return Err(Error::BadSection {
                    section: label,
                    reason: "more than one symbol table",
                });
            }
            symtab_index = Some(i);
        }
        sections.push(Section {
            name: sec_name,
            class,
            data,
            size: sh.sh_size,
            align,
        });
    }
    check_overlaps(&mut ranges)?;

    // Symbols.
    let symbols = match symtab_index {
        Some(idx) => parse_symbols(bytes, headers, &names, &sections, idx, file, limits)?,
        None => Vec::new(),
    };

    // Relocations.
    let mut relocs = Vec::new();
    let mut groups = Vec::new();
    for (i, sh) in headers.iter().enumerate() {
        if sh.sh_type != SHT_RELA && sh.sh_type != SHT_REL {
            continue;
        }
        let label = elf::section_label(&names, i);
        let target = sh.sh_info as usize;
        let Some(target_sec) = sections.get(target).filter(|_| target != 0) else {
            return Err(Error::BadSection {
                section: label,
                reason: "sh_info does not name a section to relocate",
            });
        };
        if target_sec.class == SectionClass::Skip {
            // Relocations of debug info and other unloaded sections.
            continue;
        }
        if sh.sh_type == SHT_REL {
            return Err(Error::UnsupportedSection {
                section: label,
                reason: "SHT_REL relocations (without addends) are not used on x86-64",
            });
        }
        if Some(sh.sh_link as usize) != symtab_index {
            return Err(Error::BadSection {
                section: label,
                reason: "sh_link does not name the symbol table",
            });
        }
        if sh.sh_entsize != elf::RELA_SIZE || sh.sh_size % elf::RELA_SIZE != 0 {
            return Err(Error::BadSection {
                section: label,
                reason: "RELA entry size is not 24 or size not a multiple of it",
            });
        }
        let count = sh.sh_size / elf::RELA_SIZE;
        if (relocs.len() as u64).saturating_add(count) > limits.max_relocations {
            return Err(Error::LimitExceeded {
                limit: "max_relocations",
                context: label,
                value: (relocs.len() as u64).saturating_add(count),
                max: limits.max_relocations,
            });
        }
        let data = elf::section_bytes(bytes, sh, &label)?;
        let table = if data.is_empty() {
            continue;
        } else {
            RelocSection::parse(data, 0, data.len(), true, elf::ctx()).map_err(|e| {
                Error::Parse {
                    what: "relocation section",
                    message: e.to_string(),
                }
            })?
        };
        let start = relocs.len();
        let target_label = elf::section_label(&names, target);
        for n in 0..table.len() {
            let Some(r) = table.get(n) else { break };
            let sym = symbols
                .get(r.r_sym)
                .ok_or_else(|| Error::SymbolIndexOutOfRange {
                    section: label.clone(),
                    relocation: n as u64,
                    index: r.r_sym as u64,
                    count: symbols.len() as u64,
                })?;
            let kind =
                RelocKind::from_raw(r.r_type).ok_or_else(|| Error::UnsupportedRelocation {
                    r_type: r.r_type,
                    type_name: reloc::type_name(r.r_type),
                    section: target_label.clone(),
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
                    section: target_label.clone(),
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
            relocs.push(Reloc {
                offset: r.r_offset,
                kind,
                // r_sym < symbols.len() <= max_symbols, which fits u32 by the
                // check in parse_symbols.
                sym: u32::try_from(r.r_sym).unwrap_or(u32::MAX),
                addend: r.r_addend.unwrap_or(0),
            });
        }
        if relocs.len() > start {
            groups.push(RelocGroup {
                section: u32::try_from(target).unwrap_or(u32::MAX),
                start,
                end: relocs.len(),
            });
        }
    }

    // References to symbols in unloaded sections.
    for g in &groups {
        for r in relocs.get(g.start..g.end).unwrap_or(&[]) {
            if let Some(sym) = symbols.get(r.sym as usize)
                && let Def::Section { section, .. } = sym.def
                && let Some(s) = sections.get(section as usize)
                && s.class == SectionClass::Skip
            {
                return Err(Error::ReferenceToUnloadedSection {
                    symbol: sym.name.to_string(),
                    section: elf::section_label(&names, section as usize),
                });
            }
        }
    }

    Ok(Member {
        name: name.to_string(),
        sections,
        symbols,
        relocs,
        groups,
    })
}

/// Fails if any two file ranges overlap. Zero-length ranges never overlap.
fn check_overlaps(ranges: &mut [(u64, u64, String)]) -> Result<()> {
    ranges.sort_by_key(|r| (r.0, r.1));
    let mut prev: Option<&(u64, u64, String)> = None;
    for r in ranges.iter() {
        if r.1 == 0 {
            continue;
        }
        if let Some(p) = prev {
            // p.0 + p.1 was bounds-checked against the file length already,
            // except for the header table whose size saturates.
            if p.0.saturating_add(p.1) > r.0 {
                return Err(Error::SectionsOverlap {
                    first: p.2.clone(),
                    second: r.2.clone(),
                });
            }
        }
        prev = Some(r);
    }
    Ok(())
}

/// Reads and validates the member's symbols. Undefined globals get
/// `Def::Import(u32::MAX)` as a placeholder, fixed by [`unify`].
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

/// Resolves undefined symbols between the members of a unit, collects the
/// unit's imports and exports.
fn unify(mut members: Vec<Member<'_>>) -> Result<Object<'_>> {
    // Global definitions of the unit: name -> (member, symbol).
    let mut globals: HashMap<&str, (u32, u32)> = HashMap::new();
    for (f, m) in members.iter().enumerate() {
        for (s, sym) in m.symbols.iter().enumerate() {
            let defined = matches!(sym.def, Def::Section { .. } | Def::Absolute(_));
            if !defined || sym.bind == STB_LOCAL || sym.name.is_empty() {
                continue;
            }
            let key = (
                u32::try_from(f).unwrap_or(u32::MAX),
                u32::try_from(s).unwrap_or(u32::MAX),
            );
            match globals.get(sym.name).copied() {
                None => {
                    globals.insert(sym.name, key);
                }
                Some((pf, ps)) => {
                    let prev = members
                        .get(pf as usize)
                        .and_then(|m| m.symbols.get(ps as usize));
                    let prev_weak = prev.is_some_and(|p| p.bind == STB_WEAK);
                    match (prev_weak, sym.bind == STB_WEAK) {
                        (_, true) => {}
                        (true, false) => {
                            globals.insert(sym.name, key);
                        }
                        (false, false) => {
                            return Err(Error::DuplicateSymbol {
                                symbol: sym.name.to_string(),
                                first: members
                                    .get(pf as usize)
                                    .map_or_else(String::new, |m| m.name.clone()),
                                second: m.name.clone(),
                            });
                        }
                    }
                }
            }
        }
    }
    // Resolve undefined references.
    let mut imports: Vec<Import<'_>> = Vec::new();
    let mut import_index: HashMap<&str, u32> = HashMap::new();
    let mut resolved: Vec<(usize, usize, Def)> = Vec::new();
    let mut bound_sections: Vec<&str> = Vec::new();
    for (f, m) in members.iter().enumerate() {
        for (s, sym) in m.symbols.iter().enumerate() {
            if sym.def != Def::Import(u32::MAX) {
                continue;
            }
            let def = if let Some(&(gf, gs)) = globals.get(sym.name) {
                members
                    .get(gf as usize)
                    .and_then(|gm| gm.symbols.get(gs as usize))
                    .map_or(Def::Null, |g| g.def)
            } else if let Some(def) = bound_def(&members, &mut bound_sections, sym.name) {
                def
            } else if let Some(&n) = import_index.get(sym.name) {
                if sym.bind != STB_WEAK
                    && let Some(imp) = imports.get_mut(n as usize)
                {
                    imp.weak = false;
                }
                Def::Import(n)
            } else {
                let n = u32::try_from(imports.len()).unwrap_or(u32::MAX);
                imports.push(Import {
                    name: sym.name,
                    weak: sym.bind == STB_WEAK,
                });
                import_index.insert(sym.name, n);
                Def::Import(n)
            };
            resolved.push((f, s, def));
        }
    }
    for (f, s, def) in resolved {
        if let Some(sym) = members.get_mut(f).and_then(|m| m.symbols.get_mut(s)) {
            sym.def = def;
        }
    }
    let mut exports: Vec<(u32, u32)> = globals
        .into_iter()
        .filter(|&(_, (f, s))| {
            members
                .get(f as usize)
                .and_then(|m| m.symbols.get(s as usize))
                .is_some_and(|sym| matches!(sym.visibility, STV_DEFAULT | STV_PROTECTED))
        })
        .map(|(_, key)| key)
        .collect();
    exports.sort_unstable();
    Ok(Object {
        members,
        imports,
        exports,
        bound_sections,
    })
}

/// The linker's definition of `name` if it is a section bound
/// (`__start_X`/`__stop_X`) and some member has a loaded section `X`;
/// `X` is added to `groups` on first use.
fn bound_def<'a>(members: &[Member<'a>], groups: &mut Vec<&'a str>, name: &str) -> Option<Def> {
    let bound = crate::bounds::section_bound(name)?;
    let section = members
        .iter()
        .flat_map(|m| m.sections.iter())
        .find(|s| s.name == bound.section && s.class != SectionClass::Skip)?
        .name;
    let group = match groups.iter().position(|g| *g == section) {
        Some(i) => i,
        None => {
            groups.push(section);
            groups.len() - 1
        }
    };
    Some(Def::Bound {
        group: u32::try_from(group).unwrap_or(u32::MAX),
        end: bound.end,
    })
}
