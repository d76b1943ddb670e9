//! Strands on the real machine: registers across switches (voluntary and
//! preemptive), preemption, blocking synchronisation under preemption,
//! sleeping, mass spawning with exact memory accounting, the stack guard
//! page, memory exhaustion, the executor of asynchronous handlers, a
//! hostile policy, and the capability rules.

use alloc::sync::Arc;
use alloc::vec::Vec;
use core::arch::naked_asm;
use core::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering};
use core::time::Duration;

use ktest_macros::ktest;
use strand::{
    BlockReason, Builder, Cause, Condvar, ExitReason, Mutex, Pick, PolicyId, Semaphore, State,
    StrandError, StrandId,
};

use crate::events::authority;
use crate::ktest::{KtestFailure, KtestResult};
use crate::memory::{frames, heap};
use crate::{ensure, ensure_eq, strands, time};

fn failure(e: impl core::fmt::Debug) -> KtestFailure {
    KtestFailure::new(alloc::format!("{e:?}"))
}

fn spawn(name: &str, f: impl FnOnce() + Send + 'static) -> Result<strand::Strand, KtestFailure> {
    strands::spawn_kernel(name, 16 * 1024, f).map_err(failure)
}

fn sleep_ms(ms: u64) -> KtestResult {
    strand::sleep(Duration::from_millis(ms)).map_err(failure)
}

/// Waits (sleeping) until `done()` or two seconds.
fn wait_until(done: impl Fn() -> bool) -> bool {
    let deadline = time::uptime_ns() + 2_000_000_000;
    while !done() && time::uptime_ns() < deadline {
        let _ = strands::sleep_ticks(1);
    }
    done()
}

/// Sets fourteen registers (all but RSP and RDI) to `seed + 1 ..= seed +
/// 13` and RSI to `seed`, spins until `*flag != 0` (being preempted by the
/// timer meanwhile), then stores the registers into `out`.
///
/// # Safety
/// `flag` must be valid for reads and `out` for 14 writes of `u64`.
#[unsafe(naked)]
unsafe extern "sysv64" fn hold_registers(flag: *const u64, seed: u64, out: *mut [u64; 14]) {
    naked_asm!(
        "push rbx",
        "push rbp",
        "push r12",
        "push r13",
        "push r14",
        "push r15",
        "push rdx",
        "lea rbx, [rsi + 1]",
        "lea rbp, [rsi + 2]",
        "lea r12, [rsi + 3]",
        "lea r13, [rsi + 4]",
        "lea r14, [rsi + 5]",
        "lea r15, [rsi + 6]",
        "lea r8, [rsi + 7]",
        "lea r9, [rsi + 8]",
        "lea r10, [rsi + 9]",
        "lea r11, [rsi + 10]",
        "lea rax, [rsi + 11]",
        "lea rcx, [rsi + 12]",
        "lea rdx, [rsi + 13]",
        "2:",
        "pause",
        "cmp qword ptr [rdi], 0",
        "je 2b",
        "push rsi",
        "mov rsi, [rsp + 8]",
        "mov [rsi], rbx",
        "mov [rsi + 8], rbp",
        "mov [rsi + 16], r12",
        "mov [rsi + 24], r13",
        "mov [rsi + 32], r14",
        "mov [rsi + 40], r15",
        "mov [rsi + 48], r8",
        "mov [rsi + 56], r9",
        "mov [rsi + 64], r10",
        "mov [rsi + 72], r11",
        "mov [rsi + 80], rax",
        "mov [rsi + 88], rcx",
        "mov [rsi + 96], rdx",
        "pop rax",
        "mov [rsi + 104], rax",
        "add rsp, 8",
        "pop r15",
        "pop r14",
        "pop r13",
        "pop r12",
        "pop rbp",
        "pop rbx",
        "ret",
    )
}

extern "sysv64" fn yield_shim() {
    strand::yield_now();
}

