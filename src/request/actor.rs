//! The `Request` actor: one open-loop request on a worker arbiter.

use std::sync::Arc;

use actix::prelude::*;
use sinks::handover::RecorderHandle;

use crate::load::tracker::Ending;
use crate::load::StepContext;
use crate::request::client::{execute, Job};
use crate::workers;

pub struct Request {
    job: Option<Job>,
    ctx: Arc<StepContext>,
}

impl Request {
    pub fn new(job: Job, ctx: Arc<StepContext>) -> Self {
        Request {
            job: Some(job),
            ctx,
        }
    }
}

impl Actor for Request {
    type Context = Context<Self>;

    fn started(&mut self, ctx: &mut Context<Self>) {
        let Some(job) = self.job.take() else {
            ctx.stop();
            return;
        };
        let step = self.ctx.clone();
        // A multi-turn workload sends a conversation's next turn (load::conversation).
        let fut = async move { crate::load::conversation::send_arrival(&step, job).await };
        ctx.spawn(fut.into_actor(self).map(|_, _, ctx| ctx.stop()));
    }
}

/// Executes a job, hands its record to the recorder, and only then counts it out of the step:
/// when a step's tracker is idle, every record of the step is in the recorder's queue, ahead of
/// the step's `FinishStep`.
pub async fn run_one(step: &StepContext, job: Job) -> Ending {
    let client = workers::client(&step.settings);
    let record = execute(&client, &step.shared, job).await;
    let ending = Ending::of(&record);
    publish(&step.recorder, record).await;
    step.tracker.end(ending);
    ending
}

/// Lossless, and not on the recorder's clock: waits only while the handover queue is full,
/// never for the recorder's work on the record (see `sinks::handover`).
pub async fn publish(recorder: &RecorderHandle, record: sinks::event::RequestFinished) {
    recorder.hand_over(record).await;
}
