//! The strand table and run queue against a reference model, over random
//! histories that include hostile policies (answers naming strands that do
//! not exist, are blocked, or belong to another class), policies retired
//! while their strands are queued, kills, suspensions and reaping.
//!
//! After every step: the table's own invariants hold, every strand the
//! model knows is in the state the model expects, the running strand is
//! the one the simulated CPU runs, and no strand is lost or duplicated.

use std::collections::BTreeMap;
use std::sync::OnceLock;

use dispatcher::{Principal, PrincipalIssuer, RaiseError};
use proptest::prelude::*;
use strand::table::{Blocked, Commit, Join, NewStrand, Rejection, Start, Stopped, Woken};
use strand::{
    BlockReason, CpuId, ExitReason, Pick, PolicyId, RunQueue, State, StrandError, StrandId,
    StrandTable,
};

fn issuer() -> &'static PrincipalIssuer {
    static ISSUER: OnceLock<PrincipalIssuer> = OnceLock::new();
    ISSUER.get_or_init(|| PrincipalIssuer::take().expect("first take in this binary"))
}

fn principals() -> &'static (Principal, Principal) {
    static P: OnceLock<(Principal, Principal)> = OnceLock::new();
    P.get_or_init(|| (issuer().issue("kernel"), issuer().issue("ext")))
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Expected {
    Ready,
    Running,
    Blocked,
    Exited,
}

fn class_of(state: State) -> Expected {
    match state {
        State::Ready => Expected::Ready,
        State::Running => Expected::Running,
        State::Blocked(_) => Expected::Blocked,
        State::Exited(_) => Expected::Exited,
    }
}

#[derive(Clone, Debug)]
enum Answer {
    RoundRobin,
    Pass,
    Fails,
    Bogus(u64),
    Candidate(usize),
    AnyStrand(usize),
}

#[derive(Clone, Debug)]
enum Op {
    Spawn {
        policy: usize,
        tickets: u32,
    },
    Wake(usize),
    Block,
    Schedule(Answer),
    Kill(usize),
    Exit,
    Suspend(usize),
    Register,
    Retire(usize),
    SetPolicy {
        strand: usize,
        policy: usize,
        tickets: u32,
    },
    Reap,
}

fn answer() -> impl Strategy<Value = Answer> {
    prop_oneof![
        Just(Answer::RoundRobin),
        Just(Answer::Pass),
        Just(Answer::Fails),
        (0u64..1000).prop_map(Answer::Bogus),
        (0usize..16).prop_map(Answer::Candidate),
        (0usize..16).prop_map(Answer::AnyStrand),
    ]
}

fn op() -> impl Strategy<Value = Op> {
    prop_oneof![
        4 => (0usize..4, 0u32..5).prop_map(|(policy, tickets)| Op::Spawn { policy, tickets }),
        3 => (0usize..16).prop_map(Op::Wake),
        2 => Just(Op::Block),
        5 => answer().prop_map(Op::Schedule),
        1 => (0usize..16).prop_map(Op::Kill),
        1 => Just(Op::Exit),
        1 => (0usize..16).prop_map(Op::Suspend),
        1 => Just(Op::Register),
        1 => (0usize..4).prop_map(Op::Retire),
        1 => (0usize..16, 0usize..4, 1u32..5)
            .prop_map(|(strand, policy, tickets)| Op::SetPolicy { strand, policy, tickets }),
        2 => Just(Op::Reap),
    ]
}

/// The simulated CPU and the model.
struct Sim {
    table: StrandTable<()>,
    rq: RunQueue,
    idle: StrandId,
    current: StrandId,
    model: BTreeMap<StrandId, Expected>,
    pending: BTreeMap<StrandId, bool>,
    policy_of: BTreeMap<StrandId, PolicyId>,
    policies: Vec<PolicyId>,
    reaped: Vec<StrandId>,
}

