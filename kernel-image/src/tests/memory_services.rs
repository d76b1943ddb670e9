//! The memory services on the real machine: demand-zero faults resolved
//! and resumed, protection faults, guards imposed per range, repossession
//! recorded (and unmapped), pinned frames kept, page tables freed.

use alloc::sync::Arc;
use core::sync::atomic::{AtomicU64, Ordering};

use dispatcher::{InstallError, Principal};
use ktest_macros::ktest;
use phys_addr::{Attributes, Frames, PhysError};
use translation::{Fault, FaultReply, Protection};
use virt_addr::{Access, AccessError, VirtRange};

use crate::ktest::KtestResult;
use crate::memory::frames;
use crate::{ensure, ensure_eq};

fn principal(name: &str) -> Principal {
    crate::events::authority().issuer.issue(name)
}

fn revoke(principal: &Principal) {
    crate::events::authority().issuer.revoke(principal);
    crate::memory::services::release_owner(principal.id());
}

/// A demand-zero handler for `range`: maps a fresh frame at the faulting
/// page, keeping the frames in `held`.
fn demand_zero(
    owner: &Principal,
    range: Arc<VirtRange>,
    held: Arc<spin::Mutex<alloc::vec::Vec<Frames>>>,
    seen: Arc<AtomicU64>,
) -> dispatcher::Binding<Fault, FaultReply> {
    let events = translation::events::events().expect("published at boot");
    let me = owner.clone();
    events
        .page_not_present
        .binding(move |fault| {
            seen.fetch_add(1, Ordering::Relaxed);
            let Ok(frames) = phys_addr::allocate(&me, 4096, Attributes::new()) else {
                return FaultReply::NotResolved;
            };
            if translation::add_mapping(
                &range,
                fault.page_index(),
                &frames,
                0,
                Protection::READ_WRITE,
            )
            .is_err()
            {
                return FaultReply::NotResolved;
            }
            held.lock().push(frames);
            FaultReply::Resolved
        })
        .install(owner)
        .expect("an owner may handle faults in its ranges")
}

#[ktest]
fn demand_zero_faults_are_resolved_and_the_access_resumes_then_everything_goes_back() -> KtestResult
{
    let free_before = frames::stats().free;
    let owner = principal("ktest-pager");
    let range = Arc::new(virt_addr::allocate(&owner, 8).expect("a range"));
    let held = Arc::new(spin::Mutex::new(alloc::vec::Vec::new()));
    let seen = Arc::new(AtomicU64::new(0));
    let binding = demand_zero(&owner, range.clone(), held.clone(), seen.clone());
    for page in 0..8u64 {
        // A fresh page reads as zero, then holds what was written.
        ensure_eq!(range.read_u64(page * 4096 + 16), Ok(0));
        range
            .write_u64(page * 4096, 0xabc0 + page)
            .expect("resolved");
    }
    // one fault per page
    ensure_eq!(seen.load(Ordering::Relaxed), 8);
    for page in 0..8u64 {
        ensure_eq!(range.read_u64(page * 4096), Ok(0xabc0 + page));
    }
    // no fault once mapped
    ensure_eq!(seen.load(Ordering::Relaxed), 8);
    ensure_eq!(held.lock().len(), 8);
    let mapping = translation::examine_mapping(&range, 3).expect("page 3 exists");
    ensure!(mapping.is_some_and(|m| m.protection == Protection::READ_WRITE));
    ensure_eq!(phys_addr::held_by(owner.id()), 8);
    binding.uninstall().expect("installed");
    drop(range);
    held.lock().clear();
    revoke(&owner);
    // Frames, and the page tables the mappings needed, are all back.
    ensure_eq!(frames::stats().free, free_before);
    Ok(())
}

