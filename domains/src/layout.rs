//! Layout: where every loaded section, the GOT and the far-call stubs go,
//! computed before any memory is allocated.
//!
//! Three segments, by permission:
//!
//! | segment    | contents                                                       | kernel maps |
//! |------------|----------------------------------------------------------------|-------------|
//! | `Text`     | `SHF_EXECINSTR` sections, then the far-call stubs             | R X         |
//! | `ReadOnly` | read-only sections, `.data.rel.ro.*`, unwind tables, then the GOT | R (NX)   |
//! | `Data`     | writable sections, then `SHT_NOBITS` (bss, zero-filled)        | R W (NX)    |
//!
//! `.data.rel.ro.*` and the GOT are written by the linker, which works on
//! byte buffers before the kernel maps them; once mapped they are never
//! written again, so they belong in the read-only segment. The GOT is
//! therefore read-only at run time.
//!
//! Within a segment, sections keep their input order (member by member,
//! section by section), each at an offset aligned to its `sh_addralign`.
//! A segment's alignment is the largest alignment of its contents; its
//! base address must be a multiple of it (the kernel uses page-aligned
//! bases, which suffices unless a section asks for more than a page).
//!
//! All segments of one image must lie within ±2 GiB of each other: code
//! reaches its constants, statics and GOT with 32-bit PC-relative
//! displacements. Imports may be anywhere: calls to far imports go through
//! stubs and address loads through the GOT.

use alloc::vec::Vec;

use hashbrown::HashMap;

use crate::error::{Error, Result};
use crate::object::{Def, Object, SectionClass};
use crate::reloc::{RelocKind, STUB_SIZE};

/// Size of one GOT slot.
pub(crate) const GOT_SLOT: u64 = 8;

/// The three segments of a linked image.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum SegmentKind {
    /// Code and far-call stubs: map read + execute.
    Text,
    /// Constants, relocated read-only data and the GOT: map read-only,
    /// no-execute.
    ReadOnly,
    /// Statics and bss: map read + write, no-execute.
    Data,
}

impl SegmentKind {
    /// All three, in image order.
    pub const ALL: [SegmentKind; 3] = [SegmentKind::Text, SegmentKind::ReadOnly, SegmentKind::Data];

    /// Lower-case name for messages.
    pub fn name(self) -> &'static str {
        match self {
            SegmentKind::Text => "text",
            SegmentKind::ReadOnly => "rodata",
            SegmentKind::Data => "data",
        }
    }
}

/// Size and alignment of one segment, as planned.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct SegmentSpec {
    /// Bytes needed (bss included for `Data`); may be 0.
    pub size: u64,
    /// Required alignment of the base address: a power of two, at least 1.
    pub align: u64,
}

/// The base addresses the kernel chose for the three segments.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct SegmentBases {
    /// Base of the text segment.
    pub text: u64,
    /// Base of the read-only segment.
    pub rodata: u64,
    /// Base of the data segment.
    pub data: u64,
}

impl SegmentBases {
    /// The base for `kind`.
    pub fn get(&self, kind: SegmentKind) -> u64 {
        match kind {
            SegmentKind::Text => self.text,
            SegmentKind::ReadOnly => self.rodata,
            SegmentKind::Data => self.data,
        }
    }
}

/// Options for planning and linking.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct LinkOptions {
    /// Relax `R_X86_64_GOTPCRELX` / `R_X86_64_REX_GOTPCRELX` when the
    /// symbol is within ±2 GiB: `mov` from the GOT becomes `lea`, `call *`
    /// and `jmp *` through the GOT become direct. The GOT slot is still
    /// reserved (sizes are fixed before addresses are known) but unused.
    /// Plain `R_X86_64_GOTPCREL` is never relaxed.
    pub relax_got: bool,
}

impl Default for LinkOptions {
    /// Relaxation on.
    fn default() -> Self {
        LinkOptions { relax_got: true }
    }
}

