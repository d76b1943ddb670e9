//! x86-64 relocation types and their arithmetic (System V psABI, §4.4).
//!
//! Notation, as in the psABI: `S` is the symbol's address, `A` the addend,
//! `P` the address of the field being patched, `G + GOT` the address of the
//! symbol's GOT slot, `L` the address of the symbol's call target (the
//! symbol itself, or a far-call stub when it is out of `rel32` range).

use goblin::elf::reloc as r;

/// A relocation type this linker implements.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum RelocKind {
    /// `R_X86_64_NONE`: no patch.
    None,
    /// `R_X86_64_64`: `S + A`, 64 bits.
    Abs64,
    /// `R_X86_64_PC32`: `S + A - P`, signed 32 bits.
    Pc32,
    /// `R_X86_64_PLT32`: `L + A - P`, signed 32 bits; `L` is a far-call
    /// stub when `S` is out of range.
    Plt32,
    /// `R_X86_64_GOTPCREL`: `G + GOT + A - P`, signed 32 bits.
    GotPcRel,
    /// `R_X86_64_32`: `S + A`, zero-extended 32 bits.
    Abs32,
    /// `R_X86_64_32S`: `S + A`, sign-extended 32 bits.
    Abs32S,
    /// `R_X86_64_PC64`: `S + A - P`, 64 bits.
    Pc64,
    /// `R_X86_64_GOTPCRELX`: as `GOTPCREL`; the instruction (`call *`,
    /// `jmp *`, `mov`) may be relaxed to address `S` directly.
    GotPcRelX,
    /// `R_X86_64_REX_GOTPCRELX`: as `GOTPCRELX`, for a REX-prefixed
    /// instruction (`mov`).
    RexGotPcRelX,
}

impl RelocKind {
    /// Every implemented kind, in `R_X86_64_*` number order.
    pub const ALL: [RelocKind; 10] = [
        RelocKind::None,
        RelocKind::Abs64,
        RelocKind::Pc32,
        RelocKind::Plt32,
        RelocKind::GotPcRel,
        RelocKind::Abs32,
        RelocKind::Abs32S,
        RelocKind::Pc64,
        RelocKind::GotPcRelX,
        RelocKind::RexGotPcRelX,
    ];

    /// The kind for a raw `r_type`, if implemented.
    pub fn from_raw(r_type: u32) -> Option<RelocKind> {
        Some(match r_type {
            r::R_X86_64_NONE => RelocKind::None,
            r::R_X86_64_64 => RelocKind::Abs64,
            r::R_X86_64_PC32 => RelocKind::Pc32,
            r::R_X86_64_PLT32 => RelocKind::Plt32,
            r::R_X86_64_GOTPCREL => RelocKind::GotPcRel,
            r::R_X86_64_32 => RelocKind::Abs32,
            r::R_X86_64_32S => RelocKind::Abs32S,
            r::R_X86_64_PC64 => RelocKind::Pc64,
            r::R_X86_64_GOTPCRELX => RelocKind::GotPcRelX,
            r::R_X86_64_REX_GOTPCRELX => RelocKind::RexGotPcRelX,
            _ => return None,
        })
    }

    /// The raw `r_type` number.
    pub fn raw(self) -> u32 {
        match self {
            RelocKind::None => r::R_X86_64_NONE,
            RelocKind::Abs64 => r::R_X86_64_64,
            RelocKind::Pc32 => r::R_X86_64_PC32,
            RelocKind::Plt32 => r::R_X86_64_PLT32,
            RelocKind::GotPcRel => r::R_X86_64_GOTPCREL,
            RelocKind::Abs32 => r::R_X86_64_32,
            RelocKind::Abs32S => r::R_X86_64_32S,
            RelocKind::Pc64 => r::R_X86_64_PC64,
            RelocKind::GotPcRelX => r::R_X86_64_GOTPCRELX,
            RelocKind::RexGotPcRelX => r::R_X86_64_REX_GOTPCRELX,
        }
    }