#[ktest]
fn an_unresolved_fault_fails_the_access_and_does_not_loop() -> KtestResult {
    let owner = principal("ktest-nobody");
    let range = virt_addr::allocate(&owner, 2).expect("a range");
    let counts = translation::fault_counts();
    // No handler: the default answer is NotResolved, the access fails once.
    let err = range.write_u64(8, 1);
    ensure_eq!(
        err,
        Err(AccessError::Fault(virt_addr::AccessFault {
            address: range.base() + 8,
            access: Access::Write
        }))
    );
    let after = translation::fault_counts();
    ensure_eq!(after.not_present, counts.not_present + 1);
    ensure_eq!(after.unresolved, counts.unresolved + 1);
    // A handler that lies ("resolved" without mapping) is not believed.
    let events = translation::events::events().expect("published");
    let liar = events
        .page_not_present
        .binding(|_| FaultReply::Resolved)
        .install(&owner)
        .expect("installed");
    ensure!(matches!(range.read_u64(0), Err(AccessError::Fault(_))));
    liar.uninstall().expect("installed");
    // Past the end is refused before any access.
    ensure!(matches!(
        range.read_u64(2 * 4096),
        Err(AccessError::Bounds(_))
    ));
    // The guard page after the range is nobody's: BadAddress, which
    // extensions may not handle.
    ensure_eq!(
        crate::memory::access::read_u64(range.end()).map_err(|f| f.address),
        Err(range.end())
    );
    let denied = events
        .bad_address
        .binding(|_| FaultReply::Resolved)
        .install(&owner);
    ensure!(matches!(denied, Err(InstallError::Denied { .. })));
    drop(range);
    revoke(&owner);
    Ok(())
}

#[ktest]
fn protection_faults_reach_the_owner_who_may_unprotect() -> KtestResult {
    let owner = principal("ktest-prot");
    let range = Arc::new(virt_addr::allocate(&owner, 1).expect("a range"));
    let frames = phys_addr::allocate(&owner, 4096, Attributes::new()).expect("a frame");
    translation::add_mapping(&range, 0, &frames, 0, Protection::READ).expect("mapped");
    // reading a read-only page
    ensure_eq!(range.read_u64(0), Ok(0));
    // Without a handler the write fails as a protection fault.
    let before = translation::fault_counts().protection;
    ensure!(
        matches!(range.write_u64(0, 7), Err(AccessError::Fault(f)) if f.access == Access::Write)
    );
    ensure_eq!(translation::fault_counts().protection, before + 1);
    // With one that unprotects, it succeeds (Appel & Li's trap).
    let events = translation::events::events().expect("published");
    let target = range.clone();
    let trap = events
        .protection_fault
        .binding(move |fault| {
            match translation::protect(&target, fault.page_index(), Protection::READ_WRITE) {
                Ok(()) => FaultReply::Resolved,
                Err(_) => FaultReply::NotResolved,
            }
        })
        .install(&owner)
        .expect("installed");
    range.write_u64(0, 7).expect("unprotected by the handler");
    ensure_eq!(range.read_u64(0), Ok(7));
    trap.uninstall().expect("installed");
    // The frame is mapped once only, and mappings need held frames.
    ensure!(matches!(
        translation::add_mapping(&range, 0, &frames, 0, Protection::READ),
        Err(translation::TranslationError::AlreadyMapped { .. })
    ));
    drop(frames);
    // deallocating unmapped it
    ensure_eq!(translation::examine_mapping(&range, 0), Ok(None));
    drop(range);
    revoke(&owner);
    Ok(())
}

#[ktest]
fn faults_are_delivered_only_to_the_owner_of_the_range() -> KtestResult {
    let a = principal("ktest-a");
    let b = principal("ktest-b");
    let range_a = Arc::new(virt_addr::allocate(&a, 2).expect("a range"));
    let range_b = Arc::new(virt_addr::allocate(&b, 2).expect("a range"));
    let (held_a, held_b) = (Arc::default(), Arc::default());
    let (seen_a, seen_b) = (Arc::new(AtomicU64::new(0)), Arc::new(AtomicU64::new(0)));
    let binding_a = demand_zero(&a, range_a.clone(), held_a, seen_a.clone());
    let binding_b = demand_zero(&b, range_b.clone(), held_b, seen_b.clone());
    range_a.write_u64(0, 1).expect("a resolves its own");
    range_a.write_u64(4096, 1).expect("a resolves its own");
    ensure_eq!(
        (
            seen_a.load(Ordering::Relaxed),
            seen_b.load(Ordering::Relaxed)
        ),
        (2, 0)
    );
    range_b.write_u64(0, 1).expect("b resolves its own");
    ensure_eq!(
        (
            seen_a.load(Ordering::Relaxed),
            seen_b.load(Ordering::Relaxed)
        ),
        (2, 1)
    );
    // b cannot map its frames into a's range: it does not hold the range,
    // and holding a's range would be the only way to name it.
    binding_a.uninstall().expect("installed");
    binding_b.uninstall().expect("installed");
    drop((range_a, range_b));
    revoke(&a);
    revoke(&b);
    Ok(())
}

