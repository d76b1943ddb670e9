//! Malformed input: each refused with an error that names what failed.

use alloc::string::ToString;

use super::*;

#[test]
fn sample_object_is_accepted() {
    let obj = sample_object();
    let img = link(&obj, BASES, &[("ext", BASES.text + 0x1000)]).unwrap();
    assert_eq!(img.stats().total_relocations(), 4);
    // A PC32 from data to a far import cannot be helped by a stub.
    assert_overflow(
        link(&obj, BASES, &[("ext", 0x7000_0000_0000)]),
        "R_X86_64_PC32",
        "ext",
    );
}

#[test]
fn section_bytes_are_the_unrelocated_file_bytes() {
    let obj = sample_object();
    let object = Object::parse(&obj, &Limits::default()).unwrap();
    assert_eq!(object.section_bytes(".rodata.c"), Some(&[1u8; 16][..]));
    // Relocated fields read as stored in the file (the addend lives in .rela).
    assert_eq!(object.section_bytes(".data.v"), Some(&[0u8; 16][..]));
    assert_eq!(object.section_bytes(".bss.z"), Some(&[][..]));
    assert_eq!(object.section_bytes(".spindle_ext"), None);
}

#[test]
fn truncated_input_is_rejected_at_every_length() {
    let obj = sample_object();
    for len in 0..obj.len() {
        let r = parse(&obj[..len]);
        assert!(r.is_err(), "prefix of {len} bytes was accepted");
    }
    assert!(matches!(
        parse(&obj[..10]),
        Err(Error::NotElf | Error::Truncated { .. })
    ));
    assert!(matches!(parse(&obj[..40]), Err(Error::Truncated { .. })));
}

#[test]
fn garbage_is_not_elf() {
    assert_eq!(parse(b""), Err(Error::NotElf));
    assert_eq!(parse(b"hello, world"), Err(Error::NotElf));
    assert_eq!(parse(&[0u8; 4096]), Err(Error::NotElf));
    let mut fake = b"\x7fELF".to_vec();
    fake.resize(64, 0xff);
    assert!(matches!(parse(&fake), Err(Error::BadHeader { .. })));
}

#[test]
fn wrong_class_machine_or_type_is_refused() {
    let mut obj = sample_object();
    obj[4] = 1; // ELFCLASS32
    assert!(matches!(
        parse(&obj),
        Err(Error::BadHeader {
            field: "e_ident[EI_CLASS]",
            ..
        })
    ));
    let arm = ObjBuilder::new().machine(183).build();
    assert!(matches!(
        parse(&arm),
        Err(Error::BadHeader {
            field: "e_machine",
            value: 183,
            ..
        })
    ));
    let exec = ObjBuilder::new().e_type(2).build();
    assert!(matches!(
        parse(&exec),
        Err(Error::BadHeader {
            field: "e_type",
            value: 2,
            ..
        })
    ));
}

#[test]
fn bad_section_offsets_are_refused() {
    let mut obj = sample_object();
    let i = section_index(&obj, ".rodata.c");
    set_shdr(&mut obj, i, SH_OFFSET, 8, 0xffff_ffff_ffff_fff0);
    match parse(&obj) {
        Err(Error::SectionOutOfBounds { section, .. }) => assert_eq!(section, ".rodata.c"),
        other => panic!("{other:?}"),
    }
    // Section header table past the end.
    let mut obj = sample_object();
    let len = obj.len() as u64;
    obj[0x28..0x30].copy_from_slice(&(len - 10).to_le_bytes());
    assert!(matches!(parse(&obj), Err(Error::Truncated { .. })));
}

#[test]
fn overlapping_sections_are_refused() {
    let mut obj = sample_object();
    let a = section_index(&obj, ".text.f");
    let b = section_index(&obj, ".rodata.c");
    let off = get_shdr(&obj, a, SH_OFFSET, 8);
    set_shdr(&mut obj, b, SH_OFFSET, 8, off + 4);
    match parse(&obj) {
        Err(Error::SectionsOverlap { first, second }) => {
            assert_eq!((first.as_str(), second.as_str()), (".text.f", ".rodata.c"));
        }
        other => panic!("{other:?}"),
    }
    // A section overlapping the ELF header.
    let mut obj = sample_object();
    set_shdr(&mut obj, b, SH_OFFSET, 8, 8);
    assert!(matches!(parse(&obj), Err(Error::SectionsOverlap { .. })));
}

