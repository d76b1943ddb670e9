//! Which crate a symbol belongs to, read from its mangled name.
//!
//! Domains are drawn per crate (design §5): a kernel domain such as
//! `SpinPublic` holds every symbol of a chosen set of crates. The kernel's
//! `.symtab` does not say which crate a symbol came from, so the name
//! decides. The rule:
//!
//! 1. **v0 names** (`_R...`, the default of the pinned nightly) and
//!    **legacy names** (`_ZN...E`, still used by crates built with
//!    `-C symbol-mangling-version=legacy`) are parsed; the *owner* is the
//!    crate in which the item's code is **defined**:
//!    * a free item or inherent method `a::b::f` → crate `a`;
//!    * a trait impl `<T as Trait>::m` defined by `impl Trait for T` → the
//!      crate holding the `impl` block. v0 records that crate (the impl
//!      path); legacy names do not, so for them it is the crate of `T`
//!      when `T` is a path, else the crate of `Trait` (by the orphan rule
//!      the impl lives in one of the two: `<alloc::string::String as
//!      core::fmt::Display>::fmt` → `alloc`);
//!    * a trait's provided method used for a type (`<T as Trait>::m` with
//!      no impl, v0 `Y`) → the crate defining `Trait`;
//!    * a generic instantiation `f::<T>` → the crate defining `f`. The
//!      instantiating-crate suffix of v0 names is ignored.
//! 2. Allocator shims (`__rust_alloc`, `__rust_dealloc`, `__rust_realloc`,
//!    `__rust_alloc_zeroed`, `__rust_alloc_error_handler`,
//!    `__rust_no_alloc_shim_is_unstable*`,
//!    `__rust_alloc_error_handler_should_panic*`), unmangled or v0-mangled
//!    under the `__rustc` pseudo-crate, belong to **`alloc`**: code that
//!    `alloc` inlines into an extension calls them. Every other `__rustc::`
//!    symbol (the panic handler entry, ...) belongs to crate `__rustc`.
//! 3. Unmangled names following compiler-rt's naming belong to
//!    **`compiler_builtins`**: the C memory functions (`memcpy`, `memmove`,
//!    `memset`, `memcmp`, `bcmp`, `strlen`, `wcslen`),
//!    `__<letters><2|3|4>` arithmetic helpers (`__udivti3`, `__muloti4`,
//!    `__adddf3`, `__extendhfsf2`, and `__rust_divhc3` style), the
//!    conversions `__float*` / `__fix*`, the `__atomic_*`, `__sync_*`,
//!    `__llvm_mem*`, `__rust_i128_*`, `__rust_u128_*` and `__gnu_*`
//!    families, `__rust_probestack`, and the C math functions
//!    compiler_builtins supplies on bare-metal targets (`fmod`, `sqrtf`,
//!    `floorf128`...). This matches every unmangled global that this
//!    toolchain's compiler_builtins defines, for the host and for
//!    `x86_64-unknown-none`, except its private `__compilerrt_abort_impl`
//!    (a test checks it). Linker-script symbols such as `__bss_start` or
//!    `__kernel_end` do not match (they end in a letter).
//! 4. `rust_eh_personality` and `_Unwind_Resume`, which code built with
//!    `-C panic=unwind` calls from its unwind tables and landing pads,
//!    belong to the pseudo-crate **`unwind`** ([`UNWIND_CRATE`]), as in
//!    std's `unwind` crate.
//! 5. Anything else (other `#[no_mangle]` symbols, names that fail to
//!    parse) has **no owner** and is in no crate-filtered domain.
//!
//! A [`CrateFilter`] can also require that *every* crate named in the
//! symbol (type arguments, self types, traits) be in the set
//! ([`CrateFilter::strict`]): then `core::ptr::drop_in_place::<kernel_image::Secret>`
//! is outside a public set even though `core` is in it.
//!
//! Parsing allocates nothing and borrows the crate name from the symbol.
//! [`attribute`] reads only the prefix of a v0 name that determines the
//! owner (the kernel attributes every symbol of its `.symtab` at boot);
//! [`for_each_crate`] and strict filters parse the whole name.

/// How a symbol name is mangled.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Mangling {
    /// Rust v0 (`_R`).
    V0,
    /// Rust legacy (`_ZN...E`).
    Legacy,
    /// Not a Rust mangled name.
    None,
}

/// The crate a symbol is attributed to.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Owner<'a> {
    /// A crate, by name (as in `extern crate` paths, with underscores).
    Crate(&'a str),
    /// No crate could be determined.
    Unknown,
}

/// The result of [`attribute`].
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Attribution<'a> {
    /// The mangling scheme recognised.
    pub mangling: Mangling,
    /// The owning crate.
    pub owner: Owner<'a>,
}

const ALLOC_SHIMS: [&str; 5] = [
    "__rust_alloc",
    "__rust_dealloc",
    "__rust_realloc",
    "__rust_alloc_zeroed",
    "__rust_alloc_error_handler",
];

