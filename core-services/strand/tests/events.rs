//! The service's events with the real dispatcher: the authorizers'
//! impositions (a scheduler sees only its own strands, only schedulers
//! answer `Sched.PickNext`, nobody cancels), the result fold, and the
//! table following — or refusing — what a policy answers.

use std::collections::HashMap;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, OnceLock};

use dispatcher::{Event, InstallError, Principal, PrincipalId, PrincipalIssuer};
use strand::events::{pick_authorizer, round_robin, signal_authorizer, signal_original};
use strand::table::{NewStrand, Rejection, Start};
use strand::{
    Cause, CpuId, Pick, PickArgs, PolicyId, RunQueue, StrandId, StrandSignal, StrandTable,
};

fn issuer() -> &'static PrincipalIssuer {
    static ISSUER: OnceLock<PrincipalIssuer> = OnceLock::new();
    ISSUER.get_or_init(|| PrincipalIssuer::take().expect("first take in this binary"))
}

/// Which principal registered which policy (what the kernel's platform
/// answers from its table).
fn registered() -> &'static Mutex<HashMap<PrincipalId, PolicyId>> {
    static MAP: OnceLock<Mutex<HashMap<PrincipalId, PolicyId>>> = OnceLock::new();
    MAP.get_or_init(|| Mutex::new(HashMap::new()))
}

fn policy_of(principal: PrincipalId) -> Option<PolicyId> {
    registered().lock().unwrap().get(&principal).copied()
}

fn signal(strand: u64, policy: PolicyId) -> StrandSignal {
    StrandSignal {
        strand: StrandId::from_u64(strand),
        cpu: CpuId(0),
        policy,
        tickets: 1,
        cause: Cause::Woken,
    }
}

#[test]
fn a_scheduler_sees_only_its_strands_and_an_observer_sees_all() {
    let kernel = issuer().issue("kernel");
    let (block, authority) =
        Event::<StrandSignal, ()>::declare("Test.Block", &kernel, signal_original).unwrap();
    authority.set_authorizer(signal_authorizer(policy_of));

    let scheduler = issuer().issue("stride");
    let mine = PolicyId::from_u32(7);
    registered().lock().unwrap().insert(scheduler.id(), mine);
    let observer = issuer().issue("tracer");

    let seen_by_scheduler = Arc::new(Mutex::new(Vec::new()));
    let seen_by_observer = Arc::new(AtomicUsize::new(0));
    let s = seen_by_scheduler.clone();
    let _scheduler_binding = block
        .binding(move |sig: &StrandSignal| s.lock().unwrap().push(sig.strand))
        .cancel()
        .install(&scheduler)
        .unwrap();
    let o = seen_by_observer.clone();
    let _observer_binding = block
        .binding(move |_| {
            o.fetch_add(1, Ordering::Relaxed);
        })
        .install(&observer)
        .unwrap();

    block.raise(&signal(1, PolicyId::ROUND_ROBIN)).unwrap();
    block.raise(&signal(2, mine)).unwrap();
    block.raise(&signal(3, PolicyId::from_u32(8))).unwrap();
    assert_eq!(*seen_by_scheduler.lock().unwrap(), [StrandId::from_u64(2)]);
    // The scheduler asked to cancel; the authority forbade it, so the
    // observer after it still saw every signal.
    assert_eq!(seen_by_observer.load(Ordering::Relaxed), 3);
    let bindings = block.bindings();
    assert!(bindings.iter().all(|b| !b.options.cancel));
    assert_eq!(
        bindings
            .iter()
            .find(|b| b.installer == scheduler.id())
            .unwrap()
            .imposed_guards,
        1
    );
}

/// A `Sched.PickNext` look-alike; each test names its own (tests run in
/// parallel, and names are unique while the event lives).
fn pick_event(name: &str, kernel: &Principal) -> Event<PickArgs, Pick> {
    let (event, authority) = Event::<PickArgs, Pick>::builder(name)
        .original(round_robin)
        .result_handler(Pick::combine)
        .declare(kernel)
        .unwrap();
    authority.set_authorizer(pick_authorizer(policy_of));
    // The authority handle may go: the authorizer stays with the event.
    drop(authority);
    event
}

#[test]
fn only_schedulers_answer_pick_next_each_for_its_own_class() {
    let kernel = issuer().issue("kernel");
    let pick = pick_event("Test.PickNextAuthority", &kernel);
    let observer = issuer().issue("nosy");
    match pick.install(&observer, |_| Pick::Pass) {
        Err(InstallError::Denied { reason }) => assert!(reason.contains("registered")),
        other => panic!("{other:?}"),
    }

    let scheduler = issuer().issue("lottery");
    let mine = PolicyId::from_u32(3);
    registered().lock().unwrap().insert(scheduler.id(), mine);
    let favourite = StrandId::from_u64(42);
    let _binding = pick
        .install(&scheduler, move |_| Pick::Strand(favourite))
        .unwrap();

    let args = |policy| PickArgs {
        cpu: CpuId(0),
        policy,
        round_robin: StrandId::from_u64(9),
        candidates: Vec::new(),
    };
    assert_eq!(pick.raise(&args(mine)), Ok(Pick::Strand(favourite)));
    assert_eq!(
        pick.raise(&args(PolicyId::ROUND_ROBIN)),
        Ok(Pick::Strand(StrandId::from_u64(9))),
        "round-robin's class is round-robin's"
    );
    assert_eq!(
        pick.raise(&args(PolicyId::from_u32(4))),
        Ok(Pick::Strand(StrandId::from_u64(9))),
        "another scheduler's class is not this one's"
    );
}

