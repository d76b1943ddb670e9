//! Test fixture: `init` registers the scheduling policy `doomed`, installs
//! its `Sched.PickNext` handler, opts nothing in, and then fails. The
//! loader must revoke the handler and retire the policy: round-robin stays
//! in force and no strand is left under `doomed`.
#![no_std]
#![forbid(unsafe_code)]

use spindle_sdk::prelude::*;
use spindle_sdk::spin::Mutex;
use spindle_sdk::strand::{self, Pick, PickArgs, Policy};

/// Kept as a real extension would keep them; cleaning up is the loader's job.
static LEFT_BEHIND: Mutex<Option<(Policy, Binding<PickArgs, Pick>)>> = Mutex::new(None);

fn init(ctx: &ExtensionContext) -> Result<(), ExtensionError> {
    let policy = strand::register_policy(ctx.principal(), "doomed")
        .map_err(|_| ExtensionError::new("cannot register the policy"))?;
    let events = strand::events::events().ok_or_else(|| ExtensionError::new("no events"))?;
    let binding = events.pick_next.install(ctx.principal(), |_| Pick::Pass)?;
    *LEFT_BEHIND.lock() = Some((policy, binding));
    Err(ExtensionError::new(
        "refusing to start after registering a policy: this fixture always fails",
    ))
}

fn exit(_ctx: &ExtensionContext) {}

spindle_sdk::extension!(init: init, exit: exit);
