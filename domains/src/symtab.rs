//! An interned, hash-indexed symbol table.
//!
//! Names live either in one owned byte buffer, or, for a table built from
//! a `'static` ELF image (the running kernel's own file), in that image's
//! string table, borrowed rather than copied. Entries refer to names by
//! offset and length; a `hashbrown::HashTable` of entry indices gives O(1)
//! lookups. Building a table of `n` names costs at most three
//! allocations, not `n`: the kernel builds one for its whole `.symtab` at
//! boot.

use alloc::vec::Vec;
use core::hash::BuildHasher;

use hashbrown::{DefaultHashBuilder, HashTable};

/// Marks a [`Span`] whose bytes are in the borrowed backing buffer.
const BORROWED: u32 = 1 << 31;

/// Where a name lives: `len & BORROWED` selects the backing buffer.
#[derive(Clone, Copy, Debug)]
struct Span {
    start: u32,
    len: u32,
}

/// The name storage, split from the entries so closures can borrow both.
#[derive(Clone, Debug)]
struct Names {
    owned: Vec<u8>,
    backing: &'static [u8],
}

impl Names {
    fn get(&self, span: Span) -> &[u8] {
        let start = span.start as usize;
        let len = (span.len & !BORROWED) as usize;
        let buf: &[u8] = if span.len & BORROWED != 0 {
            self.backing
        } else {
            &self.owned
        };
        start
            .checked_add(len)
            .and_then(|end| buf.get(start..end))
            .unwrap_or(&[])
    }
}

/// A name -> `T` map with interned names.
///
/// Invariants: every entry's span lies inside its buffer and holds valid
/// UTF-8 (inserted from a `&str`, or by a caller that checked it); `index`
/// holds each entry index exactly once, hashed by the entry's name bytes;
/// names are unique.
#[derive(Clone, Debug)]
pub(crate) struct SymbolTable<T> {
    names: Names,
    entries: Vec<(Span, T)>,
    index: HashTable<u32>,
    hasher: DefaultHashBuilder,
}

/// The table is full: names or entries exceed the offset range.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct TableFull;

impl<T> Default for SymbolTable<T> {
    fn default() -> Self {
        Self::with_capacity(0, 0)
    }
}

impl<T> SymbolTable<T> {
    /// An empty table with room for `entries` names totalling `name_bytes`.
    pub fn with_capacity(entries: usize, name_bytes: usize) -> Self {
        SymbolTable {
            names: Names {
                owned: Vec::with_capacity(name_bytes),
                backing: &[],
            },
            entries: Vec::with_capacity(entries),
            index: HashTable::with_capacity(entries),
            hasher: DefaultHashBuilder::default(),
        }
    }

    /// An empty table for `entries` names borrowed from `backing` with
    /// [`SymbolTable::upsert_borrowed`] (other names are copied as usual).
    pub fn borrowing(entries: usize, backing: &'static [u8]) -> Self {
        let mut t = Self::with_capacity(entries, 0);
        t.names.backing = backing;
        t
    }

    /// A stored name as text (always valid by the invariant; `""` if not).
    fn text(bytes: &[u8]) -> &str {
        core::str::from_utf8(bytes).unwrap_or("")
    }

    /// Number of names.
    pub fn len(&self) -> usize {
        self.entries.len()
    }

    fn find(&self, hash: u64, name: &[u8]) -> Option<u32> {
        let names = &self.names;
        let entries = &self.entries;
        self.index
            .find(hash, |&i| {
                entries
                    .get(i as usize)
                    .is_some_and(|(span, _)| names.get(*span) == name)
            })
            .copied()
    }

    /// Index of `name`, if present.
    pub fn position(&self, name: &str) -> Option<usize> {
        let name = name.as_bytes();
        self.find(self.hasher.hash_one(name), name)
            .map(|i| i as usize)
    }

    /// The value for `name`.
    pub fn get(&self, name: &str) -> Option<&T> {
        self.position(name)
            .and_then(|i| self.entries.get(i))
            .map(|(_, v)| v)
    }

    /// Entry `i`: its name and value.
    pub fn at(&self, i: usize) -> Option<(&str, &T)> {
        self.entries
            .get(i)
            .map(|(span, v)| (Self::text(self.names.get(*span)), v))
    }

    /// Entry `i`'s value, mutably.
    pub fn at_mut(&mut self, i: usize) -> Option<&mut T> {
        self.entries.get_mut(i).map(|(_, v)| v)
    }

    /// Inserts `name` with `value`, or, if `name` is present, calls
    /// `merge(existing, value)` to combine them. Returns the entry index.
    pub fn upsert(
        &mut self,
        name: &str,
        value: T,
        merge: impl FnOnce(&mut T, T),
    ) -> Result<usize, TableFull> {
        self.upsert_bytes(name.as_bytes(), value, merge)
    }

    /// [`SymbolTable::upsert`] for a name the caller has checked to be
    /// UTF-8 (the kernel's symbol reader checks ASCII while scanning for the
    /// NUL, which is cheaper than `str::from_utf8`). The name is copied.
    pub fn upsert_bytes(
        &mut self,
        name: &[u8],
        value: T,
        merge: impl FnOnce(&mut T, T),
    ) -> Result<usize, TableFull> {
        let hash = self.hasher.hash_one(name);
        if let Some(i) = self.find(hash, name) {
            if let Some((_, existing)) = self.entries.get_mut(i as usize) {
                merge(existing, value);
            }
            return Ok(i as usize);
        }
        let start = u32::try_from(self.names.owned.len()).map_err(|_| TableFull)?;
        let len = u32::try_from(name.len())
            .ok()
            .filter(|l| l & BORROWED == 0)
            .ok_or(TableFull)?;
        start.checked_add(len).ok_or(TableFull)?;
        self.names.owned.extend_from_slice(name);
        self.push(hash, Span { start, len }, value)
    }