/// Sets the six callee-saved registers to `seed + 1 ..= seed + 6`, yields
/// `yields` times, then stores them into `out`.
///
/// # Safety
/// `out` must be valid for 6 writes of `u64`; `yields` must be at least 1.
#[unsafe(naked)]
unsafe extern "sysv64" fn hold_across_yields(seed: u64, out: *mut [u64; 6], yields: u64) {
    naked_asm!(
        "push rbx",
        "push rbp",
        "push r12",
        "push r13",
        "push r14",
        "push r15",
        "push rsi",
        "push rdx",
        "sub rsp, 8",
        "lea rbx, [rdi + 1]",
        "lea rbp, [rdi + 2]",
        "lea r12, [rdi + 3]",
        "lea r13, [rdi + 4]",
        "lea r14, [rdi + 5]",
        "lea r15, [rdi + 6]",
        "2:",
        "call {yield_shim}",
        "dec qword ptr [rsp + 8]",
        "jnz 2b",
        "add rsp, 8",
        "pop rdx",
        "pop rsi",
        "mov [rsi], rbx",
        "mov [rsi + 8], rbp",
        "mov [rsi + 16], r12",
        "mov [rsi + 24], r13",
        "mov [rsi + 32], r14",
        "mov [rsi + 40], r15",
        "pop r15",
        "pop r14",
        "pop r13",
        "pop r12",
        "pop rbp",
        "pop rbx",
        "ret",
        yield_shim = sym yield_shim,
    )
}

#[ktest]
fn registers_survive_switches() -> KtestResult {
    let kernel = authority().kernel.clone();
    let flag = Arc::new(AtomicU64::new(0));
    let mut spinners = Vec::new();
    for seed in [0x1000_0000_0000_0000u64, 0x2000_0000_0000_0000] {
        let flag = flag.clone();
        let handle = Builder::new("regs-preempted")
            .stack_size(16 * 1024)
            .spawn_joinable(&kernel, move || {
                let mut out = [0u64; 14];
                // SAFETY: `flag` lives in the Arc this closure owns; `out` is
                // a local array of 14 u64.
                unsafe { hold_registers(flag.as_ptr(), seed, &mut out) };
                (seed, out)
            })
            .map_err(failure)?;
        spinners.push(handle);
    }
    let mut yielders = Vec::new();
    for seed in [0x3000_0000_0000_0000u64, 0x4000_0000_0000_0000] {
        let handle = Builder::new("regs-yielding")
            .stack_size(16 * 1024)
            .spawn_joinable(&kernel, move || {
                let mut out = [0u64; 6];
                // SAFETY: `out` is a local array of 6 u64; 300 yields.
                unsafe { hold_across_yields(seed, &mut out, 300) };
                (seed, out)
            })
            .map_err(failure)?;
        yielders.push(handle);
    }
    // Long enough for every strand to be preempted several times.
    sleep_ms(150)?;
    let switches: Vec<u64> = spinners
        .iter()
        .map(|h| h.strand().info().map_or(0, |i| i.switches))
        .collect();
    flag.store(1, Ordering::SeqCst);
    for (handle, switches) in spinners.into_iter().zip(switches) {
        let (seed, out) = handle.join().map_err(failure)?;
        ensure!(switches >= 2, "spinning strand ran only {switches} time(s)");
        let mut expected = [0u64; 14];
        for (i, e) in expected.iter_mut().enumerate().take(13) {
            *e = seed + i as u64 + 1;
        }
        expected[13] = seed;
        ensure_eq!(out, expected);
    }
    for handle in yielders {
        let (seed, out) = handle.join().map_err(failure)?;
        let expected: [u64; 6] = core::array::from_fn(|i| seed + i as u64 + 1);
        ensure_eq!(out, expected);
    }
    Ok(())
}

#[ktest]
fn preemption_lets_two_spinning_strands_progress() -> KtestResult {
    let stop = Arc::new(AtomicBool::new(false));
    let counters = [Arc::new(AtomicU64::new(0)), Arc::new(AtomicU64::new(0))];
    let mut spinners = Vec::new();
    for counter in &counters {
        let (stop, counter) = (stop.clone(), counter.clone());
        spinners.push(spawn("spinner", move || {
            while !stop.load(Ordering::Relaxed) {
                counter.fetch_add(1, Ordering::Relaxed);
            }
        })?);
    }
    sleep_ms(50)?;
    let first = [
        counters[0].load(Ordering::Relaxed),
        counters[1].load(Ordering::Relaxed),
    ];
    sleep_ms(100)?;
    stop.store(true, Ordering::Relaxed);
    let switches: Vec<u64> = spinners
        .iter()
        .map(|s| s.info().map_or(0, |i| i.switches))
        .collect();
    for s in &spinners {
        s.join().map_err(failure)?;
    }
    for (i, counter) in counters.iter().enumerate() {
        let last = counter.load(Ordering::Relaxed);
        ensure!(
            last > first[i] && first[i] > 0,
            "spinner {i} did not progress: {} then {last}",
            first[i]
        );
        // Neither yields: every switch back in followed a preemption.
        ensure!(
            switches[i] >= 3,
            "spinner {i} switched in {} times",
            switches[i]
        );
    }
    Ok(())
}

