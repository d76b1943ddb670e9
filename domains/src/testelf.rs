//! A tiny ELF64 relocatable-object writer for unit tests.
//!
//! Layout of the output: ELF header, user section contents, one `.rela.*`
//! per relocated section, `.symtab`, `.strtab`, `.shstrtab`, then the
//! section header table. Section 0 is the null section; user sections are
//! numbered from 1 in the order they were added.

use alloc::string::String;
use alloc::vec::Vec;

pub const SHT_PROGBITS: u32 = 1;
pub const SHT_SYMTAB: u32 = 2;
pub const SHT_STRTAB: u32 = 3;
pub const SHT_RELA: u32 = 4;
pub const SHT_NOBITS: u32 = 8;
pub const SHF_WRITE: u64 = 1;
pub const SHF_ALLOC: u64 = 2;
pub const SHF_EXEC: u64 = 4;
pub const SHF_TLS: u64 = 0x400;

pub const STB_LOCAL: u8 = 0;
pub const STB_GLOBAL: u8 = 1;
pub const STB_WEAK: u8 = 2;
pub const STT_NOTYPE: u8 = 0;
pub const STT_OBJECT: u8 = 1;
pub const STT_FUNC: u8 = 2;
pub const STT_SECTION: u8 = 3;
pub const STT_TLS: u8 = 6;
pub const STV_HIDDEN: u8 = 2;

/// Offsets of fields inside an ELF64 section header.
pub const SH_OFFSET: usize = 0x18;
pub const SH_SIZE: usize = 0x20;
pub const SH_ADDRALIGN: usize = 0x30;

struct Sec {
    name: String,
    sh_type: u32,
    flags: u64,
    data: Vec<u8>,
    size: u64,
    align: u64,
}

struct Sym {
    name: String,
    value: u64,
    size: u64,
    info: u8,
    other: u8,
    shndx: u16,
}

struct Rela {
    section: u16,
    offset: u64,
    sym: u32,
    r_type: u32,
    addend: i64,
}

/// Builds an object file.
pub struct ObjBuilder {
    machine: u16,
    e_type: u16,
    sections: Vec<Sec>,
    symbols: Vec<Sym>,
    relocs: Vec<Rela>,
}

impl Default for ObjBuilder {
    fn default() -> Self {
        ObjBuilder {
            machine: 62,
            e_type: 1,
            sections: Vec::new(),
            symbols: Vec::new(),
            relocs: Vec::new(),
        }
    }
}

impl ObjBuilder {
    pub fn new() -> Self {
        Self::default()
    }

    pub fn machine(&mut self, m: u16) -> &mut Self {
        self.machine = m;
        self
    }

    pub fn e_type(&mut self, t: u16) -> &mut Self {
        self.e_type = t;
        self
    }

    /// Adds a section; returns its index.
    pub fn raw_section(
        &mut self,
        name: &str,
        sh_type: u32,
        flags: u64,
        data: &[u8],
        align: u64,
    ) -> u16 {
        self.sections.push(Sec {
            name: name.into(),
            sh_type,
            flags,
            data: data.to_vec(),
            size: data.len() as u64,
            align,
        });
        self.sections.len() as u16
    }

    pub fn text(&mut self, name: &str, code: &[u8]) -> u16 {
        self.raw_section(name, SHT_PROGBITS, SHF_ALLOC | SHF_EXEC, code, 16)
    }

    pub fn rodata(&mut self, name: &str, data: &[u8]) -> u16 {
        self.raw_section(name, SHT_PROGBITS, SHF_ALLOC, data, 8)
    }

    pub fn data(&mut self, name: &str, data: &[u8]) -> u16 {
        self.raw_section(name, SHT_PROGBITS, SHF_ALLOC | SHF_WRITE, data, 8)
    }

    pub fn bss(&mut self, name: &str, size: u64) -> u16 {
        self.sections.push(Sec {
            name: name.into(),
            sh_type: SHT_NOBITS,
            flags: SHF_ALLOC | SHF_WRITE,
            data: Vec::new(),
            size,
            align: 8,
        });
        self.sections.len() as u16
    }

    /// Adds a symbol; returns its index (symbol 0 is the null symbol).
    pub fn symbol(&mut self, name: &str, shndx: u16, value: u64, bind: u8, kind: u8) -> u32 {
        self.symbols.push(Sym {
            name: name.into(),
            value,
            size: 0,
            info: (bind << 4) | kind,
            other: 0,
            shndx,
        });
        self.symbols.len() as u32
    }

    pub fn hidden(&mut self, sym: u32) {
        if let Some(s) = self.symbols.get_mut(sym as usize - 1) {
            s.other = STV_HIDDEN;
        }
    }

    pub fn global_fn(&mut self, name: &str, shndx: u16, value: u64) -> u32 {
        self.symbol(name, shndx, value, STB_GLOBAL, STT_FUNC)
    }

    pub fn local(&mut self, name: &str, shndx: u16, value: u64) -> u32 {
        self.symbol(name, shndx, value, STB_LOCAL, STT_OBJECT)
    }

