//! Appel & Li's virtual-memory primitives, as SPIN reported them (SOSP'95,
//! Table 4), measured through the three memory services: every fault goes
//! through the page-fault handler, `Translation.*` and an installed
//! handler, every protection change through `translation::protect`.
//!
//! | row | what one operation is |
//! |---|---|
//! | Dirty | `ExamineMapping` of a mapped page (the mapping's state) |
//! | Fault | a write to an unmapped page of a range: `PageNotPresent` to the owner's handler, which allocates a zeroed frame and maps it; the write resumes |
//! | Trap | a write to a read-only page: `ProtectionFault` to the owner's handler, which unprotects it; the write resumes |
//! | Prot1 | protecting one page (read-only) |
//! | Prot100 | protecting 100 mapped pages |
//! | Unprot100 | unprotecting 100 mapped pages |
//! | Appel1 | a write to a protected page whose handler unprotects it and protects another page (the next write's) |
//! | Appel2 | protecting 100 pages, then writing each; the handler unprotects the faulting page (per page) |

use alloc::sync::Arc;
use alloc::vec::Vec;
use core::sync::atomic::{AtomicU8, Ordering};

use phys_addr::{Attributes, Frames};
use translation::{FaultReply, Protection};
use virt_addr::VirtRange;

use super::{Plan, Published, Report, Stats, measure};
use crate::arch::rdtsc;

const PAGES: u64 = 100;
const RUNS: usize = 11;

const fn spin(micros: f64) -> Published {
    Published {
        system: "SPIN",
        micros,
        mhz: 133.0,
        call_micros: 0.10,
    }
}

/// What the protection-fault handler does.
static MODE: AtomicU8 = AtomicU8::new(UNPROTECT);
const UNPROTECT: u8 = 0;
const APPEL1: u8 = 1;

struct Fixture {
    owner: dispatcher::Principal,
    range: Arc<VirtRange>,
    frames: Frames,
    bindings: Vec<dispatcher::Binding<translation::Fault, FaultReply>>,
}

fn fixture() -> Fixture {
    let owner = crate::events::authority().issuer.issue("bench-vm");
    let range = Arc::new(virt_addr::allocate(&owner, PAGES).expect("a range for the benchmark"));
    let frames = phys_addr::allocate(&owner, PAGES * 4096, Attributes::new())
        .expect("frames for the benchmark");
    for page in 0..PAGES {
        translation::add_mapping(&range, page, &frames, page as usize, Protection::READ_WRITE)
            .expect("mapping a benchmark page");
    }
    let events = translation::events::events().expect("published at boot");
    let target = range.clone();
    let trap = events
        .protection_fault
        .binding(move |fault| {
            let page = fault.page_index();
            if MODE.load(Ordering::Relaxed) == APPEL1 {
                let _ = translation::protect(&target, (page + 1) % PAGES, Protection::READ);
            }
            match translation::protect(&target, page, Protection::READ_WRITE) {
                Ok(()) => FaultReply::Resolved,
                Err(_) => FaultReply::NotResolved,
            }
        })
        .install(&owner)
        .expect("the owner handles its range's faults");
    Fixture {
        owner,
        range,
        frames,
        bindings: alloc::vec![trap],
    }
}

/// Times `op` over the 100 pages, after `setup` (not timed), per page.
fn per_page(mut setup: impl FnMut(), mut op: impl FnMut(u64)) -> Stats {
    let samples = (0..RUNS)
        .map(|_| {
            setup();
            let start = rdtsc();
            for page in 0..PAGES {
                op(page);
            }
            (rdtsc() - start) as f64 / PAGES as f64
        })
        .collect();
    Stats::of(samples)
}

