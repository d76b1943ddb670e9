//! Bindings: install/uninstall capabilities, guards and imposed guards,
//! keyed guards, authorizers, ordering, Cancel, hot swap, re-entrancy.

mod common;

use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};

use common::{CallLog, principal};
use dispatcher::{
    BindingError, BindingId, Decision, Event, Imposition, InstallError, OrderError, Placement,
    Position, RaiseError,
};

fn counter() -> (Arc<AtomicU64>, Arc<AtomicU64>) {
    let c = Arc::new(AtomicU64::new(0));
    (c.clone(), c)
}

#[test]
fn install_returns_a_capability_that_uninstalls() {
    let owner = principal("Bi.Cap");
    let (event, _authority) = Event::<(), u32>::declare("Bi.Cap", &owner, |_| 0).unwrap();
    let (hits, h) = counter();
    let binding = event
        .install(&owner, move |_| {
            h.fetch_add(1, Ordering::Relaxed);
            1
        })
        .unwrap();
    assert!(binding.is_installed());
    assert_eq!(event.raise(&()), Ok(1));
    assert_eq!(event.info().bindings, 1);
    binding.uninstall().unwrap();
    assert_eq!(event.raise(&()), Ok(0));
    assert_eq!(hits.load(Ordering::Relaxed), 1);
    assert_eq!(event.info().bindings, 0);
}

#[test]
fn dropping_the_handle_keeps_the_binding() {
    let owner = principal("Bi.Drop");
    let (event, authority) = Event::<(), u32>::declare("Bi.Drop", &owner, |_| 0).unwrap();
    let id = event.install(&owner, |_| 5).map(|b| b.id()).unwrap();
    assert_eq!(event.raise(&()), Ok(5));
    // Only the authority can remove it now.
    authority.uninstall(id).unwrap();
    assert_eq!(event.raise(&()), Ok(0));
    assert_eq!(authority.uninstall(id), Err(BindingError::NotInstalled(id)));
}

#[test]
fn authority_uninstall_invalidates_the_handle() {
    let owner = principal("Bi.AuthUninstall");
    let (event, authority) = Event::<(), ()>::declare("Bi.AuthUninstall", &owner, |_| ()).unwrap();
    let binding = event.install(&owner, |_| ()).unwrap();
    authority.uninstall(binding.id()).unwrap();
    assert!(!binding.is_installed());
    let id = binding.id();
    assert_eq!(binding.uninstall(), Err(BindingError::NotInstalled(id)));
}

#[test]
fn handle_outliving_its_event_reports_event_gone() {
    let owner = principal("Bi.Gone");
    let (event, authority) = Event::<(), ()>::declare("Bi.Gone", &owner, |_| ()).unwrap();
    let binding = event.install(&owner, |_| ()).unwrap();
    drop(event);
    drop(authority);
    // Tests running in parallel may be walking the registry (revocation,
    // listings), which briefly upgrades its weak reference to this event:
    // the event is gone once such a walk lets go, within microseconds.
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(5);
    while binding.is_installed() && std::time::Instant::now() < deadline {
        std::thread::yield_now();
    }
    assert!(!binding.is_installed());
    assert_eq!(binding.swap_handler(|_| ()), Err(BindingError::EventGone));
    assert_eq!(binding.uninstall(), Err(BindingError::EventGone));
    assert_eq!(
        owner.alive_binding_objects(),
        0,
        "the event's drop freed them"
    );
}

#[test]
fn all_guards_must_hold() {
    let owner = principal("Bi.Guards");
    let (event, _authority) = Event::<u32, u32>::builder("Bi.Guards")
        .declare(&owner)
        .unwrap();
    let _b = event
        .binding(|&x| x)
        .guard(|&x| x % 2 == 0)
        .guard(|&x| x % 3 == 0)
        .install(&owner)
        .unwrap();
    assert_eq!(event.raise(&6), Ok(6));
    assert_eq!(event.raise(&4), Err(RaiseError::NoHandlerFired));
    assert_eq!(event.raise(&9), Err(RaiseError::NoHandlerFired));
}

