//! Linking a planned object at chosen base addresses into byte buffers.

use alloc::string::{String, ToString};
use alloc::vec::Vec;
use core::ops::Range;

use crate::error::{Error, Result, UnresolvedSymbol};
use crate::layout::{GOT_SLOT, LinkPlan, SegmentBases, SegmentKind, seg_index};
use crate::object::{Def, Object, Section, SectionClass};
use crate::reloc::{self, Relaxation, RelocKind, STUB_SIZE};
use crate::symtab::SymbolTable;
use goblin::elf::sym::STT_FUNC;

/// Supplies addresses for a unit's imports.
///
/// A [`Domain`](crate::Domain) is a resolver for its own imports (what
/// [`resolve`](crate::resolve) bound them to); [`Exports`](crate::Exports)
/// resolves against a domain's exports; `FnResolver` wraps a closure.
pub trait Resolver {
    /// The address of `name`, if known.
    fn resolve(&self, name: &str) -> Option<u64>;
    /// Name of what is being resolved, for error messages.
    fn name(&self) -> &str;
    /// The domains that were searched, for error messages.
    fn searched(&self) -> Vec<String> {
        Vec::new()
    }
}

/// A [`Resolver`] from a closure, named for error messages.
pub struct FnResolver<F> {
    name: String,
    f: F,
}

impl<F: Fn(&str) -> Option<u64>> FnResolver<F> {
    /// Wraps `f`; `name` appears in errors.
    pub fn new(name: &str, f: F) -> Self {
        FnResolver {
            name: name.to_string(),
            f,
        }
    }
}

impl<F: Fn(&str) -> Option<u64>> Resolver for FnResolver<F> {
    fn resolve(&self, name: &str) -> Option<u64> {
        (self.f)(name)
    }
    fn name(&self) -> &str {
        &self.name
    }
}

/// One segment of a linked image: its base address and its bytes.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Segment {
    /// Which segment.
    pub kind: SegmentKind,
    /// The address it was linked for.
    pub base: u64,
    /// Contents; the kernel copies them to `base` (text padding is `int3`,
    /// bss is zero and included at the end of the data segment).
    pub bytes: Vec<u8>,
}

impl Segment {
    /// Addresses covered.
    pub fn range(&self) -> Range<u64> {
        self.base..self.base.saturating_add(self.bytes.len() as u64)
    }
}

/// An import and the address it was linked against.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ResolvedImport {
    /// Symbol name.
    pub name: String,
    /// Address used (0 for an unresolved weak import).
    pub address: u64,
}

/// A loaded input section and where it ended up.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct PlacedSection {
    /// Section name.
    pub name: String,
    /// Its segment.
    pub segment: SegmentKind,
    /// Its address.
    pub address: u64,
    /// Its size.
    pub size: u64,
    /// An unwind table (`.eh_frame`): followed in the image by a zero
    /// length word, so it can be registered with an unwinder as it is.
    pub unwind_table: bool,
}

/// A function of a linked object and its address (see
/// [`LinkPlan::placed_functions`]).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct PlacedFunction<'a> {
    /// The symbol name, mangled, as the object spells it.
    pub name: &'a str,
    /// Its address in the image.
    pub address: u64,
    /// `st_size` (0 if the object does not say).
    pub size: u64,
}

/// Numbers for the loader's report.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct LinkStats {
    by_kind: [u32; RelocKind::ALL.len()],
    /// GOT slots filled.
    pub got_slots: u32,
    /// Far-call stubs reserved.
    pub stubs_reserved: u32,
    /// Stubs actually used (distinct imports called out of range).
    pub stubs_used: u32,
    /// `PLT32` relocations that went through a stub (target out of range).
    pub stub_calls: u32,
    /// GOT-relative instructions relaxed to direct addressing.
    pub relaxed: u32,
    /// Loaded input sections.
    pub sections: u32,
    /// Imports resolved (weak ones left at 0 included).
    pub imports: u32,
    /// Symbols exported.
    pub exports: u32,
}

