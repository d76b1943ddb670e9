//! Rust legacy names (`_ZN...E`): the owning crate (by the orphan rule for
//! trait impls, which legacy names do not record) and every crate a name
//! mentions.

use super::Owner;

/// The `<len><ident>...` body of a legacy name, without `_ZN`, `E` and any
/// `.suffix`.
pub(super) fn legacy_body(symbol: &str) -> Option<&str> {
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

pub(super) fn legacy_owner(symbol: &str) -> Option<Owner<'_>> {
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
pub(super) fn legacy_crates(body: &str, f: &mut impl FnMut(&str)) {
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