#[ktest]
fn repossession_is_recorded_unmaps_and_spares_guaranteed_and_pinned_frames() -> KtestResult {
    let free_before = frames::stats().free;
    let owner = principal("ktest-hog");
    let kernel = crate::events::capability();
    let frames = phys_addr::allocate(&owner, 40 * 4096, Attributes::new()).expect("frames");
    let pinned =
        phys_addr::allocate(&owner, 4 * 4096, Attributes::new().pinned(kernel)).expect("frames");
    let range = virt_addr::allocate(&owner, 40).expect("a range");
    for i in 0..40 {
        translation::add_mapping(&range, i as u64, &frames, i, Protection::READ_WRITE)
            .expect("mapped");
    }
    // No Reclaim handler: the default answer refuses, the abort protocol
    // takes everything beyond the guarantee.
    let report = phys_addr::reclaim(kernel, 10_000).expect("a round");
    let demand = report
        .demands
        .iter()
        .find(|d| d.owner == owner.id())
        .expect("asked");
    let expected = 40 - phys_addr::GUARANTEED_FRAMES;
    ensure_eq!(
        (demand.asked, demand.released, demand.repossessed),
        (expected, 0, expected)
    );
    ensure_eq!(frames.present() as u64, phys_addr::GUARANTEED_FRAMES);
    // pinned frames are never taken
    ensure_eq!(pinned.present(), 4);
    let vector = phys_addr::repossession_vector(&owner);
    ensure_eq!(vector.len() as u64, expected);
    ensure_eq!((vector[0].allocation, vector[0].index), (frames.id(), 39));
    ensure_eq!(
        frames.frame(39),
        Err(PhysError::Repossessed {
            allocation: frames.id(),
            index: 39
        })
    );
    // Repossessed frames were unmapped first; the guaranteed ones stay.
    ensure_eq!(translation::examine_mapping(&range, 39), Ok(None));
    ensure!(translation::examine_mapping(&range, 0).is_ok_and(|m| m.is_some()));
    ensure!(matches!(
        range.read_u64(39 * 4096),
        Err(AccessError::Fault(_))
    ));
    drop((frames, pinned, range));
    revoke(&owner);
    // forgotten at unload
    ensure_eq!(phys_addr::repossession_vector(&owner).len(), 0);
    ensure_eq!(frames::stats().free, free_before);
    Ok(())
}

#[ktest]
fn unload_takes_back_what_an_owner_handed_away() -> KtestResult {
    let free_before = frames::stats().free;
    let owner = principal("ktest-giver");
    let frames = phys_addr::allocate(&owner, 3 * 4096, Attributes::new()).expect("frames");
    let range = virt_addr::allocate(&owner, 3).expect("a range");
    translation::add_mapping(&range, 1, &frames, 2, Protection::READ).expect("mapped");
    // The capabilities now live elsewhere (another holder); the owner goes.
    let elsewhere = (frames, range);
    revoke(&owner);
    // frames, page tables back at once
    ensure_eq!(frames::stats().free, free_before);
    ensure!(!elsewhere.1.is_live());
    ensure_eq!(
        elsewhere.0.frame(0),
        Err(PhysError::Released(elsewhere.0.id()))
    );
    // Dropping stale capabilities later frees nothing twice.
    drop(elsewhere);
    ensure_eq!(frames::stats().free, free_before);
    ensure_eq!(
        phys_addr::allocate(&owner, 4096, Attributes::new()).map(|_| ()),
        Err(PhysError::Revoked)
    );
    Ok(())
}

/// Two MiB: the span of one level-1 page table.
const TABLE_SPAN: u64 = 2 << 20;

