//! Containment of faulty extensions: for each fixture of the hostile corpus
//! (`extensions/hostile/`), load it, trigger its fault, check that the
//! kernel names the extension and the reason and unloads it, and then, in
//! the same boot, that `hello` still loads and answers and that memory is
//! back at its baseline.

use std::time::{Duration, Instant};

use spindle_tests::*;

/// Boots and returns the session with its memory baseline.
fn boot_with_baseline() -> (Session, (String, String)) {
    let (mut session, _) = boot(Firmware::Bios);
    let baseline = memory_figures(&command(&mut session, "mem"));
    (session, baseline)
}

/// Boots, contains one `Clock.Tick` fault, and returns the session with
/// the memory figures after it. Revoking a failed extension's `Clock.Tick`
/// binding makes the dispatcher recompile that event's plan from scratch,
/// which sizes its step vector exactly (16 bytes less than the vector the
/// boot-time install grew); a second fault returns to that figure exactly,
/// so this is the baseline for faults that revoke `Clock.Tick` bindings.
fn boot_with_tick_baseline() -> (Session, (String, String)) {
    let (mut session, _) = boot(Firmware::Bios);
    load(&mut session, "panic-in-tick");
    command(&mut session, "panic-in-tick");
    wait_unloaded(&mut session, "panic-in-tick");
    let baseline = memory_figures(&command(&mut session, "mem"));
    (session, baseline)
}

/// Loads `name`, which must succeed.
fn load(session: &mut Session, name: &str) {
    let out = command(session, &format!("ext load {name}"));
    assert!(out.contains(&format!("loaded {name}:")), "{out}");
}

/// Whether `name` is loaded, from `ext list`.
fn is_loaded(session: &mut Session, name: &str) -> bool {
    let list = command(session, "ext list");
    list.lines()
        .any(|l| l.starts_with(&format!("{name} ")) && l.contains("loaded at"))
}

/// Waits until a fault contained outside the shell's raise (an interrupt,
/// a strand) has unloaded `name` and its memory is freed (an unload that
/// raises in progress delayed keeps the memory until they let go, and
/// `ext list` says so); returns what `faults` says after that.
fn wait_unloaded(session: &mut Session, name: &str) -> String {
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        let list = command(session, "ext list");
        let loaded = list
            .lines()
            .any(|l| l.starts_with(&format!("{name} ")) && l.contains("loaded at"));
        if !loaded && !list.contains("memory kept for unloaded extensions") {
            return command(session, "faults");
        }
        assert!(
            Instant::now() < deadline,
            "{name} still loaded:\n{}",
            session.output()
        );
        std::thread::sleep(Duration::from_millis(100));
    }
}

/// The kernel still serves: `hello` loads, answers and unloads, memory is
/// at `baseline`, and `shutdown` exits cleanly.
fn still_serving(mut session: Session, baseline: &(String, String)) {
    load(&mut session, "hello");
    let answer = command(&mut session, "hello");
    assert!(
        answer.contains("Hello from the hello extension!"),
        "{answer}"
    );
    assert!(command(&mut session, "ext unload hello").contains("unloaded hello"));
    assert_eq!(
        &memory_figures(&command(&mut session, "mem")),
        baseline,
        "memory not back at its baseline:\n{}",
        session.output()
    );
    session.send_line("shutdown").unwrap();
    let (exit, output) = session.wait_exit(COMMAND_TIMEOUT).expect("QEMU exits");
    assert_eq!(exit, KernelExit::Success, "{output}");
}

#[test]
fn a_panic_in_init_is_contained_and_the_load_undone() {
    let (mut session, baseline) = boot_with_baseline();
    let out = command(&mut session, "ext load panic-in-init");
    assert!(
        out.contains("error: cannot load panic-in-init: init panicked at")
            && out.contains("deliberate panic in init"),
        "{out}"
    );
    assert!(!is_loaded(&mut session, "panic-in-init"));
    still_serving(session, &baseline);
}