    pub fn undefined(&mut self, name: &str) -> u32 {
        self.symbol(name, 0, 0, STB_GLOBAL, STT_NOTYPE)
    }

    pub fn weak_undefined(&mut self, name: &str) -> u32 {
        self.symbol(name, 0, 0, STB_WEAK, STT_NOTYPE)
    }

    pub fn section_symbol(&mut self, shndx: u16) -> u32 {
        self.symbol("", shndx, 0, STB_LOCAL, STT_SECTION)
    }

    pub fn reloc(
        &mut self,
        section: u16,
        offset: u64,
        sym: u32,
        r_type: u32,
        addend: i64,
    ) -> &mut Self {
        self.relocs.push(Rela {
            section,
            offset,
            sym,
            r_type,
            addend,
        });
        self
    }

    /// Serialises the object.
    pub fn build(&self) -> Vec<u8> {
        let mut out = alloc::vec![0u8; 64];
        let pad_to = |out: &mut Vec<u8>, align: u64| {
            let a = align.max(1) as usize;
            while !out.len().is_multiple_of(a) {
                out.push(0);
            }
        };
        struct Hdr {
            name: String,
            sh_type: u32,
            flags: u64,
            offset: u64,
            size: u64,
            link: u32,
            info: u32,
            align: u64,
            entsize: u64,
        }
        let mut hdrs: Vec<Hdr> = Vec::new();
        for s in &self.sections {
            pad_to(&mut out, s.align);
            let offset = out.len() as u64;
            if s.sh_type != SHT_NOBITS {
                out.extend_from_slice(&s.data);
            }
            hdrs.push(Hdr {
                name: s.name.clone(),
                sh_type: s.sh_type,
                flags: s.flags,
                offset,
                size: s.size,
                link: 0,
                info: 0,
                align: s.align,
                entsize: 0,
            });
        }
        let n_user = self.sections.len();
        // Index the sections that follow.
        let mut rela_targets: Vec<u16> = self.relocs.iter().map(|r| r.section).collect();
        rela_targets.sort_unstable();
        rela_targets.dedup();
        let symtab_index = (n_user + rela_targets.len() + 1) as u32;
        let strtab_index = symtab_index + 1;
        let shstrtab_index = symtab_index + 2;
        for t in &rela_targets {
            pad_to(&mut out, 8);
            let offset = out.len() as u64;
            let mut n = 0u64;
            for r in self.relocs.iter().filter(|r| r.section == *t) {
                out.extend_from_slice(&r.offset.to_le_bytes());
                let info = (u64::from(r.sym) << 32) | u64::from(r.r_type);
                out.extend_from_slice(&info.to_le_bytes());
                out.extend_from_slice(&r.addend.to_le_bytes());
                n += 1;
            }
            let target_name = self
                .sections
                .get(usize::from(*t).wrapping_sub(1))
                .map_or(String::from("?"), |s| s.name.clone());
            hdrs.push(Hdr {
                name: alloc::format!(".rela{target_name}"),
                sh_type: SHT_RELA,
                flags: 0x40,
                offset,
                size: n * 24,
                link: symtab_index,
                info: u32::from(*t),
                align: 8,
                entsize: 24,
            });
        }
        // String table and symbols.
        let mut strtab = alloc::vec![0u8];
        let mut syms = alloc::vec![0u8; 24];
        let mut first_global = 1 + self.symbols.len() as u32;
        for (i, s) in self.symbols.iter().enumerate() {
            let name_off = if s.name.is_empty() {
                0
            } else {
                let o = strtab.len() as u32;
                strtab.extend_from_slice(s.name.as_bytes());
                strtab.push(0);
                o
            };
            if s.info >> 4 != STB_LOCAL && first_global > i as u32 + 1 {
                first_global = i as u32 + 1;
            }
            syms.extend_from_slice(&name_off.to_le_bytes());
            syms.push(s.info);
            syms.push(s.other);
            syms.extend_from_slice(&s.shndx.to_le_bytes());
            syms.extend_from_slice(&s.value.to_le_bytes());
            syms.extend_from_slice(&s.size.to_le_bytes());
        }
        pad_to(&mut out, 8);
        let symtab_off = out.len() as u64;
        out.extend_from_slice(&syms);
        hdrs.push(Hdr {
            name: ".symtab".into(),
            sh_type: SHT_SYMTAB,
            flags: 0,
            offset: symtab_off,
            size: syms.len() as u64,
            link: strtab_index,
            info: first_global,
            align: 8,
            entsize: 24,
        });
        let strtab_off = out.len() as u64;
        out.extend_from_slice(&strtab);
        hdrs.push(Hdr {
            name: ".strtab".into(),
            sh_type: SHT_STRTAB,
            flags: 0,
            offset: strtab_off,
            size: strtab.len() as u64,
            link: 0,
            info: 0,
            align: 1,
            entsize: 0,
        });
        hdrs.push(Hdr {
            name: ".shstrtab".into(),
            sh_type: SHT_STRTAB,
            flags: 0,
            offset: 0,
            size: 0,
            link: 0,
            info: 0,
            align: 1,
            entsize: 0,
        });
        let mut shstr = alloc::vec![0u8];
        let mut name_offs = Vec::new();
        for h in &hdrs {
            name_offs.push(shstr.len() as u32);
            shstr.extend_from_slice(h.name.as_bytes());
            shstr.push(0);
        }
        let shstr_off = out.len() as u64;
        out.extend_from_slice(&shstr);
        if let Some(h) = hdrs.last_mut() {
            h.offset = shstr_off;
            h.size = shstr.len() as u64;
        }
        pad_to(&mut out, 8);
        let shoff = out.len() as u64;
        out.extend_from_slice(&[0u8; 64]);
        for (h, name) in hdrs.iter().zip(&name_offs) {
            out.extend_from_slice(&name.to_le_bytes());
            out.extend_from_slice(&h.sh_type.to_le_bytes());
            out.extend_from_slice(&h.flags.to_le_bytes());
            out.extend_from_slice(&0u64.to_le_bytes());
            out.extend_from_slice(&h.offset.to_le_bytes());
            out.extend_from_slice(&h.size.to_le_bytes());
            out.extend_from_slice(&h.link.to_le_bytes());
            out.extend_from_slice(&h.info.to_le_bytes());
            out.extend_from_slice(&h.align.to_le_bytes());
            out.extend_from_slice(&h.entsize.to_le_bytes());
        }
        let shnum = (hdrs.len() + 1) as u16;
        // ELF header.
        let h = &mut out[..64];
        h[..4].copy_from_slice(b"\x7fELF");
        h[4] = 2; // ELFCLASS64
        h[5] = 1; // little-endian
        h[6] = 1; // EV_CURRENT
        h[16..18].copy_from_slice(&self.e_type.to_le_bytes());
        h[18..20].copy_from_slice(&self.machine.to_le_bytes());
        h[20..24].copy_from_slice(&1u32.to_le_bytes());
        h[0x28..0x30].copy_from_slice(&shoff.to_le_bytes());
        h[0x34..0x36].copy_from_slice(&64u16.to_le_bytes()); // e_ehsize
        h[0x3a..0x3c].copy_from_slice(&64u16.to_le_bytes()); // e_shentsize
        h[0x3c..0x3e].copy_from_slice(&shnum.to_le_bytes());
        h[0x3e..0x40].copy_from_slice(&(shstrtab_index as u16).to_le_bytes());
        out
    }
}

