//! Host-native costs of the run-time linker:
//!
//! * parse, plan and link of a realistic extension object (the
//!   `ext_basic` fixture built for `x86_64-unknown-none`), per object and
//!   per relocation;
//! * building the symbol index of a large ELF (this benchmark binary's own
//!   `.symtab`, as the kernel does with its own at boot), unfiltered and
//!   filtered by crate;
//! * one O(1) lookup, in that large domain and in a tiny one.
//!
//! A short summary is printed at the end.

use std::collections::HashMap;
use std::hint::black_box;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant};

use criterion::{Criterion, Throughput};
use domains::{CrateFilter, Domain, FnResolver, Limits, LinkOptions, Object, SegmentBases};

const PUBLIC: &[&str] = &["core", "alloc", "std", "compiler_builtins"];

/// Builds the fixture extension for the kernel target with the pinned rustc.
fn fixture_object() -> Vec<u8> {
    let rustc = PathBuf::from(env!("CARGO")).with_file_name("rustc");
    let manifest = Path::new(env!("CARGO_MANIFEST_DIR"));
    let out = std::env::temp_dir().join(format!("domains-bench-{}", std::process::id()));
    std::fs::create_dir_all(&out).unwrap();
    let obj = out.join("ext_basic.o");
    let status = Command::new(&rustc)
        .current_dir(manifest)
        .args([
            "--edition=2024",
            "--crate-type=lib",
            "--crate-name=ext_basic",
            "--target=x86_64-unknown-none",
            "-Ccodegen-units=1",
            "-Copt-level=2",
            "-Cpanic=abort",
            "--emit=obj",
            "-o",
        ])
        .arg(&obj)
        .arg(manifest.join("tests/fixtures/ext_basic.rs"))
        .status()
        .expect("run rustc");
    assert!(status.success(), "fixture build failed");
    let bytes = std::fs::read(&obj).unwrap();
    let _ = std::fs::remove_dir_all(&out);
    bytes
}

const BASES: SegmentBases = SegmentBases {
    text: 0xffff_8000_4000_0000,
    rodata: 0xffff_8000_4010_0000,
    data: 0xffff_8000_4020_0000,
};

fn fake_kernel(object: &Object<'_>) -> HashMap<String, u64> {
    object
        .imports()
        .enumerate()
        .map(|(i, imp)| (imp.name.to_string(), 0xffff_8000_0000_0000 + 16 * i as u64))
        .collect()
}

/// Median of `runs` timings of `f`.
fn median(runs: usize, mut f: impl FnMut()) -> Duration {
    let mut t: Vec<Duration> = (0..runs)
        .map(|_| {
            let s = Instant::now();
            f();
            s.elapsed()
        })
        .collect();
    t.sort();
    t[runs / 2]
}

