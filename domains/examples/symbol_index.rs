//! Times building a domain's symbol index from an ELF file's `.symtab`,
//! as the kernel does for itself at boot.
//!
//! ```text
//! cargo run --release -p domains --example symbol_index -- [ELF] [crate,crate,...]
//! ```
//!
//! `ELF` defaults to this program itself; the crate list (default
//! `core,alloc,compiler_builtins`) gives the filtered, SpinPublic-like
//! index. Run it under `qemu-x86_64` to estimate the cost under TCG.

use std::hint::black_box;
use std::time::{Duration, Instant};

use domains::{CrateFilter, Domain};

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
    let mut args = std::env::args().skip(1);
    let path = args.next().unwrap_or_else(|| "/proc/self/exe".to_string());
    let crates_arg = args
        .next()
        .unwrap_or_else(|| "core,alloc,compiler_builtins".to_string());
    let crates: Vec<&str> = crates_arg.split(',').collect();
    let elf: &'static [u8] = Box::leak(
        std::fs::read(&path)
            .unwrap_or_else(|e| panic!("{path}: {e}"))
            .into_boxed_slice(),
    );

    let all = Domain::create_from_module("all", elf, 0, &CrateFilter::all())
        .unwrap_or_else(|e| panic!("{path}: {e}"));
    let filter = CrateFilter::crates(&crates);
    let public = Domain::create_from_module("public", elf, 0, &filter).unwrap();
    let borrowed = Domain::create_from_static_module("all", elf, 0, &CrateFilter::all()).unwrap();
    let names: Vec<String> = all.exports().map(|(n, _)| n.to_string()).collect();

    let t_all = median(21, || {
        black_box(Domain::create_from_module("all", elf, 0, &CrateFilter::all()).unwrap());
    });
    let t_static = median(21, || {
        black_box(Domain::create_from_static_module("all", elf, 0, &CrateFilter::all()).unwrap());
    });
    let t_public = median(21, || {
        black_box(Domain::create_from_static_module("public", elf, 0, &filter).unwrap());
    });
    let rounds = 200_000;
    let t_lookup = median(5, || {
        for i in 0..rounds {
            black_box(all.lookup(&names[i % names.len()]));
        }
    });
    println!("{path}: {} bytes", elf.len());
    println!(
        "  all symbols:   {:6} indexed in {:8.3} ms ({:.0} ns/symbol, {} KiB)",
        all.export_count(),
        t_all.as_secs_f64() * 1e3,
        t_all.as_secs_f64() * 1e9 / all.export_count().max(1) as f64,
        all.memory() / 1024
    );
    println!(
        "  all, borrowed: {:6} indexed in {:8.3} ms ({:.0} ns/symbol, {} KiB)",
        borrowed.export_count(),
        t_static.as_secs_f64() * 1e3,
        t_static.as_secs_f64() * 1e9 / borrowed.export_count().max(1) as f64,
        borrowed.memory() / 1024
    );
    println!(
        "  crates {crates_arg} (borrowed): {:6} indexed in {:8.3} ms",
        public.export_count(),
        t_public.as_secs_f64() * 1e3
    );
    println!(
        "  lookup: {:.1} ns",
        t_lookup.as_secs_f64() * 1e9 / rounds as f64
    );
}
