//! Helpers shared by the dispatcher's integration tests.
#![allow(dead_code)]

use std::collections::VecDeque;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, OnceLock};

use dispatcher::{Clock, Executor, Job, Micros, Principal, PrincipalIssuer};

/// The process's one issuer, taken on first use by any test.
pub fn issuer() -> &'static PrincipalIssuer {
    static ISSUER: OnceLock<PrincipalIssuer> = OnceLock::new();
    ISSUER.get_or_init(|| PrincipalIssuer::take().expect("the tests are the only taker"))
}

/// A fresh principal.
pub fn principal(name: &str) -> Principal {
    issuer().issue(name)
}

/// A queue executor: jobs run only when the test says so.
#[derive(Default)]
pub struct QueueExecutor {
    jobs: Mutex<VecDeque<Job>>,
}

impl QueueExecutor {
    pub fn new() -> Arc<Self> {
        Arc::new(Self::default())
    }

    pub fn pending(&self) -> usize {
        self.jobs.lock().unwrap().len()
    }

    /// Runs queued jobs (including ones queued while running) until none
    /// is left; returns how many ran.
    pub fn run_all(&self) -> usize {
        let mut ran = 0;
        loop {
            let job = self.jobs.lock().unwrap().pop_front();
            match job {
                Some(job) => {
                    job();
                    ran += 1;
                }
                None => return ran,
            }
        }
    }

    /// Drops every queued job without running it.
    pub fn discard_all(&self) -> usize {
        let jobs: Vec<Job> = self.jobs.lock().unwrap().drain(..).collect();
        jobs.len()
    }
}

impl Executor for QueueExecutor {
    fn spawn(&self, job: Job) {
        self.jobs.lock().unwrap().push_back(job);
    }
}

/// A clock that moves only when told.
#[derive(Default)]
pub struct FakeClock {
    now: AtomicU64,
}

impl FakeClock {
    pub fn new() -> Arc<Self> {
        Arc::new(Self::default())
    }

    pub fn advance(&self, micros: u64) -> Micros {
        Micros(self.now.fetch_add(micros, Ordering::SeqCst) + micros)
    }
}

impl Clock for FakeClock {
    fn now(&self) -> Micros {
        Micros(self.now.load(Ordering::SeqCst))
    }
}

/// A shared log of which handlers ran, in order.
#[derive(Clone, Default)]
pub struct CallLog(Arc<Mutex<Vec<&'static str>>>);

impl CallLog {
    pub fn new() -> Self {
        Self::default()
    }

    pub fn record(&self, what: &'static str) {
        self.0.lock().unwrap().push(what);
    }

    pub fn take(&self) -> Vec<&'static str> {
        std::mem::take(&mut *self.0.lock().unwrap())
    }
}
