//! `tracer`: observes every event, including one declared after it loaded,
//! counts the raises that reach it, and leaves when unloaded.

use spindle_tests::*;

/// The RAISES column of `trace` for `event`, or `None` if not observed.
fn raises(trace: &str, event: &str) -> Option<u64> {
    let row = trace
        .lines()
        .find(|l| l.starts_with(&format!("{event} ")))
        .unwrap_or_else(|| panic!("no row for {event} in:\n{trace}"));
    if row.contains("not observed") {
        return None;
    }
    row.split_whitespace().nth(1).and_then(|n| n.parse().ok())
}

#[test]
fn tracer_counts_raises_of_old_and_new_events_and_leaves_no_binding() {
    let (mut session, _) = boot(Firmware::Bios);
    let load = command(&mut session, "ext load tracer");
    assert!(load.contains("tracer: observing "), "{load}");

    let first = command(&mut session, "trace");
    let ticks = raises(&first, "Clock.Tick").expect("Clock.Tick is open to observers");
    assert!(first.contains("Dispatcher.EventDeclared"), "{first}");
    let later = command(&mut session, "trace");
    assert!(
        raises(&later, "Clock.Tick").unwrap() > ticks,
        "the timer's raises are not counted:\n{later}"
    );

    // An event declared after the tracer loaded.
    let source = command(&mut session, "ext load event-source");
    assert!(source.contains("declared Demo.Ping"), "{source}");
    let before = command(&mut session, "trace");
    assert_eq!(raises(&before, "Demo.Ping"), Some(0), "{before}");
    command(&mut session, "ping 7");
    let after = command(&mut session, "trace");
    assert_eq!(raises(&after, "Demo.Ping"), Some(7), "{after}");

    // Observing is a binding through the owner's authorizer: it shows up in
    // `handlers`, and goes with the tracer.
    let handlers = command(&mut session, "handlers Demo.Ping");
    assert!(handlers.contains("tracer"), "{handlers}");
    let unload = command(&mut session, "ext unload tracer");
    assert!(unload.contains("tracer: stopped"), "{unload}");
    let handlers = command(&mut session, "handlers Demo.Ping");
    assert!(!handlers.contains("tracer"), "{handlers}");
    let gone = command(&mut session, "trace");
    assert!(gone.contains("error: unknown command 'trace'"), "{gone}");
    let pings = command(&mut session, "ping 2");
    assert!(pings.contains("raised Demo.Ping 2 time(s)"), "{pings}");
}
