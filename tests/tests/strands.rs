//! Strands and scheduling through the shell: the policy in force decides
//! the shares `sched demo` measures, a busy strand does not starve the
//! shell, a stack overflow stops one strand only, and schedulers that
//! answer wrong or fail in `init` leave round-robin in force with every
//! strand and byte accounted for.

use std::time::{Duration, Instant};

use spindle_tests::*;

/// The number after `ratio ` in a `sched demo` report.
fn ratio(report: &str) -> f64 {
    let rest = &report[report
        .find("\nratio ")
        .unwrap_or_else(|| panic!("no ratio in:\n{report}"))
        + "\nratio ".len()..];
    let number: String = rest
        .chars()
        .take_while(|c| c.is_ascii_digit() || *c == '.')
        .collect();
    number
        .parse()
        .unwrap_or_else(|_| panic!("bad ratio in:\n{report}"))
}

/// All `sched demo` ratios in `output`, in order.
fn ratios(output: &str) -> Vec<f64> {
    output
        .match_indices("sched demo: ")
        .map(|(at, _)| ratio(&output[at..]))
        .collect()
}

fn assert_near(value: f64, target: f64, context: &str) {
    assert!(
        (value - target).abs() <= target * 0.10,
        "ratio {value} is not within 10% of {target}:\n{context}"
    );
}

#[test]
fn acceptance_pipeline_shows_the_events_the_strands_and_three_ratios() {
    let input = "events\nstrands\nsched demo 3 1\next load stride-sched\nsched demo 3 1\n\
                 ext unload stride-sched\nsched demo 3 1\nmem\nshutdown\n";
    let output = run_script(input, Duration::from_secs(120));
    for event in [
        "Strand.Block",
        "Strand.Unblock",
        "Strand.Checkpoint",
        "Strand.Resume",
        "Sched.PickNext",
    ] {
        assert!(
            output
                .lines()
                .any(|l| l.starts_with(event) && l.contains("kernel")),
            "{event} missing:\n{output}"
        );
    }
    for strand in ["shell*", "idle*", "reaper*"] {
        assert!(output.contains(strand), "{strand} missing:\n{output}");
    }
    let ratios = ratios(&output);
    assert_eq!(ratios.len(), 3, "{output}");
    assert_near(ratios[0], 1.0, &output);
    assert_near(ratios[1], 3.0, &output);
    assert_near(ratios[2], 1.0, &output);
    assert!(output.contains("under stride"), "{output}");
}

#[test]
fn stride_sched_unloads_back_to_round_robin_leaving_memory_as_it_was() {
    let (mut session, _) = boot(Firmware::Bios);
    let before = memory_figures(&command(&mut session, "mem"));
    let load = command(&mut session, "ext load stride-sched");
    assert!(load.contains("policy 'stride'"), "{load}");
    let sched = command(&mut session, "sched");
    assert!(sched.contains("policy in force: stride"), "{sched}");

    // A strand under stride when the extension goes: back to round-robin.
    let demo = command(&mut session, "sched demo 2 1");
    assert_near(ratio(&demo), 2.0, &demo);
    let unload = command(&mut session, "ext unload stride-sched");
    assert!(
        unload.contains("returned to round-robin") && unload.contains("unloaded stride-sched"),
        "{unload}"
    );
    let sched = command(&mut session, "sched");
    assert!(
        sched.contains("policy in force: round-robin") && !sched.contains("stride"),
        "{sched}"
    );
    let handlers = command(&mut session, "handlers Sched.PickNext");
    assert!(!handlers.contains("stride-sched"), "{handlers}");
    assert_eq!(memory_figures(&command(&mut session, "mem")), before);
}

