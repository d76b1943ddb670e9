//! Asynchronous events and handlers (executor), and time-bounded handlers
//! (quantum, in-flight table, overrun detection by the timer hook and on
//! return).

mod common;

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Barrier, Mutex};

use common::{FakeClock, QueueExecutor, issuer, principal};
use dispatcher::time_bounds::{self, IN_FLIGHT_SLOTS};
use dispatcher::{
    Decision, Detection, Event, InstallError, Micros, Overrun, RaiseError, TimeBounds,
    set_global_executor,
};

#[test]
fn async_handlers_run_later_with_cloned_arguments() {
    let owner = principal("As.Later");
    let executor = QueueExecutor::new();
    let (event, _authority) = Event::<String, usize>::builder("As.Later")
        .original(|s| s.len())
        .executor(executor.clone())
        .declare(&owner)
        .unwrap();
    let seen = Arc::new(Mutex::new(Vec::new()));
    let s = seen.clone();
    let _async = event
        .binding(move |arg: &String| {
            s.lock().unwrap().push(arg.clone());
            999
        })
        .guard(|arg| !arg.is_empty())
        .asynchronous()
        .install(&owner)
        .unwrap();
    // The result comes from the synchronous original only.
    assert_eq!(event.raise(&"hello".to_string()), Ok(5));
    assert_eq!(
        event.raise(&String::new()),
        Ok(0),
        "guard false: nothing queued"
    );
    assert!(seen.lock().unwrap().is_empty());
    assert_eq!(executor.pending(), 1);
    assert_eq!(executor.run_all(), 1);
    assert_eq!(*seen.lock().unwrap(), ["hello"]);
    let info = &event.bindings()[1];
    assert!(info.options.asynchronous);
    assert_eq!(info.calls, 1);
}

#[test]
fn all_async_means_deferred_or_default() {
    let owner = principal("As.Deferred");
    let executor = QueueExecutor::new();
    let (event, authority) = Event::<u32, u32>::builder("As.Deferred")
        .executor(executor.clone())
        .declare(&owner)
        .unwrap();
    let _a = event
        .binding(|&x| x)
        .asynchronous()
        .install(&owner)
        .unwrap();
    let _b = event
        .binding(|&x| x)
        .asynchronous()
        .install(&owner)
        .unwrap();
    assert_eq!(event.raise(&1), Err(RaiseError::Deferred));
    authority.set_default_result(77);
    assert_eq!(event.raise(&1), Ok(77));
    assert_eq!(executor.run_all(), 4);
}

#[test]
fn cancel_applies_to_async_bindings_when_their_guards_hold() {
    let owner = principal("As.Cancel");
    let executor = QueueExecutor::new();
    let (event, _authority) = Event::<u32, u32>::builder("As.Cancel")
        .original(|_| 1)
        .executor(executor.clone())
        .declare(&owner)
        .unwrap();
    let _c = event
        .binding(|_| 2)
        .first()
        .cancel()
        .asynchronous()
        .guard(|&x| x == 0)
        .install(&owner)
        .unwrap();
    assert_eq!(event.raise(&0), Err(RaiseError::Deferred));
    assert_eq!(event.raise(&1), Ok(1));
    assert_eq!(executor.run_all(), 1);
}

#[test]
fn missing_executor_is_an_error_before_anything_runs_then_global_executor() {
    let owner = principal("As.NoExecutor");
    let original_ran = Arc::new(AtomicU64::new(0));
    let o = original_ran.clone();
    let (event, _authority) = Event::<u32, u32>::builder("As.NoExecutor")
        .original(move |_| {
            o.fetch_add(1, Ordering::SeqCst);
            1
        })
        .declare(&owner)
        .unwrap();
    let _a = event.binding(|_| 2).asynchronous().install(&owner).unwrap();
    assert_eq!(event.raise(&0), Err(RaiseError::NoExecutor));
    assert_eq!(original_ran.load(Ordering::SeqCst), 0);

    // The only test in this process that installs the global executor.
    let global = QueueExecutor::new();
    let kernel = issuer().kernel_capability();
    set_global_executor(kernel, global.clone()).unwrap();
    assert!(set_global_executor(kernel, QueueExecutor::new()).is_err());
    assert_eq!(event.raise(&0), Ok(1));
    assert_eq!(global.run_all(), 1);
}

