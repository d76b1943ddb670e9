//! The kernel's principal and its first events.
//!
//! * `Clock.Tick` (owner: kernel; args: the tick number; result: `()`) is
//!   raised by the timer interrupt. Its original handler accounts the tick.
//!   Extensions may add handlers; they run in interrupt context, so the
//!   kernel sets a quantum of a tenth of a tick for ephemeral handlers and
//!   logs those that overrun it.
//! * `Console.Line` (owner: kernel; args: the input line; result: `Reply`)
//!   is raised by the shell for every line. Its original handler is the
//!   shell's table of built-in commands. Extensions may add commands; the
//!   authorizer imposes a guard that keeps the built-in names for the kernel
//!   (an extension cannot take over `shutdown`).
//! * `Strand.Block`, `Strand.Unblock`, `Strand.Checkpoint`, `Strand.Resume`
//!   and `Sched.PickNext`: the strand service's events (see the `strand`
//!   crate's `events` module). The kernel declares them, installs the
//!   service's authorizers — a principal that registered a scheduling
//!   policy sees only the signals of its own strands and answers
//!   `Sched.PickNext` for its own class; nobody may cancel — and hands them
//!   to the service, which raises them and publishes them install-only.
//! * `Dispatcher.EventDeclared` (owner: kernel; args: the new event's
//!   name) is raised by the dispatcher after every declaration; anyone may
//!   install on it (the `tracer` extension does, to observe new events).

use console::{Line, Reply};

use crate::containment::faults;
use dispatcher::observe::{self, EventDeclared};
use dispatcher::{
    Decision, Event, EventAuthority, Imposition, KernelCapability, Micros, Principal,
    PrincipalIssuer,
};
use strand::events::{
    KernelEvents, pick_authorizer, round_robin, signal_authorizer, signal_original,
};
use strand::{Pick, PickArgs, StrandSignal};

/// Time bound of an ephemeral `Clock.Tick` handler, in microseconds (the
/// dispatcher's clock, see [`crate::time`]): a tenth of a tick.
pub const TICK_HANDLER_QUANTUM: Micros = Micros(1_000_000 / crate::arch::apic::TIMER_HZ / 10);

/// The kernel's capabilities over the dispatcher. Kernel-internal: nothing
/// of it may be stored where a public crate (and so an extension) reaches.
pub struct KernelAuthority {
    /// Mints principals (one per extension) and revokes them at unload.
    pub issuer: PrincipalIssuer,
    /// The kernel's own identity.
    pub kernel: Principal,
    /// `Clock.Tick`, to raise (the public crates only hand out its install
    /// right).
    pub tick: Event<u64, ()>,
    /// Authority over `Clock.Tick`.
    pub clock_tick: EventAuthority<u64, ()>,
    /// `Console.Line`, to raise.
    pub line: Event<Line, Reply>,
    /// Authority over `Console.Line`.
    pub console_line: EventAuthority<Line, Reply>,
    /// Authority over the four `Strand.*` signals (block, unblock,
    /// checkpoint, resume).
    pub strand_signals: [EventAuthority<StrandSignal, ()>; 4],
    /// Authority over `Sched.PickNext`.
    pub pick_next: EventAuthority<PickArgs, Pick>,
}

static AUTHORITY: spin::Once<KernelAuthority> = spin::Once::new();