impl LinkStats {
    /// Relocations applied, per kind (kinds with a zero count included).
    pub fn relocations(&self) -> impl Iterator<Item = (RelocKind, u32)> + '_ {
        RelocKind::ALL
            .iter()
            .copied()
            .zip(self.by_kind.iter().copied())
    }

    /// Relocations of `kind` applied.
    pub fn count(&self, kind: RelocKind) -> u32 {
        self.by_kind.get(kind.index()).copied().unwrap_or(0)
    }

    /// All relocations applied.
    pub fn total_relocations(&self) -> u64 {
        self.by_kind.iter().map(|&n| u64::from(n)).sum()
    }
}

/// The result of linking: three segment buffers ready to be copied to their
/// base addresses, plus the symbol information the loader needs.
#[derive(Clone, Debug)]
pub struct LinkedImage {
    segments: [Segment; 3],
    /// The object's functions at their addresses, sorted: (address, size,
    /// range of the name in `function_names`).
    functions: Vec<(u64, u64, Range<u32>)>,
    function_names: String,
    exports: SymbolTable<u64>,
    imports: Vec<ResolvedImport>,
    sections: Vec<PlacedSection>,
    stats: LinkStats,
}

impl LinkedImage {
    /// One segment.
    pub fn segment(&self, kind: SegmentKind) -> &Segment {
        &self.segments[seg_index(kind)]
    }

    /// All three segments: text, rodata, data.
    pub fn segments(&self) -> &[Segment; 3] {
        &self.segments
    }

    /// The base addresses the image was linked for.
    pub fn bases(&self) -> SegmentBases {
        SegmentBases {
            text: self.segments[0].base,
            rodata: self.segments[1].base,
            data: self.segments[2].base,
        }
    }

    /// Address of an exported symbol (global or weak, default or protected
    /// visibility), e.g. the extension descriptor.
    pub fn symbol(&self, name: &str) -> Option<u64> {
        self.exports.get(name).copied()
    }

    /// [`LinkedImage::symbol`], or [`Error::MissingSymbol`] naming it.
    pub fn require_symbol(&self, name: &str) -> Result<u64> {
        self.symbol(name).ok_or_else(|| Error::MissingSymbol {
            symbol: name.to_string(),
        })
    }

    /// All exports: name and absolute address.
    pub fn exports(&self) -> impl ExactSizeIterator<Item = (&str, u64)> + '_ {
        self.exports.iter().map(|(n, a)| (n, *a))
    }

    /// The imports and the addresses they were linked against.
    pub fn imports(&self) -> &[ResolvedImport] {
        &self.imports
    }

    /// Loaded input sections with their addresses, in layout order per
    /// segment.
    pub fn sections(&self) -> &[PlacedSection] {
        &self.sections
    }

    /// Addresses of the unwind tables (`.eh_frame` sections), each ended
    /// by a zero length word: what an unwinder's `__register_frame` takes.
    pub fn unwind_tables(&self) -> impl Iterator<Item = u64> + '_ {
        self.sections
            .iter()
            .filter(|s| s.unwind_table && s.size > 0)
            .map(|s| s.address)
    }

    /// Every function of the object (local ones included) at its address,
    /// sorted by address: the image's symbol map, for backtraces (see
    /// [`LinkPlan::placed_functions`]).
    pub fn functions(&self) -> impl ExactSizeIterator<Item = PlacedFunction<'_>> + '_ {
        self.functions
            .iter()
            .map(|(address, size, name)| PlacedFunction {
                name: self
                    .function_names
                    .get(name.start as usize..name.end as usize)
                    .unwrap_or(""),
                address: *address,
                size: *size,
            })
    }

    /// The first loaded section named `name` (e.g. a descriptor section).
    pub fn section(&self, name: &str) -> Option<&PlacedSection> {
        self.sections.iter().find(|s| s.name == name)
    }

    /// Link statistics.
    pub fn stats(&self) -> &LinkStats {
        &self.stats
    }

    /// `len` bytes of the image at `address`, which must lie inside one
    /// segment (bss included).
    pub fn read(&self, address: u64, len: u64) -> Result<&[u8]> {
        let outside = Error::AddressOutsideImage { address, len };
        for seg in &self.segments {
            let Some(off) = address.checked_sub(seg.base) else {
                continue;
            };
            let Some(end) = off.checked_add(len) else {
                continue;
            };
            if end <= seg.bytes.len() as u64 {
                let (Ok(start), Ok(end)) = (usize::try_from(off), usize::try_from(end)) else {
                    return Err(outside);
                };
                return seg.bytes.get(start..end).ok_or(outside);
            }
        }
        Err(outside)
    }

    /// The little-endian `u64` at `address` (e.g. a pointer field of a
    /// descriptor).
    pub fn read_u64(&self, address: u64) -> Result<u64> {
        let b = self.read(address, 8)?;
        let mut a = [0u8; 8];
        a.copy_from_slice(b);
        Ok(u64::from_le_bytes(a))
    }
}

