//! The raise path's read side as users see it: the nesting limit, writers
//! refused in interrupt context, re-entrant writers, and tables freed once
//! the raises using them are over.

mod common;

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, OnceLock};

use common::{issuer, principal};
use dispatcher::{
    BindingError, Event, InstallError, InterruptScope, MAX_RAISE_DEPTH, RaiseError, read_side,
};

#[test]
fn a_raise_nested_past_the_limit_is_refused_before_it_runs() {
    let owner = principal("Rs.Deep");
    static EVENT: OnceLock<Event<u64, u64>> = OnceLock::new();
    let deepest = Arc::new(AtomicU64::new(0));
    let seen = deepest.clone();
    let (event, _authority) = Event::<u64, u64>::declare("Rs.Deep", &owner, move |&n| {
        seen.fetch_max(n, Ordering::Relaxed);
        match EVENT.get().unwrap().raise(&(n + 1)) {
            Ok(inner) => inner,
            Err(RaiseError::TooDeep) => n,
            Err(other) => panic!("unexpected {other:?}"),
        }
    })
    .unwrap();
    EVENT.set(event.clone()).unwrap();
    // Raise 1 runs at depth 1, so MAX_RAISE_DEPTH handlers run and the
    // raise one deeper is refused.
    assert_eq!(event.raise(&1), Ok(MAX_RAISE_DEPTH));
    assert_eq!(deepest.load(Ordering::Relaxed), MAX_RAISE_DEPTH);
    assert_eq!(read_side::raise_depth(), 0, "every level left its section");
    assert_eq!(event.raise(&1), Ok(MAX_RAISE_DEPTH), "and it works again");
}

#[test]
fn writers_are_refused_in_interrupt_context_and_raises_run() {
    let owner = principal("Rs.Interrupt");
    let (event, authority) = Event::<u32, u32>::builder("Rs.Interrupt")
        .result_handler(|a, b| a + b)
        .declare(&owner)
        .unwrap();
    let binding = event.install(&owner, |&x| x).unwrap();
    let id = binding.id();
    {
        let _interrupt = InterruptScope::enter(issuer().kernel_capability());
        assert!(read_side::in_interrupt());
        assert_eq!(
            event.install(&owner, |&x| x * 10).unwrap_err(),
            InstallError::InInterrupt
        );
        assert_eq!(
            binding.swap_handler(|&x| x + 1),
            Err(BindingError::InInterrupt)
        );
        assert_eq!(
            authority.impose_guard(id, |_| false),
            Err(BindingError::InInterrupt)
        );
        assert_eq!(authority.uninstall(id), Err(BindingError::InInterrupt));
        assert_eq!(event.raise(&2), Ok(2), "raises run as before");
    }
    assert!(!read_side::in_interrupt());
    assert_eq!(event.bindings().len(), 1, "nothing changed");
    binding.uninstall().unwrap();
    assert_eq!(event.raise(&2), Err(RaiseError::NoHandlerFired));
}

#[test]
fn a_handler_uninstalling_itself_keeps_its_table_until_the_raise_ends() {
    let owner = principal("Rs.SelfRemove");
    let (event, authority) = Event::<u32, u32>::builder("Rs.SelfRemove")
        .result_handler(|a, b| a + b)
        .declare(&owner)
        .unwrap();
    let authority = Arc::new(authority);
    let slot: Arc<OnceLock<dispatcher::BindingId>> = Arc::new(OnceLock::new());
    let (a, s) = (authority.clone(), slot.clone());
    let first = event
        .binding(move |&x| {
            // Uninstalls itself, then the raise goes on over the old table:
            // the second binding still runs in this raise.
            a.uninstall(*s.get().unwrap()).unwrap();
            x
        })
        .first()
        .install(&owner)
        .unwrap();
    slot.set(first.id()).unwrap();
    let _second = event.install(&owner, |&x| 100 * x).unwrap();
    let alive_during = owner.alive_binding_objects();
    assert_eq!(event.raise(&1), Ok(101));
    assert_eq!(event.raise(&1), Ok(100), "the first is gone");
    assert_eq!(
        owner.alive_binding_objects(),
        alive_during - 1,
        "its object was freed once the raise ended"
    );
}

