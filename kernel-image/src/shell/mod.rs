//! The serial-console shell.
//!
//! Line based, so it can be typed at or driven through a pipe: every input
//! byte is echoed, `\r`, `\n` and `\r\n` all end a line, backspace edits. After
//! each command the prompt `spindle> ` is printed again; that prompt is what
//! `cargo xtask run` and the integration tests wait for before sending the
//! next line. When something else prints while the shell waits for input
//! (a fault report from an interrupt or a strand, a log line), the prompt
//! and the line typed so far are printed again after it, so the console
//! always ends with the prompt while the shell is waiting.
//!
//! Every line is raised as the `Console.Line` event. The built-in commands
//! are that event's original handler ([`builtin_commands`]); extensions add
//! commands by installing handlers. The line is an unknown command only if
//! no handler handled it.

use alloc::string::String;
use alloc::vec::Vec;

use console::{Line, Reply};

use crate::arch::serial;
use crate::containment::faults;
use crate::memory;
use crate::{println, time};

/// The prompt, exactly as printed.
pub const PROMPT: &str = "spindle> ";

/// Longest accepted input line; further bytes are dropped.
const MAX_LINE: usize = 1024;

mod bench;
mod churn;
mod containment;
mod dispatch;
pub mod extensions;
mod memory_services;
mod strands;
mod system;

/// One shell command.
pub struct Command {
    /// The command word.
    pub name: &'static str,
    /// How to call it.
    pub usage: &'static str,
    /// One line for `help`.
    pub help: &'static str,
    /// Runs it with the words after the command.
    pub run: fn(&[&str]) -> Result<(), String>,
}

/// The built-in commands, in `help` order, one group per file.
const GROUPS: &[&[Command]] = &[
    system::COMMANDS,
    dispatch::COMMANDS,
    extensions::COMMANDS,
    strands::COMMANDS,
    bench::COMMANDS,
    containment::COMMANDS,
    memory_services::COMMANDS,
];

/// Every built-in command.
fn groups() -> impl Iterator<Item = &'static Command> {
    GROUPS.iter().flat_map(|group| group.iter())
}

pub fn run() -> ! {
    banner();
    let mut reader = LineReader::default();
    // Full size from the start: a buffer that grew with the input would
    // make `mem` report the growth as if something had leaked.
    let mut line = String::with_capacity(MAX_LINE);
    loop {
        reader.read_line(&mut line);
        execute(&line);
    }
}

fn banner() {
    let boot = memory::boot_memory();
    println!();
    println!(
        "Spindle {} -- a SPIN-style extensible kernel for x86_64",
        env!("CARGO_PKG_VERSION")
    );
    println!(
        "firmware {}, {} MiB RAM, timer {} Hz, TSC {} MHz",
        memory::firmware_name(),
        boot.ram_bytes >> 20,
        crate::arch::apic::TIMER_HZ,
        time::tsc_hz() / 1_000_000
    );
    println!("Type 'help' for commands.");
}

/// Line editor state: whether the previous line ended in `\r`, so that the
/// `\n` of a `\r\n` pair is not an empty line, and the console's output
/// mark after the editor's own last write.
#[derive(Default)]
struct LineReader {
    last_was_cr: bool,
    own_mark: Option<serial::OutputMark>,
    /// The output mark seen at the last idle check, while other output
    /// was waiting to be followed by the prompt.
    foreign_mark: Option<serial::OutputMark>,
}

impl LineReader {
    /// Prints the prompt, then reads one line into `line` (without the
    /// terminator), echoing as it goes.
    fn read_line(&mut self, line: &mut String) {
        line.clear();
        self.own_mark = None;
        self.write(line, PROMPT.as_bytes());
        loop {
            let Some(byte) = serial::try_read_byte() else {
                self.restore_after_quiet_output(line);
                // Nothing waiting: sleep for a timer tick, leaving the CPU
                // to the other strands (or to the idle strand's `hlt`).
                if crate::strands::sleep_ticks(1).is_err() {
                    x86_64::instructions::hlt();
                }
                continue;
            };
            match byte {
                b'\n' if self.last_was_cr => self.last_was_cr = false,
                b'\r' | b'\n' => {
                    self.last_was_cr = byte == b'\r';
                    self.write(line, b"\n");
                    return;
                }
                0x08 | 0x7f => {
                    self.last_was_cr = false;
                    if !line.is_empty() {
                        self.write(line, b"\x08 \x08");
                        line.pop();
                    }
                }
                0x20..=0x7e => {
                    self.last_was_cr = false;
                    if line.len() < MAX_LINE {
                        self.write(line, &[byte]);
                        line.push(byte as char);
                    }
                }
                _ => self.last_was_cr = false,
            }
        }
    }