fn check_bases(plan: &LinkPlan<'_, '_>, bases: &SegmentBases) -> Result<[Range<u64>; 3]> {
    let mut ranges: [Range<u64>; 3] = [0..0, 0..0, 0..0];
    for kind in SegmentKind::ALL {
        let spec = plan.segment(kind);
        let base = bases.get(kind);
        if !base.is_multiple_of(spec.align) {
            return Err(Error::MisalignedBase {
                segment: kind.name(),
                base,
                align: spec.align,
            });
        }
        let end = base.checked_add(spec.size).ok_or(Error::BadBases {
            reason: "a segment wraps around the address space",
        })?;
        ranges[seg_index(kind)] = base..end;
    }
    for i in 0..3 {
        for j in (i + 1)..3 {
            let (a, b) = (&ranges[i], &ranges[j]);
            if !a.is_empty() && !b.is_empty() && a.start < b.end && b.start < a.end {
                return Err(Error::BadBases {
                    reason: "segments overlap",
                });
            }
        }
    }
    Ok(ranges)
}

/// Address of a definition, given resolved import addresses.
fn def_address(plan: &LinkPlan<'_, '_>, bases: &SegmentBases, imports: &[u64], def: Def) -> u64 {
    match def {
        Def::Null => 0,
        Def::Absolute(v) => v,
        Def::Import(n) => imports.get(n as usize).copied().unwrap_or(0),
        Def::Bound { group, end } => plan
            .bounds
            .get(group as usize)
            .map_or(0, |&(seg, start, stop)| {
                bases.get(seg).wrapping_add(if end { stop } else { start })
            }),
        Def::Section {
            file,
            section,
            offset,
        } => plan
            .section_slots
            .get(file as usize)
            .and_then(|p| p.get(section as usize))
            .copied()
            .flatten()
            .map_or(0, |(seg, at)| {
                bases.get(seg).wrapping_add(at).wrapping_add(offset)
            }),
    }
}

fn write_at(buf: &mut [u8], at: u64, bytes: &[u8]) -> bool {
    let Ok(start) = usize::try_from(at) else {
        return false;
    };
    let Some(end) = start.checked_add(bytes.len()) else {
        return false;
    };
    match buf.get_mut(start..end) {
        Some(dst) => {
            dst.copy_from_slice(bytes);
            true
        }
        None => false,
    }
}

fn buffer(size: u64, fill: u8) -> Result<Vec<u8>> {
    let n = usize::try_from(size).map_err(|_| Error::LimitExceeded {
        limit: "address space",
        context: "segment".to_string(),
        value: size,
        max: usize::MAX as u64,
    })?;
    Ok(alloc::vec![fill; n])
}

fn placed_section(sec: &Section<'_>, segment: SegmentKind, address: u64) -> PlacedSection {
    PlacedSection {
        name: sec.name.to_string(),
        segment,
        address,
        size: sec.size,
        unwind_table: sec.class == SectionClass::Unwind,
    }
}

