//! The baselines every other figure is compared with: an empty loop, a
//! direct call and an indirect call.

use super::{Plan, Report, Stats, measure};

const PLAN: Plan = Plan::new(31, 10_000);

#[inline(never)]
fn callee(x: u64) -> u64 {
    core::hint::black_box(x.wrapping_add(1))
}

fn indirect(plan: Plan) -> Stats {
    let f: fn(u64) -> u64 = core::hint::black_box(callee);
    measure(plan, |i| {
        core::hint::black_box(f(i));
    })
}

/// One indirect call through a function pointer.
pub fn indirect_call() -> Stats {
    indirect(PLAN)
}

/// Measures the baselines.
pub fn run(report: &mut Report) {
    report.add("baseline", "empty loop iteration", measure(PLAN, |_| {}));
    report.add_published(
        "baseline",
        "direct call",
        measure(PLAN, |i| {
            core::hint::black_box(callee(i));
        }),
        super::SPIN_PROCEDURE_CALL,
    );
    let unit = report.indirect_call;
    report.add("baseline", "indirect call (fn pointer)", unit);
}
