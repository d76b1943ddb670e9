//! The running service: the ledger behind a lock, the [`Frames`]
//! capability, allocation, deallocation, and the reclaim round.
//!
//! The kernel supplies the machine through [`Platform`] (the frame bitmap,
//! zeroing through the physical-memory mapping, unmapping through the
//! Translation service, the clock) and installs it at boot
//! ([`set_platform`], kernel only). Everything else is here, in safe code.
//!
//! The ledger's lock is taken with interrupts disabled (a page-fault
//! handler may allocate), and never across a call out: frames are unmapped
//! and events raised with no lock held.

use alloc::vec::Vec;
use core::sync::atomic::{AtomicBool, AtomicU64, Ordering};

use dispatcher::{KernelCapability, Principal, PrincipalId};

use crate::bitmap::{FRAME_SIZE, FrameNumber, FrameStats};
use crate::error::PhysError;
use crate::events::{FramesSignal, ReclaimReply, ReclaimRequest, RepossessedNotice, kernel_events};
use crate::ledger::{AllocationId, Ledger, OwnerUsage, Repossession};
use crate::reclaim::{Demand, Phase, Reclaim};

/// Unpinned frames per owner that are never repossessed.
pub const GUARANTEED_FRAMES: u64 = 8;
/// Most frames in one allocation.
pub const MAX_FRAMES_PER_ALLOCATION: u64 = 4096;
/// How long an owner has to answer `PhysAddr.Reclaim`.
pub const RECLAIM_DEADLINE_NS: u64 = 30_000_000;
/// The watermark before the kernel sets one: free frames below it start a
/// reclaim round.
pub const DEFAULT_WATERMARK: u64 = 256;

/// What the kernel provides.
pub trait Platform: Sync {
    /// One free frame from the bitmap.
    fn allocate_frame(&self) -> Option<FrameNumber>;
    /// `count` contiguous free frames.
    fn allocate_contiguous(&self, count: u64) -> Option<FrameNumber>;
    /// Gives a frame back to the bitmap.
    fn free_frame(&self, frame: FrameNumber);
    /// Fills a frame with zeros (no owner ever sees another's data).
    fn zero_frame(&self, frame: FrameNumber);
    /// The bitmap's counters.
    fn stats(&self) -> FrameStats;
    /// Removes every mapping of these frames (the Translation service);
    /// called before frames leave their holder, whatever the reason.
    fn unmap_frames(&self, frames: &[FrameNumber]);
    /// Nanoseconds since boot.
    fn now_ns(&self) -> u64;
    /// Whether the caller may wait for owners (a strand with interrupts
    /// enabled), rather than a fault or interrupt handler.
    fn can_wait(&self) -> bool;
    /// Lets other strands run for a moment.
    fn pause(&self);
    /// Disables interrupts; returns whether they were enabled.
    fn interrupts_disable(&self) -> bool;
    /// Re-enables interrupts if `were_enabled`.
    fn interrupts_restore(&self, were_enabled: bool);
}

static PLATFORM: spin::Once<&'static dyn Platform> = spin::Once::new();
static LEDGER: spin::Mutex<Ledger<PrincipalId>> = spin::Mutex::new(Ledger::new(GUARANTEED_FRAMES));
static WATERMARK: AtomicU64 = AtomicU64::new(DEFAULT_WATERMARK);
static RECLAIMING: AtomicBool = AtomicBool::new(false);

/// Installs the kernel's platform (once; false if already done).
pub fn set_platform(_kernel: KernelCapability, platform: &'static dyn Platform) -> bool {
    let mut installed = false;
    PLATFORM.call_once(|| {
        installed = true;
        platform
    });
    installed
}

fn platform() -> Result<&'static dyn Platform, PhysError> {
    PLATFORM.get().copied().ok_or(PhysError::NoService)
}

fn locked<R>(f: impl FnOnce(&mut Ledger<PrincipalId>) -> R) -> R {
    match PLATFORM.get() {
        Some(p) => {
            let were = p.interrupts_disable();
            let result = f(&mut LEDGER.lock());
            p.interrupts_restore(were);
            result
        }
        None => f(&mut LEDGER.lock()),
    }
}

/// How an allocation is made.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Attributes {
    contiguous: bool,
    pinned: bool,
}

impl Attributes {
    /// Any frames, not necessarily contiguous.
    pub const fn new() -> Self {
        Self {
            contiguous: false,
            pinned: false,
        }
    }

    /// Physically contiguous frames.
    pub const fn contiguous(self) -> Self {
        Self {
            contiguous: true,
            ..self
        }
    }

    /// Frames mapped for the kernel's own use (an extension's image): never
    /// repossessed. Kernel only, or every owner would pin everything.
    pub const fn pinned(self, _kernel: KernelCapability) -> Self {
        Self {
            pinned: true,
            ..self
        }
    }