#[test]
fn a_panic_in_a_console_line_handler_is_contained_and_the_extension_unloaded() {
    let (mut session, baseline) = boot_with_baseline();
    load(&mut session, "panic-in-handler");
    let out = command(&mut session, "panic-in-handler now");
    assert!(
        out.contains(
            "error: 'panic-in-handler' abandoned: extension 'panic-in-handler' failed during Console.Line"
        ),
        "{out}"
    );
    assert!(
        out.contains("panicked at extensions/hostile/panic-in-handler/src/lib.rs:")
            && out.contains("deliberate panic in a Console.Line handler (1 argument(s))"),
        "{out}"
    );
    assert!(
        out.contains("extension 'panic-in-handler' unloaded (failed): 1 binding(s) revoked"),
        "{out}"
    );
    assert!(!is_loaded(&mut session, "panic-in-handler"));
    let faults = command(&mut session, "faults");
    assert!(
        faults.contains("1 extension fault(s) contained since boot"),
        "{faults}"
    );
    still_serving(session, &baseline);
}

#[test]
fn a_panic_in_a_clock_tick_handler_is_contained_in_the_interrupt() {
    let (mut session, baseline) = boot_with_tick_baseline();
    load(&mut session, "panic-in-tick");
    let armed = command(&mut session, "panic-in-tick");
    assert!(armed.contains("panic-in-tick: armed"), "{armed}");
    let seen = wait_unloaded(&mut session, "panic-in-tick");
    let output = session.output();
    assert!(
        output.contains("extension 'panic-in-tick' failed during Clock.Tick: panicked at extensions/hostile/panic-in-tick/src/lib.rs:")
            && output.contains("deliberate panic in a Clock.Tick handler at tick"),
        "{output}"
    );
    assert!(
        output.contains("panic_in_tick::on_tick+0x"),
        "no backtrace naming the handler:\n{output}"
    );
    assert!(
        output.contains("extension 'panic-in-tick' unloaded (failed): 2 binding(s) revoked"),
        "{output}"
    );
    // Marked failed at its first panic: reported once (the second of
    // this boot; the first was the baseline's).
    assert!(
        seen.contains("2 extension fault(s) contained since boot"),
        "{seen}"
    );
    still_serving(session, &baseline);
}

#[test]
fn a_report_printed_while_the_shell_waits_is_followed_by_the_prompt() {
    let (mut session, _) = boot(Firmware::Bios);
    load(&mut session, "panic-in-tick");
    command(&mut session, "panic-in-tick");
    // Printed from the timer interrupt and the reaper strand while the
    // shell waits for input; the shell prints its prompt again after it.
    session
        .wait_for_text(
            "extension 'panic-in-tick' unloaded (failed)",
            COMMAND_TIMEOUT,
        )
        .expect("the fault is contained");
    let after = session
        .wait_for_prompt(COMMAND_TIMEOUT)
        .expect("the prompt follows the report");
    assert!(!after.contains("spindle> spindle> "), "{after}");
    let out = command(&mut session, "uptime");
    assert!(out.starts_with("uptime\r\nup "), "{out}");
}

#[test]
fn a_panic_in_a_guard_is_contained_and_the_extension_unloaded() {
    let (mut session, baseline) = boot_with_baseline();
    load(&mut session, "panic-elsewhere");
    let out = command(&mut session, "panic-in-guard");
    assert!(
        out.contains("error: 'panic-in-guard' abandoned: extension 'panic-elsewhere' failed during Console.Line")
            && out.contains("deliberate panic in a Console.Line guard")
            && out.contains("panic_elsewhere::guard+0x")
            && out.contains("extension 'panic-elsewhere' unloaded (failed): 2 binding(s) revoked"),
        "{out}"
    );
    still_serving(session, &baseline);
}

#[test]
fn a_panic_in_an_asynchronous_handler_is_contained_in_its_strand() {
    let (mut session, baseline) = boot_with_baseline();
    load(&mut session, "panic-elsewhere");
    // The raise returns before the handler runs.
    command(&mut session, "panic-in-async two words");
    wait_unloaded(&mut session, "panic-elsewhere");
    let output = session.output();
    assert!(
        output.contains("extension 'panic-elsewhere' failed during an asynchronous handler: panicked at extensions/hostile/panic-elsewhere/src/lib.rs:")
            && output.contains("deliberate panic in an asynchronous handler (2 argument(s))")
            && output.contains("panic_elsewhere::in_strand+0x")
            && output.contains("extension 'panic-elsewhere' unloaded (failed)"),
        "{output}"
    );
    still_serving(session, &baseline);
}