impl Sim {
    fn new() -> Self {
        let (kernel, _) = principals();
        let mut table = StrandTable::new();
        let mut rq = RunQueue::new(CpuId(0));
        let new = |start| NewStrand {
            name: "boot".into(),
            owner: kernel.clone(),
            cpu: CpuId(0),
            policy: PolicyId::ROUND_ROBIN,
            tickets: 1,
            essential: true,
            start,
            machine: (),
        };
        let (boot, _) = table.insert(new(Start::Running), &mut rq).unwrap();
        let (idle, _) = table.insert(new(Start::Idle), &mut rq).unwrap();
        let mut sim = Sim {
            table,
            rq,
            idle,
            current: boot,
            model: BTreeMap::new(),
            pending: BTreeMap::new(),
            policy_of: BTreeMap::new(),
            policies: Vec::new(),
            reaped: Vec::new(),
        };
        sim.model.insert(boot, Expected::Running);
        sim.model.insert(idle, Expected::Ready);
        sim.policy_of.insert(boot, PolicyId::ROUND_ROBIN);
        sim.policy_of.insert(idle, PolicyId::ROUND_ROBIN);
        sim
    }

    fn nth_strand(&self, n: usize) -> StrandId {
        let ids: Vec<StrandId> = self.model.keys().copied().collect();
        ids[n % ids.len()]
    }

    fn nth_policy(&self, n: usize) -> PolicyId {
        if self.policies.is_empty() || n == 0 {
            PolicyId::ROUND_ROBIN
        } else {
            self.policies[(n - 1) % self.policies.len()]
        }
    }

    fn running(&self) -> bool {
        self.model.get(&self.current) == Some(&Expected::Running)
    }

    fn schedule(&mut self, answer: &Answer) {
        if self.running() {
            self.table.requeue(self.current, &mut self.rq).unwrap();
            self.model.insert(self.current, Expected::Ready);
        }
        let Some(args) = self.table.choose(&self.rq) else {
            self.table.run_idle(self.idle).unwrap();
            self.model.insert(self.idle, Expected::Running);
            self.current = self.idle;
            return;
        };
        // The arguments describe the model's state.
        assert_eq!(self.model[&args.round_robin], Expected::Ready);
        assert_eq!(self.policy_of[&args.round_robin], args.policy);
        for c in &args.candidates {
            assert_eq!(self.model[&c.strand], Expected::Ready);
            assert_eq!(self.policy_of[&c.strand], args.policy);
        }
        let raised: Result<Pick, RaiseError> = match answer {
            Answer::RoundRobin => Ok(Pick::Strand(args.round_robin)),
            Answer::Pass => Ok(Pick::Pass),
            Answer::Fails => Err(RaiseError::NoHandlerFired),
            Answer::Bogus(n) => Ok(Pick::Strand(StrandId::from_u64(10_000 + n))),
            Answer::Candidate(i) if !args.candidates.is_empty() => Ok(Pick::Strand(
                args.candidates[i % args.candidates.len()].strand,
            )),
            Answer::Candidate(_) => Ok(Pick::Strand(args.round_robin)),
            Answer::AnyStrand(i) => Ok(Pick::Strand(self.nth_strand(*i))),
        };
        let valid = match raised {
            Ok(Pick::Strand(id)) => {
                self.model.get(&id) == Some(&Expected::Ready)
                    && id != self.idle
                    && self.policy_of.get(&id) == Some(&args.policy)
            }
            _ => false,
        };
        let Commit { strand, rejected } = self
            .table
            .commit(&args, raised, &mut self.rq)
            .expect("something was ready");
        if valid {
            assert_eq!(rejected, None, "a valid answer was refused");
            assert_eq!(Ok(Pick::Strand(strand)), raised);
        } else {
            assert!(rejected.is_some(), "{raised:?} should have been refused");
            assert_eq!(strand, args.round_robin, "fallback is round-robin's choice");
            if let Ok(Pick::Strand(id)) = raised {
                let expected = match self.model.get(&id) {
                    None => Rejection::NoSuchStrand,
                    Some(Expected::Ready) if id != self.idle => Rejection::OtherClass,
                    Some(_) => Rejection::NotReady,
                };
                assert_eq!(rejected, Some(expected));
            }
        }
        self.model.insert(strand, Expected::Running);
        self.current = strand;
    }

