//! What the loader needs from the kernel: memory for images, the call into
//! loaded code, a cycle counter, and a way to wait.
//!
//! The loader decides everything (which bytes, at which addresses, with
//! which permissions, in which order, and what to undo); the [`Platform`]
//! only carries it out. That keeps every `unsafe` operation of loading in
//! the kernel's implementation, behind contracts the loader guarantees:
//!
//! * [`Platform::reserve`] is asked for an image's address range, for the
//!   extension's principal, before the image is linked; the range is the
//!   platform's capability ([`Platform::Range`]) and goes back when dropped;
//! * [`Platform::map`] receives an image the linker produced for exactly
//!   that range, together with the range itself;
//! * [`Platform::call_init`] and [`Platform::call_exit`] receive
//!   [`EntryPoints`], which only this crate can construct, and only after
//!   checking that both addresses lie in the text segment of that image, read
//!   from the relocated descriptor of an object whose signature and
//!   interface fingerprints were checked; the loader calls them only while
//!   the image is mapped.
//!
//! In the kernel, the range is a VirtAddr range of the image zone and the
//! image's frames and mappings come from PhysAddr and Translation, all on
//! behalf of [`MapRequest::owner`]; `map` also registers the image's unwind
//! tables and `unmap` deregisters them; `call_init` / `call_exit` catch
//! panics.

use alloc::string::String;
use core::fmt;
use core::ops::Range;

use dispatcher::Principal;
use domains::LinkedImage;
use extension_heap::{Account, Released, SlotsFull};
use spindle_sdk::{ExtensionContext, ExtensionError};

use crate::heap::HeapEntries;

/// The kernel's side of loading. See the [module docs](self).
pub trait Platform {
    /// The pages of one mapped image, handed back to [`Platform::unmap`].
    type Mapping;

    /// The address range reserved for one image; dropping it gives the
    /// range back.
    type Range: ImageRange;

    /// Reserves at least `bytes` of page-aligned address space for an image
    /// owned by `owner`, which the loader then links the image for.
    /// [`MapError::AddressSpaceFull`] if no free range is large enough.
    fn reserve(&mut self, owner: &Principal, bytes: u64) -> Result<Self::Range, MapError>;

    /// Maps `request.image` into `range` (the range it was linked for,
    /// `request.range`), W^X: text read + execute, read-only data read,
    /// data read + write, nothing both writable and executable at any
    /// time. The mapping keeps the range. On failure everything taken,
    /// the range included, is given back.
    fn map(
        &mut self,
        request: &MapRequest<'_>,
        range: Self::Range,
    ) -> Result<Self::Mapping, MapError>;

    /// Unmaps an image and frees its memory. Called only when no code of the
    /// extension can run any more (its bindings are gone).
    fn unmap(&mut self, owner: &Principal, mapping: Self::Mapping);

    /// Calls the extension's `init` with `context`; a panic in it is
    /// caught and returned as [`InitFailure::Panic`].
    fn call_init(
        &mut self,
        entry: &EntryPoints,
        context: &ExtensionContext,
    ) -> Result<(), InitFailure>;

    /// Calls the extension's `exit` with `context`; a panic in it is caught
    /// and returned (the unload goes on).
    fn call_exit(&mut self, entry: &EntryPoints, context: &ExtensionContext) -> Result<(), Panic>;

    /// Waits (boundedly) until `principal` has no live binding objects
    /// (raises in progress drop theirs when they return); returns whether
    /// it got there.
    fn wait_for_release(&mut self, principal: &Principal) -> bool;

    /// A cycle counter for the per-stage timings (any monotonic unit).
    fn cycles(&self) -> u64;

    /// A heap of its own for the extension `name` about to be linked
    /// (see [`crate::heap`]); `Ok(None)` leaves its allocator imports bound
    /// to the kernel's allocator.
    fn take_heap(&mut self, name: &str) -> Result<Option<HeapEntries>, SlotsFull> {
        let _ = name;
        Ok(None)
    }