#[ktest]
fn mutex_excludes_under_preemption() -> KtestResult {
    const STRANDS: usize = 4;
    const ROUNDS: u64 = 100;
    let counter = Arc::new(Mutex::new(0u64));
    let inside = Arc::new(AtomicBool::new(false));
    let violations = Arc::new(AtomicUsize::new(0));
    let contended = Arc::new(AtomicUsize::new(0));
    let mut workers = Vec::new();
    for _ in 0..STRANDS {
        let (counter, inside, violations, contended) = (
            counter.clone(),
            inside.clone(),
            violations.clone(),
            contended.clone(),
        );
        workers.push(spawn("locker", move || {
            for _ in 0..ROUNDS {
                let mut guard = match counter.try_lock() {
                    Some(guard) => guard,
                    None => {
                        contended.fetch_add(1, Ordering::Relaxed);
                        counter.lock().expect("strands may block")
                    }
                };
                if inside.swap(true, Ordering::SeqCst) {
                    violations.fetch_add(1, Ordering::Relaxed);
                }
                let value = *guard;
                // Long enough to be preempted inside the critical section.
                for _ in 0..10_000 {
                    core::hint::spin_loop();
                }
                *guard = value + 1;
                inside.store(false, Ordering::SeqCst);
            }
        })?);
    }
    for w in &workers {
        w.join().map_err(failure)?;
    }
    ensure_eq!(*counter.lock().map_err(failure)?, STRANDS as u64 * ROUNDS);
    ensure_eq!(violations.load(Ordering::Relaxed), 0);
    ensure!(
        contended.load(Ordering::Relaxed) > 0,
        "the lock was never contended: the test proved nothing"
    );
    ensure_eq!(counter.waiters(), 0);
    Ok(())
}

#[ktest]
fn condvar_wakes_a_blocked_waiter() -> KtestResult {
    let state = Arc::new((Mutex::new(false), Condvar::new()));
    let woke_at = Arc::new(AtomicU64::new(0));
    let (s, w) = (state.clone(), woke_at.clone());
    let waiter = spawn("waiter", move || {
        let (lock, cv) = &*s;
        let guard = lock.lock().expect("strands may block");
        let guard = cv.wait_while(guard, |ready| !*ready).expect("may block");
        drop(guard);
        w.store(time::uptime_ns(), Ordering::SeqCst);
    })?;
    ensure!(
        wait_until(|| waiter
            .info()
            .is_some_and(|i| i.state == State::Blocked(BlockReason::Wait))),
        "the waiter never blocked"
    );
    sleep_ms(30)?;
    ensure_eq!(woke_at.load(Ordering::SeqCst), 0);
    let notified_at = time::uptime_ns();
    {
        let (lock, cv) = &*state;
        *lock.lock().map_err(failure)? = true;
        ensure!(cv.notify_one(), "no waiter to notify");
    }
    waiter.join().map_err(failure)?;
    ensure!(woke_at.load(Ordering::SeqCst) >= notified_at);
    Ok(())
}

#[ktest]
fn sleep_blocks_for_its_duration() -> KtestResult {
    let slept = Arc::new(AtomicU64::new(0));
    let s = slept.clone();
    let sleeper = spawn("sleeper", move || {
        let start = time::uptime_ns();
        strand::sleep(Duration::from_millis(50)).expect("strands may sleep");
        s.store(time::uptime_ns() - start, Ordering::SeqCst);
    })?;
    ensure!(
        wait_until(|| sleeper
            .info()
            .is_some_and(|i| i.state == State::Blocked(BlockReason::Sleep))),
        "the sleeper never blocked"
    );
    sleeper.join().map_err(failure)?;
    let ns = slept.load(Ordering::SeqCst);
    ensure!(
        (50_000_000..500_000_000).contains(&ns),
        "slept {ns} ns for 50 ms"
    );
    Ok(())
}

