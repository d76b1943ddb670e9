//! Reading the symbols of a linked module (the running kernel's own ELF
//! file) into an export table.

use goblin::elf::section_header::{SHN_ABS, SHN_UNDEF, SHT_SYMTAB};
use goblin::elf::sym::{
    STB_GLOBAL, STB_LOCAL, STB_WEAK, STT_FILE, STT_FUNC, STT_OBJECT, STT_SECTION, STT_TLS,
};

use crate::attribution::{self, CrateFilter};
use crate::elf;
use crate::error::{Error, Result};
use crate::symtab::SymbolTable;

/// Section and symbol limits for module files: a kernel has far more of
/// both than an extension.
const MODULE_MAX_SECTIONS: u64 = 1 << 20;
const MODULE_MAX_SYMBOLS: u64 = 1 << 24;

/// Kind of an exported symbol.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum SymbolKind {
    /// `STT_FUNC`.
    Function,
    /// `STT_OBJECT`.
    Object,
    /// Anything else (`STT_NOTYPE`...).
    Other,
}

/// ELF binding of an exported symbol.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub enum SymbolBinding {
    /// `STB_LOCAL`: in a linked kernel, this includes hidden symbols the
    /// static linker demoted (`memcpy`, `__rust_alloc`...).
    Local,
    /// `STB_WEAK`.
    Weak,
    /// `STB_GLOBAL`.
    Global,
}

/// An exported symbol of a domain.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Export {
    /// Absolute address (0 until the domain is placed).
    pub address: u64,
    /// `st_size`.
    pub size: u64,
    /// Function, object or other.
    pub kind: SymbolKind,
    /// Binding in the file it came from.
    pub binding: SymbolBinding,
    /// Several distinct definitions of this unmangled name exist at the
    /// same binding rank; none can be chosen, so resolution refuses it.
    pub ambiguous: bool,
}

pub(crate) fn kind_of(st_type: u8) -> SymbolKind {
    match st_type {
        STT_FUNC => SymbolKind::Function,
        STT_OBJECT => SymbolKind::Object,
        _ => SymbolKind::Other,
    }
}

pub(crate) fn binding_of(st_bind: u8) -> SymbolBinding {
    match st_bind {
        STB_GLOBAL => SymbolBinding::Global,
        STB_WEAK => SymbolBinding::Weak,
        _ => SymbolBinding::Local,
    }
}

/// Merges a second definition of a name into the table entry.
///
/// The rule: an identical address is the same definition. Otherwise the
/// stronger binding wins (global > weak > local), as a static linker would
/// have bound an external reference. At equal binding, Rust-mangled names
/// keep the first definition: one mangled name denotes one item with one
/// set of generic arguments, so duplicates (the same instantiation emitted
/// by several codegen units) are interchangeable. Unmangled names at equal
/// binding (two C `static` functions called `helper`) are genuinely
/// different and the entry becomes ambiguous.
pub(crate) fn merge_definition(name: &str, existing: &mut Export, new: Export) {
    if existing.address == new.address {
        existing.binding = existing.binding.max(new.binding);
        return;
    }
    match new.binding.cmp(&existing.binding) {
        core::cmp::Ordering::Greater => *existing = new,
        core::cmp::Ordering::Less => {}
        core::cmp::Ordering::Equal => {
            if !attribution::is_rust_mangled(name) {
                existing.ambiguous = true;
            }
        }
    }
}

