//! One test per x86-64 relocation type, with its overflow case.

use alloc::vec::Vec;

use super::*;

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