#[test]
fn imposed_guards_run_first_and_restrict() {
    let owner = principal("Bi.Imposed.Owner");
    let guest = principal("Bi.Imposed.Guest");
    let (event, authority) = Event::<u32, u32>::builder("Bi.Imposed")
        .declare(&owner)
        .unwrap();
    let log = CallLog::new();
    let l = log.clone();
    authority.set_authorizer(move |_| {
        let l = l.clone();
        Decision::Impose(Imposition::new().guard(move |&x| {
            l.record("imposed");
            x < 100
        }))
    });
    let l = log.clone();
    let binding = event
        .binding(|&x| x)
        .guard(move |_| {
            l.record("own");
            true
        })
        .install(&guest)
        .unwrap();
    assert_eq!(event.raise(&5), Ok(5));
    assert_eq!(log.take(), ["imposed", "own"]);
    assert_eq!(event.raise(&500), Err(RaiseError::NoHandlerFired));
    assert_eq!(log.take(), ["imposed"], "own guard not evaluated");

    // The authority can also impose on an installed binding.
    authority.impose_guard(binding.id(), |&x| x != 7).unwrap();
    assert_eq!(event.raise(&7), Err(RaiseError::NoHandlerFired));
    assert_eq!(event.raise(&8), Ok(8));
    let info = &event.bindings()[0];
    assert_eq!((info.options.guards, info.imposed_guards), (1, 2));
    assert_eq!(
        authority.impose_guard(BindingId::ORIGINAL, |_| true),
        Err(BindingError::Original)
    );
}

#[test]
fn keyed_bindings_fire_only_for_their_key() {
    let owner = principal("Bi.Keyed");
    let (event, _authority) = Event::<(u64, u64), u64>::builder("Bi.Keyed")
        .key(|&(port, _)| port)
        .default_result(0)
        .declare(&owner)
        .unwrap();
    let bindings: Vec<_> = (0..1000u64)
        .map(|port| {
            event
                .binding(move |&(p, payload)| {
                    assert_eq!(p, port);
                    port * 1000 + payload
                })
                .key(port)
                .install(&owner)
                .unwrap()
        })
        .collect();
    for port in [0, 1, 499, 999] {
        assert_eq!(event.raise(&(port, 7)), Ok(port * 1000 + 7));
    }
    assert_eq!(event.raise(&(5000, 7)), Ok(0), "no key matches: default");
    let info = event.bindings();
    assert_eq!(info.iter().map(|b| b.calls).sum::<u64>(), 4);
    for binding in bindings {
        binding.uninstall().unwrap();
    }
    assert_eq!(event.raise(&(1, 7)), Ok(0));
}

#[test]
fn keyed_and_unkeyed_bindings_share_one_order() {
    let owner = principal("Bi.KeyOrder");
    let log = CallLog::new();
    let l = log.clone();
    let (event, _authority) = Event::<u64, ()>::builder("Bi.KeyOrder")
        .key(|&k| k)
        .original(move |_| l.record("original"))
        .declare(&owner)
        .unwrap();
    let l = log.clone();
    let _k_last = event
        .binding(move |_| l.record("k1-last"))
        .key(1)
        .last()
        .install(&owner)
        .unwrap();
    let l = log.clone();
    let _u_first = event
        .binding(move |_| l.record("u-first"))
        .first()
        .install(&owner)
        .unwrap();
    let l = log.clone();
    let _k_first = event
        .binding(move |_| l.record("k1-first"))
        .key(1)
        .first()
        .install(&owner)
        .unwrap();
    let l = log.clone();
    let _k_middle = event
        .binding(move |_| l.record("k1-middle"))
        .key(1)
        .install(&owner)
        .unwrap();
    let l = log.clone();
    let _u_middle = event
        .binding(move |_| l.record("u-middle"))
        .install(&owner)
        .unwrap();
    let l = log.clone();
    let _k2 = event
        .binding(move |_| l.record("k2"))
        .key(2)
        .install(&owner)
        .unwrap();
    event.raise(&1).unwrap();
    assert_eq!(
        log.take(),
        [
            "u-first",
            "k1-first",
            "original",
            "k1-middle",
            "u-middle",
            "k1-last"
        ]
    );
    event.raise(&2).unwrap();
    assert_eq!(log.take(), ["u-first", "original", "u-middle", "k2"]);
    event.raise(&3).unwrap();
    assert_eq!(log.take(), ["u-first", "original", "u-middle"]);
}