#[test]
fn two_faults_at_once_are_both_contained_and_the_extension_unloaded_once() {
    let (mut session, baseline) = boot_with_tick_baseline();
    load(&mut session, "two-faults");
    let out = command(&mut session, "two-faults");
    // The shell's raise is abandoned whichever fault was reported first.
    assert!(
        out.contains(
            "error: 'two-faults' abandoned: extension 'two-faults' failed during Console.Line"
        ),
        "{out}"
    );
    let seen = wait_unloaded(&mut session, "two-faults");
    let output = session.output();
    assert!(
        output.contains("second fault: Clock.Tick handler at tick"),
        "{output}"
    );
    // The unload's line comes from the fault job's strand and may be
    // interleaved with the shell's own output: match its tail.
    assert_eq!(
        output.matches("two-faults' unloaded (failed)").count(),
        1,
        "{output}"
    );
    // The baseline's fault, then these two.
    assert!(
        seen.contains("3 extension fault(s) contained since boot"),
        "{seen}"
    );
    still_serving(session, &baseline);
}

#[test]
fn a_hundred_contained_panics_in_one_boot_leak_nothing() {
    let (mut session, baseline) = boot_with_baseline();
    for round in 0..100 {
        load(&mut session, "panic-in-handler");
        let out = command(&mut session, "panic-in-handler now");
        assert!(
            out.contains("extension 'panic-in-handler' unloaded (failed)"),
            "round {round}:\n{out}"
        );
    }
    let faults = command(&mut session, "faults");
    assert!(
        faults.contains("100 extension fault(s) contained since boot"),
        "{faults}"
    );
    still_serving(session, &baseline);
}

#[test]
fn an_endless_loop_in_a_handler_is_stopped_by_the_watchdog() {
    let (mut session, baseline) = boot_with_baseline();
    load(&mut session, "endless-loop");
    let out = command(&mut session, "endless-loop");
    assert!(
        out.contains(
            "error: 'endless-loop' abandoned: extension 'endless-loop' failed during Console.Line"
        ) && out.contains(
            "watchdog: extension code ran for 100 timer ticks without returning to the kernel"
        ) && out.contains("endless_loop::spin_forever+0x")
            && out.contains("extension 'endless-loop' unloaded (failed): 1 binding(s) revoked"),
        "{out}"
    );
    still_serving(session, &baseline);
}

#[test]
fn a_self_deadlock_on_a_spin_lock_is_stopped_by_the_watchdog() {
    let (mut session, baseline) = boot_with_baseline();
    load(&mut session, "self-deadlock");
    let out = command(&mut session, "self-deadlock");
    assert!(
        out.contains(
            "error: 'self-deadlock' abandoned: extension 'self-deadlock' failed during Console.Line"
        ) && out.contains("watchdog: extension code ran for 100 timer ticks")
            && out.contains("self_deadlock::bump_twice+0x")
            && out.contains("extension 'self-deadlock' unloaded (failed): 1 binding(s) revoked"),
        "{out}"
    );
    // The lock it left held died with it: a fresh load starts unlocked
    // and deadlocks (and is stopped) again.
    load(&mut session, "self-deadlock");
    let again = command(&mut session, "self-deadlock");
    assert!(
        again.contains("extension 'self-deadlock' unloaded (failed)"),
        "{again}"
    );
    still_serving(session, &baseline);
}

#[test]
fn unbounded_recursion_hits_the_guard_page_and_is_contained() {
    let (mut session, baseline) = boot_with_baseline();
    load(&mut session, "unbounded-recursion");
    let out = command(&mut session, "recurse");
    assert!(
        out.contains(
            "error: 'recurse' abandoned: extension 'unbounded-recursion' failed during Console.Line"
        ) && out.contains("stack overflow: extension code ran into the guard page at")
            && out.contains("unbounded_recursion::descend+0x")
            && out.contains(
                "extension 'unbounded-recursion' unloaded (failed): 1 binding(s) revoked"
            ),
        "{out}"
    );
    assert!(!out.contains("double fault"), "{out}");
    still_serving(session, &baseline);
}

