//! What the loader needs from the kernel: memory for images, the call into
//! loaded code, a cycle counter, and a way to wait.
//!
//! The loader decides everything (which bytes, at which addresses, with
//! which permissions, in which order, and what to undo); the [`Platform`]
//! only carries it out. That keeps every `unsafe` operation of loading in
//! the kernel's implementation, behind contracts the loader guarantees:
//!
//! * [`Platform::map`] receives an image the linker produced for exactly
//!   the range given, a range no other image holds;
//! * [`Platform::call_init`] and [`Platform::call_exit`] receive
//!   [`EntryPoints`], which only this crate can construct, and only after
//!   checking that both addresses lie in the text segment of that image, read
//!   from the relocated descriptor of an object whose signature and
//!   interface fingerprints were checked; the loader calls them only while
//!   the image is mapped.
//!
//! Later additions have their place here: the memory services map images
//! through PhysAddr/VirtAddr/Translation on behalf of [`MapRequest::owner`];
//! unwinding registers [`MapRequest::eh_frame`] in `map` and deregisters it
//! in `unmap`, and catches panics in `call_init` / `call_exit`.

use core::fmt;
use core::ops::Range;

use dispatcher::Principal;
use domains::LinkedImage;
use spindle_sdk::{ExtensionContext, ExtensionError};

/// The kernel's side of loading. See the [module docs](self).
pub trait Platform {
    /// The pages of one mapped image, handed back to [`Platform::unmap`].
    type Mapping;

    /// Maps `request.image` at `request.range`, W^X: text read + execute,
    /// read-only data read, data read + write, nothing both writable and
    /// executable at any time. On failure everything taken is given back.
    fn map(&mut self, request: &MapRequest<'_>) -> Result<Self::Mapping, MapError>;

    /// Unmaps an image and frees its memory. Called only when no code of the
    /// extension can run any more (its bindings are gone).
    fn unmap(&mut self, owner: &Principal, mapping: Self::Mapping);

    /// Calls the extension's `init` with `context`.
    fn call_init(
        &mut self,
        entry: &EntryPoints,
        context: &ExtensionContext,
    ) -> Result<(), ExtensionError>;

    /// Calls the extension's `exit` with `context`.
    fn call_exit(&mut self, entry: &EntryPoints, context: &ExtensionContext);

    /// Waits (boundedly) until `principal` has no live binding objects
    /// (raises in progress drop theirs when they return); returns whether
    /// it got there.
    fn wait_for_release(&mut self, principal: &Principal) -> bool;

    /// A cycle counter for the per-stage timings (any monotonic unit).
    fn cycles(&self) -> u64;
}

/// What [`Platform::map`] is asked to map.
#[derive(Clone)]
pub struct MapRequest<'a> {
    /// Who owns the image's memory: the extension's principal.
    pub owner: &'a Principal,
    /// The page-aligned virtual range the image was linked for.
    pub range: &'a Range<u64>,
    /// The linked image: three segments, each with its kind (permissions)
    /// and base inside `range`.
    pub image: &'a LinkedImage,
    /// The linked `.eh_frame` section, if the object has one: to register
    /// with the unwinder once mapped (and deregister before unmapping).
    pub eh_frame: Option<Range<u64>>,
}

/// Why [`Platform::map`] failed.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum MapError {
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
