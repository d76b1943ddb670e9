//! The loaded extensions, as debugging sees them: each one's function index
//! and unwind tables (for backtraces), and a table in a documented, stable
//! place for debuggers.
//!
//! # The debugger's table
//!
//! `SPINDLE_DEBUG_EXTENSIONS` (an unmangled symbol of the kernel) is a
//! [`DebugTable`]: `#[repr(C)]`, little-endian, versioned. Each loaded
//! extension has an [`ExtensionRecord`] (a non-zero `load_id`, its name,
//! its image range) pointing at an array of [`SectionRecord`]s: every
//! section of its object that the loader placed, with the section's name
//! and run-time address: exactly what gdb's `add-symbol-file FILE -s
//! SECTION ADDRESS ...` needs. After every change (a load registers before
//! `init` runs, an unload unregisters before the image is unmapped) the
//! kernel calls `spindle_debug_extensions_changed(generation)`, an
//! unmangled function that does nothing: a debugger breaks on it to
//! refresh (`xtask/gdb/spindle.py` does). The table is written only under
//! the registry's lock, and read by a debugger only while the CPU is
//! stopped.
//!
//! # Locking
//!
//! One lock guards the registry and the table. Registration builds
//! everything (allocating) before taking it. Backtraces only ever
//! *try* it ([`try_snapshot`]): a panic that interrupts a registration
//! gets plain addresses for extension frames, never a deadlock.

use alloc::string::String;
use alloc::vec::Vec;
use core::cell::UnsafeCell;
use core::ops::Range;

use domains::LinkedImage;

use super::symbols::{FunctionIndex, Resolved};

/// `DebugTable::magic`: the bytes `SPNDLEXT`.
pub const TABLE_MAGIC: u64 = u64::from_le_bytes(*b"SPNDLEXT");
/// `DebugTable::version`: bumped when a layout below changes.
pub const TABLE_VERSION: u32 = 1;
/// Records in the table: the most extensions loaded at once.
pub const CAPACITY: usize = 32;
/// Bytes of an extension name in a record (the descriptor's limit).
pub const NAME_CAPACITY: usize = spindle_sdk::MAX_NAME;

/// The debugger's view of the loaded extensions (see the module docs).
#[repr(C)]
#[derive(Debug)]
pub struct DebugTable {
    /// [`TABLE_MAGIC`].
    pub magic: u64,
    /// [`TABLE_VERSION`].
    pub version: u32,
    /// Number of records ([`CAPACITY`]).
    pub capacity: u32,
    /// `size_of::<ExtensionRecord>()`.
    pub record_size: u32,
    /// `size_of::<SectionRecord>()`.
    pub section_record_size: u32,
    /// Incremented by every change.
    pub generation: u64,
    /// One per slot; a slot is free when its `load_id` is 0.
    pub records: [ExtensionRecord; CAPACITY],
}

/// A loaded extension in the [`DebugTable`].
#[repr(C)]
#[derive(Clone, Copy, Debug)]
pub struct ExtensionRecord {
    /// Unique per load (a reloaded extension gets a new one); 0: free slot.
    pub load_id: u64,
    /// First address of the extension's image.
    pub image_start: u64,
    /// End (exclusive) of the image.
    pub image_end: u64,
    /// Address of `section_count` [`SectionRecord`]s.
    pub sections: u64,
    /// Number of section records.
    pub section_count: u64,
    /// Bytes used in `name`.
    pub name_len: u64,
    /// The extension's name (UTF-8, zero-padded).
    pub name: [u8; NAME_CAPACITY],
}

impl ExtensionRecord {
    const EMPTY: Self = Self {
        load_id: 0,
        image_start: 0,
        image_end: 0,
        sections: 0,
        section_count: 0,
        name_len: 0,
        name: [0; NAME_CAPACITY],
    };
}

