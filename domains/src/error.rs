//! The crate's single error type.
//!
//! Every variant names what failed: the section, symbol, relocation, domain or
//! check. Names are copied into the error (they usually borrow from an input
//! buffer that the caller may want to free), so an `Error` is `'static`.

use alloc::string::String;
use alloc::vec::Vec;
use core::fmt;

use crate::attribution::{self, Owner};

/// Result alias used throughout the crate.
pub type Result<T, E = Error> = core::result::Result<T, E>;

/// One symbol that could not be resolved, as listed in [`Error::Unresolved`].
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct UnresolvedSymbol {
    /// The symbol's (mangled) name.
    pub name: String,
    /// `true` if a searched domain had several distinct definitions of the
    /// name (unmangled local symbols) and so none could be chosen.
    pub ambiguous: bool,
}

/// Everything that can go wrong while parsing, planning, linking or while
/// operating on domains.
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum Error {
    /// The input is neither an ELF file nor an `ar` archive.
    NotElf,
    /// A read of `size` bytes at `offset` for `what` runs past the end of
    /// the input (`len` bytes).
    Truncated {
        /// What was being read.
        what: &'static str,
        /// File offset of the read.
        offset: u64,
        /// Number of bytes wanted.
        size: u64,
        /// Length of the input.
        len: u64,
    },
    /// An ELF header field has a value this linker does not accept.
    BadHeader {
        /// The field (`e_ident[EI_CLASS]`, `e_machine`, ...).
        field: &'static str,
        /// The value found.
        value: u64,
        /// What was expected.
        expected: &'static str,
    },
    /// goblin rejected the structure named by `what`.
    Parse {
        /// What was being parsed.
        what: &'static str,
        /// goblin's message.
        message: String,
    },
    /// The `ar` archive holds no ELF object member.
    NoObjectInArchive,
    /// A section's file range `offset..offset+size` lies outside the input.
    SectionOutOfBounds {
        /// Section name (or `#index` when the name is unreadable).
        section: String,
        /// `sh_offset`.
        offset: u64,
        /// `sh_size`.
        size: u64,
        /// Length of the input.
        len: u64,
    },
    /// Two sections (or a section and a header table) share file bytes.
    SectionsOverlap {
        /// First of the pair, by file offset.
        first: String,
        /// Second of the pair.
        second: String,
    },
    /// A configured [`Limits`](crate::Limits) bound was exceeded.
    LimitExceeded {
        /// Which limit (`max_section_size`, `max_symbols`, ...).
        limit: &'static str,
        /// Where: a section name, or the object as a whole.
        context: String,
        /// The value found.
        value: u64,
        /// The configured maximum.
        max: u64,
    },
    /// `sh_addralign` is not zero or a power of two.
    BadAlignment {
        /// Section name.
        section: String,
        /// The alignment found.
        align: u64,
    },
    /// A section header field is inconsistent (`sh_link`, `sh_info`,
    /// `sh_entsize`, size not a multiple of the entry size, ...).
    BadSection {
        /// Section name.
        section: String,
        /// What is wrong with it.
        reason: &'static str,
    },
    /// A section kind this linker refuses to load.
    UnsupportedSection {
        /// Section name.
        section: String,
        /// Why it is refused.
        reason: &'static str,
    },
    /// A string-table offset points outside its table, or the string has no
    /// terminating NUL inside the table, or it is not UTF-8.
    BadString {
        /// The string table's section name.
        table: String,
        /// The offset into it.
        offset: u64,
    },
    /// A symbol has a section index that does not exist.
    BadSymbolSection {
        /// Symbol name (or `#index`).
        symbol: String,
        /// The `st_shndx` found.
        shndx: u64,
    },
    /// A symbol's value lies outside its section.
    SymbolOutOfSection {
        /// Symbol name.
        symbol: String,
        /// Section name.
        section: String,
        /// `st_value`.
        value: u64,
    },
    /// Thread-local storage (a `STT_TLS` symbol or an `SHF_TLS` section).
    Tls {
        /// The symbol or section name.
        name: String,
    },
    /// A `SHN_COMMON` symbol: rustc never emits one; C code built with
    /// `-fcommon` does.
    Common {
        /// Symbol name.
        symbol: String,
    },
    /// A symbol kind this linker refuses (`STT_GNU_IFUNC`, `SHN_XINDEX`...).
    UnsupportedSymbol {
        /// Symbol name.
        symbol: String,
        /// Why it is refused.
        reason: &'static str,
    },
    /// A relocation names a symbol index past the end of the symbol table.
    SymbolIndexOutOfRange {
        /// The relocation section.
        section: String,
        /// Index of the relocation inside it.
        relocation: u64,
        /// The symbol index found.
        index: u64,
        /// Number of symbols.
        count: u64,
    },
    /// A relocation's patch `offset..offset+width` lies outside its section.
    RelocationOutOfSection {
        /// The section being patched.
        section: String,
        /// `r_offset`.
        offset: u64,
        /// Width of the patch in bytes.
        width: u64,
        /// Size of the section.
        size: u64,
    },
    /// A relocation type this linker does not implement.
    UnsupportedRelocation {
        /// The numeric `R_X86_64_*` type.
        r_type: u32,
        /// Its psABI name, or `"unknown"`.
        type_name: &'static str,
        /// The section being patched.
        section: String,
        /// The symbol it refers to.
        symbol: String,
    },
    /// A computed relocation value does not fit its field.
    RelocationOverflow {
        /// psABI name of the relocation type.
        type_name: &'static str,
        /// The section being patched.
        section: String,
        /// `r_offset`.
        offset: u64,
        /// The symbol it refers to.
        symbol: String,
        /// The value that did not fit.
        value: i128,
    },
    /// A relocation in a loaded section refers to a symbol defined in a
    /// section that is not loaded (debug info, a discarded section...).
    ReferenceToUnloadedSection {
        /// The symbol referred to.
        symbol: String,
        /// The section it lives in.
        section: String,
    },
    /// Two objects of one archive both define a global symbol.
    DuplicateSymbol {
        /// Symbol name.
        symbol: String,
        /// The archive member defining it first.
        first: String,
        /// The member defining it again.
        second: String,
    },
    /// Symbols were left undefined. The list is complete: every unresolved
    /// name is in it, not just the first.
    Unresolved {
        /// The domain (or resolver) whose imports are missing.
        target: String,
        /// The domains that were searched, in search order.
        searched: Vec<String>,
        /// Every symbol that could not be resolved.
        symbols: Vec<UnresolvedSymbol>,
    },
    /// Two domains export one name at different addresses (see
    /// [`combine`](crate::combine)).
    DuplicateExport {
        /// Symbol name.
        symbol: String,
        /// First domain.
        first: String,
        /// Second domain.
        second: String,
    },
    /// The domain's exports have no addresses yet: its object was not
    /// linked and [`Domain::place`](crate::Domain::place) not called.
    NotPlaced {
        /// Domain name.
        domain: String,
    },
    /// A segment base address is not aligned as the [`LinkPlan`](crate::LinkPlan)
    /// requires.
    MisalignedBase {
        /// Segment name.
        segment: &'static str,
        /// The base given.
        base: u64,
        /// The alignment required.
        align: u64,
    },
    /// The given base addresses make segments overlap or wrap around the
    /// address space.
    BadBases {
        /// What is wrong.
        reason: &'static str,
    },
    /// [`LinkedImage::read`](crate::LinkedImage::read) was asked for bytes not
    /// inside one segment of the image.
    AddressOutsideImage {
        /// Start address asked for.
        address: u64,
        /// Length asked for.
        len: u64,
    },
    /// No domain with this name (in a [`DomainRegistry`](crate::DomainRegistry)).
    NoSuchDomain {
        /// Domain name.
        domain: String,
    },
    /// A domain with this name is already registered.
    DomainExists {
        /// Domain name.
        domain: String,
    },
    /// The domain cannot be destroyed while others have imports bound to it.
    DomainInUse {
        /// Domain name.
        domain: String,
        /// Names of the domains importing from it.
        dependents: Vec<String>,
    },
    /// A module's ELF file has no `.symtab` (it was stripped).
    NoSymbolTable,
    /// The linked image does not export a symbol the loader requires (the
    /// extension descriptor).
    MissingSymbol {
        /// Symbol name.
        symbol: String,
    },
    /// An archive member failed to parse. A bundle names its members after
    /// the crates they hold (`heapless-0.9.4.o`), so this names the crate.
    InMember {
        /// The member's name.
        member: String,
        /// What failed in it.
        error: alloc::boxed::Box<Error>,
    },
}