#[ktest]
fn page_table_frames_are_freed_on_unmap() -> KtestResult {
    let free_at = || frames::stats().free;
    let free_before = free_at();
    let owner = principal("ktest-tables");
    // 8 MiB of addresses: room for two whole 2 MiB windows that no one
    // else can map in, so each needs a level-1 table of its own.
    let range = virt_addr::allocate(&owner, 2048).expect("a range");
    let mut a = range.base().next_multiple_of(TABLE_SPAN);
    if (a + TABLE_SPAN).is_multiple_of(1 << 30) {
        // Keep both windows under one level-2 table.
        a += TABLE_SPAN;
    }
    let b = a + TABLE_SPAN;
    let (page_a, page_b) = ((a - range.base()) / 4096, (b - range.base()) / 4096);
    ensure!(b + TABLE_SPAN <= range.end());
    let held = phys_addr::allocate(&owner, 2 * 4096, Attributes::new()).expect("frames");
    let free_held = free_at();
    ensure_eq!(free_before - free_held, 2);

    translation::add_mapping(&range, page_a, &held, 0, Protection::READ_WRITE).expect("mapped");
    let tables_a = free_held - free_at();
    ensure!(
        tables_a >= 1,
        "the first window's level-1 table came from nowhere"
    );
    let free_a = free_at();
    translation::add_mapping(&range, page_b, &held, 1, Protection::READ_WRITE).expect("mapped");
    // Same level-2 table: exactly one new level-1 table.
    ensure_eq!(free_a - free_at(), 1);
    range.write_u64(page_b * 4096, 7).expect("mapped writable");

    ensure_eq!(
        translation::remove_mapping(&range, page_b).ok(),
        held.frame(1).ok()
    );
    // the second window's table is freed, not the level-2 table
    ensure_eq!(free_at(), free_a);
    ensure!(crate::memory::paging::translate(x86_64::VirtAddr::new(b)).is_none());
    ensure_eq!(
        translation::remove_mapping(&range, page_a).ok(),
        held.frame(0).ok()
    );
    // and the first window's tables
    ensure_eq!(free_at(), free_held);
    ensure_eq!(
        translation::remove_mapping(&range, page_a),
        Err(translation::TranslationError::NotMapped { page: a })
    );

    // Unmapping by giving the range back frees the tables too.
    translation::add_mapping(&range, page_a, &held, 0, Protection::READ).expect("mapped");
    translation::add_mapping(&range, page_b, &held, 1, Protection::READ).expect("mapped");
    ensure_eq!(free_held - free_at(), tables_a + 1);
    range.deallocate().expect("live");
    ensure_eq!(free_at(), free_held);
    drop(held);
    revoke(&owner);
    ensure_eq!(free_at(), free_before);
    Ok(())
}

/// Reads or writes the words of `frame` through the physical-memory map.
fn frame_words(frame: phys_addr::FrameNumber) -> *mut u64 {
    (crate::PHYSICAL_MEMORY_OFFSET + frame.start_address()) as *mut u64
}

/// `PhysAddr.Allocate` hands out zeroed frames, those freed by a previous
/// owner included: the loader writes only an image's bytes into its frames
/// and relies on the rest of each page being zero (`.bss`, gaps).
#[ktest]
fn allocated_frames_are_zeroed_even_when_reused() -> KtestResult {
    const PAGES: usize = 4;
    let owner = principal("ktest-zeroed");
    let dirty =
        phys_addr::allocate(&owner, PAGES as u64 * 4096, Attributes::new()).expect("frames");
    let mut dirtied = alloc::vec::Vec::new();
    for index in 0..PAGES {
        let frame = dirty.frame(index).expect("present");
        for word in 0..512 {
            // SAFETY: the frame is ours (allocated above, mapped nowhere),
            // and the physical-memory mapping covers it.
            unsafe {
                frame_words(frame)
                    .add(word)
                    .write_volatile(0xA5A5_A5A5_A5A5_A5A5)
            };
        }
        dirtied.push(frame);
    }
    dirty.deallocate().expect("freed");
    let fresh =
        phys_addr::allocate(&owner, PAGES as u64 * 4096, Attributes::new()).expect("frames");
    let mut reused = 0;
    for index in 0..PAGES {
        let frame = fresh.frame(index).expect("present");
        reused += usize::from(dirtied.contains(&frame));
        for word in 0..512 {
            // SAFETY: as above, for the new allocation.
            let value = unsafe { frame_words(frame).add(word).read_volatile() };
            ensure_eq!(value, 0);
        }
    }
    // The frame allocator hands freed frames out again first; without
    // reuse this test would prove nothing.
    ensure!(reused > 0);
    drop(fresh);
    revoke(&owner);
    Ok(())
}