    /// [`SymbolTable::upsert_bytes`] for the name at `start..start + len`
    /// of the backing buffer given to [`SymbolTable::borrowing`], which is
    /// referenced, not copied. The caller has checked it is UTF-8.
    pub fn upsert_borrowed(
        &mut self,
        start: usize,
        len: usize,
        value: T,
        merge: impl FnOnce(&mut T, T),
    ) -> Result<usize, TableFull> {
        let backing = self.names.backing;
        let name = start
            .checked_add(len)
            .and_then(|end| backing.get(start..end))
            .ok_or(TableFull)?;
        let hash = self.hasher.hash_one(name);
        if let Some(i) = self.find(hash, name) {
            if let Some((_, existing)) = self.entries.get_mut(i as usize) {
                merge(existing, value);
            }
            return Ok(i as usize);
        }
        let start = u32::try_from(start).map_err(|_| TableFull)?;
        let len = u32::try_from(len)
            .ok()
            .filter(|l| l & BORROWED == 0)
            .ok_or(TableFull)?;
        self.push(
            hash,
            Span {
                start,
                len: len | BORROWED,
            },
            value,
        )
    }

    fn push(&mut self, hash: u64, span: Span, value: T) -> Result<usize, TableFull> {
        let idx = u32::try_from(self.entries.len()).map_err(|_| TableFull)?;
        self.entries.push((span, value));
        let names = &self.names;
        let entries = &self.entries;
        let hasher = &self.hasher;
        self.index.insert_unique(hash, idx, |&i| {
            let n = entries
                .get(i as usize)
                .map_or(&[][..], |(s, _)| names.get(*s));
            hasher.hash_one(n)
        });
        Ok(idx as usize)
    }

    /// All entries in insertion order.
    pub fn iter(&self) -> impl ExactSizeIterator<Item = (&str, &T)> + '_ {
        self.entries
            .iter()
            .map(|(span, v)| (Self::text(self.names.get(*span)), v))
    }

    /// All values in insertion order, mutably.
    pub fn values_mut(&mut self) -> impl Iterator<Item = &mut T> + '_ {
        self.entries.iter_mut().map(|(_, v)| v)
    }

    /// Releases spare capacity (after a filtered build that reserved for
    /// the whole input).
    pub fn shrink(&mut self) {
        self.names.owned.shrink_to_fit();
        self.entries.shrink_to_fit();
        let names = &self.names;
        let entries = &self.entries;
        let hasher = &self.hasher;
        self.index.shrink_to_fit(|&i| {
            let n = entries
                .get(i as usize)
                .map_or(&[][..], |(s, _)| names.get(*s));
            hasher.hash_one(n)
        });
    }

    /// Heap bytes used by copied names, entries and the index (an estimate
    /// for reports; borrowed names are not counted).
    pub fn memory(&self) -> usize {
        self.names.owned.capacity()
            + self.entries.capacity() * core::mem::size_of::<(Span, T)>()
            + self.index.capacity() * (core::mem::size_of::<u32>() + 1)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn upsert_interns_and_merges() {
        let mut t: SymbolTable<u64> = SymbolTable::with_capacity(2, 8);
        assert_eq!(t.upsert("memcpy", 1, |_, _| unreachable!()), Ok(0));
        assert_eq!(t.upsert("memset", 2, |_, _| unreachable!()), Ok(1));
        assert_eq!(t.upsert("memcpy", 5, |old, new| *old += new), Ok(0));
        assert_eq!(t.get("memcpy"), Some(&6));
        assert_eq!(t.get("memset"), Some(&2));
        assert_eq!(t.get("memmove"), None);
        assert_eq!(t.len(), 2);
        let all: Vec<_> = t.iter().map(|(n, v)| (n.to_string(), *v)).collect();
        assert_eq!(all, [("memcpy".to_string(), 6), ("memset".to_string(), 2)]);
    }

    #[test]
    fn borrowed_names_are_not_copied() {
        static BACKING: &[u8] = b"\0memcpy\0memset\0";
        let mut t: SymbolTable<u64> = SymbolTable::borrowing(2, BACKING);
        assert_eq!(t.upsert_borrowed(1, 6, 1, |_, _| unreachable!()), Ok(0));
        assert_eq!(t.upsert_borrowed(8, 6, 2, |_, _| unreachable!()), Ok(1));
        // A copied name and a borrowed one share the index.
        assert_eq!(t.upsert("memmove", 3, |_, _| unreachable!()), Ok(2));
        assert_eq!(t.upsert("memcpy", 10, |old, new| *old += new), Ok(0));
        assert_eq!(t.get("memcpy"), Some(&11));
        assert_eq!(t.get("memset"), Some(&2));
        assert_eq!(t.at(2), Some(("memmove", &3)));
        assert_eq!(t.upsert_borrowed(12, 100, 0, |_, _| {}), Err(TableFull));
        assert!(t.memory() < 200, "borrowed names are not counted");
    }

    #[test]
    fn survives_growth_past_initial_capacity() {
        let mut t: SymbolTable<usize> = SymbolTable::default();
        for i in 0..5000 {
            t.upsert(&alloc::format!("sym{i}"), i, |_, _| unreachable!())
                .unwrap();
        }
        for i in (0..5000).step_by(7) {
            assert_eq!(t.get(&alloc::format!("sym{i}")), Some(&i));
        }
        assert_eq!(t.get("sym5000"), None);
    }
}
