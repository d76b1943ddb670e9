//! The ledger and the reclaim round against a model: random histories of
//! allocations, deallocations, reclaim rounds with owners that give back
//! all, some or nothing, and unloads; after every step the books must
//! agree with the model and with the frames actually handed out.

use std::collections::{BTreeMap, BTreeSet};

use phys_addr::{AllocationId, FrameNumber, Ledger, Phase, PhysError, Reclaim};
use proptest::prelude::*;

const GUARANTEED: u64 = 4;
const OWNERS: u32 = 4;

/// What the model knows: each live allocation's owner, pinnedness and
/// present frames; each owner's vector length; the free frames.
#[derive(Default)]
struct Model {
    allocations: BTreeMap<AllocationId, (u32, bool, Vec<FrameNumber>)>,
    vectors: BTreeMap<u32, usize>,
    free: BTreeSet<u64>,
}

impl Model {
    fn new(frames: u64) -> Self {
        Self {
            free: (0..frames).collect(),
            ..Self::default()
        }
    }

    fn unpinned(&self, owner: u32) -> u64 {
        self.allocations
            .values()
            .filter(|(o, pinned, _)| *o == owner && !pinned)
            .map(|(_, _, f)| f.len() as u64)
            .sum()
    }

    fn take(&mut self, count: usize) -> Option<Vec<FrameNumber>> {
        if self.free.len() < count {
            return None;
        }
        let frames: Vec<u64> = self.free.iter().take(count).copied().collect();
        for f in &frames {
            self.free.remove(f);
        }
        Some(frames.into_iter().map(FrameNumber).collect())
    }
}

#[derive(Clone, Debug)]
enum Op {
    Allocate {
        owner: u32,
        count: usize,
        pinned: bool,
    },
    Deallocate {
        pick: usize,
    },
    /// A round wanting `wanted`; owner i gives back `gives[i]` percent of
    /// its share before the deadline.
    Reclaim {
        wanted: u64,
        gives: [u8; 4],
    },
    Unload {
        owner: u32,
    },
}

fn op() -> impl Strategy<Value = Op> {
    prop_oneof![
        4 => (0..OWNERS, 1usize..24, proptest::bool::weighted(0.2))
            .prop_map(|(owner, count, pinned)| Op::Allocate { owner, count, pinned }),
        2 => any::<usize>().prop_map(|pick| Op::Deallocate { pick }),
        2 => (1u64..80, proptest::array::uniform4(prop_oneof![Just(0u8), Just(50), Just(100)]))
            .prop_map(|(wanted, gives)| Op::Reclaim { wanted, gives }),
        1 => (0..OWNERS).prop_map(|owner| Op::Unload { owner }),
    ]
}

