//! Console core service: text output for the kernel and its extensions, and
//! the `Console.Line` event.
//!
//! The kernel owns the device (COM1) and registers its writer here at boot
//! ([`set_sink`], which like every kernel-only operation takes a
//! [`KernelCapability`]); extensions print through [`print!`](crate::print) /
//! [`println!`](crate::println) without touching hardware.
//!
//! `Console.Line` is raised by the shell for every input line. Its original
//! handler is the shell's table of built-in commands; an extension adds a
//! command by installing a handler, usually guarded on the command word:
//!
//! ```ignore
//! console::line_event().binding(|_line| { console::println!("hi"); Reply::Handled })
//!     .guard(|line| line.command() == "hi")
//!     .install(principal)?;
//! ```
//!
//! The results of all handlers that ran are folded with [`Reply::combine`]:
//! the line counts as handled if any handler handled it; only otherwise does
//! the shell report an unknown command. The kernel's authorizer lets any
//! extension install, but imposes a guard that keeps built-in command names
//! for the kernel.
#![cfg_attr(not(test), no_std)]
#![forbid(unsafe_code)]
#![warn(missing_docs)]

extern crate alloc;

use alloc::string::String;
use core::fmt;

use dispatcher::{Event, KernelCapability, PublicEvent};

/// Dotted name of the line event.
pub const LINE_EVENT: &str = "Console.Line";

/// One line typed at (or piped into) the shell.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Line {
    text: String,
}

impl Line {
    /// A line; surrounding whitespace is kept as typed.
    pub fn new(text: impl Into<String>) -> Self {
        Self { text: text.into() }
    }

    /// The whole line.
    pub fn text(&self) -> &str {
        &self.text
    }

    /// The first word ("" for a blank line).
    pub fn command(&self) -> &str {
        self.text.split_whitespace().next().unwrap_or("")
    }

    /// The words after the first.
    pub fn args(&self) -> impl Iterator<Item = &str> {
        self.text.split_whitespace().skip(1)
    }
}

/// What a `Console.Line` handler did with the line.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Reply {
    /// Not this handler's command.
    Unknown,
    /// The handler ran the command.
    Handled,
}

impl Reply {
    /// The result handler of `Console.Line`: handled if either was.
    pub fn combine(self, other: Reply) -> Reply {
        if self == Reply::Handled || other == Reply::Handled {
            Reply::Handled
        } else {
            Reply::Unknown
        }
    }
}

static LINE: spin::Once<PublicEvent<Line, Reply>> = spin::Once::new();
static SINK: spin::Once<fn(&str)> = spin::Once::new();

/// Publishes the `Console.Line` event (the kernel does this once at boot;
/// later calls are ignored and return false). Only its install right is
/// published: the kernel keeps the event to raise it.
pub fn publish_line_event(_kernel: KernelCapability, event: Event<Line, Reply>) -> bool {
    let mut published = false;
    LINE.call_once(|| {
        published = true;
        PublicEvent::new(event)
    });
    published
}

/// The `Console.Line` event, to install handlers on (only the kernel
/// raises it).
///
/// # Panics
/// If called before the kernel published it (never the case for an
/// extension: the kernel publishes it before loading any).
pub fn line_event() -> &'static PublicEvent<Line, Reply> {
    LINE.get().expect("Console.Line is published at boot")
}

/// Registers the function that writes to the console device (kernel only;
/// once, at boot: later calls are ignored).
pub fn set_sink(_kernel: KernelCapability, sink: fn(&str)) {
    SINK.call_once(|| sink);
}

/// Writes a string to the console (dropped if no sink is registered yet).
pub fn write_str(text: &str) {
    if let Some(sink) = SINK.get() {
        sink(text);
    }
}

struct Writer;

impl fmt::Write for Writer {
    fn write_str(&mut self, s: &str) -> fmt::Result {
        write_str(s);
        Ok(())
    }
}

/// Writes formatted text to the console; used by [`print!`](crate::print).
pub fn write_fmt(args: fmt::Arguments<'_>) {
    let _ = fmt::Write::write_fmt(&mut Writer, args);
}

/// Prints to the console.
#[macro_export]
macro_rules! print {
    ($($arg:tt)*) => { $crate::write_fmt(format_args!($($arg)*)) };
}

/// Prints a line to the console.
#[macro_export]
macro_rules! println {
    () => { $crate::write_str("\n") };
    ($($arg:tt)*) => { $crate::write_fmt(format_args!("{}\n", format_args!($($arg)*))) };
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn line_splits_command_and_args() {
        let line = Line::new("  ext load  hello ");
        assert_eq!(line.command(), "ext");
        assert_eq!(
            line.args().collect::<alloc::vec::Vec<_>>(),
            ["load", "hello"]
        );
        assert_eq!(Line::new("   ").command(), "");
    }

    #[test]
    fn replies_fold_to_handled_if_any_handled() {
        use Reply::*;
        assert_eq!(Unknown.combine(Unknown), Unknown);
        assert_eq!(Unknown.combine(Handled), Handled);
        assert_eq!(Handled.combine(Unknown), Handled);
    }

    #[test]
    fn output_goes_to_the_registered_sink_once_set() {
        use std::sync::Mutex;
        static CAPTURED: Mutex<String> = Mutex::new(String::new());
        write_str("before any sink is set\n");
        let issuer = dispatcher::PrincipalIssuer::take().expect("the one take in this test binary");
        set_sink(issuer.kernel_capability(), |s| {
            CAPTURED.lock().unwrap().push_str(s)
        });
        println!("x = {}", 42);
        print!("{}", "tail");
        assert_eq!(*CAPTURED.lock().unwrap(), "x = 42\ntail");
    }
}
