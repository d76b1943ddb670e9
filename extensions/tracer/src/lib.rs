//! `tracer`: SPIN's "monitor system activity". It observes every event —
//! those live when it loads and, through `Dispatcher.EventDeclared`, those
//! declared later — and counts the raises that reach it; the shell command
//! `trace` prints the counts (`trace reset` clears them).
//!
//! An observation is a binding whose guard counts and never holds
//! (`dispatcher::observe`): the handler never runs, results are unchanged,
//! and the event's owner decides through its authorizer whether the tracer
//! may observe at all and which raises it sees (`Console.Line`'s authority
//! hides the built-in commands from extensions). Events it does not
//! observe keep their fast path. An event declared before its owner opened
//! it to other installers is refused at first and tried again at the next
//! declaration or `trace`.
#![cfg_attr(not(test), no_std)]
#![forbid(unsafe_code)]

extern crate alloc;

use alloc::format;
use alloc::string::String;
use alloc::sync::Arc;
use alloc::vec::Vec;
use core::sync::atomic::{AtomicU64, Ordering};

use spindle_sdk::console::println;
use spindle_sdk::dispatcher::observe::{self, EventDeclared, ObserveError, Observer};
use spindle_sdk::dispatcher::{Binding, Principal};
use spindle_sdk::prelude::*;
use spindle_sdk::spin::Mutex;

/// One event the tracer knows about.
struct Traced {
    name: String,
    seen: Arc<AtomicU64>,
    /// The installed observation, or why it was refused.
    state: Result<Observer, ObserveError>,
}

struct Tracer {
    principal: Principal,
    events: Vec<Traced>,
}

static TRACER: Mutex<Option<Tracer>> = Mutex::new(None);

struct Installed {
    command: Binding<Line, Reply>,
    declared: Option<Binding<EventDeclared, ()>>,
}

static INSTALLED: Mutex<Option<Installed>> = Mutex::new(None);

impl Tracer {
    /// Observes `name` if it is new; tries again if it was refused before.
    fn track(&mut self, name: &str) {
        match self.events.iter_mut().find(|t| t.name == name) {
            Some(traced) => {
                if traced.state.is_err() {
                    traced.state = observe::observe(name, &self.principal, traced.seen.clone());
                }
            }
            None => {
                let seen = Arc::new(AtomicU64::new(0));
                let state = observe::observe(name, &self.principal, seen.clone());
                self.events.push(Traced {
                    name: String::from(name),
                    seen,
                    state,
                });
            }
        }
    }

    /// Tracks every live event.
    fn track_all(&mut self) {
        for name in observe::observable_events() {
            self.track(&name);
        }
    }
}

/// One row of `trace`.
fn row(name: &str, seen: u64, state: &Result<Observer, ObserveError>) -> String {
    match state {
        Ok(_) => format!("{name:<26} {seen:>10}  observed"),
        Err(e) => format!("{name:<26} {:>10}  not observed: {e}", "-"),
    }
}

fn on_declared(declared: &EventDeclared) {
    // A declaration inside `trace` (which holds the table) is picked up by
    // the next `trace`.
    if let Some(mut tracer) = TRACER.try_lock()
        && let Some(tracer) = tracer.as_mut()
    {
        tracer.track(&declared.name);
    }
}

fn on_command(line: &Line) -> Reply {
    let mut guard = TRACER.lock();
    let Some(tracer) = guard.as_mut() else {
        return Reply::Handled;
    };
    match line.args().next() {
        Some("reset") => {
            for traced in &tracer.events {
                traced.seen.store(0, Ordering::Relaxed);
            }
            println!("trace: counts cleared");
        }
        Some(other) => println!("trace: unknown argument '{other}' (trace | trace reset)"),
        None => {
            tracer.track_all();
            println!("{:<26} {:>10}  STATE", "EVENT", "RAISES");
            for traced in &tracer.events {
                println!(
                    "{}",
                    row(
                        &traced.name,
                        traced.seen.load(Ordering::Relaxed),
                        &traced.state
                    )
                );
            }
            let observed = tracer.events.iter().filter(|t| t.state.is_ok()).count();
            println!(
                "{observed} of {} events observed (raises that reached the tracer's binding)",
                tracer.events.len()
            );
        }
    }
    Reply::Handled
}

fn init(ctx: &ExtensionContext) -> Result<(), ExtensionError> {
    let mut tracer = Tracer {
        principal: ctx.principal().clone(),
        events: Vec::new(),
    };
    tracer.track_all();
    let observed = tracer.events.iter().filter(|t| t.state.is_ok()).count();
    let total = tracer.events.len();
    *TRACER.lock() = Some(tracer);
    let declared = match observe::declared_event() {
        Some(event) => Some(event.install(ctx.principal(), on_declared)?),
        None => None,
    };
    let command = spindle_sdk::console::line_event()
        .binding(on_command)
        .guard(|line| line.command() == "trace")
        .install(ctx.principal())?;
    *INSTALLED.lock() = Some(Installed { command, declared });
    println!("tracer: observing {observed} of {total} events; 'trace' prints the counts");
    Ok(())
}

fn exit(_ctx: &ExtensionContext) {
    if let Some(installed) = INSTALLED.lock().take() {
        let _ = installed.command.uninstall();
        if let Some(declared) = installed.declared {
            let _ = declared.uninstall();
        }
    }
    if let Some(tracer) = TRACER.lock().take() {
        for traced in tracer.events {
            if let Ok(observer) = traced.state {
                // Already gone if the event was retired.
                let _ = observer.stop();
            }
        }
    }
    println!("tracer: stopped");
}

spindle_sdk::extension!(init: init, exit: exit);

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rows_show_counts_or_the_refusal() {
        let refused = Err(ObserveError::NoSuchEvent("X.Y".into()));
        assert_eq!(
            row("X.Y", 3, &refused),
            format!(
                "{:<26} {:>10}  not observed: no event named 'X.Y'",
                "X.Y", "-"
            )
        );
    }
}
