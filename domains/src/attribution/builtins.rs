//! Rules 2-4 of the [module docs](super): the unmangled names that belong
//! to a crate all the same — the allocator shims (`alloc`), the
//! compiler-builtins routines and C math functions (`compiler_builtins`),
//! and the unwinding ABI (the `unwind` pseudo-crate).

const ALLOC_SHIMS: [&str; 5] = [
    "__rust_alloc",
    "__rust_dealloc",
    "__rust_realloc",
    "__rust_alloc_zeroed",
    "__rust_alloc_error_handler",
];

pub(super) fn is_alloc_shim(name: &str) -> bool {
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