#[ktest]
fn a_thousand_strands_leave_frames_and_heap_as_they_were() -> KtestResult {
    const COUNT: usize = 1000;
    let ran = Arc::new(AtomicUsize::new(0));
    let mut strands = Vec::with_capacity(COUNT);
    let frames_before = frames::stats();
    let heap_before = heap::settled_stats().used;
    for _ in 0..COUNT {
        let ran = ran.clone();
        strands.push(spawn("worker", move || {
            ran.fetch_add(1, Ordering::Relaxed);
        })?);
    }
    for s in strands.drain(..) {
        s.join().map_err(failure)?;
    }
    ensure_eq!(ran.load(Ordering::Relaxed), COUNT);
    ensure_eq!(strands::zombies(), 0);
    strands::check().map_err(failure)?;
    ensure_eq!(frames::stats(), frames_before);
    ensure_eq!(heap::settled_stats().used, heap_before);
    Ok(())
}

#[ktest]
fn stack_overflow_hits_the_guard_page_and_only_that_strand_stops() -> KtestResult {
    #[inline(never)]
    fn recurse(depth: u64) -> u64 {
        if depth > 1 << 40 {
            return depth;
        }
        let frame = core::hint::black_box([depth as u8; 256]);
        recurse(depth + 1).wrapping_add(u64::from(frame[0]))
    }
    // An observer of `Strand.Checkpoint` learns how the strand ended.
    let principal = authority().issuer.issue("ktest-overflow-observer");
    let overflowed = Arc::new(AtomicU64::new(0));
    let o = overflowed.clone();
    let observer = strand::events::events()
        .ok_or_else(|| failure("no events"))?
        .checkpoint
        .install(&principal, move |signal| {
            if signal.cause == Cause::Exited(ExitReason::StackOverflow) {
                o.store(signal.strand.as_u64(), Ordering::SeqCst);
            }
        })
        .map_err(failure)?;
    let frames_before = frames::stats();
    let heap_before = heap::settled_stats().used;
    let bystander_done = Arc::new(AtomicBool::new(false));
    let done = bystander_done.clone();
    let bystander = spawn("bystander", move || {
        let _ = strand::sleep(Duration::from_millis(40));
        done.store(true, Ordering::SeqCst);
    })?;
    // The closure owns nothing: a strand stopped by its guard page abandons
    // its frames without running their destructors (that needs unwinding),
    // so a test that checks the heap must not leave heap in them.
    let overflowing = spawn("overflow", || {
        core::hint::black_box(recurse(0));
    })?;
    let id = overflowing.id();
    overflowing.join().map_err(failure)?;
    ensure_eq!(overflowed.load(Ordering::SeqCst), id.as_u64());
    ensure!(
        strand::info(id).is_none(),
        "the overflowing strand is still listed"
    );
    bystander.join().map_err(failure)?;
    ensure!(
        bystander_done.load(Ordering::SeqCst),
        "the bystander did not finish"
    );
    drop((bystander, bystander_done));
    ensure_eq!(frames::stats(), frames_before);
    ensure_eq!(heap::settled_stats().used, heap_before);
    ensure_eq!(
        crate::cpu::current()
            .page_fault_depth
            .load(Ordering::Relaxed),
        0
    );
    observer.uninstall().map_err(failure)?;
    authority().issuer.revoke(&principal);
    Ok(())
}

#[ktest]
fn spawning_until_memory_runs_out_is_an_error_not_a_panic() -> KtestResult {
    const STACK: usize = 1 << 20;
    let mut strands = Vec::with_capacity(1024);
    let frames_before = frames::stats();
    let heap_before = heap::settled_stats().used;
    let gate = Arc::new(Semaphore::new(0));
    let error = loop {
        let gate = gate.clone();
        match strands::spawn_kernel("hog", STACK, move || {
            let _ = gate.acquire();
        }) {
            Ok(s) => strands.push(s),
            Err(e) => break e,
        }
        ensure!(strands.len() < 1024, "memory never ran out");
    };
    ensure!(
        matches!(
            error,
            StrandError::OutOfMemory("stack frames" | "page tables")
        ),
        "unexpected error {error:?}"
    );
    ensure!(strands.len() > 10, "only {} strands fit", strands.len());
    for _ in 0..strands.len() {
        gate.release();
    }
    let count = strands.len();
    for s in strands.drain(..) {
        s.join().map_err(failure)?;
    }
    drop(gate);
    ensure_eq!(frames::stats(), frames_before);
    ensure_eq!(heap::settled_stats().used, heap_before);
    crate::println!("ktest: {count} strands of 1 MiB fit before frames ran out ({error})");
    Ok(())
}

