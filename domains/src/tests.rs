//! Unit tests on hand-built objects: one per relocation type (with its
//! overflow case), layout, malformed input, and domain operations.

use alloc::string::ToString;
use alloc::vec::Vec;

use crate::testelf::*;
use crate::*;

const R_NONE: u32 = 0;
const R_64: u32 = 1;
const R_PC32: u32 = 2;
const R_PLT32: u32 = 4;
const R_GOTPCREL: u32 = 9;
const R_32: u32 = 10;
const R_32S: u32 = 11;
const R_PC64: u32 = 24;
const R_GOTPCRELX: u32 = 41;
const R_REX_GOTPCRELX: u32 = 42;

const BASES: SegmentBases = SegmentBases {
    text: 0x10_0000,
    rodata: 0x20_0000,
    data: 0x30_0000,
};

fn link_with(
    bytes: &[u8],
    bases: SegmentBases,
    syms: &[(&str, u64)],
    options: LinkOptions,
) -> Result<LinkedImage> {
    let obj = Object::parse(bytes, &Limits::default())?;
    let plan = obj.plan(&options)?;
    let provider = Domain::from_exports("test-provider", syms.iter().copied());
    plan.link(bases, &Exports(&provider))
}

fn link(bytes: &[u8], bases: SegmentBases, syms: &[(&str, u64)]) -> Result<LinkedImage> {
    link_with(bytes, bases, syms, LinkOptions::default())
}

fn field32(img: &LinkedImage, addr: u64) -> i32 {
    let b = img.read(addr, 4).unwrap();
    i32::from_le_bytes(b.try_into().unwrap())
}

fn field64(img: &LinkedImage, addr: u64) -> u64 {
    img.read_u64(addr).unwrap()
}

fn section_addr(img: &LinkedImage, name: &str) -> u64 {
    img.section(name)
        .unwrap_or_else(|| panic!("section {name} not placed"))
        .address
}

fn assert_overflow(r: Result<LinkedImage>, ty: &str, symbol: &str) {
    match r {
        Err(Error::RelocationOverflow {
            type_name,
            symbol: s,
            ..
        }) => {
            assert_eq!(type_name, ty);
            assert_eq!(s, symbol);
        }
        other => panic!("expected {ty} overflow against {symbol}, got {other:?}"),
    }
}

// --- one test per relocation type -----------------------------------------

/// An object whose `.data.d` holds a 16-byte field patched at offset 8 with
/// relocation `r_type` against the import `ext` plus `addend`.
fn data_reloc_obj(r_type: u32, addend: i64) -> Vec<u8> {
    let mut b = ObjBuilder::new();
    let d = b.data(".data.d", &[0xaa; 16]);
    let ext = b.undefined("ext");
    b.reloc(d, 8, ext, r_type, addend);
    b.build()
}

#[test]
fn r_x86_64_64_is_s_plus_a_modulo_2_pow_64() {
    let obj = data_reloc_obj(R_64, 5);
    let img = link(&obj, BASES, &[("ext", 0x1122_3344_5566_7788)]).unwrap();
    let d = section_addr(&img, ".data.d");
    assert_eq!(field64(&img, d + 8), 0x1122_3344_5566_778d);
    // Bytes outside the field are untouched.
    assert_eq!(img.read(d, 8).unwrap(), &[0xaa; 8]);
    assert_eq!(img.stats().count(RelocKind::Abs64), 1);
    // A 64-bit field cannot overflow: S + A wraps as address arithmetic.
    let img = link(&obj, BASES, &[("ext", u64::MAX - 1)]).unwrap();
    assert_eq!(field64(&img, d + 8), 3);
}

#[test]
fn r_x86_64_32_is_zero_extended_and_checked() {
    let obj = data_reloc_obj(R_32, 1);
    let img = link(&obj, BASES, &[("ext", 0xdead_beee)]).unwrap();
    let d = section_addr(&img, ".data.d");
    assert_eq!(field32(&img, d + 8) as u32, 0xdead_beef);
    assert_eq!(img.read(d + 12, 4).unwrap(), &[0xaa; 4]);
    assert_overflow(
        link(&obj, BASES, &[("ext", 0xffff_ffff)]),
        "R_X86_64_32",
        "ext",
    );
    // Below zero does not fit a zero-extended field either.
    let neg = data_reloc_obj(R_32, -1);
    assert_overflow(link(&neg, BASES, &[("ext", 0)]), "R_X86_64_32", "ext");
}

#[test]
fn r_x86_64_32s_is_sign_extended_and_checked() {
    let obj = data_reloc_obj(R_32S, 0);
    // The kernel code model: the top 2 GiB.
    let img = link(&obj, BASES, &[("ext", 0xffff_ffff_8000_1000)]).unwrap();
    let d = section_addr(&img, ".data.d");
    assert_eq!(field32(&img, d + 8), 0x8000_1000_u32 as i32);
    let img = link(&obj, BASES, &[("ext", 0x7fff_ffff)]).unwrap();
    assert_eq!(field32(&img, d + 8), 0x7fff_ffff);
    assert_overflow(
        link(&obj, BASES, &[("ext", 0x8000_0000)]),
        "R_X86_64_32S",
        "ext",
    );
}