    /// The psABI name.
    pub fn name(self) -> &'static str {
        type_name(self.raw())
    }

    /// Width of the patched field in bytes.
    pub fn width(self) -> u64 {
        match self {
            RelocKind::None => 0,
            RelocKind::Abs64 | RelocKind::Pc64 => 8,
            _ => 4,
        }
    }

    /// Whether the relocation goes through a GOT slot.
    pub fn uses_got(self) -> bool {
        matches!(
            self,
            RelocKind::GotPcRel | RelocKind::GotPcRelX | RelocKind::RexGotPcRelX
        )
    }

    /// Position of this kind in [`RelocKind::ALL`] (for per-kind counters).
    pub(crate) fn index(self) -> usize {
        match self {
            RelocKind::None => 0,
            RelocKind::Abs64 => 1,
            RelocKind::Pc32 => 2,
            RelocKind::Plt32 => 3,
            RelocKind::GotPcRel => 4,
            RelocKind::Abs32 => 5,
            RelocKind::Abs32S => 6,
            RelocKind::Pc64 => 7,
            RelocKind::GotPcRelX => 8,
            RelocKind::RexGotPcRelX => 9,
        }
    }
}

/// The psABI name of any x86-64 relocation number (`"unknown"` if none).
pub fn type_name(r_type: u32) -> &'static str {
    const NAMES: [&str; 43] = [
        "R_X86_64_NONE",
        "R_X86_64_64",
        "R_X86_64_PC32",
        "R_X86_64_GOT32",
        "R_X86_64_PLT32",
        "R_X86_64_COPY",
        "R_X86_64_GLOB_DAT",
        "R_X86_64_JUMP_SLOT",
        "R_X86_64_RELATIVE",
        "R_X86_64_GOTPCREL",
        "R_X86_64_32",
        "R_X86_64_32S",
        "R_X86_64_16",
        "R_X86_64_PC16",
        "R_X86_64_8",
        "R_X86_64_PC8",
        "R_X86_64_DTPMOD64",
        "R_X86_64_DTPOFF64",
        "R_X86_64_TPOFF64",
        "R_X86_64_TLSGD",
        "R_X86_64_TLSLD",
        "R_X86_64_DTPOFF32",
        "R_X86_64_GOTTPOFF",
        "R_X86_64_TPOFF32",
        "R_X86_64_PC64",
        "R_X86_64_GOTOFF64",
        "R_X86_64_GOTPC32",
        "R_X86_64_GOT64",
        "R_X86_64_GOTPCREL64",
        "R_X86_64_GOTPC64",
        "R_X86_64_GOTPLT64",
        "R_X86_64_PLTOFF64",
        "R_X86_64_SIZE32",
        "R_X86_64_SIZE64",
        "R_X86_64_GOTPC32_TLSDESC",
        "R_X86_64_TLSDESC_CALL",
        "R_X86_64_TLSDESC",
        "R_X86_64_IRELATIVE",
        "R_X86_64_RELATIVE64",
        "unknown",
        "unknown",
        "R_X86_64_GOTPCRELX",
        "R_X86_64_REX_GOTPCRELX",
    ];
    usize::try_from(r_type)
        .ok()
        .and_then(|i| NAMES.get(i))
        .copied()
        .unwrap_or("unknown")
}

/// A value that does not fit its field.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct Overflow(pub i128);