#[test]
fn async_events_dispatch_the_raise_time_snapshot_in_a_job() {
    let owner = principal("As.Event");
    let executor = QueueExecutor::new();
    let log = Arc::new(Mutex::new(Vec::new()));
    let l = log.clone();
    let (event, authority) = Event::<u32, ()>::builder("As.Event")
        .original(move |&x| l.lock().unwrap().push(("original", x)))
        .executor(executor.clone())
        .asynchronous()
        .declare(&owner)
        .unwrap();
    let l = log.clone();
    let _odd = event
        .binding(move |&x| l.lock().unwrap().push(("odd", x)))
        .guard(|&x| x % 2 == 1)
        .install(&owner)
        .unwrap();
    assert_eq!(event.raise(&1), Err(RaiseError::Deferred));
    // Installed after the raise: not part of that raise's dispatch.
    let l = log.clone();
    let late = event
        .binding(move |&x| l.lock().unwrap().push(("late", x)))
        .install(&owner)
        .unwrap();
    assert!(
        log.lock().unwrap().is_empty(),
        "nothing ran during the raise"
    );
    assert_eq!(executor.run_all(), 1);
    assert_eq!(*log.lock().unwrap(), [("original", 1), ("odd", 1)]);
    log.lock().unwrap().clear();

    authority.set_default_result(());
    assert_eq!(event.raise(&2), Ok(()));
    executor.run_all();
    assert_eq!(*log.lock().unwrap(), [("original", 2), ("late", 2)]);
    assert!(event.info().asynchronous);
    late.uninstall().unwrap();
}

#[test]
fn queued_jobs_keep_binding_objects_alive() {
    let owner = principal("As.Alive.Owner");
    let extension = principal("As.Alive.Ext");
    let executor = QueueExecutor::new();
    let (event, authority) = Event::<u32, ()>::builder("As.Alive")
        .original(|_| ())
        .executor(executor.clone())
        .declare(&owner)
        .unwrap();
    authority.set_authorizer(|_| Decision::Allow);
    drop(
        event
            .binding(|_| ())
            .asynchronous()
            .install(&extension)
            .unwrap(),
    );
    event.raise(&1).unwrap();
    event.raise(&2).unwrap();
    let revocation = issuer().revoke(&extension);
    assert_eq!(revocation.uninstalled, 1);
    assert_eq!(revocation.still_alive, 1, "two queued jobs hold the object");
    assert_eq!(executor.discard_all(), 2);
    // The table the revocation retired may still reference the object
    // while another test's raise is in progress on a loaded machine: wait
    // for its grace period, a bounded wait at a time.
    for _ in 0..100 {
        if extension.alive_binding_objects() == 0 {
            break;
        }
        dispatcher::read_side::synchronize();
    }
    assert_eq!(extension.alive_binding_objects(), 0);
}

#[test]
fn ephemeral_needs_a_quantum_and_a_clock() {
    let owner = principal("Tb.Needs");
    let (event, authority) = Event::<(), ()>::builder("Tb.Needs")
        .original(|_| ())
        .time_bounds(Arc::new(TimeBounds::new()))
        .declare(&owner)
        .unwrap();
    assert_eq!(
        event
            .binding(|_| ())
            .ephemeral()
            .install(&owner)
            .unwrap_err(),
        InstallError::NoQuantum
    );
    authority.set_quantum(Some(Micros(10)));
    assert_eq!(
        event
            .binding(|_| ())
            .ephemeral()
            .install(&owner)
            .unwrap_err(),
        InstallError::NoClock
    );
}

/// An event on a private table with a fake clock, and a log of overruns
/// reported to the authority.
struct Timed {
    event: Event<u64, u64>,
    authority: dispatcher::EventAuthority<u64, u64>,
    clock: Arc<FakeClock>,
    bounds: Arc<TimeBounds>,
    reported: Arc<Mutex<Vec<Overrun>>>,
}

fn timed(name: &str, quantum: u64) -> Timed {
    let owner = principal(name);
    let clock = FakeClock::new();
    let bounds = Arc::new(TimeBounds::with_clock(clock.clone()));
    let (event, authority) = Event::<u64, u64>::builder(name)
        .quantum(Micros(quantum))
        .time_bounds(bounds.clone())
        .declare(&owner)
        .unwrap();
    let reported = Arc::new(Mutex::new(Vec::new()));
    let r = reported.clone();
    authority.set_overrun_handler(move |overrun| r.lock().unwrap().push(overrun.clone()));
    Timed {
        event,
        authority,
        clock,
        bounds,
        reported,
    }
}