impl<'a> LinkPlan<'_, 'a> {
    /// Every loaded section with its segment and offset in that segment,
    /// in the order [`LinkPlan::link`] copies them.
    fn loaded_sections(&self) -> impl Iterator<Item = (&Section<'a>, SegmentKind, u64)> + '_ {
        self.object
            .members
            .iter()
            .enumerate()
            .flat_map(move |(m, member)| {
                member
                    .sections
                    .iter()
                    .enumerate()
                    .filter_map(move |(s, sec)| {
                        let (seg, at) = self.section_slots.get(m)?.get(s).copied().flatten()?;
                        Some((sec, seg, at))
                    })
            })
    }

    /// Where the loaded sections go for `bases`, exactly as
    /// [`LinkedImage::sections`] of [`LinkPlan::link`] with the same bases will
    /// say, without linking anything: what a debugger or a symboliser on
    /// the host needs to map an address of the image back to a section.
    pub fn placed_sections(&self, bases: SegmentBases) -> Vec<PlacedSection> {
        self.loaded_sections()
            .map(|(sec, seg, at)| placed_section(sec, seg, bases.get(seg).wrapping_add(at)))
            .collect()
    }

    /// Every function of the object (`STT_FUNC` symbols defined in a loaded
    /// section, local ones included: closures and private functions are
    /// local) at its address for `bases`, sorted by address. This is the
    /// address-to-name table of a loaded extension, for backtraces.
    pub fn placed_functions(&self, bases: SegmentBases) -> Vec<PlacedFunction<'a>> {
        let mut functions: Vec<PlacedFunction<'a>> = self
            .object
            .members
            .iter()
            .enumerate()
            .flat_map(|(m, member)| {
                member.symbols.iter().filter_map(move |sym| {
                    let Def::Section {
                        file,
                        section,
                        offset,
                    } = sym.def
                    else {
                        return None;
                    };
                    if sym.kind != STT_FUNC || sym.name.is_empty() || file as usize != m {
                        return None;
                    }
                    let (seg, at) = self
                        .section_slots
                        .get(m)?
                        .get(section as usize)
                        .copied()
                        .flatten()?;
                    Some(PlacedFunction {
                        name: sym.name,
                        address: bases.get(seg).wrapping_add(at).wrapping_add(offset),
                        size: sym.size,
                    })
                })
            })
            .collect();
        functions.sort_by(|a, b| a.address.cmp(&b.address).then(a.name.cmp(b.name)));
        functions.dedup_by(|b, a| a.address == b.address && a.name == b.name);
        functions
    }
}

