//! The load models: closed loop (`VirtualUser`s) and open loop (`RateTicker` starting `Request`s).

pub mod rate_ticker;
pub mod schedule;
pub mod tracker;
pub mod virtual_user;

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;

use actix::Addr;
use sinks::event::Nanos;
use sinks::recorder::Recorder;

use crate::request::client::{Job, PreparedBody, RequestShared};
use crate::workers::ClientSettings;
use tracker::StepTracker;

/// The prompts of the run, handed out in turn.
pub struct RequestPool {
    bodies: Vec<Arc<PreparedBody>>,
    next: AtomicUsize,
}

impl RequestPool {
    /// `bodies` must not be empty (the workload refuses to prepare an empty set).
    pub fn new(bodies: Vec<Arc<PreparedBody>>) -> Self {
        assert!(!bodies.is_empty(), "a run needs at least one prompt");
        RequestPool {
            bodies,
            next: AtomicUsize::new(0),
        }
    }

    pub fn next(&self) -> Arc<PreparedBody> {
        let i = self.next.fetch_add(1, Ordering::Relaxed) % self.bodies.len();
        self.bodies[i].clone()
    }
}

/// Everything the requests of one step share.
pub struct StepContext {
    pub step: u32,
    pub run_id: Arc<str>,
    pub shared: Arc<RequestShared>,
    pub pool: Arc<RequestPool>,
    pub tracker: Arc<StepTracker>,
    pub recorder: Addr<Recorder>,
    pub settings: ClientSettings,
}

impl StepContext {
    /// Counts a new request in and names it; the id is sent as `x-request-id`.
    pub fn job(&self, scheduled_at: Nanos) -> Job {
        let seq = self.tracker.begin();
        Job {
            id: format!("{}-{}-{}", self.run_id, self.step, seq),
            step: self.step,
            scheduled_at,
            prepared: self.pool.next(),
        }
    }
}