#[test]
fn huge_sections_are_refused_by_the_limits() {
    let mut obj = sample_object();
    let z = section_index(&obj, ".bss.z");
    set_shdr(&mut obj, z, SH_SIZE, 8, 1 << 40);
    match parse(&obj) {
        Err(Error::LimitExceeded { limit, context, .. }) => {
            assert_eq!(limit, "max_section_size");
            assert_eq!(context, ".bss.z");
        }
        other => panic!("{other:?}"),
    }
    // A tighter configured image limit.
    let obj = sample_object();
    let limits = Limits {
        max_image_size: 64,
        ..Limits::default()
    };
    assert!(matches!(
        Object::parse(&obj, &limits),
        Err(Error::LimitExceeded {
            limit: "max_image_size",
            ..
        })
    ));
    let limits = Limits {
        max_input_size: 100,
        ..Limits::default()
    };
    assert!(matches!(
        Object::parse(&obj, &limits),
        Err(Error::LimitExceeded {
            limit: "max_input_size",
            ..
        })
    ));
}

#[test]
fn bad_alignment_is_refused() {
    let mut obj = sample_object();
    let i = section_index(&obj, ".data.v");
    set_shdr(&mut obj, i, SH_ADDRALIGN, 8, 24);
    assert_eq!(
        parse(&obj),
        Err(Error::BadAlignment {
            section: ".data.v".to_string(),
            align: 24
        })
    );
    set_shdr(&mut obj, i, SH_ADDRALIGN, 8, 1 << 30);
    assert!(matches!(
        parse(&obj),
        Err(Error::LimitExceeded {
            limit: "max_alignment",
            ..
        })
    ));
}

#[test]
fn symbol_index_out_of_range_is_refused() {
    let mut b = ObjBuilder::new();
    let d = b.data(".data.d", &[0; 8]);
    b.undefined("ext");
    b.reloc(d, 0, 999, R_64, 0);
    match parse(&b.build()) {
        Err(Error::SymbolIndexOutOfRange {
            section,
            index,
            count,
            ..
        }) => {
            assert_eq!(section, ".rela.data.d");
            assert_eq!(index, 999);
            assert_eq!(count, 2);
        }
        other => panic!("{other:?}"),
    }
}

#[test]
fn relocation_outside_its_section_is_refused() {
    let mut b = ObjBuilder::new();
    let d = b.data(".data.d", &[0; 8]);
    let ext = b.undefined("ext");
    b.reloc(d, 4, ext, R_64, 0);
    assert_eq!(
        parse(&b.build()),
        Err(Error::RelocationOutOfSection {
            section: ".data.d".to_string(),
            offset: 4,
            width: 8,
            size: 8
        })
    );
    let mut b = ObjBuilder::new();
    let d = b.data(".data.d", &[0; 8]);
    let ext = b.undefined("ext");
    b.reloc(d, u64::MAX - 1, ext, R_PC32, 0);
    assert!(matches!(
        parse(&b.build()),
        Err(Error::RelocationOutOfSection { .. })
    ));
    // Relocating bss.
    let mut b = ObjBuilder::new();
    let z = b.bss(".bss.z", 8);
    let ext = b.undefined("ext");
    b.reloc(z, 0, ext, R_64, 0);
    assert!(matches!(
        parse(&b.build()),
        Err(Error::RelocationOutOfSection { .. })
    ));
}

#[test]
fn unsupported_relocations_name_type_section_and_symbol() {
    for (ty, name) in [
        (19, "R_X86_64_TLSGD"),
        (25, "R_X86_64_GOTOFF64"),
        (12, "R_X86_64_16"),
        (99, "unknown"),
    ] {
        let mut b = ObjBuilder::new();
        let t = b.text(".text.f", &[0; 16]);
        let ext = b.undefined("the_symbol");
        b.reloc(t, 0, ext, ty, 0);
        let err = parse(&b.build()).unwrap_err();
        assert_eq!(
            err,
            Error::UnsupportedRelocation {
                r_type: ty,
                type_name: name,
                section: ".text.f".to_string(),
                symbol: "the_symbol".to_string(),
            }
        );
        let msg = err.to_string();
        assert!(
            msg.contains(name) && msg.contains("the_symbol") && msg.contains(".text.f"),
            "{msg}"
        );
    }
}

#[test]
fn relocations_of_unloaded_sections_are_ignored() {
    let mut b = ObjBuilder::new();
    let dbg = b.raw_section(".debug_info", SHT_PROGBITS, 0, &[0; 16], 1);
    let ext = b.undefined("whatever");
    b.reloc(dbg, 0, ext, 19, 0);
    let obj = b.build();
    let object = Object::parse(&obj, &Limits::default()).unwrap();
    assert_eq!(object.relocation_count(), 0);
}

#[test]
fn references_into_unloaded_sections_are_refused() {
    let mut b = ObjBuilder::new();
    let d = b.data(".data.d", &[0; 8]);
    let dbg = b.raw_section(".debug_str", SHT_PROGBITS, 0, &[0; 16], 1);
    let s = b.section_symbol(dbg);
    b.reloc(d, 0, s, R_64, 0);
    assert!(matches!(
        parse(&b.build()),
        Err(Error::ReferenceToUnloadedSection { section, .. }) if section == ".debug_str"
    ));
}