#[test]
fn r_x86_64_pc32_is_s_plus_a_minus_p() {
    let mut b = ObjBuilder::new();
    // lea rax, [rip + c]: 48 8d 05 <disp32>
    let t = b.text(".text.f", &[0x48, 0x8d, 0x05, 0, 0, 0, 0, 0xc3]);
    let r = b.rodata(".rodata.c", &[1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12]);
    let c = b.local("C", r, 4);
    b.reloc(t, 3, c, R_PC32, -4);
    let obj = b.build();
    let img = link(&obj, BASES, &[]).unwrap();
    let p = section_addr(&img, ".text.f") + 3;
    let s = section_addr(&img, ".rodata.c") + 4;
    assert_eq!(i64::from(field32(&img, p)), s as i64 - 4 - p as i64);
    // The instruction reads `C` at P + 4 + disp.
    let target = (p as i64 + 4 + i64::from(field32(&img, p))) as u64;
    assert_eq!(img.read(target, 4).unwrap(), &[5, 6, 7, 8]);
    assert_eq!(img.stats().count(RelocKind::Pc32), 1);
    // Segments more than 2 GiB apart overflow the displacement.
    // rodata at text + 2^31 + 8: C - 4 - P = 2^31 + 1 does not fit.
    let far = SegmentBases {
        rodata: BASES.text + 0x8000_0008,
        ..BASES
    };
    assert_overflow(link(&obj, far, &[]), "R_X86_64_PC32", "C");
    // One byte closer still fits.
    let edge = SegmentBases {
        rodata: BASES.text + 0x8000_0000,
        ..BASES
    };
    let img = link(&obj, edge, &[]).unwrap();
    assert_eq!(field32(&img, BASES.text + 3), i32::MAX - 2);
    // Below the text: -2^31 + 5 fits, -2^31 - 3 does not.
    let below = SegmentBases {
        text: 0x1_0000_0000,
        rodata: 0x1_0000_0000 - 0x8000_0000 + 8,
        data: 0x2_0000_0000,
    };
    let img = link(&obj, below, &[]).unwrap();
    assert_eq!(field32(&img, below.text + 3), i32::MIN + 5);
    let too_far_below = SegmentBases {
        rodata: 0x1_0000_0000 - 0x8000_0000,
        ..below
    };
    assert_overflow(link(&obj, too_far_below, &[]), "R_X86_64_PC32", "C");
}

#[test]
fn r_x86_64_pc64_is_a_wrapping_difference() {
    let mut b = ObjBuilder::new();
    let d = b.data(".data.d", &[0; 8]);
    let ext = b.undefined("ext");
    b.reloc(d, 0, ext, R_PC64, 2);
    let obj = b.build();
    let img = link(&obj, BASES, &[("ext", 0x10)]).unwrap();
    let p = section_addr(&img, ".data.d");
    assert_eq!(field64(&img, p), 0x12u64.wrapping_sub(p));
    assert_eq!(img.stats().count(RelocKind::Pc64), 1);
}

/// `call g` to a local function, `call ext` to an import.
fn plt_obj() -> Vec<u8> {
    let mut b = ObjBuilder::new();
    let mut code = alloc::vec![0xe8, 0, 0, 0, 0, 0xe8, 0, 0, 0, 0, 0xc3];
    code.resize(0x20, 0x90);
    let t = b.text(".text.f", &code);
    let g = b.symbol("g", t, 0x10, STB_LOCAL, STT_FUNC);
    let ext = b.undefined("ext");
    b.reloc(t, 1, g, R_PLT32, -4);
    b.reloc(t, 6, ext, R_PLT32, -4);
    b.build()
}

#[test]
fn r_x86_64_plt32_calls_directly_when_in_range() {
    let obj = plt_obj();
    let near = BASES.text + 0x4000_0000;
    let img = link(&obj, BASES, &[("ext", near)]).unwrap();
    let t = section_addr(&img, ".text.f");
    assert_eq!(i64::from(field32(&img, t + 1)), 0x10 - 4 - 1);
    assert_eq!(
        i64::from(field32(&img, t + 6)),
        near as i64 - 4 - (t + 6) as i64
    );
    assert_eq!(img.stats().count(RelocKind::Plt32), 2);
    assert_eq!(img.stats().stub_calls, 0);
    // The plan reserved a stub for the import anyway.
    assert_eq!(img.stats().stubs_reserved, 1);
}

