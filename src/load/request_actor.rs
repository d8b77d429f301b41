//! The `Request` actor: one open-loop request on a worker arbiter.
//!
//! Its request runs as one task inside it (streaming is per token: a message per chunk would
//! cost the hot path; see the README's architecture paragraph), supervised: a panic or a drop
//! is counted by the request's `InFlight` guard, which reports the end to the step's
//! supervisor.

use std::sync::Arc;

use actix::prelude::*;
use sinks::handover::RecorderHandle;

use crate::load::in_flight::{supervise, InFlight};
use crate::load::inject;
use crate::load::tracker::Ending;
use crate::load::StepContext;
use crate::request::client::{execute, Job};
use crate::runtime::workers;

pub struct Request {
    job: Option<(Job, InFlight)>,
    ctx: Arc<StepContext>,
}

impl Request {
    pub fn new(job: (Job, InFlight), ctx: Arc<StepContext>) -> Self {
        Request {
            job: Some(job),
            ctx,
        }
    }
}

impl Actor for Request {
    type Context = Context<Self>;

    fn started(&mut self, ctx: &mut Context<Self>) {
        let Some((job, guard)) = self.job.take() else {
            ctx.stop();
            return;
        };
        let step = self.ctx.clone();
        // A multi-turn workload sends a conversation's next turn (load::conversation). However
        // the task ends, its guard has counted the request: the result says nothing more.
        let fut = async move {
            let arrival = crate::load::conversation::send_arrival(&step, job, guard);
            let _ = supervise(&step, arrival).await;
        };
        ctx.spawn(fut.into_actor(self).map(|_, _, ctx| ctx.stop()));
    }
}

/// Executes a job, hands its record to the recorder, and only then counts it out of the step.
pub async fn run_one(step: &StepContext, job: Job, guard: InFlight) -> Ending {
    let client = workers::client(&step.settings);
    let record = execute(&client, &step.shared, job).await;
    hand_over(step, record, guard).await
}

/// Hands a finished request's record to the recorder, then counts it out: when every request of
/// a step has ended, every record of the step is in the recorder. The test hooks strike here,
/// after the server answered and before the record is handed over (every record passes here,
/// so a late stamp planted here reaches every sink).
pub async fn hand_over(
    step: &StepContext,
    mut record: sinks::event::RequestFinished,
    guard: InFlight,
) -> Ending {
    if let Some(fault) = inject::fault(&step.hooks, guard.seq()) {
        inject::strike(fault, &record.id).await;
    }
    inject::stamp_late(&step.hooks, guard.seq(), &mut record);
    let ending = Ending::of(&record);
    publish(&step.recorder, record).await;
    guard.finish(ending);
    ending
}

/// Lossless, and not on the recorder's clock: waits only while the handover queue is full,
/// never for the recorder's work on the record (see `sinks::handover`).
pub async fn publish(recorder: &RecorderHandle, record: sinks::event::RequestFinished) {
    recorder.hand_over(record).await;
}