#[test]
fn quantum_is_recorded_at_install_time() {
    let t = timed("Tb.Recorded", 10);
    let owner = principal("Tb.Recorded.Installer");
    t.authority.set_authorizer(|_| Decision::Allow);
    let a = t.event.binding(|&x| x).ephemeral().install(&owner).unwrap();
    t.authority.set_quantum(Some(Micros(20)));
    let b = t.event.binding(|&x| x).ephemeral().install(&owner).unwrap();
    let plain = t.event.binding(|&x| x).install(&owner).unwrap();
    let infos = t.event.bindings();
    let quantum_of = |id| infos.iter().find(|i| i.id == id).unwrap().quantum;
    assert_eq!(quantum_of(a.id()), Some(Micros(10)));
    assert_eq!(quantum_of(b.id()), Some(Micros(20)));
    assert_eq!(quantum_of(plain.id()), None);
    assert!(
        infos
            .iter()
            .find(|i| i.id == a.id())
            .unwrap()
            .options
            .ephemeral
    );
}

#[test]
fn overrun_is_detected_when_the_handler_returns() {
    let t = timed("Tb.Return", 10);
    let owner = principal("Tb.Return.Installer");
    t.authority.set_authorizer(|_| Decision::Allow);
    let clock = t.clock.clone();
    let binding = t
        .event
        .binding(move |&ticks| {
            clock.advance(ticks);
            ticks
        })
        .ephemeral()
        .install(&owner)
        .unwrap();
    // Exactly the quantum is not an overrun.
    assert_eq!(t.event.raise(&10), Ok(10));
    assert!(t.reported.lock().unwrap().is_empty());
    assert_eq!(t.event.raise(&11), Ok(11));
    let reported = t.reported.lock().unwrap().clone();
    assert_eq!(reported.len(), 1);
    let overrun = &reported[0];
    assert_eq!(overrun.detected_by, Detection::Return);
    assert_eq!(overrun.binding, binding.id());
    assert_eq!(overrun.installer, owner.id());
    assert_eq!(&*overrun.event, "Tb.Return");
    assert_eq!(
        (overrun.started, overrun.deadline, overrun.observed_at),
        (Micros(10), Micros(20), Micros(21))
    );
    assert_eq!(t.event.bindings()[0].overruns, 1);
    assert_eq!(t.bounds.in_flight(), 0);
}

#[test]
fn timer_hook_called_from_inside_the_handler_reports_once() {
    let t = timed("Tb.Timer", 5);
    let owner = principal("Tb.Timer.Installer");
    t.authority.set_authorizer(|_| Decision::Allow);
    let (clock, bounds) = (t.clock.clone(), t.bounds.clone());
    let timer_reports = Arc::new(Mutex::new(Vec::new()));
    let tr = timer_reports.clone();
    let in_flight_inside = Arc::new(AtomicU64::new(0));
    let inside = in_flight_inside.clone();
    let _binding = t
        .event
        .binding(move |&ticks| {
            inside.store(bounds.in_flight() as u64, Ordering::SeqCst);
            // The "timer interrupt" fires while we run: first before the
            // deadline, then after it (twice).
            let now = clock.advance(3);
            assert_eq!(
                bounds.check_overruns(now, |o| tr.lock().unwrap().push(o.clone())),
                0
            );
            let now = clock.advance(ticks);
            let first = bounds.check_overruns(now, |o| tr.lock().unwrap().push(o.clone()));
            let again =
                bounds.check_overruns(Micros(now.0 + 1), |o| tr.lock().unwrap().push(o.clone()));
            (first * 10 + again) as u64
        })
        .ephemeral()
        .install(&owner)
        .unwrap();
    assert_eq!(t.event.raise(&10), Ok(10), "reported once, not again");
    assert_eq!(in_flight_inside.load(Ordering::SeqCst), 1);
    let timer_reports = timer_reports.lock().unwrap().clone();
    assert_eq!(timer_reports.len(), 1);
    assert_eq!(timer_reports[0].detected_by, Detection::Timer);
    assert_eq!(
        (
            timer_reports[0].started,
            timer_reports[0].deadline,
            timer_reports[0].observed_at
        ),
        (Micros(0), Micros(5), Micros(13))
    );
    // The authority heard of it once; the return check did not count it
    // a second time.
    assert_eq!(*t.reported.lock().unwrap(), timer_reports);
    assert_eq!(t.event.bindings()[0].overruns, 1);
    assert_eq!(t.bounds.in_flight(), 0);

    // A call within its quantum is never reported.
    assert_eq!(t.event.raise(&0), Ok(0));
    assert_eq!(t.event.bindings()[0].overruns, 1);
}

