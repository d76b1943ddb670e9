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

use goblin::elf::sym::{STB_LOCAL, STB_WEAK, STV_DEFAULT, STV_PROTECTED};
use hashbrown::HashMap;

use crate::elf;
use crate::error::{Error, Result};
use crate::reloc::RelocKind;

mod member;

use member::parse_member;

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
