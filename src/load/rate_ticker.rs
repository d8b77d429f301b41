//! Open loop: at each scheduled arrival, start a `Request` actor on a worker arbiter. An arrival
//! that finds `max_vus` requests in flight is counted as dropped, never skipped silently.

use std::sync::Arc;

use actix::prelude::*;
use sinks::event::ArrivalDropped;
use sinks::recorder::RecordDropped;

use super::schedule::Schedule;
use super::StepContext;
use crate::request::actor::Request;
use crate::shutdown::Level;
use crate::workers::Workers;

pub struct RateTicker {
    ctx: Arc<StepContext>,
    schedule: Option<Schedule>,
    max_in_flight: u64,
    workers: Arc<Workers>,
}

impl RateTicker {
    /// The caller counts the ticker in with `tracker.source_started()` before starting it.
    pub fn new(
        ctx: Arc<StepContext>,
        schedule: Schedule,
        max_in_flight: u64,
        workers: Arc<Workers>,
    ) -> Self {
        RateTicker {
            ctx,
            schedule: Some(schedule),
            max_in_flight,
            workers,
        }
    }
}

impl Actor for RateTicker {
    type Context = Context<Self>;

    fn started(&mut self, ctx: &mut Context<Self>) {
        let step = self.ctx.clone();
        let Some(schedule) = self.schedule.take() else {
            return;
        };
        let max_in_flight = self.max_in_flight;
        let workers = self.workers.clone();
        let fut = async move {
            tick(&step, schedule, max_in_flight, &workers).await;
            step.tracker.source_ended();
        };
        ctx.spawn(fut.into_actor(self).map(|_, _, ctx| ctx.stop()));
    }
}

async fn tick(step: &Arc<StepContext>, schedule: Schedule, max: u64, workers: &Workers) {
    let clock = step.shared.clock;
    let stop = step.shared.shutdown.reached(Level::Stop);
    tokio::pin!(stop);
    let step_stop = step.tracker.sending_stop();
    tokio::pin!(step_stop);
    for at in schedule {
        tokio::select! {
            biased;
            _ = &mut stop => return,
            _ = &mut step_stop => return,
            _ = tokio::time::sleep_until(clock.instant(at).into()) => {}
        }
        if step.tracker.in_flight() >= max {
            step.tracker.dropped();
            step.recorder.do_send(RecordDropped(ArrivalDropped {
                step: step.step,
                scheduled_at: at,
            }));
            continue;
        }
        let job = step.job(at);
        let ctx = step.clone();
        Request::start_in_arbiter(&workers.next(), move |_| Request::new(job, ctx));
    }
}
