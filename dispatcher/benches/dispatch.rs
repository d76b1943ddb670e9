//! Dispatch latency benchmarks (criterion), native on the host.
//!
//! `cargo bench -p dispatcher` runs every benchmark, then prints one table
//! with the issue's targets and OSDI'96 Table 1 beside SPIN's figures, and
//! writes it as JSON to `<target>/dispatch-bench.json`. Set
//! `DISPATCH_BENCH_QUICK=1` for a short run (well under a minute); the
//! figures are then noisier.
//!
//! Every loop consumes the raise's `Result` the way a caller would
//! (`unwrap_or` / `is_ok`) and passes a word to `black_box`, like the
//! indirect-call baselines do with the handler's return value.

use std::fmt::Write as _;
use std::hint::black_box;
use std::path::PathBuf;
use std::time::Duration;

use criterion::{BenchmarkId, Criterion};
use dispatcher::{Event, Principal, PrincipalIssuer};

type Five = (u64, u64, u64, u64, u64);
type FiveHandler = fn(&Five) -> u64;

fn handler_u64(x: &u64) -> u64 {
    x.wrapping_add(1)
}

fn handler_unit(_: &()) {}

fn handler_five(&(a, b, c, d, e): &Five) -> u64 {
    a ^ b ^ c ^ d ^ e
}

/// A unique event name per benchmark (events are registered by name).
fn name(tag: &str) -> String {
    format!("Bench.{tag}")
}

fn baselines(c: &mut Criterion) {
    let mut group = c.benchmark_group("baseline");
    let f: fn(&u64) -> u64 = handler_u64;
    group.bench_function("indirect_call_u64", |b| {
        let f = black_box(f);
        b.iter(|| black_box(f(black_box(&7))))
    });
    let f: fn(&()) = handler_unit;
    group.bench_function("indirect_call_0args", |b| {
        let f = black_box(f);
        b.iter(|| f(black_box(&())))
    });
    let f: fn(&Five) -> u64 = handler_five;
    group.bench_function("indirect_call_5args", |b| {
        let f = black_box(f);
        b.iter(|| black_box(f(black_box(&(1, 2, 3, 4, 5)))))
    });
    // The floor for n handlers: a flat array of n function pointers called
    // in a loop (what a raise with n unguarded handlers cannot beat).
    for n in [1usize, 5, 10, 50] {
        let table: Box<[fn(&())]> = vec![handler_unit as fn(&()); n].into_boxed_slice();
        group.bench_function(BenchmarkId::new("flat_loop_0args", n), |b| {
            let table = black_box(&table);
            b.iter(|| {
                for f in table.iter() {
                    f(black_box(&()));
                }
            })
        });
        let table: Box<[FiveHandler]> = vec![handler_five as FiveHandler; n].into_boxed_slice();
        group.bench_function(BenchmarkId::new("flat_loop_5args", n), |b| {
            let table = black_box(&table);
            b.iter(|| {
                let mut last = 0;
                for f in table.iter() {
                    last = f(black_box(&(1, 2, 3, 4, 5)));
                }
                black_box(last)
            })
        });
    }
    group.finish();
}

