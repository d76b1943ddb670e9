//! Built-in commands about strands and scheduling: list them, spawn demo
//! workloads, kill one, show the policies, and measure a policy's shares.

use alloc::string::{String, ToString};
use alloc::sync::Arc;
use alloc::vec::Vec;
use core::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use core::time::Duration;

use strand::{PolicyId, PolicyInfo, StrandId, StrandInfo};

use super::Command;
use crate::{println, strands, time};

pub const COMMANDS: &[Command] = &[
    Command {
        name: "strands",
        usage: "strands",
        help: "every strand: id, name, state, owner, policy, CPU time, switches",
        run: list,
    },
    Command {
        name: "spawn",
        usage: "spawn spin SECONDS [TICKETS] | sleep SECONDS | overflow",
        help: "start a demo strand (TICKETS: under the policy in force; overflow: recurse into the guard page)",
        run: spawn,
    },
    Command {
        name: "kill",
        usage: "kill ID",
        help: "kill a strand (not one of the kernel's essential strands)",
        run: kill,
    },
    Command {
        name: "sched",
        usage: "sched | sched demo A B [POLICY]",
        help: "the scheduling policies; demo: two CPU-bound strands with A and B tickets for 100 ticks",
        run: sched,
    },
];

/// Milliseconds of CPU time in `cycles` TSC cycles.
fn cpu_ms(cycles: u64) -> f64 {
    cycles as f64 * 1000.0 / time::tsc_hz().max(1) as f64
}

fn policy_name(policies: &[PolicyInfo], id: PolicyId) -> String {
    policies
        .iter()
        .find(|p| p.id == id)
        .map_or_else(|| id.to_string(), |p| p.name.clone())
}

fn list(_: &[&str]) -> Result<(), String> {
    let policies = strand::policies();
    println!(
        "{:>4} {:<16} {:<16} {:<14} {:<14} {:>7} {:>10} {:>7} {:>9}",
        "ID", "NAME", "STATE", "OWNER", "POLICY", "TICKETS", "CPU(ms)", "TICKS", "SWITCHES"
    );
    for s in strand::list() {
        let name = if s.essential {
            alloc::format!("{}*", s.name)
        } else {
            s.name.clone()
        };
        println!(
            "{:>4} {:<16} {:<16} {:<14} {:<14} {:>7} {:>10.1} {:>7} {:>9}",
            s.id.as_u64(),
            name,
            s.state.to_string(),
            s.owner_name,
            policy_name(&policies, s.policy),
            s.tickets,
            cpu_ms(s.cpu_cycles),
            s.ticks,
            s.switches
        );
    }
    println!("(* essential: cannot be killed)");
    Ok(())
}

fn seconds(text: &str) -> Result<u64, String> {
    match text.parse::<u64>() {
        Ok(n) if (1..=3600).contains(&n) => Ok(n),
        _ => Err(alloc::format!(
            "'{text}' is not a number of seconds (1-3600)"
        )),
    }
}

/// Recurses with a half-page frame until the guard page stops it (long
/// before the depth limit, which only keeps the function finite).
#[inline(never)]
fn recurse(depth: u64) -> u64 {
    if depth > 1 << 40 {
        return depth;
    }
    let mut frame = [0u8; 512];
    frame[0] = depth as u8;
    let frame = core::hint::black_box(frame);
    recurse(depth + 1).wrapping_add(u64::from(frame[0]))
}

