//! Linker-generated section bounds: `__start_SECTION` and `__stop_SECTION`.
//!
//! Static linkers (GNU ld, lld) define these two symbols for every output
//! section whose name is a valid C identifier, when something references
//! them: the address of the section's first byte and the address just past
//! its last. "Distributed slice" crates (`linkme`, `inventory`-style
//! registries) rely on it: each element is a static placed in a section
//! named after the slice, from as many crates and objects as like, and the
//! slice is read back as `__start_X..__stop_X`.
//!
//! `domains` does the same for a link unit (one object, or every member of
//! an archive): an undefined `__start_X` / `__stop_X` that no member defines
//! is bound to the bounds of the sections named exactly `X`, which the
//! layout places one after another (in input order) so that the bounds
//! enclose all of them and nothing else. A reference whose section does not
//! exist in the unit stays an import; if nothing resolves it, the
//! unresolved-symbol error says that no such section exists
//! ([`section_bound`] tells such names apart).

/// A name of the form `__start_X` or `__stop_X`, with `X` a C identifier.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct SectionBound<'a> {
    /// The section `X`.
    pub section: &'a str,
    /// `false` for `__start_X` (first byte), `true` for `__stop_X` (one
    /// past the last byte).
    pub end: bool,
}

/// Whether `name` is a C identifier (`[A-Za-z_][A-Za-z0-9_]*`): the only
/// section names static linkers define bounds for (`.text` is not one).
pub fn is_c_identifier(name: &str) -> bool {
    let mut bytes = name.bytes();
    bytes
        .next()
        .is_some_and(|b| b == b'_' || b.is_ascii_alphabetic())
        && bytes.all(|b| b == b'_' || b.is_ascii_alphanumeric())
}

/// `Some` if `symbol` is a section-bound name `__start_X` / `__stop_X` for a
/// C-identifier section name `X`.
pub fn section_bound(symbol: &str) -> Option<SectionBound<'_>> {
    let (section, end) = match symbol.strip_prefix("__start_") {
        Some(s) => (s, false),
        None => (symbol.strip_prefix("__stop_")?, true),
    };
    is_c_identifier(section).then_some(SectionBound { section, end })
}

#[cfg(test)]
mod tests {
    use alloc::vec::Vec;

    use super::*;
    use crate::testelf::*;
    use crate::{
        Domain, Error, Exports, Limits, LinkOptions, LinkedImage, Object, SegmentBases, SegmentKind,
    };

    const R_64: u32 = 1;

    const BASES: SegmentBases = SegmentBases {
        text: 0x10_0000,
        rodata: 0x20_0000,
        data: 0x30_0000,
    };

    fn link(bytes: &[u8]) -> crate::Result<LinkedImage> {
        let object = Object::parse(bytes, &Limits::default())?;
        let plan = object.plan(&LinkOptions::default())?;
        let provider = Domain::from_exports("none", core::iter::empty::<(&str, u64)>());
        plan.link(BASES, &Exports(&provider))
    }

    fn u64_at(image: &LinkedImage, address: u64) -> u64 {
        image.read_u64(address).unwrap()
    }

    #[test]
    fn names_are_recognised_only_for_c_identifier_sections() {
        assert_eq!(
            section_bound("__start_linkme_SLICE"),
            Some(SectionBound {
                section: "linkme_SLICE",
                end: false
            })
        );
        assert_eq!(
            section_bound("__stop_x9"),
            Some(SectionBound {
                section: "x9",
                end: true
            })
        );
        for not_one in [
            "__start_.text",
            "__start_",
            "__stop_9lives",
            "__stop_a-b",
            "start_x",
            "__start",
        ] {
            assert_eq!(section_bound(not_one), None, "{not_one}");
        }
        assert!(is_c_identifier("_"));
        assert!(!is_c_identifier(""));
    }

    /// One member: a data section `registry` with two 8-byte entries split
    /// over two input sections, another section between them in the file,
    /// and a read-only table holding `__start_registry` and
    /// `__stop_registry` through `R_X86_64_64`.
    fn registry_member(first: u64, second: u64, with_table: bool) -> Vec<u8> {
        let mut b = ObjBuilder::new();
        b.data("registry", &first.to_le_bytes());
        b.data(".data.between", &[0xee; 24]);
        b.data("registry", &second.to_le_bytes());
        if with_table {
            let table = b.rodata(".rodata.table", &[0; 16]);
            let start = b.undefined("__start_registry");
            let stop = b.undefined("__stop_registry");
            b.reloc(table, 0, start, R_64, 0);
            b.reloc(table, 8, stop, R_64, 0);
            b.global_fn("table", table, 0);
        }
        b.build()
    }

