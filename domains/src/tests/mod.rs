//! Unit tests on hand-built objects: one per relocation type (with its
//! overflow case), layout, malformed input, domain operations and
//! archives, one file each; the helpers they share are here.

use alloc::vec::Vec;

use crate::testelf::*;
use crate::*;

mod archives;
mod domain_ops;
mod layout;
mod malformed;
mod relocations;

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

/// The address the rip-relative operand at `field` designates.
fn rip_target(img: &LinkedImage, field: u64) -> u64 {
    (field as i64 + 4 + i64::from(field32(img, field))) as u64
}

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