    /// Whether contiguous.
    pub const fn is_contiguous(&self) -> bool {
        self.contiguous
    }

    /// Whether pinned.
    pub const fn is_pinned(&self) -> bool {
        self.pinned
    }
}

/// Frames held: the capability `PhysAddr.Allocate` returns.
///
/// Only this service makes one (its fields are private, and it is neither
/// `Clone` nor `Copy`). Dropping it, or [`Frames::deallocate`], returns the
/// frames, after the Translation service has removed every mapping of
/// them. The frames it names can shrink: the abort protocol may repossess
/// some (see [`Frames::frame`]), and unloading the owner takes all of them
/// back, whoever holds the capability then.
pub struct Frames {
    id: AllocationId,
    owner: PrincipalId,
    len: usize,
    done: bool,
}

impl Frames {
    /// The allocation.
    pub fn id(&self) -> AllocationId {
        self.id
    }

    /// Its owner.
    pub fn owner(&self) -> PrincipalId {
        self.owner
    }

    /// Frames allocated (repossessed ones included).
    pub fn len(&self) -> usize {
        self.len
    }

    /// Whether the allocation is empty (it never is: zero-size allocations
    /// are refused).
    pub fn is_empty(&self) -> bool {
        self.len == 0
    }

    /// Frame `index`, unless it was repossessed or the allocation released.
    pub fn frame(&self, index: usize) -> Result<FrameNumber, PhysError> {
        locked(|l| l.frame(self.id, index))
    }

    /// Frames still present.
    pub fn present(&self) -> usize {
        locked(|l| l.frames_of(self.id).map_or(0, |f| f.len()))
    }

    /// Returns the frames; how many were freed.
    pub fn deallocate(mut self) -> Result<u64, PhysError> {
        self.done = true;
        release(self.id)
    }
}

impl core::fmt::Debug for Frames {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.debug_struct("Frames")
            .field("allocation", &self.id.as_u64())
            .field("owner", &self.owner)
            .field("len", &self.len)
            .finish()
    }
}

impl Drop for Frames {
    fn drop(&mut self) {
        if !self.done {
            // Already taken back at unload is fine.
            let _ = release(self.id);
        }
    }
}

/// `PhysAddr.Allocate`: `size` bytes (rounded up to frames), zeroed, owned
/// by `owner`. If free frames then fall below the watermark and the caller
/// can wait, a reclaim round runs before this returns.
pub fn allocate(owner: &Principal, size: u64, attributes: Attributes) -> Result<Frames, PhysError> {
    if owner.is_revoked() {
        return Err(PhysError::Revoked);
    }
    let count = size.div_ceil(FRAME_SIZE);
    if count == 0 {
        return Err(PhysError::ZeroSize);
    }
    if count > MAX_FRAMES_PER_ALLOCATION {
        return Err(PhysError::TooLarge {
            frames: count,
            limit: MAX_FRAMES_PER_ALLOCATION,
        });
    }
    let p = platform()?;
    let frames = take_frames(p, count, attributes.contiguous).ok_or(PhysError::OutOfFrames {
        wanted: count,
        free: p.stats().free,
    })?;
    for &frame in &frames {
        p.zero_frame(frame);
    }
    let id = locked(|l| l.record(owner.id(), owner.name(), frames, attributes.pinned));
    if let Some(events) = kernel_events() {
        let _ = events.allocate.raise(&FramesSignal {
            owner: owner.id(),
            allocation: id,
            frames: count,
            pinned: attributes.pinned,
        });
    }
    let capability = Frames {
        id,
        owner: owner.id(),
        len: count as usize,
        done: false,
    };
    let free = p.stats().free;
    let watermark = WATERMARK.load(Ordering::Relaxed);
    if free < watermark && p.can_wait() && !RECLAIMING.load(Ordering::Relaxed) {
        let _ = run_reclaim(p, watermark - free);
    }
    Ok(capability)
}

fn take_frames(p: &dyn Platform, count: u64, contiguous: bool) -> Option<Vec<FrameNumber>> {
    if contiguous {
        let first = p.allocate_contiguous(count)?;
        return Some((first.0..first.0 + count).map(FrameNumber).collect());
    }
    let mut frames = Vec::with_capacity(count as usize);
    for _ in 0..count {
        match p.allocate_frame() {
            Some(frame) => frames.push(frame),
            None => {
                for frame in frames {
                    p.free_frame(frame);
                }
                return None;
            }
        }
    }
    Some(frames)
}

/// `PhysAddr.Deallocate` of allocation `id`: unmaps, frees, signals.
fn release(id: AllocationId) -> Result<u64, PhysError> {
    let p = platform()?;
    let present = locked(|l| l.frames_of(id))?;
    p.unmap_frames(&present);
    let (owner, frames) = locked(|l| {
        let owner = l.owner_of(id);
        l.remove(id).map(|frames| (owner, frames))
    })?;
    for &frame in &frames {
        p.free_frame(frame);
    }
    if let (Some(events), Some(owner)) = (kernel_events(), owner) {
        let _ = events.deallocate.raise(&FramesSignal {
            owner,
            allocation: id,
            frames: frames.len() as u64,
            pinned: false,
        });
    }
    Ok(frames.len() as u64)
}

