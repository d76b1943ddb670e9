//! The `log` facade's back end: timestamped lines on the serial console,
//! each prefixed with the level and the emitting module (its crate first).

use log::{Level, LevelFilter, Log, Metadata, Record};

use crate::{print, println};

struct SerialLogger;

static LOGGER: SerialLogger = SerialLogger;

impl Log for SerialLogger {
    fn enabled(&self, metadata: &Metadata<'_>) -> bool {
        metadata.level() <= log::max_level()
    }

    fn log(&self, record: &Record<'_>) {
        if !self.enabled(record.metadata()) {
            return;
        }
        // Before the TSC is calibrated there is no honest timestamp.
        let micros = crate::time::uptime_ns_if_calibrated().map(|ns| ns / 1000);
        let level = match record.level() {
            Level::Error => "ERROR",
            Level::Warn => "WARN ",
            Level::Info => "INFO ",
            Level::Debug => "DEBUG",
            Level::Trace => "TRACE",
        };
        match micros {
            Some(us) => print!("[{:>4}.{:06}] ", us / 1_000_000, us % 1_000_000),
            None => print!("[   -.------] "),
        }
        println!("{level} {}: {}", record.target(), record.args());
    }

    fn flush(&self) {}
}

/// Installs the logger at `Info` level.
pub fn init() {
    crate::time::mark_boot();
    // Only fails if a logger is already set, which would be a boot-order bug
    // that the missing log lines make obvious.
    let _ = log::set_logger(&LOGGER);
    log::set_max_level(LevelFilter::Info);
}

/// Changes the level at run time (`log LEVEL` in the shell).
pub fn set_level(level: LevelFilter) {
    log::set_max_level(level);
}