/// Takes the principal issuer and declares the kernel's events. Must run
/// before interrupts are enabled and before any extension is loaded.
pub fn init() {
    let issuer = PrincipalIssuer::take().expect("the kernel takes the principal issuer first");
    let kernel = issuer.issue("kernel");
    let capability = issuer.kernel_capability();
    declare_event_declared(&kernel, capability);

    let (tick, clock_tick) = Event::<u64, ()>::builder(clock::TICK_EVENT)
        .original(move |tick| clock::account_tick(capability, tick))
        .quantum(TICK_HANDLER_QUANTUM)
        .declare(&kernel)
        .expect("Clock.Tick is declared once");
    // An extension's handler stops being called as soon as the extension
    // is marked failed (see `containment::faults::is_failed`).
    let kernel_id = kernel.id();
    clock_tick.set_authorizer(move |request| {
        if request.principal == kernel_id {
            return Decision::Allow;
        }
        let name = alloc::string::String::from(request.principal_name);
        Decision::Impose(Imposition::new().guard(move |_tick: &u64| !faults::is_failed(&name)))
    });
    clock_tick.set_overrun_handler(|overrun| {
        log::warn!(
            "{} handler {:?} of principal {:?} overran its quantum ({} late)",
            overrun.event,
            overrun.binding,
            overrun.installer,
            overrun.observed_at.saturating_sub(overrun.deadline)
        );
    });
    clock::publish_tick_event(capability, tick.clone());

    let (line, console_line) = Event::<Line, Reply>::builder(console::LINE_EVENT)
        .original(crate::shell::builtin_commands)
        .result_handler(Reply::combine)
        .declare(&kernel)
        .expect("Console.Line is declared once");
    console_line.set_authorizer(|request| {
        let name = alloc::string::String::from(request.principal_name);
        Decision::Impose(Imposition::new().guard(move |line: &Line| {
            !crate::shell::is_builtin(line.command()) && !faults::is_failed(&name)
        }))
    });
    console::publish_line_event(capability, line.clone());

    let signal = |name: &str| {
        let (event, authority) = Event::<StrandSignal, ()>::builder(name)
            .original(signal_original)
            .declare(&kernel)
            .expect("each strand signal is declared once");
        authority.set_authorizer(signal_authorizer(strand::policy_of_principal));
        (event, authority)
    };
    let (block, block_authority) = signal(strand::BLOCK_EVENT);
    let (unblock, unblock_authority) = signal(strand::UNBLOCK_EVENT);
    let (checkpoint, checkpoint_authority) = signal(strand::CHECKPOINT_EVENT);
    let (resume, resume_authority) = signal(strand::RESUME_EVENT);
    let (pick, pick_next) = Event::<PickArgs, Pick>::builder(strand::PICK_NEXT_EVENT)
        .original(round_robin)
        .result_handler(Pick::combine)
        .declare(&kernel)
        .expect("Sched.PickNext is declared once");
    pick_next.set_authorizer(pick_authorizer(strand::policy_of_principal));
    strand::events::publish_events(
        capability,
        KernelEvents {
            block,
            unblock,
            checkpoint,
            resume,
            pick_next: pick,
        },
    );

    AUTHORITY.call_once(|| KernelAuthority {
        issuer,
        kernel,
        tick,
        clock_tick,
        line,
        console_line,
        strand_signals: [
            block_authority,
            unblock_authority,
            checkpoint_authority,
            resume_authority,
        ],
        pick_next,
    });
}

/// The kernel's dispatcher capabilities.
pub fn authority() -> &'static KernelAuthority {
    AUTHORITY.get().expect("events::init ran at boot")
}

/// The kernel's capability for the kernel-only operations of the public
/// crates.
pub fn capability() -> KernelCapability {
    authority().issuer.kernel_capability()
}

/// Authority over `Dispatcher.EventDeclared` (kept so the event lives).
static EVENT_DECLARED: spin::Once<EventAuthority<EventDeclared, ()>> = spin::Once::new();

/// Declares `Dispatcher.EventDeclared` (raised by the dispatcher after
/// every declaration, see `dispatcher::observe`), open to every installer,
/// and publishes it install-only. Declared first, so that it reports every
/// later event.
fn declare_event_declared(kernel: &Principal, capability: KernelCapability) {
    let (event, authority) = Event::<EventDeclared, ()>::builder(observe::EVENT_DECLARED)
        .declare(kernel)
        .expect("Dispatcher.EventDeclared is declared once");
    authority.set_authorizer(|_request| Decision::Allow);
    observe::publish_declared_event(capability, event);
    EVENT_DECLARED.call_once(|| authority);
}