#[test]
fn r_x86_64_plt32_goes_through_a_stub_when_far() {
    let obj = plt_obj();
    let far = 0x7f00_0000_1234;
    let img = link(&obj, BASES, &[("ext", far)]).unwrap();
    let t = section_addr(&img, ".text.f");
    let stub = (t as i64 + 6 + 4 + i64::from(field32(&img, t + 6))) as u64;
    let text = img.segment(SegmentKind::Text);
    assert!(text.range().contains(&stub));
    assert_eq!(stub % 16, 0);
    // jmp *0(%rip); .quad far
    assert_eq!(img.read(stub, 6).unwrap(), &[0xff, 0x25, 0, 0, 0, 0]);
    assert_eq!(field64(&img, stub + 6), far);
    assert_eq!(img.stats().stub_calls, 1);
    // The local call is unaffected.
    assert_eq!(i64::from(field32(&img, t + 1)), 0x10 - 5);
}

#[test]
fn r_x86_64_plt32_to_a_far_non_import_overflows() {
    let mut b = ObjBuilder::new();
    let t = b.text(".text.f", &[0xe8, 0, 0, 0, 0, 0xc3]);
    // An absolute symbol is not an import: no stub can be made for it.
    let abs = b.symbol("far_abs", 0xfff1, 0x7000_0000_0000, STB_LOCAL, STT_FUNC);
    b.reloc(t, 1, abs, R_PLT32, -4);
    let obj = b.build();
    assert_overflow(link(&obj, BASES, &[]), "R_X86_64_PLT32", "far_abs");
}

/// `mov rax, [rip + ext@GOT]` twice with `r_type`, then `call *[rip + ext@GOT]`.
fn got_obj(r_type: u32, call_type: u32) -> Vec<u8> {
    let mut b = ObjBuilder::new();
    let code = [
        0x48, 0x8b, 0x05, 0, 0, 0, 0, // mov rax, [rip+x]
        0x48, 0x8b, 0x0d, 0, 0, 0, 0, // mov rcx, [rip+x]
        0xff, 0x15, 0, 0, 0, 0, // call [rip+x]
        0xc3,
    ];
    let t = b.text(".text.f", &code);
    let ext = b.undefined("ext");
    b.reloc(t, 3, ext, r_type, -4);
    b.reloc(t, 10, ext, r_type, -4);
    b.reloc(t, 16, ext, call_type, -4);
    b.build()
}

/// The address the rip-relative operand at `field` designates.
fn rip_target(img: &LinkedImage, field: u64) -> u64 {
    (field as i64 + 4 + i64::from(field32(img, field))) as u64
}

#[test]
fn r_x86_64_gotpcrel_loads_through_one_slot_per_symbol() {
    let obj = got_obj(R_GOTPCREL, R_GOTPCREL);
    let ext = BASES.text + 0x100;
    let img = link(&obj, BASES, &[("ext", ext)]).unwrap();
    let t = section_addr(&img, ".text.f");
    let slot = rip_target(&img, t + 3);
    assert_eq!(rip_target(&img, t + 10), slot);
    assert_eq!(rip_target(&img, t + 16), slot);
    assert!(img.segment(SegmentKind::ReadOnly).range().contains(&slot));
    assert_eq!(field64(&img, slot), ext);
    // Plain GOTPCREL is never relaxed, even in range.
    assert_eq!(img.read(t, 3).unwrap(), &[0x48, 0x8b, 0x05]);
    assert_eq!(img.stats().relaxed, 0);
    assert_eq!(img.stats().got_slots, 1);
    assert_eq!(img.stats().count(RelocKind::GotPcRel), 3);
    // The GOT more than 2 GiB from the code overflows.
    let far = SegmentBases {
        rodata: BASES.text + 0x1_0000_0000,
        ..BASES
    };
    assert_overflow(link(&obj, far, &[("ext", ext)]), "R_X86_64_GOTPCREL", "ext");
}

#[test]
fn r_x86_64_rex_gotpcrelx_relaxes_mov_to_lea_when_in_range() {
    let obj = got_obj(R_REX_GOTPCRELX, R_GOTPCREL);
    let ext = BASES.text + 0x100;
    let img = link(&obj, BASES, &[("ext", ext)]).unwrap();
    let t = section_addr(&img, ".text.f");
    // mov -> lea, pointing at the symbol itself.
    assert_eq!(img.read(t, 3).unwrap(), &[0x48, 0x8d, 0x05]);
    assert_eq!(img.read(t + 7, 3).unwrap(), &[0x48, 0x8d, 0x0d]);
    assert_eq!(rip_target(&img, t + 3), ext);
    assert_eq!(rip_target(&img, t + 10), ext);
    assert_eq!(img.stats().relaxed, 2);
    assert_eq!(img.stats().count(RelocKind::RexGotPcRelX), 2);

    // Relaxation off: through the GOT.
    let img = link_with(
        &obj,
        BASES,
        &[("ext", ext)],
        LinkOptions { relax_got: false },
    )
    .unwrap();
    assert_eq!(img.read(t, 3).unwrap(), &[0x48, 0x8b, 0x05]);
    assert_eq!(field64(&img, rip_target(&img, t + 3)), ext);

    // Symbol out of range: through the GOT.
    let far_ext = 0x7f00_0000_0000;
    let img = link(&obj, BASES, &[("ext", far_ext)]).unwrap();
    assert_eq!(img.read(t, 3).unwrap(), &[0x48, 0x8b, 0x05]);
    assert_eq!(field64(&img, rip_target(&img, t + 3)), far_ext);
    assert_eq!(img.stats().relaxed, 0);

    // Symbol and GOT both out of range: overflow.
    let far = SegmentBases {
        rodata: BASES.text + 0x1_0000_0000,
        ..BASES
    };
    assert_overflow(
        link(&obj, far, &[("ext", far_ext)]),
        "R_X86_64_REX_GOTPCRELX",
        "ext",
    );
}