/// File offset of section header `index`.
pub fn shdr_offset(bytes: &[u8], index: usize) -> usize {
    let shoff = u64::from_le_bytes(bytes[0x28..0x30].try_into().unwrap()) as usize;
    shoff + 64 * index
}

/// Overwrites a little-endian field of section header `index`.
pub fn set_shdr(bytes: &mut [u8], index: usize, field: usize, width: usize, value: u64) {
    let at = shdr_offset(bytes, index) + field;
    bytes[at..at + width].copy_from_slice(&value.to_le_bytes()[..width]);
}

/// Reads a little-endian field of section header `index`.
pub fn get_shdr(bytes: &[u8], index: usize, field: usize, width: usize) -> u64 {
    let at = shdr_offset(bytes, index) + field;
    let mut b = [0u8; 8];
    b[..width].copy_from_slice(&bytes[at..at + width]);
    u64::from_le_bytes(b)
}

/// Index of the section called `name`.
pub fn section_index(bytes: &[u8], name: &str) -> usize {
    let shnum = u16::from_le_bytes([bytes[0x3c], bytes[0x3d]]) as usize;
    let shstrndx = u16::from_le_bytes([bytes[0x3e], bytes[0x3f]]) as usize;
    let str_off = get_shdr(bytes, shstrndx, SH_OFFSET, 8) as usize;
    (0..shnum)
        .find(|&i| {
            let n = get_shdr(bytes, i, 0, 4) as usize + str_off;
            let end = bytes[n..].iter().position(|&b| b == 0).unwrap() + n;
            &bytes[n..end] == name.as_bytes()
        })
        .unwrap_or_else(|| panic!("no section {name}"))
}

/// Builds a System V `ar` archive of `(name, bytes)` members (names up to
/// 15 bytes, stored as `name/`).
pub fn ar(members: &[(&str, &[u8])]) -> Vec<u8> {
    let mut out = b"!<arch>\n".to_vec();
    for (name, data) in members {
        let mut hdr = alloc::format!("{name}/");
        while hdr.len() < 16 {
            hdr.push(' ');
        }
        // mtime(12) uid(6) gid(6) mode(8) size(10) magic(2)
        hdr.push_str(&alloc::format!(
            "{:<12}{:<6}{:<6}{:<8}{:<10}`\n",
            0,
            0,
            0,
            644,
            data.len()
        ));
        assert_eq!(hdr.len(), 60);
        out.extend_from_slice(hdr.as_bytes());
        out.extend_from_slice(data);
        if out.len() % 2 == 1 {
            out.push(b'\n');
        }
    }
    out
}
