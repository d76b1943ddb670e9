//! `alloc-demo`: exercises what makes an extension object hard to link —
//! heap collections (the allocator shims through the GOT), `core::fmt`,
//! `u128` division (`__udivti3` from compiler_builtins) and a trait object
//! (a vtable in `.data.rel.ro`). Its `init` checks every result and refuses to
//! start if one is wrong; the shell command `alloc-demo` prints them.
#![no_std]
#![forbid(unsafe_code)]

extern crate alloc;

use alloc::boxed::Box;
use alloc::collections::BTreeMap;
use alloc::format;
use alloc::string::String;
use alloc::vec::Vec;

use spindle_sdk::prelude::*;
use spindle_sdk::spin::Mutex;

static COMMAND: Mutex<Option<Binding<Line, Reply>>> = Mutex::new(None);

trait Shape {
    fn area(&self) -> u64;
    fn name(&self) -> String;
}

struct Square(u64);
struct Rectangle(u64, u64);

impl Shape for Square {
    fn area(&self) -> u64 {
        self.0 * self.0
    }
    fn name(&self) -> String {
        format!("square {}", self.0)
    }
}

impl Shape for Rectangle {
    fn area(&self) -> u64 {
        self.0 * self.1
    }
    fn name(&self) -> String {
        format!("rectangle {}x{}", self.0, self.1)
    }
}

/// Runs every computation and returns the lines to print.
fn report() -> Vec<String> {
    let squares: Vec<u64> = (1..=1000u64).map(|i| i * i).collect();
    let sum: u64 = squares.iter().sum();
    let mut words: BTreeMap<String, usize> = BTreeMap::new();
    for word in "the quick brown fox jumps over the lazy dog the end".split(' ') {
        *words.entry(String::from(word)).or_default() += 1;
    }
    let big: u128 = 0xdead_beef_cafe_f00d_1234_5678_9abc_def0;
    let quotient = big / 1_000_000_007;
    let remainder = big % 1_000_000_007;
    let shapes: Vec<Box<dyn Shape>> = Vec::from([
        Box::new(Square(12)) as Box<dyn Shape>,
        Box::new(Rectangle(3, 7)),
    ]);
    let areas: Vec<String> = shapes
        .iter()
        .map(|s| format!("{}={}", s.name(), s.area()))
        .collect();
    Vec::from([
        format!("sum of squares 1..1000 = {sum}"),
        format!(
            "word counts: the={} fox={} distinct={}",
            words["the"],
            words["fox"],
            words.len()
        ),
        format!("u128: {big:#x} / 1000000007 = {quotient} rem {remainder}"),
        format!("shapes: {}", areas.join(", ")),
    ])
}

fn check(lines: &[String]) -> Result<(), ExtensionError> {
    let expected = [
        "sum of squares 1..1000 = 333833500",
        "word counts: the=3 fox=1 distinct=9",
        "u128: 0xdeadbeefcafef00d123456789abcdef0 / 1000000007 = 295990753005022285406951330066 rem 601125746",
        "shapes: square 12=144, rectangle 3x7=21",
    ];
    for (got, want) in lines.iter().zip(expected) {
        if got != want {
            return Err(ExtensionError::new(format!(
                "self-check failed: got '{got}', want '{want}'"
            )));
        }
    }
    Ok(())
}

fn init(ctx: &ExtensionContext) -> Result<(), ExtensionError> {
    check(&report())?;
    let binding = spindle_sdk::console::line_event()
        .binding(|_line| {
            for line in report() {
                println!("{line}");
            }
            Reply::Handled
        })
        .guard(|line| line.command() == "alloc-demo")
        .install(ctx.principal())?;
    *COMMAND.lock() = Some(binding);
    println!("alloc-demo: self-check passed");
    Ok(())
}

fn exit(_ctx: &ExtensionContext) {
    if let Some(binding) = COMMAND.lock().take() {
        let _ = binding.uninstall();
    }
}

spindle_sdk::extension!(init: init, exit: exit);
