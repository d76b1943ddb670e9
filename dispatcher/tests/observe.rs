//! Observing events by name without their types (`dispatcher::observe`),
//! and `Dispatcher.EventDeclared`.

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

use dispatcher::observe::{
    EVENT_DECLARED, EventDeclared, ObserveError, declared_event, observable_events, observe,
    publish_declared_event,
};
use dispatcher::{Decision, Event, InstallError, PrincipalIssuer};

#[test]
fn an_observer_counts_raises_without_changing_results() {
    let issuer = PrincipalIssuer::take().expect("only taker in this binary");
    let owner = issuer.issue("owner");
    let monitor = issuer.issue("monitor");
    let (event, authority) = Event::<u32, u32>::builder("ObserveTest.Counted")
        .original(|x| x + 1)
        .declare(&owner)
        .unwrap();
    let counter = Arc::new(AtomicU64::new(0));
    // Without the owner's consent the observer is refused.
    assert!(matches!(
        observe("ObserveTest.Counted", &monitor, counter.clone()),
        Err(ObserveError::Install(InstallError::Denied { .. }))
    ));
    authority.set_authorizer(|_| Decision::Allow);
    let observer = observe("ObserveTest.Counted", &monitor, counter.clone()).unwrap();
    for i in 0..5 {
        assert_eq!(event.raise(&i), Ok(i + 1));
    }
    assert_eq!(counter.load(Ordering::Relaxed), 5);
    observer.stop().unwrap();
    assert_eq!(event.raise(&1), Ok(2));
    assert_eq!(counter.load(Ordering::Relaxed), 5);
    assert_eq!(
        observe("ObserveTest.Nothing", &monitor, counter).unwrap_err(),
        ObserveError::NoSuchEvent("ObserveTest.Nothing".into())
    );
    assert!(
        observable_events()
            .iter()
            .any(|n| n == "ObserveTest.Counted")
    );

    // Dispatcher.EventDeclared: published by the kernel, installed on by
    // the monitor, raised for every later declaration.
    let (declared, declared_authority) = Event::<EventDeclared, ()>::builder(EVENT_DECLARED)
        .declare(&owner)
        .unwrap();
    declared_authority.set_authorizer(|_| Decision::Allow);
    assert!(declared_event().is_none());
    assert!(publish_declared_event(
        issuer.kernel_capability(),
        declared.clone()
    ));
    assert!(!publish_declared_event(
        issuer.kernel_capability(),
        declared
    ));
    let seen = Arc::new(std::sync::Mutex::new(Vec::new()));
    let record = seen.clone();
    let _binding = declared_event()
        .unwrap()
        .install(&monitor, move |d: &EventDeclared| {
            record.lock().unwrap().push(d.name.clone())
        })
        .unwrap();
    let (_late, _late_authority) = Event::<u8, ()>::builder("ObserveTest.Late")
        .declare(&owner)
        .unwrap();
    assert_eq!(*seen.lock().unwrap(), ["ObserveTest.Late"]);
}