#[ktest]
fn asynchronous_handlers_run_in_strands_of_their_own() -> KtestResult {
    let principal = authority().issuer.issue("ktest-async");
    let (event, _authority) = dispatcher::Event::<u64, ()>::builder("Ktest.Async")
        .original(|_| ())
        .asynchronous()
        .declare(&principal)
        .map_err(failure)?;
    let ran_in = Arc::new(AtomicU64::new(0));
    let r = ran_in.clone();
    let binding = event
        .binding(move |_| {
            r.store(
                strand::current().map_or(0, StrandId::as_u64),
                Ordering::SeqCst,
            );
        })
        .install(&principal)
        .map_err(failure)?;
    let me = strand::current().map_or(0, StrandId::as_u64);
    let _ = event.raise(&1);
    ensure!(
        wait_until(|| ran_in.load(Ordering::SeqCst) != 0),
        "the asynchronous handler never ran"
    );
    let strand = ran_in.load(Ordering::SeqCst);
    ensure!(strand != me, "the handler ran in the raising strand");
    binding.uninstall().map_err(failure)?;
    authority().issuer.revoke(&principal);
    Ok(())
}

#[ktest]
fn a_hostile_policy_is_overruled_and_loses_no_strand() -> KtestResult {
    let principal = authority().issuer.issue("ktest-hostile-policy");
    let policy = strand::register_policy(&principal, "ktest-hostile").map_err(failure)?;
    let events = strand::events::events().ok_or_else(|| failure("no events"))?;
    // Wrong on purpose: a strand that does not exist.
    let binding = events
        .pick_next
        .install(&principal, |_| Pick::Strand(StrandId::from_u64(u64::MAX)))
        .map_err(failure)?;
    // A scheduler sees the signals of its own strands only.
    let seen = Arc::new(spin::Mutex::new(Vec::new()));
    let s = seen.clone();
    let observer = events
        .checkpoint
        .install(&principal, move |signal| s.lock().push(signal.strand))
        .map_err(failure)?;
    let imposed = |bindings: Vec<dispatcher::BindingInfo>| {
        bindings
            .into_iter()
            .find(|b| b.installer == principal.id())
            .map(|b| {
                (
                    b.imposed_guards,
                    b.options.placement.position,
                    b.options.cancel,
                )
            })
    };
    ensure_eq!(
        imposed(authority().pick_next.bindings()),
        Some((1, dispatcher::Position::First, false))
    );
    ensure_eq!(
        imposed(authority().strand_signals[2].bindings()),
        Some((1, dispatcher::Position::Middle, false))
    );
    let stop = Arc::new(AtomicBool::new(false));
    let counters = [Arc::new(AtomicU64::new(0)), Arc::new(AtomicU64::new(0))];
    let mut members = Vec::new();
    for counter in &counters {
        let (stop, counter) = (stop.clone(), counter.clone());
        members.push(
            Builder::new("hostile-member")
                .stack_size(16 * 1024)
                .policy(policy.id(), 5)
                .spawn(&authority().kernel, move || {
                    while !stop.load(Ordering::Relaxed) {
                        counter.fetch_add(1, Ordering::Relaxed);
                    }
                })
                .map_err(failure)?,
        );
    }
    sleep_ms(100)?;
    let info = strand::policies()
        .into_iter()
        .find(|p| p.id == policy.id())
        .ok_or_else(|| failure("policy missing"))?;
    ensure!(info.rejected > 0, "no answer was refused: {info:?}");
    ensure_eq!(info.picks, 0);
    ensure_eq!(info.strands, 2);
    strands::check().map_err(failure)?;
    observer.uninstall().map_err(failure)?;
    let ids: Vec<StrandId> = members.iter().map(strand::Strand::id).collect();
    let seen = core::mem::take(&mut *seen.lock());
    ensure!(
        !seen.is_empty(),
        "the scheduler saw no checkpoint of its strands"
    );
    ensure!(
        seen.iter().all(|id| ids.contains(id)),
        "the scheduler saw strands of other policies: {seen:?}"
    );
    // Retire it with its strands still running: they go back to round-robin.
    ensure_eq!(policy.retire(), Ok(2));
    binding.uninstall().map_err(failure)?;
    for m in &members {
        ensure_eq!(m.info().map(|i| i.policy), Some(PolicyId::ROUND_ROBIN));
    }
    stop.store(true, Ordering::Relaxed);
    for m in &members {
        m.join().map_err(failure)?;
    }
    for counter in &counters {
        ensure!(counter.load(Ordering::Relaxed) > 0, "a member never ran");
    }
    strands::check().map_err(failure)?;
    authority().issuer.revoke(&principal);
    Ok(())
}

