//! `registry::republish_all`: the kernel compiles every event's table again
//! (so that tables an extension's code compiled leave its heap); raises
//! answer exactly as before, with the same bindings in the same order.

use dispatcher::{Event, PrincipalIssuer, registry};

#[test]
fn republishing_changes_no_answer_and_no_binding() {
    let issuer = PrincipalIssuer::take().expect("only taker in this binary");
    let owner = issuer.issue("kernel");
    let (event, authority) = Event::<u64, u64>::builder("Test.Republish")
        .original(|n| *n)
        .key(|n| n % 4)
        .result_handler(|a, b| a * 10 + b)
        .declare(&owner)
        .unwrap();
    authority.set_authorizer(|_| dispatcher::Decision::Allow);
    let extension = issuer.issue("extension");
    let _first = event.binding(|n| n + 1).install(&extension).unwrap();
    let _keyed = event.binding(|n| n + 2).key(1).install(&extension).unwrap();
    let _guarded = event
        .binding(|n| n + 3)
        .guard(|n| *n > 4)
        .install(&extension)
        .unwrap();
    let inputs = [0u64, 1, 5, 9, 12];
    let before: Vec<_> = inputs.iter().map(|n| event.raise(n)).collect();
    let bindings_before = registry::bindings_of("Test.Republish").unwrap();

    let republished = registry::republish_all(issuer.kernel_capability());

    assert!(republished >= 1, "{republished} events republished");
    let after: Vec<_> = inputs.iter().map(|n| event.raise(n)).collect();
    assert_eq!(after, before);
    let shape = |infos: Vec<dispatcher::BindingInfo>| {
        infos
            .into_iter()
            .map(|b| (b.id, b.installer, b.rank, b.imposed_guards))
            .collect::<Vec<_>>()
    };
    assert_eq!(
        shape(registry::bindings_of("Test.Republish").unwrap()),
        shape(bindings_before)
    );
}