#[test]
fn keys_need_a_key_extractor() {
    let owner = principal("Bi.NoKey");
    let (event, _authority) = Event::<u64, ()>::declare("Bi.NoKey", &owner, |_| ()).unwrap();
    assert_eq!(
        event.binding(|_| ()).key(3).install(&owner).unwrap_err(),
        InstallError::NotKeyed
    );
}

#[test]
fn only_the_owner_may_install_without_an_authorizer() {
    let owner = principal("Bi.Auth.Owner");
    let guest = principal("Bi.Auth.Guest");
    let (event, authority) = Event::<(), ()>::declare("Bi.Auth", &owner, |_| ()).unwrap();
    assert!(matches!(
        event.install(&guest, |_| ()),
        Err(InstallError::Denied { .. })
    ));
    event.install(&owner, |_| ()).unwrap().uninstall().unwrap();

    let seen = Arc::new(Mutex::new(Vec::new()));
    let s = seen.clone();
    authority.set_authorizer(move |request| {
        s.lock().unwrap().push((
            request.principal,
            request.principal_name.to_string(),
            request.event.to_string(),
            request.options.clone(),
        ));
        if request.options.cancel {
            Decision::Deny("no cancelling here".into())
        } else {
            Decision::Allow
        }
    });
    let allowed = event
        .binding(|_| ())
        .guard(|_| true)
        .last()
        .install(&guest)
        .unwrap();
    assert_eq!(
        event.binding(|_| ()).cancel().install(&guest).unwrap_err(),
        InstallError::Denied {
            reason: "no cancelling here".into()
        }
    );
    // The owner is the authority: it does not go through the authorizer.
    event
        .binding(|_| ())
        .cancel()
        .install(&owner)
        .unwrap()
        .uninstall()
        .unwrap();

    let seen = seen.lock().unwrap();
    assert_eq!(seen.len(), 2);
    let (who, name, event_name, options) = &seen[0];
    assert_eq!(*who, guest.id());
    assert_eq!(name, "Bi.Auth.Guest");
    assert_eq!(event_name, "Bi.Auth");
    assert_eq!(options.guards, 1);
    assert_eq!(options.placement.position, Position::Last);
    assert!(seen[1].3.cancel);
    drop(seen);
    allowed.uninstall().unwrap();

    authority.clear_authorizer();
    assert!(matches!(
        event.install(&guest, |_| ()),
        Err(InstallError::Denied { .. })
    ));
}

#[test]
fn authorizer_can_impose_an_order_and_forbid_cancel() {
    let owner = principal("Bi.ImposeOrder.Owner");
    let guest = principal("Bi.ImposeOrder.Guest");
    let log = CallLog::new();
    let l = log.clone();
    let (event, authority) =
        Event::<(), ()>::declare("Bi.ImposeOrder", &owner, move |_| l.record("original")).unwrap();
    authority.set_authorizer(|_| {
        Decision::Impose(
            Imposition::new()
                .placement(Placement {
                    position: Position::Last,
                    ..Placement::default()
                })
                .forbid_cancel(),
        )
    });
    let l = log.clone();
    let guest_binding = event
        .binding(move |_| l.record("guest"))
        .first()
        .cancel()
        .install(&guest)
        .unwrap();
    let l = log.clone();
    let _owner_last = event
        .binding(move |_| l.record("owner-last"))
        .last()
        .install(&owner)
        .unwrap();
    event.raise(&()).unwrap();
    // Asked for First + Cancel; got Last, no Cancel.
    assert_eq!(log.take(), ["original", "guest", "owner-last"]);
    let info = event
        .bindings()
        .into_iter()
        .find(|b| b.id == guest_binding.id())
        .unwrap();
    assert_eq!(info.options.placement.position, Position::Last);
    assert!(!info.options.cancel);
}