#[test]
fn the_table_follows_a_good_answer_and_refuses_bad_ones() {
    let kernel = issuer().issue("kernel");
    let scheduler = issuer().issue("picky");
    let mut table = StrandTable::<()>::new();
    let mut rq = RunQueue::new(CpuId(0));
    let policy = table.register_policy(&scheduler, "picky").unwrap();
    registered().lock().unwrap().insert(scheduler.id(), policy);
    let mut spawn = |policy, tickets, start| {
        table
            .insert(
                NewStrand {
                    name: "s".into(),
                    owner: kernel.clone(),
                    cpu: CpuId(0),
                    policy,
                    tickets,
                    essential: false,
                    start,
                    machine: (),
                },
                &mut rq,
            )
            .unwrap()
            .0
    };
    let running = spawn(PolicyId::ROUND_ROBIN, 1, Start::Running);
    let a = spawn(policy, 1, Start::Ready);
    let b = spawn(policy, 3, Start::Ready);
    let rr = spawn(PolicyId::ROUND_ROBIN, 1, Start::Ready);

    let pick = pick_event("Test.PickNextTable", &kernel);
    let answer = Arc::new(Mutex::new(Pick::Pass));
    let a2 = answer.clone();
    let _binding = pick
        .install(&scheduler, move |_| *a2.lock().unwrap())
        .unwrap();

    // Round-robin's class comes first (lowest class); then the policy's.
    table.requeue(running, &mut rq).unwrap();
    let args = table.choose(&rq).unwrap();
    assert_eq!(args.policy, PolicyId::ROUND_ROBIN);
    let commit = table.commit(&args, pick.raise(&args), &mut rq).unwrap();
    assert_eq!(commit.strand, rr);

    // The policy's turn: it names b (3 tickets) and gets it.
    *answer.lock().unwrap() = Pick::Strand(b);
    table.requeue(rr, &mut rq).unwrap();
    let args = table.choose(&rq).unwrap();
    assert_eq!(args.policy, policy);
    assert_eq!(
        args.candidates
            .iter()
            .map(|c| (c.strand, c.tickets))
            .collect::<Vec<_>>(),
        [(a, 1), (b, 3)]
    );
    let commit = table.commit(&args, pick.raise(&args), &mut rq).unwrap();
    assert_eq!((commit.strand, commit.rejected), (b, None));

    // Turns the classes until it is the policy's turn; returns its args.
    let mut current = commit.strand;
    let policy_turn = |table: &mut StrandTable<()>, rq: &mut RunQueue, current: &mut StrandId| loop {
        table.requeue(*current, rq).unwrap();
        let args = table.choose(rq).unwrap();
        if args.policy == policy {
            return args;
        }
        *current = table.commit(&args, pick.raise(&args), rq).unwrap().strand;
    };

    // Bad answers: a strand that does not exist, one of round-robin's.
    for bad in [StrandId::from_u64(999), running] {
        *answer.lock().unwrap() = Pick::Strand(bad);
        let args = policy_turn(&mut table, &mut rq, &mut current);
        let why = match table.get(bad).map(|r| r.state()) {
            None => Rejection::NoSuchStrand,
            Some(strand::State::Ready) => Rejection::OtherClass,
            Some(_) => Rejection::NotReady,
        };
        let refused = table.commit(&args, pick.raise(&args), &mut rq).unwrap();
        assert_eq!(refused.rejected, Some(why));
        assert_eq!(refused.strand, args.round_robin);
        current = refused.strand;
        table.check(&rq).unwrap();
    }
    // No answer at all (every handler passed): round-robin's choice.
    let args = policy_turn(&mut table, &mut rq, &mut current);
    let passed = table.commit(&args, Ok(Pick::Pass), &mut rq).unwrap();
    assert_eq!(passed.rejected, Some(Rejection::NoAnswer));
    assert_eq!(passed.strand, args.round_robin);
    table.check(&rq).unwrap();

    let info = table
        .policy_infos()
        .into_iter()
        .find(|p| p.id == policy)
        .unwrap();
    assert_eq!((info.picks, info.rejected), (1, 3), "{info:?}");
    assert_eq!(info.strands, 2);

    // Retiring the policy returns a and b to round-robin, in order.
    let moved = table.retire_policy(policy, &mut rq).unwrap();
    assert_eq!(moved, 2);
    table.check(&rq).unwrap();
    assert!(
        table
            .infos()
            .iter()
            .all(|s| s.policy == PolicyId::ROUND_ROBIN)
    );
}