/// Writes a mangled name followed by its readable form and owning crate.
struct SymbolDisplay<'a>(&'a str);

impl fmt::Display for SymbolDisplay<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let name = self.0;
        write!(f, "`{name}`")?;
        let demangled = rustc_demangle::try_demangle(name);
        if let Ok(d) = demangled {
            write!(f, " ({d:#}")?;
            if let Owner::Crate(c) = attribution::attribute(name).owner {
                write!(f, ", crate {c}")?;
            }
            write!(f, ")")?;
        } else if let Owner::Crate(c) = attribution::attribute(name).owner {
            write!(f, " (crate {c})")?;
        }
        Ok(())
    }
}

impl fmt::Display for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Error::NotElf => write!(f, "input is neither an ELF object nor an ar archive"),
            Error::Truncated {
                what,
                offset,
                size,
                len,
            } => write!(
                f,
                "truncated input: {what} needs {size} bytes at offset {offset:#x}, input is {len} bytes"
            ),
            Error::BadHeader {
                field,
                value,
                expected,
            } => write!(f, "ELF header {field} is {value:#x}, expected {expected}"),
            Error::Parse { what, message } => write!(f, "malformed {what}: {message}"),
            Error::NoObjectInArchive => write!(f, "archive contains no ELF object member"),
            Error::SectionOutOfBounds {
                section,
                offset,
                size,
                len,
            } => write!(
                f,
                "section {section}: bytes {offset:#x}+{size:#x} lie outside the {len}-byte input"
            ),
            Error::SectionsOverlap { first, second } => {
                write!(f, "sections {first} and {second} overlap in the file")
            }
            Error::LimitExceeded {
                limit,
                context,
                value,
                max,
            } => write!(f, "{context}: {limit} exceeded ({value} > {max})"),
            Error::BadAlignment { section, align } => write!(
                f,
                "section {section}: alignment {align} is not a power of two"
            ),
            Error::BadSection { section, reason } => write!(f, "section {section}: {reason}"),
            Error::UnsupportedSection { section, reason } => {
                write!(f, "section {section} is not supported: {reason}")
            }
            Error::BadString { table, offset } => write!(
                f,
                "string table {table}: no valid NUL-terminated UTF-8 string at offset {offset:#x}"
            ),
            Error::BadSymbolSection { symbol, shndx } => {
                write!(f, "symbol {symbol}: section index {shndx} does not exist")
            }
            Error::SymbolOutOfSection {
                symbol,
                section,
                value,
            } => write!(
                f,
                "symbol {symbol}: value {value:#x} lies outside its section {section}"
            ),
            Error::Tls { name } => {
                write!(
                    f,
                    "{name}: thread-local storage is not supported in extensions"
                )
            }
            Error::Common { symbol } => write!(
                f,
                "symbol {symbol} is a COMMON symbol, which is not supported"
            ),
            Error::UnsupportedSymbol { symbol, reason } => {
                write!(f, "symbol {symbol} is not supported: {reason}")
            }
            Error::SymbolIndexOutOfRange {
                section,
                relocation,
                index,
                count,
            } => write!(
                f,
                "{section}: relocation #{relocation} names symbol {index}, but the symbol table has {count} entries"
            ),
            Error::RelocationOutOfSection {
                section,
                offset,
                width,
                size,
            } => write!(
                f,
                "relocation at {section}+{offset:#x} ({width} bytes) lies outside the {size}-byte section"
            ),
            Error::UnsupportedRelocation {
                r_type,
                type_name,
                section,
                symbol,
            } => write!(
                f,
                "unsupported relocation {type_name} (type {r_type}) in {section} against {}",
                SymbolDisplay(symbol)
            ),
            Error::RelocationOverflow {
                type_name,
                section,
                offset,
                symbol,
                value,
            } => write!(
                f,
                "relocation {type_name} at {section}+{offset:#x} against {}: value {value:#x} does not fit",
                SymbolDisplay(symbol)
            ),
            Error::ReferenceToUnloadedSection { symbol, section } => write!(
                f,
                "symbol {} lives in section {section}, which is not loaded",
                SymbolDisplay(symbol)
            ),
            Error::DuplicateSymbol {
                symbol,
                first,
                second,
            } => write!(
                f,
                "symbol {} is defined in both {first} and {second}",
                SymbolDisplay(symbol)
            ),
            Error::Unresolved {
                target,
                searched,
                symbols,
            } => {
                write!(
                    f,
                    "domain {target}: {} unresolved symbol(s) after searching [",
                    symbols.len()
                )?;
                for (i, s) in searched.iter().enumerate() {
                    if i > 0 {
                        write!(f, ", ")?;
                    }
                    write!(f, "{s}")?;
                }
                write!(f, "]:")?;
                for s in symbols {
                    write!(f, "\n  {}", SymbolDisplay(&s.name))?;
                    if s.ambiguous {
                        write!(f, " [ambiguous: several distinct definitions]")?;
                    }
                    if let Some(bound) = crate::bounds::section_bound(&s.name) {
                        write!(
                            f,
                            " [a linker-defined bound, but the object has no section `{}`]",
                            bound.section
                        )?;
                    }
                }
                Ok(())
            }
            Error::DuplicateExport {
                symbol,
                first,
                second,
            } => write!(
                f,
                "domains {first} and {second} both export {} at different addresses",
                SymbolDisplay(symbol)
            ),
            Error::NotPlaced { domain } => write!(
                f,
                "domain {domain} has not been placed: link its object and call Domain::place first"
            ),
            Error::MisalignedBase {
                segment,
                base,
                align,
            } => write!(
                f,
                "{segment} segment base {base:#x} is not aligned to {align:#x}"
            ),
            Error::BadBases { reason } => write!(f, "bad segment bases: {reason}"),
            Error::AddressOutsideImage { address, len } => write!(
                f,
                "bytes {address:#x}+{len:#x} are not inside one segment of the image"
            ),
            Error::NoSuchDomain { domain } => write!(f, "no domain named {domain}"),
            Error::DomainExists { domain } => write!(f, "a domain named {domain} already exists"),
            Error::DomainInUse { domain, dependents } => {
                write!(f, "domain {domain} is in use by [")?;
                for (i, d) in dependents.iter().enumerate() {
                    if i > 0 {
                        write!(f, ", ")?;
                    }
                    write!(f, "{d}")?;
                }
                write!(f, "]")
            }
            Error::NoSymbolTable => {
                write!(f, "module ELF has no .symtab (was it stripped?)")
            }
            Error::MissingSymbol { symbol } => {
                write!(f, "the image does not export {}", SymbolDisplay(symbol))
            }
            Error::InMember { member, error } => write!(f, "archive member {member}: {error}"),
        }
    }
}

impl core::error::Error for Error {}