#[test]
fn before_and_after_constraints() {
    let owner = principal("Bi.BeforeAfter");
    let log = CallLog::new();
    let l = log.clone();
    let (event, _authority) =
        Event::<(), ()>::declare("Bi.BeforeAfter", &owner, move |_| l.record("original")).unwrap();
    let l = log.clone();
    let a = event
        .binding(move |_| l.record("a"))
        .install(&owner)
        .unwrap();
    let l = log.clone();
    let b = event
        .binding(move |_| l.record("b"))
        .before(BindingId::ORIGINAL)
        .install(&owner)
        .unwrap();
    let l = log.clone();
    let c = event
        .binding(move |_| l.record("c"))
        .before(a.id())
        .after(b.id())
        .install(&owner)
        .unwrap();
    event.raise(&()).unwrap();
    assert_eq!(log.take(), ["b", "original", "c", "a"]);

    // Unknown ids, band conflicts and cycles are typed errors; nothing
    // changes.
    let ghost = {
        let g = event.install(&owner, |_| ()).unwrap();
        let id = g.id();
        g.uninstall().unwrap();
        id
    };
    assert_eq!(
        event
            .binding(|_| ())
            .after(ghost)
            .install(&owner)
            .unwrap_err(),
        InstallError::Order(OrderError::UnknownBinding(ghost))
    );
    let conflict = event.binding(|_| ()).first().after(a.id()).install(&owner);
    assert!(
        matches!(
            conflict,
            Err(InstallError::Order(OrderError::PositionConflict { earlier, .. })) if earlier == a.id()
        ),
        "{conflict:?}"
    );
    assert!(matches!(
        event
            .binding(|_| ())
            .before(b.id())
            .after(a.id())
            .install(&owner),
        Err(InstallError::Order(OrderError::Cycle(_)))
    ));
    event.raise(&()).unwrap();
    assert_eq!(log.take(), ["b", "original", "c", "a"]);

    // Uninstalling a binding drops the constraints naming it.
    c.uninstall().unwrap();
    b.uninstall().unwrap();
    event.raise(&()).unwrap();
    assert_eq!(log.take(), ["original", "a"]);
}

#[test]
fn cancel_stops_later_handlers_only_when_its_guards_hold() {
    let owner = principal("Bi.Cancel");
    let log = CallLog::new();
    let l = log.clone();
    let (event, _authority) =
        Event::<bool, &'static str>::declare("Bi.Cancel", &owner, move |_| {
            l.record("original");
            "original"
        })
        .unwrap();
    let l = log.clone();
    let _first = event
        .binding(move |_| {
            l.record("first");
            "first"
        })
        .first()
        .install(&owner)
        .unwrap();
    let l = log.clone();
    let _canceller = event
        .binding(move |_| {
            l.record("canceller");
            "canceller"
        })
        .first()
        .cancel()
        .guard(|&cancel| cancel)
        .install(&owner)
        .unwrap();
    assert_eq!(event.raise(&true), Ok("canceller"));
    assert_eq!(log.take(), ["first", "canceller"]);
    assert_eq!(event.raise(&false), Ok("original"));
    assert_eq!(log.take(), ["first", "original"]);
}

#[test]
fn swap_handler_is_atomic_and_keeps_the_binding() {
    let owner = principal("Bi.Swap");
    let (event, authority) = Event::<u32, u32>::builder("Bi.Swap")
        .declare(&owner)
        .unwrap();
    let binding = event
        .binding(|&x| x + 1)
        .guard(|&x| x > 0)
        .first()
        .install(&owner)
        .unwrap();
    assert_eq!(event.raise(&1), Ok(2));
    let alive = owner.alive_binding_objects();
    binding.swap_handler(|&x| x + 100).unwrap();
    assert_eq!(event.raise(&1), Ok(101));
    assert_eq!(
        event.raise(&0),
        Err(RaiseError::NoHandlerFired),
        "guards kept"
    );
    authority.swap_handler(binding.id(), |&x| x * 1000).unwrap();
    assert_eq!(event.raise(&2), Ok(2000));
    let info = &event.bindings()[0];
    assert_eq!(info.id, binding.id());
    assert_eq!(info.calls, 3, "statistics carry over");
    assert_eq!(info.options.placement.position, Position::First);
    assert_eq!(
        owner.alive_binding_objects(),
        alive,
        "old handlers were freed"
    );
    assert_eq!(
        authority.swap_handler(BindingId::ORIGINAL, |&x| x),
        Err(BindingError::Original)
    );
}

