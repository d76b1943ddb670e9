//! The synchronisation primitives on real threads: a test platform maps
//! each OS thread to a strand id, blocking to `thread::park` (whose token
//! has the same pending-wakeup semantics as the kernel's block) and waking
//! to `unpark`.

use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, OnceLock};
use std::thread::{self, Thread};
use std::time::{Duration, Instant};

use dispatcher::{Principal, PrincipalId, PrincipalIssuer};
use strand::service::{Platform, SpawnRequest};
use strand::{
    BlockReason, Builder, Condvar, Mutex, PolicyError, PolicyId, PolicyInfo, Semaphore,
    StrandError, StrandId, StrandInfo,
};

#[derive(Default)]
struct Threads {
    handles: HashMap<StrandId, Thread>,
    joins: HashMap<StrandId, thread::JoinHandle<()>>,
}

struct ThreadPlatform {
    threads: std::sync::Mutex<Threads>,
    next: AtomicU64,
    start: Instant,
}

thread_local! {
    static ME: std::cell::Cell<Option<StrandId>> = const { std::cell::Cell::new(None) };
}

impl ThreadPlatform {
    /// Makes the calling thread a strand.
    fn adopt(&self) -> StrandId {
        let id = StrandId::from_u64(self.next.fetch_add(1, Ordering::Relaxed));
        ME.with(|me| me.set(Some(id)));
        self.threads
            .lock()
            .unwrap()
            .handles
            .insert(id, thread::current());
        id
    }
}

impl Platform for ThreadPlatform {
    fn current(&self) -> Option<StrandId> {
        ME.with(|me| me.get())
    }
    fn can_block(&self) -> bool {
        self.current().is_some()
    }
    fn park(&self, _reason: BlockReason) -> Result<(), StrandError> {
        thread::park();
        Ok(())
    }
    fn wake(&self, id: StrandId) -> Result<(), StrandError> {
        let threads = self.threads.lock().unwrap();
        let thread = threads.handles.get(&id).ok_or(StrandError::NotFound(id))?;
        thread.unpark();
        Ok(())
    }
    fn yield_now(&self) {
        thread::yield_now();
    }
    fn sleep_until(&self, deadline_ns: u64) -> Result<(), StrandError> {
        let now = self.now_ns();
        thread::sleep(Duration::from_nanos(deadline_ns.saturating_sub(now)));
        Ok(())
    }
    fn now_ns(&self) -> u64 {
        self.start.elapsed().as_nanos() as u64
    }
    fn spawn(&self, request: SpawnRequest) -> Result<StrandId, StrandError> {
        let (sender, receiver) = std::sync::mpsc::channel();
        let entry = request.entry;
        let join = thread::spawn(move || {
            let id = platform().adopt();
            sender.send(id).unwrap();
            entry.run();
        });
        let id = receiver.recv().unwrap();
        self.threads.lock().unwrap().joins.insert(id, join);
        Ok(id)
    }
    fn kill(&self, _id: StrandId) -> Result<(), StrandError> {
        Err(StrandError::NoService)
    }
    fn suspend(&self, _id: StrandId) -> Result<(), StrandError> {
        Err(StrandError::NoService)
    }
    fn join(&self, id: StrandId) -> Result<(), StrandError> {
        let join = self.threads.lock().unwrap().joins.remove(&id);
        match join {
            Some(join) => join.join().map_err(|_| StrandError::NoResult(id)),
            None => Ok(()),
        }
    }
    fn set_policy(&self, _: StrandId, policy: PolicyId, _: u32) -> Result<(), StrandError> {
        Err(StrandError::NoSuchPolicy(policy))
    }
    fn register_policy(&self, _: &Principal, _: &str) -> Result<PolicyId, PolicyError> {
        Err(PolicyError::NoService)
    }
    fn retire_policy(&self, id: PolicyId) -> Result<usize, PolicyError> {
        Err(PolicyError::NotFound(id))
    }
    fn policy_of(&self, _: PrincipalId) -> Option<PolicyId> {
        None
    }
    fn strands(&self) -> Vec<StrandInfo> {
        Vec::new()
    }
    fn policies(&self) -> Vec<PolicyInfo> {
        Vec::new()
    }
    fn interrupts_disable(&self) -> bool {
        false
    }
    fn interrupts_restore(&self, _were_enabled: bool) {}
}

fn platform() -> &'static ThreadPlatform {
    static PLATFORM: OnceLock<ThreadPlatform> = OnceLock::new();
    static INSTALLED: OnceLock<()> = OnceLock::new();
    let platform = PLATFORM.get_or_init(|| ThreadPlatform {
        threads: std::sync::Mutex::new(Threads::default()),
        next: AtomicU64::new(1),
        start: Instant::now(),
    });
    INSTALLED.get_or_init(|| {
        let issuer = issuer();
        assert!(strand::service::set_platform(
            issuer.kernel_capability(),
            platform
        ));
    });
    platform
}

fn issuer() -> &'static PrincipalIssuer {
    static ISSUER: OnceLock<PrincipalIssuer> = OnceLock::new();
    ISSUER.get_or_init(|| PrincipalIssuer::take().expect("first take in this binary"))
}

fn owner() -> Principal {
    static OWNER: OnceLock<Principal> = OnceLock::new();
    OWNER.get_or_init(|| issuer().issue("test")).clone()
}