impl LinkPlan<'_, '_> {
    /// Links the object for the given segment base addresses.
    ///
    /// Every import is looked up in `resolver` first; if any non-weak import
    /// is missing, the result is [`Error::Unresolved`] listing **all** of
    /// them, and nothing else is done. Unresolved weak imports link as
    /// address 0. Then sections are copied, the GOT and stubs filled, and
    /// every relocation applied with its range check.
    pub fn link(&self, bases: SegmentBases, resolver: &dyn Resolver) -> Result<LinkedImage> {
        check_bases(self, &bases)?;
        let object: &Object<'_> = self.object;

        // Imports, all or nothing.
        let mut import_addrs = Vec::with_capacity(object.imports.len());
        let mut missing = Vec::new();
        for imp in &object.imports {
            match resolver.resolve(imp.name) {
                Some(a) => import_addrs.push(a),
                None if imp.weak => import_addrs.push(0),
                None => {
                    import_addrs.push(0);
                    missing.push(UnresolvedSymbol {
                        name: imp.name.to_string(),
                        ambiguous: false,
                    });
                }
            }
        }
        if !missing.is_empty() {
            return Err(Error::Unresolved {
                target: resolver.name().to_string(),
                searched: resolver.searched(),
                symbols: missing,
            });
        }

        let mut bufs = [
            buffer(self.segment(SegmentKind::Text).size, 0xcc)?,
            buffer(self.segment(SegmentKind::ReadOnly).size, 0)?,
            buffer(self.segment(SegmentKind::Data).size, 0)?,
        ];
        let mut stats = LinkStats::default();
        let mut sections = Vec::new();

        // Section contents.
        for (sec, seg, at) in self.loaded_sections() {
            if !sec.data.is_empty() && !write_at(&mut bufs[seg_index(seg)], at, sec.data) {
                return Err(Error::BadBases {
                    reason: "internal layout error: section outside its segment",
                });
            }
            stats.sections += 1;
            sections.push(placed_section(sec, seg, bases.get(seg).wrapping_add(at)));
        }

        // GOT.
        for (i, def) in self.got.iter().enumerate() {
            let value = def_address(self, &bases, &import_addrs, *def);
            let at = self.got_offset + i as u64 * GOT_SLOT;
            write_at(&mut bufs[1], at, &value.to_le_bytes());
        }
        stats.got_slots = u32::try_from(self.got.len()).unwrap_or(u32::MAX);

        // Stubs.
        for (i, &imp) in self.stubs.iter().enumerate() {
            let target = import_addrs.get(imp as usize).copied().unwrap_or(0);
            let at = self.stub_offset + i as u64 * STUB_SIZE;
            write_at(&mut bufs[0], at, &reloc::stub(target));
        }
        stats.stubs_reserved = u32::try_from(self.stubs.len()).unwrap_or(u32::MAX);

        // Relocations.
        let mut stub_used = alloc::vec![false; self.stubs.len()];
        for (m, member) in object.members.iter().enumerate() {
            for group in &member.groups {
                let Some((seg, sec_at)) = self
                    .section_slots
                    .get(m)
                    .and_then(|p| p.get(group.section as usize))
                    .copied()
                    .flatten()
                else {
                    continue;
                };
                let sec = member.sections.get(group.section as usize);
                let sec_name = sec.map_or("", |s| s.name);
                let sec_size = sec.map_or(0, |s| s.size);
                let seg_base = bases.get(seg);
                let buf = &mut bufs[seg_index(seg)];
                let relocs = member.relocs.get(group.start..group.end).unwrap_or(&[]);
                for r in relocs {
                    let sym = member.symbols.get(r.sym as usize);
                    let def = sym.map_or(Def::Null, |s| s.def);
                    let sym_name = sym.map_or("", |s| s.name);
                    let s_addr = def_address(self, &bases, &import_addrs, def);
                    let field = sec_at + r.offset;
                    let p = seg_base.wrapping_add(field);
                    let overflow = |value: i128| Error::RelocationOverflow {
                        type_name: r.kind.name(),
                        section: sec_name.to_string(),
                        offset: r.offset,
                        symbol: sym_name.to_string(),
                        value,
                    };
                    let value = match r.kind {
                        RelocKind::None => continue,
                        RelocKind::Abs64 | RelocKind::Abs32 | RelocKind::Abs32S => {
                            reloc::abs(s_addr, r.addend)
                        }
                        RelocKind::Pc32 | RelocKind::Pc64 => reloc::pc_rel(s_addr, r.addend, p),
                        RelocKind::Plt32 => {
                            let direct = reloc::pc_rel(s_addr, r.addend, p);
                            match (reloc::fits_rel32(direct), def) {
                                (false, Def::Import(n)) => match self.stub_index.get(&n) {
                                    Some(&slot) => {
                                        stats.stub_calls += 1;
                                        if let Some(u) = stub_used.get_mut(slot as usize) {
                                            *u = true;
                                        }
                                        let stub = bases
                                            .text
                                            .wrapping_add(self.stub_offset)
                                            .wrapping_add(u64::from(slot) * STUB_SIZE);
                                        reloc::pc_rel(stub, r.addend, p)
                                    }
                                    None => direct,
                                },
                                _ => direct,
                            }
                        }
                        RelocKind::GotPcRel | RelocKind::GotPcRelX | RelocKind::RexGotPcRelX => {
                            let direct = reloc::pc_rel(s_addr, r.addend, p);
                            let relax = if self.options.relax_got
                                && r.addend == -4
                                && reloc::fits_rel32(direct)
                                && reloc::fits_rel32(direct.wrapping_add(1))
                            {
                                let sec_range = usize::try_from(sec_at)
                                    .ok()
                                    .zip(usize::try_from(sec_at.saturating_add(sec_size)).ok());
                                sec_range.and_then(|(a, b)| buf.get(a..b)).and_then(|code| {
                                    usize::try_from(r.offset)
                                        .ok()
                                        .and_then(|o| reloc::relaxation(r.kind, code, o))
                                })
                            } else {
                                None
                            };
                            match relax {
                                Some(how) => {
                                    apply_relaxation(buf, field, how, direct);
                                    stats.relaxed += 1;
                                    stats.by_kind[r.kind.index()] += 1;
                                    continue;
                                }
                                None => {
                                    let slot = self.got_index.get(&def).copied().unwrap_or(0);
                                    let got = bases
                                        .rodata
                                        .wrapping_add(self.got_offset)
                                        .wrapping_add(u64::from(slot) * GOT_SLOT);
                                    reloc::pc_rel(got, r.addend, p)
                                }
                            }
                        }
                    };
                    let bytes = reloc::encode(r.kind, value).map_err(|o| overflow(o.0))?;
                    let width = usize::try_from(r.kind.width()).unwrap_or(0);
                    if !write_at(buf, field, bytes.get(..width).unwrap_or(&[])) {
                        return Err(Error::RelocationOutOfSection {
                            section: sec_name.to_string(),
                            offset: r.offset,
                            width: r.kind.width(),
                            size: sec_size,
                        });
                    }
                    stats.by_kind[r.kind.index()] += 1;
                }
            }
        }

        stats.stubs_used =
            u32::try_from(stub_used.iter().filter(|&&u| u).count()).unwrap_or(u32::MAX);

        // Exports.
        let mut exports = SymbolTable::with_capacity(object.exports.len(), 0);
        for sym in object.export_symbols() {
            let addr = def_address(self, &bases, &import_addrs, sym.def);
            // Names are unique: `unify` keeps one definition per name.
            let _ = exports.upsert(sym.name, addr, |_, _| {});
        }
        stats.exports = u32::try_from(exports.len()).unwrap_or(u32::MAX);
        stats.imports = u32::try_from(object.imports.len()).unwrap_or(u32::MAX);
        let imports = object
            .imports
            .iter()
            .zip(&import_addrs)
            .map(|(i, &a)| ResolvedImport {
                name: i.name.to_string(),
                address: a,
            })
            .collect();

        let placed = self.placed_functions(bases);
        let mut function_names = String::with_capacity(placed.iter().map(|f| f.name.len()).sum());
        let mut functions = Vec::with_capacity(placed.len());
        for f in &placed {
            let start = u32::try_from(function_names.len()).unwrap_or(u32::MAX);
            function_names.push_str(f.name);
            let end = u32::try_from(function_names.len()).unwrap_or(u32::MAX);
            functions.push((f.address, f.size, start..end));
        }

        let [text, rodata, data] = bufs;
        Ok(LinkedImage {
            segments: [
                Segment {
                    kind: SegmentKind::Text,
                    base: bases.text,
                    bytes: text,
                },
                Segment {
                    kind: SegmentKind::ReadOnly,
                    base: bases.rodata,
                    bytes: rodata,
                },
                Segment {
                    kind: SegmentKind::Data,
                    base: bases.data,
                    bytes: data,
                },
            ],
            functions,
            function_names,
            exports,
            imports,
            sections,
            stats,
        })
    }
}