fn is_alloc_shim(name: &str) -> bool {
    ALLOC_SHIMS.contains(&name)
        || name.starts_with("__rust_no_alloc_shim_is_unstable")
        || name.starts_with("__rust_alloc_error_handler_should_panic")
}

/// C math functions compiler_builtins provides on targets without a libm
/// (each also with an `f`, `f16` and `f128` suffix; `lgamma` also as the
/// reentrant `lgamma_r` / `lgammaf_r`).
const LIBM: [&str; 53] = [
    "acos",
    "acosh",
    "asin",
    "asinh",
    "atan",
    "atan2",
    "atanh",
    "cbrt",
    "ceil",
    "copysign",
    "cos",
    "cosh",
    "erf",
    "erfc",
    "exp",
    "exp10",
    "exp2",
    "expm1",
    "fabs",
    "fdim",
    "floor",
    "fma",
    "fmax",
    "fmaximum",
    "fmaximum_num",
    "fmin",
    "fminimum",
    "fminimum_num",
    "fmod",
    "frexp",
    "hypot",
    "ilogb",
    "ldexp",
    "lgamma",
    "log",
    "log10",
    "log1p",
    "log2",
    "modf",
    "nextafter",
    "pow",
    "remainder",
    "rint",
    "round",
    "roundeven",
    "scalbn",
    "sin",
    "sinh",
    "sqrt",
    "tan",
    "tanh",
    "tgamma",
    "trunc",
];

fn is_libm(name: &str) -> bool {
    let (stem, reentrant) = match name.strip_suffix("_r") {
        Some(s) => (s, true),
        None => (name, false),
    };
    let base = stem
        .strip_suffix("f128")
        .or_else(|| stem.strip_suffix("f16"))
        .or_else(|| stem.strip_suffix('f'))
        .unwrap_or(stem);
    if reentrant {
        return stem == "lgamma" || base == "lgamma";
    }
    LIBM.contains(&stem) || LIBM.contains(&base)
}

/// Whether an unmangled name is a compiler-builtins routine (rule 3).
pub fn is_compiler_builtin(name: &str) -> bool {
    const EXACT: [&str; 8] = [
        "memcpy",
        "memmove",
        "memset",
        "memcmp",
        "bcmp",
        "strlen",
        "wcslen",
        "__rust_probestack",
    ];
    if EXACT.contains(&name) || is_libm(name) {
        return true;
    }
    let Some(rest) = name.strip_prefix("__") else {
        return false;
    };
    let lower_alnum = |s: &str| {
        !s.is_empty()
            && s.bytes()
                .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit())
    };
    let lower_alnum_us = |s: &str| {
        !s.is_empty()
            && s.bytes()
                .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'_')
    };
    if let Some(tail) = rest
        .strip_prefix("float")
        .or_else(|| rest.strip_prefix("fix"))
    {
        return lower_alnum(tail);
    }
    if [
        "atomic_",
        "sync_",
        "llvm_memcpy_",
        "llvm_memmove_",
        "llvm_memset_",
        "rust_i128_",
        "rust_u128_",
        "gnu_",
    ]
    .iter()
    .any(|p| rest.starts_with(p))
    {
        return lower_alnum_us(rest);
    }
    // __<letters><2|3|4> (__udivti3, __muloti4, __powidf2, __extendhfsf2)
    // and compiler_builtins' own __rust_<letters><2|3|4> (__rust_divhc3).
    let op = rest.strip_prefix("rust_").unwrap_or(rest);
    match op.as_bytes().split_last() {
        Some((last, head)) if matches!(last, b'2'..=b'4') && !head.is_empty() => {
            head.iter().all(|b| b.is_ascii_lowercase())
        }
        _ => false,
    }
}

/// The pseudo-crate of the unwinding ABI (rule 4 of the module docs).
pub const UNWIND_CRATE: &str = "unwind";

/// Whether an unmangled name is part of the unwinding ABI that code built
/// with `-C panic=unwind` calls: the personality routine its unwind tables
/// name and `_Unwind_Resume`, which its landing pads call. (The frame
/// registry and the other `_Unwind_*` entry points are the kernel's alone.)
pub fn is_unwind_abi(name: &str) -> bool {
    matches!(name, "rust_eh_personality" | "_Unwind_Resume")
}

/// Attributes `symbol` to a crate by the rule in the module documentation.
pub fn attribute(symbol: &str) -> Attribution<'_> {
    if let Some(rest) = symbol.strip_prefix("_R") {
        let owner = v0_owner(rest.as_bytes())
            .and_then(|c| core::str::from_utf8(c).ok())
            .map_or(Owner::Unknown, Owner::Crate);
        return Attribution {
            mangling: Mangling::V0,
            owner,
        };
    }
    if let Some(owner) = legacy_owner(symbol) {
        return Attribution {
            mangling: Mangling::Legacy,
            owner,
        };
    }
    let owner = if is_alloc_shim(symbol) {
        Owner::Crate("alloc")
    } else if is_compiler_builtin(symbol) {
        Owner::Crate("compiler_builtins")
    } else if is_unwind_abi(symbol) {
        Owner::Crate(UNWIND_CRATE)
    } else {
        Owner::Unknown
    };
    Attribution {
        mangling: Mangling::None,
        owner,
    }
}

