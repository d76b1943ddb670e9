//! An interned, hash-indexed symbol table.
//!
//! All names live in one byte buffer (checked to be UTF-8 on the way in); entries refer to them by offset
//! and length; a `hashbrown::HashTable` of entry indices gives O(1)
//! lookups. Building a table of `n` names with [`SymbolTable::with_capacity`]
//! costs three allocations, not `n`: the kernel builds one for its whole
//! `.symtab` at boot.

use alloc::vec::Vec;
use core::hash::BuildHasher;

use hashbrown::{DefaultHashBuilder, HashTable};

/// Where a name lives in the buffer.
#[derive(Clone, Copy, Debug)]
struct Span {
    start: u32,
    len: u32,
}

/// A name -> `T` map with interned names.
///
/// Invariants: every entry's span lies inside `names` and holds valid
/// UTF-8 (inserted from a `&str`, or through [`SymbolTable::upsert_bytes`]
/// by a caller that checked it); `index` holds each entry index exactly
/// once, hashed by the entry's name bytes; names are unique.
#[derive(Clone, Debug)]
pub(crate) struct SymbolTable<T> {
    names: Vec<u8>,
    entries: Vec<(Span, T)>,
    index: HashTable<u32>,
    hasher: DefaultHashBuilder,
}

/// The table is full: names or entries exceed `u32` offsets.
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
            names: Vec::with_capacity(name_bytes),
            entries: Vec::with_capacity(entries),
            index: HashTable::with_capacity(entries),
            hasher: DefaultHashBuilder::default(),
        }
    }

    fn name_of(names: &[u8], span: Span) -> &[u8] {
        let start = span.start as usize;
        let end = start + span.len as usize;
        names.get(start..end).unwrap_or(&[])
    }

    /// A stored name as text (always valid by the invariant; `""` if not).
    fn text(bytes: &[u8]) -> &str {
        core::str::from_utf8(bytes).unwrap_or("")
    }

    /// Number of names.
    pub fn len(&self) -> usize {
        self.entries.len()
    }

    /// Index of `name`, if present.
    pub fn position(&self, name: &str) -> Option<usize> {
        let name = name.as_bytes();
        let hash = self.hasher.hash_one(name);
        let names = &self.names;
        let entries = &self.entries;
        self.index
            .find(hash, |&i| {
                entries
                    .get(i as usize)
                    .is_some_and(|(span, _)| Self::name_of(names, *span) == name)
            })
            .map(|&i| i as usize)
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
            .map(|(span, v)| (Self::text(Self::name_of(&self.names, *span)), v))
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
    /// NUL, which is cheaper than `str::from_utf8`).
    pub fn upsert_bytes(
        &mut self,
        name: &[u8],
        value: T,
        merge: impl FnOnce(&mut T, T),
    ) -> Result<usize, TableFull> {
        let hash = self.hasher.hash_one(name);
        let names = &self.names;
        let entries = &self.entries;
        let found = self
            .index
            .find(hash, |&i| {
                entries
                    .get(i as usize)
                    .is_some_and(|(span, _)| Self::name_of(names, *span) == name)
            })
            .copied();
        if let Some(i) = found {
            if let Some((_, existing)) = self.entries.get_mut(i as usize) {
                merge(existing, value);
            }
            return Ok(i as usize);
        }
        let start = u32::try_from(self.names.len()).map_err(|_| TableFull)?;
        let len = u32::try_from(name.len()).map_err(|_| TableFull)?;
        start.checked_add(len).ok_or(TableFull)?;
        let idx = u32::try_from(self.entries.len()).map_err(|_| TableFull)?;
        self.names.extend_from_slice(name);
        self.entries.push((Span { start, len }, value));
        let names = &self.names;
        let entries = &self.entries;
        let hasher = &self.hasher;
        self.index.insert_unique(hash, idx, |&i| {
            let n = entries
                .get(i as usize)
                .map_or(&[][..], |(span, _)| Self::name_of(names, *span));
            hasher.hash_one(n)
        });
        Ok(idx as usize)
    }

    /// All entries in insertion order.
    pub fn iter(&self) -> impl ExactSizeIterator<Item = (&str, &T)> + '_ {
        self.entries
            .iter()
            .map(|(span, v)| (Self::text(Self::name_of(&self.names, *span)), v))
    }

    /// All values in insertion order, mutably.
    pub fn values_mut(&mut self) -> impl Iterator<Item = &mut T> + '_ {
        self.entries.iter_mut().map(|(_, v)| v)
    }

    /// Releases spare capacity (after a filtered build that reserved for
    /// the whole input).
    pub fn shrink(&mut self) {
        self.names.shrink_to_fit();
        self.entries.shrink_to_fit();
        let names = &self.names;
        let entries = &self.entries;
        let hasher = &self.hasher;
        self.index.shrink_to_fit(|&i| {
            let n = entries
                .get(i as usize)
                .map_or(&[][..], |(span, _)| Self::name_of(names, *span));
            hasher.hash_one(n)
        });
    }

    /// Bytes used by names, entries and the index (an estimate for reports).
    pub fn memory(&self) -> usize {
        self.names.capacity()
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