/// Demand-zero faults on a second range.
fn fault(report: &mut Report, owner: &dispatcher::Principal) {
    let range = Arc::new(virt_addr::allocate(owner, PAGES).expect("a range"));
    let held: Arc<spin::Mutex<Vec<Frames>>> = Arc::default();
    let (target, keep, me) = (range.clone(), held.clone(), owner.clone());
    let events = translation::events::events().expect("published at boot");
    let binding = events
        .page_not_present
        .binding(move |fault| {
            let Ok(frames) = phys_addr::allocate(&me, 4096, Attributes::new()) else {
                return FaultReply::NotResolved;
            };
            if translation::add_mapping(
                &target,
                fault.page_index(),
                &frames,
                0,
                Protection::READ_WRITE,
            )
            .is_err()
            {
                return FaultReply::NotResolved;
            }
            keep.lock().push(frames);
            FaultReply::Resolved
        })
        .install(owner)
        .expect("the owner handles its range's faults");
    let stats = per_page(
        || held.lock().clear(),
        |page| {
            range.write_u64(page * 4096, page).expect("resolved");
        },
    );
    report.add_published(
        "vm",
        "Fault (not present -> handler maps a frame)",
        stats,
        spin(29.0),
    );
    let _ = binding.uninstall();
    held.lock().clear();
}

/// Measures the suite.
pub fn run(report: &mut Report) {
    let f = fixture();
    let range = &f.range;
    report.add_published(
        "vm",
        "Dirty (ExamineMapping)",
        measure(Plan::new(RUNS, 1000), |i| {
            core::hint::black_box(translation::examine_mapping(range, i % PAGES).ok());
        }),
        spin(2.0),
    );
    fault(report, &f.owner);
    MODE.store(UNPROTECT, Ordering::Relaxed);
    report.add_published(
        "vm",
        "Trap (protection fault -> handler unprotects)",
        per_page(
            || {
                let _ = translation::protect_range(range, Protection::READ);
            },
            |page| range.write_u64(page * 4096, page).expect("resolved"),
        ),
        spin(7.0),
    );
    report.add_published(
        "vm",
        "Prot1",
        measure(Plan::new(RUNS, 1000), |i| {
            let protection = if i % 2 == 0 {
                Protection::READ
            } else {
                Protection::READ_WRITE
            };
            translation::protect(range, 0, protection).expect("mapped");
        }),
        spin(16.0),
    );
    report.add_published(
        "vm",
        "Prot100",
        measure(Plan::new(RUNS, 10), |_| {
            translation::protect_range(range, Protection::READ).expect("live");
        }),
        spin(213.0),
    );
    report.add_published(
        "vm",
        "Unprot100",
        measure(Plan::new(RUNS, 10), |_| {
            translation::protect_range(range, Protection::READ_WRITE).expect("live");
        }),
        spin(214.0),
    );
    MODE.store(APPEL1, Ordering::Relaxed);
    let _ = translation::protect_range(range, Protection::READ_WRITE);
    let _ = translation::protect(range, 0, Protection::READ);
    report.add_published(
        "vm",
        "Appel1 (trap, unprotect it, protect another)",
        per_page(
            || {},
            |page| range.write_u64(page * 4096, page).expect("resolved"),
        ),
        spin(39.0),
    );
    MODE.store(UNPROTECT, Ordering::Relaxed);
    let _ = translation::protect_range(range, Protection::READ_WRITE);
    let samples = (0..RUNS)
        .map(|_| {
            let start = rdtsc();
            let _ = translation::protect_range(range, Protection::READ);
            for page in 0..PAGES {
                range.write_u64(page * 4096, page).expect("resolved");
            }
            (rdtsc() - start) as f64 / PAGES as f64
        })
        .collect();
    report.add_published(
        "vm",
        "Appel2 (prot100, then trap + unprotect each, per page)",
        Stats::of(samples),
        spin(29.0),
    );
    let Fixture {
        owner,
        range,
        frames,
        bindings,
    } = f;
    for binding in bindings {
        let _ = binding.uninstall();
    }
    drop((range, frames));
    crate::events::authority().issuer.revoke(&owner);
    crate::memory::services::release_owner(owner.id());
}