/// What a reclaim round did, for the shell.
#[derive(Clone, Debug)]
pub struct ReclaimReport {
    /// Frames wanted.
    pub wanted: u64,
    /// Each owner asked, what it gave back and what was taken.
    pub demands: Vec<Demand<PrincipalId>>,
    /// Each owner's answer, in the order of `demands`.
    pub replies: Vec<ReclaimReply>,
    /// How the round ended.
    pub phase: Phase,
    /// How long the owners had.
    pub deadline_ns: u64,
}

/// Runs one reclaim round for `wanted` frames now (the shell's `phys
/// squeeze`; the watermark runs the same round). Kernel only.
pub fn reclaim(_kernel: KernelCapability, wanted: u64) -> Result<ReclaimReport, PhysError> {
    run_reclaim(platform()?, wanted)
}

fn run_reclaim(p: &dyn Platform, wanted: u64) -> Result<ReclaimReport, PhysError> {
    if RECLAIMING.swap(true, Ordering::Acquire) {
        return Err(PhysError::ReclaimInProgress);
    }
    let deadline_ns = p.now_ns() + RECLAIM_DEADLINE_NS;
    let mut round = locked(|l| Reclaim::plan(l, wanted, deadline_ns));
    let mut replies = Vec::with_capacity(round.demands().len());
    for demand in round.demands() {
        let request = ReclaimRequest {
            owner: demand.owner,
            frames: demand.asked,
            deadline_ns,
        };
        let reply = kernel_events()
            .map(|e| e.reclaim.raise(&request).unwrap_or(ReclaimReply::Refused))
            .unwrap_or(ReclaimReply::Refused);
        replies.push(reply);
    }
    // Wait for the deadline, or until everyone has given back its share.
    loop {
        if locked(|l| round.observe(l)) {
            break;
        }
        let now = p.now_ns();
        if round.expired(now) || !p.can_wait() {
            break;
        }
        p.pause();
    }
    // The abort protocol for whoever is still short.
    let now = p.now_ns().max(deadline_ns);
    let taken = locked(|l| round.abort(l, now));
    for t in &taken {
        p.unmap_frames(&t.frames);
        for &frame in &t.frames {
            p.free_frame(frame);
        }
        let vector_len = locked(|l| l.vector(t.owner).len());
        if let Some(events) = kernel_events() {
            let _ = events.repossessed.raise(&RepossessedNotice {
                owner: t.owner,
                frames: t.frames.len() as u64,
                vector_len,
            });
        }
    }
    RECLAIMING.store(false, Ordering::Release);
    Ok(ReclaimReport {
        wanted,
        demands: round.demands().to_vec(),
        replies,
        phase: round.phase(),
        deadline_ns: RECLAIM_DEADLINE_NS,
    })
}

/// Takes back everything `owner` holds (its extension is unloaded), whoever
/// holds the capabilities; forgets its repossession vector. Kernel only.
/// Returns the frames freed.
pub fn release_owner(_kernel: KernelCapability, owner: PrincipalId) -> u64 {
    let Ok(p) = platform() else { return 0 };
    let frames = locked(|l| l.release_owner(owner));
    p.unmap_frames(&frames);
    for &frame in &frames {
        p.free_frame(frame);
    }
    frames.len() as u64
}

/// Every owner's holdings.
pub fn owners() -> Vec<OwnerUsage<PrincipalId>> {
    locked(|l| l.owners())
}

/// Frames `owner` holds through this service.
pub fn held_by(owner: PrincipalId) -> u64 {
    locked(|l| {
        l.owners()
            .iter()
            .find(|u| u.owner == owner)
            .map_or(0, |u| u.frames)
    })
}

/// The caller's own repossession vector, oldest first.
pub fn repossession_vector(owner: &Principal) -> Vec<Repossession> {
    locked(|l| l.vector(owner.id()))
}

/// Anyone's repossession vector (for the shell). Kernel only.
pub fn repossession_vector_of(_kernel: KernelCapability, owner: PrincipalId) -> Vec<Repossession> {
    locked(|l| l.vector(owner))
}

/// Free frames below which a reclaim round runs.
pub fn watermark() -> u64 {
    WATERMARK.load(Ordering::Relaxed)
}

/// Sets the watermark. Kernel only.
pub fn set_watermark(_kernel: KernelCapability, frames: u64) {
    WATERMARK.store(frames, Ordering::Relaxed);
}

/// The bitmap's counters (free frames, usable frames).
pub fn stats() -> Result<FrameStats, PhysError> {
    Ok(platform()?.stats())
}
