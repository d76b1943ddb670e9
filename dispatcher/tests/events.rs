//! Events: declaration, the original handler, raising, results, the
//! registry and introspection, principals and revocation.

mod common;

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

use common::{CallLog, principal};
use dispatcher::registry;
use dispatcher::{
    BindingError, BindingId, DeclareError, Event, InstallError, PrincipalIssuer, RaiseError,
};

fn assert_send_sync_clone<T: Send + Sync + Clone>() {}

#[test]
fn events_are_cheap_send_sync_handles() {
    assert_send_sync_clone::<Event<(u64, u64, u64, u64, u64), u64>>();
    assert_send_sync_clone::<Event<(), ()>>();
    assert_send_sync_clone::<Event<String, Vec<u8>>>();
}

#[test]
fn raise_calls_the_original_with_typed_arguments() {
    let owner = principal("Ev.Original");
    let (event, _authority) =
        Event::<(u64, u64, u64, u64, u64), u64>::declare("Ev.Five", &owner, |&(a, b, c, d, e)| {
            a + 10 * b + 100 * c + 1000 * d + 10_000 * e
        })
        .unwrap();
    assert_eq!(event.raise(&(1, 2, 3, 4, 5)), Ok(54_321));
    assert_eq!(event.raises(), 1);
    assert_eq!(event.name(), "Ev.Five");
    assert_eq!(event.owner(), owner.id());
}

#[test]
fn names_must_be_dotted_and_unique_among_live_events() {
    let owner = principal("Ev.Names");
    for bad in [
        "",
        "Tick",
        "Clock.",
        ".Tick",
        "Clock..Tick",
        "Clock.Ti ck",
        "Clock.Tick!",
    ] {
        assert!(
            matches!(
                Event::<(), ()>::declare(bad, &owner, |_| ()),
                Err(DeclareError::InvalidName(_))
            ),
            "{bad:?} accepted"
        );
    }
    let first = Event::<(), ()>::declare("Ev.Unique_1.Sub", &owner, |_| ()).unwrap();
    assert_eq!(
        Event::<u8, u8>::declare("Ev.Unique_1.Sub", &owner, |&x| x).unwrap_err(),
        DeclareError::DuplicateName("Ev.Unique_1.Sub".into())
    );
    drop(first);
    // Once every handle is gone the event deregisters and the name is free.
    assert!(registry::event_info("Ev.Unique_1.Sub").is_none());
    let again = Event::<u8, u8>::declare("Ev.Unique_1.Sub", &owner, |&x| x + 1).unwrap();
    assert_eq!(again.0.raise(&1), Ok(2));
}

#[test]
fn event_stays_registered_while_any_handle_lives() {
    let owner = principal("Ev.Handles");
    let (event, authority) = Event::<(), ()>::declare("Ev.Handles", &owner, |_| ()).unwrap();
    let copy = event.clone();
    drop(event);
    assert!(registry::event_info("Ev.Handles").is_some());
    drop(authority);
    assert!(registry::event_info("Ev.Handles").is_some());
    copy.raise(&()).unwrap();
    drop(copy);
    assert!(registry::event_info("Ev.Handles").is_none());
    assert!(registry::bindings_of("Ev.Handles").is_none());
}

#[test]
fn original_runs_in_the_middle_band_in_install_order() {
    let owner = principal("Ev.Middle");
    let log = CallLog::new();
    let l = log.clone();
    let (event, _authority) =
        Event::<(), ()>::declare("Ev.Middle", &owner, move |_| l.record("original")).unwrap();
    let l = log.clone();
    let _last = event
        .binding(move |_| l.record("last"))
        .last()
        .install(&owner)
        .unwrap();
    let l = log.clone();
    let _middle = event
        .binding(move |_| l.record("middle"))
        .install(&owner)
        .unwrap();
    let l = log.clone();
    let _first = event
        .binding(move |_| l.record("first"))
        .first()
        .install(&owner)
        .unwrap();
    event.raise(&()).unwrap();
    assert_eq!(log.take(), ["first", "original", "middle", "last"]);
}

#[test]
fn authority_can_get_and_disable_the_original() {
    let owner = principal("Ev.GetOriginal");
    let (event, authority) =
        Event::<u32, u32>::declare("Ev.GetOriginal", &owner, |&x| x * 2).unwrap();
    let original = authority.original().expect("declared with an original");
    assert_eq!(original(&21), 42);

    authority.set_original_enabled(false);
    assert_eq!(event.raise(&1), Err(RaiseError::NoHandlerFired));
    let info = event.info();
    assert!(!info.original_enabled);
    assert!(!event.bindings()[0].enabled);

    // A replacement can call through to the original.
    let through = authority.original().unwrap();
    let replacement = event.install(&owner, move |&x| through(&x) + 1).unwrap();
    assert_eq!(event.raise(&1), Ok(3));
    replacement.uninstall().unwrap();

    authority.set_original_enabled(true);
    assert_eq!(event.raise(&5), Ok(10));
    assert_eq!(
        authority.uninstall(BindingId::ORIGINAL),
        Err(BindingError::Original)
    );
}