/// A placed section of an extension's object.
#[repr(C)]
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct SectionRecord {
    /// Run-time address.
    pub address: u64,
    /// Size in bytes.
    pub size: u64,
    /// Address of the section's name (UTF-8, not terminated).
    pub name: u64,
    /// Length of the name.
    pub name_len: u64,
}

/// The table's storage: written under [`REGISTRY`]'s lock only.
#[repr(transparent)]
pub struct TableCell(UnsafeCell<DebugTable>);

// SAFETY: the kernel writes the table only while holding REGISTRY's lock
// (see `Registry::table`) and reads it under the same lock; a debugger reads
// it while the CPU is stopped.
unsafe impl Sync for TableCell {}

/// The table debuggers read; see the module docs.
#[unsafe(no_mangle)]
pub static SPINDLE_DEBUG_EXTENSIONS: TableCell = TableCell(UnsafeCell::new(DebugTable {
    magic: TABLE_MAGIC,
    version: TABLE_VERSION,
    capacity: CAPACITY as u32,
    record_size: size_of::<ExtensionRecord>() as u32,
    section_record_size: size_of::<SectionRecord>() as u32,
    generation: 0,
    records: [ExtensionRecord::EMPTY; CAPACITY],
}));

/// Called after every change of [`SPINDLE_DEBUG_EXTENSIONS`], with the new
/// generation; does nothing. A debugger's breakpoint here refreshes its
/// symbols.
#[unsafe(no_mangle)]
#[inline(never)]
pub extern "C" fn spindle_debug_extensions_changed(generation: u64) {
    // SAFETY: an empty asm statement with the generation as input: it does
    // nothing, but the compiler must assume it has effects, so neither this
    // function nor its calls can be optimised away.
    unsafe { core::arch::asm!("/* {0} */", in(reg) generation, options(nostack, preserves_flags)) };
}

/// What the registry keeps per loaded extension.
struct Slot {
    load_id: u64,
    name: String,
    image: Range<u64>,
    functions: FunctionIndex,
    unwind_tables: Vec<Range<u64>>,
    /// Pointed to by the table record (never read here): must not move or
    /// change while published.
    _sections: Vec<SectionRecord>,
    /// The section names the records point into.
    _section_names: Vec<u8>,
}

/// The registry: one slot per table record.
pub struct Registry {
    slots: [Option<Slot>; CAPACITY],
    next_load_id: u64,
}

static REGISTRY: spin::Mutex<Registry> = spin::Mutex::new(Registry {
    slots: [const { None }; CAPACITY],
    next_load_id: 1,
});

impl Registry {
    /// The debugger's table. Taking `&mut self` proves the lock is held.
    fn table(&mut self) -> &mut DebugTable {
        // SAFETY: the table is only ever accessed through this method (and
        // by a debugger while the CPU is stopped); `&mut self` means the
        // REGISTRY lock is held, so this is the only reference.
        unsafe { &mut *SPINDLE_DEBUG_EXTENSIONS.0.get() }
    }

    /// The loaded extension whose image contains `address`.
    pub fn find(&self, address: u64) -> Option<ExtensionFrame<'_>> {
        let slot = self
            .slots
            .iter()
            .flatten()
            .find(|s| s.image.contains(&address))?;
        Some(ExtensionFrame {
            name: &slot.name,
            image_offset: address - slot.image.start,
            function: slot.functions.lookup(address),
            unwind_tables: &slot.unwind_tables,
        })
    }
}

/// An address inside a loaded extension.
#[derive(Clone, Copy, Debug)]
pub struct ExtensionFrame<'a> {
    /// The extension's name.
    pub name: &'a str,
    /// Bytes from the start of its image.
    pub image_offset: u64,
    /// The function, if the address is inside one.
    pub function: Option<Resolved<'a>>,
    /// The extension's unwind tables (each followed by a zero terminator).
    pub unwind_tables: &'a [Range<u64>],
}