/// Whether `symbol` looks Rust-mangled (v0 `_R` or legacy `_ZN...E`),
/// without parsing it.
pub fn is_rust_mangled(symbol: &str) -> bool {
    symbol.starts_with("_R") || legacy_body(symbol).is_some()
}

/// Calls `f` with every crate named in `symbol`'s path, types and trait
/// paths (the v0 instantiating-crate suffix excepted). Returns `false` if
/// the name could not be parsed completely (then `f` may have seen only
/// some crates).
pub fn for_each_crate(symbol: &str, mut f: impl FnMut(&str)) -> bool {
    if let Some(rest) = symbol.strip_prefix("_R") {
        let mut cb = |c: &[u8]| f(core::str::from_utf8(c).unwrap_or(""));
        let mut p = V0::new(rest.as_bytes());
        p.visit = Some(&mut cb);
        return p.path_owner().is_some();
    }
    if let Some(body) = legacy_body(symbol) {
        legacy_crates(body, &mut f);
        return true;
    }
    match attribute(symbol).owner {
        Owner::Crate(c) => {
            f(c);
            true
        }
        Owner::Unknown => false,
    }
}

/// Which symbols a crate-filtered domain takes. See the module
/// documentation for how symbols are attributed.
#[derive(Clone, Copy, Debug)]
pub struct CrateFilter<'f> {
    crates: Option<&'f [&'f str]>,
    strict: bool,
}

impl<'f> CrateFilter<'f> {
    /// Every named symbol, whatever its crate (a domain for the whole
    /// kernel).
    pub fn all() -> Self {
        CrateFilter {
            crates: None,
            strict: false,
        }
    }

    /// Symbols owned by one of `crates`. `compiler_builtins` and `alloc` in
    /// the list take the unmangled builtins and allocator shims.
    pub fn crates(crates: &'f [&'f str]) -> Self {
        CrateFilter {
            crates: Some(crates),
            strict: false,
        }
    }

    /// Also require every crate *mentioned* in the symbol (generic
    /// arguments, self types, traits) to be in the list.
    pub fn strict(mut self, strict: bool) -> Self {
        self.strict = strict;
        self
    }

    /// Whether this is [`CrateFilter::all`].
    pub fn is_all(&self) -> bool {
        self.crates.is_none()
    }

    /// Whether `symbol` passes the filter.
    pub fn accepts(&self, symbol: &str) -> bool {
        self.accepts_bytes(symbol.as_bytes())
    }

    /// [`CrateFilter::accepts`] on the raw bytes of a name (v0 names are
    /// judged without UTF-8 validation; others must be UTF-8 to pass).
    pub fn accepts_bytes(&self, symbol: &[u8]) -> bool {
        let Some(list) = self.crates else {
            return true;
        };
        let owner_listed = match symbol.strip_prefix(b"_R") {
            Some(body) => v0_owner(body).is_some_and(|o| list.iter().any(|c| c.as_bytes() == o)),
            None => match core::str::from_utf8(symbol).map(|s| attribute(s).owner) {
                Ok(Owner::Crate(o)) => list.contains(&o),
                _ => false,
            },
        };
        if !owner_listed {
            return false;
        }
        if !self.strict {
            return true;
        }
        let Ok(text) = core::str::from_utf8(symbol) else {
            return false;
        };
        let mut all_in = true;
        let complete = for_each_crate(text, |c| {
            // `__rustc` only ever appears as the allocator-shim path, which
            // the owner check above already mapped to `alloc`.
            if c != "__rustc" && !list.contains(&c) {
                all_in = false;
            }
        });
        complete && all_in
    }
}

// ---------------------------------------------------------------------------
// v0

/// Maximum nesting (and back-reference chain) depth accepted.
const MAX_DEPTH: u32 = 64;
/// Maximum number of grammar nodes visited for one name: back-references
/// can make a short name denote an exponentially large tree, so the work
/// is bounded, not just the depth.
const MAX_STEPS: u32 = 4096;

/// Called with each crate name met while parsing.
type CrateVisitor<'v> = &'v mut dyn FnMut(&[u8]);

/// A cursor over a v0 symbol body (the part after `_R`).
struct V0<'s, 'v> {
    s: &'s [u8],
    pos: usize,
    depth: u32,
    steps: u32,
    /// Stop as soon as the owner is known (see [`attribute`]).
    shallow: bool,
    visit: Option<CrateVisitor<'v>>,
}

