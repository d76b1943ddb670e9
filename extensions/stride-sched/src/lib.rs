//! `stride-sched`: stride scheduling (Waldspurger & Weihl, 1995; the
//! exokernel paper's example of a scheduler outside the kernel) as a
//! policy extension.
//!
//! Loading it registers the policy `stride`. Strands opt in with a number
//! of tickets (`Strand::opt_in`, or `sched demo A B` in the shell); each
//! holds a *stride* inversely proportional to its tickets and a *pass*.
//! When it is the policy's turn, the kernel raises `Sched.PickNext` with
//! the policy's ready strands; the handler picks the one with the lowest
//! pass and advances that pass by its stride. Over time each strand runs
//! in proportion to its tickets.
//!
//! The kernel's authority imposes a guard on every handler installed here:
//! they only ever see strands that opted into `stride`. A strand that
//! blocks keeps its place relative to the others (its pass is brought up to
//! the policy's virtual time when it wakes, so a long sleep earns no
//! burst); one that exits is forgotten. Unloading retires the policy: the
//! kernel moves every strand it held back to round-robin.
//!
//! Handlers run with interrupts disabled (often in the timer interrupt) and
//! must never wait for the strand they interrupted: they only `try_lock`
//! the state. If the shell command `stride` holds it at that instant, the
//! decision passes (round-robin's answer runs once) — a lost decision, not
//! a deadlock.
#![no_std]
#![forbid(unsafe_code)]

extern crate alloc;

use alloc::collections::BTreeMap;

use spindle_sdk::prelude::*;
use spindle_sdk::spin::Mutex;
use spindle_sdk::strand::{self, Cause, Pick, PickArgs, Policy, StrandId, StrandSignal};

/// The stride of a strand with one ticket.
const STRIDE1: u64 = 1 << 20;

/// One strand of the policy.
struct Client {
    tickets: u32,
    stride: u64,
    pass: u64,
}

impl Client {
    fn new(tickets: u32, pass: u64) -> Self {
        Self {
            tickets,
            stride: STRIDE1 / u64::from(tickets.max(1)),
            pass,
        }
    }
}

/// The policy's state: its clients and its virtual time (the lowest pass
/// among the ready strands at the last decision).
struct Stride {
    clients: BTreeMap<StrandId, Client>,
    virtual_time: u64,
    decisions: u64,
}

static STATE: Mutex<Option<Stride>> = Mutex::new(None);

/// What `exit` must undo.
struct Installed {
    policy: Policy,
    bindings: [Binding<StrandSignal, ()>; 3],
    pick: Binding<PickArgs, Pick>,
    command: Binding<Line, Reply>,
}

static INSTALLED: Mutex<Option<Installed>> = Mutex::new(None);

/// `Sched.PickNext` for the policy's class: the ready strand with the
/// lowest pass.
fn pick(args: &PickArgs) -> Pick {
    let Some(mut state) = STATE.try_lock() else {
        return Pick::Pass;
    };
    let Some(stride) = state.as_mut() else {
        return Pick::Pass;
    };
    // Newcomers start at the lowest pass among the known ready strands.
    let base = args
        .candidates
        .iter()
        .filter_map(|c| stride.clients.get(&c.strand).map(|client| client.pass))
        .min()
        .unwrap_or(stride.virtual_time);
    for candidate in &args.candidates {
        let client = stride
            .clients
            .entry(candidate.strand)
            .or_insert_with(|| Client::new(candidate.tickets, base));
        if client.tickets != candidate.tickets {
            *client = Client::new(candidate.tickets, client.pass);
        }
    }
    let chosen = args.candidates.iter().min_by_key(|c| {
        stride
            .clients
            .get(&c.strand)
            .map_or(u64::MAX, |client| client.pass)
    });
    let Some(chosen) = chosen else {
        return Pick::Pass;
    };
    stride.virtual_time = base;
    stride.decisions += 1;
    if let Some(client) = stride.clients.get_mut(&chosen.strand) {
        client.pass += client.stride;
    }
    Pick::Strand(chosen.strand)
}

