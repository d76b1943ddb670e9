//! Address-to-function indexes: sorted tables built once (the kernel's at
//! boot, an extension's at load) so that a backtrace only does binary
//! searches, with no allocation and no parsing on the panic path.

use alloc::vec::Vec;
use core::ops::Range;

/// One function: where it starts, how long it is, and where its (mangled)
/// name is in the index's name bytes.
#[derive(Clone, Copy, Debug)]
struct Entry {
    start: u64,
    size: u64,
    name_offset: u32,
    name_len: u32,
}

/// Where an index's names live: the kernel's are borrowed from its ELF file
/// (mapped for ever), an extension's are copied at load (its object may not
/// outlive the load).
#[derive(Debug)]
enum Names {
    Borrowed(&'static [u8]),
    Owned(Vec<u8>),
}

impl Names {
    fn bytes(&self) -> &[u8] {
        match self {
            Self::Borrowed(bytes) => bytes,
            Self::Owned(bytes) => bytes,
        }
    }
}

/// A function found for an address.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Resolved<'a> {
    /// Mangled name (print it with `rustc_demangle::demangle`).
    pub name: &'a str,
    /// Bytes from the function's start to the address.
    pub offset: u64,
}

/// Functions sorted by address.
#[derive(Debug)]
pub struct FunctionIndex {
    entries: Vec<Entry>,
    names: Names,
}

/// `Entry::name_len` of a name that ends at a zero byte (an ELF string
/// table's).
const TERMINATED: u32 = u32::MAX;

/// Longest extent given to a function whose symbol has no size: up to the
/// next function, but never more than this.
const UNSIZED_EXTENT: u64 = 4096;

impl FunctionIndex {
    /// Sorts `entries`, drops duplicate starts (aliases: one name is
    /// kept) and gives unsized functions an extent.
    fn new(mut entries: Vec<Entry>, names: Names) -> Self {
        entries.sort_unstable_by_key(|e| e.start);
        entries.dedup_by_key(|e| e.start);
        for i in 0..entries.len() {
            if entries[i].size == 0 {
                let next = entries.get(i + 1).map_or(u64::MAX, |n| n.start);
                entries[i].size = (next - entries[i].start).min(UNSIZED_EXTENT);
            }
        }
        entries.shrink_to_fit();
        Self { entries, names }
    }

    /// An index of `functions` (name, address, size), names copied.
    pub fn from_functions<'n>(functions: impl Iterator<Item = (&'n str, u64, u64)>) -> Self {
        let mut names = Vec::new();
        let mut entries = Vec::new();
        for (name, start, size) in functions {
            let (Ok(name_offset), Ok(name_len)) =
                (u32::try_from(names.len()), u32::try_from(name.len()))
            else {
                break;
            };
            names.extend_from_slice(name.as_bytes());
            entries.push(Entry {
                start,
                size,
                name_offset,
                name_len,
            });
        }
        names.shrink_to_fit();
        Self::new(entries, Names::Owned(names))
    }

    /// Number of functions.
    pub fn len(&self) -> usize {
        self.entries.len()
    }

    /// Whether the index is empty.
    pub fn is_empty(&self) -> bool {
        self.entries.is_empty()
    }

    /// The function containing `address`, if any.
    pub fn lookup(&self, address: u64) -> Option<Resolved<'_>> {
        let after = self.entries.partition_point(|e| e.start <= address);
        let entry = self.entries.get(after.checked_sub(1)?)?;
        let offset = address - entry.start;
        if offset >= entry.size.max(1) {
            return None;
        }
        Some(Resolved {
            name: self.name(entry)?,
            offset,
        })
    }

    fn name(&self, entry: &Entry) -> Option<&str> {
        let tail = self.names.bytes().get(entry.name_offset as usize..)?;
        let len = if entry.name_len == TERMINATED {
            tail.iter().position(|&b| b == 0)?
        } else {
            entry.name_len as usize
        };
        core::str::from_utf8(tail.get(..len)?).ok()
    }
}

/// What the kernel knows about its own image for backtraces.
#[derive(Debug)]
pub struct KernelImage {
    /// The kernel's functions at their run-time addresses.
    pub functions: FunctionIndex,
    /// Addresses of the kernel's code.
    pub text: Range<u64>,
    /// `.eh_frame_hdr` (with its binary-search table), at run time.
    pub eh_frame_hdr: Range<u64>,
    /// `.eh_frame`, at run time.
    pub eh_frame: Range<u64>,
    /// Load bias: run-time address = link-time address + bias.
    pub load_bias: u64,
}

static KERNEL: spin::Once<KernelImage> = spin::Once::new();

/// Publishes the kernel's index (once).
pub fn set_kernel(image: KernelImage) {
    KERNEL.call_once(|| image);
}

/// The kernel's index, once built (never blocks: `Once` is complete or
/// absent for the panic path, which runs on the CPU that builds it).
pub fn kernel() -> Option<&'static KernelImage> {
    KERNEL.get()
}

/// Little-endian reads from an ELF file, bounds-checked.
struct Reader<'a>(&'a [u8]);

impl Reader<'_> {
    fn bytes<const N: usize>(&self, at: u64) -> Option<[u8; N]> {
        let at = usize::try_from(at).ok()?;
        self.0.get(at..at.checked_add(N)?)?.try_into().ok()
    }
    fn u16(&self, at: u64) -> Option<u16> {
        self.bytes(at).map(u16::from_le_bytes)
    }
    fn u32(&self, at: u64) -> Option<u32> {
        self.bytes(at).map(u32::from_le_bytes)
    }
    fn u64(&self, at: u64) -> Option<u64> {
        self.bytes(at).map(u64::from_le_bytes)
    }
}