/// The bytes to store for a field of `kind`'s width holding `value`, after
/// the kind's range check.
///
/// `value` is the psABI formula evaluated in 64-bit address arithmetic
/// (modulo 2^64, as the CPU computes `rip + disp32` or a sign-extended
/// `imm32`). A 32-bit zero-extended field (`R_X86_64_32`) needs
/// `value <= u32::MAX`; the sign-extended and PC-relative ones need
/// `value` read as `i64` to fit `i32`; 64-bit fields take it whole.
pub(crate) fn encode(kind: RelocKind, value: u64) -> Result<[u8; 8], Overflow> {
    match kind {
        RelocKind::None => Ok([0; 8]),
        RelocKind::Abs64 | RelocKind::Pc64 => Ok(value.to_le_bytes()),
        RelocKind::Abs32 => match u32::try_from(value) {
            Ok(v) => Ok(u64::from(v).to_le_bytes()),
            Err(_) => Err(Overflow(i128::from(value))),
        },
        RelocKind::Pc32
        | RelocKind::Plt32
        | RelocKind::Abs32S
        | RelocKind::GotPcRel
        | RelocKind::GotPcRelX
        | RelocKind::RexGotPcRelX => {
            let signed = value as i64;
            if fits_rel32(value) {
                Ok(signed.to_le_bytes())
            } else {
                Err(Overflow(i128::from(signed)))
            }
        }
    }
}

/// `target + addend - place`, modulo 2^64.
pub(crate) fn pc_rel(target: u64, addend: i64, place: u64) -> u64 {
    target.wrapping_add_signed(addend).wrapping_sub(place)
}

/// `target + addend`, modulo 2^64.
pub(crate) fn abs(target: u64, addend: i64) -> u64 {
    target.wrapping_add_signed(addend)
}

/// Whether `value`, read as a signed 64-bit number, fits a signed 32-bit
/// field (a `rel32` displacement or a sign-extended `imm32`).
pub(crate) fn fits_rel32(value: u64) -> bool {
    i32::try_from(value as i64).is_ok()
}

/// How a `GOTPCRELX`/`REX_GOTPCRELX` instruction can be rewritten to use
/// the symbol's address directly instead of loading it from the GOT.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Relaxation {
    /// `mov foo@GOTPCREL(%rip), %reg` (8b /r) becomes
    /// `lea foo(%rip), %reg` (8d /r); the displacement is `S + A - P`.
    MovToLea,
    /// `call *foo@GOTPCREL(%rip)` (ff 15) becomes `addr32 call foo`
    /// (67 e8); the displacement is `S + A - P`.
    CallToDirect,
    /// `jmp *foo@GOTPCREL(%rip)` (ff 25) becomes `jmp foo; nop`
    /// (e9 rel32 90); the displacement, stored one byte earlier, is
    /// `S + A - P + 1`.
    JmpToDirect,
}

/// Which relaxation applies to the instruction whose 32-bit displacement
/// starts at `offset` in `code`, for a relocation of `kind`.
///
/// `None` when the kind allows no relaxation, the bytes before the field
/// are not one of the recognised instructions, or they lie outside `code`.
pub(crate) fn relaxation(kind: RelocKind, code: &[u8], offset: usize) -> Option<Relaxation> {
    if !matches!(kind, RelocKind::GotPcRelX | RelocKind::RexGotPcRelX) {
        return None;
    }
    let op = *code.get(offset.checked_sub(2)?)?;
    let modrm = *code.get(offset.checked_sub(1)?)?;
    match (op, modrm) {
        // mov r64/r32, [rip + disp32]: ModRM with mod = 00, rm = 101.
        (0x8b, m) if m & 0xc7 == 0x05 => Some(Relaxation::MovToLea),
        (0xff, 0x15) if kind == RelocKind::GotPcRelX => Some(Relaxation::CallToDirect),
        (0xff, 0x25) if kind == RelocKind::GotPcRelX => Some(Relaxation::JmpToDirect),
        _ => None,
    }
}

/// Size in bytes of one far-call stub.
pub(crate) const STUB_SIZE: u64 = 16;