    fn apply(&mut self, op: &Op) {
        let (kernel, ext) = principals();
        match op {
            Op::Spawn { policy, tickets } => {
                let policy = self.nth_policy(*policy);
                let result = self.table.insert(
                    NewStrand {
                        name: "s".into(),
                        owner: if policy == PolicyId::ROUND_ROBIN {
                            kernel.clone()
                        } else {
                            ext.clone()
                        },
                        cpu: CpuId(0),
                        policy,
                        tickets: *tickets,
                        essential: false,
                        start: Start::Ready,
                        machine: (),
                    },
                    &mut self.rq,
                );
                match result {
                    Ok((id, signal)) => {
                        assert!(*tickets >= 1);
                        assert_eq!(signal.map(|s| s.strand), Some(id));
                        self.model.insert(id, Expected::Ready);
                        self.policy_of.insert(id, policy);
                    }
                    Err((e, _)) => assert_eq!((e, *tickets), (StrandError::BadTickets(0), 0)),
                }
            }
            Op::Wake(n) => {
                let id = self.nth_strand(*n);
                let result = self.table.wake(id, &mut self.rq);
                match self.model[&id] {
                    Expected::Blocked => {
                        assert!(matches!(result, Ok(Woken::Readied(_))));
                        self.model.insert(id, Expected::Ready);
                        // Becoming ready answers any wakeup left pending.
                        self.pending.remove(&id);
                    }
                    Expected::Exited => assert_eq!(result, Err(StrandError::Exited(id))),
                    _ => {
                        assert_eq!(result, Ok(Woken::Pending));
                        self.pending.insert(id, true);
                    }
                }
            }
            Op::Block => {
                if !self.running() || self.current == self.idle {
                    return;
                }
                let id = self.current;
                let result = self.table.block(id, BlockReason::Wait).unwrap();
                if self.pending.remove(&id).unwrap_or(false) {
                    assert_eq!(result, Blocked::WakeupPending);
                } else {
                    assert!(matches!(result, Blocked::Now(_)));
                    self.model.insert(id, Expected::Blocked);
                    self.schedule(&Answer::RoundRobin);
                }
            }
            Op::Schedule(answer) => self.schedule(answer),
            Op::Kill(n) => {
                let id = self.nth_strand(*n);
                let result = self.table.kill(id, &mut self.rq);
                let essential = self
                    .table
                    .get(id)
                    .is_some_and(|_| self.table.info(id).is_some_and(|info| info.essential));
                match self.model[&id] {
                    Expected::Exited => assert_eq!(result, Err(StrandError::Exited(id))),
                    _ if essential => assert_eq!(result, Err(StrandError::Protected(id))),
                    Expected::Running => {
                        assert_eq!(result, Ok(Stopped::Running));
                        // The kernel then ends the running strand itself.
                        self.table
                            .exit(id, ExitReason::Killed, &mut self.rq)
                            .unwrap();
                        self.model.insert(id, Expected::Exited);
                        self.schedule(&Answer::RoundRobin);
                    }
                    _ => {
                        assert!(matches!(result, Ok(Stopped::Done(_))));
                        self.model.insert(id, Expected::Exited);
                    }
                }
            }
            Op::Exit => {
                if !self.running() || self.current == self.idle {
                    return;
                }
                let id = self.current;
                self.table
                    .exit(id, ExitReason::Returned, &mut self.rq)
                    .unwrap();
                self.model.insert(id, Expected::Exited);
                self.schedule(&Answer::RoundRobin);
            }
            Op::Suspend(n) => {
                let id = self.nth_strand(*n);
                let result = self.table.suspend(id, &mut self.rq);
                let essential = self.table.info(id).is_some_and(|info| info.essential);
                match self.model[&id] {
                    Expected::Exited => assert_eq!(result, Err(StrandError::Exited(id))),
                    _ if essential => assert_eq!(result, Err(StrandError::Protected(id))),
                    Expected::Running => assert_eq!(result, Ok(Stopped::Running)),
                    Expected::Ready => {
                        assert!(matches!(result, Ok(Stopped::Done(_))));
                        self.model.insert(id, Expected::Blocked);
                    }
                    Expected::Blocked => assert_eq!(result, Err(StrandError::NotReady(id))),
                }
            }
            Op::Register => {
                // Every policy is registered by a fresh principal.
                static ISSUED: std::sync::atomic::AtomicUsize =
                    std::sync::atomic::AtomicUsize::new(0);
                let n = ISSUED.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
                let owner = owner_for_policy(n);
                let id = self
                    .table
                    .register_policy(&owner, &format!("policy-{n}"))
                    .unwrap();
                assert_eq!(
                    self.table.register_policy(&owner, "again"),
                    Err(strand::PolicyError::AlreadyRegistered(id))
                );
                self.policies.push(id);
            }
            Op::Retire(n) => {
                if self.policies.is_empty() {
                    return;
                }
                let policy = self.policies.remove(n % self.policies.len());
                let members = self
                    .policy_of
                    .iter()
                    .filter(|(id, p)| **p == policy && self.model[id] != Expected::Exited)
                    .count();
                let queued_before: Vec<StrandId> =
                    self.rq.members(policy).map(|(_, s)| s).collect();
                let moved = self.table.retire_policy(policy, &mut self.rq).unwrap();
                assert!(moved >= members);
                // Queued members keep their order, at the back of round-robin.
                let rr: Vec<StrandId> = self
                    .rq
                    .members(PolicyId::ROUND_ROBIN)
                    .map(|(_, s)| s)
                    .collect();
                assert!(rr.ends_with(&queued_before));
                for p in self.policy_of.values_mut() {
                    if *p == policy {
                        *p = PolicyId::ROUND_ROBIN;
                    }
                }
            }
            Op::SetPolicy {
                strand,
                policy,
                tickets,
            } => {
                let id = self.nth_strand(*strand);
                let policy = self.nth_policy(*policy);
                let result = self.table.set_policy(id, policy, *tickets, &mut self.rq);
                match self.model[&id] {
                    Expected::Exited => assert_eq!(result, Err(StrandError::Exited(id))),
                    _ if id == self.idle => assert_eq!(result, Err(StrandError::Protected(id))),
                    _ => {
                        result.unwrap();
                        self.policy_of.insert(id, policy);
                    }
                }
            }
            Op::Reap => {
                let current = self.current;
                let running = self.running();
                if let Some(reaped) = self.table.reap(|id| id == current && running) {
                    // Until its machine state is freed, a join still waits.
                    assert_eq!(self.table.add_joiner(reaped.id, self.idle), Ok(Join::Wait));
                    assert_eq!(self.table.reaped(reaped.id), vec![self.idle]);
                    assert_eq!(self.table.add_joiner(reaped.id, self.idle), Ok(Join::Gone));
                    assert_eq!(self.model.remove(&reaped.id), Some(Expected::Exited));
                    self.policy_of.remove(&reaped.id);
                    self.pending.remove(&reaped.id);
                    self.reaped.push(reaped.id);
                }
            }
        }
    }

    fn check(&self) {
        self.table.check(&self.rq).unwrap();
        assert_eq!(
            self.table.len(),
            self.model.len(),
            "strands lost or invented"
        );
        for (id, expected) in &self.model {
            let record = self.table.get(*id).expect("model strand in the table");
            assert_eq!(class_of(record.state()), *expected, "strand {id}");
            assert_eq!(record.policy(), self.policy_of[id], "strand {id}'s policy");
        }
        let running: Vec<StrandId> = self
            .model
            .iter()
            .filter(|(_, e)| **e == Expected::Running)
            .map(|(id, _)| *id)
            .collect();
        if self.running() {
            assert_eq!(running, [self.current]);
        } else {
            assert!(running.is_empty());
        }
        for id in &self.reaped {
            assert!(self.table.get(*id).is_none());
        }
    }
}

fn owner_for_policy(n: usize) -> Principal {
    issuer().issue(&format!("scheduler-{n}"))
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(256))]

    #[test]
    fn every_strand_is_accounted_for(ops in prop::collection::vec(op(), 1..150)) {
        let mut sim = Sim::new();
        sim.check();
        for op in &ops {
            sim.apply(op);
            sim.check();
        }
    }
}