/// The registry, locked, if nobody holds it; never waits.
pub fn try_snapshot() -> Option<spin::MutexGuard<'static, Registry>> {
    REGISTRY.try_lock()
}

/// A registered extension; dropping it unregisters (before the image is
/// unmapped).
#[must_use = "dropping the registration unregisters the extension at once"]
pub struct Registration {
    load_id: u64,
}

/// Registers a freshly mapped extension: its functions, unwind tables and
/// placed sections, from the `image` the linker produced, and the address
/// range of its mapping. Calls the debugger hook. If the table is full the
/// extension is left out (its frames print as plain addresses).
pub fn register(name: &str, image: &LinkedImage, range: Range<u64>) -> Registration {
    let functions =
        FunctionIndex::from_functions(image.functions().map(|f| (f.name, f.address, f.size)));
    let placed = image.sections();
    let unwind_tables = placed
        .iter()
        .filter(|s| s.unwind_table && s.size > 0)
        .map(|s| s.address..s.address + s.size)
        .collect();
    let mut section_names = Vec::with_capacity(placed.iter().map(|s| s.name.len()).sum());
    for section in placed {
        section_names.extend_from_slice(section.name.as_bytes());
    }
    let mut name_at = section_names.as_ptr() as u64;
    let sections: Vec<SectionRecord> = placed
        .iter()
        .map(|s| {
            let record = SectionRecord {
                address: s.address,
                size: s.size,
                name: name_at,
                name_len: s.name.len() as u64,
            };
            name_at += s.name.len() as u64;
            record
        })
        .collect();
    let mut record = ExtensionRecord {
        image_start: range.start,
        image_end: range.end,
        sections: sections.as_ptr() as u64,
        section_count: sections.len() as u64,
        ..ExtensionRecord::EMPTY
    };
    let shown = &name.as_bytes()[..name.len().min(NAME_CAPACITY)];
    record.name[..shown.len()].copy_from_slice(shown);
    record.name_len = shown.len() as u64;

    // With interrupts off: a panic contained in an interrupt handler needs
    // the registry (try-locked) to name the extension it happened in.
    let registered = x86_64::instructions::interrupts::without_interrupts(|| {
        let mut registry = REGISTRY.lock();
        let index = registry.slots.iter().position(Option::is_none)?;
        let load_id = registry.next_load_id;
        registry.next_load_id += 1;
        record.load_id = load_id;
        registry.slots[index] = Some(Slot {
            load_id,
            name: String::from(name),
            image: range,
            functions,
            unwind_tables,
            _sections: sections,
            _section_names: section_names,
        });
        let table = registry.table();
        table.records[index] = record;
        table.generation += 1;
        Some((load_id, table.generation))
    });
    let Some((load_id, generation)) = registered else {
        log::warn!("debug: more than {CAPACITY} extensions loaded; {name} is left out");
        return Registration { load_id: 0 };
    };
    spindle_debug_extensions_changed(generation);
    Registration { load_id }
}

impl Drop for Registration {
    fn drop(&mut self) {
        if self.load_id == 0 {
            return;
        }
        let removed = x86_64::instructions::interrupts::without_interrupts(|| {
            let mut registry = REGISTRY.lock();
            let index = registry
                .slots
                .iter()
                .position(|s| s.as_ref().is_some_and(|s| s.load_id == self.load_id))?;
            let table = registry.table();
            table.records[index] = ExtensionRecord::EMPTY;
            table.generation += 1;
            let generation = table.generation;
            Some((registry.slots[index].take(), generation))
        });
        let Some((slot, generation)) = removed else {
            return;
        };
        drop(slot);
        spindle_debug_extensions_changed(generation);
    }
}

/// A copy of the debugger's table (under the lock), for tests.
pub fn table_copy() -> (u64, [ExtensionRecord; CAPACITY]) {
    let mut registry = REGISTRY.lock();
    let table = registry.table();
    (table.generation, table.records)
}