#[test]
fn unloading_stride_sched_returns_the_strands_it_held_to_round_robin() {
    let (mut session, _) = boot(Firmware::Bios);
    let before = memory_figures(&command(&mut session, "mem"));
    command(&mut session, "ext load stride-sched");
    let ids: Vec<u64> = ["spawn spin 60 3", "spawn spin 60 1"]
        .iter()
        .map(|line| {
            let out = command(&mut session, line);
            assert!(out.contains("(spin, stride)"), "{out}");
            number_after(&out, "spawned strand").expect("strand id")
        })
        .collect();
    let sched = command(&mut session, "sched");
    let stride_row = sched
        .lines()
        .find(|l| l.split_whitespace().nth(1) == Some("stride"))
        .unwrap_or_else(|| panic!("{sched}"));
    for id in &ids {
        assert!(stride_row.contains(&format!("{id}(spin)")), "{sched}");
    }
    let unload = command(&mut session, "ext unload stride-sched");
    assert!(
        unload.contains("stride-sched: 2 strand(s) returned to round-robin"),
        "{unload}"
    );
    let strands = command(&mut session, "strands");
    for id in &ids {
        let row = strands
            .lines()
            .find(|l| l.split_whitespace().next() == Some(&id.to_string()))
            .unwrap_or_else(|| panic!("strand {id} lost:\n{strands}"));
        assert!(row.contains("round-robin"), "{row}");
    }
    let sched = command(&mut session, "sched");
    let rr_row = sched
        .lines()
        .find(|l| l.split_whitespace().nth(1) == Some("round-robin"))
        .unwrap_or_else(|| panic!("{sched}"));
    for id in &ids {
        assert_eq!(
            rr_row.matches(&format!(" {id}(spin)")).count(),
            1,
            "strand {id} not exactly once under round-robin:\n{sched}"
        );
    }
    for id in &ids {
        assert!(command(&mut session, &format!("kill {id}")).contains("killed strand"));
    }
    assert_eq!(memory_figures(&command(&mut session, "mem")), before);
}

#[test]
fn a_stack_overflow_stops_only_that_strand() {
    let (mut session, _) = boot(Firmware::Bios);
    let before = memory_figures(&command(&mut session, "mem"));
    let out = command(&mut session, "spawn overflow");
    let id = number_after(&out, "spawned strand").expect("strand id");
    assert!(
        out.contains(&format!(
            "strand {id} (overflow) overflowed its stack: guard page hit at 0xffffc"
        )) && out.contains("the others keep running")
            && out.contains(&format!("strand {id} is gone; the shell goes on")),
        "{out}"
    );
    let strands = command(&mut session, "strands");
    assert!(!strands.contains("overflow"), "{strands}");
    assert!(command(&mut session, "uptime").contains("timer ticks"));
    // A second one, to show the fault path is reusable.
    let again = command(&mut session, "spawn overflow");
    assert!(again.contains("overflowed its stack"), "{again}");
    assert_eq!(memory_figures(&command(&mut session, "mem")), before);
}

#[test]
fn a_busy_strand_does_not_starve_the_shell_and_can_be_killed() {
    let (mut session, _) = boot(Firmware::Bios);
    let before = memory_figures(&command(&mut session, "mem"));
    let out = command(&mut session, "spawn spin 60");
    let id = number_after(&out, "spawned strand").expect("strand id");
    let start = Instant::now();
    for _ in 0..5 {
        assert!(command(&mut session, "uptime").contains("timer ticks"));
    }
    assert!(
        start.elapsed() < Duration::from_secs(20),
        "the shell crawled beside a spinning strand: {:?} for 5 commands",
        start.elapsed()
    );
    let strands = command(&mut session, "strands");
    let row = strands
        .lines()
        .find(|l| l.split_whitespace().next() == Some(&id.to_string()))
        .unwrap_or_else(|| panic!("{strands}"));
    assert!(row.contains("spin") && row.contains("ready"), "{row}");
    let protected = command(&mut session, "kill 3");
    assert!(
        protected.contains("strand 3 is one of the kernel's essential strands"),
        "{protected}"
    );
    let killed = command(&mut session, &format!("kill {id}"));
    assert!(killed.contains(&format!("killed strand {id}")), "{killed}");
    let gone = command(&mut session, &format!("kill {id}"));
    assert!(gone.contains(&format!("no strand {id}")), "{gone}");
    assert_eq!(memory_figures(&command(&mut session, "mem")), before);
}