/// The layout of an [`Object`]: every size and offset of the linked image,
/// with no addresses yet. Obtained from [`Object::plan`]; turned into a
/// [`LinkedImage`](crate::LinkedImage) by [`LinkPlan::link`].
#[derive(Clone, Debug)]
pub struct LinkPlan<'o, 'a> {
    pub(crate) object: &'o Object<'a>,
    pub(crate) options: LinkOptions,
    /// Per member, per section: segment and offset for loaded sections.
    pub(crate) section_slots: Vec<Vec<Option<(SegmentKind, u64)>>>,
    pub(crate) specs: [SegmentSpec; 3],
    /// Offset of the GOT in the read-only segment.
    pub(crate) got_offset: u64,
    /// What each GOT slot holds.
    pub(crate) got: Vec<Def>,
    pub(crate) got_index: HashMap<Def, u32>,
    /// Offset of the stubs in the text segment.
    pub(crate) stub_offset: u64,
    /// The import each stub jumps to.
    pub(crate) stubs: Vec<u32>,
    pub(crate) stub_index: HashMap<u32, u32>,
    /// Per bound section group (see [`crate::bounds`]): its segment and
    /// the offsets of its first byte and one past its last.
    pub(crate) bounds: Vec<(SegmentKind, u64, u64)>,
}

/// Zero bytes reserved after each unwind-table section (see [`Object::plan`]).
pub const UNWIND_TERMINATOR: u64 = 4;

fn align_up(value: u64, align: u64) -> Result<u64> {
    let mask = align - 1;
    value
        .checked_add(mask)
        .map(|v| v & !mask)
        .ok_or(Error::LimitExceeded {
            limit: "address space",
            context: alloc::string::String::from("layout"),
            value,
            max: u64::MAX,
        })
}

/// Running size of one segment during layout.
#[derive(Clone, Copy)]
struct Cursor {
    size: u64,
    align: u64,
}

impl Cursor {
    fn place(&mut self, size: u64, align: u64) -> Result<u64> {
        let at = align_up(self.size, align)?;
        self.size = at.checked_add(size).ok_or(Error::LimitExceeded {
            limit: "address space",
            context: alloc::string::String::from("layout"),
            value: at,
            max: u64::MAX,
        })?;
        self.align = self.align.max(align);
        Ok(at)
    }
}