#[test]
fn results_fold_default_and_typed_error() {
    let owner = principal("Ev.Results");
    let (event, authority) = Event::<i64, i64>::builder("Ev.Results")
        .declare(&owner)
        .unwrap();
    // No handler, no default: a typed error, not a panic.
    assert_eq!(event.raise(&1), Err(RaiseError::NoHandlerFired));
    authority.set_default_result(-1);
    assert_eq!(event.raise(&1), Ok(-1));
    authority.set_default_handler(|&x| -x);
    assert_eq!(event.raise(&7), Ok(-7));

    let _a = event.install(&owner, |&x| x).unwrap();
    let _b = event.install(&owner, |&x| x * 10).unwrap();
    let _c = event
        .binding(|&x| x * 100)
        .guard(|&x| x > 0)
        .install(&owner)
        .unwrap();
    // Without a result handler: the last handler's result.
    assert_eq!(event.raise(&2), Ok(200));
    assert_eq!(event.raise(&-2), Ok(-20));
    authority.set_result_handler(|acc, next| acc + next);
    assert_eq!(event.raise(&2), Ok(222));
    assert_eq!(event.raise(&-2), Ok(-22));
    authority.set_result_handler(|acc: i64, next: i64| acc.max(next));
    assert_eq!(event.raise(&3), Ok(300));
    authority.clear_result_handler();
    authority.clear_default();
    assert_eq!(event.raise(&3), Ok(300));
}

#[test]
fn default_applies_only_when_no_handler_fires() {
    let owner = principal("Ev.DefaultOnly");
    let (event, _authority) = Event::<u8, &'static str>::builder("Ev.DefaultOnly")
        .default_result("default")
        .declare(&owner)
        .unwrap();
    let _even = event
        .binding(|_| "even")
        .guard(|&x| x % 2 == 0)
        .install(&owner)
        .unwrap();
    assert_eq!(event.raise(&2), Ok("even"));
    assert_eq!(event.raise(&3), Ok("default"));
}

#[test]
fn registry_lists_events_and_bindings() {
    let owner = principal("Ev.Registry.Owner");
    let guest = principal("Ev.Registry.Guest");
    let (event, authority) = Event::<u64, ()>::builder("Ev.Registry")
        .original(|_| ())
        .key(|&x| x)
        .declare(&owner)
        .unwrap();
    authority.set_authorizer(|_| dispatcher::Decision::Allow);
    let keyed = event
        .binding(|_| ())
        .key(7)
        .guard(|_| true)
        .guard(|_| true)
        .first()
        .cancel()
        .install(&guest)
        .unwrap();
    authority.impose_guard(keyed.id(), |_| true).unwrap();
    let plain = event.binding(|_| ()).last().install(&owner).unwrap();
    for i in 0..5 {
        event.raise(&i).unwrap();
    }
    event.raise(&7).unwrap();

    let listed = registry::events();
    let info = listed
        .iter()
        .find(|info| info.name == "Ev.Registry")
        .expect("listed");
    assert_eq!(info.owner, owner.id());
    assert_eq!(info.owner_name, "Ev.Registry.Owner");
    assert_eq!(info.bindings, 2);
    assert_eq!(info.raises, 6);
    assert!(
        listed.windows(2).all(|w| w[0].name <= w[1].name),
        "sorted by name"
    );

    let bindings = registry::bindings_of("Ev.Registry").expect("event exists");
    let ids: Vec<BindingId> = bindings.iter().map(|b| b.id).collect();
    assert_eq!(ids, [keyed.id(), BindingId::ORIGINAL, plain.id()]);
    let k = &bindings[0];
    assert_eq!(k.installer, guest.id());
    assert_eq!(k.installer_name, "Ev.Registry.Guest");
    assert_eq!(k.rank, 0);
    assert_eq!(k.options.key, Some(7));
    assert!(k.options.cancel);
    assert_eq!(k.options.placement.position, dispatcher::Position::First);
    assert_eq!(k.options.guards, 2);
    assert_eq!(k.imposed_guards, 1);
    assert!(!k.options.asynchronous && !k.options.ephemeral);
    assert_eq!(k.calls, 1, "keyed 7 fired once; it cancelled the rest");
    assert_eq!(bindings[1].calls, 5, "original ran in the 5 other raises");
    assert_eq!(bindings[2].calls, 5);
    assert_eq!(bindings[1].installer, owner.id());
    assert!(registry::bindings_of("Ev.NoSuchEvent").is_none());
}

#[test]
fn raise_count_grows_on_fast_and_general_paths() {
    let owner = principal("Ev.Count");
    let (event, _authority) = Event::<(), ()>::declare("Ev.Count", &owner, |_| ()).unwrap();
    for _ in 0..10 {
        event.raise(&()).unwrap();
    }
    assert_eq!(registry::event_info("Ev.Count").unwrap().raises, 10);
    let binding = event.install(&owner, |_| ()).unwrap();
    for _ in 0..5 {
        event.raise(&()).unwrap();
    }
    binding.uninstall().unwrap();
    event.raise(&()).unwrap();
    assert_eq!(registry::event_info("Ev.Count").unwrap().raises, 16);
    assert_eq!(event.bindings()[0].calls, 16, "the original ran every time");
}

