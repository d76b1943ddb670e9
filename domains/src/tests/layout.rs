//! Layout, symbols and access to the linked image.

use alloc::string::ToString;
use alloc::vec::Vec;

use super::*;

#[test]
fn layout_groups_sections_by_permission_and_honours_alignment() {
    let mut b = ObjBuilder::new();
    let t1 = b.text(".text.a", &[0xc3]);
    let t2 = b.raw_section(
        ".text.b",
        SHT_PROGBITS,
        SHF_ALLOC | SHF_EXEC,
        &[0x90, 0xc3],
        64,
    );
    let ro = b.rodata(".rodata.x", b"hello");
    let relro = b.raw_section(
        ".data.rel.ro.v",
        SHT_PROGBITS,
        SHF_ALLOC | SHF_WRITE,
        &[0; 16],
        8,
    );
    let d = b.data(".data.s", &[1, 2, 3, 4, 5, 6, 7, 8]);
    let bss = b.bss(".bss.z", 32);
    let _ = b.raw_section(".comment", SHT_PROGBITS, 0, b"not loaded", 1);
    b.global_fn("a", t1, 0);
    b.global_fn("b", t2, 0);
    b.local("hello", ro, 0);
    let z = b.symbol("Z", bss, 8, STB_GLOBAL, STT_OBJECT);
    let vt = b.symbol("VTABLE", relro, 0, STB_GLOBAL, STT_OBJECT);
    // A vtable slot pointing at `b`, a static pointing at bss.
    let bsym = b.section_symbol(t2);
    b.reloc(relro, 8, bsym, R_64, 1);
    b.reloc(d, 0, z, R_64, 0);
    let _ = vt;
    let obj = b.build();
    let object = Object::parse(&obj, &Limits::default()).unwrap();
    let plan = object.plan(&LinkOptions::default()).unwrap();
    let text = plan.segment(SegmentKind::Text);
    assert_eq!(text.align, 64);
    assert_eq!(text.size, 66);
    let ro_spec = plan.segment(SegmentKind::ReadOnly);
    assert_eq!(ro_spec.size, 8 + 16);
    let data = plan.segment(SegmentKind::Data);
    assert_eq!(data.size, 8 + 32);

    let img = plan
        .link(BASES, &FnResolver::new("none", |_| None))
        .unwrap();
    let placed: Vec<_> = img
        .sections()
        .iter()
        .map(|s| (s.name.as_str(), s.segment, s.address))
        .collect();
    assert_eq!(
        placed,
        [
            (".text.a", SegmentKind::Text, BASES.text),
            (".text.b", SegmentKind::Text, BASES.text + 64),
            (".rodata.x", SegmentKind::ReadOnly, BASES.rodata),
            (".data.rel.ro.v", SegmentKind::ReadOnly, BASES.rodata + 8),
            (".data.s", SegmentKind::Data, BASES.data),
            (".bss.z", SegmentKind::Data, BASES.data + 8),
        ]
    );
    // Text padding is int3; bss is zero-filled inside the data buffer.
    assert_eq!(img.read(BASES.text + 1, 63).unwrap(), &[0xcc; 63][..]);
    assert_eq!(img.segment(SegmentKind::Data).bytes.len(), 40);
    assert_eq!(img.read(BASES.data + 8, 32).unwrap(), &[0; 32][..]);
    assert_eq!(field64(&img, BASES.rodata + 8 + 8), BASES.text + 64 + 1);
    assert_eq!(field64(&img, BASES.data), BASES.data + 8 + 8);
    // Exports: globals only, absolute.
    assert_eq!(img.symbol("a"), Some(BASES.text));
    assert_eq!(img.symbol("b"), Some(BASES.text + 64));
    assert_eq!(img.symbol("Z"), Some(BASES.data + 16));
    assert_eq!(img.symbol("VTABLE"), Some(BASES.rodata + 8));
    assert_eq!(img.symbol("hello"), None);
    assert_eq!(img.require_symbol("a"), Ok(BASES.text));
    let missing = img.require_symbol("__spindle_extension").unwrap_err();
    assert_eq!(
        missing,
        Error::MissingSymbol {
            symbol: "__spindle_extension".to_string()
        }
    );
    assert!(missing.to_string().contains("__spindle_extension"));
    assert_eq!(img.exports().len(), 4);
    // Reads outside every segment fail.
    assert!(matches!(
        img.read(BASES.data + 40, 1),
        Err(Error::AddressOutsideImage { .. })
    ));
    assert!(img.read(u64::MAX, 2).is_err());

    // Misaligned base.
    let bad = SegmentBases {
        text: BASES.text + 16,
        ..BASES
    };
    assert!(matches!(
        plan.link(bad, &FnResolver::new("none", |_| None)),
        Err(Error::MisalignedBase {
            segment: "text",
            align: 64,
            ..
        })
    ));
    // Overlapping segments.
    let overlap = SegmentBases {
        rodata: BASES.text + 64,
        ..BASES
    };
    assert!(matches!(
        plan.link(overlap, &FnResolver::new("none", |_| None)),
        Err(Error::BadBases { .. })
    ));
    // Contiguous placement helper.
    let c = plan.contiguous_bases(0x40_0000, 4096).unwrap();
    assert_eq!(c.text, 0x40_0000);
    assert_eq!(c.rodata, 0x40_1000);
    assert_eq!(c.data, 0x40_2000);
    assert_eq!(plan.contiguous_span(4096).unwrap(), 3 * 4096);
}

#[test]
fn hidden_globals_are_not_exported_and_weak_imports_may_stay_unresolved() {
    let mut b = ObjBuilder::new();
    let t = b.text(".text.f", &[0xc3; 8]);
    let d = b.data(".data.p", &[0xff; 8]);
    b.global_fn("visible", t, 0);
    let h = b.global_fn("hidden", t, 4);
    b.hidden(h);
    let w = b.weak_undefined("optional");
    b.reloc(d, 0, w, R_64, 0);
    let obj = b.build();
    let object = Object::parse(&obj, &Limits::default()).unwrap();
    assert_eq!(object.exports().collect::<Vec<_>>(), ["visible"]);
    let imports: Vec<_> = object.imports().collect();
    assert_eq!(
        imports,
        [Import {
            name: "optional",
            weak: true
        }]
    );
    let img = link(&obj, BASES, &[]).unwrap();
    assert_eq!(field64(&img, section_addr(&img, ".data.p")), 0);
    assert_eq!(img.imports()[0].address, 0);
}

#[test]
fn every_missing_import_is_reported_at_link_time() {
    let mut b = ObjBuilder::new();
    let d = b.data(".data.p", &[0; 24]);
    for (i, n) in ["one", "two", "three"].iter().enumerate() {
        let s = b.undefined(n);
        b.reloc(d, 8 * i as u64, s, R_64, 0);
    }
    let obj = b.build();
    match link(&obj, BASES, &[("two", 2)]) {
        Err(Error::Unresolved {
            target, symbols, ..
        }) => {
            assert_eq!(target, "object");
            let names: Vec<_> = symbols.iter().map(|s| s.name.as_str()).collect();
            assert_eq!(names, ["one", "three"]);
        }
        other => panic!("{other:?}"),
    }
}