#[ktest]
fn capabilities_and_bad_input_give_typed_errors() -> KtestResult {
    let kernel = authority().kernel.clone();
    let capability = authority().issuer.kernel_capability();
    let idle = crate::cpu::current().idle_strand();
    ensure_eq!(
        strand::service::kill(capability, idle),
        Err(StrandError::Protected(idle))
    );
    ensure_eq!(
        Builder::new("x")
            .policy(PolicyId::ROUND_ROBIN, 0)
            .spawn(&kernel, || {}),
        Err(StrandError::BadTickets(0))
    );
    let nowhere = PolicyId::from_u32(9999);
    ensure_eq!(
        Builder::new("x").policy(nowhere, 1).spawn(&kernel, || {}),
        Err(StrandError::NoSuchPolicy(nowhere))
    );
    ensure!(matches!(
        Builder::new("x").stack_size(64 << 20).spawn(&kernel, || {}),
        Err(StrandError::StackTooLarge { .. })
    ));
    let blocked =
        x86_64::instructions::interrupts::without_interrupts(|| strand::block(BlockReason::Wait));
    ensure_eq!(blocked, Err(StrandError::CannotBlock));

    // Kill through the capability: the sleeping strand ends as killed.
    let sleeper = spawn("doomed", || {
        let _ = strand::sleep(Duration::from_secs(60));
    })?;
    ensure!(wait_until(|| sleeper
        .info()
        .is_some_and(|i| matches!(i.state, State::Blocked(_)))));
    sleeper.kill().map_err(failure)?;
    let id = sleeper.id();
    // Killed twice: exited (not reaped yet) or already gone.
    let again = sleeper.kill();
    ensure!(
        matches!(again, Err(StrandError::Exited(x) | StrandError::NotFound(x)) if x == id),
        "second kill: {again:?}"
    );
    sleeper.join().map_err(failure)?;
    ensure_eq!(sleeper.kill(), Err(StrandError::NotFound(id)));

    // Suspend and resume a ready strand.
    let go = Arc::new(AtomicBool::new(false));
    let g = go.clone();
    let worker = spawn("suspended", move || {
        while !g.load(Ordering::Relaxed) {
            strand::yield_now();
        }
    })?;
    worker.suspend().map_err(failure)?;
    ensure_eq!(
        worker.info().map(|i| i.state),
        Some(State::Blocked(BlockReason::Suspended))
    );
    go.store(true, Ordering::Relaxed);
    worker.resume().map_err(failure)?;
    worker.join().map_err(failure)?;
    strands::check().map_err(failure)?;
    Ok(())
}

#[ktest]
fn a_panicking_strand_is_contained_and_catch_frames_are_per_strand() -> KtestResult {
    let heap_before = heap::settled_stats().used;
    let kernel = authority().kernel.clone();
    let entered = Arc::new(AtomicBool::new(false));
    let e = entered.clone();
    // A strand inside a catch frame of its own, sleeping in it.
    let catcher = Builder::new("catcher")
        .stack_size(32 * 1024)
        .spawn_joinable(&kernel, move || {
            crate::containment::catch(|| {
                e.store(true, Ordering::SeqCst);
                let _ = strand::sleep(Duration::from_millis(40));
                panic!("caught on purpose");
            })
            .is_err()
        })
        .map_err(failure)?;
    ensure!(wait_until(|| entered.load(Ordering::SeqCst)));
    // Its catch frame is not this strand's.
    ensure!(
        !crate::containment::may_unwind(),
        "another strand's catch frame leaked into this one"
    );
    ensure_eq!(catcher.join(), Ok(true));
    // A strand that panics outside any catch frame of its own: stopped at
    // its entry, the kernel goes on, and unwinding ran its destructors.
    let panicker = Builder::new("panicker")
        .stack_size(32 * 1024)
        .spawn_joinable(&kernel, || -> u64 { panic!("a strand panics on purpose") })
        .map_err(failure)?;
    let id = panicker.strand().id();
    ensure_eq!(panicker.join(), Err(StrandError::NoResult(id)));
    drop(entered);
    ensure_eq!(heap::settled_stats().used, heap_before);
    Ok(())
}