fn check(ledger: &Ledger<u32>, model: &Model, total: u64) {
    let mut seen = BTreeSet::new();
    for (&id, (owner, _, frames)) in &model.allocations {
        assert_eq!(ledger.owner_of(id), Some(*owner));
        let got = ledger.frames_of(id).unwrap();
        assert_eq!(&got, frames, "allocation {id:?}");
        for f in frames {
            assert!(seen.insert(f.0), "frame {f:?} held twice");
            assert!(!model.free.contains(&f.0), "frame {f:?} both free and held");
        }
    }
    assert_eq!(
        seen.len() as u64 + model.free.len() as u64,
        total,
        "a frame was lost"
    );
    assert_eq!(ledger.total_frames(), seen.len() as u64);
    for owner in 0..OWNERS {
        assert_eq!(ledger.unpinned(owner), model.unpinned(owner));
        assert_eq!(
            ledger.vector(owner).len(),
            model.vectors.get(&owner).copied().unwrap_or(0)
        );
    }
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(200))]
    #[test]
    fn books_match_the_model(ops in proptest::collection::vec(op(), 1..60)) {
        const TOTAL: u64 = 400;
        let mut ledger = Ledger::<u32>::new(GUARANTEED);
        let mut model = Model::new(TOTAL);
        let mut now = 0u64;
        for op in ops {
            now += 1_000;
            match op {
                Op::Allocate { owner, count, pinned } => {
                    if let Some(frames) = model.take(count) {
                        let id = ledger.record(owner, "owner", frames.clone(), pinned);
                        model.allocations.insert(id, (owner, pinned, frames));
                    }
                }
                Op::Deallocate { pick } => {
                    if model.allocations.is_empty() { continue; }
                    let id = *model.allocations.keys().nth(pick % model.allocations.len()).unwrap();
                    let freed = ledger.remove(id).unwrap();
                    let (_, _, frames) = model.allocations.remove(&id).unwrap();
                    prop_assert_eq!(&freed, &frames);
                    model.free.extend(frames.iter().map(|f| f.0));
                    // A second deallocation names nothing.
                    prop_assert_eq!(ledger.remove(id), Err(PhysError::Released(id)));
                }
                Op::Reclaim { wanted, gives } => {
                    let revocable: BTreeMap<u32, u64> = (0..OWNERS)
                        .map(|o| (o, model.unpinned(o).saturating_sub(GUARANTEED)))
                        .collect();
                    let pinned_before: BTreeMap<AllocationId, Vec<FrameNumber>> = model
                        .allocations
                        .iter()
                        .filter(|(_, (_, p, _))| *p)
                        .map(|(&id, (_, _, f))| (id, f.clone()))
                        .collect();
                    let mut round = Reclaim::plan(&ledger, wanted, now + 500);
                    let asked: u64 = round.demands().iter().map(|d| d.asked).sum();
                    prop_assert_eq!(asked, wanted.min(revocable.values().sum()));
                    for d in round.demands() {
                        prop_assert!(d.asked <= revocable[&d.owner]);
                    }
                    // Owners give back whole allocations, newest first, per
                    // their willingness.
                    let demands = round.demands().to_vec();
                    for d in &demands {
                        let target = d.asked * gives[d.owner as usize] as u64 / 100;
                        let mut given = 0;
                        while given < target {
                            let Some((&id, _)) = model
                                .allocations
                                .iter()
                                .rev()
                                .find(|(_, (o, p, _))| *o == d.owner && !p)
                            else { break };
                            let freed = ledger.remove(id).unwrap();
                            given += freed.len() as u64;
                            model.allocations.remove(&id);
                            model.free.extend(freed.iter().map(|f| f.0));
                        }
                    }
                    // Not before the deadline.
                    prop_assert!(round.abort(&mut ledger, now).is_empty() || round.phase() == Phase::Satisfied);
                    let unpinned_before: BTreeMap<u32, u64> =
                        (0..OWNERS).map(|o| (o, model.unpinned(o))).collect();
                    let taken = round.abort(&mut ledger, now + 500);
                    for t in &taken {
                        let d = round.demands().iter().find(|d| d.owner == t.owner).unwrap();
                        prop_assert_eq!(t.frames.len() as u64, d.repossessed);
                        prop_assert!(d.repossessed <= d.shortfall());
                        // Never below the guarantee.
                        prop_assert!(unpinned_before[&t.owner] - d.repossessed >= GUARANTEED.min(unpinned_before[&t.owner]));
                        *model.vectors.entry(t.owner).or_default() += t.frames.len();
                        for f in &t.frames {
                            let (_, (_, _, frames)) = model
                                .allocations
                                .iter_mut()
                                .find(|(_, (o, _, fr))| *o == t.owner && fr.contains(f))
                                .expect("repossessed frame was held by that owner");
                            frames.retain(|x| x != f);
                            model.free.insert(f.0);
                        }
                    }
                    // Pinned allocations untouched.
                    for (id, frames) in pinned_before {
                        if let Some((_, _, now_frames)) = model.allocations.get(&id) {
                            prop_assert_eq!(now_frames, &frames);
                        }
                    }
                    if round.phase() == Phase::Satisfied {
                        prop_assert!(taken.is_empty());
                    }
                }
                Op::Unload { owner } => {
                    let mut freed = ledger.release_owner(owner);
                    freed.sort();
                    let ids: Vec<AllocationId> = model
                        .allocations
                        .iter()
                        .filter(|(_, (o, _, _))| *o == owner)
                        .map(|(&id, _)| id)
                        .collect();
                    let mut expected = Vec::new();
                    for id in ids {
                        expected.extend(model.allocations.remove(&id).unwrap().2);
                    }
                    expected.sort();
                    prop_assert_eq!(&freed, &expected);
                    model.free.extend(freed.iter().map(|f| f.0));
                    model.vectors.remove(&owner);
                }
            }
            check(&ledger, &model, TOTAL);
        }
    }
}