fn raises(c: &mut Criterion, owner: &Principal) {
    let mut group = c.benchmark_group("raise");

    let (event, _authority) =
        Event::<u64, u64>::declare(&name("OriginalOnly"), owner, handler_u64).unwrap();
    group.bench_function("original_only", |b| {
        b.iter(|| black_box(event.raise(black_box(&7)).unwrap_or(0)))
    });

    let (event, _authority) = Event::<u64, u64>::builder(&name("OneBinding"))
        .declare(owner)
        .unwrap();
    let _binding = event.install(owner, handler_u64).unwrap();
    group.bench_function("one_binding", |b| {
        b.iter(|| black_box(event.raise(black_box(&7)).unwrap_or(0)))
    });

    let (event, _authority) = Event::<u64, u64>::builder(&name("Guards50"))
        .default_result(0)
        .declare(owner)
        .unwrap();
    let _guarded: Vec<_> = (0..50u64)
        .map(|i| {
            event
                .binding(handler_u64)
                .guard(move |&x| x == i + 1000)
                .install(owner)
                .unwrap()
        })
        .collect();
    group.bench_function("guards_50_false", |b| {
        b.iter(|| black_box(event.raise(black_box(&7)).unwrap_or(0)))
    });

    let (event, _authority) = Event::<u64, u64>::builder(&name("Guard1"))
        .default_result(0)
        .declare(owner)
        .unwrap();
    let _guarded = event
        .binding(handler_u64)
        .guard(|&x| x == 1000)
        .install(owner)
        .unwrap();
    group.bench_function("guard_1_false", |b| {
        b.iter(|| black_box(event.raise(black_box(&7)).unwrap_or(0)))
    });

    let (event, _authority) = Event::<u64, u64>::builder(&name("Keyed1000"))
        .key(|&k| k)
        .declare(owner)
        .unwrap();
    let _keyed: Vec<_> = (0..1000u64)
        .map(|k| event.binding(handler_u64).key(k).install(owner).unwrap())
        .collect();
    group.bench_function("keyed_1000_one_match", |b| {
        b.iter(|| black_box(event.raise(black_box(&500)).unwrap_or(0)))
    });
    group.finish();
}

fn install_uninstall(c: &mut Criterion, owner: &Principal) {
    let mut group = c.benchmark_group("install_uninstall");
    for present in [10usize, 100, 1000] {
        let (event, _authority) =
            Event::<u64, u64>::declare(&name(&format!("Install{present}")), owner, handler_u64)
                .unwrap();
        let _present: Vec<_> = (0..present)
            .map(|_| event.install(owner, handler_u64).unwrap())
            .collect();
        group.bench_with_input(BenchmarkId::from_parameter(present), &present, |b, _| {
            b.iter(|| {
                let binding = event.install(owner, handler_u64).unwrap();
                binding.uninstall().unwrap();
            })
        });
    }
    group.finish();
}

/// OSDI'96 Table 1: n handlers = the original plus n - 1 bindings.
fn table1(c: &mut Criterion, owner: &Principal) {
    let mut group = c.benchmark_group("table1");
    for handlers in [1usize, 5, 10, 50] {
        let (event, _a0) =
            Event::<(), ()>::declare(&name(&format!("T1.Args0.H{handlers}")), owner, handler_unit)
                .unwrap();
        let _b0: Vec<_> = (1..handlers)
            .map(|_| event.install(owner, handler_unit).unwrap())
            .collect();
        group.bench_function(BenchmarkId::new("args0", handlers), |b| {
            b.iter(|| black_box(event.raise(black_box(&())).is_ok()))
        });
        let (event, _a5) = Event::<Five, u64>::declare(
            &name(&format!("T1.Args5.H{handlers}")),
            owner,
            handler_five,
        )
        .unwrap();
        let _b5: Vec<_> = (1..handlers)
            .map(|_| event.install(owner, handler_five).unwrap())
            .collect();
        group.bench_function(BenchmarkId::new("args5", handlers), |b| {
            b.iter(|| black_box(event.raise(black_box(&(1, 2, 3, 4, 5))).unwrap_or(0)))
        });
    }
    group.finish();
}

/// Where criterion writes its results (same rule as criterion itself).
fn criterion_dir() -> PathBuf {
    if let Some(home) = std::env::var_os("CRITERION_HOME") {
        return PathBuf::from(home);
    }
    target_dir().join("criterion")
}

fn target_dir() -> PathBuf {
    match std::env::var_os("CARGO_TARGET_DIR") {
        Some(dir) => PathBuf::from(dir),
        None => PathBuf::from(env!("CARGO_MANIFEST_DIR"))
            .join("..")
            .join("target"),
    }
}

/// The median time (ns) of one benchmark, from criterion's estimates.json.
fn median_ns(id: &str) -> Option<f64> {
    let path = criterion_dir().join(id).join("new").join("estimates.json");
    let text = std::fs::read_to_string(path).ok()?;
    let median = &text[text.find("\"median\"")?..];
    let value = &median[median.find("\"point_estimate\":")? + "\"point_estimate\":".len()..];
    let end = value.find([',', '}'])?;
    value[..end].trim().parse().ok()
}