#[test]
fn r_x86_64_gotpcrelx_relaxes_indirect_call_and_jmp() {
    let obj = got_obj(R_GOTPCREL, R_GOTPCRELX);
    let ext = BASES.text + 0x100;
    let img = link(&obj, BASES, &[("ext", ext)]).unwrap();
    let t = section_addr(&img, ".text.f");
    // call *[rip+x] -> addr32 call ext
    assert_eq!(img.read(t + 14, 2).unwrap(), &[0x67, 0xe8]);
    assert_eq!(rip_target(&img, t + 16), ext);
    assert_eq!(img.stats().relaxed, 1);
    assert_eq!(img.stats().count(RelocKind::GotPcRelX), 1);

    // jmp *[rip+x] -> jmp ext; nop
    let mut b = ObjBuilder::new();
    let tx = b.text(".text.j", &[0xff, 0x25, 0, 0, 0, 0]);
    let e = b.undefined("ext");
    b.reloc(tx, 2, e, R_GOTPCRELX, -4);
    let jobj = b.build();
    let img = link(&jobj, BASES, &[("ext", ext)]).unwrap();
    let j = section_addr(&img, ".text.j");
    assert_eq!(img.read(j, 1).unwrap(), &[0xe9]);
    assert_eq!(img.read(j + 5, 1).unwrap(), &[0x90]);
    let rel = i64::from(field32(&img, j + 1));
    assert_eq!((j as i64 + 5 + rel) as u64, ext);

    // Far symbol: the call stays indirect through the GOT.
    let far_ext = 0x7f00_0000_0000;
    let img = link(&obj, BASES, &[("ext", far_ext)]).unwrap();
    assert_eq!(img.read(t + 14, 2).unwrap(), &[0xff, 0x15]);
    assert_eq!(field64(&img, rip_target(&img, t + 16)), far_ext);

    // Far symbol and far GOT: overflow.
    let far = SegmentBases {
        rodata: BASES.text + 0x1_0000_0000,
        ..BASES
    };
    assert_overflow(
        link(&obj, far, &[("ext", far_ext)]),
        "R_X86_64_GOTPCREL",
        "ext",
    );
    let obj_x = got_obj(R_GOTPCRELX, R_GOTPCRELX);
    assert_overflow(
        link(&obj_x, far, &[("ext", far_ext)]),
        "R_X86_64_GOTPCRELX",
        "ext",
    );
}

#[test]
fn r_x86_64_none_is_ignored() {
    let mut b = ObjBuilder::new();
    let d = b.data(".data.d", &[7; 8]);
    let ext = b.undefined("ext");
    b.reloc(d, 0, ext, R_NONE, 0);
    let obj = b.build();
    let img = link(&obj, BASES, &[("ext", 1)]).unwrap();
    assert_eq!(img.read(section_addr(&img, ".data.d"), 8).unwrap(), &[7; 8]);
    assert_eq!(img.stats().total_relocations(), 0);
}

// --- layout, symbols, image access ------------------------------------------

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

// --- malformed input ----------------------------------------------------------

fn sample_object() -> Vec<u8> {
    let mut b = ObjBuilder::new();
    let t = b.text(
        ".text.f",
        &[0xe8, 0, 0, 0, 0, 0x48, 0x8b, 0x05, 0, 0, 0, 0, 0xc3],
    );
    let r = b.rodata(".rodata.c", &[1; 16]);
    let d = b.data(".data.v", &[0; 16]);
    let _bss = b.bss(".bss.z", 64);
    let rs = b.section_symbol(r);
    b.global_fn("f", t, 0);
    let ext = b.undefined("ext");
    b.reloc(t, 1, ext, R_PLT32, -4);
    b.reloc(t, 8, ext, R_REX_GOTPCRELX, -4);
    b.reloc(d, 0, rs, R_64, 4);
    b.reloc(d, 8, ext, R_PC32, 0);
    b.build()
}

fn parse(bytes: &[u8]) -> Result<()> {
    Object::parse(bytes, &Limits::default()).map(|_| ())
}

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

// --- domains ------------------------------------------------------------------