    /// Gives back the heap of `name`, whose code can no longer run (its
    /// bindings are gone): an empty heap is freed, one with live blocks is
    /// kept until they are freed.
    fn release_heap(&mut self, name: &str, slot: usize) -> Released {
        let _ = (name, slot);
        Released::Freed
    }

    /// The figures of heap `slot`.
    fn heap_usage(&self, slot: usize) -> Option<Account> {
        let _ = slot;
        None
    }
}

/// An image's reserved address range, as the loader sees it.
pub trait ImageRange {
    /// The addresses (page-aligned).
    fn addresses(&self) -> Range<u64>;
}

/// What [`Platform::map`] is asked to map.
#[derive(Clone)]
pub struct MapRequest<'a> {
    /// Who owns the image's memory: the extension's principal.
    pub owner: &'a Principal,
    /// The page-aligned virtual range the image was linked for.
    pub range: &'a Range<u64>,
    /// The linked image: three segments, each with its kind (permissions)
    /// and base inside `range`, and its unwind tables
    /// (`image.unwind_tables()`, each zero-terminated) to register with the
    /// unwinder once mapped and deregister before unmapping.
    pub image: &'a LinkedImage,
}

/// A panic caught where the kernel called into an extension, copied out of
/// the extension's memory.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Panic {
    /// The panic message.
    pub message: String,
    /// Source file of the panic ("" if unknown).
    pub file: String,
    /// Its line (0 if unknown).
    pub line: u32,
    /// Its column (0 if unknown).
    pub column: u32,
}

impl fmt::Display for Panic {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "panicked at {}:{}:{}: {}",
            self.file, self.line, self.column, self.message
        )
    }
}

/// Why `init` did not complete.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum InitFailure {
    /// It returned an error.
    Error(ExtensionError),
    /// It panicked.
    Panic(Panic),
}

/// Why [`Platform::map`] failed.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum MapError {
    /// No free range of the address space is large enough for the image.
    AddressSpaceFull {
        /// Bytes asked for.
        bytes: u64,
    },
    /// No free frames for the image.
    OutOfFrames {
        /// Pages the image needs.
        pages: u64,
    },
    /// A page of the range is already mapped.
    AlreadyMapped {
        /// Its address.
        address: u64,
    },
    /// Another reason, named by the platform.
    Refused(&'static str),
}

impl fmt::Display for MapError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::AddressSpaceFull { bytes } => {
                write!(f, "no free {bytes}-byte range for the extension image")
            }
            Self::OutOfFrames { pages } => {
                write!(f, "no free frames for the {pages}-page extension image")
            }
            Self::AlreadyMapped { address } => {
                write!(f, "extension page {address:#x} is already mapped")
            }
            Self::Refused(why) => f.write_str(why),
        }
    }
}

/// The checked addresses of an extension's `init` and `exit`.
///
/// Only this crate constructs it ([`crate::pipeline::entry_points`]), after
/// reading both from the relocated descriptor and checking that they lie
/// in the image's text segment, before anything is mapped. The kernel turns
/// them into function pointers (the one cast of loading).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct EntryPoints {
    init: u64,
    exit: u64,
    text: Range<u64>,
}

impl EntryPoints {
    pub(crate) fn new(init: u64, exit: u64, text: Range<u64>) -> Self {
        debug_assert!(text.contains(&init) && text.contains(&exit));
        Self { init, exit, text }
    }

    /// Address of `init` (an `spindle_sdk::InitFn`).
    pub fn init(&self) -> u64 {
        self.init
    }

    /// Address of `exit` (an `spindle_sdk::ExitFn`).
    pub fn exit(&self) -> u64 {
        self.exit
    }

    /// The text segment both lie in.
    pub fn text(&self) -> Range<u64> {
        self.text.clone()
    }
}
