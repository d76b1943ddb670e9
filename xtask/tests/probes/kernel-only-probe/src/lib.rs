//! Names every operation of the public crates that used to be callable by
//! extensions and is the kernel's alone, each the way it used to be called.
//! Every one must fail to build, and the error must name it
//! (`xtask/tests/trusted_compiler.rs`; `forged-capability-probe` tries to
//! make the capability itself).
#![no_std]
#![forbid(unsafe_code)]

extern crate alloc;

use alloc::sync::Arc;

use spindle_sdk::clock;
use spindle_sdk::console::{self, Line, Reply};
use spindle_sdk::dispatcher::{self, Event, time_bounds};
use spindle_sdk::prelude::*;

struct Inline;

impl dispatcher::Executor for Inline {
    fn spawn(&self, job: dispatcher::Job) {
        job()
    }
}

struct Frozen;

impl dispatcher::Clock for Frozen {
    fn now(&self) -> dispatcher::Micros {
        dispatcher::Micros(0)
    }
}

/// Console output redirected into the extension.
fn probe_set_sink() {
    console::set_sink(|_text| {});
}

/// Another `Console.Line` published in place of the kernel's.
fn probe_publish_line_event(ctx: &ExtensionContext) {
    let (event, _authority) =
        Event::<Line, Reply>::declare("Probe.Line", ctx.principal(), |_| Reply::Unknown).unwrap();
    console::publish_line_event(event);
}

/// Another `Clock.Tick` published in place of the kernel's.
fn probe_publish_tick_event(ctx: &ExtensionContext) {
    let (event, _authority) = Event::<u64, ()>::declare("Probe.Tick", ctx.principal(), |_| ()).unwrap();
    clock::publish_tick_event(event);
}

/// The tick rate changed.
fn probe_set_hz() {
    clock::set_hz(1_000_000);
}

/// Ticks accounted that never happened (the original handler).
fn probe_account_tick() {
    clock::account_tick(&1);
}

/// The executor of every asynchronous handler replaced.
fn probe_set_global_executor() {
    let _ = dispatcher::set_global_executor(Arc::new(Inline));
}

/// Jobs spawned outside the binding accounting unloading waits on.
fn probe_global_executor() {
    let _ = dispatcher::executor::global_executor();
}

/// The clock of every time-bounded handler replaced.
fn probe_set_clock() {
    let _ = time_bounds::set_clock(Arc::new(Frozen));
    let _ = time_bounds::global().set_clock(Arc::new(Frozen));
}

/// The kernel's timer hook run by an extension.
fn probe_check_overruns() {
    time_bounds::check_overruns(dispatcher::Micros(u64::MAX), |_| {});
}

/// The shell's commands (`shutdown`) run by raising the kernel's event.
fn probe_raise_line() {
    let _ = console::line_event().raise(&Line::new("shutdown"));
}

/// Ticks raised by an extension.
fn probe_raise_tick() {
    if let Some(tick) = clock::tick_event() {
        let _ = tick.raise(&1);
    }
}

/// The kernel's log silenced (the `log` crate is not public).
fn probe_set_max_level() {
    spindle_sdk::log::set_max_level(spindle_sdk::log::LevelFilter::Off);
}

fn init(ctx: &ExtensionContext) -> Result<(), ExtensionError> {
    probe_set_sink();
    probe_publish_line_event(ctx);
    probe_publish_tick_event(ctx);
    probe_set_hz();
    probe_account_tick();
    probe_set_global_executor();
    probe_global_executor();
    probe_set_clock();
    probe_check_overruns();
    probe_raise_line();
    probe_raise_tick();
    probe_set_max_level();
    Ok(())
}

fn exit(_ctx: &ExtensionContext) {}

spindle_sdk::extension!(init: init, exit: exit);