/// The owning crate of a v0 symbol body (after `_R`), with the
/// allocator-shim rule applied. Reads only the prefix that determines the
/// owner.
fn v0_owner(body: &[u8]) -> Option<&[u8]> {
    let mut p = V0::new(body);
    p.shallow = true;
    let c = p.path_owner()?;
    if c.is_empty() {
        return None;
    }
    if c == b"__rustc" {
        return match v0_last_ident(body) {
            Some(last) if is_alloc_shim(last) => Some(b"alloc"),
            _ => Some(c),
        };
    }
    Some(c)
}

/// The last identifier of a v0 path such as `NvCs..._7___rustc12___rust_alloc`.
fn v0_last_ident(s: &[u8]) -> Option<&str> {
    // Only used for `__rustc::<name>`: `N v C <crate> <ident>`.
    let mut p = V0::new(s);
    if p.eat(b'N') && p.next().is_some() && p.eat(b'C') {
        p.disambiguator()?;
        p.ident()?;
        p.disambiguator()?;
        let id = p.ident()?;
        return core::str::from_utf8(id).ok();
    }
    None
}

impl<'s> V0<'s, '_> {
    fn new(s: &'s [u8]) -> Self {
        V0 {
            s,
            pos: 0,
            depth: 0,
            steps: 0,
            shallow: false,
            visit: None,
        }
    }

    fn peek(&self) -> Option<u8> {
        self.s.get(self.pos).copied()
    }

    fn next(&mut self) -> Option<u8> {
        let b = self.peek()?;
        self.pos += 1;
        Some(b)
    }

    fn eat(&mut self, b: u8) -> bool {
        if self.peek() == Some(b) {
            self.pos += 1;
            true
        } else {
            false
        }
    }

    /// `<base-62-number>`: `_` is 0, `<digits>_` is value + 1.
    fn base62(&mut self) -> Option<u64> {
        if self.eat(b'_') {
            return Some(0);
        }
        let mut x: u64 = 0;
        loop {
            let b = self.next()?;
            let d = match b {
                b'0'..=b'9' => b - b'0',
                b'a'..=b'z' => 10 + (b - b'a'),
                b'A'..=b'Z' => 36 + (b - b'A'),
                b'_' => return x.checked_add(1),
                _ => return None,
            };
            x = x.checked_mul(62)?.checked_add(u64::from(d))?;
        }
    }

    /// `[s <base-62-number>]`.
    fn disambiguator(&mut self) -> Option<()> {
        if self.eat(b's') {
            self.base62()?;
        }
        Some(())
    }

    /// `<undisambiguated-identifier>`: `[u] <decimal> [_] <bytes>`.
    ///
    /// A decimal number has no leading zeros, so a `0` ends it at once:
    /// `00` is two empty identifiers (closures and anonymous constants
    /// have empty names).
    fn ident(&mut self) -> Option<&'s [u8]> {
        self.eat(b'u');
        let mut len: usize = match self.next()? {
            b'0' => 0,
            d @ b'1'..=b'9' => usize::from(d - b'0'),
            _ => return None,
        };
        if len > 0 {
            while let Some(b @ b'0'..=b'9') = self.peek() {
                len = len.checked_mul(10)?.checked_add(usize::from(b - b'0'))?;
                self.pos += 1;
            }
            self.eat(b'_');
        }
        let start = self.pos;
        let end = start.checked_add(len)?;
        let id = self.s.get(start..end)?;
        self.pos = end;
        Some(id)
    }

    fn enter(&mut self) -> Option<()> {
        self.depth += 1;
        self.steps += 1;
        (self.depth <= MAX_DEPTH && self.steps <= MAX_STEPS).then_some(())
    }

    fn leave(&mut self) {
        self.depth -= 1;
    }

    /// Follows a `B <base-62-number>` back-reference with `f`, restoring
    /// the position afterwards.
    fn backref<T>(&mut self, f: impl FnOnce(&mut Self) -> Option<T>) -> Option<T> {
        let target = usize::try_from(self.base62()?).ok()?;
        // Back-references point strictly backwards (to before the `B`).
        if target >= self.pos {
            return None;
        }
        let saved = self.pos;
        self.pos = target;
        self.enter()?;
        let r = f(self);
        self.leave();
        self.pos = saved;
        r
    }

    /// Parses a `<path>` and returns the owning crate's name.
    fn path_owner(&mut self) -> Option<&'s [u8]> {
        self.enter()?;
        let r = self.path_inner();
        self.leave();
        r
    }

    fn path_inner(&mut self) -> Option<&'s [u8]> {
        match self.next()? {
            b'C' => {
                self.disambiguator()?;
                let name = self.ident()?;
                if let Some(v) = self.visit.as_mut() {
                    v(name);
                }
                Some(name)
            }
            b'N' => {
                let ns = self.next()?;
                if !ns.is_ascii_alphabetic() {
                    return None;
                }
                let owner = self.path_owner()?;
                if self.shallow {
                    return Some(owner);
                }
                self.disambiguator()?;
                self.ident()?;
                Some(owner)
            }
            b'M' => {
                self.disambiguator()?;
                let owner = self.path_owner()?;
                if self.shallow {
                    return Some(owner);
                }
                self.ty()?;
                Some(owner)
            }
            b'X' => {
                self.disambiguator()?;
                let owner = self.path_owner()?;
                if self.shallow {
                    return Some(owner);
                }
                self.ty()?;
                self.path_owner()?;
                Some(owner)
            }
            b'Y' => {
                // The self type must be skipped in full to reach the trait.
                let shallow = core::mem::replace(&mut self.shallow, false);
                let ty = self.ty();
                self.shallow = shallow;
                ty?;
                self.path_owner()
            }
            b'I' => {
                let owner = self.path_owner()?;
                if self.shallow {
                    return Some(owner);
                }
                while !self.eat(b'E') {
                    self.generic_arg()?;
                }
                Some(owner)
            }
            b'B' => self.backref(|p| p.path_owner()),
            _ => None,
        }
    }

    fn generic_arg(&mut self) -> Option<()> {
        if self.eat(b'L') {
            self.base62().map(|_| ())
        } else if self.eat(b'K') {
            self.konst()
        } else {
            self.ty()
        }
    }

    fn ty(&mut self) -> Option<()> {
        self.enter()?;
        let r = self.ty_inner();
        self.leave();
        r
    }

    fn ty_inner(&mut self) -> Option<()> {
        let b = self.peek()?;
        match b {
            b'a'..=b'j'
            | b'l'
            | b'm'
            | b'n'
            | b'o'
            | b'p'
            | b's'
            | b't'
            | b'u'
            | b'v'
            | b'x'
            | b'y'
            | b'z' => {
                self.pos += 1;
                Some(())
            }
            b'A' => {
                self.pos += 1;
                self.ty()?;
                self.konst()
            }
            b'S' | b'P' | b'O' => {
                self.pos += 1;
                self.ty()
            }
            b'R' | b'Q' => {
                self.pos += 1;
                if self.eat(b'L') {
                    self.base62()?;
                }
                self.ty()
            }
            b'T' => {
                self.pos += 1;
                while !self.eat(b'E') {
                    self.ty()?;
                }
                Some(())
            }
            b'F' => {
                self.pos += 1;
                self.binder()?;
                self.eat(b'U');
                if self.eat(b'K') && !self.eat(b'C') {
                    self.ident()?;
                }
                while !self.eat(b'E') {
                    self.ty()?;
                }
                self.ty()
            }
            b'D' => {
                self.pos += 1;
                self.binder()?;
                while !self.eat(b'E') {
                    self.path_owner()?;
                    while self.eat(b'p') {
                        self.ident()?;
                        self.ty()?;
                    }
                }
                // The trait object's lifetime.
                if !self.eat(b'L') {
                    return None;
                }
                self.base62().map(|_| ())
            }
            b'B' => {
                self.pos += 1;
                self.backref(|p| p.ty())
            }
            b'C' | b'N' | b'M' | b'X' | b'Y' | b'I' => self.path_owner().map(|_| ()),
            _ => None,
        }
    }

    fn binder(&mut self) -> Option<()> {
        if self.eat(b'G') {
            self.base62()?;
        }
        Some(())
    }

    fn konst(&mut self) -> Option<()> {
        self.enter()?;
        let r = self.konst_inner();
        self.leave();
        r
    }

    fn hex_data(&mut self) -> Option<()> {
        self.eat(b'n');
        loop {
            match self.next()? {
                b'0'..=b'9' | b'a'..=b'f' => {}
                b'_' => return Some(()),
                _ => return None,
            }
        }
    }

    fn konst_inner(&mut self) -> Option<()> {
        match self.next()? {
            b'p' => Some(()),
            b'B' => self.backref(|p| p.konst()),
            b'h' | b't' | b'm' | b'y' | b'o' | b'j' | b'a' | b's' | b'l' | b'x' | b'n' | b'i'
            | b'b' | b'c' | b'e' => self.hex_data(),
            b'R' | b'Q' => self.konst(),
            b'A' | b'T' => {
                while !self.eat(b'E') {
                    self.konst()?;
                }
                Some(())
            }
            b'V' => {
                self.path_owner()?;
                match self.next()? {
                    b'U' => Some(()),
                    b'T' => {
                        while !self.eat(b'E') {
                            self.konst()?;
                        }
                        Some(())
                    }
                    b'S' => {
                        while !self.eat(b'E') {
                            self.disambiguator()?;
                            self.ident()?;
                            self.konst()?;
                        }
                        Some(())
                    }
                    _ => None,
                }
            }
            _ => None,
        }
    }
}