fn spawn(args: &[&str]) -> Result<(), String> {
    const STACK: usize = 16 * 1024;
    let spawned = match args {
        ["spin", secs] | ["spin", secs, _] => {
            let deadline = time::uptime_ns() + seconds(secs)? * 1_000_000_000;
            let policy = match args.get(2) {
                Some(count) => (policy_in_force(&strand::policies()).id, tickets(count)?),
                None => (PolicyId::ROUND_ROBIN, 1),
            };
            strand::Builder::new("spin")
                .stack_size(STACK)
                .policy(policy.0, policy.1)
                .spawn(&crate::events::authority().kernel, move || {
                    while time::uptime_ns() < deadline {
                        core::hint::spin_loop();
                    }
                })
        }
        ["sleep", secs] => {
            let secs = seconds(secs)?;
            strands::spawn_kernel("sleep", STACK, move || {
                let _ = strand::sleep(Duration::from_secs(secs));
            })
        }
        // The closure owns nothing (no heap), so the strand abandons
        // nothing when it is stopped in the middle of its recursion.
        ["overflow"] => strands::spawn_kernel("overflow", STACK, || {
            core::hint::black_box(recurse(0));
        }),
        _ => return Err("expected spin SECONDS [TICKETS], sleep SECONDS or overflow".into()),
    };
    let strand = spawned.map_err(|e| e.to_string())?;
    // Named from the request: the strand may already have run (and, for
    // `overflow`, be gone) by now.
    let policy = if args.len() == 3 {
        policy_in_force(&strand::policies()).name.clone()
    } else {
        String::from(strand::ROUND_ROBIN_NAME)
    };
    println!("spawned strand {} ({}, {policy})", strand.id(), args[0]);
    if args[0] == "overflow" {
        strand.join().map_err(|e| e.to_string())?;
        println!("strand {} is gone; the shell goes on", strand.id());
    }
    Ok(())
}

fn kill(args: &[&str]) -> Result<(), String> {
    let [id] = args else {
        return Err("expected a strand id".into());
    };
    let id = id
        .parse::<u64>()
        .map(StrandId::from_u64)
        .map_err(|_| alloc::format!("'{id}' is not a strand id"))?;
    let capability = crate::events::authority().issuer.kernel_capability();
    strand::service::kill(capability, id).map_err(|e| e.to_string())?;
    strand::service::join_any(capability, id).map_err(|e| e.to_string())?;
    println!("killed strand {id}");
    Ok(())
}

fn sched(args: &[&str]) -> Result<(), String> {
    match args {
        [] => {
            show_policies();
            Ok(())
        }
        ["demo", a, b] => demo(a, b, None),
        ["demo", a, b, policy] => demo(a, b, Some(policy)),
        _ => Err("expected nothing, or demo A B [POLICY]".into()),
    }
}

/// The policy new demo strands opt into: the newest registered one.
fn policy_in_force(policies: &[PolicyInfo]) -> &PolicyInfo {
    policies
        .iter()
        .max_by_key(|p| p.id.as_u32())
        .unwrap_or(&policies[0])
}

fn show_policies() {
    let policies = strand::policies();
    let strands = strand::list();
    if policies.is_empty() {
        println!("the strand service is not running");
        return;
    }
    let in_force = policy_in_force(&policies);
    println!(
        "policy in force: {} (classes take turns; round-robin within a class; quantum {} tick(s) of {} ms)",
        in_force.name,
        strands::QUANTUM_TICKS,
        1000 / crate::arch::apic::TIMER_HZ
    );
    println!(
        "{:>4} {:<16} {:<16} {:>7} {:>10} {:>9}  STRANDS",
        "ID", "POLICY", "OWNER", "COUNT", "PICKS", "REJECTED"
    );
    for p in &policies {
        let members: Vec<String> = strands
            .iter()
            .filter(|s| s.policy == p.id && !matches!(s.state, strand::State::Exited(_)))
            .map(|s| alloc::format!("{}({})", s.id.as_u64(), s.name))
            .collect();
        println!(
            "{:>4} {:<16} {:<16} {:>7} {:>10} {:>9}  {}",
            p.id.as_u32(),
            p.name,
            p.owner_name,
            p.strands,
            p.picks,
            p.rejected,
            members.join(" ")
        );
    }
}

fn tickets(text: &str) -> Result<u32, String> {
    match text.parse::<u32>() {
        Ok(n) if (1..=strand::MAX_TICKETS).contains(&n) => Ok(n),
        _ => Err(alloc::format!(
            "'{text}' is not a ticket count (1-{})",
            strand::MAX_TICKETS
        )),
    }
}

/// Timer ticks `sched demo` lets its two strands use between them.
const DEMO_TICKS: u64 = 100;