/// An extension-like object: exports `ext_fn`, imports the given names.
fn ext_object(exported: &str, imports: &[&str]) -> Vec<u8> {
    let mut b = ObjBuilder::new();
    let t = b.text(".text.e", &[0xc3; 16]);
    let d = b.data(".data.e", &alloc::vec![0; 8 * imports.len().max(1)]);
    b.global_fn(exported, t, 0);
    for (i, n) in imports.iter().enumerate() {
        let s = b.undefined(n);
        b.reloc(d, 8 * i as u64, s, R_64, 0);
    }
    b.build()
}

#[test]
fn create_lists_exports_and_imports() {
    let obj = ext_object("ext_fn", &["memcpy", "kfn"]);
    let object = Object::parse(&obj, &Limits::default()).unwrap();
    let d = Domain::create("ext", &object).unwrap();
    assert_eq!(d.name(), "ext");
    assert!(!d.is_placed());
    assert_eq!(d.export_count(), 1);
    assert!(d.lookup("ext_fn").is_some());
    assert_eq!(d.address_of("ext_fn"), None, "not placed yet");
    assert_eq!(d.unresolved().collect::<Vec<_>>(), ["memcpy", "kfn"]);
    assert!(!d.is_resolved());
}

#[test]
fn resolve_is_partial_and_resolve_all_is_all_or_nothing() {
    let obj = ext_object("ext_fn", &["memcpy", "kfn", "other"]);
    let object = Object::parse(&obj, &Limits::default()).unwrap();
    let public = Domain::from_exports("SpinPublic", [("memcpy", 0x1000)]);
    let internal = Domain::from_exports("KernelInternal", [("kfn", 0x2000)]);

    // all-or-nothing: two names missing, both listed, nothing bound.
    let mut d = Domain::create("ext", &object).unwrap();
    let err = resolve_all(&[&public], &mut d).unwrap_err();
    match &err {
        Error::Unresolved {
            target,
            searched,
            symbols,
        } => {
            assert_eq!(target, "ext");
            assert_eq!(searched, &["SpinPublic".to_string()]);
            let names: Vec<_> = symbols.iter().map(|s| s.name.as_str()).collect();
            assert_eq!(names, ["kfn", "other"]);
        }
        other => panic!("{other:?}"),
    }
    let msg = err.to_string();
    assert!(
        msg.contains("SpinPublic") && msg.contains("`kfn`") && msg.contains("`other`"),
        "{msg}"
    );
    assert_eq!(d.unresolved().count(), 3, "nothing was bound");

    // partial: binds what the source has.
    let stats = resolve(&public, &mut d).unwrap();
    assert_eq!(
        stats,
        ResolveStats {
            resolved: 1,
            unresolved: 2
        }
    );
    let stats = resolve(&internal, &mut d).unwrap();
    assert_eq!(
        stats,
        ResolveStats {
            resolved: 1,
            unresolved: 1
        }
    );
    assert_eq!(
        d.sources().collect::<Vec<_>>(),
        ["SpinPublic", "KernelInternal"]
    );
    assert!(d.depends_on(public.id()) && d.depends_on(internal.id()));

    // Linking fails while `other` is unresolved, naming it and the sources.
    let plan = object.plan(&LinkOptions::default()).unwrap();
    match plan.link(BASES, &d) {
        Err(Error::Unresolved {
            target,
            searched,
            symbols,
        }) => {
            assert_eq!(target, "ext");
            assert_eq!(searched, ["SpinPublic", "KernelInternal"]);
            assert_eq!(symbols.len(), 1);
            assert_eq!(symbols[0].name, "other");
        }
        other => panic!("{other:?}"),
    }

    // unresolve is the inverse of resolve.
    assert_eq!(unresolve(&internal, &mut d), 1);
    assert!(!d.depends_on(internal.id()));
    assert_eq!(d.sources().collect::<Vec<_>>(), ["SpinPublic"]);
    assert_eq!(d.unresolved().collect::<Vec<_>>(), ["kfn", "other"]);

    // With every name available, resolve_all binds all and link works.
    let rest = Domain::from_exports("rest", [("other", 0x3000), ("kfn", 0x2000)]);
    let stats = resolve_all(&[&public, &rest], &mut d).unwrap();
    assert_eq!(
        stats,
        ResolveStats {
            resolved: 2,
            unresolved: 0
        }
    );
    assert!(d.is_resolved());
    let img = plan.link(BASES, &d).unwrap();
    let data = section_addr(&img, ".data.e");
    assert_eq!(field64(&img, data), 0x1000);
    assert_eq!(field64(&img, data + 8), 0x2000);
    assert_eq!(field64(&img, data + 16), 0x3000);
}