/// SPIN on a 133 MHz Alpha: (handlers, 0 args plain, 0 args stub, 5 args
/// plain, 5 args stub) in µs; `None` where the paper gives no figure.
type SpinRow = (usize, Option<f64>, Option<f64>, Option<f64>, Option<f64>);
const SPIN_TABLE1: [SpinRow; 4] = [
    (1, Some(0.37), Some(0.23), Some(0.97), Some(0.42)),
    (5, Some(1.18), Some(0.41), None, None),
    (10, Some(2.15), Some(0.63), Some(2.88), Some(1.32)),
    (50, Some(11.69), Some(2.48), Some(14.45), Some(5.65)),
];
const SPIN_PROCEDURE_CALL: (f64, f64) = (0.10, 0.14);
const SPIN_MHZ: f64 = 133.0;

fn fmt_ns(value: Option<f64>) -> String {
    value.map_or_else(|| "—".into(), |v| format!("{v:.2}"))
}

fn fmt_spin(value: Option<f64>) -> String {
    value.map_or_else(
        || "—".into(),
        |us| format!("{us:.2} µs ({:.0} cyc)", us * SPIN_MHZ),
    )
}

fn verdict(met: Option<bool>) -> &'static str {
    match met {
        Some(true) => "met",
        Some(false) => "NOT met",
        None => "not measured",
    }
}

fn json_number(value: Option<f64>) -> String {
    value.map_or_else(|| "null".into(), |v| format!("{v:.4}"))
}

/// One line of the targets table.
struct Row {
    label: String,
    ns: Option<f64>,
    derived: String,
    target: Option<&'static str>,
    met: Option<bool>,
}