fn main() {
    let mut c = Criterion::default().configure_from_args();
    let bytes = fixture_object();
    let limits = Limits::default();
    let object = Object::parse(&bytes, &limits).unwrap();
    let relocs = object.relocation_count() as u64;
    let kernel = fake_kernel(&object);
    let resolver = FnResolver::new("kernel", |n| kernel.get(n).copied());
    let options = LinkOptions::default();

    {
        let mut g = c.benchmark_group("extension");
        g.bench_function("parse", |b| {
            b.iter(|| Object::parse(black_box(&bytes), &limits).unwrap())
        });
        g.bench_function("plan", |b| b.iter(|| object.plan(&options).unwrap()));
        let plan = object.plan(&options).unwrap();
        g.throughput(Throughput::Elements(relocs));
        g.bench_function("link (per relocation)", |b| {
            b.iter(|| plan.link(black_box(BASES), &resolver).unwrap())
        });
        g.throughput(Throughput::Elements(1));
        g.bench_function("parse+plan+link (per object)", |b| {
            b.iter(|| {
                let o = Object::parse(black_box(&bytes), &limits).unwrap();
                let p = o.plan(&options).unwrap();
                p.link(BASES, &resolver).unwrap()
            })
        });
        g.finish();
    }

    let exe: &'static [u8] = Box::leak(std::fs::read("/proc/self/exe").unwrap().into_boxed_slice());
    let all = Domain::create_from_module("kernel", exe, 0, &CrateFilter::all()).unwrap();
    let n_all = all.export_count();
    let public_filter = CrateFilter::crates(PUBLIC);
    let strict_filter = CrateFilter::crates(PUBLIC).strict(true);
    let public = Domain::create_from_module("SpinPublic", exe, 0, &public_filter).unwrap();
    let tiny = Domain::from_exports("tiny", [("memcpy", 1), ("memset", 2), ("memmove", 3)]);
    let present: Vec<String> = all
        .exports()
        .step_by((n_all / 64).max(1))
        .map(|(n, _)| n.to_string())
        .collect();
    {
        let mut g = c.benchmark_group("symbol index");
        g.throughput(Throughput::Elements(n_all as u64));
        g.bench_function("build, all symbols", |b| {
            b.iter(|| {
                Domain::create_from_module("kernel", black_box(exe), 0, &CrateFilter::all())
                    .unwrap()
            })
        });
        g.bench_function("build, all symbols, names borrowed", |b| {
            b.iter(|| {
                Domain::create_from_static_module("kernel", black_box(exe), 0, &CrateFilter::all())
                    .unwrap()
            })
        });
        g.bench_function("build, filtered by crate", |b| {
            b.iter(|| {
                Domain::create_from_module("SpinPublic", black_box(exe), 0, &public_filter).unwrap()
            })
        });
        g.bench_function("build, filtered strictly", |b| {
            b.iter(|| {
                Domain::create_from_module("SpinPublic", black_box(exe), 0, &strict_filter).unwrap()
            })
        });
        g.throughput(Throughput::Elements(1));
        let mut i = 0;
        g.bench_function("lookup hit (large domain)", |b| {
            b.iter(|| {
                i = (i + 1) % present.len();
                all.lookup(black_box(&present[i])).is_some()
            })
        });
        g.bench_function("lookup miss (large domain)", |b| {
            b.iter(|| all.lookup(black_box("_RNvCs0_7missing6symbol")).is_none())
        });
        g.bench_function("lookup hit (3-symbol domain)", |b| {
            b.iter(|| tiny.lookup(black_box("memmove")).is_some())
        });
        g.finish();
    }
    c.final_summary();

    // The short summary, from our own medians.
    let plan = object.plan(&options).unwrap();
    let t_parse = median(201, || {
        black_box(Object::parse(&bytes, &limits).unwrap());
    });
    let t_link = median(201, || {
        black_box(plan.link(BASES, &resolver).unwrap());
    });
    let t_all = median(201, || {
        let o = Object::parse(&bytes, &limits).unwrap();
        let p = o.plan(&options).unwrap();
        black_box(p.link(BASES, &resolver).unwrap());
    });
    let t_index = median(21, || {
        black_box(Domain::create_from_module("kernel", exe, 0, &CrateFilter::all()).unwrap());
    });
    let t_static = median(21, || {
        black_box(
            Domain::create_from_static_module("kernel", exe, 0, &CrateFilter::all()).unwrap(),
        );
    });
    let t_public = median(21, || {
        black_box(Domain::create_from_module("SpinPublic", exe, 0, &public_filter).unwrap());
    });
    let lookups = 1_000_000;
    let t_lookup = median(11, || {
        for k in 0..lookups {
            black_box(all.lookup(&present[k % present.len()]));
        }
    });
    println!();
    println!("domains link benchmark summary (host-native, median)");
    println!(
        "  extension object: {} bytes, {} relocations, {} imports, {} GOT slots",
        bytes.len(),
        relocs,
        object.imports().count(),
        plan.got_slots()
    );
    println!(
        "  parse:                      {:>9.1} us",
        t_parse.as_secs_f64() * 1e6
    );
    println!(
        "  link:                       {:>9.1} us  ({:.1} ns per relocation)",
        t_link.as_secs_f64() * 1e6,
        t_link.as_secs_f64() * 1e9 / relocs as f64
    );
    println!(
        "  parse+plan+link per object: {:>9.1} us",
        t_all.as_secs_f64() * 1e6
    );
    println!(
        "  symbol index, {} symbols from a {:.1} MiB ELF: {:.2} ms ({:.0} ns/symbol, {} KiB)",
        n_all,
        exe.len() as f64 / (1 << 20) as f64,
        t_index.as_secs_f64() * 1e3,
        t_index.as_secs_f64() * 1e9 / n_all as f64,
        all.memory() / 1024
    );
    println!(
        "  same, names borrowed from the ELF: {:.2} ms ({:.0} ns/symbol)",
        t_static.as_secs_f64() * 1e3,
        t_static.as_secs_f64() * 1e9 / n_all as f64
    );
    println!(
        "  crate-filtered index ({} public symbols): {:.2} ms",
        public.export_count(),
        t_public.as_secs_f64() * 1e3
    );
    println!(
        "  lookup: {:.1} ns (large domain, hit)",
        t_lookup.as_secs_f64() * 1e9 / lookups as f64
    );
}