#[test]
fn placed_extension_domains_resolve_other_extensions() {
    // counter exports `counter_get`; client imports it.
    let counter_bytes = ext_object("counter_get", &[]);
    let counter_obj = Object::parse(&counter_bytes, &Limits::default()).unwrap();
    let mut counter = Domain::create("counter", &counter_obj).unwrap();
    let client_bytes = ext_object("client_main", &["counter_get"]);
    let client_obj = Object::parse(&client_bytes, &Limits::default()).unwrap();
    let mut client = Domain::create("client", &client_obj).unwrap();

    // Not placed yet: cannot be a source.
    assert_eq!(
        resolve(&counter, &mut client),
        Err(Error::NotPlaced {
            domain: "counter".to_string()
        })
    );
    let cimg = counter_obj
        .plan(&LinkOptions::default())
        .unwrap()
        .link(BASES, &counter)
        .unwrap();
    counter.place(&cimg).unwrap();
    assert_eq!(counter.address_of("counter_get"), Some(BASES.text));
    resolve_all(&[&counter], &mut client).unwrap();
    let other_bases = SegmentBases {
        text: 0x50_0000,
        rodata: 0x60_0000,
        data: 0x70_0000,
    };
    let img = client_obj
        .plan(&LinkOptions::default())
        .unwrap()
        .link(other_bases, &client)
        .unwrap();
    assert_eq!(field64(&img, other_bases.data), BASES.text);
}

#[test]
fn combine_unions_exports_and_refuses_conflicts() {
    let a = Domain::from_exports("a", [("x", 1), ("shared", 7)]);
    let b = Domain::from_exports("b", [("y", 2), ("shared", 7)]);
    let c = combine("ab", &a, &b).unwrap();
    assert_eq!(c.name(), "ab");
    assert_eq!(c.export_count(), 3);
    assert_eq!(c.address_of("x"), Some(1));
    assert_eq!(c.address_of("y"), Some(2));
    assert_eq!(c.address_of("shared"), Some(7));
    assert_ne!(c.id(), a.id());
    let bad = Domain::from_exports("bad", [("x", 99)]);
    assert_eq!(
        combine("abad", &a, &bad).unwrap_err(),
        Error::DuplicateExport {
            symbol: "x".to_string(),
            first: "a".to_string(),
            second: "bad".to_string()
        }
    );
    // Combining needs placed domains.
    let obj = ext_object("e", &[]);
    let object = Object::parse(&obj, &Limits::default()).unwrap();
    let unplaced = Domain::create("unplaced", &object).unwrap();
    assert!(matches!(
        combine("x", &a, &unplaced),
        Err(Error::NotPlaced { .. })
    ));
}

#[test]
fn registry_refuses_to_destroy_a_domain_in_use() {
    let mut reg = DomainRegistry::new();
    reg.insert(Domain::from_exports("SpinPublic", [("memcpy", 0x10)]))
        .unwrap();
    let obj = ext_object("e", &["memcpy"]);
    let object = Object::parse(&obj, &Limits::default()).unwrap();
    reg.insert(Domain::create("ext", &object).unwrap()).unwrap();
    assert!(matches!(
        reg.insert(Domain::from_exports("ext", [])),
        Err(Error::DomainExists { .. })
    ));
    assert_eq!(
        reg.resolve("SpinPublic", "ext").unwrap(),
        ResolveStats {
            resolved: 1,
            unresolved: 0
        }
    );
    assert_eq!(reg.dependents("SpinPublic"), ["ext"]);
    match reg.destroy("SpinPublic") {
        Err(Error::DomainInUse { domain, dependents }) => {
            assert_eq!(domain, "SpinPublic");
            assert_eq!(dependents, ["ext"]);
        }
        other => panic!("{other:?}"),
    }
    assert_eq!(reg.unresolve("SpinPublic", "ext").unwrap(), 1);
    assert!(reg.dependents("SpinPublic").is_empty());
    let d = reg.destroy("SpinPublic").unwrap();
    assert_eq!(d.name(), "SpinPublic");
    assert!(reg.get("SpinPublic").is_none());
    assert!(matches!(
        reg.resolve("SpinPublic", "ext"),
        Err(Error::NoSuchDomain { .. })
    ));
    // combine through the registry.
    reg.insert(Domain::from_exports("a", [("x", 1)])).unwrap();
    reg.insert(Domain::from_exports("b", [("y", 2)])).unwrap();
    reg.combine("ab", "a", "b").unwrap();
    assert_eq!(reg.get("ab").unwrap().export_count(), 2);
    assert_eq!(reg.len(), 4);
    reg.destroy("ext").unwrap().destroy();
    assert_eq!(reg.len(), 3);
}

#[test]
fn resolve_all_prefers_earlier_sources_and_flags_ambiguity() {
    let obj = ext_object("e", &["dup"]);
    let object = Object::parse(&obj, &Limits::default()).unwrap();
    let first = Domain::from_exports("first", [("dup", 1)]);
    let second = Domain::from_exports("second", [("dup", 2)]);
    let mut d = Domain::create("e", &object).unwrap();
    resolve_all(&[&first, &second], &mut d).unwrap();
    assert_eq!(d.imports().next().unwrap().binding.unwrap().address, 1);
    assert_eq!(
        d.imports().next().unwrap().binding.unwrap().source,
        first.id()
    );
}

