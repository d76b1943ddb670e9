//! The in-kernel benchmarks through the shell: `bench baseline` prints the
//! call rows, the call from a loaded extension into the kernel among them;
//! `bench loading` prints every stage of loading a small, a medium and a
//! large extension; an unknown suite is refused with the list. Only that
//! the rows exist and that their figures are positive and finite is
//! checked: speed is measured, never asserted.

use std::time::Duration;

use spindle_tests::*;

/// The cycles median, the ratio and the comparison of the first row of
/// `suite` whose name contains `within` and ends with `name` (columns:
/// suite, name, cycles, min, max, runs, ratio, compared with).
fn row(output: &str, suite: &str, within: &str, name: &str) -> (f64, f64, String) {
    let line = output
        .lines()
        .find(|l| l.starts_with(suite) && l.contains(within) && l.contains(name))
        .unwrap_or_else(|| panic!("no row '{suite} {within} {name}' in:\n{output}"));
    let rest = &line[line.find(name).expect("found") + name.len()..];
    let tokens: Vec<&str> = rest.split_whitespace().collect();
    let numbers: Vec<f64> = tokens
        .iter()
        .take(5)
        .map(|t| {
            t.parse()
                .unwrap_or_else(|_| panic!("bad figure in: {line}"))
        })
        .collect();
    (numbers[0], numbers[4], tokens[5..].join(" "))
}

fn positive(value: f64, what: &str) {
    assert!(
        value.is_finite() && value > 0.0,
        "{what}: {value} is not a positive finite figure"
    );
}

#[test]
fn bench_prints_the_extension_call_and_every_load_stage_with_ratios() {
    let input = "bench baseline\nbench loading\nbench nosuch\next list\nshutdown\n";
    let output = run_script(input, Duration::from_secs(400));
    for name in [
        "direct call",
        "indirect call (fn pointer)",
        "kernel function (Principal::id) called by the kernel",
    ] {
        let (cycles, ratio, _) = row(&output, "baseline", "", name);
        positive(cycles, name);
        positive(ratio, name);
    }
    let (cycles, ratio, compared) = row(
        &output,
        "baseline",
        "",
        "the same, called from a loaded extension",
    );
    positive(cycles, "extension call");
    positive(ratio, "extension call");
    assert!(
        compared.starts_with("SPIN 0.13 us") && compared.contains("x the direct call"),
        "{compared}"
    );
    for subject in ["counter (small", "hello (medium", "event-source (large"] {
        for stage in [
            "verify",
            "parse",
            "resolve",
            "link",
            "map",
            "init",
            "load total",
            "unload",
        ] {
            let (cycles, ratio, compared) =
                row(&output, "loading", subject, &format!("): {stage} "));
            positive(cycles, stage);
            positive(ratio, stage);
            assert!(compared.ends_with("x copying the object"), "{compared}");
        }
    }
    assert!(
        output.contains("error: no suite 'nosuch'; suites: baseline ("),
        "{output}"
    );
    // The suites unloaded what they loaded.
    let listing = &output[output.rfind("ext list").expect("ext list ran")..];
    for name in ["bench-call", "counter", "hello", "event-source"] {
        let line = listing
            .lines()
            .find(|l| l.split_whitespace().next() == Some(name))
            .unwrap_or_else(|| panic!("{name} not listed:\n{listing}"));
        assert!(line.ends_with("available"), "{name} still loaded: {line}");
    }
}