#[test]
fn a_scheduler_that_answers_wrong_is_overruled_and_loses_nothing() {
    let (mut session, _) = boot(Firmware::Bios);
    let before = memory_figures(&command(&mut session, "mem"));
    let load = command(&mut session, "ext load bad-sched");
    assert!(load.contains("loaded bad-sched"), "{load}");
    let demo = command(&mut session, "sched demo 3 1");
    assert!(demo.contains("under bad"), "{demo}");
    // Every answer refused: round-robin within the class, equal shares.
    assert_near(ratio(&demo), 1.0, &demo);
    let sched = command(&mut session, "sched");
    let row = sched
        .lines()
        .find(|l| l.split_whitespace().nth(1) == Some("bad"))
        .unwrap_or_else(|| panic!("{sched}"));
    let columns: Vec<&str> = row.split_whitespace().collect();
    assert_eq!(columns[4], "0", "a wrong answer was followed: {row}");
    assert!(
        columns[5].parse::<u64>().unwrap() > 20,
        "too few refusals: {row}"
    );
    let unload = command(&mut session, "ext unload bad-sched");
    assert!(unload.contains("unloaded bad-sched"), "{unload}");
    let strands = command(&mut session, "strands");
    assert!(
        strands.contains("shell*") && strands.contains("reaper*") && !strands.contains("demo"),
        "{strands}"
    );
    assert_eq!(memory_figures(&command(&mut session, "mem")), before);
}

#[test]
fn a_scheduler_failing_in_init_leaves_round_robin_in_force() {
    let (mut session, _) = boot(Firmware::Bios);
    let before = memory_figures(&command(&mut session, "mem"));
    let out = command(&mut session, "ext load sched-init-fails");
    assert!(
        out.contains("init failed: refusing to start after registering a policy"),
        "{out}"
    );
    let sched = command(&mut session, "sched");
    assert!(
        sched.contains("policy in force: round-robin") && !sched.contains("doomed"),
        "{sched}"
    );
    let handlers = command(&mut session, "handlers Sched.PickNext");
    assert!(!handlers.contains("sched-init-fails"), "{handlers}");
    let demo = command(&mut session, "sched demo 3 1");
    assert!(demo.contains("under round-robin"), "{demo}");
    assert_eq!(memory_figures(&command(&mut session, "mem")), before);
}

#[test]
fn the_tracer_counts_switches_per_strand() {
    let (mut session, _) = boot(Firmware::Bios);
    let before = memory_figures(&command(&mut session, "mem"));
    let load = command(&mut session, "ext load strand-tracer");
    assert!(load.contains("strand-tracer: counting switches"), "{load}");
    command(&mut session, "sched demo 1 1");
    let trace = command(&mut session, "trace");
    let shell = trace
        .lines()
        .find(|l| l.contains(" shell "))
        .unwrap_or_else(|| panic!("{trace}"));
    let switched_in: u64 = shell.split_whitespace().nth(2).unwrap().parse().unwrap();
    assert!(switched_in > 0, "{shell}");
    // The demo's strands are gone but were counted: preempted many times.
    let demo_rows: Vec<&str> = trace.lines().filter(|l| l.contains("(gone)")).collect();
    assert!(demo_rows.len() >= 2, "{trace}");
    assert!(
        demo_rows.iter().any(|row| {
            let preempted: u64 = row.split_whitespace().nth(3).unwrap().parse().unwrap();
            preempted > 20
        }),
        "{trace}"
    );
    let unload = command(&mut session, "ext unload strand-tracer");
    assert!(unload.contains("unloaded strand-tracer"), "{unload}");
    assert!(command(&mut session, "trace").contains("unknown command 'trace'"));
    assert_eq!(memory_figures(&command(&mut session, "mem")), before);
}