/// Rewrites a GOT-indirect instruction whose displacement field is at
/// `field` in `buf` to address the symbol directly. `direct` is
/// `S + A - P`, already checked to fit (with +1) in 32 bits; the bytes
/// touched were checked by [`reloc::relaxation`] to lie inside the section.
fn apply_relaxation(buf: &mut [u8], field: u64, how: Relaxation, direct: u64) {
    let Some(f) = usize::try_from(field).ok() else {
        return;
    };
    // Checked by the caller to fit: truncation keeps the signed value.
    let disp = |v: u64| (v as i32).to_le_bytes();
    match how {
        Relaxation::MovToLea => {
            if let Some(op) = f.checked_sub(2).and_then(|i| buf.get_mut(i)) {
                *op = 0x8d;
            }
            write_at(buf, field, &disp(direct));
        }
        Relaxation::CallToDirect => {
            if let Some(b) = f.checked_sub(2).and_then(|i| buf.get_mut(i..i + 2)) {
                b.copy_from_slice(&[0x67, 0xe8]);
            }
            write_at(buf, field, &disp(direct));
        }
        Relaxation::JmpToDirect => {
            if let Some(b) = f.checked_sub(2).and_then(|i| buf.get_mut(i)) {
                *b = 0xe9;
            }
            write_at(buf, field.wrapping_sub(1), &disp(direct.wrapping_add(1)));
            write_at(buf, field.wrapping_add(3), &[0x90]);
        }
    }
}