impl<'a> Object<'a> {
    /// Lays the object out: segment sizes and alignments, GOT slots (one per
    /// distinct symbol referenced through the GOT) and far-call stubs (one
    /// per distinct import called with `R_X86_64_PLT32`).
    pub fn plan(&self, options: &LinkOptions) -> Result<LinkPlan<'_, 'a>> {
        let mut cursors = [Cursor { size: 0, align: 1 }; 3];
        let mut section_slots: Vec<Vec<Option<(SegmentKind, u64)>>> = self
            .members
            .iter()
            .map(|m| alloc::vec![None; m.sections.len()])
            .collect();
        // Pass order gives the in-segment order: text; rodata, relro,
        // unwind; data, bss.
        let passes = [
            (SectionClass::Text, SegmentKind::Text),
            (SectionClass::ReadOnly, SegmentKind::ReadOnly),
            (SectionClass::RelRo, SegmentKind::ReadOnly),
            (SectionClass::Unwind, SegmentKind::ReadOnly),
            (SectionClass::Data, SegmentKind::Data),
            (SectionClass::Bss, SegmentKind::Data),
        ];
        let mut bounds = alloc::vec![None; self.bound_sections.len()];
        for (want, seg) in passes {
            let cursor = &mut cursors[seg_index(seg)];
            for (m, member) in self.members.iter().enumerate() {
                for (s, sec) in member.sections.iter().enumerate() {
                    if sec.class != want {
                        continue;
                    }
                    if let Some(group) = self.bound_sections.iter().position(|g| *g == sec.name) {
                        // The whole group goes here, at its first section.
                        if bounds[group].is_none() {
                            let range =
                                self.place_group(sec.name, want, cursor, &mut section_slots)?;
                            bounds[group] = Some((seg, range.0, range.1));
                        }
                        continue;
                    }
                    let at = cursor.place(sec.size, sec.align)?;
                    if let Some(slot) = section_slots.get_mut(m).and_then(|p| p.get_mut(s)) {
                        *slot = Some((seg, at));
                    }
                    if want == SectionClass::Unwind {
                        // A zero length word ends the table: unwinders
                        // registering `.eh_frame` walk its records up to
                        // one, and a relocatable object's section has none.
                        cursor.place(UNWIND_TERMINATOR, 1)?;
                    }
                }
            }
        }
        // GOT slots and stubs.
        let mut got = Vec::new();
        let mut got_index = HashMap::new();
        let mut stubs = Vec::new();
        let mut stub_index = HashMap::new();
        for member in &self.members {
            for r in &member.relocs {
                let Some(sym) = member.symbols.get(r.sym as usize) else {
                    continue;
                };
                if r.kind.uses_got() && !got_index.contains_key(&sym.def) {
                    got_index.insert(sym.def, u32::try_from(got.len()).unwrap_or(u32::MAX));
                    got.push(sym.def);
                }
                if r.kind == RelocKind::Plt32
                    && let Def::Import(n) = sym.def
                    && !stub_index.contains_key(&n)
                {
                    stub_index.insert(n, u32::try_from(stubs.len()).unwrap_or(u32::MAX));
                    stubs.push(n);
                }
            }
        }
        let got_offset = if got.is_empty() {
            cursors[1].size
        } else {
            cursors[1].place(got.len() as u64 * GOT_SLOT, GOT_SLOT)?
        };
        let stub_offset = if stubs.is_empty() {
            cursors[0].size
        } else {
            cursors[0].place(stubs.len() as u64 * STUB_SIZE, STUB_SIZE)?
        };
        let specs = cursors.map(|c| SegmentSpec {
            size: c.size,
            align: c.align,
        });
        // Every group was met in some pass: its sections are loaded.
        let bounds = bounds.into_iter().flatten().collect();
        Ok(LinkPlan {
            object: self,
            options: *options,
            section_slots,
            specs,
            got_offset,
            got,
            got_index,
            stub_offset,
            stubs,
            stub_index,
            bounds,
        })
    }

    /// Places every loaded section called `name` one after another, in
    /// input order, and returns the group's first and end offsets. They
    /// must all be of class `want`: `__start_`/`__stop_` bound one range.
    fn place_group(
        &self,
        name: &str,
        want: SectionClass,
        cursor: &mut Cursor,
        section_slots: &mut [Vec<Option<(SegmentKind, u64)>>],
    ) -> Result<(u64, u64)> {
        let seg = match want {
            SectionClass::Text => SegmentKind::Text,
            SectionClass::Data | SectionClass::Bss => SegmentKind::Data,
            _ => SegmentKind::ReadOnly,
        };
        let mut range: Option<(u64, u64)> = None;
        for (m, member) in self.members.iter().enumerate() {
            for (s, sec) in member.sections.iter().enumerate() {
                if sec.name != name || sec.class == SectionClass::Skip {
                    continue;
                }
                if sec.class != want {
                    return Err(Error::UnsupportedSection {
                        section: name.into(),
                        reason: "sections of this name differ in flags, so no one range holds them all for __start_/__stop_",
                    });
                }
                let at = cursor.place(sec.size, sec.align)?;
                if let Some(slot) = section_slots.get_mut(m).and_then(|p| p.get_mut(s)) {
                    *slot = Some((seg, at));
                }
                let end = at.saturating_add(sec.size);
                range = Some(range.map_or((at, end), |(start, _)| (start, end)));
            }
        }
        Ok(range.unwrap_or((cursor.size, cursor.size)))
    }
}

pub(crate) fn seg_index(kind: SegmentKind) -> usize {
    match kind {
        SegmentKind::Text => 0,
        SegmentKind::ReadOnly => 1,
        SegmentKind::Data => 2,
    }
}

