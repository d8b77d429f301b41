//! The load models: closed loop (`VirtualUser`s) and open loop (`RateTicker` starting `Request`s),
//! each step's sources supervised by a `StepSupervisor`.

pub mod batches;
pub mod conversation;
pub mod ends;
pub mod flag;
pub mod in_flight;
pub mod inject;
pub mod rate_ticker;
pub mod request_actor;
pub mod schedule;
pub mod supervisor;
pub mod tracker;
pub mod virtual_user;

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;

use actix::Addr;
use sinks::event::Nanos;
use sinks::handover::RecorderHandle;

use crate::config::TestHooks;
use crate::request::client::{Job, PreparedBody, RequestShared};
use crate::runtime::workers::ClientSettings;
use crate::workload::PreparedRequest;
use in_flight::InFlight;
use supervisor::StepSupervisor;
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
    /// Hears of every request's end (its `InFlight` guard sends it).
    pub supervisor: Addr<StepSupervisor>,
    pub hooks: TestHooks,
}

impl StepContext {
    /// Counts a new request in and names it; the id is sent as `x-request-id`. The guard must
    /// go with the job into the request's task (it counts the request out).
    pub fn job(self: &Arc<Self>, scheduled_at: Nanos) -> (Job, InFlight) {
        self.job_with(scheduled_at, self.pool.next())
    }

    /// The job of the step's `k`-th open-loop arrival.
    pub fn arrival_job(self: &Arc<Self>, scheduled_at: Nanos, k: usize) -> (Job, InFlight) {
        let pool = &self.pool;
        if pool.in_arrival_order {
            self.job_with(scheduled_at, pool.bodies[k % pool.bodies.len()].clone())
        } else {
            self.job(scheduled_at)
        }
    }

    /// As [`job`](Self::job), for a body the caller built (a conversation's later turn).
    pub fn job_with(
        self: &Arc<Self>,
        scheduled_at: Nanos,
        prepared: Arc<PreparedBody>,
    ) -> (Job, InFlight) {
        let guard = InFlight::begin(self, scheduled_at, &prepared);
        let job = Job {
            id: guard.id(),
            step: self.step,
            scheduled_at,
            prepared,
        };
        (job, guard)
    }
}