/// `Strand.Unblock` for the policy's strands: a woken strand resumes at
/// the policy's virtual time at the earliest.
fn on_unblock(signal: &StrandSignal) {
    if let Some(mut state) = STATE.try_lock()
        && let Some(stride) = state.as_mut()
    {
        let now = stride.virtual_time;
        if let Some(client) = stride.clients.get_mut(&signal.strand) {
            client.pass = client.pass.max(now);
        }
    }
}

/// `Strand.Block` / `Strand.Checkpoint` for the policy's strands: forgets
/// those that exit.
fn on_leave(signal: &StrandSignal) {
    if let Cause::Exited(_) = signal.cause
        && let Some(mut state) = STATE.try_lock()
        && let Some(stride) = state.as_mut()
    {
        stride.clients.remove(&signal.strand);
    }
}

/// The shell command `stride`: the policy's strands.
fn show(_line: &Line) -> Reply {
    let policy = INSTALLED.lock().as_ref().map(|i| i.policy.id());
    let rows: alloc::vec::Vec<(StrandId, u32, u64, u64)> = {
        let state = STATE.lock();
        state
            .as_ref()
            .map(|s| {
                s.clients
                    .iter()
                    .map(|(id, c)| (*id, c.tickets, c.stride, c.pass))
                    .collect()
            })
            .unwrap_or_default()
    };
    match policy {
        Some(id) => println!("stride: policy {id}; {} strand(s) seen ready", rows.len()),
        None => println!("stride: not running"),
    }
    println!(
        "{:>6} {:>8} {:>10} {:>14}",
        "STRAND", "TICKETS", "STRIDE", "PASS"
    );
    for (id, tickets, stride, pass) in rows {
        println!("{id:>6} {tickets:>8} {stride:>10} {pass:>14}");
    }
    Reply::Handled
}

fn init(ctx: &ExtensionContext) -> Result<(), ExtensionError> {
    // Register first: the authority then imposes the membership guard on
    // every handler installed below.
    let policy = strand::register_policy(ctx.principal(), "stride")
        .map_err(|e| ExtensionError::new(alloc::format!("cannot register the policy: {e}")))?;
    *STATE.lock() = Some(Stride {
        clients: BTreeMap::new(),
        virtual_time: 0,
        decisions: 0,
    });
    let events = strand::events::events()
        .ok_or_else(|| ExtensionError::new("the strand service's events are not published"))?;
    let principal = ctx.principal();
    let installed = Installed {
        pick: events.pick_next.install(principal, pick)?,
        bindings: [
            events.unblock.install(principal, on_unblock)?,
            events.block.install(principal, on_leave)?,
            events.checkpoint.install(principal, on_leave)?,
        ],
        command: spindle_sdk::console::line_event()
            .binding(show)
            .guard(|line| line.command() == "stride")
            .install(principal)?,
        policy,
    };
    let id = installed.policy.id();
    *INSTALLED.lock() = Some(installed);
    println!("stride-sched: policy 'stride' ({id}) registered; strands opt in with tickets");
    Ok(())
}

fn exit(_ctx: &ExtensionContext) {
    if let Some(installed) = INSTALLED.lock().take() {
        // Strands first: back to round-robin, none lost.
        let moved = installed.policy.retire().unwrap_or(0);
        // Already gone only if the kernel revoked them first.
        let _ = installed.pick.uninstall();
        for binding in installed.bindings {
            let _ = binding.uninstall();
        }
        let _ = installed.command.uninstall();
        println!("stride-sched: {moved} strand(s) returned to round-robin");
    }
    let decisions = STATE.lock().take().map_or(0, |s| s.decisions);
    println!("stride-sched: goodbye after {decisions} decisions");
}

spindle_sdk::extension!(init: init, exit: exit);