#[test]
fn timer_hook_on_another_thread_sees_a_running_handler() {
    let t = timed("Tb.Thread", 100);
    let owner = principal("Tb.Thread.Installer");
    t.authority.set_authorizer(|_| Decision::Allow);
    let entered = Arc::new(Barrier::new(2));
    let checked = Arc::new(Barrier::new(2));
    let (e, c) = (entered.clone(), checked.clone());
    let _binding = t
        .event
        .binding(move |&x| {
            e.wait();
            c.wait();
            x
        })
        .ephemeral()
        .install(&owner)
        .unwrap();
    let event = t.event.clone();
    let raiser = std::thread::spawn(move || event.raise(&1));
    entered.wait();
    assert_eq!(t.bounds.in_flight(), 1);
    assert_eq!(
        t.bounds.check_overruns(Micros(100), |_| ()),
        0,
        "deadline not passed"
    );
    let mut seen = Vec::new();
    assert_eq!(
        t.bounds
            .check_overruns(Micros(101), |o| seen.push(o.clone())),
        1
    );
    checked.wait();
    assert_eq!(raiser.join().unwrap(), Ok(1));
    assert_eq!(seen[0].detected_by, Detection::Timer);
    assert_eq!(t.reported.lock().unwrap().len(), 1);
    assert_eq!(t.event.bindings()[0].overruns, 1);
}

#[test]
fn a_full_in_flight_table_runs_calls_untracked() {
    let t = timed("Tb.Full", 1_000);
    let owner = principal("Tb.Full.Installer");
    t.authority.set_authorizer(|_| Decision::Allow);
    let event = t.event.clone();
    let max_in_flight = Arc::new(AtomicU64::new(0));
    let (m, bounds) = (max_in_flight.clone(), t.bounds.clone());
    // Two threads nest raises (each within the nesting limit) and meet at
    // the bottom, so that 71 calls are in flight at once.
    let bottom = Arc::new(std::sync::Barrier::new(2));
    let at_bottom = bottom.clone();
    let recursive = t
        .event
        .binding(move |&depth| {
            m.fetch_max(bounds.in_flight() as u64, Ordering::SeqCst);
            if depth > 0 {
                event.raise(&(depth - 1)).unwrap() + 1
            } else {
                at_bottom.wait();
                0
            }
        })
        .ephemeral()
        .install(&owner)
        .unwrap();
    let first = 40u64;
    let second = IN_FLIGHT_SLOTS as u64 + 6 - first - 1;
    assert!(first < dispatcher::MAX_RAISE_DEPTH && second < dispatcher::MAX_RAISE_DEPTH);
    let other = {
        let event = t.event.clone();
        std::thread::spawn(move || event.raise(&first))
    };
    assert_eq!(t.event.raise(&second), Ok(second));
    assert_eq!(other.join().unwrap(), Ok(first));
    assert_eq!(max_in_flight.load(Ordering::SeqCst), IN_FLIGHT_SLOTS as u64);
    assert_eq!(t.bounds.untracked(), 7);
    assert_eq!(t.bounds.in_flight(), 0);
    assert!(t.reported.lock().unwrap().is_empty());
    // The handler holds its own event: uninstalling breaks the cycle.
    recursive.uninstall().unwrap();
    drop(bottom);
}

#[test]
fn global_clock_and_timer_hook() {
    let owner = principal("Tb.Global");
    let clock = FakeClock::new();
    // The only test in this process that installs the global clock.
    let kernel = issuer().kernel_capability();
    time_bounds::set_clock(kernel, clock.clone()).unwrap();
    assert!(time_bounds::set_clock(kernel, FakeClock::new()).is_err());
    let (event, _authority) = Event::<(), ()>::builder("Tb.Global")
        .quantum(Micros(2))
        .declare(&owner)
        .unwrap();
    let c = clock.clone();
    let _binding = event
        .binding(move |_| {
            let now = c.advance(5);
            let mut mine = 0;
            time_bounds::check_overruns(kernel, now, |o| {
                if &*o.event == "Tb.Global" {
                    mine += 1;
                }
            });
            assert_eq!(mine, 1);
        })
        .ephemeral()
        .install(&owner)
        .unwrap();
    event.raise(&()).unwrap();
    assert_eq!(event.bindings()[0].overruns, 1);
}