/// The bytes of a far-call stub jumping to `target`:
/// `jmp *0(%rip)` (ff 25 00 00 00 00), the 8-byte absolute target right
/// after it, then two `int3` bytes of padding.
pub(crate) fn stub(target: u64) -> [u8; STUB_SIZE as usize] {
    let mut s = [0xcc_u8; STUB_SIZE as usize];
    s[0] = 0xff;
    s[1] = 0x25;
    s[2..6].copy_from_slice(&0u32.to_le_bytes());
    s[6..14].copy_from_slice(&target.to_le_bytes());
    s
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn kinds_round_trip_their_numbers_and_names() {
        for (i, k) in RelocKind::ALL.iter().enumerate() {
            assert_eq!(RelocKind::from_raw(k.raw()), Some(*k));
            assert_eq!(k.index(), i);
            assert!(k.name().starts_with("R_X86_64_"), "{}", k.name());
        }
        assert_eq!(type_name(42), "R_X86_64_REX_GOTPCRELX");
        assert_eq!(type_name(19), "R_X86_64_TLSGD");
        assert_eq!(type_name(40), "unknown");
        assert_eq!(type_name(1000), "unknown");
        assert_eq!(RelocKind::from_raw(19), None);
    }

    #[test]
    fn encode_checks_each_range() {
        let neg = |v: i64| v as u64;
        assert_eq!(
            encode(RelocKind::Abs32, 0xffff_ffff).unwrap()[..4],
            [0xff; 4]
        );
        assert!(encode(RelocKind::Abs32, 0x1_0000_0000).is_err());
        assert_eq!(
            encode(RelocKind::Abs32, neg(-1)),
            Err(Overflow(u64::MAX.into()))
        );
        assert!(encode(RelocKind::Abs32S, neg(-1)).is_ok());
        assert!(encode(RelocKind::Abs32S, 0xffff_ffff_8000_0000).is_ok());
        assert!(encode(RelocKind::Abs32S, 0x8000_0000).is_err());
        assert!(encode(RelocKind::Pc32, neg(-0x8000_0000)).is_ok());
        assert_eq!(
            encode(RelocKind::Pc32, neg(-0x8000_0001)),
            Err(Overflow(-0x8000_0001))
        );
        assert_eq!(
            encode(RelocKind::Pc64, neg(-2)).unwrap(),
            (-2i64).to_le_bytes()
        );
        assert_eq!(pc_rel(0x10, -4, 0x20), neg(-0x14));
        assert_eq!(abs(u64::MAX, 2), 1);
    }

    #[test]
    fn relaxation_recognises_only_rip_relative_forms() {
        // 48 8b 05 <disp>: mov rax, [rip+disp]
        let mov = [0x48, 0x8b, 0x05, 0, 0, 0, 0];
        assert_eq!(
            relaxation(RelocKind::RexGotPcRelX, &mov, 3),
            Some(Relaxation::MovToLea)
        );
        assert_eq!(relaxation(RelocKind::GotPcRel, &mov, 3), None);
        // 48 8b 04 25: mov rax, [disp32] (SIB, not rip-relative)
        let absolute = [0x48, 0x8b, 0x04, 0, 0, 0, 0];
        assert_eq!(relaxation(RelocKind::RexGotPcRelX, &absolute, 3), None);
        let call = [0xff, 0x15, 0, 0, 0, 0];
        assert_eq!(
            relaxation(RelocKind::GotPcRelX, &call, 2),
            Some(Relaxation::CallToDirect)
        );
        assert_eq!(relaxation(RelocKind::RexGotPcRelX, &call, 2), None);
        assert_eq!(relaxation(RelocKind::GotPcRelX, &call, 1), None);
        assert_eq!(relaxation(RelocKind::GotPcRelX, &call, 0), None);
    }

    #[test]
    fn stub_is_an_indirect_jump_through_the_following_quadword() {
        let s = stub(0x1122_3344_5566_7788);
        assert_eq!(&s[..6], &[0xff, 0x25, 0, 0, 0, 0]);
        assert_eq!(&s[6..14], &0x1122_3344_5566_7788u64.to_le_bytes());
    }
}