#[test]
fn handlers_may_install_uninstall_and_raise_reentrantly() {
    let owner = principal("Bi.Reentrant");
    let (event, authority) = Event::<u32, u32>::builder("Bi.Reentrant")
        .result_handler(|a, b| a + b)
        .declare(&owner)
        .unwrap();
    let slot: Arc<Mutex<Option<dispatcher::Binding<u32, u32>>>> = Arc::new(Mutex::new(None));
    let (ev, o, s) = (event.clone(), owner.clone(), slot.clone());
    // A one-shot binding: uninstalls itself, installs a follow-up, and
    // raises the event recursively, all from inside the raise.
    let one_shot = event
        .binding(move |&depth| {
            if let Some(me) = s.lock().unwrap().take() {
                me.uninstall().unwrap();
                drop(ev.install(&o, |_| 1000).unwrap());
            }
            if depth == 0 { ev.raise(&1).unwrap() } else { 1 }
        })
        .install(&owner)
        .unwrap();
    *slot.lock().unwrap() = Some(one_shot);
    // Outer raise: its snapshot has only the one-shot. The inner raise
    // sees only the follow-up.
    assert_eq!(event.raise(&0), Ok(1000));
    assert_eq!(event.raise(&0), Ok(1000));
    assert_eq!(authority.bindings().len(), 1);
}

#[test]
fn a_raise_in_progress_keeps_its_snapshot() {
    let owner = principal("Bi.Snapshot");
    let (event, authority) = Event::<(), ()>::builder("Bi.Snapshot")
        .declare(&owner)
        .unwrap();
    let (hits_b, hb) = counter();
    let victim = Arc::new(AtomicUsize::new(0));
    let (a, v) = (Arc::new(authority), victim.clone());
    let auth = a.clone();
    let first = event
        .binding(move |_| {
            let id = v.load(Ordering::SeqCst) as u64;
            if id != 0 {
                let target = auth
                    .bindings()
                    .into_iter()
                    .find(|b| b.id.as_u64() == id)
                    .map(|b| b.id);
                if let Some(target) = target {
                    auth.uninstall(target).unwrap();
                }
            }
        })
        .first()
        .install(&owner)
        .unwrap();
    let b = event
        .install(&owner, move |_| {
            hb.fetch_add(1, Ordering::SeqCst);
        })
        .unwrap();
    victim.store(b.id().as_u64() as usize, Ordering::SeqCst);
    event.raise(&()).unwrap();
    assert_eq!(
        hits_b.load(Ordering::SeqCst),
        1,
        "uninstalled mid-raise, still called once"
    );
    event.raise(&()).unwrap();
    assert_eq!(
        hits_b.load(Ordering::SeqCst),
        1,
        "not called by later raises"
    );
    assert!(!b.is_installed());
    // The first handler holds the authority: uninstalling breaks the cycle.
    first.uninstall().unwrap();
}

#[test]
fn guard_closures_are_counted_with_the_binding_objects() {
    let owner = principal("Bi.GuardAlive.Owner");
    let extension = principal("Bi.GuardAlive.Ext");
    let (event, authority) = Event::<u32, u32>::declare("Bi.GuardAlive", &owner, |&x| x).unwrap();
    authority.set_authorizer(|_| Decision::Allow);
    let binding = event
        .binding(|&x| x + 1)
        .guard(|&x| x > 1)
        .install(&extension)
        .unwrap();
    assert_eq!(
        extension.alive_binding_objects(),
        1,
        "handler and guard specialised into one object"
    );
    authority.impose_guard(binding.id(), |&x| x < 10).unwrap();
    assert_eq!(
        extension.alive_binding_objects(),
        2,
        "the imposed guard wraps the object"
    );
    assert_eq!(event.raise(&5), Ok(6));
    assert_eq!(event.raise(&50), Ok(50));
    assert_eq!(event.raise(&1), Ok(1));
    common::issuer().revoke(&extension);
    assert_eq!(extension.alive_binding_objects(), 0);
}