/// Longest `sched demo` runs, in ns of uptime.
const DEMO_LIMIT_NS: u64 = 10_000_000_000;

/// One demo strand's view.
struct Runner {
    strand: strand::Strand,
    tickets: u32,
    progress: Arc<AtomicU64>,
}

fn demo(a: &str, b: &str, policy: Option<&str>) -> Result<(), String> {
    let (a, b) = (tickets(a)?, tickets(b)?);
    let policies = strand::policies();
    let policy = match policy {
        Some(name) => policies
            .iter()
            .find(|p| p.name == name)
            .ok_or_else(|| alloc::format!("no policy '{name}' (see 'sched')"))?,
        None => policy_in_force(&policies),
    };
    let stop = Arc::new(AtomicBool::new(false));
    let kernel = crate::events::authority().kernel.clone();
    let mut runners = Vec::new();
    for (label, tickets) in [("demo-a", a), ("demo-b", b)] {
        let progress = Arc::new(AtomicU64::new(0));
        let (p, s) = (progress.clone(), stop.clone());
        let strand = strand::Builder::new(label)
            .stack_size(16 * 1024)
            .policy(policy.id, tickets)
            .spawn(&kernel, move || {
                let mut count = 0u64;
                while !s.load(Ordering::Relaxed) {
                    count += 1;
                    p.store(count, Ordering::Relaxed);
                }
            })
            .map_err(|e| e.to_string())?;
        runners.push(Runner {
            strand,
            tickets,
            progress,
        });
    }
    // Until the two have been charged enough ticks for the ratio to be
    // read to a few percent (a second at 100 Hz on an idle host; longer
    // when the host starves the emulator of time), or ten seconds.
    let start = time::uptime_ns();
    let mut slept = Ok(());
    while slept.is_ok() && time::uptime_ns() - start < DEMO_LIMIT_NS {
        slept = strand::sleep(Duration::from_millis(100));
        let charged: u64 = runners
            .iter()
            .filter_map(|r| r.strand.info())
            .map(|i| i.ticks)
            .sum();
        if charged >= DEMO_TICKS {
            break;
        }
    }
    stop.store(true, Ordering::Relaxed);
    let elapsed = time::uptime_ns() - start;
    let counts: Vec<u64> = runners
        .iter()
        .map(|r| r.progress.load(Ordering::Relaxed))
        .collect();
    let infos: Vec<Option<StrandInfo>> = runners.iter().map(|r| r.strand.info()).collect();
    for runner in &runners {
        runner.strand.join().map_err(|e| e.to_string())?;
    }
    slept.map_err(|e| e.to_string())?;
    println!(
        "sched demo: 2 CPU-bound strands for {}.{:02} s under {}",
        elapsed / 1_000_000_000,
        elapsed / 10_000_000 % 100,
        policy.name
    );
    for ((runner, count), info) in runners.iter().zip(&counts).zip(&infos) {
        let (cpu, ticks, switches) = info
            .as_ref()
            .map_or((0.0, 0, 0), |i| (cpu_ms(i.cpu_cycles), i.ticks, i.switches));
        println!(
            "  strand {} {}: {} tickets, {} iterations, {ticks} ticks, {:.0} ms CPU, {} switches",
            runner.strand.id(),
            info.as_ref().map_or("?", |i| i.name.as_str()),
            runner.tickets,
            count,
            cpu,
            switches
        );
    }
    let share = |f: fn(&StrandInfo) -> u64| {
        let [a, b] = [0, 1].map(|i| infos[i].as_ref().map_or(0, f));
        (a, b, a as f64 / b.max(1) as f64)
    };
    let (ticks_a, ticks_b, ratio) = share(|i| i.ticks);
    let (_, _, cpu_ratio) = share(|i| i.cpu_cycles);
    let progress = counts[0] as f64 / counts[1].max(1) as f64;
    println!(
        "ratio {ratio:.2} (timer ticks a/b: {ticks_a}/{ticks_b}; tickets {a}:{b} = {:.2}); TSC time ratio {cpu_ratio:.2}; progress ratio {progress:.2} (iterations)",
        f64::from(a) / f64::from(b)
    );
    Ok(())
}
