//! The load models: closed loop (`VirtualUser`s) and open loop (`RateTicker` starting `Request`s).

pub mod conversation;
pub mod rate_ticker;
pub mod schedule;
pub mod tracker;
pub mod virtual_user;

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;

use sinks::event::Nanos;
use sinks::handover::RecorderHandle;

use crate::request::client::{Job, PreparedBody, RequestShared};
use crate::workers::ClientSettings;
use crate::workload::PreparedRequest;
use tracker::StepTracker;

/// The prompts of the run, handed out in turn.
pub struct RequestPool {
    bodies: Vec<Arc<PreparedBody>>,
    next: AtomicUsize,
    /// Multi-turn chat: how virtual users walk the conversations (`conversation.rs`).
    chat: Option<conversation::ChatPlan>,
    /// Trace replay: the open loop's arrival `k` sends body `k` (an arrival that is dropped
    /// does not shift the others onto the wrong lengths).
    in_arrival_order: bool,
}

impl RequestPool {
    /// `bodies` must not be empty (the workload refuses to prepare an empty set).
    pub fn new(bodies: Vec<Arc<PreparedBody>>) -> Self {
        assert!(!bodies.is_empty(), "a run needs at least one prompt");
        RequestPool {
            bodies,
            next: AtomicUsize::new(0),
            chat: None,
            in_arrival_order: false,
        }
    }

    /// The open loop's `k`-th arrival of a step sends the `k`-th body (trace replay).
    pub fn in_arrival_order(mut self) -> Self {
        self.in_arrival_order = true;
        self
    }

    /// Virtual users walk multi-turn conversations; `plan.scripts` is in `bodies` order.
    pub fn with_conversations(mut self, plan: conversation::ChatPlan) -> Self {
        self.chat = Some(plan);
        self
    }

    pub fn chat(&self) -> Option<&conversation::ChatPlan> {
        self.chat.as_ref()
    }

    pub fn next(&self) -> Arc<PreparedBody> {
        self.next_entry().0
    }

    /// The next body and, for multi-turn chat, the conversation it starts.
    pub fn next_entry(&self) -> (Arc<PreparedBody>, Option<Arc<PreparedRequest>>) {
        let i = self.next.fetch_add(1, Ordering::Relaxed) % self.bodies.len();
        let script = self.chat.as_ref().and_then(|c| c.scripts.get(i).cloned());
        (self.bodies[i].clone(), script)
    }
}

/// Everything the requests of one step share.
pub struct StepContext {
    pub step: u32,
    pub run_id: Arc<str>,
    pub shared: Arc<RequestShared>,
    pub pool: Arc<RequestPool>,
    pub tracker: Arc<StepTracker>,
    pub recorder: RecorderHandle,
    pub settings: ClientSettings,
}

impl StepContext {
    /// Counts a new request in and names it; the id is sent as `x-request-id`.
    pub fn job(&self, scheduled_at: Nanos) -> Job {
        self.job_with(scheduled_at, self.pool.next())
    }

    /// The job of the step's `k`-th open-loop arrival.
    pub fn arrival_job(&self, scheduled_at: Nanos, k: usize) -> Job {
        let pool = &self.pool;
        if pool.in_arrival_order {
            self.job_with(scheduled_at, pool.bodies[k % pool.bodies.len()].clone())
        } else {
            self.job(scheduled_at)
        }
    }

    /// As [`job`](Self::job), for a body the caller built (a conversation's later turn).
    pub fn job_with(&self, scheduled_at: Nanos, prepared: Arc<PreparedBody>) -> Job {
        let seq = self.tracker.begin();
        Job {
            id: format!("{}-{}-{}", self.run_id, self.step, seq),
            step: self.step,
            scheduled_at,
            prepared,
        }
    }
}