// ---------------------------------------------------------------------------
// legacy

/// The `<len><ident>...` body of a legacy name, without `_ZN`, `E` and any
/// `.suffix`.
fn legacy_body(symbol: &str) -> Option<&str> {
    let rest = symbol
        .strip_prefix("_ZN")
        .or_else(|| symbol.strip_prefix("__ZN"))?;
    // Walk the length-prefixed components up to the closing `E`.
    let b = rest.as_bytes();
    let mut i = 0;
    loop {
        match b.get(i)? {
            b'E' => return rest.get(..i),
            b'0'..=b'9' => {
                let mut len: usize = 0;
                while let Some(d @ b'0'..=b'9') = b.get(i) {
                    len = len.checked_mul(10)?.checked_add(usize::from(d - b'0'))?;
                    i += 1;
                }
                i = i.checked_add(len)?;
                if i > b.len() {
                    return None;
                }
            }
            _ => return None,
        }
    }
}

/// Iterates the components of a legacy body.
fn legacy_components(body: &str) -> impl Iterator<Item = &str> {
    let mut rest = body;
    core::iter::from_fn(move || {
        let digits = rest.bytes().take_while(u8::is_ascii_digit).count();
        let len: usize = rest.get(..digits)?.parse().ok()?;
        let comp = rest.get(digits..digits.checked_add(len)?)?;
        rest = rest.get(digits + len..)?;
        Some(comp)
    })
}