#[test]
fn create_from_module_reads_symtab_with_bias_and_flags_ambiguous_names() {
    // A stand-in "kernel" ELF: two local `helper`s at different addresses,
    // a global, a local Rust symbol of a public crate, an internal one.
    let mut b = ObjBuilder::new();
    let t = b.text(".text", &[0xc3; 64]);
    b.symbol("helper", t, 0x10, STB_LOCAL, STT_FUNC);
    b.symbol("helper", t, 0x20, STB_LOCAL, STT_FUNC);
    b.symbol("memcpy", t, 0x30, STB_LOCAL, STT_FUNC);
    b.symbol("_RNvNtCs1_4core3fmt5write", t, 0x34, STB_LOCAL, STT_FUNC);
    b.symbol("_RNvCs2_12kernel_image4boot", t, 0x38, STB_GLOBAL, STT_FUNC);
    b.section_symbol(t);
    let elf = b.build();
    let bias = 0xffff_8000_0000_0000;
    let kernel = Domain::create_from_module("kernel", &elf, bias, &CrateFilter::all()).unwrap();
    // The borrowing variant sees the same table.
    let leaked: &'static [u8] = alloc::boxed::Box::leak(elf.clone().into_boxed_slice());
    let borrowed =
        Domain::create_from_static_module("kernel", leaked, bias, &CrateFilter::all()).unwrap();
    let a: Vec<_> = kernel.exports().map(|(n, e)| (n.to_string(), *e)).collect();
    let b: Vec<_> = borrowed
        .exports()
        .map(|(n, e)| (n.to_string(), *e))
        .collect();
    assert_eq!(a, b);
    assert!(borrowed.memory() < kernel.memory());
    assert_eq!(kernel.export_count(), 4);
    assert!(kernel.lookup("helper").unwrap().ambiguous);
    assert_eq!(kernel.address_of("helper"), None);
    assert_eq!(kernel.address_of("memcpy"), Some(bias + 0x30));
    assert_eq!(
        kernel.lookup("memcpy").unwrap().binding,
        SymbolBinding::Local
    );
    let public = Domain::create_from_module(
        "SpinPublic",
        &elf,
        bias,
        &CrateFilter::crates(&["core", "compiler_builtins"]),
    )
    .unwrap();
    let mut names: Vec<_> = public.exports().map(|(n, _)| n.to_string()).collect();
    names.sort();
    assert_eq!(names, ["_RNvNtCs1_4core3fmt5write", "memcpy"]);

    let obj = ext_object("e", &["helper", "memcpy", "_RNvCs2_12kernel_image4boot"]);
    let object = Object::parse(&obj, &Limits::default()).unwrap();
    let mut d = Domain::create("e", &object).unwrap();
    match resolve_all(&[&public, &kernel], &mut d) {
        Err(Error::Unresolved {
            symbols, searched, ..
        }) => {
            assert_eq!(searched, ["SpinPublic", "kernel"]);
            assert_eq!(
                symbols,
                [UnresolvedSymbol {
                    name: "helper".to_string(),
                    ambiguous: true
                }]
            );
        }
        other => panic!("{other:?}"),
    }
    // Against the public domain alone, the internal symbol is missing too.
    match resolve_all(&[&public], &mut d) {
        Err(Error::Unresolved { symbols, .. }) => {
            let names: Vec<_> = symbols.iter().map(|s| s.name.as_str()).collect();
            assert_eq!(names, ["helper", "_RNvCs2_12kernel_image4boot"]);
        }
        other => panic!("{other:?}"),
    }
    // A stripped module has no symbol table.
    let mut stripped = ObjBuilder::new().build();
    let symtab = section_index(&stripped, ".symtab");
    set_shdr(&mut stripped, symtab, 4, 4, 1); // SHT_PROGBITS
    assert_eq!(
        Domain::create_from_module("k", &stripped, 0, &CrateFilter::all()).unwrap_err(),
        Error::NoSymbolTable
    );
}

// --- archives: several objects linked as one unit -----------------------------

/// `a.o`: calls `shared` (defined in `b.o`) and `ext` (an import); defines
/// a weak `maybe`.
fn member_a() -> Vec<u8> {
    let mut b = ObjBuilder::new();
    let t = b.text(".text.a", &[0xe8, 0, 0, 0, 0, 0xe8, 0, 0, 0, 0, 0xc3]);
    let shared = b.undefined("shared");
    let ext = b.undefined("ext");
    b.symbol("maybe", t, 10, STB_WEAK, STT_FUNC);
    b.global_fn("entry_a", t, 0);
    b.reloc(t, 1, shared, R_PLT32, -4);
    b.reloc(t, 6, ext, R_PLT32, -4);
    b.build()
}

/// `b.o`: defines `shared` (hidden, as rustc does across codegen units)
/// and a strong `maybe`.
fn member_b() -> Vec<u8> {
    let mut b = ObjBuilder::new();
    let t = b.text(".text.b", &[0x90, 0x90, 0xc3, 0xc3]);
    let s = b.global_fn("shared", t, 1);
    b.hidden(s);
    b.global_fn("maybe", t, 2);
    b.build()
}