#[test]
fn tls_common_and_bad_symbols_are_refused() {
    let mut b = ObjBuilder::new();
    b.raw_section(
        ".tdata.x",
        SHT_PROGBITS,
        SHF_ALLOC | SHF_WRITE | SHF_TLS,
        &[0; 8],
        8,
    );
    assert!(matches!(parse(&b.build()), Err(Error::Tls { name }) if name == ".tdata.x"));

    let mut b = ObjBuilder::new();
    let d = b.data(".data.d", &[0; 8]);
    b.symbol("tls_var", d, 0, STB_GLOBAL, STT_TLS);
    assert!(matches!(parse(&b.build()), Err(Error::Tls { name }) if name == "tls_var"));

    let mut b = ObjBuilder::new();
    b.symbol("common_var", 0xfff2, 8, STB_GLOBAL, STT_OBJECT);
    assert_eq!(
        parse(&b.build()),
        Err(Error::Common {
            symbol: "common_var".to_string()
        })
    );

    let mut b = ObjBuilder::new();
    b.symbol("nowhere", 77, 0, STB_GLOBAL, STT_FUNC);
    assert_eq!(
        parse(&b.build()),
        Err(Error::BadSymbolSection {
            symbol: "nowhere".to_string(),
            shndx: 77
        })
    );

    let mut b = ObjBuilder::new();
    let d = b.data(".data.d", &[0; 8]);
    b.symbol("past_end", d, 9, STB_GLOBAL, STT_OBJECT);
    assert!(matches!(
        parse(&b.build()),
        Err(Error::SymbolOutOfSection { .. })
    ));

    // A name offset outside the string table.
    let mut b = ObjBuilder::new();
    let d = b.data(".data.d", &[0; 8]);
    b.global_fn("f", d, 0);
    let mut obj = b.build();
    let symtab = section_index(&obj, ".symtab");
    let off = get_shdr(&obj, symtab, SH_OFFSET, 8) as usize + 24;
    obj[off..off + 4].copy_from_slice(&0x00ff_ffffu32.to_le_bytes());
    assert!(matches!(parse(&obj), Err(Error::BadString { table, .. }) if table == ".strtab"));
}

#[test]
fn writable_executable_and_constructor_sections_are_refused() {
    let mut b = ObjBuilder::new();
    b.raw_section(
        ".text.wx",
        SHT_PROGBITS,
        SHF_ALLOC | SHF_WRITE | SHF_EXEC,
        &[0xc3],
        1,
    );
    assert!(matches!(
        parse(&b.build()),
        Err(Error::UnsupportedSection { .. })
    ));
    let mut b = ObjBuilder::new();
    b.raw_section(".init_array", 14, SHF_ALLOC | SHF_WRITE, &[0; 8], 8);
    assert!(matches!(
        parse(&b.build()),
        Err(Error::UnsupportedSection { .. })
    ));
}

#[test]
fn error_messages_name_what_failed() {
    let e = Error::RelocationOverflow {
        type_name: "R_X86_64_PC32",
        section: ".text.f".to_string(),
        offset: 3,
        symbol: "_RNvCs1_12kernel_image6secret".to_string(),
        value: 0x1_0000_0000,
    };
    let m = e.to_string();
    assert!(m.contains("R_X86_64_PC32"), "{m}");
    assert!(m.contains(".text.f+0x3"), "{m}");
    assert!(m.contains("kernel_image::secret"), "{m}");
    assert!(m.contains("crate kernel_image"), "{m}");
}

proptest::proptest! {
    #![proptest_config(proptest::prelude::ProptestConfig::with_cases(512))]
    /// Random corruption never panics: parse, plan and link either succeed
    /// or return an error.
    #[test]
    fn corrupted_objects_never_panic(
        edits in proptest::collection::vec((0usize..2048, proptest::prelude::any::<u8>()), 1..12)
    ) {
        let mut obj = sample_object();
        let n = obj.len();
        for (at, v) in edits {
            obj[at % n] = v;
        }
        if let Ok(o) = Object::parse(&obj, &Limits::default())
            && let Ok(plan) = o.plan(&LinkOptions::default())
            && let Ok(bases) = plan.contiguous_bases(0x10_0000, 4096)
        {
            let _ = plan.link(bases, &FnResolver::new("r", |_| Some(0x7000_0000_0000)));
        }
    }

    /// Random bytes after a valid ELF header never panic.
    #[test]
    fn random_tails_never_panic(tail in proptest::collection::vec(proptest::prelude::any::<u8>(), 0..512)) {
        let mut obj = sample_object();
        obj.truncate(64);
        obj.extend_from_slice(&tail);
        let _ = Object::parse(&obj, &Limits::default());
    }
}