impl LinkPlan<'_, '_> {
    /// Size and alignment of one segment.
    pub fn segment(&self, kind: SegmentKind) -> SegmentSpec {
        self.specs[seg_index(kind)]
    }

    /// Number of GOT slots reserved (8 bytes each, in the read-only segment).
    pub fn got_slots(&self) -> usize {
        self.got.len()
    }

    /// Number of far-call stubs reserved (16 bytes each, in the text segment).
    pub fn stub_slots(&self) -> usize {
        self.stubs.len()
    }

    /// The options the plan was made with.
    pub fn options(&self) -> LinkOptions {
        self.options
    }

    /// Bases for placing all three segments in one region starting at
    /// `base`, each segment starting on a `page` boundary (and on its own
    /// alignment). `page` must be a power of two. Use with
    /// [`LinkPlan::contiguous_span`] to allocate the region.
    pub fn contiguous_bases(&self, base: u64, page: u64) -> Result<SegmentBases> {
        let mut at = base;
        let mut out = [0u64; 3];
        for kind in SegmentKind::ALL {
            let spec = self.segment(kind);
            let align = spec.align.max(page.max(1));
            if !align.is_power_of_two() {
                return Err(Error::BadBases {
                    reason: "page size is not a power of two",
                });
            }
            at = align_up(at, align)?;
            out[seg_index(kind)] = at;
            at = at.checked_add(spec.size).ok_or(Error::BadBases {
                reason: "region wraps around the address space",
            })?;
        }
        Ok(SegmentBases {
            text: out[0],
            rodata: out[1],
            data: out[2],
        })
    }

    /// Bytes needed for [`LinkPlan::contiguous_bases`] at a `page`-aligned base:
    /// each segment rounded up to `page`.
    pub fn contiguous_span(&self, page: u64) -> Result<u64> {
        let bases = self.contiguous_bases(0, page)?;
        let end = bases
            .data
            .checked_add(self.segment(SegmentKind::Data).size)
            .ok_or(Error::BadBases {
                reason: "region wraps around the address space",
            })?;
        align_up(end, page.max(1))
    }
}

#[cfg(test)]
mod unwind_table_tests {
    use crate::testelf::*;
    use crate::*;

    /// Two objects' worth of `.eh_frame` (one per member would do too):
    /// each table must be followed by a zero length word and listed by
    /// `unwind_tables`, even when the next section starts right after it.
    #[test]
    fn each_unwind_table_is_followed_by_a_zero_terminator() {
        let mut elf = ObjBuilder::new();
        let text = elf.text(".text.f", &[0xc3]);
        elf.global_fn("f", text, 0);
        let first = [0xaau8; 12];
        let second = [0xbbu8; 20];
        let unwind = goblin::elf::section_header::SHT_X86_64_UNWIND;
        elf.raw_section(".eh_frame", unwind, SHF_ALLOC, &first, 4);
        elf.raw_section(".eh_frame", unwind, SHF_ALLOC, &second, 4);
        elf.rodata(".rodata.after", &[0xcc; 8]);
        let bytes = elf.build();
        let object = Object::parse(&bytes, &Limits::default()).unwrap();
        let plan = object.plan(&LinkOptions::default()).unwrap();
        let bases = SegmentBases {
            text: 0x10_0000,
            rodata: 0x20_0000,
            data: 0x30_0000,
        };
        let provider = Domain::from_exports("none", core::iter::empty::<(&str, u64)>());
        let image = plan.link(bases, &Exports(&provider)).unwrap();
        let tables: alloc::vec::Vec<u64> = image.unwind_tables().collect();
        assert_eq!(tables.len(), 2, "{:?}", image.sections());
        for (table, len) in tables.iter().zip([first.len(), second.len()]) {
            let bytes = image.read(*table, len as u64 + 4).unwrap();
            assert!(bytes[..len].iter().all(|&b| b == 0xaa || b == 0xbb));
            assert_eq!(
                &bytes[len..],
                &[0, 0, 0, 0],
                "no terminator after {table:#x}"
            );
        }
    }
}