#[test]
fn tables_are_freed_after_raises_on_other_threads_end() {
    let owner = principal("Rs.Threads");
    let (event, _authority) = Event::<u64, u64>::builder("Rs.Threads")
        .default_result(0)
        .declare(&owner)
        .unwrap();
    let stop = Arc::new(std::sync::atomic::AtomicBool::new(false));
    let started = Arc::new(std::sync::Barrier::new(3));
    let raisers: Vec<_> = (0..2)
        .map(|_| {
            let (event, stop, started) = (event.clone(), stop.clone(), started.clone());
            std::thread::spawn(move || {
                let mut raises = 0u64;
                let _ = event.raise(&raises);
                started.wait();
                while !stop.load(Ordering::Relaxed) {
                    let _ = event.raise(&raises);
                    raises += 1;
                }
                raises
            })
        })
        .collect();
    started.wait();
    for _ in 0..200 {
        let binding = event.install(&owner, |&x| x + 1).unwrap();
        binding.uninstall().unwrap();
    }
    stop.store(true, Ordering::Relaxed);
    for raiser in raisers {
        raiser.join().unwrap();
    }
    assert_eq!(
        owner.alive_binding_objects(),
        0,
        "every old table was freed"
    );
}

#[test]
fn recursion_through_a_binding_hits_the_same_limit() {
    let owner = principal("Rs.DeepBinding");
    static EVENT: OnceLock<Event<u64, u64>> = OnceLock::new();
    let (event, _authority) = Event::<u64, u64>::builder("Rs.DeepBinding")
        .declare(&owner)
        .unwrap();
    EVENT.set(event.clone()).unwrap();
    let _binding = event
        .install(&owner, |&n| match EVENT.get().unwrap().raise(&(n + 1)) {
            Ok(inner) => inner,
            Err(RaiseError::TooDeep) => n,
            Err(other) => panic!("unexpected {other:?}"),
        })
        .unwrap();
    assert_eq!(event.raise(&1), Ok(MAX_RAISE_DEPTH));
    assert_eq!(read_side::raise_depth(), 0, "every level left its section");
}

#[test]
fn recursion_alternating_original_only_and_bound_events_counts_both() {
    // `Rs.Solo` has only its original handler (the solo path); it raises
    // `Rs.Bound`, whose one binding raises `Rs.Solo` again.
    let owner = principal("Rs.Alternate");
    static SOLO: OnceLock<Event<u64, u64>> = OnceLock::new();
    static BOUND: OnceLock<Event<u64, u64>> = OnceLock::new();
    let deepest = Arc::new(AtomicU64::new(0));
    let seen = deepest.clone();
    let (solo, _solo_authority) = Event::<u64, u64>::declare("Rs.Solo", &owner, move |&n| {
        seen.fetch_max(read_side::raise_depth(), Ordering::Relaxed);
        match BOUND.get().unwrap().raise(&(n + 1)) {
            Ok(inner) => inner,
            Err(RaiseError::TooDeep) => n,
            Err(other) => panic!("unexpected {other:?}"),
        }
    })
    .unwrap();
    SOLO.set(solo.clone()).unwrap();
    let (bound, _bound_authority) = Event::<u64, u64>::builder("Rs.Bound")
        .declare(&owner)
        .unwrap();
    BOUND.set(bound.clone()).unwrap();
    let _binding = bound
        .install(&owner, |&n| match SOLO.get().unwrap().raise(&(n + 1)) {
            Ok(inner) => inner,
            Err(RaiseError::TooDeep) => n,
            Err(other) => panic!("unexpected {other:?}"),
        })
        .unwrap();
    assert_eq!(solo.bindings().len(), 1, "the original only");
    // Each raise, solo or not, is one level: raise n runs at depth n.
    assert_eq!(solo.raise(&1), Ok(MAX_RAISE_DEPTH));
    assert_eq!(deepest.load(Ordering::Relaxed), MAX_RAISE_DEPTH - 1);
    assert_eq!(read_side::raise_depth(), 0);
}

#[test]
fn an_original_only_raise_sees_an_installation_made_concurrently() {
    let owner = principal("Rs.SoloInstall");
    let (event, _authority) = Event::<u64, u64>::declare("Rs.SoloInstall", &owner, |_| 1).unwrap();
    let installed = Arc::new(std::sync::atomic::AtomicBool::new(false));
    let started = Arc::new(std::sync::Barrier::new(2));
    let raiser = {
        let (event, installed, started) = (event.clone(), installed.clone(), started.clone());
        std::thread::spawn(move || {
            assert_eq!(event.raise(&0), Ok(1));
            started.wait();
            loop {
                // Read the flag first: if it was set, the installation
                // returned before this raise started.
                let done = installed.load(Ordering::Acquire);
                let result = event.raise(&0).unwrap();
                if done {
                    return result;
                }
                // The installation may be under way: before or after it.
                assert!(result == 1 || result == 10, "{result}");
            }
        })
    };
    started.wait();
    // A `Middle` binding runs after the original; without a result
    // handler the raise returns its result.
    let binding = event.install(&owner, |_| 10).unwrap();
    installed.store(true, Ordering::Release);
    let result = raiser.join().unwrap();
    assert_eq!(result, 10, "the binding ran after the original");
    binding.uninstall().unwrap();
    assert_eq!(event.raise(&0), Ok(1), "back to the original only");
}