#[test]
fn a_stack_overflow_in_a_clock_tick_handler_is_contained_in_the_interrupt() {
    let (mut session, baseline) = boot_with_tick_baseline();
    // Twice in one boot: the capture stack is free again after the first.
    for round in 1..=2 {
        load(&mut session, "overflow-in-tick");
        let armed = command(&mut session, "overflow-in-tick");
        assert!(armed.contains("overflow-in-tick: armed"), "{armed}");
        let seen = wait_unloaded(&mut session, "overflow-in-tick");
        let output = session.output();
        assert_eq!(
            output
                .matches("extension 'overflow-in-tick' failed during Clock.Tick: panicked at kernel-image/src/containment/watchdog.rs:")
                .count(),
            round,
            "{output}"
        );
        assert!(
            output.contains("stack overflow: extension code ran into the guard page at"),
            "{output}"
        );
        assert!(
            output.contains("overflow_in_tick::descend+0x"),
            "no backtrace naming the recursing function:\n{output}"
        );
        assert_eq!(
            output
                .matches("extension 'overflow-in-tick' unloaded (failed): 2 binding(s) revoked")
                .count(),
            round,
            "{output}"
        );
        assert!(
            !output.contains("double fault") && !output.contains("KERNEL PANIC"),
            "{output}"
        );
        // The baseline's fault, then one per round.
        assert!(
            seen.contains(&format!(
                "{} extension fault(s) contained since boot",
                round + 1
            )),
            "{seen}"
        );
    }
    still_serving(session, &baseline);
}

#[test]
fn unbounded_recursive_raising_is_stopped_by_the_nesting_limit() {
    let (mut session, baseline) = boot_with_baseline();
    load(&mut session, "recursive-raise");
    let out = command(&mut session, "recursive-raise");
    assert!(
        out.contains("recursive-raise: stopped at depth 63:")
            && out.contains("raises nested more than 64 deep (TooDeep)"),
        "{out}"
    );
    // Not a fault: the kernel's typed error ended it; the extension stays.
    assert!(is_loaded(&mut session, "recursive-raise"));
    assert!(
        command(&mut session, "ext unload recursive-raise").contains("unloaded recursive-raise")
    );
    still_serving(session, &baseline);
}

#[test]
fn an_endless_loop_in_a_clock_tick_handler_is_stopped_by_the_watchdog_inside_the_interrupt() {
    let (mut session, baseline) = boot_with_tick_baseline();
    load(&mut session, "endless-elsewhere");
    let armed = command(&mut session, "endless-tick");
    assert!(armed.contains("endless-elsewhere: armed"), "{armed}");
    let seen = wait_unloaded(&mut session, "endless-elsewhere");
    let output = session.output();
    assert!(
        output.contains("extension 'endless-elsewhere' failed during Clock.Tick: panicked at kernel-image/src/containment/watchdog.rs:")
            && output.contains(
                "watchdog: extension code ran for 100 timer ticks without returning to the kernel"
            ),
        "{output}"
    );
    assert!(
        output.contains("endless_elsewhere::loop_in_tick+0x"),
        "no backtrace naming the looping handler:\n{output}"
    );
    // Its three bindings are revoked at once; its memory is freed then, or,
    // if a tick's raise still held its handlers, once that raise let go
    // (`wait_unloaded` waits for that too).
    assert!(
        output.contains("extension 'endless-elsewhere' unloaded (failed): "),
        "{output}"
    );
    // The baseline's fault, then this one.
    assert!(
        seen.contains("2 extension fault(s) contained since boot"),
        "{seen}"
    );
    still_serving(session, &baseline);
}

#[test]
fn an_endless_loop_in_an_asynchronous_handler_is_stopped_by_the_watchdog_in_its_strand() {
    let (mut session, baseline) = boot_with_tick_baseline();
    load(&mut session, "endless-elsewhere");
    // The raise returns before the handler runs; the shell keeps serving
    // while the handler's strand loops (it is preempted).
    command(&mut session, "endless-async three more words");
    let seen = wait_unloaded(&mut session, "endless-elsewhere");
    let output = session.output();
    assert!(
        output.contains("extension 'endless-elsewhere' failed during an asynchronous handler: panicked at kernel-image/src/containment/watchdog.rs:")
            && output.contains(
                "watchdog: extension code ran for 100 timer ticks without returning to the kernel"
            )
            && output.contains("endless_elsewhere::loop_in_strand+0x")
            && output.contains("extension 'endless-elsewhere' unloaded (failed): "),
        "{output}"
    );
    assert!(
        seen.contains("2 extension fault(s) contained since boot"),
        "{seen}"
    );
    still_serving(session, &baseline);
}