fn spawn(name: &str, f: impl FnOnce() + Send + 'static) -> strand::Strand {
    platform();
    Builder::new(name).spawn(&owner(), f).expect("spawn")
}

#[test]
fn mutex_excludes_and_leaves_no_waiter_behind() {
    const THREADS: usize = 8;
    const ROUNDS: u64 = 5_000;
    let counter = Arc::new(Mutex::new(0u64));
    let inside = Arc::new(AtomicBool::new(false));
    let strands: Vec<_> = (0..THREADS)
        .map(|_| {
            let (counter, inside) = (counter.clone(), inside.clone());
            spawn("adder", move || {
                for round in 0..ROUNDS {
                    let mut guard = counter.lock().unwrap();
                    assert!(!inside.swap(true, Ordering::SeqCst), "two holders");
                    let value = *guard;
                    if round % 64 == 0 {
                        thread::yield_now();
                    }
                    *guard = value + 1;
                    inside.store(false, Ordering::SeqCst);
                }
            })
        })
        .collect();
    for s in strands {
        s.join().unwrap();
    }
    assert_eq!(*counter.lock().unwrap(), THREADS as u64 * ROUNDS);
    assert_eq!(counter.waiters(), 0);
}

#[test]
fn condvar_wakes_one_waiter_and_all_waiters() {
    let state = Arc::new((Mutex::new(0u32), Condvar::new()));
    let woken = Arc::new(AtomicUsize::new(0));
    let waiters: Vec<_> = (0..5)
        .map(|i| {
            let (state, woken) = (state.clone(), woken.clone());
            spawn("waiter", move || {
                let (lock, cv) = &*state;
                let guard = lock.lock().unwrap();
                let guard = cv.wait_while(guard, |v| *v <= i).unwrap();
                assert!(*guard > i);
                woken.fetch_add(1, Ordering::SeqCst);
            })
        })
        .collect();
    thread::sleep(Duration::from_millis(50));
    assert_eq!(woken.load(Ordering::SeqCst), 0, "nobody may pass early");
    {
        let (lock, cv) = &*state;
        *lock.lock().unwrap() = 1;
        cv.notify_all();
    }
    // Only waiter 0 may pass with the value 1.
    let deadline = Instant::now() + Duration::from_secs(5);
    while woken.load(Ordering::SeqCst) < 1 && Instant::now() < deadline {
        thread::sleep(Duration::from_millis(1));
    }
    thread::sleep(Duration::from_millis(30));
    assert_eq!(woken.load(Ordering::SeqCst), 1);
    {
        let (lock, cv) = &*state;
        *lock.lock().unwrap() = 100;
        cv.notify_all();
    }
    for w in waiters {
        w.join().unwrap();
    }
    assert_eq!(woken.load(Ordering::SeqCst), 5);
}

#[test]
fn semaphore_bounds_concurrency() {
    let semaphore = Arc::new(Semaphore::new(3));
    let inside = Arc::new(AtomicUsize::new(0));
    let most = Arc::new(AtomicUsize::new(0));
    let strands: Vec<_> = (0..10)
        .map(|_| {
            let (semaphore, inside, most) = (semaphore.clone(), inside.clone(), most.clone());
            spawn("bounded", move || {
                for _ in 0..200 {
                    semaphore.acquire().unwrap();
                    let now = inside.fetch_add(1, Ordering::SeqCst) + 1;
                    most.fetch_max(now, Ordering::SeqCst);
                    thread::yield_now();
                    inside.fetch_sub(1, Ordering::SeqCst);
                    semaphore.release();
                }
            })
        })
        .collect();
    for s in strands {
        s.join().unwrap();
    }
    assert_eq!(semaphore.available(), 3);
    let most = most.load(Ordering::SeqCst);
    assert!((1..=3).contains(&most), "{most} holders at once");
}

#[test]
fn joinable_strands_return_their_value() {
    platform();
    let handle = Builder::new("square")
        .spawn_joinable(&owner(), || 12u64 * 12)
        .unwrap();
    assert_eq!(handle.join(), Ok(144));
}

#[test]
fn blocking_outside_a_strand_is_refused() {
    platform();
    let mutex = Arc::new(Mutex::new(()));
    let held = mutex.clone();
    let (locked, unlock) = (
        Arc::new(AtomicBool::new(false)),
        Arc::new(AtomicBool::new(false)),
    );
    let (l, u) = (locked.clone(), unlock.clone());
    let holder = spawn("holder", move || {
        let _guard = held.lock().unwrap();
        l.store(true, Ordering::SeqCst);
        while !u.load(Ordering::SeqCst) {
            thread::sleep(Duration::from_millis(1));
        }
    });
    while !locked.load(Ordering::SeqCst) {
        thread::sleep(Duration::from_millis(1));
    }
    // A plain thread (no strand id) cannot block on the busy mutex.
    let outsider = thread::spawn(move || mutex.lock().map(drop));
    assert_eq!(outsider.join().unwrap(), Err(StrandError::CannotBlock));
    unlock.store(true, Ordering::SeqCst);
    holder.join().unwrap();
    assert_eq!(
        strand::block(BlockReason::Wait),
        Err(StrandError::CannotBlock)
    );
}

#[test]
fn sleep_lasts_at_least_its_duration() {
    platform();
    let strand = spawn("sleeper", || {
        let start = Instant::now();
        strand::sleep(Duration::from_millis(20)).unwrap();
        assert!(start.elapsed() >= Duration::from_millis(20));
    });
    strand.join().unwrap();
}