fn report() {
    let m = median_ns;
    let ratio = |a: Option<f64>, b: Option<f64>| Some(a? / b?);
    let base_u64 = m("baseline/indirect_call_u64");
    let base0 = m("baseline/indirect_call_0args");
    let base5 = m("baseline/indirect_call_5args");
    let original = m("raise/original_only");
    let one = m("raise/one_binding");
    let guards = m("raise/guards_50_false");
    let keyed = m("raise/keyed_1000_one_match");
    let installs: Vec<(usize, Option<f64>)> = [10, 100, 1000]
        .into_iter()
        .map(|n| (n, m(&format!("install_uninstall/{n}"))))
        .collect();

    let guard1 = m("raise/guard_1_false");
    let flat = |args: usize, n: usize| m(&format!("baseline/flat_loop_{args}args/{n}"));
    let mut rows = vec![
        Row {
            label: "indirect call via fn pointer (u64 arg)".into(),
            ns: base_u64,
            derived: "baseline".into(),
            target: None,
            met: None,
        },
        Row {
            label: "raise, original handler only".into(),
            ns: original,
            derived: format!("{} x indirect call", fmt_ns(ratio(original, base_u64))),
            target: Some("<= 1.2 x indirect call"),
            met: ratio(original, base_u64).map(|r| r <= 1.2),
        },
        Row {
            label: "raise, 1 unguarded binding".into(),
            ns: one,
            derived: format!("{} x indirect call", fmt_ns(ratio(one, base_u64))),
            target: Some("<= 1.5 x indirect call"),
            met: ratio(one, base_u64).map(|r| r <= 1.5),
        },
        Row {
            label: "raise, 1 binding whose guard is false".into(),
            ns: guard1,
            derived: format!("{} x indirect call", fmt_ns(ratio(guard1, base_u64))),
            target: Some("<= 1.2 x indirect call"),
            met: ratio(guard1, base_u64).map(|r| r <= 1.2),
        },
        Row {
            label: "raise, 50 guarded bindings all false".into(),
            ns: guards,
            derived: format!(
                "{} ns = {} x indirect call per guard",
                fmt_ns(guards.map(|g| g / 50.0)),
                fmt_ns(ratio(guards.map(|g| g / 50.0), base_u64))
            ),
            target: Some("<= 1.2 x indirect call per guard"),
            met: ratio(guards.map(|g| g / 50.0), base_u64).map(|r| r <= 1.2),
        },
        Row {
            label: "raise, 1000 keyed bindings, one matching".into(),
            ns: keyed,
            derived: format!(
                "{} x 1-binding raise; {} x original-only",
                fmt_ns(ratio(keyed, one)),
                fmt_ns(ratio(keyed, original))
            ),
            target: Some("<= 2 x one-binding raise"),
            met: ratio(keyed, one).map(|k| k <= 2.0),
        },
    ];
    for args in [0usize, 5] {
        for n in [1usize, 5, 10, 50] {
            let floor = flat(args, n);
            rows.push(Row {
                label: format!("flat loop of {n} indirect calls, {args} args"),
                ns: floor,
                derived: "floor".into(),
                target: None,
                met: None,
            });
            if n == 1 {
                continue;
            }
            let ours = m(&format!("table1/args{args}/{n}"));
            let bound = floor.map(|f| 1.2 * f + 1.0);
            rows.push(Row {
                label: format!("raise, {n} handlers, {args} args"),
                ns: ours,
                derived: format!(
                    "{} x flat loop; bound {} ns",
                    fmt_ns(ratio(ours, floor)),
                    fmt_ns(bound)
                ),
                target: Some("<= 1.2 x flat loop + 1 ns"),
                met: match (ours, bound) {
                    (Some(o), Some(b)) => Some(o <= b),
                    _ => None,
                },
            });
        }
    }
    let growth = match (installs[0].1, installs[2].1) {
        (Some(a), Some(b)) => Some((b / a).ln() / 100f64.ln()),
        _ => None,
    };
    for &(n, ns) in &installs {
        let (derived, target, met) = match n {
            1000 => (
                format!("growth exponent 10->1000: {}", fmt_ns(growth)),
                Some("linear or better (exponent <= 1.1)"),
                growth.map(|g| g <= 1.1),
            ),
            _ => (String::new(), None, None),
        };
        rows.push(Row {
            label: format!("install + uninstall, {n} present"),
            ns,
            derived,
            target,
            met,
        });
    }

    let mut out = String::new();
    let mut json_rows = Vec::new();
    let _ = writeln!(
        out,
        "\nDispatcher benchmarks (host-native, criterion medians, ns)\n"
    );
    let _ = writeln!(
        out,
        "{:<42} {:>8}  {:<44} {:<35} verdict",
        "benchmark", "ns", "derived", "target"
    );
    for row in &rows {
        let _ = writeln!(
            out,
            "{:<42} {:>8}  {:<44} {:<35} {}",
            row.label,
            fmt_ns(row.ns),
            row.derived,
            row.target.unwrap_or("—"),
            row.target.map_or("", |_| verdict(row.met))
        );
        json_rows.push(format!(
            "    {{\"benchmark\": {:?}, \"ns\": {}, \"derived\": {:?}, \"target\": {}, \"met\": {}}}",
            row.label,
            json_number(row.ns),
            row.derived,
            row.target.map_or("null".into(), |t| format!("{t:?}")),
            row.met.map_or("null".into(), |m| m.to_string())
        ));
    }

    let _ = writeln!(
        out,
        "\nOSDI'96 Table 1 reproduced: n handlers = original + (n-1) unguarded bindings.\n\
         Ours: ns, and ratio to our indirect call with the same arguments.\n\
         SPIN: DEC Alpha 3000/400, 133 MHz; µs (cycles) for plain dispatch and the specialised stub;\n\
         SPIN ratio = stub / SPIN procedure call. No target: 'speed-up' = SPIN stub time / ours.\n"
    );
    let header = format!(
        "{:<24} {:>8} {:>7}   {:<20} {:<20} {:>10}  speed-up",
        "row", "ours ns", "ratio", "SPIN plain", "SPIN stub", "SPIN ratio"
    );
    let _ = writeln!(out, "{header}");
    let mut table_rows = Vec::new();
    for (args, base, spin_call) in [
        (0, base0, SPIN_PROCEDURE_CALL.0),
        (5, base5, SPIN_PROCEDURE_CALL.1),
    ] {
        let _ = writeln!(
            out,
            "{:<24} {:>8} {:>7}   {:<20} {:<20} {:>10}",
            format!("procedure call, {args} args"),
            fmt_ns(base),
            "1.00",
            fmt_spin(Some(spin_call)),
            fmt_spin(Some(spin_call)),
            "1.00"
        );
        for &(handlers, p0, s0, p5, s5) in &SPIN_TABLE1 {
            let (plain, stub) = if args == 0 { (p0, s0) } else { (p5, s5) };
            let ours = m(&format!("table1/args{args}/{handlers}"));
            let our_ratio = ratio(ours, base);
            let spin_ratio = stub.map(|s| s / spin_call);
            let speedup = match (ours, stub) {
                (Some(ns), Some(us)) => Some(us * 1000.0 / ns),
                _ => None,
            };
            let _ = writeln!(
                out,
                "{:<24} {:>8} {:>7}   {:<20} {:<20} {:>10}  {}",
                format!("{handlers} handler(s), {args} args"),
                fmt_ns(ours),
                fmt_ns(our_ratio),
                fmt_spin(plain),
                fmt_spin(stub),
                fmt_ns(spin_ratio),
                speedup.map_or(String::new(), |x| format!("{x:.0}x"))
            );
            table_rows.push(format!(
                "    {{\"args\": {args}, \"handlers\": {handlers}, \"ns\": {}, \"ratio_to_call\": {}, \
                 \"spin_plain_us\": {}, \"spin_stub_us\": {}, \"spin_stub_ratio\": {}, \"speedup_vs_spin_stub\": {}}}",
                json_number(ours),
                json_number(our_ratio),
                json_number(plain),
                json_number(stub),
                json_number(spin_ratio),
                json_number(speedup)
            ));
        }
    }
    let json = format!(
        "{{\n  \"unit\": \"ns (criterion median)\",\n  \"procedure_call_ns\": {{\"u64\": {}, \"args0\": {}, \"args5\": {}}},\n  \
         \"targets\": [\n{}\n  ],\n  \"table1\": [\n{}\n  ]\n}}\n",
        json_number(base_u64),
        json_number(base0),
        json_number(base5),
        json_rows.join(",\n"),
        table_rows.join(",\n")
    );
    print!("{out}");
    let path = target_dir().join("dispatch-bench.json");
    match std::fs::write(&path, json) {
        Ok(()) => println!("\n(table written to {})", path.display()),
        Err(error) => println!("\n(could not write {}: {error})", path.display()),
    }
}

fn main() {
    let args: Vec<String> = std::env::args().collect();
    let listing_or_testing = args.iter().any(|a| a == "--list" || a == "--test");
    // 10,000 bootstrap resamples (the default is 100,000) for the
    // confidence intervals criterion prints; the rows are medians.
    let mut criterion = Criterion::default().nresamples(10_000);
    if std::env::var_os("DISPATCH_BENCH_QUICK").is_some() {
        criterion = criterion
            .warm_up_time(Duration::from_millis(300))
            .measurement_time(Duration::from_millis(700))
            .sample_size(20);
    } else {
        // 100 samples in 1.5 s: medians settle well before the default 5 s.
        criterion = criterion
            .warm_up_time(Duration::from_millis(500))
            .measurement_time(Duration::from_millis(1500));
    }
    let mut criterion = criterion.configure_from_args();

    let issuer = PrincipalIssuer::take().expect("the benchmark process takes the issuer");
    let owner = issuer.issue("bench");
    baselines(&mut criterion);
    raises(&mut criterion, &owner);
    install_uninstall(&mut criterion, &owner);
    table1(&mut criterion, &owner);
    criterion.final_summary();
    if !listing_or_testing {
        report();
    }
}
