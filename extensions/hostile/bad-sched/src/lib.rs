//! Test fixture: a scheduling policy (`bad`) whose every answer to
//! `Sched.PickNext` is wrong — alternately a strand that does not exist
//! and strand 1 (the shell: round-robin's, never one of this policy's
//! ready strands). The kernel must refuse each answer, run round-robin's
//! choice instead, count the rejections, and lose no strand.
#![no_std]
#![forbid(unsafe_code)]

use core::sync::atomic::{AtomicU64, Ordering};

use spindle_sdk::prelude::*;
use spindle_sdk::spin::Mutex;
use spindle_sdk::strand::{self, Pick, PickArgs, Policy, StrandId};

static ANSWERS: AtomicU64 = AtomicU64::new(0);
static INSTALLED: Mutex<Option<(Policy, Binding<PickArgs, Pick>)>> = Mutex::new(None);

fn pick(_args: &PickArgs) -> Pick {
    if ANSWERS.fetch_add(1, Ordering::Relaxed) % 2 == 0 {
        Pick::Strand(StrandId::from_u64(u64::MAX))
    } else {
        Pick::Strand(StrandId::from_u64(1))
    }
}

fn init(ctx: &ExtensionContext) -> Result<(), ExtensionError> {
    let policy = strand::register_policy(ctx.principal(), "bad")
        .map_err(|_| ExtensionError::new("cannot register the policy"))?;
    let events = strand::events::events().ok_or_else(|| ExtensionError::new("no events"))?;
    let binding = events.pick_next.install(ctx.principal(), pick)?;
    *INSTALLED.lock() = Some((policy, binding));
    println!("bad-sched: policy 'bad' registered; every answer will be wrong");
    Ok(())
}

fn exit(_ctx: &ExtensionContext) {
    if let Some((policy, binding)) = INSTALLED.lock().take() {
        let _ = binding.uninstall();
        let _ = policy.retire();
    }
    println!(
        "bad-sched: goodbye after {} wrong answers",
        ANSWERS.load(Ordering::Relaxed)
    );
}

spindle_sdk::extension!(init: init, exit: exit);
