//! `cargo xtask bench`: boots the kernel, runs the in-kernel benchmark
//! suites (`bench` in the shell), runs the host criterion suite of the
//! dispatcher, and prints one report with SPIN's published figures beside
//! ours. Writes `target/bench/report.json` (fields documented in the
//! README), `target/bench/raise.svg` (raise cost against the number of
//! handlers, ours beside SPIN's, as ratios to a procedure call) and
//! `target/bench/guards.svg` (the cost guards add against their number).

use std::fmt::Write as _;
use std::fs;
use std::io::Cursor;
use std::path::Path;
use std::process::Command;
use std::time::Duration;

use plotters::prelude::*;
use serde_json::{Value, json};
use xtask::qemu::{Firmware, PipedOutcome, QemuOptions};
use xtask::workspace;

use crate::Failure;

/// SPIN's raise with the specialised stub, 0 arguments (OSDI'96), as a
/// ratio to its 0.10 µs procedure call: (handlers, ratio).
const SPIN_STUB_RATIOS: [(u32, f64); 4] = [(1, 2.3), (5, 4.1), (10, 6.3), (50, 24.8)];
/// The same without the stub ("plain" dispatch).
const SPIN_PLAIN_RATIOS: [(u32, f64); 4] = [(1, 3.7), (5, 11.8), (10, 21.5), (50, 116.9)];

/// SPIN's UDP round trip with 1 / 5 / 10 / 50 guards (OSDI'96: 475, 481,
/// 487, 530 µs): the cost the guards beyond the first added, in units of
/// its 0.10 µs procedure call: (guards, added cost).
const SPIN_GUARD_ADDED: [(u32, f64); 4] = [(1, 0.0), (5, 60.0), (10, 120.0), (50, 550.0)];

/// The in-kernel suites (`kernel-image/src/bench/mod.rs`, `SUITES`): a run
/// whose table lacks one of them failed.
const KERNEL_SUITES: [&str; 6] = [
    "baseline",
    "dispatch",
    "strands",
    "containment",
    "vm",
    "loading",
];

/// One in-kernel row as the shell printed it.
struct KernelRow {
    suite: String,
    name: String,
    cycles: f64,
    min: f64,
    max: f64,
    runs: u32,
    ratio: f64,
    compared: Option<String>,
}

/// Parses the table `bench` prints (fixed-width columns, see
/// `kernel-image/src/bench/mod.rs`).
fn parse_kernel_table(output: &str) -> (Vec<KernelRow>, Option<f64>) {
    let mut rows = Vec::new();
    let mut unit = None;
    let mut inside = false;
    for line in output.lines() {
        let line = line.trim_end_matches('\r');
        if line.starts_with("SUITE ") {
            inside = true;
            continue;
        }
        if line.starts_with("cycles: ") {
            inside = false;
            unit = line
                .rsplit_once("boot (")
                .and_then(|(_, rest)| rest.split_whitespace().next())
                .and_then(|v| v.parse().ok());
            continue;
        }
        if !inside {
            continue;
        }
        // SUITE NAME... CYCLES MIN MAX RUNS RATIO [COMPARED WITH...]: the
        // name may hold spaces and single numbers, the five figures are the
        // first run of five numbers after it.
        let tokens: Vec<&str> = line.split_whitespace().collect();
        let numeric = |t: &&str| t.parse::<f64>().is_ok();
        let Some(at) =
            (2..tokens.len().saturating_sub(4)).find(|&i| tokens[i..i + 5].iter().all(numeric))
        else {
            continue;
        };
        let suite = tokens[0].to_string();
        let name = tokens[1..at].join(" ");
        let values: Vec<f64> = tokens[at..at + 5]
            .iter()
            .filter_map(|v| v.parse().ok())
            .collect();
        let rest = tokens[at + 5..].join(" ");
        let compared = (!rest.is_empty()).then_some(rest);
        if let [cycles, min, max, runs, ratio] = values[..] {
            rows.push(KernelRow {
                suite,
                name,
                cycles,
                min,
                max,
                runs: runs as u32,
                ratio,
                compared,
            });
        }
    }
    (rows, unit)
}

/// Boots the BIOS image and runs every suite (`bench`) in its shell; the
/// in-kernel suites take the same time with and without `--quick`.
fn run_kernel_suites(image: &Path) -> Result<String, Failure> {
    let options = QemuOptions::new(image, Firmware::Bios, crate::scratch_dir());
    let input = "bench\nshutdown\n";
    let (outcome, output) = xtask::qemu::run_piped(
        &options,
        Cursor::new(input),
        Duration::from_secs(420),
        false,
    )
    .map_err(|e| Failure::new(format!("booting the benchmark kernel: {e}")))?;
    match outcome {
        PipedOutcome::Exited(_) | PipedOutcome::InputEnded => Ok(output),
        PipedOutcome::Timeout => Err(Failure::new(
            "the in-kernel benchmarks did not finish in 420 s",
        )),
    }
}