    #[test]
    fn bounds_enclose_every_section_of_that_name_across_members() {
        let a = registry_member(0x1111, 0x2222, true);
        let b = registry_member(0x3333, 0x4444, false);
        let bytes = ar(&[("a.o", &a), ("b.o", &b)]);
        let object = Object::parse(&bytes, &Limits::default()).unwrap();
        // Defined by the linker, not imported.
        assert_eq!(object.imports().count(), 0);
        let image = link(&bytes).unwrap();
        let table = image.symbol("table").unwrap();
        let (start, stop) = (u64_at(&image, table), u64_at(&image, table + 8));
        // Four entries, contiguous, in input order, nothing else between.
        assert_eq!(stop - start, 32);
        let entries: Vec<u64> = (0..4).map(|i| u64_at(&image, start + 8 * i)).collect();
        assert_eq!(entries, [0x1111, 0x2222, 0x3333, 0x4444]);
        assert_eq!(image.segment(SegmentKind::Data).base, start);
    }

    #[test]
    fn an_empty_section_gives_equal_bounds() {
        let mut b = ObjBuilder::new();
        b.data(".data.before", &[1; 8]);
        b.data("empty_slice", &[]);
        let table = b.rodata(".rodata.table", &[0; 16]);
        let start = b.undefined("__start_empty_slice");
        let stop = b.undefined("__stop_empty_slice");
        b.reloc(table, 0, start, R_64, 0);
        b.reloc(table, 8, stop, R_64, 0);
        b.global_fn("table", table, 0);
        let image = link(&b.build()).unwrap();
        let table = image.symbol("table").unwrap();
        assert_eq!(u64_at(&image, table), u64_at(&image, table + 8));
        assert_eq!(u64_at(&image, table), BASES.data + 8);
    }

    #[test]
    fn a_definition_in_the_unit_wins_over_the_linker_bound() {
        let mut b = ObjBuilder::new();
        let registry = b.data("registry", &[7; 8]);
        let own = b.data(".data.own", &[9; 8]);
        b.global_fn("__start_registry", own, 0);
        let table = b.rodata(".rodata.table", &[0; 8]);
        let start = b.undefined("__start_registry");
        b.reloc(table, 0, start, R_64, 0);
        b.global_fn("table", table, 0);
        let _ = registry;
        let image = link(&b.build()).unwrap();
        let table = image.symbol("table").unwrap();
        assert_eq!(
            u64_at(&image, table),
            image.section(".data.own").unwrap().address
        );
    }

    #[test]
    fn a_bound_without_its_section_is_an_import_and_its_error_says_so() {
        let mut b = ObjBuilder::new();
        let table = b.rodata(".rodata.table", &[0; 8]);
        let start = b.undefined("__start_missing_slice");
        b.reloc(table, 0, start, R_64, 0);
        let bytes = b.build();
        let object = Object::parse(&bytes, &Limits::default()).unwrap();
        assert_eq!(
            object.imports().map(|i| i.name).collect::<Vec<_>>(),
            ["__start_missing_slice"]
        );
        let error = link(&bytes).unwrap_err();
        assert!(matches!(error, Error::Unresolved { .. }), "{error:?}");
        let message = alloc::format!("{error}");
        assert!(
            message.contains(
                "`__start_missing_slice` [a linker-defined bound, but the object has no section `missing_slice`]"
            ),
            "{message}"
        );
    }

    #[test]
    fn sections_of_one_bound_name_with_different_flags_are_refused() {
        let mut b = ObjBuilder::new();
        b.data("registry", &[1; 8]);
        b.rodata("registry", &[2; 8]);
        let table = b.rodata(".rodata.table", &[0; 8]);
        let start = b.undefined("__stop_registry");
        b.reloc(table, 0, start, R_64, 0);
        let object_bytes = b.build();
        let object = Object::parse(&object_bytes, &Limits::default()).unwrap();
        match object.plan(&LinkOptions::default()) {
            Err(Error::UnsupportedSection { section, reason }) => {
                assert_eq!(section, "registry");
                assert_eq!(
                    reason,
                    "sections of this name differ in flags, so no one range holds them all for __start_/__stop_"
                );
            }
            other => panic!("{other:?}"),
        }
    }
}
