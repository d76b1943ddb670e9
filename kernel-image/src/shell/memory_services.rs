//! Built-in commands about the memory services: `phys` (PhysAddr: free
//! frames, watermark, owners; `phys squeeze N` runs the revocation
//! protocol on demand) and `vm` (VirtAddr ranges and Translation mappings).

use alloc::string::String;
use alloc::vec::Vec;

use phys_addr::{Phase, ReclaimReply};

use super::Command;
use crate::println;

pub const COMMANDS: &[Command] = &[
    Command {
        name: "phys",
        usage: "phys [squeeze N | watermark N]",
        help: "PhysAddr: free frames, watermark, owners; squeeze: reclaim N frames now",
        run: phys,
    },
    Command {
        name: "vm",
        usage: "vm [NAME | kernel]",
        help: "VirtAddr ranges and Translation mappings (of one owner)",
        run: vm,
    },
];

fn number(word: Option<&&str>) -> Result<u64, String> {
    let word = word.ok_or_else(|| String::from("missing number"))?;
    word.parse()
        .map_err(|_| alloc::format!("'{word}' is not a number"))
}

fn phys(args: &[&str]) -> Result<(), String> {
    match args.first().copied() {
        None => {
            list();
            Ok(())
        }
        Some("squeeze") if args.len() == 2 => squeeze(number(args.get(1))?),
        Some("watermark") if args.len() == 2 => {
            let frames = number(args.get(1))?;
            phys_addr::set_watermark(crate::events::capability(), frames);
            println!("watermark: {frames} free frames");
            Ok(())
        }
        Some(other) => Err(alloc::format!("unknown phys subcommand '{other}'")),
    }
}

fn list() {
    let stats = crate::memory::frames::stats();
    let owners = phys_addr::owners();
    let tracked: u64 = owners.iter().map(|o| o.frames).sum();
    println!(
        "frames: {} usable, {} used, {} free; watermark {}; {} guaranteed per owner",
        stats.usable,
        stats.used(),
        stats.free,
        phys_addr::watermark(),
        phys_addr::GUARANTEED_FRAMES
    );
    println!(
        "  {:<20} {:>8} {:>8} {:>12} {:>12}",
        "owner", "frames", "pinned", "allocations", "repossessed"
    );
    println!(
        "  {:<20} {:>8} {:>8} {:>12} {:>12}",
        "kernel (own use)",
        stats.used() - tracked,
        "-",
        "-",
        "-"
    );
    for owner in owners {
        println!(
            "  {:<20} {:>8} {:>8} {:>12} {:>12}",
            owner.name, owner.frames, owner.pinned, owner.allocations, owner.repossessed
        );
    }
}

fn squeeze(wanted: u64) -> Result<(), String> {
    let free_before = crate::memory::frames::stats().free;
    let report = phys_addr::reclaim(crate::events::capability(), wanted)
        .map_err(|e| alloc::format!("{e}"))?;
    let free_after = crate::memory::frames::stats().free;
    println!(
        "phys squeeze: {} frames wanted, owners asked to give back by a {} ms deadline",
        report.wanted,
        report.deadline_ns / 1_000_000
    );
    if report.demands.is_empty() {
        println!("  nobody holds frames that could be reclaimed");
    }
    for (demand, reply) in report.demands.iter().zip(&report.replies) {
        let answer = match reply {
            ReclaimReply::Released(n) => alloc::format!("released {n}"),
            ReclaimReply::Refused => String::from("refused"),
        };
        println!(
            "  asked {:<12} for {:>5} frames: answered {:<13} gave back {:>5}, repossessed {:>5}",
            demand.name,
            demand.asked,
            answer,
            demand.released.min(demand.asked),
            demand.repossessed
        );
    }
    let gave: Vec<&str> = report
        .demands
        .iter()
        .filter(|d| d.released > 0)
        .map(|d| d.name.as_str())
        .collect();
    let taken: Vec<&str> = report
        .demands
        .iter()
        .filter(|d| d.repossessed > 0)
        .map(|d| d.name.as_str())
        .collect();
    let phase = match report.phase {
        Phase::Satisfied => "every owner gave back its share in time",
        Phase::Aborted => "abort protocol ran",
        Phase::Asking => "still asking",
    };
    println!(
        "  gave back: {}; repossessed: {} ({phase})",
        if gave.is_empty() {
            String::from("nobody")
        } else {
            gave.join(", ")
        },
        if taken.is_empty() {
            String::from("nobody")
        } else {
            taken.join(", ")
        },
    );
    println!(
        "  recovered {} frames; free frames {free_before} -> {free_after}",
        report
            .demands
            .iter()
            .map(|d| d.released.min(d.asked) + d.repossessed)
            .sum::<u64>()
    );
    Ok(())
}