/// The cargo command that builds or runs the dispatcher's criterion suite.
fn host_suite_command(mut cargo: Command) -> Command {
    cargo.args(["bench", "-p", "dispatcher", "--bench", "dispatch"]);
    cargo
}

/// Compiles the dispatcher's criterion suite without running it. It builds
/// in the `bench` profile (`target/release`), whose lock no kernel build
/// takes, so it runs beside the kernel's build; its output is shown only if
/// it fails. It gives way to the kernel's build ([`crate::cargo_beside`]).
fn build_host_suite() -> Result<(), Failure> {
    let output = host_suite_command(crate::cargo_beside())
        .arg("--no-run")
        .output()
        .map_err(|e| Failure::new(format!("running cargo bench --no-run: {e}")))?;
    if output.status.success() {
        Ok(())
    } else {
        Err(Failure::new(format!(
            "building the dispatcher's criterion suite failed ({}):\n{}",
            output.status,
            String::from_utf8_lossy(&output.stderr)
        )))
    }
}

/// Runs the dispatcher's criterion suite and reads the table it writes.
fn run_host_suite(quick: bool) -> Result<Value, Failure> {
    let mut cmd = host_suite_command(crate::cargo());
    if quick {
        cmd.env("DISPATCH_BENCH_QUICK", "1");
    }
    crate::run_checked(&mut cmd)?;
    let path = workspace::target_dir().join("dispatch-bench.json");
    let text =
        fs::read_to_string(&path).map_err(|e| Failure::new(format!("{}: {e}", path.display())))?;
    serde_json::from_str(&text).map_err(|e| Failure::new(format!("{}: {e}", path.display())))
}

/// In-kernel ratio of "raise, 0 args, N handler(s)".
fn kernel_raise_ratios(rows: &[KernelRow]) -> Vec<(u32, f64)> {
    [1u32, 5, 10, 50]
        .into_iter()
        .filter_map(|n| {
            let name = format!("raise, 0 args, {n} handler(s)");
            rows.iter().find(|r| r.name == name).map(|r| (n, r.ratio))
        })
        .collect()
}

/// In-kernel cost the guards beyond the first add to a raise over n
/// bindings whose guards are all false: ratio(n guards) - ratio(1 guard),
/// in indirect calls.
fn kernel_guard_added(rows: &[KernelRow]) -> Vec<(u32, f64)> {
    let ratio = |n: u32| {
        let name = format!("raise, {n} guard(s) all false");
        rows.iter().find(|r| r.name == name).map(|r| r.ratio)
    };
    let Some(one) = ratio(1) else {
        return Vec::new();
    };
    [1u32, 5, 10, 50]
        .into_iter()
        .filter_map(|n| Some((n, ratio(n)? - one)))
        .collect()
}

/// Host ratio (to an indirect call) of Table 1's 0-argument rows.
fn host_raise_ratios(host: &Value) -> Vec<(u32, f64)> {
    host["table1"]
        .as_array()
        .into_iter()
        .flatten()
        .filter(|row| row["args"] == 0)
        .filter_map(|row| {
            Some((
                row["handlers"].as_u64()? as u32,
                row["ratio_to_call"].as_f64()?,
            ))
        })
        .collect()
}

/// One line of the plot: its label, its (handlers, ratio) points, its colour.
type Series<'a> = (&'a str, &'a [(u32, f64)], RGBColor);

/// What a plot shows: its caption and axis labels.
struct Axes<'a> {
    caption: &'a str,
    x: &'a str,
    y: &'a str,
}

