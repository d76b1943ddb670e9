//! Rust v0 names (`_R...`): the owning crate, and every crate a name
//! mentions, read by a bounded recursive-descent parser over the grammar
//! (back-references included) that allocates nothing.

use super::is_alloc_shim;

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
    /// Stop as soon as the owner is known (see [`attribute`](super::attribute)).
    shallow: bool,
    visit: Option<CrateVisitor<'v>>,
}

/// The owning crate of a v0 symbol body (after `_R`), with the
/// allocator-shim rule applied. Reads only the prefix that determines the
/// owner.
pub(super) fn v0_owner(body: &[u8]) -> Option<&[u8]> {
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

/// Calls `f` with every crate named in the v0 symbol body `body` (after
/// `_R`); `false` if the body did not parse completely.
pub(super) fn for_each_crate(body: &[u8], f: &mut impl FnMut(&str)) -> bool {
    let mut cb = |c: &[u8]| f(core::str::from_utf8(c).unwrap_or(""));
    let mut p = V0::new(body);
    p.visit = Some(&mut cb);
    p.path_owner().is_some()
}