/// The crate at the start of a legacy-escaped path such as
/// `alloc..string..String`, after skipping reference/pointer/slice
/// prefixes; `None` if the text does not start with a path.
fn legacy_path_crate(mut s: &str) -> Option<&str> {
    loop {
        let before = s;
        for prefix in [
            "$RF$",
            "$BP$",
            "$u5b$",
            "mut$u20$",
            "const$u20$",
            "dyn$u20$",
        ] {
            if let Some(r) = s.strip_prefix(prefix) {
                s = r;
            }
        }
        if s.len() == before.len() {
            break;
        }
    }
    let end = s.find("..")?;
    let head = s.get(..end)?;
    (!head.is_empty() && head.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'_'))
        .then_some(head)
}

fn legacy_owner(symbol: &str) -> Option<Owner<'_>> {
    let body = legacy_body(symbol)?;
    let first = legacy_components(body).next()?;
    let first = first.strip_prefix('_').unwrap_or(first);
    if let Some(inner) = first.strip_prefix("$LT$") {
        // `<T as Trait>` or `<T>` (an inherent impl on a path type).
        if let Some(pos) = inner.find("$u20$as$u20$") {
            let self_ty = inner.get(..pos)?;
            let trait_part = inner.get(pos + "$u20$as$u20$".len()..)?;
            let owner = legacy_path_crate(self_ty).or_else(|| legacy_path_crate(trait_part));
            return Some(owner.map_or(Owner::Unknown, Owner::Crate));
        }
        return Some(legacy_path_crate(inner).map_or(Owner::Unknown, Owner::Crate));
    }
    if first.is_empty()
        || !first
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'_')
    {
        return Some(Owner::Unknown);
    }
    Some(Owner::Crate(first))
}

