//! The dispatcher wired into the kernel: `Clock.Tick` raised by the timer
//! interrupt, `Console.Line` with the kernel's authorizer, time bounds.

use alloc::sync::Arc;
use core::sync::atomic::{AtomicBool, AtomicU64, Ordering};

use console::{Line, Reply};
use ktest_macros::ktest;

use crate::events::authority;
use crate::ktest::{KtestFailure, KtestResult};
use crate::{ensure, ensure_eq, time};

fn failure(e: impl core::fmt::Debug) -> KtestFailure {
    KtestFailure::new(alloc::format!("{e:?}"))
}

/// Waits until `done()` or two seconds of TSC time.
fn wait_until(done: impl Fn() -> bool) -> bool {
    let deadline = time::uptime_ns() + 2_000_000_000;
    while !done() && time::uptime_ns() < deadline {
        x86_64::instructions::hlt();
    }
    done()
}

#[ktest]
fn clock_tick_handlers_run_in_the_timer_interrupt() -> KtestResult {
    let principal = authority().issuer.issue("ktest-tick");
    let calls = Arc::new(AtomicU64::new(0));
    let elsewhere = Arc::new(AtomicBool::new(false));
    let (c, w) = (calls.clone(), elsewhere.clone());
    let binding = clock::tick_event()
        .ok_or_else(|| failure("Clock.Tick not published"))?
        .binding(move |_tick| {
            c.fetch_add(1, Ordering::Relaxed);
            // In the timer interrupt, on the interrupt stack, with
            // interrupts re-enabled so that a nested tick can run the
            // watchdog.
            if !dispatcher::read_side::in_interrupt()
                || !crate::containment::interrupt_stack::in_use()
                || !x86_64::instructions::interrupts::are_enabled()
            {
                w.store(true, Ordering::Relaxed);
            }
        })
        .install(&principal)
        .map_err(failure)?;
    let ticks_before = time::ticks();
    ensure!(
        wait_until(|| calls.load(Ordering::Relaxed) >= 3),
        "tick handler never ran"
    );
    binding.uninstall().map_err(failure)?;
    let after = calls.load(Ordering::Relaxed);
    ensure!(
        !elsewhere.load(Ordering::Relaxed),
        "tick handler ran outside the timer interrupt, off the interrupt stack or with interrupts disabled"
    );
    // The original handler kept counting alongside ours.
    ensure!(time::ticks() >= ticks_before + 3);
    wait_until(|| time::ticks() >= ticks_before + 6);
    ensure_eq!(calls.load(Ordering::Relaxed), after);
    Ok(())
}

#[ktest]
fn installing_from_the_timer_interrupt_is_refused_and_the_kernel_runs_on() -> KtestResult {
    let principal = authority().issuer.issue("ktest-installer-in-irq");
    // What an install attempted inside the timer interrupt returned.
    let outcome: Arc<spin::Mutex<Option<Result<(), dispatcher::InstallError>>>> =
        Arc::new(spin::Mutex::new(None));
    let (o, p) = (outcome.clone(), principal.clone());
    let tick = clock::tick_event().ok_or_else(|| failure("Clock.Tick not published"))?;
    let target = tick.clone();
    let binding = tick
        .binding(move |_tick| {
            if let Some(mut slot) = o.try_lock()
                && slot.is_none()
            {
                *slot = Some(target.install(&p, |_| ()).map(|b| {
                    // Not reached when the refusal works; undo if it is.
                    let _ = b.uninstall();
                }));
            }
        })
        .install(&principal)
        .map_err(failure)?;
    let tried = wait_until(|| outcome.lock().is_some());
    binding.uninstall().map_err(failure)?;
    ensure!(tried, "tick handler never ran");
    ensure_eq!(
        outcome.lock().clone(),
        Some(Err(dispatcher::InstallError::InInterrupt))
    );
    ensure!(!dispatcher::read_side::in_interrupt());
    Ok(())
}

#[ktest]
fn console_line_authorizer_keeps_builtin_commands_for_the_kernel() -> KtestResult {
    let principal = authority().issuer.issue("ktest-greedy");
    let calls = Arc::new(AtomicU64::new(0));
    let c = calls.clone();
    // No guard of its own: it would claim every line.
    let binding = console::line_event()
        .binding(move |_line| {
            c.fetch_add(1, Ordering::Relaxed);
            Reply::Handled
        })
        .install(&principal)
        .map_err(failure)?;
    let imposed = authority()
        .console_line
        .bindings()
        .iter()
        .find(|b| b.id == binding.id())
        .map(|b| b.imposed_guards);
    ensure_eq!(imposed, Some(1));
    // A built-in: the imposed guard keeps the extension out.
    ensure_eq!(
        crate::events::authority()
            .line
            .raise(&Line::new("log info")),
        Ok(Reply::Handled)
    );
    ensure_eq!(calls.load(Ordering::Relaxed), 0);
    // Anything else is the extension's.
    ensure_eq!(
        crate::events::authority()
            .line
            .raise(&Line::new("frobnicate")),
        Ok(Reply::Handled)
    );
    ensure_eq!(calls.load(Ordering::Relaxed), 1);
    binding.uninstall().map_err(failure)?;
    ensure_eq!(
        crate::events::authority()
            .line
            .raise(&Line::new("frobnicate")),
        Ok(Reply::Unknown)
    );
    Ok(())
}

#[ktest]
fn kernel_installs_without_asking_its_own_authorizer() -> KtestResult {
    // The owner is not subject to the authorizer: no imposed guard.
    let binding = console::line_event()
        .binding(|_| Reply::Unknown)
        .last()
        .install(&authority().kernel)
        .map_err(failure)?;
    let info = authority()
        .console_line
        .bindings()
        .into_iter()
        .find(|b| b.id == binding.id());
    ensure_eq!(info.map(|b| b.imposed_guards), Some(0));
    binding.uninstall().map_err(failure)
}

#[ktest]
fn ephemeral_tick_handler_overrun_is_reported() -> KtestResult {
    let principal = authority().issuer.issue("ktest-slow");
    let busy_us = 3 * crate::events::TICK_HANDLER_QUANTUM.0;
    let binding = clock::tick_event()
        .ok_or_else(|| failure("Clock.Tick not published"))?
        .binding(move |_| {
            let until = time::uptime_ns() + busy_us * 1000;
            while time::uptime_ns() < until {
                core::hint::spin_loop();
            }
        })
        .ephemeral()
        .install(&principal)
        .map_err(failure)?;
    let overruns = || {
        authority()
            .clock_tick
            .bindings()
            .iter()
            .find(|b| b.id == binding.id())
            .map_or(0, |b| b.overruns)
    };
    ensure!(
        wait_until(|| overruns() >= 2),
        "no overrun reported for a handler running {busy_us} us"
    );
    let quantum = authority()
        .clock_tick
        .bindings()
        .iter()
        .find(|b| b.id == binding.id())
        .and_then(|b| b.quantum);
    ensure_eq!(quantum, Some(crate::events::TICK_HANDLER_QUANTUM));
    binding.uninstall().map_err(failure)
}