#[test]
fn a_refusing_owner_is_repossessed_and_a_cooperative_one_is_not() {
    let mut ledger = Ledger::<u32>::new(GUARANTEED);
    let frames = |from: u64, n: u64| (from..from + n).map(FrameNumber).collect::<Vec<_>>();
    let cache: Vec<AllocationId> = (0..10)
        .map(|i| ledger.record(1, "cache", frames(i * 10, 10), false))
        .collect();
    let hog = ledger.record(2, "hog", frames(200, 100), false);
    let image = ledger.record(2, "hog", frames(400, 20), true);
    // 100 revocable each (cache: 100 - 4 = 96, hog 96): 60 wanted, 30 each.
    let mut round = Reclaim::plan(&ledger, 60, 1_000);
    let asked: Vec<(u32, u64)> = round.demands().iter().map(|d| (d.owner, d.asked)).collect();
    assert_eq!(asked, [(1, 30), (2, 30)]);
    // The cache gives back three allocations (30 frames); the hog nothing.
    for id in &cache[7..] {
        ledger.remove(*id).unwrap();
    }
    assert!(!round.observe(&ledger));
    assert_eq!(round.abort(&mut ledger, 999), [], "not before the deadline");
    assert_eq!(round.phase(), Phase::Asking);
    let taken = round.abort(&mut ledger, 1_000);
    assert_eq!(round.phase(), Phase::Aborted);
    assert_eq!(taken.len(), 1);
    assert_eq!(taken[0].owner, 2);
    // Last frames of the newest unpinned allocation first.
    assert_eq!(
        taken[0].frames,
        frames(270, 30).into_iter().rev().collect::<Vec<_>>()
    );
    let demands = round.demands();
    assert_eq!((demands[0].released, demands[0].repossessed), (30, 0));
    assert_eq!((demands[1].released, demands[1].repossessed), (0, 30));
    assert_eq!(round.recovered(), 60);
    let vector = ledger.vector(2);
    assert_eq!(vector.len(), 30);
    assert_eq!(vector[0].frame, FrameNumber(299));
    assert_eq!(vector[0].allocation, hog);
    assert_eq!(vector[0].index, 99);
    assert_eq!(ledger.vector(1), []);
    assert_eq!(
        ledger.frame(hog, 99),
        Err(PhysError::Repossessed {
            allocation: hog,
            index: 99
        })
    );
    assert_eq!(ledger.frame(hog, 69), Ok(FrameNumber(269)));
    assert_eq!(
        ledger.frames_of(image).unwrap().len(),
        20,
        "pinned frames untouched"
    );
}

#[test]
fn guaranteed_and_pinned_frames_are_never_asked_for_or_taken() {
    let mut ledger = Ledger::<u32>::new(GUARANTEED);
    let small = ledger.record(
        1,
        "small",
        vec![FrameNumber(1), FrameNumber(2), FrameNumber(3)],
        false,
    );
    ledger.record(2, "image", (10..50).map(FrameNumber).collect(), true);
    ledger.record(3, "mixed", (100..110).map(FrameNumber).collect(), false);
    let mut round = Reclaim::plan(&ledger, 1_000, 10);
    // Only "mixed" has frames beyond its guarantee: 10 - 4.
    let asked: Vec<(u32, u64)> = round.demands().iter().map(|d| (d.owner, d.asked)).collect();
    assert_eq!(asked, [(3, 6)]);
    let taken = round.abort(&mut ledger, 10);
    assert_eq!(taken[0].frames.len(), 6);
    assert_eq!(ledger.unpinned(3), GUARANTEED);
    assert_eq!(ledger.repossess(3, 100, 11), []);
    assert_eq!(ledger.repossess(2, 100, 11), [], "pinned");
    assert_eq!(ledger.repossess(1, 100, 11), [], "below the guarantee");
    assert_eq!(ledger.frames_of(small).unwrap().len(), 3);
}

#[test]
fn an_owner_that_gives_everything_back_before_the_deadline_satisfies_the_round() {
    let mut ledger = Ledger::<u32>::new(0);
    let a = ledger.record(7, "cache", (0..8).map(FrameNumber).collect(), false);
    let mut round = Reclaim::plan(&ledger, 8, 100);
    ledger.remove(a).unwrap();
    assert!(round.observe(&ledger));
    assert_eq!(round.phase(), Phase::Satisfied);
    assert_eq!(round.abort(&mut ledger, 200), []);
    assert_eq!(round.phase(), Phase::Satisfied);
    // The owner left no record behind.
    assert_eq!(ledger.owners(), []);
}