/// Every crate named in a legacy body: the first component when it is a
/// plain identifier, and every identifier that follows a `$...$` escape
/// (or starts a component) and is followed by `..`.
fn legacy_crates(body: &str, f: &mut impl FnMut(&str)) {
    for (i, comp) in legacy_components(body).enumerate() {
        let plain = comp.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'_');
        if i == 0 && plain {
            f(comp);
            continue;
        }
        // Split at `$` escapes; a path starts right after an escape.
        for piece in comp.split('$') {
            if let Some(c) = legacy_path_crate(piece) {
                f(c);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use alloc::string::{String, ToString};
    use alloc::vec::Vec;

    fn owner(s: &str) -> Option<&str> {
        match attribute(s).owner {
            Owner::Crate(c) => Some(c),
            Owner::Unknown => None,
        }
    }

    fn crates(s: &str) -> Vec<String> {
        let mut v = Vec::new();
        assert!(for_each_crate(s, |c| v.push(c.to_string())), "{s}");
        v
    }

    #[test]
    fn v0_free_functions_and_statics() {
        assert_eq!(owner("_RNvNtCseqjPbERlUDJ_4core3fmt5write"), Some("core"));
        assert_eq!(owner("_RNvCs1120XHkyhlX_1a7COUNTER"), Some("a"));
        assert_eq!(
            owner("_RNvNtCsgbST6DSui6q_5alloc7raw_vec12handle_error"),
            Some("alloc")
        );
        assert_eq!(attribute("_RNvCs1120XHkyhlX_1a3fmt").mangling, Mangling::V0);
    }

    #[test]
    fn v0_trait_impl_belongs_to_the_impl_crate() {
        // <alloc::string::String as core::fmt::Write>::write_str
        let s = "_RNvXs15_NtCsgbST6DSui6q_5alloc6stringNtB6_6StringNtNtCseqjPbERlUDJ_4core3fmt5Write9write_str";
        assert_eq!(owner(s), Some("alloc"));
        assert_eq!(crates(s), ["alloc", "alloc", "core"]);
        // <core::fmt::Error as core::fmt::Debug>::fmt
        assert_eq!(
            owner("_RNvXsK_NtCseqjPbERlUDJ_4core3fmtNtB5_5ErrorNtB5_5Debug3fmt"),
            Some("core")
        );
        // core::fmt::num::imp::<impl Display for u64>::fmt: self type is a basic type.
        assert_eq!(
            owner("_RNvXs8_NtNtNtCseqjPbERlUDJ_4core3fmt3num3impmNtB9_7Display3fmt"),
            Some("core")
        );
    }

    #[test]
    fn v0_provided_trait_method_belongs_to_the_trait_crate() {
        // <alloc::string::String as core::fmt::Write>::write_fmt, instantiated in crate a.
        let s = "_RNvYNtNtCsgbST6DSui6q_5alloc6string6StringNtNtCseqjPbERlUDJ_4core3fmt5Write9write_fmtCs1120XHkyhlX_1a";
        assert_eq!(owner(s), Some("core"));
        // The instantiating crate `a` is not a mention.
        assert_eq!(crates(s), ["alloc", "core"]);
    }

    #[test]
    fn v0_generic_instantiation_belongs_to_the_generic_item() {
        // core::ptr::drop_glue::<alloc::string::String>, instantiated in a.
        let s = "_RINvNtCseqjPbERlUDJ_4core3ptr9drop_glueNtNtCsgbST6DSui6q_5alloc6string6StringECs1120XHkyhlX_1a";
        assert_eq!(owner(s), Some("core"));
        assert_eq!(crates(s), ["core", "alloc"]);
        // A backref-heavy inherent impl: <RawVecInner<A>>::reserve::do_reserve_and_handle::<Global>
        let s = "_RINvNvMs5_NtCsgbST6DSui6q_5alloc7raw_vecINtB8_11RawVecInnerpE7reserve21do_reserve_and_handleNtNtBa_5alloc6GlobalECs1120XHkyhlX_1a";
        assert_eq!(owner(s), Some("alloc"));
    }

    #[test]
    fn v0_closures_in_consts_and_empty_identifiers_parse() {
        // <std::sys::thread_local::native::lazy::Storage<Cell<(u64, u64)>, !>>::get_or_init_slow::<
        //   <RandomState>::new::KEYS::{K#0}::{closure#1}::{closure#0}>
        let s = "_RINvMs0_NtNtNtNtCs4asks4yiE7J_3std3sys12thread_local6native4lazyINtB6_7StorageINtNtCseqjPbERlUDJ_4core4cell4CellTyyEEzE16get_or_init_slowNCNCNKNvNvMNtNtBe_4hash6randomNtB2m_11RandomState3new4KEYS0s_00ECs9GZH0G3F8sq_12real_objects";
        // Three empty identifiers in a row: K#0, closure#1, closure#0.
        assert_eq!(
            owner("_RNCNCNKNvNvCs4asks4yiE7J_3std3new4KEYS0s_00"),
            Some("std")
        );
        assert_eq!(owner(s), Some("std"));
        // Crates reached through back-references are visited again.
        assert_eq!(crates(s), ["std", "std", "core", "std", "std"]);
    }

    #[test]
    fn v0_allocator_shims_belong_to_alloc() {
        assert_eq!(
            owner("_RNvCsfdYgyGz23Lv_7___rustc12___rust_alloc"),
            Some("alloc")
        );
        assert_eq!(
            owner("_RNvCsfdYgyGz23Lv_7___rustc35___rust_no_alloc_shim_is_unstable_v2"),
            Some("alloc")
        );
        assert_eq!(
            owner("_RNvCsfdYgyGz23Lv_7___rustc17rust_begin_unwind"),
            Some("__rustc")
        );
    }

    #[test]
    fn v0_garbage_has_no_owner() {
        for s in [
            "_R",
            "_RX",
            "_RNvC",
            "_RNvCs_99999a",
            "_RB_",
            "_RC0",
            "_RYzC",
        ] {
            assert_eq!(owner(s), None, "{s}");
        }
        // The owner is read from the prefix; a bad tail only fails the
        // full parse.
        assert_eq!(owner("_RIC1aBz_E"), Some("a"));
        assert!(!for_each_crate("_RIC1aBz_E", |_| {}));
        assert!(
            !CrateFilter::crates(&["a"])
                .strict(true)
                .accepts("_RIC1aBz_E")
        );
        assert!(CrateFilter::crates(&["a"]).accepts("_RIC1aBz_E"));
        // Deep nesting is cut off, not a stack overflow.
        let mut deep = String::from("_R");
        for _ in 0..10_000 {
            deep.push_str("INv");
        }
        assert_eq!(owner(&deep), None);
        // Back-references that double the tree at every level: bounded
        // work, no owner.
        let mut bomb = String::from("_RINvC1a1fTB8_");
        for _ in 0..40 {
            bomb.push_str("TB8_B8_E");
        }
        bomb.push('E');
        let start = std::time::Instant::now();
        let _ = attribute(&bomb);
        let _ = for_each_crate(&bomb, |_| {});
        assert!(start.elapsed() < std::time::Duration::from_secs(1));
    }

    #[test]
    fn v0_dyn_fn_const_and_tuple_types_parse() {
        // a::f::<dyn core::fmt::Debug, fn(u8) -> i32, [u8; 4], (u8, bool), 7>
        let s = "_RINvCs1_1a1fDNtNtCs2_4core3fmt5DebugEL_FhElAhj4_ThbEKj7_E";
        assert_eq!(owner(s), Some("a"));
        assert_eq!(crates(s), ["a", "core"]);
    }

    #[test]
    fn legacy_names() {
        assert_eq!(
            owner("_ZN4core3fmt5write17h0123456789abcdefE"),
            Some("core")
        );
        assert_eq!(
            attribute("_ZN4core3fmt5write17h0123456789abcdefE").mangling,
            Mangling::Legacy
        );
        let display = "_ZN60_$LT$alloc..string..String$u20$as$u20$core..fmt..Display$GT$3fmt17h0123456789abcdefE";
        assert_eq!(owner(display), Some("alloc"));
        assert_eq!(crates(display), ["alloc", "core"]);
        // <&T as core::fmt::Debug>::fmt: no path self type, so the trait's crate.
        assert_eq!(
            owner("_ZN42_$LT$$RF$T$u20$as$u20$core..fmt..Debug$GT$3fmt17h0123456789abcdefE"),
            Some("core")
        );
        // Generic instantiation: core::ptr::drop_in_place<kernel_image::Secret>
        let s = "_ZN4core3ptr41drop_in_place$LT$kernel_image..Secret$GT$17h0123456789abcdefE";
        assert_eq!(owner(s), Some("core"));
        assert_eq!(crates(s), ["core", "kernel_image"]);
        // ThinLTO suffixes are tolerated.
        assert_eq!(
            owner("_ZN4core3fmt5write17h0123456789abcdefE.llvm.1234"),
            Some("core")
        );
        assert_eq!(owner("_ZN4core3fmt5wri"), None);
    }

    #[test]
    fn unmangled_builtins_and_shims() {
        for s in [
            "memcpy",
            "memset",
            "__udivti3",
            "__umodti3",
            "__muloti4",
            "__floattidf",
            "__fixunsdfti",
            "__atomic_load_16",
            "__llvm_memcpy_element_unordered_atomic_8",
            "__rust_probestack",
            "__extendhfsf2",
        ] {
            assert_eq!(owner(s), Some("compiler_builtins"), "{s}");
        }
        for s in [
            "__rust_alloc",
            "__rust_dealloc",
            "__rust_no_alloc_shim_is_unstable_v2",
        ] {
            assert_eq!(owner(s), Some("alloc"), "{s}");
        }
        for s in [
            "__bss_start",
            "_start",
            "kernel_main",
            "__kernel_end",
            "__rg_alloc",
            "__",
            "__2",
        ] {
            assert_eq!(owner(s), None, "{s}");
        }
    }

    #[test]
    fn filters() {
        let public = ["core", "alloc", "compiler_builtins", "dispatcher"];
        let f = CrateFilter::crates(&public);
        assert!(f.accepts("memcpy"));
        assert!(f.accepts("_RNvNtCseqjPbERlUDJ_4core3fmt5write"));
        assert!(!f.accepts("_RNvCs1_12kernel_image4boot"));
        assert!(!f.accepts("kernel_main"));
        let generic_over_internal =
            "_ZN4core3ptr41drop_in_place$LT$kernel_image..Secret$GT$17h0123456789abcdefE";
        assert!(f.accepts(generic_over_internal));
        assert!(!f.strict(true).accepts(generic_over_internal));
        assert!(f.strict(true).accepts(
            "_RNvXs15_NtCsgbST6DSui6q_5alloc6stringNtB6_6StringNtNtCseqjPbERlUDJ_4core3fmt5Write9write_str"
        ));
        assert!(
            f.strict(true)
                .accepts("_RNvCsfdYgyGz23Lv_7___rustc12___rust_alloc")
        );
        assert!(CrateFilter::all().accepts("kernel_main"));
    }
}

#[cfg(test)]
mod unwind_abi_tests {
    use super::*;

    #[test]
    fn only_the_personality_and_resume_belong_to_the_unwind_pseudo_crate() {
        for name in ["rust_eh_personality", "_Unwind_Resume"] {
            assert_eq!(attribute(name).owner, Owner::Crate(UNWIND_CRATE), "{name}");
        }
        for name in [
            "__register_frame",
            "__deregister_frame",
            "_Unwind_RaiseException",
            "_Unwind_Backtrace",
        ] {
            assert_eq!(attribute(name).owner, Owner::Unknown, "{name}");
        }
    }
}