/// A section header's fields that matter here.
#[derive(Clone, Copy)]
struct SectionHeader {
    name: u32,
    kind: u32,
    flags: u64,
    address: u64,
    offset: u64,
    size: u64,
    link: u32,
    entry_size: u64,
}

const SHT_SYMTAB: u32 = 2;
const SHF_EXECINSTR: u64 = 4;
const STT_FUNC: u8 = 2;
const SHN_UNDEF: u16 = 0;
const SHN_LORESERVE: u16 = 0xff00;

impl KernelImage {
    /// Reads the kernel's functions (`STT_FUNC` symbols of `.symtab`, local
    /// ones included), its code range and its unwind tables from its ELF
    /// file, loaded with `load_bias`.
    pub fn from_elf(bytes: &'static [u8], load_bias: u64) -> Result<Self, &'static str> {
        let elf = Reader(bytes);
        if bytes.get(..4) != Some(b"\x7fELF") || bytes.get(4) != Some(&2) {
            return Err("not an ELF64 file");
        }
        let shoff = elf.u64(0x28).ok_or("truncated ELF header")?;
        let shentsize = u64::from(elf.u16(0x3a).ok_or("truncated ELF header")?);
        let shnum = elf.u16(0x3c).ok_or("truncated ELF header")?;
        let shstrndx = elf.u16(0x3e).ok_or("truncated ELF header")?;
        if shentsize < 64 {
            return Err("bad section header size");
        }
        let header = |index: u16| -> Option<SectionHeader> {
            let at = shoff.checked_add(u64::from(index) * shentsize)?;
            Some(SectionHeader {
                name: elf.u32(at)?,
                kind: elf.u32(at + 4)?,
                flags: elf.u64(at + 8)?,
                address: elf.u64(at + 16)?,
                offset: elf.u64(at + 24)?,
                size: elf.u64(at + 32)?,
                link: elf.u32(at + 40)?,
                entry_size: elf.u64(at + 56)?,
            })
        };
        let shstrtab = header(shstrndx).ok_or("no section name table")?;
        let section_name = |h: &SectionHeader| -> &'static [u8] {
            let start = shstrtab.offset.saturating_add(u64::from(h.name));
            let tail = usize::try_from(start)
                .ok()
                .and_then(|s| bytes.get(s..))
                .unwrap_or(&[]);
            &tail[..tail.iter().position(|&b| b == 0).unwrap_or(tail.len())]
        };
        let headers = || (0..shnum).filter_map(header);
        let runtime = |h: &SectionHeader| {
            let start = h.address.wrapping_add(load_bias);
            start..start.wrapping_add(h.size)
        };
        let named = |name: &[u8]| headers().find(|h| section_name(h) == name);

        let text = headers()
            .filter(|h| h.flags & SHF_EXECINSTR != 0 && h.size > 0)
            .map(|h| runtime(&h))
            .reduce(|a, b| a.start.min(b.start)..a.end.max(b.end))
            .ok_or("no code sections")?;
        let eh_frame_hdr = named(b".eh_frame_hdr").map_or(0..0, |h| runtime(&h));
        let eh_frame = named(b".eh_frame").map_or(0..0, |h| runtime(&h));

        let symtab = headers()
            .find(|h| h.kind == SHT_SYMTAB)
            .ok_or("no .symtab (stripped kernel)")?;
        let strtab = header(u16::try_from(symtab.link).map_err(|_| "bad .strtab index")?)
            .ok_or("no .strtab")?;
        let strings = usize::try_from(strtab.offset)
            .ok()
            .zip(usize::try_from(strtab.size).ok())
            .and_then(|(start, len)| bytes.get(start..start.checked_add(len)?))
            .ok_or(".strtab outside the file")?;
        let symbols = usize::try_from(symtab.offset)
            .ok()
            .zip(usize::try_from(symtab.size).ok())
            .and_then(|(start, len)| bytes.get(start..start.checked_add(len)?))
            .ok_or(".symtab outside the file")?;
        if symtab.entry_size != 24 {
            return Err("unexpected .symtab entry size");
        }
        let mut entries = Vec::with_capacity(symbols.len() / 24);
        for symbol in symbols.as_chunks::<24>().0 {
            // Elf64_Sym: name u32, info u8, other u8, shndx u16, value u64, size u64.
            let field =
                |at: usize| u64::from_le_bytes(symbol[at..at + 8].try_into().unwrap_or([0; 8]));
            let info = symbol[4];
            let shndx = u16::from_le_bytes([symbol[6], symbol[7]]);
            let name = u32::from_le_bytes([symbol[0], symbol[1], symbol[2], symbol[3]]);
            if info & 0xf != STT_FUNC || shndx == SHN_UNDEF || shndx >= SHN_LORESERVE || name == 0 {
                continue;
            }
            // The name's length is found when it is looked up: scanning
            // every name here would cost boot time for nothing.
            entries.push(Entry {
                start: field(8).wrapping_add(load_bias),
                size: field(16),
                name_offset: name,
                name_len: TERMINATED,
            });
        }
        let functions = FunctionIndex::new(entries, Names::Borrowed(strings));
        Ok(Self {
            functions,
            text,
            eh_frame_hdr,
            eh_frame,
            load_bias,
        })
    }
}