fn plot(path: &Path, axes: &Axes<'_>, series: &[Series<'_>]) -> Result<(), Failure> {
    let fail =
        |e: &dyn std::fmt::Display| Failure::new(format!("plotting {}: {e}", path.display()));
    let top = series
        .iter()
        .flat_map(|(_, points, _)| points.iter().map(|&(_, y)| y))
        .fold(1.0f64, f64::max)
        * 1.1;
    let root = SVGBackend::new(path, (800, 500)).into_drawing_area();
    root.fill(&WHITE).map_err(|e| fail(&e))?;
    let mut chart = ChartBuilder::on(&root)
        .caption(axes.caption, ("sans-serif", 20))
        .margin(15)
        .x_label_area_size(40)
        .y_label_area_size(50)
        .build_cartesian_2d(0u32..52u32, 0f64..top)
        .map_err(|e| fail(&e))?;
    chart
        .configure_mesh()
        .x_desc(axes.x)
        .y_desc(axes.y)
        .draw()
        .map_err(|e| fail(&e))?;
    for &(label, points, color) in series {
        chart
            .draw_series(LineSeries::new(
                points.iter().copied(),
                color.stroke_width(2),
            ))
            .map_err(|e| fail(&e))?
            .label(label)
            .legend(move |(x, y)| PathElement::new(vec![(x, y), (x + 20, y)], color));
        chart
            .draw_series(points.iter().map(|&p| Circle::new(p, 3, color.filled())))
            .map_err(|e| fail(&e))?;
    }
    chart
        .configure_series_labels()
        .background_style(WHITE.mix(0.8))
        .border_style(BLACK)
        .draw()
        .map_err(|e| fail(&e))?;
    root.present().map_err(|e| fail(&e))?;
    Ok(())
}