fn vm(args: &[&str]) -> Result<(), String> {
    let filter = args.first().copied();
    if filter == Some("kernel") || filter.is_none() {
        let layout = crate::memory::layout::HEAP_START;
        println!("kernel ranges:");
        println!(
            "  {:#018x}  heap ({} KiB)",
            layout,
            crate::memory::heap::stats().size / 1024
        );
        println!(
            "  {:#018x}..{:#018x}  strand stacks (2 MiB slots)",
            crate::memory::layout::STRAND_STACKS_START,
            crate::memory::layout::STRAND_STACKS_END
        );
        println!(
            "  {:#018x}..{:#018x}  VirtAddr image zone (extension images)",
            virt_addr::IMAGE_REGION.start,
            virt_addr::IMAGE_REGION.end
        );
        println!(
            "  {:#018x}..{:#018x}  VirtAddr data zone",
            virt_addr::REGION.start,
            virt_addr::REGION.end
        );
        if filter == Some("kernel") {
            return Ok(());
        }
    }
    let ranges: Vec<_> = virt_addr::ranges()
        .into_iter()
        .filter(|r| filter.is_none_or(|name| r.owner_name == name))
        .collect();
    println!(
        "VirtAddr ranges{}:",
        filter
            .map(|f| alloc::format!(" of {f}"))
            .unwrap_or_default()
    );
    if ranges.is_empty() {
        println!("  none");
    }
    for range in &ranges {
        let mappings = translation::mappings_of(range);
        println!(
            "  range {:<4} {:<12} {:<5} {:#018x}  {:>6} pages  {:>6} mapped",
            range.id.as_u64(),
            range.owner_name,
            range.zone.name(),
            range.base,
            range.pages,
            mappings.len()
        );
        if filter.is_some() {
            let runs = runs(&mappings);
            for run in runs.iter().take(MAX_RUNS_SHOWN) {
                println!(
                    "      {:#018x}..{:#018x} {} {:>5} page(s) -> frames {:#012x}.. (allocation {})",
                    run.start, run.end, run.protection, run.pages, run.first_frame, run.allocation
                );
            }
            if runs.len() > MAX_RUNS_SHOWN {
                println!("      ... {} more", runs.len() - MAX_RUNS_SHOWN);
            }
        }
    }
    let c = translation::fault_counts();
    println!(
        "faults: {} not-present, {} protection, {} bad-address; {} resolved, {} unresolved",
        c.not_present, c.protection, c.bad_address, c.resolved, c.unresolved
    );
    Ok(())
}

/// Runs of mappings listed per range by `vm NAME`.
const MAX_RUNS_SHOWN: usize = 16;

/// Consecutive pages mapped to consecutive frames of one allocation with
/// one protection: one line of `vm NAME`.
struct Run {
    start: u64,
    end: u64,
    pages: u64,
    first_frame: u64,
    allocation: u64,
    protection: translation::Protection,
}

fn runs(mappings: &[translation::Mapping<dispatcher::PrincipalId>]) -> Vec<Run> {
    let mut runs: Vec<Run> = Vec::new();
    for m in mappings {
        let frame = m.frame.start_address();
        if let Some(run) = runs.last_mut()
            && run.end == m.page
            && run.protection == m.protection
            && run.allocation == m.allocation.as_u64()
            && run.first_frame + run.pages * virt_addr::PAGE_SIZE == frame
        {
            run.end += virt_addr::PAGE_SIZE;
            run.pages += 1;
            continue;
        }
        runs.push(Run {
            start: m.page,
            end: m.page + virt_addr::PAGE_SIZE,
            pages: 1,
            first_frame: frame,
            allocation: m.allocation.as_u64(),
            protection: m.protection,
        });
    }
    runs
}