    /// Writes the editor's own output after `line` (what is typed so far);
    /// if something else printed since the editor's last write, the prompt
    /// and `line` are printed again first.
    fn write(&mut self, line: &str, bytes: &[u8]) {
        let own = match self.own_mark {
            Some(own) => own,
            // The prompt starts the line: nothing to restore before it.
            None => serial::output_mark(),
        };
        let restore: [&[u8]; 2] = [PROMPT.as_bytes(), line.as_bytes()];
        self.own_mark = Some(serial::write_resuming(own, &restore, bytes));
        self.foreign_mark = None;
    }

    /// While the shell waits for input: once other output has ended its
    /// line and stayed quiet for one idle round (so a report of several
    /// lines is not cut by a prompt), prints the prompt and the input
    /// typed so far again, so the console ends with the prompt.
    fn restore_after_quiet_output(&mut self, line: &str) {
        let now = serial::output_mark();
        if self.own_mark.is_none_or(|own| own.writes == now.writes) {
            return;
        }
        if now.last_byte == b'\n' && self.foreign_mark == Some(now) {
            self.write(line, b"");
        } else {
            self.foreign_mark = Some(now);
        }
    }
}

/// Work a built-in command leaves for after the raise that carried it.
type Deferred = alloc::boxed::Box<dyn FnOnce() + Send>;

/// At most one deferred action per line (an `Option`, not a queue, so that
/// running commands leaves no allocation behind).
static DEFERRED: spin::Mutex<Option<Deferred>> = spin::Mutex::new(None);

/// Runs `action` once the current `Console.Line` raise has returned.
///
/// Loading and unloading extensions must happen outside the raise: unloading
/// waits until no raise holds the extension's handlers, and the raise that
/// carried the `ext unload` line holds the plan that references them.
pub fn defer(action: impl FnOnce() + Send + 'static) {
    *DEFERRED.lock() = Some(alloc::boxed::Box::new(action));
}

/// Runs one command line: raises `Console.Line` with it, then any work the
/// command deferred.
pub fn execute(text: &str) {
    let line = Line::new(text);
    if line.command().is_empty() {
        return;
    }
    // The shell runs in its strand with interrupts enabled, which its
    // boundary restores after a contained panic.
    debug_assert!(x86_64::instructions::interrupts::are_enabled());
    let raised = faults::call_extensions_interruptible(console::LINE_EVENT, || {
        crate::events::authority().line.raise(&line)
    });
    match raised {
        Ok(Ok(Reply::Handled)) => {}
        Ok(Ok(Reply::Unknown)) => println!(
            "error: unknown command '{}' (type 'help' for the list)",
            line.command()
        ),
        Ok(Err(e)) => println!("error: Console.Line could not be raised: {e:?}"),
        Err(failed) => println!("error: '{}' abandoned: {failed}", line.command()),
    }
    drop(line);
    // A failed extension is reported and unloaded before the next prompt.
    faults::handle_pending();
    let deferred = DEFERRED.lock().take();
    if let Some(action) = deferred {
        action();
    }
}

/// The original handler of `Console.Line`: the built-in commands.
pub fn builtin_commands(line: &Line) -> Reply {
    let words: Vec<&str> = line.text().split_whitespace().collect();
    let Some((&name, args)) = words.split_first() else {
        return Reply::Unknown;
    };
    match groups().find(|c| c.name == name) {
        Some(command) => {
            if let Err(message) = (command.run)(args) {
                println!("error: {message} (usage: {})", command.usage);
            }
            Reply::Handled
        }
        None => Reply::Unknown,
    }
}

/// Whether `name` is a built-in command (extensions may not take these).
pub fn is_builtin(name: &str) -> bool {
    groups().any(|c| c.name == name)
}