#[test]
fn archive_members_are_linked_as_one_unit() {
    let (a, bb) = (member_a(), member_b());
    let rmeta = b"rust metadata, not an object".to_vec();
    let archive = ar(&[("lib.rmeta", &rmeta), ("a.o", &a), ("b.o", &bb)]);
    let object = Object::parse(&archive, &Limits::default()).unwrap();
    assert_eq!(object.members().collect::<Vec<_>>(), ["a.o", "b.o"]);
    // `shared` is resolved inside the unit; only `ext` is imported.
    assert_eq!(
        object.imports().map(|i| i.name).collect::<Vec<_>>(),
        ["ext"]
    );
    // Hidden `shared` is not exported; the strong `maybe` wins over the weak.
    let mut exports: Vec<_> = object.exports().collect();
    exports.sort();
    assert_eq!(exports, ["entry_a", "maybe"]);
    let img = link(&archive, BASES, &[("ext", BASES.text + 0x1000)]).unwrap();
    let ta = section_addr(&img, ".text.a");
    let tb = section_addr(&img, ".text.b");
    assert_eq!(rip_target(&img, ta + 1), tb + 1);
    assert_eq!(img.symbol("maybe"), Some(tb + 2));
}

#[test]
fn archive_duplicate_strong_definitions_are_refused() {
    let b1 = member_b();
    let archive = ar(&[("b1.o", &b1), ("b2.o", &b1)]);
    match Object::parse(&archive, &Limits::default()) {
        Err(Error::DuplicateSymbol {
            symbol,
            first,
            second,
        }) => {
            assert_eq!(symbol, "shared");
            assert_eq!((first.as_str(), second.as_str()), ("b1.o", "b2.o"));
        }
        other => panic!("{other:?}"),
    }
}

#[test]
fn archive_without_objects_or_with_bad_members_is_refused() {
    let rmeta = b"meta".to_vec();
    assert_eq!(
        Object::parse(&ar(&[("lib.rmeta", &rmeta)]), &Limits::default()).unwrap_err(),
        Error::NoObjectInArchive
    );
    // A `.o` member that is not ELF is skipped; a broken ELF one fails.
    let broken = {
        let mut o = sample_object();
        o.truncate(100);
        o
    };
    assert!(Object::parse(&ar(&[("x.o", &broken)]), &Limits::default()).is_err());
    // A member whose size runs past the end of the archive.
    let mut a = ar(&[("a.o", &member_a())]);
    let size_field = 8 + 48;
    a[size_field..size_field + 10].copy_from_slice(b"9999999999");
    assert!(Object::parse(&a, &Limits::default()).is_err());
    // Too many members.
    let m = member_b();
    let many: Vec<(&str, &[u8])> = alloc::vec![("m.o", &m[..]); 3];
    let limits = Limits {
        max_objects: 2,
        ..Limits::default()
    };
    assert!(matches!(
        Object::parse(&ar(&many), &limits),
        Err(Error::LimitExceeded {
            limit: "max_objects",
            ..
        })
    ));
}

proptest::proptest! {
    #![proptest_config(proptest::prelude::ProptestConfig::with_cases(256))]
    /// Corrupted archives never panic either.
    #[test]
    fn corrupted_archives_never_panic(
        edits in proptest::collection::vec((0usize..4096, proptest::prelude::any::<u8>()), 1..8)
    ) {
        let (a, b) = (member_a(), member_b());
        let mut archive = ar(&[("lib.rmeta", b"meta"), ("a.o", &a), ("b.o", &b)]);
        let n = archive.len();
        for (at, v) in edits {
            archive[at % n] = v;
        }
        if let Ok(o) = Object::parse(&archive, &Limits::default())
            && let Ok(plan) = o.plan(&LinkOptions::default())
            && let Ok(bases) = plan.contiguous_bases(0x10_0000, 4096)
        {
            let _ = plan.link(bases, &FnResolver::new("r", |_| Some(0x20_0000)));
        }
    }
}

proptest::proptest! {
    #![proptest_config(proptest::prelude::ProptestConfig::with_cases(256))]
    /// A corrupted module ELF never panics `create_from_module`.
    #[test]
    fn corrupted_modules_never_panic(
        edits in proptest::collection::vec((0usize..2048, proptest::prelude::any::<u8>()), 1..8)
    ) {
        let mut elf = sample_object();
        let n = elf.len();
        for (at, v) in edits {
            elf[at % n] = v;
        }
        let _ = Domain::create_from_module("k", &elf, 0, &CrateFilter::all());
        let _ = Domain::create_from_module("k", &elf, 0, &CrateFilter::crates(&["core"]).strict(true));
    }

    /// Attribution never panics on arbitrary names.
    #[test]
    fn attribution_never_panics(name in "(_R|_ZN|__)?[A-Za-z0-9_$.]{0,80}") {
        let _ = attribute(&name);
        let _ = attribution::for_each_crate(&name, |_| {});
        let _ = CrateFilter::crates(&["core"]).strict(true).accepts(&name);
    }
}
