//! Time in the scheduler: the quantum and the sleepers, both driven by the
//! scheduler's handler on `Clock.Tick`.

use strand::{BlockReason, StrandError};
use x86_64::instructions::interrupts;

use super::{QUANTUM_TICKS, locked, park, started, wake};
use crate::cpu;

/// The scheduler's handler on `Clock.Tick` (in the timer interrupt): wakes
/// the sleepers whose time has come, and asks for a switch when the current
/// strand's quantum is used up (or the CPU idles) and another is ready.
pub(super) fn on_tick(_tick: &u64) {
    if !started() {
        return;
    }
    let cpu = cpu::current();
    let now = crate::time::uptime_ns();
    loop {
        let due = {
            let mut sleepers = cpu.sleepers.lock();
            let first = sleepers.first().copied().filter(|&(at, _)| at <= now);
            if let Some(entry) = first {
                sleepers.remove(&entry);
            }
            first
        };
        match due {
            // A sleeper killed meanwhile is simply gone.
            Some((_, id)) => drop(wake(id)),
            None => break,
        }
    }
    locked(|t, _| t.charge_tick(cpu.current_strand()));
    let used = cpu.tick_quantum();
    let others_ready = !cpu.run_queue.lock().is_empty();
    if others_ready && (used >= QUANTUM_TICKS || cpu.current_strand() == cpu.idle_strand()) {
        cpu.request_resched();
    }
}

/// Sleeps until the clock reads `deadline_ns`.
pub fn sleep_until(deadline_ns: u64) -> Result<(), StrandError> {
    if !started() || !interrupts::are_enabled() {
        return Err(StrandError::CannotBlock);
    }
    let cpu = cpu::current();
    let me = cpu.current_strand();
    while crate::time::uptime_ns() < deadline_ns {
        interrupts::without_interrupts(|| cpu.sleepers.lock().insert((deadline_ns, me)));
        let parked = park(BlockReason::Sleep);
        interrupts::without_interrupts(|| cpu.sleepers.lock().remove(&(deadline_ns, me)));
        parked?;
    }
    Ok(())
}

/// Sleeps for `ticks` timer ticks (at least until the next tick).
pub fn sleep_ticks(ticks: u64) -> Result<(), StrandError> {
    let tick_ns = 1_000_000_000 / crate::arch::apic::TIMER_HZ;
    sleep_until(crate::time::uptime_ns() + ticks.max(1) * tick_ns)
}