/// Reads the `.symtab` of a linked ELF (`ET_EXEC` or `ET_DYN`) and returns
/// the defined symbols accepted by `filter`, at `value + load_bias`
/// (wrapping: a negative bias is a large `u64`).
///
/// Undefined, section, file, TLS and absolute symbols are skipped, as are
/// names that are empty or not UTF-8. Local symbols are kept: the kernel's
/// static linker makes `memcpy`, `__rust_alloc`, ... local.
///
/// With `borrow` (the same bytes as `bytes`, with a `'static` lifetime),
/// names stay in the file's string table instead of being copied.
pub(crate) fn module_exports(
    bytes: &[u8],
    borrow: Option<&'static [u8]>,
    load_bias: u64,
    filter: &CrateFilter<'_>,
) -> Result<SymbolTable<Export>> {
    let header = elf::read_header(bytes)?;
    let table = elf::read_sections(bytes, &header, MODULE_MAX_SECTIONS)?;
    let names = elf::section_names(bytes, &table)?;
    let symtab_index = table
        .headers
        .iter()
        .position(|sh| sh.sh_type == SHT_SYMTAB)
        .ok_or(Error::NoSymbolTable)?;
    let syms = elf::open_symtab(
        bytes,
        &table.headers,
        &names,
        symtab_index,
        MODULE_MAX_SYMBOLS,
    )?;
    // Borrowing needs every name offset to fit the table's u32 spans.
    let borrow = borrow.filter(|b| u32::try_from(b.len()).is_ok());
    let strtab_offset = usize::try_from(syms.strtab_offset).unwrap_or(0);
    let mut out = match borrow {
        Some(b) => SymbolTable::borrowing(syms.len(), b),
        None => SymbolTable::with_capacity(syms.len(), syms.strtab.len()),
    };
    for i in 1..syms.len() {
        let Some(sym) = syms.get(i) else { break };
        let st_type = sym.st_type();
        let shndx = u32::try_from(sym.st_shndx).unwrap_or(u32::MAX);
        if shndx == SHN_UNDEF
            || shndx == SHN_ABS
            || matches!(st_type, STT_FILE | STT_SECTION | STT_TLS)
            || !matches!(sym.st_bind(), STB_LOCAL | STB_GLOBAL | STB_WEAK)
        {
            continue;
        }
        let Some((name, ascii)) = elf::cstr_bytes(syms.strtab, sym.st_name) else {
            continue;
        };
        if name.is_empty() {
            continue;
        }
        // Rust symbol names are ASCII; anything else must be valid UTF-8.
        if !ascii && core::str::from_utf8(name).is_err() {
            continue;
        }
        if !filter.is_all() && !filter.accepts_bytes(name) {
            continue;
        }
        let export = Export {
            address: sym.st_value.wrapping_add(load_bias),
            size: sym.st_size,
            kind: kind_of(st_type),
            binding: binding_of(sym.st_bind()),
            ambiguous: false,
        };
        let merge = |existing: &mut Export, new: Export| {
            merge_definition(core::str::from_utf8(name).unwrap_or(""), existing, new);
        };
        match borrow {
            Some(_) => out.upsert_borrowed(
                strtab_offset.saturating_add(sym.st_name),
                name.len(),
                export,
                merge,
            ),
            None => out.upsert_bytes(name, export, merge),
        }
        .map_err(|_| Error::LimitExceeded {
            limit: "symbol table size",
            context: alloc::string::String::from("module .symtab"),
            value: syms.len() as u64,
            max: u64::from(u32::MAX),
        })?;
    }
    out.shrink();
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn e(address: u64, binding: SymbolBinding) -> Export {
        Export {
            address,
            size: 0,
            kind: SymbolKind::Function,
            binding,
            ambiguous: false,
        }
    }

    #[test]
    fn duplicate_definitions_merge_by_binding_then_mangling() {
        // Same address: one definition, strongest binding kept.
        let mut x = e(1, SymbolBinding::Local);
        merge_definition("helper", &mut x, e(1, SymbolBinding::Global));
        assert_eq!(x, e(1, SymbolBinding::Global));
        // Stronger binding wins.
        let mut x = e(1, SymbolBinding::Local);
        merge_definition("helper", &mut x, e(2, SymbolBinding::Weak));
        assert_eq!(x, e(2, SymbolBinding::Weak));
        let mut x = e(1, SymbolBinding::Global);
        merge_definition("helper", &mut x, e(2, SymbolBinding::Local));
        assert_eq!(x, e(1, SymbolBinding::Global));
        // Equal binding, Rust-mangled: the first is kept, not ambiguous.
        let mut x = e(1, SymbolBinding::Local);
        merge_definition("_RNvCs1_1a1f", &mut x, e(2, SymbolBinding::Local));
        assert_eq!(x, e(1, SymbolBinding::Local));
        let mut x = e(1, SymbolBinding::Local);
        merge_definition(
            "_ZN1a1f17h0123456789abcdefE",
            &mut x,
            e(2, SymbolBinding::Local),
        );
        assert!(!x.ambiguous);
        // Equal binding, unmangled: ambiguous.
        let mut x = e(1, SymbolBinding::Local);
        merge_definition("helper", &mut x, e(2, SymbolBinding::Local));
        assert!(x.ambiguous);
        assert_eq!(x.address, 1);
    }
}