/// `cargo xtask bench [--quick]`.
pub fn run(quick: bool, release: bool) -> Result<(), Failure> {
    crate::setup::ensure_toolchain()?;
    crate::setup::ensure_qemu()?;
    eprintln!("xtask: building the host criterion suite (dispatcher) beside the kernel...");
    let (image, host_suite_built) = crate::side_by_side(
        || crate::images::make_bench_image(release),
        build_host_suite,
    );
    let image = image?;
    host_suite_built?;
    eprintln!("xtask: booting the kernel for the in-kernel suites (TCG)...");
    let output = run_kernel_suites(&image)?;
    let (rows, unit) = parse_kernel_table(&output);
    let missing: Vec<&str> = KERNEL_SUITES
        .into_iter()
        .filter(|suite| !rows.iter().any(|r| r.suite == *suite))
        .collect();
    if !missing.is_empty() {
        return Err(Failure::new(format!(
            "the kernel's benchmark table lacks the suite(s) {}; its output:\n{output}",
            missing.join(", ")
        )));
    }
    eprintln!("xtask: running the host criterion suite (dispatcher)...");
    let host = run_host_suite(quick)?;

    let mut out = String::new();
    let _ = writeln!(
        out,
        "\nIn-kernel (QEMU TCG; cycles = TSC cycles per operation, median of runs; ratio = to an indirect call in the same boot{})\n",
        unit.map_or(String::new(), |u| format!(", {u:.1} cycles"))
    );
    let _ = writeln!(
        out,
        "{:<11} {:<46} {:>10} {:>23} {:>4} {:>8}   compared with (SPIN: µs at 133 MHz, cycles, ratio to its procedure call)",
        "suite", "benchmark", "cycles", "spread (min - max)", "runs", "ratio"
    );
    for row in &rows {
        let _ = writeln!(
            out,
            "{:<11} {:<46} {:>10.1} {:>23} {:>4} {:>8.2}   {}",
            row.suite,
            row.name,
            row.cycles,
            format!("{:.1} - {:.1}", row.min, row.max),
            row.runs,
            row.ratio,
            row.compared.as_deref().unwrap_or("—")
        );
    }
    let _ = writeln!(
        out,
        "\nHost-native (criterion medians, ns) and the dispatch targets\n"
    );
    for target in host["targets"].as_array().into_iter().flatten() {
        let _ = writeln!(
            out,
            "{:<44} {:>10} {:<46} {}",
            target["benchmark"].as_str().unwrap_or(""),
            target["ns"]
                .as_f64()
                .map_or("—".into(), |v| format!("{v:.2}")),
            target["derived"].as_str().unwrap_or(""),
            match target["met"].as_bool() {
                Some(true) => "met",
                Some(false) => "NOT met",
                None => "",
            }
        );
    }
    print!("{out}");

    let dir = workspace::target_dir().join("bench");
    fs::create_dir_all(&dir).map_err(|e| Failure::new(format!("{}: {e}", dir.display())))?;
    let kernel_json: Vec<Value> = rows
        .iter()
        .map(|r| {
            json!({
                "suite": r.suite, "benchmark": r.name, "cycles_median": r.cycles,
                "cycles_min": r.min, "cycles_max": r.max, "runs": r.runs,
                "ratio_to_indirect_call": r.ratio, "compared_with": r.compared,
            })
        })
        .collect();
    let report = json!({
        "quick": quick,
        "kernel": {
            "environment": "QEMU TCG, TSC cycles (host cycles spent emulating)",
            "indirect_call_cycles": unit,
            "rows": kernel_json,
        },
        "host": host,
        "spin": {
            "machine": "DEC Alpha 3000/400, 133 MHz",
            "procedure_call_us": {"args0": 0.10, "args5": 0.14},
            "raise_stub_ratio_args0": SPIN_STUB_RATIOS.iter().map(|&(n, r)| json!({"handlers": n, "ratio": r})).collect::<Vec<_>>(),
            "raise_plain_ratio_args0": SPIN_PLAIN_RATIOS.iter().map(|&(n, r)| json!({"handlers": n, "ratio": r})).collect::<Vec<_>>(),
            "guard_added_ratio": SPIN_GUARD_ADDED.iter().map(|&(n, r)| json!({"guards": n, "added": r})).collect::<Vec<_>>(),
        },
    });
    let json_path = dir.join("report.json");
    fs::write(
        &json_path,
        serde_json::to_string_pretty(&report).unwrap_or_default(),
    )
    .map_err(|e| Failure::new(format!("{}: {e}", json_path.display())))?;
    let ours_kernel = kernel_raise_ratios(&rows);
    let ours_host = host_raise_ratios(&host);
    let svg = dir.join("raise.svg");
    plot(
        &svg,
        &Axes {
            caption: "Event raise: cost / procedure call vs handlers (0 args)",
            x: "handlers",
            y: "ratio to a procedure call",
        },
        &[
            ("Spindle, in-kernel (TCG)", &ours_kernel, BLUE),
            ("Spindle, host-native", &ours_host, GREEN),
            ("SPIN, specialised stub", &SPIN_STUB_RATIOS, RED),
            ("SPIN, plain dispatch", &SPIN_PLAIN_RATIOS, MAGENTA),
        ],
    )?;
    let ours_guards = kernel_guard_added(&rows);
    let guards_svg = dir.join("guards.svg");
    plot(
        &guards_svg,
        &Axes {
            caption: "Guards: cost added beyond the first guard (all false)",
            x: "guarded bindings",
            y: "added cost / procedure call",
        },
        &[
            ("Spindle, in-kernel raise (TCG)", &ours_guards, BLUE),
            ("SPIN, UDP round trip (OSDI'96)", &SPIN_GUARD_ADDED, RED),
        ],
    )?;
    println!(
        "\nwrote {}, {} and {}",
        json_path.display(),
        svg.display(),
        guards_svg.display()
    );
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn guard_costs_are_taken_relative_to_one_guard() {
        let row = |n: u32, ratio: f64| KernelRow {
            suite: "dispatch".into(),
            name: format!("raise, {n} guard(s) all false"),
            cycles: 0.0,
            min: 0.0,
            max: 0.0,
            runs: 1,
            ratio,
            compared: None,
        };
        let rows = [row(1, 3.0), row(5, 7.5), row(50, 53.0)];
        assert_eq!(kernel_guard_added(&rows), [(1, 0.0), (5, 4.5), (50, 50.0)]);
        assert!(kernel_guard_added(&rows[1..]).is_empty());
    }

    #[test]
    fn parses_the_kernel_table() {
        let out = "\
SUITE       BENCHMARK                                        CYCLES        MIN        MAX  RUNS    RATIO  COMPARED WITH (published: us, cycles, ratio to its call)
baseline    direct call                                        29.0       28.0       31.0    31     0.76  SPIN 0.10 us, 13 cyc, 1.00x
dispatch    raise, 0 args, 5 handler(s)                       310.5      300.0      400.0    21     8.17  
loading     hello (medium, 246 KB): verify                 100000.0    90000.0   120000.0     7  2631.58  40.1x copying the object
cycles: TSC cycles per operation, median (min, max) of the runs (TCG: host cycles spent emulating); ratio: to an indirect call in this boot (38.0 cycles)
";
        let (rows, unit) = parse_kernel_table(out);
        assert_eq!(unit, Some(38.0));
        assert_eq!(rows.len(), 3);
        assert_eq!(rows[0].name, "direct call");
        assert_eq!(rows[0].runs, 31);
        assert_eq!(
            rows[0].compared.as_deref(),
            Some("SPIN 0.10 us, 13 cyc, 1.00x")
        );
        assert_eq!(rows[1].name, "raise, 0 args, 5 handler(s)");
        assert_eq!(rows[1].cycles, 310.5);
        assert_eq!(rows[1].ratio, 8.17);
        assert!(rows[1].compared.is_none());
        assert_eq!(rows[2].suite, "loading");
        assert_eq!(rows[2].name, "hello (medium, 246 KB): verify");
        assert_eq!(
            rows[2].compared.as_deref(),
            Some("40.1x copying the object")
        );
    }
}