#[test]
fn the_issuer_can_be_taken_only_once() {
    let _ = common::issuer();
    assert!(PrincipalIssuer::take().is_none());
    let a = principal("Ev.A");
    let b = principal("Ev.A");
    assert_ne!(a.id(), b.id(), "same name, different identities");
    assert_eq!(a.clone(), a, "clones are the same identity");
}

#[test]
fn revoke_uninstalls_a_principal_everywhere_and_blocks_new_installs() {
    let owner = principal("Ev.Revoke.Owner");
    let extension = principal("Ev.Revoke.Ext");
    let other = principal("Ev.Revoke.Other");
    let hits = Arc::new(AtomicU64::new(0));
    let mut events = Vec::new();
    for name in ["Ev.Revoke.One", "Ev.Revoke.Two"] {
        let (event, authority) = Event::<(), ()>::declare(name, &owner, |_| ()).unwrap();
        authority.set_authorizer(|_| dispatcher::Decision::Allow);
        for _ in 0..3 {
            let hits = hits.clone();
            let binding = event
                .install(&extension, move |_| {
                    hits.fetch_add(1, Ordering::Relaxed);
                })
                .unwrap();
            drop(binding); // dropping the handle leaves the binding installed
        }
        let _keep = event.install(&other, |_| ()).unwrap();
        drop(_keep);
        events.push((event, authority));
    }
    assert_eq!(extension.alive_binding_objects(), 6);
    let revocation = common::issuer().revoke(&extension);
    assert_eq!(revocation.uninstalled, 6);
    assert_eq!(revocation.still_alive, 0);
    assert_eq!(extension.alive_binding_objects(), 0);
    assert!(extension.is_revoked());
    for (event, _) in &events {
        event.raise(&()).unwrap();
        assert_eq!(
            event.info().bindings,
            1,
            "the other principal's binding stays"
        );
        assert_eq!(
            event.install(&extension, |_| ()).unwrap_err(),
            InstallError::Revoked
        );
    }
    assert_eq!(hits.load(Ordering::Relaxed), 0);
    assert_eq!(other.alive_binding_objects(), 2);
}

#[test]
fn binding_objects_stay_alive_while_a_raise_holds_them() {
    let owner = principal("Ev.Alive.Owner");
    let extension = principal("Ev.Alive.Ext");
    let (event, authority) = Event::<(), ()>::builder("Ev.Alive")
        .declare(&owner)
        .unwrap();
    authority.set_authorizer(|_| dispatcher::Decision::Allow);
    let observed = Arc::new(AtomicU64::new(u64::MAX));
    let ext_ran = Arc::new(AtomicU64::new(0));
    // The owner's first handler revokes the extension in the middle of the
    // raise, then checks that the extension's object is still alive.
    let ext = extension.clone();
    let seen = observed.clone();
    let _revoker = event
        .binding(move |_| {
            let revocation = common::issuer().revoke(&ext);
            seen.store(revocation.still_alive as u64, Ordering::SeqCst);
        })
        .first()
        .install(&owner)
        .unwrap();
    let ran = ext_ran.clone();
    let ext_binding = event
        .install(&extension, move |_| {
            ran.fetch_add(1, Ordering::SeqCst);
        })
        .unwrap();
    event.raise(&()).unwrap();
    // The raise took its snapshot before the revocation: the extension's
    // handler still ran, and its object was alive during the raise.
    assert_eq!(ext_ran.load(Ordering::SeqCst), 1);
    assert_eq!(observed.load(Ordering::SeqCst), 1);
    assert_eq!(
        extension.alive_binding_objects(),
        0,
        "freed when the raise ended"
    );
    assert!(!ext_binding.is_installed());
    let ext_id = ext_binding.id();
    assert_eq!(
        ext_binding.uninstall(),
        Err(BindingError::NotInstalled(ext_id))
    );
}

#[test]
fn revoking_the_owner_retires_its_events() {
    let kernel = principal("Ev.Retire.Kernel");
    let extension = principal("Ev.Retire.Ext");
    let (event, authority) = Event::<u8, u8>::declare("Ev.Retire", &extension, |&x| x).unwrap();
    authority.set_authorizer(|_| dispatcher::Decision::Allow);
    let kernel_binding = event.install(&kernel, |&x| x + 1).unwrap();
    let own = event.install(&extension, |&x| x + 2).unwrap();
    assert_eq!(event.raise(&1), Ok(3));
    assert_eq!(
        extension.alive_binding_objects(),
        2,
        "the original and one binding"
    );

    let revocation = common::issuer().revoke(&extension);
    assert_eq!(revocation.uninstalled, 1);
    assert_eq!(extension.alive_binding_objects(), 0);
    assert_eq!(event.raise(&1), Err(RaiseError::Retired));
    assert!(event.info().retired);
    assert!(!kernel_binding.is_installed());
    assert!(!own.is_installed());
    assert_eq!(
        event.install(&kernel, |&x| x).unwrap_err(),
        InstallError::Retired
    );
}
